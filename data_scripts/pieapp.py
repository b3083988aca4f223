"""Prepare PieAPP (Prashnani et al., CVPR 2018) into ``<data root>/pieapp/``.

PieAPP: 200 reference images (256x256 patches of the Waterloo Exploration set) in an official
train / val / test split (160 train+val, 40 test); 20,280 distorted images labelled by pairwise
**probability of preference** (40 people per pair). Only the 40 test references carry per-image
scores (``ref_XXXX_per_image_score.csv``: a MAP-estimated Bradley-Terry **dissimilarity** to the
reference, the reference itself at 0; **lower is better**).

Official file (https://github.com/prashnani/PerceptualImageError, dataset README):
``all_data_PieAPP_dataset_CVPR_2018.zip`` holding ``reference_images/{train,val,test}/ref_<n>.png``,
``distorted_images/{split}/ref_<n>/distort_<n>_<type>_<inter|intra>_<id>.png`` and
``labels/{split}/ref_<n>_pairwise_labels.csv`` (reference, image A, image B, raw and, for
train/val, processed probability of preference for A), plus ``labels/test/ref_<n>_per_image_score.csv``
(reference, image, score).

Result: the three folders, ``manifest.csv`` with one row per test image that has a per-image score
(image, reference, score = dissimilarity, ref_id = ``ref_<n>``, split ``test``, distortion = the
type in the name; the official split: train/val references have no per-image scores, so the
manifest holds the scored test set that source 002's Table 6 evaluates), ``pairs.csv`` (every
labelled pair of every split: split, ref_id, reference, image_a, image_b, p_a, with the processed
probability where there is one) and ``dataset.json``.

Usage: ``python data_scripts/pieapp.py [--data-root DIR] [--archive-dir DIR] [--force]``.
The data set's terms (non-commercial, educational use) apply: see data_scripts/README.md.
"""
from __future__ import annotations

import csv
import math
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
    base_parser,
    find_folder_prefix,
    parse_score,
    prepare_fr,
    run,
)

from robustbook.data.download import ArchiveError, download, extract  # noqa: E402
from robustbook.data.manifest import DatasetMeta, Sample  # noqa: E402

NAME = "pieapp"
HOMEPAGE = "https://github.com/prashnani/PerceptualImageError"
ARCHIVE = ArchiveSpec("all_data_PieAPP_dataset_CVPR_2018.zip",
                      "https://web.ece.ucsb.edu/~ekta/projects/PieAPPv0.1/all_data_PieAPP_dataset_CVPR_2018.zip")
FOLDERS = ("reference_images", "distorted_images", "labels")
SPLITS = {"train": "train", "val": "val", "test": "test"}
PAIRS_FILE = "pairs.csv"


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            seed: int = 0, force: bool = False, download_fn: DownloadFn | None = None) -> Path:
    """Download (if needed), verify, extract and index PieAPP; return ``<data root>/pieapp``."""
    def build(tmp: Path, sources: list[Path]) -> tuple[list[Sample], DatasetMeta]:
        src = _unpack(sources[0], tmp)
        for folder in FOLDERS:
            if not (src / folder).is_dir():
                raise ArchiveError(f"archive {sources[0]} has no folder {folder}/: it is not the expected archive; "
                                   f"delete it and download it again")
            os.replace(src / folder, tmp / folder)
        shutil.rmtree(src)
        samples, lo, hi, n_pairs = _index(tmp)
        meta = DatasetMeta(
            name=NAME, task="fr-iqa", score_name="dissimilarity (per-image score)", score_range=(lo, hi),
            higher_is_better=False, source=f"PieAPP (Prashnani et al., CVPR 2018), {HOMEPAGE}",
            notes=("Manifest: the official test split's per-image scores (Bradley-Terry dissimilarity to the "
                   "reference, reference = 0, lower is better); train/val carry only pairwise labels, in "
                   f"{PAIRS_FILE} ({n_pairs} pairs of all splits). score_range = (min(0, floor(min)), ceil(max))."),
            extra={"split": "official (train/val/test references); manifest = scored test images",
                   "pairs_file": PAIRS_FILE, "n_pairs": n_pairs})
        return samples, meta

    return prepare_fr(NAME, data_root=data_root, archive_dir=archive_dir, force=force, specs=[ARCHIVE],
                      download_fn=download_fn or download, homepage=HOMEPAGE, build=build)


