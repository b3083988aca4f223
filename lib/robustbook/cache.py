"""Expensive results (trained weights) cached by a key of their parameters.

Re-rendering the book must not retrain: :func:`cached_state` stores a model's
``state_dict`` under a hash of everything that determines it, and loads it
back with ``weights_only=True`` next time. "Everything" includes the source of
the library code that builds and trains models and generates their data
(:data:`CODE_MODULES`): change a model, the training loop or a data generator
and the cached weights are no longer found, rather than loaded into a network
they were not trained for (or trained on other data).
"""
from __future__ import annotations

import functools
import hashlib
import json
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from robustbook.atomic import atomic_path, write_json
from robustbook.paths import cache_dir
from robustbook.safeload import CorruptCheckpointError, load_checkpoint_file

#: Library sources whose text is part of every cache key (relative to the package folder): the code
#: that determines trained weights. Models, losses, attacks (adversarial training's inner maximisation)
#: and the autograd tools they share; the training loop (:mod:`robustbook.train.loop`,
#: :mod:`~robustbook.train.epoch`, the shuffling order of :mod:`~robustbook.train.loaders`), the mode
#: switching it relies on and the seeding; and the data generators and transforms (the procedural and
#: bundled sets, their distortions and splits, the digits, and the loaders that turn stored images
#: into tensors). Plumbing that cannot change a weight is left out, so editing it keeps the cache:
#: distributed helpers, checkpoint file I/O, histories, progress bars, downloads, the registry.
CODE_MODULES = (
    "models", "losses", "attacks", "autograd.py", "modes.py", "seeding.py",
    "train/loop.py", "train/epoch.py", "train/loaders.py",
    "data/procedural.py", "data/bundled.py", "data/distortions.py", "data/manifest.py", "data/digits.py",
    "data/tensors.py", "data/classification.py", "data/mnist_subset.py",
    "train/aat.py", "data/aat_sampler.py", "data/bundled_fr.py", "data/denoising.py",
)


def code_fingerprint(package: Path | None = None) -> str:
    """A hash of the sources listed in :data:`CODE_MODULES` (files sorted by path).

    ``package`` is the ``robustbook`` folder to hash (default: this one, hashed
    once per process). Raises :class:`FileNotFoundError` if an entry of
    :data:`CODE_MODULES` is missing, so renaming a module cannot silently drop
    it from the key.
    """
    return _own_fingerprint() if package is None else _fingerprint(Path(package).resolve())


@functools.lru_cache(maxsize=1)
def _own_fingerprint() -> str:
    return _fingerprint(Path(__file__).resolve().parent)


def _fingerprint(package: Path) -> str:
    h = hashlib.sha256()
    for entry in CODE_MODULES:
        path = package / entry
        if not path.exists():
            raise FileNotFoundError(f"cache.CODE_MODULES lists {entry!r}, which is not in {package}; "
                                    "update CODE_MODULES after moving or renaming a module")
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def key_hash(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cache_path(name: str, key: Mapping[str, Any], folder: Path | None = None) -> Path:
    """Where :func:`cached_state` keeps the entry of ``(name, key)`` (the code fingerprint is part of the key)."""
    folder = Path(folder) if folder else cache_dir()
    return folder / f"{name}-{key_hash({**key, '_code': code_fingerprint()})}.pt"


def is_cached(name: str, key: Mapping[str, Any], folder: Path | None = None) -> bool:
    """Whether :func:`cached_state` would load ``(name, key)`` rather than train it (a corrupt entry
    counts as cached here and is recomputed, with a warning, when loaded)."""
    return cache_path(name, key, folder).is_file()


def cached_state(name: str, key: Mapping[str, Any], train: Callable[[], dict],
                 folder: Path | None = None) -> tuple[dict, bool]:
    """Return ``(state, hit)``: the cached state for ``key`` or ``train()``'s, stored atomically.

    ``state`` is whatever ``train`` returns as long as ``torch.load(weights_only=True)`` can
    read it (tensors, numbers, strings, lists, dicts). A corrupt entry (truncated,
    garbled, not a PyTorch file) is deleted and recomputed with a :class:`RuntimeWarning`
    that names it.
    """
    key = {**key, "_code": code_fingerprint()}
    path = cache_path(name, key, folder)
    if path.is_file():
        try:
            return load_checkpoint_file(path, remedy="The entry is deleted and recomputed."), True
        except CorruptCheckpointError as exc:  # recomputed, never trusted; said, not silent
            warnings.warn(str(exc), RuntimeWarning, stacklevel=2)
            path.unlink(missing_ok=True)
    state = train()
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    write_json(path.with_suffix(".json"), dict(key))
    return state, False
