"""Prepare SVHN, cropped digits (Netzer, Wang, Coates, Bissacco, Wu & Ng 2011), into ``<data root>/svhn/``.

The Street View House Numbers, "format 2" (cropped digits): colour 32x32
images centred on one digit, 73,257 for training and 26,032 for testing
(the 531,131 "extra" images are not used; source 003 trains on ``train``).

Official files (http://ufldl.stanford.edu/housenumbers/), MATLAB v5 ``.mat``:

* ``train_32x32.mat``, ``test_32x32.mat`` — variables ``X`` (uint8,
  ``32 x 32 x 3 x N``) and ``y`` (``N x 1``, labels 1..10 where **10 means the
  digit 0**; the script stores label ``y mod 10``, so label = digit).

Both are checked against the MD5 checksums published with torchvision's SVHN
loader, besides the SHA-256 recorded on first use.

Result: ``images/train/train-00000.png`` ..., ``images/test/test-00000.png`` ...
(RGB PNG), ``manifest.csv`` (score = digit label, ref_id = image id, split =
train/test as published) and ``dataset.json`` (task ``classification``,
``extra.classes`` = "0".."9", ``extra.channels`` = 3).

Usage: ``python data_scripts/svhn.py [--data-root DIR] [--archive-dir DIR] [--force]``.
Terms: "for non-commercial use only" (see the page above); cite Netzer et al. (2011).
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
from robustbook.data.classification import verify_md5, write_classification  # noqa: E402
from robustbook.data.download import ArchiveError, download  # noqa: E402

NAME = "svhn"
BASE = "http://ufldl.stanford.edu/housenumbers/"
FILES = {
    "train": ArchiveSpec("train_32x32.mat", BASE + "train_32x32.mat"),
    "test": ArchiveSpec("test_32x32.mat", BASE + "test_32x32.mat"),
}
#: the MD5 checksums of the official files (as published with torchvision's SVHN loader)
MD5 = {"train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373", "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3"}
COUNTS = {"train": 73257, "test": 26032}
CLASSES = tuple(str(d) for d in range(10))


class MatFileError(ArchiveError):
    """A .mat file cannot be read or lacks the variables X and y of the official files."""


def read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 32, 32, 3) uint8, labels (N,) in 0..9)`` from an official ``*_32x32.mat``."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises ValueError, MatReadError, OSError... for a bad file
        raise MatFileError(f"{path} is not a readable MATLAB v5 file ({exc}); delete it and download it again") \
            from None
    if "X" not in mat or "y" not in mat:
        has = sorted(k for k in mat if not k.startswith("__"))
        raise MatFileError(f"{path} lacks the variables X and y (has {has}); "
                           f"it is not an SVHN cropped-digits file")
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.dtype != np.uint8:
        raise MatFileError(f"{path}: X has shape {x.shape} and dtype {x.dtype}; expected uint8 32x32x3xN")
    if x.shape[3] != len(y):
        raise MatFileError(f"{path}: {x.shape[3]} images but {len(y)} labels")
    if len(y) and (y.min() < 1 or y.max() > 10):
        raise MatFileError(f"{path}: labels must lie in 1..10 (10 = digit 0), got {y.min()}..{y.max()}")
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2)), (y % 10).astype(np.int64)


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            force: bool = False, download_fn: DownloadFn | None = None, check_official: bool = True,
            expected_counts: dict[str, int] | None = COUNTS) -> Path:
    """Download (if needed), verify, decode and index SVHN; return ``<data root>/svhn``.

    ``check_official=False`` skips the official MD5 check and ``expected_counts=None``
    the image counts (tests run on tiny files in the official format).
    """
    out, archives, keep = output_folder(NAME, data_root, archive_dir, force)
    if keep:
        return out
    fetch = download_fn or download
    paths = {split: fetch_archive(spec, archives, fetch) for split, spec in FILES.items()}
    if check_official:
        for path in paths.values():
            verify_md5(path, MD5[path.name])
    data = {split: read_mat(path) for split, path in paths.items()}
    if expected_counts is not None:
        for split, (x, _) in data.items():
            if len(x) != expected_counts[split]:
                raise MatFileError(f"{FILES[split].filename} holds {len(x)} images, SVHN's {split} set has "
                                   f"{expected_counts[split]}")

    with atomic_dir(out) as tmp:
        samples = write_classification(
            tmp, array_items({sp: data[sp] for sp in ("train", "test")}), name=NAME, classes=CLASSES, channels=3,
            source="SVHN cropped digits (Netzer et al. 2011), http://ufldl.stanford.edu/housenumbers/",
            notes=("Official train (73,257) / test (26,032) split of format 2 (extra not used); "
                   "score = digit label (the files' label 10 is stored as 0)."),
            extra={"archives": {p.name: archive_digest(p, FILES[k]) for k, p in paths.items()},
                   "md5_checked": check_official})
    record_archives(*paths.values())  # trusted on first use only now that they were decoded
    counts = split_counts(samples, ("train", "test"))
    print(f"{NAME}: {len(samples)} images, split {counts}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    return archive_main("Download, verify and index SVHN (cropped digits) into <data root>/svhn/.", prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
