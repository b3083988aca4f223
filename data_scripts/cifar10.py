"""Prepare CIFAR-10 (Krizhevsky 2009) into ``<data root>/cifar10/``.

CIFAR-10: 60,000 colour 32x32 images of 10 classes (airplane, automobile,
bird, cat, deer, dog, frog, horse, ship, truck), 50,000 for training and
10,000 for testing. Source 003 uses it in Table 3.8 (appendix 3.7.4).

Official file (https://www.cs.toronto.edu/~kriz/cifar.html):
``cifar-10-python.tar.gz`` (MD5 ``c58f30108f718f92721af3b95e74349a``, published
on that page), holding a folder ``cifar-10-batches-py/`` with

* ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``: Python pickles of a
  dict with ``b"data"`` (uint8 ``10000 x 3072``; each row the red, green and
  blue 32x32 planes in row-major order) and ``b"labels"`` (10,000 ints 0..9);
* ``batches.meta``: ``b"label_names"``, the class names in label order.

The pickles are read with an unpickler that accepts only what these files
contain (dicts, lists, bytes and NumPy arrays), never arbitrary objects, and
only after the archive passed its checksum.

Result: ``images/train/train-00000.png`` ... (the five training batches in
order), ``images/test/test-00000.png`` ..., ``manifest.csv`` (score = label,
ref_id = image id, split = train/test as published) and ``dataset.json``
(``extra.classes`` = the names of ``batches.meta``, ``extra.channels`` = 3).

Usage: ``python data_scripts/cifar10.py [--data-root DIR] [--archive-dir DIR] [--force]``.
"""
from __future__ import annotations

import os
import pickle
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:  # run as a script or loaded by path: find _common
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ArchiveSpec,
    DownloadFn,
    archive_digest,
    archive_main,
    array_items,
    fetch_archive,
    find_folder_prefix,
    output_folder,
    record_archives,
    split_counts,
)

from robustbook.atomic import atomic_dir  # noqa: E402
from robustbook.data.classification import verify_md5, write_classification  # noqa: E402
from robustbook.data.download import ArchiveError, download, extract  # noqa: E402

NAME = "cifar10"
ARCHIVE = ArchiveSpec("cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz")
MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
COUNTS = {"train": 50000, "test": 10000}

#: the only globals a CIFAR pickle may name (NumPy's array reconstruction)
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}


class BatchError(ArchiveError):
    """A CIFAR batch file is missing, not a pickle of the official layout, or names a forbidden object."""


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"a CIFAR batch must not reference {module}.{name}")
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module[len("numpy.core"):]
        return super().find_class(module, name)


def read_batch(path: Path) -> dict:
    """Unpickle one official batch file safely (bytes keys, as the Python 2 pickles have)."""
    if not path.is_file():
        raise BatchError(f"{path.name} is missing from {ARCHIVE.filename}: it is not the expected archive")
    try:
        with open(path, "rb") as fh:
            obj = _SafeUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise BatchError(f"{path.name} in {ARCHIVE.filename} is not a CIFAR batch pickle ({exc}); delete the "
                         f"archive and download it again") from None
    if not isinstance(obj, dict):
        raise BatchError(f"{path.name} holds a {type(obj).__name__}, not the dict of a CIFAR batch")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def batch_arrays(batch: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 32, 32, 3) uint8, labels (N,))`` of a batch dict."""
    if "data" not in batch or "labels" not in batch:
        raise BatchError(f"{name} lacks 'data' or 'labels' (has {sorted(batch)})")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise BatchError(f"{name}: data is {data.dtype} {data.shape}, expected uint8 N x 3072")
    if len(labels) != len(data):
        raise BatchError(f"{name}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise BatchError(f"{name}: labels outside 0..9")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            force: bool = False, download_fn: DownloadFn | None = None, check_official: bool = True,
            expected_counts: dict[str, int] | None = COUNTS) -> Path:
    """Download (if needed), verify, extract, decode and index CIFAR-10; return ``<data root>/cifar10``.

    ``check_official=False`` skips the official MD5 check and ``expected_counts=None``
    the image counts (tests run on a tiny archive in the official layout).
    """
    out, archives, keep = output_folder(NAME, data_root, archive_dir, force)
    if keep:
        return out
    archive = fetch_archive(ARCHIVE, archives, download_fn or download)
    if check_official:
        verify_md5(archive, MD5)
    with atomic_dir(out) as tmp:
        raw = tmp / "_raw"
        extract(archive, raw, members_prefix=find_folder_prefix(archive, FOLDER))
        names = read_batch(raw / META_FILE).get("label_names")
        if not isinstance(names, list) or len(names) != 10:
            raise BatchError(f"{META_FILE} must list 10 label_names, got {names!r}")
        classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        splits = {"train": [batch_arrays(read_batch(raw / b), b) for b in TRAIN_BATCHES],
                  "test": [batch_arrays(read_batch(raw / TEST_BATCH), TEST_BATCH)]}
        data = {sp: (np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts]))
                for sp, parts in splits.items()}
        shutil.rmtree(raw)
        if expected_counts is not None:
            for sp, (x, _) in data.items():
                if len(x) != expected_counts[sp]:
                    raise BatchError(f"the {sp} batches hold {len(x)} images, CIFAR-10 has {expected_counts[sp]}")
        samples = write_classification(
            tmp, array_items(data), name=NAME, classes=classes, channels=3,
            source="CIFAR-10 (Krizhevsky 2009), https://www.cs.toronto.edu/~kriz/cifar.html",
            notes="Official train (data_batch_1..5, 50,000) / test (test_batch, 10,000) split. score = label.",
            extra={"archives": {archive.name: archive_digest(archive, ARCHIVE)}, "md5_checked": check_official})
    record_archives(archive)  # trusted on first use only now that it was extracted and decoded
    counts = split_counts(samples, ("train", "test"))
    print(f"{NAME}: {len(samples)} images, split {counts}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    return archive_main("Download, verify and index CIFAR-10 into <data root>/cifar10/.", prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
