"""Embedders: the bundled model needs no network and gives normalised vectors that put a paraphrase
near its sentence; a Model2Vec folder, an OpenAI-compatible endpoint (a real HTTP server on loopback)
and an entry-point plugin load through the same interface; unknown models are refused clearly."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

from workers import embedders
from workers.embedders import static


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_the_bundled_model_loads_offline_and_ranks_a_paraphrase_first(no_network, monkeypatch):
    monkeypatch.setattr(embedders, "_loaded", {})
    model = embedders.load()
    assert (model.name, model.dim) == ("minilm-static-256", 256)
    vectors = model.embed(["To reset the router, hold the power button for ten seconds.",
                           "Our cat sleeps on the windowsill in the afternoon sun.",
                           "Late payments of the office rent incur a fee.", ""])
    assert vectors.dtype == np.float32 and vectors.shape == (4, 256)
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1, atol=1e-5) and not vectors[3].any()
    query = model.embed(["how do I restart my wifi box"])[0]
    assert int(np.argmax(vectors[:3] @ query)) == 0
    assert np.array_equal(model.embed(["same text"]), model.embed(["same text"])), "deterministic"
    assert embedders.load("default") is model, "loaded once per process"


def test_a_model2vec_folder_loads_from_safetensors(tmp_path, monkeypatch):
    monkeypatch.setattr(embedders, "_loaded", {})
    folder = tmp_path / "m2v"
    folder.mkdir()
    shutil.copy(static.BUNDLED / "tokenizer.json", folder / "tokenizer.json")
    rows = np.random.default_rng(3).standard_normal((30522, 8)).astype(np.float32)
    header = json.dumps({"embeddings": {"dtype": "F32", "shape": [30522, 8], "data_offsets": [0, rows.nbytes]}})
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header.encode() + rows.tobytes())
    model = embedders.load(f"static:{folder}")
    assert (model.name, model.dim) == (f"static:{folder.resolve()}", 8)
    ids = model.tokenizer.encode("hello world", add_special_tokens=False).ids
    expected = rows[ids].mean(axis=0)
    assert np.allclose(model.embed(["hello world"])[0], expected / np.linalg.norm(expected), atol=1e-6)
    with pytest.raises(embedders.EmbedderError, match=r"no tokenizer\.json"):
        embedders.load(f"static:{tmp_path}")


class _Embeddings(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        data = [{"index": i, "embedding": [float(len(text)), 1.0, 0.0]} for i, text in enumerate(body["input"])]
        payload = json.dumps({"data": list(reversed(data)), "model": body["model"]}).encode()
        self.server.seen.append((self.path, self.headers.get("Authorization"), body["model"]))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


def test_an_openai_compatible_endpoint_is_an_embedder(monkeypatch):
    monkeypatch.setattr(embedders, "_loaded", {})
    monkeypatch.setenv("BATCHDESK_EMBED_API_KEY", "k-123")
    server = HTTPServer(("127.0.0.1", 0), _Embeddings)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1"
        model = embedders.load(f"openai:tiny@{url}/")
        assert (model.name, model.dim) == (f"openai:tiny@{url}", 3)
        vectors = model.embed(["a", "abcd"])
        assert np.allclose(vectors[1], np.array([4, 1, 0]) / np.sqrt(17)), "rows in input order, normalised"
        assert server.seen[-1] == ("/v1/embeddings", "Bearer k-123", "tiny")  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(embedders.EmbedderError, match="openai:MODEL@URL"):
        embedders.load("openai:no-url")
    with pytest.raises(embedders.EmbedderError, match="embedding endpoint"):
        embedders.load(f"openai:tiny@{url}")


class _Plugin:
    name, dim = "plugin:x", 2

    def embed(self, texts):
        return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2)


class _EntryPoint:
    name = "toy"

    def load(self):
        return lambda argument: _Plugin()


def test_plugins_come_through_entry_points_and_unknown_models_are_refused(monkeypatch):
    monkeypatch.setattr(embedders, "_loaded", {})
    monkeypatch.setattr(embedders, "entry_points", lambda group: [_EntryPoint()] if group == "batchdesk.embedders"
                        else [])
    assert embedders.load("toy:anything").name == "plugin:x"
    assert embedders.check_spec("toy") == "toy"
    with pytest.raises(embedders.EmbedderError, match=r"unknown model 'nope'; known: .*minilm-static-256.*toy"):
        embedders.load("nope")
    assert embedders.canonical(" default ") == "minilm-static-256"
    assert embedders.canonical("static:rel/dir") == f"static:{Path('rel/dir').resolve()}"
