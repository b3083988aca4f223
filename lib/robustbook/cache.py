"""Expensive results (trained weights) cached by a key of their parameters.

Re-rendering the book must not retrain: :func:`cached_state` stores a model's
``state_dict`` under a hash of everything that determines it, and loads it
back with ``weights_only=True`` next time. "Everything" includes the source of
the library code that builds and trains models (:data:`CODE_MODULES`): change a
model or the training loop and the cached weights are no longer found, rather
than loaded into a network they were not trained for.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from robustbook.atomic import atomic_path, write_json
from robustbook.paths import cache_dir


#: Library sources whose text is part of every cache key (relative to the package folder).
CODE_MODULES = ("models", "losses", "train.py", "attacks")


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of the sources listed in :data:`CODE_MODULES` (files sorted by path)."""
    package = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for entry in CODE_MODULES:
        path = package / entry
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def key_hash(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached_state(name: str, key: Mapping[str, Any], train: Callable[[], dict],
                 folder: Path | None = None) -> tuple[dict, bool]:
    """Return ``(state, hit)``: the cached state for ``key`` or ``train()``'s, stored atomically.

    ``state`` is whatever ``train`` returns as long as ``torch.load(weights_only=True)`` can
    read it (tensors, numbers, strings, lists, dicts).
    """
    folder = Path(folder) if folder else cache_dir()
    key = {**key, "_code": code_fingerprint()}
    path = folder / f"{name}-{key_hash(key)}.pt"
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True), True
        except Exception:  # a corrupt cache entry is recomputed, never trusted
            path.unlink()
    state = train()
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    write_json(path.with_suffix(".json"), dict(key))
    return state, False
