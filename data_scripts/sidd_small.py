"""Prepare SIDD-small (160 sRGB noisy/ground-truth smartphone image pairs) into ``<data root>/sidd-small/``.

Table 2.4 of the thesis (source 003, chapter 2) trains the SIDD denoisers (NT, vAT, HAT, with
γ = 50/255) on the **clean** images of SIDD-small and tests them on SIDD-val (``sidd_val.py``);
Noise2Clean (N2C), the oracle, is trained on its real noisy/clean **pairs**. SIDD (Abdelhamed et
al. 2018) shot 10 scenes with five smartphones under varied ISO and light; the ground truth is
estimated from about 150 aligned shots.

Official file: ``SIDD_Small_sRGB_Only.zip`` from the data set's page
https://www.eecs.yorku.ca/~kamel/sidd/dataset.php ("SIDD-Small Dataset", sRGB images only, about 6 GB).
The page hands it out from a cloud drive, so the script cannot download it: place it in the archive
folder by hand (no published checksum: the first archive used is recorded). Inside:
``SIDD_Small_sRGB_Only/Data/<scene instance>/GT_SRGB_010.PNG`` and ``NOISY_SRGB_010.PNG``, one folder per
scene instance (160), named ``<instance>_<scene>_<phone>_<ISO>_<shutter>_<temperature>_<brightness>``.

Result: ``noisy/<instance>.PNG``, ``clean/<instance>.PNG`` as published, ``manifest.csv`` (image =
noisy, reference = ground truth, score = 0, ref_id = the instance folder's name, split = ``train``,
distortion = ``SIDD``) and ``dataset.json`` (task ``denoising``).

Usage: ``python data_scripts/sidd_small.py [--data-root DIR] [--archive-dir DIR] [--force]``.
Cite Abdelhamed, Lin, Brown, "A high-quality denoising dataset for smartphone cameras", CVPR 2018.
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

NAME = "sidd-small"
ARCHIVE = ArchiveSpec("SIDD_Small_sRGB_Only.zip", "https://www.eecs.yorku.ca/~kamel/sidd/dataset.php", manual=True)
COUNT = 160


def _one(folder: Path, prefix: str) -> Path:
    found = sorted(f for f in folder.iterdir() if f.is_file() and f.name.upper().startswith(prefix)
                   and f.suffix.lower() == ".png")
    if len(found) != 1:
        raise ArchiveError(f"scene folder {folder.name} holds {len(found)} {prefix}*.PNG files, SIDD-small has one; "
                           f"the archive is not SIDD_Small_sRGB_Only.zip or is incomplete")
    return found[0]


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            force: bool = False, download_fn: DownloadFn | None = None, check_counts: bool = True) -> Path:
    """Verify, extract and index the 160 pairs (the archive is placed by hand); return ``<data root>/sidd-small``."""
    out, archives, keep = output_folder(NAME, data_root, archive_dir, force)
    if keep:
        return out
    archive = fetch_archive(ARCHIVE, archives, download_fn or download)

    def fill(tmp: Path) -> list[Sample]:
        src = extract(archive, tmp / "_src", members_prefix=find_folder_prefix(archive, "Data"))
        scenes = sorted(d for d in src.iterdir() if d.is_dir())
        if check_counts and len(scenes) != COUNT:
            raise ArchiveError(f"Data/ in {archive} holds {len(scenes)} scene folders, SIDD-small has {COUNT}; "
                               f"delete the archive and place a complete copy")
        (tmp / "noisy").mkdir()
        (tmp / "clean").mkdir()
        samples = []
        for d in scenes:
            noisy, clean = _one(d, "NOISY_SRGB"), _one(d, "GT_SRGB")
            os.replace(noisy, tmp / "noisy" / f"{d.name}{noisy.suffix}")
            os.replace(clean, tmp / "clean" / f"{d.name}{clean.suffix}")
            samples.append(Sample(image=f"noisy/{d.name}{noisy.suffix}", reference=f"clean/{d.name}{clean.suffix}",
                                  score=0.0, ref_id=d.name, split="train", distortion="SIDD"))
        shutil.rmtree(src)
        return samples

    return build_denoising_set(
        out, NAME, fill, archives=[(archive, ARCHIVE)],
        source=f"SIDD-small, sRGB (Abdelhamed et al. 2018), {ARCHIVE.url}",
        notes="Real smartphone noise: image = noisy sRGB shot, reference = estimated ground truth; score = 0; all "
              "in the train split (the denoisers train on the clean images, N2C on the pairs).")


def main(argv: list[str] | None = None) -> int:
    return archive_main(__doc__.splitlines()[0], prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
