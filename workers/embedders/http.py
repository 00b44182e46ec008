"""An OpenAI-compatible embeddings endpoint (``POST {url}/embeddings``) as an embedder.

For people who run a model server (Ollama, llama.cpp's server, vLLM, text-embeddings-inference ...):
``openai:MODEL@URL``, e.g. ``openai:nomic-embed-text@http://127.0.0.1:11434/v1``. The key, when the
server wants one, comes from ``BATCHDESK_EMBED_API_KEY`` (never from the spec: specs are recorded on
collections and shown). The dimension is learned from a first request. Nothing is sent anywhere
unless a collection is created with such a spec.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workers.embedders import EmbedderError
from workers.embedders.static import normalise

API_KEY_ENV = "BATCHDESK_EMBED_API_KEY"
REQUEST_TEXTS = 64  # texts per request
TIMEOUT_SECONDS = 60.0


@dataclass
class OpenAIEmbedder:
    """Embeds through ``POST {url}/embeddings`` with ``{"model": ..., "input": [...]}``."""

    model: str
    url: str
    dim: int = 0

    @classmethod
    def from_spec(cls, argument: str) -> OpenAIEmbedder:
        model, sep, url = argument.rpartition("@")
        if not sep or not model or not url.startswith(("http://", "https://")):
            raise EmbedderError(f"openai:{argument}: write openai:MODEL@URL, e.g. "
                                "openai:nomic-embed-text@http://127.0.0.1:11434/v1")
        embedder = cls(model, url.rstrip("/"))
        embedder.dim = int(embedder._request(["dimension probe"]).shape[1])
        return embedder

    @property
    def name(self) -> str:
        return f"openai:{self.model}@{self.url}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [self._request(list(texts[i:i + REQUEST_TEXTS])) for i in range(0, len(texts), REQUEST_TEXTS)]
        return normalise(np.concatenate(rows)) if rows else np.zeros((0, self.dim), dtype=np.float32)

    def _request(self, texts: list[str]) -> np.ndarray:
        body = json.dumps({"model": self.model, "input": [t or " " for t in texts]}).encode()
        headers = {"Content-Type": "application/json"}
        if os.environ.get(API_KEY_ENV):
            headers["Authorization"] = f"Bearer {os.environ[API_KEY_ENV]}"
        request = urllib.request.Request(f"{self.url}/embeddings", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                answer = json.load(response)
            data = sorted(answer["data"], key=lambda row: row["index"])
            return np.asarray([row["embedding"] for row in data], dtype=np.float32)
        except OSError as exc:  # refused, unreachable, timed out (URLError is one)
            raise EmbedderError(f"embedding endpoint {self.url}: {getattr(exc, 'reason', exc)}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbedderError(f"embedding endpoint {self.url} answered something else than embeddings: "
                                f"{type(exc).__name__}: {exc}") from None
