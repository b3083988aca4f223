"""Prepare DnCNN's grayscale denoising sets, Train400, Set12 and Set68 (BSD68), into ``<data root>/dncnn-gray/``.

The thesis' chapter 2 (source 003) trains DnCNN-B on **Train400** (400 grayscale 180 × 180 images
from BSD500, Zhang et al. 2017) and tests on **Set12** (12 classic images: cameraman, house,
peppers, ...) and **Set68** (the 68 BSD test images of Roth & Black, also called BSD68).
All three ship with the authors' DnCNN repository.

Official file: the repository archive ``DnCNN-master.zip``
(https://github.com/cszn/DnCNN/archive/refs/heads/master.zip; no published checksum, so the
first archive used is recorded, see data_scripts/README.md). What the script expects inside,
below one top folder (``DnCNN-master/``):

* ``testsets/Set12/01.png`` ... ``12.png`` (grayscale PNG);
* ``testsets/BSD68/test001.png`` ... ``test068.png`` (grayscale PNG);
* ``TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400/test_001.png`` ... ``test_400.png``.

Result: ``Train400/``, ``Set12/``, ``Set68/`` with the PNGs as published, ``manifest.csv``
(image = ``<set>/<file>``, reference = "", score = 0 (no label: a denoising set holds clean
images only), ref_id = image path without extension, split = ``train`` for Train400 and ``test``
for Set12 and Set68, distortion = the set's name, level = -1) and ``dataset.json`` (task
``denoising``; ``extra.sets`` = the images per set).

Usage: ``python data_scripts/dncnn_sets.py [--data-root DIR] [--archive-dir DIR] [--force]``.
Cite Zhang et al., "Beyond a Gaussian denoiser", IEEE TIP 2017.
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
    archive_main,
    fetch_archive,
    find_folder_prefix,
    output_folder,
    record_archives,
    split_counts,
)

from robustbook.atomic import atomic_dir  # noqa: E402
from robustbook.data.download import ArchiveError, download, extract  # noqa: E402
from robustbook.data.manifest import DatasetMeta, Sample, write_dataset  # noqa: E402

NAME = "dncnn-gray"
ARCHIVE = ArchiveSpec("DnCNN-master.zip", "https://github.com/cszn/DnCNN/archive/refs/heads/master.zip")
#: our set name -> (folder name inside the archive, a parent folder that must precede it, split, count)
SETS = {"Train400": ("Train400", "data", "train", 400),
        "Set12": ("Set12", "testsets", "test", 12),
        "Set68": ("BSD68", "testsets", "test", 68)}


def _prefix(archive: Path, folder: str, parent: str) -> str:
    """The member prefix of ``.../<parent>/<folder>/`` (Set68 also exists elsewhere in the repository)."""
    prefix = find_folder_prefix(archive, folder)
    parts = prefix.rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] != parent:
        raise ArchiveError(f"archive {archive} holds {folder}/ below {'/'.join(parts[:-1]) or 'the top level'}, "
                           f"not below {parent}/: it is not the DnCNN repository archive")
    return prefix


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            force: bool = False, download_fn: DownloadFn | None = None, check_counts: bool = True) -> Path:
    """Download (if needed), verify, extract and index the three sets; return ``<data root>/dncnn-gray``.

    ``check_counts=False`` accepts sets of other sizes (tests use a tiny archive in the official layout).
    """
    out, archives, keep = output_folder(NAME, data_root, archive_dir, force)
    if keep:
        return out
    archive = fetch_archive(ARCHIVE, archives, download_fn or download)
    samples: list[Sample] = []
    counts: dict[str, int] = {}
    with atomic_dir(out) as tmp:
        for name, (folder, parent, split, expected) in SETS.items():
            src = extract(archive, tmp / f"_{name}", members_prefix=_prefix(archive, folder, parent))
            files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() == ".png")
            if not files:
                raise ArchiveError(f"{folder}/ in {archive} holds no PNG images: it is not the expected archive")
            if check_counts and len(files) != expected:
                raise ArchiveError(f"{folder}/ in {archive} holds {len(files)} PNG images, {name} has {expected}; "
                                   f"delete the archive and download it again")
            (tmp / name).mkdir()
            for f in files:
                os.replace(f, tmp / name / f.name)
                samples.append(Sample(image=f"{name}/{f.name}", score=0.0, ref_id=f"{name}/{f.stem}", split=split,
                                      distortion=name))
            shutil.rmtree(src)
            counts[name] = len(files)
        meta = DatasetMeta(
            name=NAME, task="denoising", score_name="none", score_range=(0.0, 1.0), higher_is_better=True,
            source="DnCNN repository (Zhang et al., IEEE TIP 2017), https://github.com/cszn/DnCNN",
            notes=("Clean grayscale images; score = 0 (no label). Train400 = split train; Set12 and Set68 (the "
                   "repository's testsets/BSD68) = split test. The distortion column names the set."),
            extra={"sets": counts, "archives": {archive.name: archive_digest(archive, ARCHIVE)}})
        write_dataset(tmp, samples, meta)
    record_archives(archive)
    print(f"{NAME}: {counts}, split {split_counts(samples)}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    return archive_main(__doc__.splitlines()[0], prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
