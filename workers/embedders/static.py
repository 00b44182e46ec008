"""Static embedding models: a text's vector is the mean of its tokens' rows, normalised.

No network and no deep-learning runtime: a Hugging Face ``tokenizers`` tokenizer and a numpy matrix.
Three sources: the model shipped in this package (``minilm_static/``), a Model2Vec folder
(``tokenizer.json`` + ``model.safetensors``, read here without the safetensors package), and
WordLlama's bundled model when that package is installed.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workers.embedders import DEFAULT_MODEL, EmbedderError

BUNDLED = Path(__file__).with_name("minilm_static")
POOL_TEXTS = 64  # texts pooled per step: bounds the (tokens x dim) gather to a few MiB
_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "I8": np.int8, "F64": np.float64}


def normalise(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return rows / norms


@dataclass
class StaticEmbedder:
    """A token-lookup model: ``vectors[token id]`` rows, averaged per text."""

    name: str
    vectors: np.ndarray  # (vocabulary, dim) float32
    tokenizer: Any  # tokenizers.Tokenizer
    skip_id: int | None = None  # a token that carries nothing (the unknown token)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), POOL_TEXTS):
            part = list(texts[start:start + POOL_TEXTS])
            out[start:start + len(part)] = self._pool(part)
        return normalise(out)

    def _pool(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        id_lists = [e.ids if self.skip_id is None else [i for i in e.ids if i != self.skip_id] for e in encodings]
        lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=len(id_lists))
        pooled = np.zeros((len(texts), self.dim), dtype=np.float32)
        filled = lengths > 0
        if not filled.any():
            return pooled
        ids = np.fromiter((i for ids in id_lists for i in ids), dtype=np.int64, count=int(lengths.sum()))
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[filled]
        pooled[filled] = np.add.reduceat(self.vectors[ids], starts, axis=0) / lengths[filled, None]
        return pooled


def _tokenizer(path: Path) -> Any:
    # Workers fork a work-horse per batch after the model is loaded: the tokenizer's thread pool must not
    # have run in the parent (tokenizers would then disable itself with a warning in every child).
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def bundled_model() -> StaticEmbedder:
    """The default model shipped in this package: int8 rows with a scale per row."""
    with np.load(BUNDLED / "embeddings.npz") as data:
        vectors = data["rows"].astype(np.float32) * data["scales"][:, None]
    return StaticEmbedder(DEFAULT_MODEL, vectors, _tokenizer(BUNDLED / "tokenizer.json"))


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` file (8-byte header length, a JSON header, raw little-endian data)."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    tensors = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            raise EmbedderError(f"{path.name}: tensor {key!r} has dtype {info['dtype']}, which is not supported")
        begin, end = info["data_offsets"]
        tensors[key] = np.frombuffer(raw, dtype=dtype, count=(end - begin) // np.dtype(dtype).itemsize,
                                     offset=8 + size + begin).reshape(info["shape"])
    return tensors


def folder_model(folder: str) -> StaticEmbedder:
    """A static model in a local folder: ours (``embeddings.npz``) or Model2Vec's (``model.safetensors``)."""
    root = Path(folder).expanduser().resolve()
    if not (root / "tokenizer.json").is_file():
        raise EmbedderError(f"static model folder {root} has no tokenizer.json")
    if (root / "embeddings.npz").is_file():
        with np.load(root / "embeddings.npz") as data:
            vectors = data["rows"].astype(np.float32) * data["scales"][:, None]
    elif (root / "model.safetensors").is_file():
        tensors = read_safetensors(root / "model.safetensors")
        if "embeddings" not in tensors:
            raise EmbedderError(f"{root / 'model.safetensors'} has no 'embeddings' tensor")
        vectors = tensors["embeddings"].astype(np.float32)
        if "mappings" in tensors:  # vocabulary-quantised Model2Vec models map tokens to shared rows
            vectors = vectors[tensors["mappings"].astype(np.int64)]
        if "weights" in tensors:
            vectors = vectors * tensors["weights"].astype(np.float32)[:, None]
    else:
        raise EmbedderError(f"static model folder {root} has neither embeddings.npz nor model.safetensors")
    tokenizer = _tokenizer(root / "tokenizer.json")
    unknown = tokenizer.token_to_id("[UNK]")
    return StaticEmbedder(f"static:{root}", vectors, tokenizer, skip_id=unknown)


@dataclass
class FunctionEmbedder:
    """An embedder around a function that embeds a batch (the rows are normalised here)."""

    name: str
    dim: int
    function: Callable[[list[str]], Any]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalise(self.function(list(texts)))


def wordllama_model(config: str) -> FunctionEmbedder:
    """WordLlama's bundled model, loaded from the package's own folder (its loader would otherwise look
    for the tokenizer elsewhere and try to download it)."""
    try:
        import wordllama
    except ImportError:
        raise EmbedderError("the 'wordllama' model needs the wordllama package: pip install wordllama") from None
    name = config or "l2_supercat"
    model = wordllama.WordLlama.load(config=name, cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    return FunctionEmbedder(f"wordllama:{name}", 256, model.embed)
