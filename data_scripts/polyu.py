"""Prepare the PolyU real-world noisy image set (100 cropped noisy/clean pairs) into ``<data root>/polyu/``.

Table 2.4 of the thesis (source 003, chapter 2) tests denoisers trained on BSD500's clean images
with Gaussian noise on real camera noise; PolyU (Xu et al. 2018) is one of its three sets: 40 scenes
shot with five cameras, each shot 500 times; the mean of the 500 shots is the clean ("mean") image,
one shot the noisy ("real") one. The benchmark uses the 100 cropped 512 × 512 pairs.

Official file: the authors' repository archive ``PolyU-Real-World-Noisy-Images-Dataset-master.zip``
(https://github.com/csjunxu/PolyU-Real-World-Noisy-Images-Dataset/archive/refs/heads/master.zip;
no published checksum, so the first archive used is recorded, see data_scripts/README.md). Inside,
below one top folder: ``CroppedImages/<camera>_<settings>_<scene>_<k>_real.JPG`` (noisy) and
``..._mean.JPG`` (clean). The full-size images beside them are not used.

Result: ``noisy/<stem>.JPG``, ``clean/<stem>.JPG`` as published, ``manifest.csv`` (image = the noisy
file, reference = its clean file, score = 0 (no label), ref_id = ``<stem>``, split = ``test``,
distortion = ``PolyU``) and ``dataset.json`` (task ``denoising``).

Usage: ``python data_scripts/polyu.py [--data-root DIR] [--archive-dir DIR] [--force]``.
Cite Xu, Li, Liang, Zhang, Zhang, "Real-world noisy image denoising: a new benchmark", arXiv:1804.02603, 2018.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # run as a script or loaded by path: find _common
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ArchiveSpec, DownloadFn, archive_main, prepare_cropped_pairs  # noqa: E402

NAME = "polyu"
ARCHIVE = ArchiveSpec("PolyU-Real-World-Noisy-Images-Dataset-master.zip",
                      "https://github.com/csjunxu/PolyU-Real-World-Noisy-Images-Dataset/archive/refs/heads/master.zip")
FOLDER, COUNT = "CroppedImages", 100


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            force: bool = False, download_fn: DownloadFn | None = None, check_counts: bool = True) -> Path:
    """Download (if needed), verify, extract and index the 100 pairs; return ``<data root>/polyu``."""
    return prepare_cropped_pairs(
        NAME, ARCHIVE, FOLDER, COUNT, "PolyU", data_root=data_root, archive_dir=archive_dir, force=force,
        download_fn=download_fn, check_counts=check_counts,
        source=f"PolyU real-world noisy images (Xu et al. 2018), {ARCHIVE.url}",
        notes="Real camera noise: image = a single noisy shot, reference = the mean of 500 shots (clean); "
              "score = 0 (no label); all in the test split.")


def main(argv: list[str] | None = None) -> int:
    return archive_main(__doc__.splitlines()[0], prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
