"""Prepare the CC real-noise set (15 noisy/clean crops of Nam et al., as Xu et al. 2017) into ``<data root>/cc/``.

Table 2.4 of the thesis (source 003, chapter 2) calls it CC [Xu et al., 2017]: the "cross-channel"
set of Nam et al. (CVPR 2016), 11 static scenes shot about 500 times with three cameras (Canon 5D
Mark III, Nikon D600, Nikon D800) at ISO 1,600 to 6,400; the mean of the shots is the clean image.
Xu et al. (MCWNNM, ICCV 2017) cropped 15 regions of 512 × 512 pixels, the benchmark everyone uses.

Official file: the MCWNNM repository archive ``MCWNNM-ICCV2017-master.zip``
(https://github.com/csjunxu/MCWNNM-ICCV2017/archive/refs/heads/master.zip; no published checksum,
so the first archive used is recorded). Inside, below one top folder:
``Real_ccnoise_denoised_part/<camera>_iso<ISO>_<k>_real.png`` (noisy), ``..._mean.png`` (clean) and
``..._ours.png`` (MCWNNM's output, ignored).

Result: ``noisy/<stem>.png``, ``clean/<stem>.png``, ``manifest.csv`` (image = noisy, reference = clean,
score = 0, ref_id = ``<stem>``, split = ``test``, distortion = ``CC``) and ``dataset.json`` (task ``denoising``).

Usage: ``python data_scripts/cc.py [--data-root DIR] [--archive-dir DIR] [--force]``.
Cite Nam, Hwang, Matsushita, Kim, "A holistic approach to cross-channel image noise modeling and its
application to image denoising", CVPR 2016, and Xu, Zhang, Zhang, Feng, "Multi-channel weighted
nuclear norm minimization for real color image denoising", ICCV 2017.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # run as a script or loaded by path: find _common
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ArchiveSpec, DownloadFn, archive_main, prepare_cropped_pairs  # noqa: E402

NAME = "cc"
ARCHIVE = ArchiveSpec("MCWNNM-ICCV2017-master.zip",
                      "https://github.com/csjunxu/MCWNNM-ICCV2017/archive/refs/heads/master.zip")
FOLDER, COUNT = "Real_ccnoise_denoised_part", 15


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            force: bool = False, download_fn: DownloadFn | None = None, check_counts: bool = True) -> Path:
    """Download (if needed), verify, extract and index the 15 pairs; return ``<data root>/cc``."""
    return prepare_cropped_pairs(
        NAME, ARCHIVE, FOLDER, COUNT, "CC", data_root=data_root, archive_dir=archive_dir, force=force,
        download_fn=download_fn, check_counts=check_counts,
        source=f"CC (Nam et al. 2016; the 15 crops of Xu et al. 2017), {ARCHIVE.url}",
        notes="Real camera noise: image = a noisy shot, reference = the mean image (clean); score = 0; all test.")


def main(argv: list[str] | None = None) -> int:
    return archive_main(__doc__.splitlines()[0], prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
