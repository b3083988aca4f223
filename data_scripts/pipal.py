"""Prepare PIPAL (Jinjin et al., ECCV 2020; NTIRE 2021 release) into ``<data root>/pipal/``.

PIPAL: 288x288 reference images, each distorted by traditional distortions and the outputs of
image-restoration (super-resolution, denoising, GAN) algorithms, rated by pairwise comparisons
turned into Elo scores. Full-reference IQA; the score is the published Elo-style MOS,
**higher is better** (roughly 900..1900).

Official files (https://github.com/HaomingCai/PIPAL-dataset, the NTIRE 2021 training release,
on a file-hosting page: place them by hand): ``Train_Ref.zip`` (``Train_Ref/A0001.bmp`` ... the
200 public references), ``Train_Dis.zip`` (``Train_Dis/A0001_00_00.bmp`` ... 23,200 distorted
images, named reference_group_index) and ``Train_Label.zip`` (``Train_Label/A0001.txt`` ... one
file per reference, lines ``A0001_00_00.bmp,1462.1``). Only the training part has public labels;
its validation and test parts (the source's 250 references count them) are not used.
``--extracted DIR`` takes a folder holding the three unpacked folders instead.

Result: ``Train_Ref/``, ``Train_Dis/``, ``Train_Label/``, ``manifest.csv`` (image = distorted
image, reference = its reference, ref_id = ``A0001``..., distortion = the middle number of the
name, level = -1), ``splits.csv`` (10 random 6:2:2 splits by reference: the public labels have
no official split) and ``dataset.json``; the manifest holds split ``--seed``. score_range is
``(floor(min), ceil(max))`` of the labels.

Usage: ``python data_scripts/pipal.py [--data-root DIR] [--archive-dir DIR] [--seed 0] [--force]
[--extracted DIR]``. The data set's terms apply: see data_scripts/README.md.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # run as a script or loaded by path: find _common
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ArchiveSpec,
    DownloadFn,
    LabelFileError,
    fr_parser,
    parse_score,
    prepare_fr,
    random_reference_splits,
    run,
)

from robustbook.data.download import ArchiveError, download, extract  # noqa: E402
from robustbook.data.manifest import DatasetMeta, Sample  # noqa: E402

NAME = "pipal"
HOMEPAGE = "https://github.com/HaomingCai/PIPAL-dataset"
FOLDERS = ("Train_Ref", "Train_Dis", "Train_Label")
ARCHIVES = [ArchiveSpec(f"{f}.zip", "") for f in FOLDERS]
_DIST = re.compile(r"(A\d{4})_(\d+)_(\d+)\.bmp", re.IGNORECASE)


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            seed: int = 0, force: bool = False, download_fn: DownloadFn | None = None, *,
            extracted: str | os.PathLike | None = None) -> Path:
    """Verify, extract and index PIPAL's labelled training release; return ``<data root>/pipal``."""
    def build(tmp: Path, sources: list[Path]) -> tuple[list[Sample], DatasetMeta]:
        for folder, archive in zip(FOLDERS, sources * 3 if extracted is not None else sources, strict=True):
            if extracted is not None:
                if not (archive / folder).is_dir():
                    raise ArchiveError(f"--extracted {archive} has no folder {folder}/")
                shutil.copytree(archive / folder, tmp / folder)
                continue
            extract(archive, tmp / "_x")
            hits = sorted((p for p in (tmp / "_x").rglob(folder) if p.is_dir()), key=lambda p: len(p.parts))
            if not hits:
                raise ArchiveError(f"archive {archive} has no folder {folder}/: it is not the expected archive; "
                                   f"delete it and download it again")
            os.replace(hits[0], tmp / folder)
            shutil.rmtree(tmp / "_x")
        samples, lo, hi = _samples(tmp, seed)
        meta = DatasetMeta(
            name=NAME, task="fr-iqa", score_name="MOS (Elo)", score_range=(lo, hi), higher_is_better=True,
            source=f"PIPAL (Jinjin et al., ECCV 2020), NTIRE 2021 training release, {HOMEPAGE}",
            notes=("Score: the Elo-style MOS of Train_Label/*.txt, higher is better; score_range = (floor(min), "
                   "ceil(max)). distortion = the middle number of the file name. No official split of the "
                   f"labelled part: splits.csv holds 10 random 6:2:2 splits by reference; the manifest holds seed "
                   f"{seed}'s."),
            extra={"split": f"random 6:2:2 by reference, seed {seed} of splits.csv", "seed": seed})
        return samples, meta

    src = Path(extracted).expanduser().resolve() if extracted is not None else None
    if src is not None and not all((src / f).is_dir() for f in FOLDERS):
        raise ArchiveError(f"--extracted {src} must hold the unpacked folders {', '.join(FOLDERS)}")
    return prepare_fr(NAME, data_root=data_root, archive_dir=archive_dir, force=force, specs=ARCHIVES,
                      download_fn=download_fn or download, homepage=HOMEPAGE, build=build, extracted=src)


def _samples(folder: Path, seed: int) -> tuple[list[Sample], float, float]:
    dists = {p.name.lower(): p.name for p in (folder / "Train_Dis").iterdir()}
    refs = {p.stem.upper(): p.name for p in (folder / "Train_Ref").iterdir()}
    parsed = []
    for label in sorted((folder / "Train_Label").glob("*.txt")):
        try:
            lines = label.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError:
            raise LabelFileError(f"{label.name} is not text: it is not the official label file") from None
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"Train_Label/{label.name} line {i}"
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != 2:
                raise LabelFileError(f"{where}: expected 'name,score', got {line!r}")
            m = _DIST.fullmatch(parts[0])
            if not m:
                raise LabelFileError(f"{where}: image name {parts[0]!r} is not like A0001_00_00.bmp")
            if parts[0].lower() not in dists:
                raise LabelFileError(f"{where}: image {parts[0]!r} is not in Train_Dis/")
            ref = m.group(1).upper()
            if ref not in refs:
                raise LabelFileError(f"{where}: reference {ref} is not in Train_Ref/")
            score = parse_score(parts[1], where=where, low=-math.inf, high=math.inf)
            parsed.append(Sample(image=f"Train_Dis/{dists[parts[0].lower()]}", reference=f"Train_Ref/{refs[ref]}",
                                 score=score, ref_id=ref, split="", distortion=m.group(2), level=-1))
    if not parsed:
        raise LabelFileError("Train_Label/ holds no labelled image: it is not the official release")
    splits = random_reference_splits([s.ref_id for s in parsed], seed, folder)
    lo, hi = math.floor(min(s.score for s in parsed)), math.ceil(max(s.score for s in parsed))
    return [dataclasses.replace(s, split=splits[s.ref_id]) for s in parsed], float(lo), float(max(hi, lo + 1))


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    args = fr_parser("Verify and index PIPAL's labelled training release into <data root>/pipal/.").parse_args(argv)
    return run(lambda: prepare(data_root=args.data_root, archive_dir=args.archive_dir, seed=args.seed,
                               force=args.force, extracted=args.extracted))


if __name__ == "__main__":
    sys.exit(main())
