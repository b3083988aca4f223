"""Prepare MNIST (LeCun, Bottou, Bengio & Haffner 1998) into ``<data root>/mnist/``.

MNIST: 70,000 greyscale 28x28 handwritten digits, 60,000 for training and
10,000 for testing, labels 0..9. (Not Fashion-MNIST, which ships the same file
names and format: Debian's ``dataset-fashion-mnist`` package holds
Fashion-MNIST, clothes, and is *not* a substitute. This script refuses a file
whose MD5 is not MNIST's.)

Official files, the four gzipped IDX files of http://yann.lecun.com/exdb/mnist/:

* ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``
* ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``

They are downloaded from the mirror torchvision uses
(``https://ossci-datasets.s3.amazonaws.com/mnist/``; the original site often
refuses scripted downloads) and checked against the MD5 checksums published
with torchvision's MNIST loader, besides the SHA-256 recorded on first use.

IDX format: big-endian; an image file starts with the magic number 2051, the
count, 28, 28, then ``count·28·28`` unsigned bytes; a label file with 2049,
the count, then ``count`` bytes.

Result: ``images/train/train-00000.png`` ... ``images/test/test-09999.png``
(greyscale PNG), ``manifest.csv`` (score = label, ref_id = image id, split =
train/test as published; no validation split) and ``dataset.json`` (task
``classification``, ``extra.classes`` = "0".."9", ``extra.channels`` = 1).

Usage: ``python data_scripts/mnist.py [--data-root DIR] [--archive-dir DIR] [--force]``.
Load it with ``robustbook.data.classification.load_classification("mnist", "train")``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

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
    output_folder,
    record_archives,
    split_counts,
)

from robustbook.atomic import atomic_dir  # noqa: E402
from robustbook.data import idx  # noqa: E402
from robustbook.data.classification import verify_md5, write_classification  # noqa: E402
from robustbook.data.download import ArchiveError, download  # noqa: E402

NAME = "mnist"
MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FILES = {
    ("train", "images"): ArchiveSpec("train-images-idx3-ubyte.gz", MIRROR + "train-images-idx3-ubyte.gz"),
    ("train", "labels"): ArchiveSpec("train-labels-idx1-ubyte.gz", MIRROR + "train-labels-idx1-ubyte.gz"),
    ("test", "images"): ArchiveSpec("t10k-images-idx3-ubyte.gz", MIRROR + "t10k-images-idx3-ubyte.gz"),
    ("test", "labels"): ArchiveSpec("t10k-labels-idx1-ubyte.gz", MIRROR + "t10k-labels-idx1-ubyte.gz"),
}
#: the MD5 checksums of the official files (as published with torchvision's MNIST loader)
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
COUNTS = {"train": 60000, "test": 10000}
CLASSES = tuple(str(d) for d in range(10))


class IDXError(ArchiveError):
    """An IDX file is truncated or has the wrong magic number or shape."""


def read_idx(path: Path, kind: str) -> np.ndarray:
    """Read a gzipped IDX file (:func:`robustbook.data.idx.read_idx`), its errors as :class:`IDXError`."""
    try:
        return idx.read_idx(path, kind)
    except ValueError as exc:
        raise IDXError(str(exc)) from None


def check_arrays(arrays: dict, files: dict, set_name: str, expected_counts: dict[str, int] | None) -> None:
    """The train/test IDX arrays of an MNIST-format set: 28×28 images, one label 0..9 each, the set's counts."""
    for split in ("train", "test"):
        images, labels = arrays[(split, "images")], arrays[(split, "labels")]
        if images.shape[1:] != (28, 28):
            raise IDXError(f"{files[(split, 'images')].filename}: images are {images.shape[1:]}, expected (28, 28)")
        if len(images) != len(labels):
            raise IDXError(f"{split}: {len(images)} images but {len(labels)} labels")
        if expected_counts is not None and len(images) != expected_counts[split]:
            raise IDXError(f"{split}: {len(images)} images, {set_name} has {expected_counts[split]}")
        if labels.max(initial=0) > 9:
            raise IDXError(f"{files[(split, 'labels')].filename}: label {labels.max()} outside 0..9")


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            force: bool = False, download_fn: DownloadFn | None = None, check_official: bool = True,
            expected_counts: dict[str, int] | None = COUNTS) -> Path:
    """Download (if needed), verify, decode and index MNIST; return ``<data root>/mnist``.

    ``check_official=False`` skips the official MD5 check and ``expected_counts=None`` the
    60,000/10,000 count check (tests run on tiny archives in the official format).
    """
    out, archives, keep = output_folder(NAME, data_root, archive_dir, force)
    if keep:
        return out
    fetch = download_fn or download
    paths = {key: fetch_archive(spec, archives, fetch) for key, spec in FILES.items()}
    if check_official:
        for path in paths.values():
            verify_md5(path, MD5[path.name])
    arrays = {key: read_idx(path, key[1]) for key, path in paths.items()}
    check_arrays(arrays, FILES, "MNIST", expected_counts)

    with atomic_dir(out) as tmp:
        samples = write_classification(
            tmp, array_items({sp: (arrays[(sp, "images")], arrays[(sp, "labels")]) for sp in ("train", "test")}),
            name=NAME, classes=CLASSES, channels=1,
            source="MNIST (LeCun et al. 1998), http://yann.lecun.com/exdb/mnist/",
            notes="Official train (60,000) / test (10,000) split; no validation split. score = digit label.",
            extra={"archives": {p.name: archive_digest(p, FILES[k]) for k, p in paths.items()},
                   "md5_checked": check_official})
    record_archives(*paths.values())  # trusted on first use only now that they were decoded
    counts = split_counts(samples, ("train", "test"))
    print(f"{NAME}: {len(samples)} images, split {counts}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    return archive_main("Download, verify and index MNIST into <data root>/mnist/.", prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
