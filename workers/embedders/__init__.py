"""Embedders: what turns chunks of text (and search queries) into vectors, one per process.

An embedder has a ``name`` (recorded per index collection: a collection never mixes models), a
``dim`` and ``embed(texts) -> float32 array (n, dim)`` whose rows are L2-normalised (an empty text
gives a zero row). A *model spec* names one: ``NAME`` or ``NAME:ARGUMENT``.

Built in:

* ``minilm-static-256`` (alias ``default``): the default, a static model shipped inside this package
  (``workers/embedders/minilm_static``, distilled from all-MiniLM-L6-v2, Apache-2.0; see
  ``scripts/make_static_model.py``); no network, ~1 ms per chunk;
* ``static:FOLDER``: a static model in a local folder: Model2Vec's format (``tokenizer.json`` +
  ``model.safetensors``, e.g. a downloaded potion model) or ours (``embeddings.npz``);
* ``openai:MODEL@URL``: an OpenAI-compatible ``/embeddings`` endpoint someone runs (Ollama,
  llama.cpp, vLLM, ...); the key, if one is needed, comes from ``BATCHDESK_EMBED_API_KEY``;
* ``wordllama``: WordLlama's l2_supercat 256-dim model, when the ``wordllama`` package is installed
  (not a dependency: its weights derive from Llama 2, see docs/index.md).

Plugins add more through the ``batchdesk.embedders`` entry-point group: the entry point's name is the
spec's NAME and it loads a factory ``(argument: str) -> Embedder``.

A model is loaded once per process (:func:`load` caches it): workers load it before they fork a
work-horse for an index batch (the task's ``preload`` hook), so every batch shares it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "batchdesk.embedders"
DEFAULT_MODEL = "minilm-static-256"
ALIASES = {"default": DEFAULT_MODEL, "": DEFAULT_MODEL}


class EmbedderError(Exception):
    """A model spec that cannot be loaded or used; the message says what to fix."""


class Embedder(Protocol):
    """What the index and the search engine need of a model."""

    @property
    def name(self) -> str:
        """What the collection records (a collection never mixes models)."""

    @property
    def dim(self) -> int:
        """The vectors' dimension."""

    def embed(self, texts: Sequence[str]) -> Any:
        """One L2-normalised float32 row per text (numpy array ``(len(texts), dim)``)."""


Factory = Callable[[str], Embedder]


def _builtin_bundled(argument: str) -> Embedder:
    from workers.embedders.static import bundled_model

    return bundled_model()


def _builtin_static(argument: str) -> Embedder:
    from workers.embedders.static import folder_model

    if not argument:
        raise EmbedderError("a static model needs its folder: static:/path/to/model")
    return folder_model(argument)


def _builtin_openai(argument: str) -> Embedder:
    from workers.embedders.http import OpenAIEmbedder

    return OpenAIEmbedder.from_spec(argument)


def _builtin_wordllama(argument: str) -> Embedder:
    from workers.embedders.static import wordllama_model

    return wordllama_model(argument)


BUILTINS: dict[str, Factory] = {
    DEFAULT_MODEL: _builtin_bundled,
    "static": _builtin_static,
    "openai": _builtin_openai,
    "wordllama": _builtin_wordllama,
}

_loaded: dict[str, Embedder] = {}
_lock = threading.Lock()


def canonical(spec: str | None) -> str:
    """The spec as recorded on a collection: aliases resolved, surrounding space gone, a static model's
    folder made absolute."""
    text = (spec or "").strip()
    name, _, argument = text.partition(":")
    if name == "static" and argument:
        return f"static:{Path(argument).expanduser().resolve()}"
    return ALIASES.get(text, text)


def factories() -> dict[str, Factory]:
    """Built-in factories and those of installed plugins (a broken plugin is logged and skipped)."""
    found = dict(BUILTINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken third-party plugin must not stop indexing with other models
            log.warning("embedder plugin %s failed to load: %s", ep.name, exc)
    return found


def check_spec(spec: str) -> str:
    """The canonical spec if its NAME is known (nothing is loaded); EmbedderError otherwise."""
    spec = canonical(spec)
    name = spec.split(":", 1)[0]
    known = factories()
    if name not in known:
        raise _unknown(name, known)
    return spec


def _unknown(name: str, known: dict[str, Factory]) -> EmbedderError:
    return EmbedderError(f"unknown model {name!r}; known: {', '.join(sorted(known))} "
                         "(plugins add more through the 'batchdesk.embedders' entry points)")


def load(spec: str | None = None) -> Embedder:
    """The embedder for ``spec`` (default: the bundled model), loaded once per process."""
    spec = canonical(spec)
    with _lock:
        cached = _loaded.get(spec)
        if cached is not None:
            return cached
        name, _, argument = spec.partition(":")
        known = factories()
        factory = known.get(name)
        if factory is None:
            raise _unknown(name, known)
        try:
            embedder = factory(argument)
        except EmbedderError:
            raise
        except Exception as exc:
            raise EmbedderError(f"cannot load model {spec!r}: {type(exc).__name__}: {exc}") from exc
        _loaded[spec] = embedder
        return embedder


def loaded(spec: str | None = None) -> bool:
    """Whether this process has the model in memory already (workers log what they preload)."""
    return canonical(spec) in _loaded
