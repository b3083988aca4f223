"""Prepare Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) into ``<data root>/fashion_mnist/``.

Fashion-MNIST: 70,000 greyscale 28x28 images of clothes in 10 classes, 60,000 for
training and 10,000 for testing, in MNIST's IDX format and file names. Used by the
CIFS chapter (source 003, appendix 4.6.4).

Official files, the four gzipped IDX files of https://github.com/zalandoresearch/fashion-mnist,
downloaded from the official mirror ``http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/``
and checked against the MD5 checksums published with torchvision's FashionMNIST loader
(besides the SHA-256 recorded on first use):

* ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``
* ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``

**Offline**: with ``--from-debian`` (or when the archive folder is empty and Debian's
``dataset-fashion-mnist`` package is installed), the files are copied from
``/usr/share/datasets/fashion-mnist`` instead of downloaded. Debian recompressed them, so
their MD5 differs from the official one; the script then checks the decoded content
instead (magic numbers, 28x28, 60,000/10,000 images, labels 0..9) and records
``"source": "debian"`` in ``dataset.json``. (The chapter can also read Debian's files
directly without this script: :func:`robustbook.data.fashion_mnist`.)

Result: ``images/train/train-00000.png`` ... ``images/test/test-09999.png``, ``manifest.csv``
(score = label, split = train/test as published) and ``dataset.json`` (task
``classification``, ``extra.classes`` = the ten class names, ``extra.channels`` = 1).

Usage: ``python data_scripts/fashion_mnist.py [--data-root DIR] [--archive-dir DIR] [--force] [--from-debian]``.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # run as a script or loaded by path: find _common
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ArchiveSpec,
    DownloadFn,
    archive_digest,
    array_items,
    base_parser,
    ensure_writable_dir,
    fetch_archive,
    output_folder,
    record_archives,
    run,
    split_counts,
)
from mnist import IDXError as IDXError  # noqa: E402  (re-exported: the error this script raises)
from mnist import check_arrays, read_idx  # noqa: E402

from robustbook.atomic import atomic_dir  # noqa: E402
from robustbook.data.classification import verify_md5, write_classification  # noqa: E402
from robustbook.data.download import download  # noqa: E402
from robustbook.data.fmnist import CLASSES, DEBIAN_DIR  # noqa: E402

NAME = "fashion_mnist"
MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FILES = {key: ArchiveSpec(fn, MIRROR + fn) for key, fn in {
    ("train", "images"): "train-images-idx3-ubyte.gz", ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz", ("test", "labels"): "t10k-labels-idx1-ubyte.gz"}.items()}
#: MD5 of the official files (as published with torchvision's FashionMNIST loader)
MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
COUNTS = {"train": 60000, "test": 10000}


def _copy_from(folder: Path, archives: Path) -> None:
    """Copy the four IDX files from ``folder`` (Debian's package) into the archive folder."""
    missing = [s.filename for s in FILES.values() if not (folder / s.filename).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {missing}; install Debian's package: "
                                "apt-get install dataset-fashion-mnist")
    ensure_writable_dir(archives, "archive folder", "--archive-dir DIR (or --data-root DIR)")
    for spec in FILES.values():
        if not (archives / spec.filename).is_file():
            shutil.copyfile(folder / spec.filename, archives / spec.filename)


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            force: bool = False, download_fn: DownloadFn | None = None, check_official: bool = True,
            expected_counts: dict[str, int] | None = COUNTS, from_debian: bool | None = None,
            debian_dir: Path = DEBIAN_DIR) -> Path:
    """Get (download, or copy from Debian's package), verify, decode and index Fashion-MNIST.

    ``from_debian=None`` copies from ``debian_dir`` when the archive folder lacks the files and
    Debian's copy exists; ``True`` insists on it; ``False`` downloads. The official MD5 check
    applies to downloaded files only (``check_official=False`` skips it; tests use tiny files).
    """
    out, archives, keep = output_folder(NAME, data_root, archive_dir, force)
    if keep:
        return out
    have = all((archives / s.filename).is_file() for s in FILES.values())
    debian = from_debian is True or (from_debian is None and not have
                                     and all((debian_dir / s.filename).is_file() for s in FILES.values()))
    if debian:
        _copy_from(debian_dir, archives)
    fetch = download_fn or download
    paths = {key: fetch_archive(spec, archives, fetch) for key, spec in FILES.items()}
    if check_official and not debian:
        for path in paths.values():
            verify_md5(path, MD5[path.name])
    arrays = {key: read_idx(path, key[1]) for key, path in paths.items()}
    check_arrays(arrays, FILES, "Fashion-MNIST", expected_counts)
    with atomic_dir(out) as tmp:
        samples = write_classification(
            tmp, array_items({sp: (arrays[(sp, "images")], arrays[(sp, "labels")]) for sp in ("train", "test")}),
            name=NAME, classes=CLASSES, channels=1,
            source="Fashion-MNIST (Xiao et al. 2017), https://github.com/zalandoresearch/fashion-mnist",
            notes="Official train (60,000) / test (10,000) split; no validation split. score = class label.",
            extra={"archives": {p.name: archive_digest(p, FILES[k]) for k, p in paths.items()},
                   "md5_checked": check_official and not debian, "source": "debian" if debian else "download"})
    record_archives(*paths.values())
    print(f"{NAME}: {len(samples)} images, split {split_counts(samples, ('train', 'test'))}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = base_parser("Download (or copy from Debian's dataset-fashion-mnist), verify and index "
                         "Fashion-MNIST into <data root>/fashion_mnist/.")
    parser.add_argument("--from-debian", action="store_true",
                        help=f"copy the files from {DEBIAN_DIR} (apt-get install dataset-fashion-mnist)")
    args = parser.parse_args(argv)
    return run(lambda: prepare(args.data_root, args.archive_dir, args.force,
                               from_debian=True if args.from_debian else None))


if __name__ == "__main__":
    sys.exit(main())