def _unpack(archive: Path, tmp: Path) -> Path:
    prefix = find_folder_prefix(archive, "labels")[: -len("labels/")]
    return extract(archive, tmp / "_src", members_prefix=prefix or None)


def _rows(path: Path) -> list[list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = [[c.strip() for c in r] for r in csv.reader(fh)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LabelFileError(f"{path.name} is not a CSV label file ({exc}); delete the archive and download it "
                             f"again") from None
    return [r for r in rows[1:] if any(r)]


def _image(folder: Path, split: str, ref_stem: str, name: str, where: str) -> str:
    rel = f"reference_images/{split}/{name}" if name.startswith("ref") else \
        f"distorted_images/{split}/{ref_stem}/{name}"
    if not (folder / rel).is_file():
        raise LabelFileError(f"{where}: image {rel} is not in the archive")
    return rel


def _index(folder: Path) -> tuple[list[Sample], float, float, int]:
    pairs, samples = [], []
    for split in SPLITS:
        for label in sorted((folder / "labels" / split).glob("*_pairwise_labels.csv")):
            stem = label.name[: -len("_pairwise_labels.csv")]
            ref = f"reference_images/{split}/{stem}.png"
            for i, r in enumerate(_rows(label), start=2):
                where = f"labels/{split}/{label.name} line {i}"
                if len(r) < 4:
                    raise LabelFileError(f"{where}: expected reference, image A, image B, probability; got {r}")
                p = r[4] if len(r) > 4 and r[4] else r[3]
                if not p:
                    continue
                pairs.append([split, stem, ref, _image(folder, split, stem, r[1], where),
                              _image(folder, split, stem, r[2], where), parse_score(p, where=where, low=0, high=1)])
        for label in sorted((folder / "labels" / split).glob("*_per_image_score.csv")):
            stem = label.name[: -len("_per_image_score.csv")]
            for i, r in enumerate(_rows(label), start=2):
                where = f"labels/{split}/{label.name} line {i}"
                if len(r) < 3:
                    raise LabelFileError(f"{where}: expected reference, image, score; got {r}")
                if r[1].startswith("ref"):
                    continue  # the reference itself (score 0)
                score = parse_score(r[2], where=where, low=-math.inf, high=math.inf)
                samples.append(Sample(image=_image(folder, split, stem, r[1], where),
                                      reference=f"reference_images/{split}/{stem}.png", score=score, ref_id=stem,
                                      split=SPLITS[split], distortion=_kind(r[1]), level=-1))
    if not samples:
        raise LabelFileError("labels/test/ holds no per-image score file: it is not the official archive")
    with (folder / PAIRS_FILE).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["split", "ref_id", "reference", "image_a", "image_b", "p_a"])
        w.writerows(pairs)
    lo = min(0.0, math.floor(min(s.score for s in samples)))
    return samples, float(lo), float(max(math.ceil(max(s.score for s in samples)), lo + 1)), len(pairs)


def _kind(name: str) -> str:
    """``distort_0001_gaussian_noise_inter_3.png`` -> ``gaussian_noise``."""
    parts = Path(name).stem.split("_")
    for i, p in enumerate(parts):
        if p in ("inter", "intra"):
            return "_".join(parts[2:i])
    return ""


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (``--seed`` is accepted and ignored: PieAPP has an official split)."""
    args = base_parser("Download, verify and index PieAPP into <data root>/pieapp/.").parse_args(argv)
    return run(lambda: prepare(data_root=args.data_root, archive_dir=args.archive_dir, force=args.force))


if __name__ == "__main__":
    sys.exit(main())
