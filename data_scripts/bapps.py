"""Prepare BAPPS 2AFC (Zhang, Isola, Efros, Shechtman & Wang, CVPR 2018) into ``<data root>/bapps/``.

BAPPS' two-alternative forced choice part: triplets of 64x64 patches, a reference and two
distorted versions ``p0`` and ``p1``, with ``judge`` = the fraction of people who found ``p1``
closer to the reference. Source 002 reports 2AFC accuracy on its test (``val``) part in Tables
7 and 9. A metric's 2AFC score on a triplet is ``judge`` when it prefers ``p1`` and
``1 − judge`` when it prefers ``p0`` (LPIPS's protocol).

Official files (https://github.com/richzhang/PerceptualSimilarity, ``scripts/download_dataset.sh``):
``twoafc_train.tar.gz`` and ``twoafc_val.tar.gz``, holding
``dataset/2afc/{train,val}/<category>/{ref,p0,p1}/<id>.png`` and ``.../judge/<id>.npy``
(categories: train ``traditional, cnn, mix``; val ``traditional, cnn, superres, deblur,
color, frameinterp``).

Result: ``2afc/`` as published, ``triplets.csv`` (split, category, id, reference, p0, p1, judge),
``manifest.csv`` (one row per triplet: image = ``p0``, reference = ``ref``, score = judge,
ref_id = ``<part>/<category>/<id>``, distortion = category; the data layer's manifest holds one
image per row, so ``p1`` is in ``triplets.csv``) and ``dataset.json``. Split: official; BAPPS'
``train`` is ``train`` and its ``val`` (the test set of LPIPS and source 002) is ``test``.
``--parts val`` prepares the test part only (the training archive is large).

Usage: ``python data_scripts/bapps.py [--data-root DIR] [--archive-dir DIR] [--force] [--parts train,val]``.
The data set's terms apply: see data_scripts/README.md.
"""
from __future__ import annotations

import csv
import os
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
    prepare_fr,
    run,
)

from robustbook.data.download import ArchiveError, download, extract  # noqa: E402
from robustbook.data.manifest import DatasetMeta, Sample  # noqa: E402

NAME = "bapps"
HOMEPAGE = "https://github.com/richzhang/PerceptualSimilarity"
_BASE = "https://people.eecs.berkeley.edu/~rich.zhang/projects/2018_perceptual/dataset"
ARCHIVES = {"train": ArchiveSpec("twoafc_train.tar.gz", f"{_BASE}/twoafc_train.tar.gz"),
            "val": ArchiveSpec("twoafc_val.tar.gz", f"{_BASE}/twoafc_val.tar.gz")}
SPLIT_OF = {"train": "train", "val": "test"}
TRIPLETS_FILE = "triplets.csv"


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            seed: int = 0, force: bool = False, download_fn: DownloadFn | None = None, *,
            parts: tuple[str, ...] = ("train", "val")) -> Path:
    """Download (if needed), verify, extract and index BAPPS 2AFC ``parts``; return ``<data root>/bapps``."""
    parts = tuple(parts)
    if not parts or any(p not in ARCHIVES for p in parts):
        raise ValueError(f"parts must be a non-empty subset of {sorted(ARCHIVES)}, got {parts}")

    def build(tmp: Path, sources: list[Path]) -> tuple[list[Sample], DatasetMeta]:
        for part, archive in zip(parts, sources, strict=True):
            prefix = find_folder_prefix(archive, part)
            if not prefix.endswith(f"2afc/{part}/"):
                raise ArchiveError(f"archive {archive} has no folder 2afc/{part}/: it is not the expected archive; "
                                   f"delete it and download it again")
            extract(archive, tmp / "2afc" / part, members_prefix=prefix)
        samples, triplets = _index(tmp, parts)
        meta = DatasetMeta(
            name=NAME, task="fr-iqa", score_name="2AFC judge (fraction preferring p1)", score_range=(0.0, 1.0),
            higher_is_better=True, source=f"BAPPS 2AFC (Zhang et al., CVPR 2018), {HOMEPAGE}",
            notes=("Each row is a triplet: image = p0, reference = ref, score = judge (the fraction of people who "
                   f"found p1 closer); p1 is in {TRIPLETS_FILE}. Official split: BAPPS train = train, BAPPS val = "
                   "test. Not a quality score: read the triplets with robustbook.data.twoafc."),
            extra={"split": "official (BAPPS train -> train, val -> test)", "parts": list(parts),
                   "triplets_file": TRIPLETS_FILE, "n_triplets": len(triplets)})
        return samples, meta

    return prepare_fr(NAME, data_root=data_root, archive_dir=archive_dir, force=force,
                      specs=[ARCHIVES[p] for p in parts], download_fn=download_fn or download, homepage=HOMEPAGE,
                      build=build)


def _index(folder: Path, parts: tuple[str, ...]) -> tuple[list[Sample], list[list[str]]]:
    import numpy as np

    samples, triplets = [], []
    for part in parts:
        root = folder / "2afc" / part
        for cat in sorted(p.name for p in root.iterdir() if p.is_dir()):
            judge_dir = root / cat / "judge"
            if not judge_dir.is_dir():
                raise ArchiveError(f"2afc/{part}/{cat}/ has no judge/ folder: it is not the expected archive")
            for j in sorted(judge_dir.glob("*.npy")):
                rel = {k: f"2afc/{part}/{cat}/{k}/{j.stem}.png" for k in ("ref", "p0", "p1")}
                for k, r in rel.items():
                    if not (folder / r).is_file():
                        raise LabelFileError(f"2afc/{part}/{cat}/judge/{j.name}: its {k} image {r} is missing")
                try:
                    h = np.load(j, allow_pickle=False).ravel()
                except (ValueError, OSError) as exc:
                    raise LabelFileError(f"2afc/{part}/{cat}/judge/{j.name} is not a NumPy file ({exc})") from None
                if h.size != 1 or not 0.0 <= float(h[0]) <= 1.0:
                    raise LabelFileError(f"2afc/{part}/{cat}/judge/{j.name}: expected one fraction in [0, 1], "
                                         f"got {h.tolist()[:4]}")
                ident = f"{part}/{cat}/{j.stem}"
                triplets.append([SPLIT_OF[part], cat, j.stem, rel["ref"], rel["p0"], rel["p1"], f"{float(h[0]):.6g}"])
                samples.append(Sample(image=rel["p0"], reference=rel["ref"], score=float(h[0]), ref_id=ident,
                                      split=SPLIT_OF[part], distortion=cat, level=-1))
    if not samples:
        raise LabelFileError("the BAPPS archives hold no judged triplet: they are not the official archives")
    with (folder / TRIPLETS_FILE).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["split", "category", "id", "reference", "p0", "p1", "judge"])
        w.writerows(triplets)
    return samples, triplets


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (``--seed`` is accepted and ignored: BAPPS has an official split)."""
    parser = base_parser("Download, verify and index BAPPS 2AFC into <data root>/bapps/.")
    parser.add_argument("--parts", default="train,val", help="comma-separated parts: train, val (default both)")
    args = parser.parse_args(argv)
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    if not parts or any(p not in ARCHIVES for p in parts):
        parser.error(f"--parts takes a comma-separated subset of {sorted(ARCHIVES)}, got {args.parts!r}")
    return run(lambda: prepare(data_root=args.data_root, archive_dir=args.archive_dir, force=args.force,
                               parts=parts))


if __name__ == "__main__":
    sys.exit(main())
