"""Prepare TID2013 (Ponomarenko et al., EUVIP 2013) into ``<data root>/tid2013/``.

TID2013: 25 reference images (512x384; ``I01.BMP`` ... ``I25.BMP``) distorted by 24 types at 5
levels: 3,000 distorted images named ``i01_01_1.bmp`` (reference_type_level; the case of the
letter and of the extension varies). Full-reference IQA; MOS on 0..9, **higher is better**.

Official file (http://www.ponomarenko.info/tid2013.htm): ``tid2013.rar``, holding
``reference_images/``, ``distorted_images/`` and ``mos_with_names.txt`` (lines ``MOS name``).
Python cannot read RAR: the script runs ``unrar``, ``7z`` or ``bsdtar`` if one is installed;
otherwise extract it yourself and pass ``--extracted DIR``. A zip or tar repack of the same
folders named ``tid2013.rar`` is read directly.

Result: the two image folders, ``mos_with_names.txt``, ``manifest.csv`` (image = distorted image,
reference = its reference, ref_id = ``I01``..., distortion = type ``01``..``24``, level = 1..5),
``splits.csv`` (10 random 6:2:2 splits by reference: there is no official split) and
``dataset.json``; the manifest holds split ``--seed``.

Usage: ``python data_scripts/tid2013.py [--data-root DIR] [--archive-dir DIR] [--seed 0] [--force]
[--extracted DIR]``. The data set's terms apply: see data_scripts/README.md.
"""
from __future__ import annotations

import dataclasses
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
    source_folder,
    unpack,
)

from robustbook.data.download import ArchiveError, download  # noqa: E402
from robustbook.data.manifest import DatasetMeta, Sample  # noqa: E402

NAME = "tid2013"
HOMEPAGE = "http://www.ponomarenko.info/tid2013.htm"
ARCHIVE = ArchiveSpec("tid2013.rar", "http://www.ponomarenko.info/tid2013/tid2013.rar")
LABEL_FILE = "mos_with_names.txt"
SCORE_RANGE = (0.0, 9.0)
N_TYPES, N_LEVELS = 24, 5
_DIST = re.compile(r"i(\d\d)_(\d\d)_(\d)\.bmp", re.IGNORECASE)


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            seed: int = 0, force: bool = False, download_fn: DownloadFn | None = None, *,
            extracted: str | os.PathLike | None = None) -> Path:
    """Download (if needed), verify, extract and index TID2013; return ``<data root>/tid2013``."""
    def build(tmp: Path, sources: list[Path]) -> tuple[list[Sample], DatasetMeta]:
        src = sources[0] if extracted is not None else unpack(sources[0], tmp / "_src", LABEL_FILE)
        for folder in ("reference_images", "distorted_images"):
            if not (src / folder).is_dir():
                raise ArchiveError(f"the TID2013 release has no folder {folder}/ beside {LABEL_FILE}: it is not the "
                                   f"expected archive; delete it and download it again")
            (shutil.copytree if extracted is not None else os.replace)(src / folder, tmp / folder)
        shutil.copy2(src / LABEL_FILE, tmp / LABEL_FILE)
        if extracted is None:
            shutil.rmtree(src)
        samples = _samples(tmp, seed)
        meta = DatasetMeta(
            name=NAME, task="fr-iqa", score_name="MOS", score_range=SCORE_RANGE, higher_is_better=True,
            source=f"TID2013 (Ponomarenko et al. 2013), {HOMEPAGE}",
            notes=("Score: MOS of mos_with_names.txt on 0..9, higher is better. distortion = type 01..24, "
                   "level = 1..5. No official split: splits.csv holds 10 random 6:2:2 splits by reference "
                   f"(seeds 0..9); the manifest holds seed {seed}'s."),
            extra={"split": f"random 6:2:2 by reference, seed {seed} of splits.csv", "seed": seed,
                   "label_file": LABEL_FILE})
        return samples, meta

    src = source_folder(extracted, LABEL_FILE) if extracted is not None else None
    return prepare_fr(NAME, data_root=data_root, archive_dir=archive_dir, force=force, specs=[ARCHIVE],
                      download_fn=download_fn or download, homepage=HOMEPAGE, build=build, extracted=src)


def _samples(folder: Path, seed: int) -> list[Sample]:
    dists = {p.name.lower(): p.name for p in (folder / "distorted_images").iterdir()}
    refs = {p.stem.upper(): p.name for p in (folder / "reference_images").iterdir()}
    try:
        lines = (folder / LABEL_FILE).read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise LabelFileError(f"{LABEL_FILE} is not text: it is not the official file") from None
    parsed, seen = [], set()
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{LABEL_FILE} line {i}"
        parts = line.split()
        if len(parts) != 2:
            raise LabelFileError(f"{where}: expected 'MOS name', got {line!r}")
        m = _DIST.fullmatch(parts[1])
        if not m:
            raise LabelFileError(f"{where}: image name {parts[1]!r} is not like i01_01_1.bmp")
        ref, dtype, level = f"I{m.group(1)}", int(m.group(2)), int(m.group(3))
        if not (1 <= dtype <= N_TYPES and 1 <= level <= N_LEVELS):
            raise LabelFileError(f"{where}: {parts[1]!r} has type {dtype} / level {level}; expected "
                                 f"1..{N_TYPES} / 1..{N_LEVELS}")
        if parts[1].lower() in seen:
            raise LabelFileError(f"{where}: {parts[1]!r} is listed twice")
        seen.add(parts[1].lower())
        if parts[1].lower() not in dists:
            raise LabelFileError(f"{where}: image {parts[1]!r} is not in distorted_images/")
        if ref not in refs:
            raise LabelFileError(f"{where}: reference {ref} is not in reference_images/")
        score = parse_score(parts[0], where=where, low=SCORE_RANGE[0], high=SCORE_RANGE[1])
        parsed.append(Sample(image=f"distorted_images/{dists[parts[1].lower()]}",
                             reference=f"reference_images/{refs[ref]}", score=score, ref_id=ref, split="",
                             distortion=f"{dtype:02d}", level=level))
    if not parsed:
        raise LabelFileError(f"{LABEL_FILE} has no rows")
    splits = random_reference_splits([s.ref_id for s in parsed], seed, folder)
    return [dataclasses.replace(s, split=splits[s.ref_id]) for s in parsed]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    args = fr_parser("Download, verify and index TID2013 into <data root>/tid2013/.").parse_args(argv)
    return run(lambda: prepare(data_root=args.data_root, archive_dir=args.archive_dir, seed=args.seed,
                               force=args.force, extracted=args.extracted))


if __name__ == "__main__":
    sys.exit(main())
