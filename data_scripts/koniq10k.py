"""Prepare KonIQ-10k (Hosu, Lin, Sziranyi & Saupe, IEEE TIP 2020) into ``<data root>/koniq10k/``.

KonIQ-10k: 10,073 in-the-wild photographs (1024x768 JPEG) with mean opinion
scores from crowd workers. No-reference IQA: every image is its own content.

Official files (https://database.mmsp-kn.de/koniq-10k-database.html):

* ``koniq10k_1024x768.zip``: the images, in a folder ``1024x768/`` (``826373.jpg``...);
* ``koniq10k_scores_and_distributions.zip``: ``koniq10k_scores_and_distributions.csv``
  with columns ``image_name, c1..c5, c_total, MOS, SD, MOS_zscore``
  (MOS on 1..5, higher is better; MOS_zscore rescaled to 0..100);
* the train/val/test split the authors used, ``koniq10k_distributions_sets.csv``
  (column ``set``: training/validation/test) from their repository
  https://github.com/subpic/koniq (folder ``metadata/``).

Result: ``images/<name>.jpg``, the label CSV as published, ``manifest.csv``
(score = MOS on 1..5, reference = "", ref_id = image name) and ``dataset.json``.

Split: the official one when the label file has a ``set`` column or
``koniq10k_distributions_sets.csv`` is in the archive folder or can be
downloaded; otherwise (offline, or ``--seeded-split``) a seeded 6:2:2 split of
the images with :func:`robustbook.data.manifest.split_by_reference`.
``dataset.json`` (``extra.split``) records which one was used.

Usage: ``python data_scripts/koniq10k.py [--data-root DIR] [--archive-dir DIR] [--seed 0] [--force]
[--seeded-split]``. The data set's terms apply: see data_scripts/README.md.
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
    base_parser,
    fetch_archive,
    find_file_prefix,
    find_folder_prefix,
    output_folder,
    parse_score,
    read_label_csv,
    record_archives,
    run,
    split_counts,
)

from robustbook.atomic import atomic_dir  # noqa: E402
from robustbook.data.download import DownloadError, download, extract  # noqa: E402
from robustbook.data.manifest import DatasetMeta, Sample, split_by_reference, write_dataset  # noqa: E402

NAME = "koniq10k"
HOMEPAGE = "https://database.mmsp-kn.de/koniq-10k-database.html"
IMAGES = ArchiveSpec("koniq10k_1024x768.zip", "https://datasets.vqa.mmsp-kn.de/archives/koniq10k_1024x768.zip")
SCORES = ArchiveSpec("koniq10k_scores_and_distributions.zip",
                     "https://datasets.vqa.mmsp-kn.de/archives/koniq10k_scores_and_distributions.zip")
SETS = ArchiveSpec("koniq10k_distributions_sets.csv",
                   "https://raw.githubusercontent.com/subpic/koniq/master/metadata/koniq10k_distributions_sets.csv")
IMAGE_FOLDER = "1024x768"
LABEL_FILE = "koniq10k_scores_and_distributions.csv"
SET_NAMES = {"training": "train", "train": "train", "validation": "val", "val": "val", "test": "test",
             "testing": "test"}
SCORE_RANGE = (1.0, 5.0)


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            seed: int = 0, force: bool = False, download_fn: DownloadFn | None = None,
            official_split: bool = True) -> Path:
    """Download (if needed), verify, extract and index KonIQ-10k; return ``<data root>/koniq10k``.

    A complete data set already there is returned untouched unless ``force``.
    ``download_fn(url, dest, *, sha256, size)`` defaults to
    :func:`robustbook.data.download.download`; it is called only for files not
    yet in ``archive_dir``. ``official_split=False`` skips the official split
    and uses the seeded 6:2:2 one.
    """
    out, archives, keep = output_folder(NAME, data_root, archive_dir, force)
    if keep:
        return out
    fetch = download_fn or download
    images_zip = fetch_archive(IMAGES, archives, fetch)
    scores_zip = fetch_archive(SCORES, archives, fetch)
    with atomic_dir(out) as tmp:
        extract(images_zip, tmp / "images", members_prefix=find_folder_prefix(images_zip, IMAGE_FOLDER))
        extract(scores_zip, tmp / "_labels", members_prefix=find_file_prefix(scores_zip, LABEL_FILE) or None)
        os.replace(tmp / "_labels" / LABEL_FILE, tmp / LABEL_FILE)
        shutil.rmtree(tmp / "_labels")
        rows, columns = read_label_csv(tmp / LABEL_FILE, ("image_name", "MOS"))
        splits, split_note = _splits(rows, columns, archives, fetch, seed, official_split)
        samples, unlabelled = _samples(rows, splits, tmp)
        meta = DatasetMeta(
            name=NAME, task="nr-iqa", score_name="MOS", score_range=SCORE_RANGE, higher_is_better=True,
            source=f"KonIQ-10k (Hosu et al., IEEE TIP 2020), {HOMEPAGE}",
            notes=("Mean opinion score on 1..5 (column MOS; MOS_zscore, rescaled 0..100, is kept in "
                   f"{LABEL_FILE}). No-reference: each image is its own content (ref_id = image name). "
                   f"Split: {split_note}."),
            extra={"split": split_note, "seed": seed, "label_file": LABEL_FILE,
                   "images_without_label": unlabelled,
                   "archives": {p.name: archive_digest(p, s) for p, s in ((images_zip, IMAGES),
                                                                          (scores_zip, SCORES))}})
        write_dataset(tmp, samples, meta)
    record_archives(images_zip, scores_zip, archives / SETS.filename)  # trusted now that they proved good
    counts = split_counts(samples)
    print(f"{NAME}: {len(samples)} images, split {counts} ({split_note})", file=sys.stderr)
    return out


def _splits(rows: list[dict[str, str]], columns: list[str], archives: Path, fetch: DownloadFn, seed: int,
            official_split: bool) -> tuple[dict[str, str], str]:
    """``{image_name: split}`` and a note saying where the split comes from."""
    names = [r["image_name"] for r in rows]
    if official_split:
        source = None
        if "set" in columns:
            source, set_rows = LABEL_FILE, rows
        else:
            try:
                sets_csv = fetch_archive(SETS, archives, fetch)
            except DownloadError as exc:
                print(f"warning: the official KonIQ split file could not be had ({exc}).\nUsing the seeded 6:2:2 "
                      f"split instead; place {SETS.filename} in {archives} and rerun with --force for the "
                      f"official split.", file=sys.stderr)
            else:
                source = SETS.filename
                set_rows, _ = read_label_csv(sets_csv, ("image_name", "set"))
        if source is not None:
            by_name = {r["image_name"]: r["set"] for r in set_rows}
            out = {}
            for n in names:
                if n not in by_name:
                    raise LabelFileError(f"{source} has no split for image {n!r}")
                if by_name[n].lower() not in SET_NAMES:
                    raise LabelFileError(f"{source}: image {n!r} has set {by_name[n]!r}; expected one of "
                                         f"training/validation/test")
                out[n] = SET_NAMES[by_name[n].lower()]
            return out, f"official KonIQ-10k split (column 'set' of {source})"
    return (split_by_reference(names, (0.6, 0.2, 0.2), seed=seed),
            f"seeded 6:2:2 split of the images (split_by_reference, seed={seed})")


def _samples(rows: list[dict[str, str]], splits: dict[str, str], folder: Path) -> tuple[list[Sample], int]:
    """One sample per labelled image; the number of extracted images that have no label."""
    samples: list[Sample] = []
    seen: set[str] = set()
    for i, r in enumerate(rows, start=2):
        name = r["image_name"]
        where = f"{LABEL_FILE} line {i}"
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise LabelFileError(f"{where}: image name {name!r} is not a plain file name")
        if name in seen:
            raise LabelFileError(f"{where}: image {name!r} is listed twice")
        seen.add(name)
        if not (folder / "images" / name).is_file():
            raise LabelFileError(f"{where}: image {name!r} is not in {IMAGES.filename}; the archives do not match")
        score = parse_score(r["MOS"], where=where, low=SCORE_RANGE[0], high=SCORE_RANGE[1])
        samples.append(Sample(image=f"images/{name}", score=score, ref_id=name, split=splits[name]))
    unlabelled = sum(1 for p in (folder / "images").iterdir() if p.name not in seen)
    return samples, unlabelled


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = base_parser("Download, verify and index KonIQ-10k into <data root>/koniq10k/.")
    parser.add_argument("--seeded-split", action="store_true",
                        help="use a seeded 6:2:2 split instead of the official KonIQ split")
    args = parser.parse_args(argv)
    return run(lambda: prepare(data_root=args.data_root, archive_dir=args.archive_dir, seed=args.seed,
                               force=args.force, official_split=not args.seeded_split))


if __name__ == "__main__":
    sys.exit(main())
