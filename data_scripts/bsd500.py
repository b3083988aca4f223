"""Prepare BSD500's colour training images (BSD432) and the colour test set CBSD68 into ``<data root>/bsd500/``.

The thesis' chapter 2 (source 003) trains its colour denoisers (DnCNN-C) on **BSD432**, the 500
images of the Berkeley Segmentation Data Set (BSDS500, Arbeláez et al. 2011) without the 68 test
images of Roth & Black, and tests on those 68 in colour, **CBSD68** (Table 2.3, Figs. 2.5/2.6);
the unseen-noise study (Table 2.4, PolyU and CC) trains on the same clean BSD images.

Official files (no published checksum: the first archives used are recorded, see data_scripts/README.md):

* ``BSR_bsds500.tgz`` (https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz):
  ``BSR/BSDS500/data/images/{train,val,test}/<id>.jpg`` (200 + 100 + 200 JPEG images, 481 × 321
  or 321 × 481); the ground-truth segmentations beside them are not used.
* ``IRCNN-master.zip`` (https://github.com/cszn/IRCNN/archive/refs/heads/master.zip), the repository
  of Zhang et al. that publishes CBSD68 as the denoising papers use it:
  ``IRCNN-master/testsets/CBSD68/<id>.png`` (68 colour PNGs named by their BSD image id).

Which 68 ids form the test set is read from the CBSD68 folder, and every one must be a BSDS500 image.

Result: ``BSD432/<id>.jpg`` (split ``train``, the JPEGs as published), ``CBSD68/<id>.png`` (split ``test``),
``manifest.csv`` (image = ``<set>/<file>``, reference = "", score = 0 (no label), ref_id = ``bsd/<id>``,
distortion = the set's name) and ``dataset.json`` (task ``denoising``; ``extra.sets``).

Usage: ``python data_scripts/bsd500.py [--data-root DIR] [--archive-dir DIR] [--force]``.
Cite Arbeláez et al., "Contour detection and hierarchical image segmentation", IEEE TPAMI 2011, and
Roth & Black, "Fields of experts", IJCV 2009.
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
    archive_main,
    build_denoising_set,
    fetch_archive,
    find_folder_prefix,
    output_folder,
)

from robustbook.data.download import ArchiveError, download, extract  # noqa: E402
from robustbook.data.manifest import Sample  # noqa: E402

NAME = "bsd500"
BSDS = ArchiveSpec("BSR_bsds500.tgz",
                   "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz")
CBSD = ArchiveSpec("IRCNN-master.zip", "https://github.com/cszn/IRCNN/archive/refs/heads/master.zip")
COUNTS = {"BSDS500": 500, "CBSD68": 68, "BSD432": 432}


def _bsds_images(archive: Path, dest: Path) -> dict[str, Path]:
    """``{id: path}`` of the JPEGs in ``images/{train,val,test}/`` of BSDS500 (extracted into ``dest``)."""
    # BSDS500/data/images/, not bench/data/images/ (the benchmark's few samples, also in the archive)
    src = extract(archive, dest, members_prefix=find_folder_prefix(archive, "BSDS500") + "data/images/")
    images: dict[str, Path] = {}
    for part in ("train", "val", "test"):
        folder = src / part
        if not folder.is_dir():
            raise ArchiveError(f"{archive} has no images/{part}/ folder: it is not BSR_bsds500.tgz")
        for f in folder.iterdir():
            if f.is_file() and f.suffix.lower() == ".jpg":
                if f.stem in images:
                    raise ArchiveError(f"{archive}: image id {f.stem} appears twice")
                images[f.stem] = f
    return images


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            force: bool = False, download_fn: DownloadFn | None = None, check_counts: bool = True) -> Path:
    """Download (if needed), verify, extract and index BSD432 and CBSD68; return ``<data root>/bsd500``.

    ``check_counts=False`` accepts sets of other sizes (tests use tiny archives in the official layout).
    """
    out, archives, keep = output_folder(NAME, data_root, archive_dir, force)
    if keep:
        return out
    bsds = fetch_archive(BSDS, archives, download_fn or download)
    cbsd = fetch_archive(CBSD, archives, download_fn or download)

    def fill(tmp: Path) -> list[Sample]:
        images = _bsds_images(bsds, tmp / "_bsds")
        test_src = extract(cbsd, tmp / "_cbsd", members_prefix=find_folder_prefix(cbsd, "CBSD68"))
        test = sorted(f for f in test_src.iterdir() if f.is_file() and f.suffix.lower() == ".png")
        unknown = [f.stem for f in test if f.stem not in images]
        if unknown:
            raise ArchiveError(f"CBSD68/ in {cbsd} names images that are not in BSDS500 (e.g. {unknown[0]!r}): "
                               f"one of the two archives is not the expected one")
        train = sorted(set(images) - {f.stem for f in test})
        counts = {"BSDS500": len(images), "CBSD68": len(test), "BSD432": len(train)}
        if check_counts and counts != COUNTS:
            raise ArchiveError(f"found {counts}, the official sets have {COUNTS}; delete the archives and download "
                               f"them again")
        if not test or not train:
            raise ArchiveError(f"found {counts}: no test or no training images")
        (tmp / "BSD432").mkdir()
        (tmp / "CBSD68").mkdir()
        samples = []
        for i in train:
            os.replace(images[i], tmp / "BSD432" / images[i].name)
            samples.append(Sample(image=f"BSD432/{images[i].name}", score=0.0, ref_id=f"bsd/{i}", split="train",
                                  distortion="BSD432"))
        for f in test:
            os.replace(f, tmp / "CBSD68" / f.name)
            samples.append(Sample(image=f"CBSD68/{f.name}", score=0.0, ref_id=f"bsd/{f.stem}", split="test",
                                  distortion="CBSD68"))
        shutil.rmtree(tmp / "_bsds")
        shutil.rmtree(tmp / "_cbsd")
        return samples

    return build_denoising_set(
        out, NAME, fill, archives=[(bsds, BSDS), (cbsd, CBSD)],
        source=f"BSDS500 (Arbeláez et al. 2011), {BSDS.url}; CBSD68 as published in {CBSD.url}",
        notes="Clean colour images; score = 0 (no label). BSD432 (BSDS500 without the 68 test ids, JPEG as "
              "published) = split train; CBSD68 (PNG) = split test. The distortion column names the set.",
        extra={"sets": {"BSD432": "train", "CBSD68": "test"}})


def main(argv: list[str] | None = None) -> int:
    return archive_main(__doc__.splitlines()[0], prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
