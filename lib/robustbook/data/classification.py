"""Load a prepared *classification* data set (MNIST, SVHN, CIFAR-10, ImgNet10) as tensors (introduced in chapter 3).

The data scripts ``data_scripts/{mnist,svhn,cifar10,imgnet10}.py`` write the
book's one manifest format (:mod:`robustbook.data.manifest`) with
``task = "classification"``: ``score`` holds the integer class label,
``ref_id`` the image id, and ``dataset.json`` lists the class names in
``extra["classes"]``. :func:`load_classification` reads one split of such a
folder into ``(x, y)``: float32 images ``(N, C, H, W)`` in [0, 1] and int64
labels. (:func:`robustbook.data.load_split` is the IQA counterpart: it scales
scores to [0, 1], which labels must not be.)

:func:`write_classification` is the other half, shared by those scripts: it
stores images as PNG files ``images/<split>/<id>.png`` and writes the
manifest; :func:`verify_md5` checks an archive against the MD5 its authors
publish (MNIST, SVHN and CIFAR-10 publish MD5, not SHA-256). This module
imports torch only inside :func:`load_classification`, so the data scripts
start without it.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from robustbook.data.download import ChecksumMismatch
from robustbook.data.manifest import SPLITS, DatasetMeta, ManifestError, Sample, read_dataset, write_dataset

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["load_classification", "class_names", "write_classification", "verify_md5", "ChecksumError"]


def _folder(name_or_folder: str | Path, root: str | Path | None) -> Path:
    from robustbook.data.registry import REGISTRY, prepare

    if isinstance(name_or_folder, str) and name_or_folder in REGISTRY:
        return prepare(name_or_folder, root=root)
    p = Path(name_or_folder)
    if not p.is_dir():
        raise ValueError(f"{name_or_folder!r} is neither a registered data set ({sorted(REGISTRY)}) nor a folder")
    return p


def _read(path: Path, channels: int, size: int | None) -> np.ndarray:
    with Image.open(path) as img:
        img = img.convert("L" if channels == 1 else "RGB")
        if size is not None and img.size != (size, size):
            img = img.resize((size, size), Image.BILINEAR)
        a = np.asarray(img, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def load_classification(name_or_folder: str | Path, split: str, *, channels: int | None = None,
                        size: int | None = None, limit: int | None = None, seed: int = 0,
                        root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of a prepared classification set: ``(x, y)``, float32 ``(N, C, H, W)`` in [0, 1] and int64 labels.

    Args:
        name_or_folder: a registry name (``"mnist"``, ``"svhn"``, ``"cifar10"``,
            ``"imgnet10"``; prepared once by its data script) or a folder.
        split: ``"train"``, ``"val"`` or ``"test"``.
        channels: 1 (greyscale) or 3 (RGB); default: ``dataset.json``'s
            ``extra["channels"]``, else 3.
        size: resize every image to ``size × size`` (bilinear); None keeps the
            stored size (all images of a split must then share it).
        limit: keep a seeded random subset of this many samples (in manifest order).
        seed: the subset's seed.
        root: data root for registry names.
    """
    import torch

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = _folder(name_or_folder, root)
    rows, meta = read_dataset(folder, check_files=False)
    if meta.task != "classification":
        raise ManifestError(f"{folder} holds a {meta.task!r} data set, not a classification one")
    channels = int(meta.extra.get("channels", 3)) if channels is None else channels
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if size is not None and (not isinstance(size, int) or size < 1):
        raise ValueError(f"size must be a positive int or None, got {size!r}")
    samples: list[Sample] = [r for r in rows if r.split == split]
    if not samples:
        raise ValueError(f"{folder} has no samples in split {split!r}")
    if limit is not None:
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int or None, got {limit!r}")
        if limit < len(samples):
            idx = np.sort(np.random.default_rng(seed).choice(len(samples), size=limit, replace=False))
            samples = [samples[int(i)] for i in idx]
    labels = []
    for s in samples:
        if s.score != int(s.score) or s.score < 0:
            raise ManifestError(f"{folder}: sample {s.image!r} has label {s.score}, not a class index")
        labels.append(int(s.score))
    arrays = [_read(folder / s.image, channels, size) for s in samples]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"{folder} split {split!r} mixes image sizes {sorted(shapes)}; pass size= to resize them")
    x = torch.from_numpy(np.stack(arrays)).to(torch.float32).div_(255.0)
    return x, torch.tensor(labels, dtype=torch.int64)


