"""Real data of the denoising chapter (source 003, chapter 2), read from the sets ``data_scripts/`` prepares.

* :func:`clean_images` — the clean images of one set (``Train400``, ``Set12``, ``Set68`` of
  ``dncnn-gray``; ``BSD432``, ``CBSD68`` of ``bsd500``; ``kodak24``; the ground truth of ``sidd-small``)
  as uint8 ``(C, H, W)`` arrays, grayscale (BT.601 luma) or colour.
* :func:`noisy_clean_pairs` — the real noisy/clean pairs of ``polyu``, ``cc``, ``sidd-small`` or ``sidd-val``.
* :func:`by_shape` — images of varying size as a list of same-shape batches (float tensors in [0, 1]),
  so the evaluation runs batched without cropping the test images.
* :func:`set_digest` — a digest of a prepared set's manifest, for cache keys (weights trained on a tiny
  test set must never be reused for the real one).

Introduced in the denoising chapter.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from robustbook.data.manifest import read_dataset
from robustbook.data.registry import prepare

__all__ = ["SETS", "clean_images", "noisy_clean_pairs", "by_shape", "set_digest"]

#: set name -> (registry name, the manifest's distortion column or None for the whole set)
SETS = {"Train400": ("dncnn-gray", "Train400"), "Set12": ("dncnn-gray", "Set12"), "Set68": ("dncnn-gray", "Set68"),
        "BSD432": ("bsd500", "BSD432"), "CBSD68": ("bsd500", "CBSD68"), "Kodak24": ("kodak24", None),
        "PolyU": ("polyu", None), "CC": ("cc", None), "SIDD-small": ("sidd-small", None),
        "SIDD-val": ("sidd-val", None)}


def _read(path: Path, channels: int) -> np.ndarray:
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float64)
    if channels == 1:
        arr = np.round(arr @ np.array([0.299, 0.587, 0.114]))[..., None]   # ITU-R BT.601 luma (gray PNGs unchanged)
    return np.ascontiguousarray(arr.clip(0, 255).astype(np.uint8).transpose(2, 0, 1))


def _rows(name: str, root: str | Path | None):
    if name not in SETS:
        raise ValueError(f"unknown denoising set {name!r}; valid: {sorted(SETS)}")
    registry_name, subset = SETS[name]
    folder = prepare(registry_name, root)
    rows, _ = read_dataset(folder, check_files=False)
    rows = [r for r in rows if subset is None or r.distortion == subset]
    if not rows:
        raise ValueError(f"{folder} holds no images of {name}; prepare it again with its data script")
    return folder, rows


def clean_images(name: str, channels: int, root: str | Path | None = None, limit: int = 0) -> list[np.ndarray]:
    """The clean images of set ``name`` as uint8 ``(channels, H, W)`` arrays (the references of a paired set).

    ``limit`` > 0 keeps the first ``limit`` images (manifest order).
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    folder, rows = _rows(name, root)
    rows = rows[:limit] if limit > 0 else rows
    return [_read(folder / (r.reference or r.image), channels) for r in rows]


def noisy_clean_pairs(name: str, root: str | Path | None = None, limit: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(noisy, clean)]`` uint8 ``(3, H, W)`` arrays of a set of real noisy images with their clean references."""
    folder, rows = _rows(name, root)
    rows = rows[:limit] if limit > 0 else rows
    if any(not r.reference for r in rows):
        raise ValueError(f"{name} has no noisy/clean pairs (its manifest has no references)")
    return [(_read(folder / r.image, 3), _read(folder / r.reference, 3)) for r in rows]


def by_shape(images: Sequence[np.ndarray]) -> list[torch.Tensor]:
    """Group uint8 ``(C, H, W)`` images into float32 batches ``(N, C, H, W)`` in [0, 1], one per shape
    (portrait images are kept as they are, so a set may give two batches)."""
    groups: dict[tuple[int, ...], list[np.ndarray]] = {}
    for im in images:
        groups.setdefault(im.shape, []).append(im)
    return [torch.from_numpy(np.stack(g).astype(np.float32) / 255.0) for g in groups.values()]


def set_digest(name: str, root: str | Path | None = None) -> str:
    """SHA-256 (16 hex digits) of the prepared set's ``manifest.csv`` and ``dataset.json``."""
    registry_name = SETS[name][0] if name in SETS else name
    folder = prepare(registry_name, root)
    h = hashlib.sha256()
    for f in ("manifest.csv", "dataset.json"):
        h.update((folder / f).read_bytes())
    return h.hexdigest()[:16]
