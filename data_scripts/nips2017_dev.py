"""Prepare the NIPS 2017 adversarial-competition development set into ``<data root>/nips2017_dev/``.

The development set of the NIPS 2017 "Adversarial Attacks and Defenses" competition (Kurakin,
Goodfellow, Bengio et al., "Adversarial Attacks and Defences Competition", 2018): 1,000 ImageNet-
compatible PNG images, 299 x 299, with their true class and a target class for targeted attacks.
Source 001 (and the MSU metrics-robustness benchmark, Antsiferova et al., AAAI 2024) measure
robustness on it: the robustness scores need no opinion scores, only clean and attacked predictions.

Official files: Kaggle's data set ``google-brain/nips-2017-adversarial-learning-development-set``,
one archive ``nips-2017-adversarial-learning-development-set.zip`` holding ``images/<ImageId>.png``
and ``images.csv`` with columns ``ImageId, URL, x1, y1, x2, y2, TrueLabel, TargetClass,
OriginalLandingURL, License, Author, AuthorProfileURL`` (labels in the 1..1000 indexing of
Inception-v3's 1,001 outputs, 0 = background). Kaggle may ask for an account: if the download
fails, download the archive by hand and put it in the archive folder (``--archive-dir``); it is
verified on first use (trust-on-first-use SHA-256 record, like every archive without a published digest).

Result: ``images/<ImageId>.png``, ``images.csv`` as published, ``manifest.csv`` (task
``classification``: score = TrueLabel, ref_id = ImageId, split = ``test`` for every image, since
the set is for evaluation only) and ``dataset.json`` (``extra.target_class`` per image).

Usage: ``python data_scripts/nips2017_dev.py [--data-root DIR] [--archive-dir DIR] [--force]``.
The images' own licences apply (column ``License`` of images.csv).
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
    LabelFileError,
    archive_digest,
    archive_main,
    fetch_archive,
    find_file_prefix,
    find_folder_prefix,
    output_folder,
    parse_score,
    read_label_csv,
    record_archives,
    split_counts,
)

from robustbook.atomic import atomic_dir  # noqa: E402
from robustbook.data.download import download, extract  # noqa: E402
from robustbook.data.manifest import DatasetMeta, Sample, write_dataset  # noqa: E402

NAME = "nips2017_dev"
ARCHIVE = ArchiveSpec("nips-2017-adversarial-learning-development-set.zip",
                      "https://www.kaggle.com/api/v1/datasets/download/google-brain/"
                      "nips-2017-adversarial-learning-development-set")
IMAGE_FOLDER = "images"
LABEL_FILE = "images.csv"
LABEL_RANGE = (0.0, 1000.0)


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            force: bool = False, download_fn: DownloadFn | None = None) -> Path:
    """Download (if needed), verify, extract and index the development set; return ``<data root>/nips2017_dev``."""
    out, archives, keep = output_folder(NAME, data_root, archive_dir, force)
    if keep:
        return out
    archive = fetch_archive(ARCHIVE, archives, download_fn or download)
    with atomic_dir(out) as tmp:
        extract(archive, tmp / "images", members_prefix=find_folder_prefix(archive, IMAGE_FOLDER))
        extract(archive, tmp / "_labels", members_prefix=find_file_prefix(archive, LABEL_FILE) or None)
        os.replace(tmp / "_labels" / LABEL_FILE, tmp / LABEL_FILE)
        shutil.rmtree(tmp / "_labels")
        rows, _ = read_label_csv(tmp / LABEL_FILE, ("ImageId", "TrueLabel", "TargetClass"))
        samples, targets = _samples(rows, tmp)
        meta = DatasetMeta(
            name=NAME, task="classification", score_name="label", score_range=LABEL_RANGE, higher_is_better=True,
            source="NIPS 2017 adversarial competition, development set (Kaggle google-brain/"
                   "nips-2017-adversarial-learning-development-set)",
            notes=("1,000 PNG images, 299x299; score = TrueLabel (Inception-v3 indexing, 1..1000). Every image is "
                   "in the test split: the set is for evaluating robustness, not for training."),
            extra={"target_class": targets, "label_file": LABEL_FILE,
                   "archives": {archive.name: archive_digest(archive, ARCHIVE)}})
        write_dataset(tmp, samples, meta)
    record_archives(archive)
    print(f"{NAME}: {len(samples)} images, split {split_counts(samples)}", file=sys.stderr)
    return out


def _samples(rows: list[dict[str, str]], folder: Path) -> tuple[list[Sample], dict[str, int]]:
    samples: list[Sample] = []
    targets: dict[str, int] = {}
    for i, r in enumerate(rows, start=2):
        ident = r["ImageId"]
        where = f"{LABEL_FILE} line {i}"
        if not ident or "/" in ident or "\\" in ident or ident.startswith("."):
            raise LabelFileError(f"{where}: ImageId {ident!r} is not a plain file name")
        if ident in targets:
            raise LabelFileError(f"{where}: ImageId {ident!r} is listed twice")
        if not (folder / "images" / f"{ident}.png").is_file():
            raise LabelFileError(f"{where}: image {ident}.png is not in {ARCHIVE.filename}; the archive does not match")
        label = parse_score(r["TrueLabel"], where=where, low=LABEL_RANGE[0], high=LABEL_RANGE[1])
        target = parse_score(r["TargetClass"], where=where, low=LABEL_RANGE[0], high=LABEL_RANGE[1])
        if label != int(label) or target != int(target):
            raise LabelFileError(f"{where}: TrueLabel and TargetClass must be whole numbers, got {r['TrueLabel']!r}, "
                                 f"{r['TargetClass']!r}")
        targets[ident] = int(target)
        samples.append(Sample(image=f"images/{ident}.png", score=int(label), ref_id=ident, split="test"))
    return samples, targets


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (``--seed`` is accepted and ignored: every image is a test image)."""
    return archive_main("Download, verify and index the NIPS 2017 adversarial-competition development set.",
                        prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