def class_names(name_or_folder: str | Path, root: str | Path | None = None) -> list[str]:
    """The class names stored in ``dataset.json`` (``extra["classes"]``), index = label."""
    _, meta = read_dataset(_folder(name_or_folder, root), check_files=False)
    names = meta.extra.get("classes")
    if not names:
        raise ManifestError(f"{name_or_folder}: dataset.json lists no classes (extra['classes'])")
    return list(names)


class ChecksumError(ChecksumMismatch):
    """An archive does not match the MD5 its authors publish (a :class:`~robustbook.data.download.DownloadError`)."""


def verify_md5(path: str | Path, md5: str) -> None:
    """Raise :class:`ChecksumError` unless ``path``'s MD5 is ``md5`` (the checksum the data set's authors publish)."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    got = h.hexdigest()
    if got != md5.lower():
        raise ChecksumError(f"{path} has MD5 {got}, but the official file has {md5}: it is corrupt or a different "
                            f"version. Delete it (and its .sha256 record) and download it again", dest=Path(path))


def _check_id(ident: str) -> str:
    if not ident or "/" in ident or "\\" in ident or ident.startswith(".") or ident != ident.strip():
        raise ValueError(f"image id {ident!r} must be a plain, non-empty file name stem")
    return ident


def write_classification(folder: str | Path, items: Iterable[tuple[str, str, int, np.ndarray]], *, name: str,
                         classes: Sequence[str], channels: int, source: str, notes: str = "",
                         extra: dict | None = None) -> list[Sample]:
    """Store a classification set in the manifest format; return its samples.

    Args:
        folder: the data set folder (normally the ``atomic_dir`` of a data script).
        items: ``(split, image id, label, image)`` with ``image`` a uint8 array
            ``(H, W)`` (greyscale) or ``(H, W, 3)`` (RGB); saved losslessly as
            ``images/<split>/<id>.png``. Ids must be unique.
        name, classes, channels, source, notes: ``dataset.json``'s fields
            (``score`` = label, ``score_range = (0, len(classes) − 1)``); the class
            names and ``channels`` go to ``extra``.
        extra: more metadata (archive digests, ...).
    """
    folder = Path(folder)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if len(classes) < 2:
        raise ValueError("a classification set needs at least two classes")
    samples: list[Sample] = []
    seen: set[str] = set()
    made: set[str] = set()
    for split, ident, label, image in items:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        ident = _check_id(str(ident))
        if ident in seen:
            raise ValueError(f"image id {ident!r} appears twice")
        seen.add(ident)
        label = int(label)
        if not 0 <= label < len(classes):
            raise ValueError(f"image {ident!r} has label {label}, outside 0..{len(classes) - 1}")
        a = np.asarray(image)
        if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
            raise ValueError(f"image {ident!r} must be uint8 (H, W) or (H, W, 3), got {a.dtype} {a.shape}")
        rel = f"images/{split}/{ident}.png"
        if split not in made:
            (folder / "images" / split).mkdir(parents=True, exist_ok=True)
            made.add(split)
        Image.fromarray(a).save(folder / rel)
        samples.append(Sample(image=rel, score=float(label), ref_id=ident, split=split))
    meta = DatasetMeta(name=name, task="classification", score_name="label",
                       score_range=(0.0, float(len(classes) - 1)), higher_is_better=True, source=source,
                       notes=notes, extra={"classes": list(classes), "channels": channels, **(extra or {})})
    write_dataset(folder, samples, meta)
    return samples
