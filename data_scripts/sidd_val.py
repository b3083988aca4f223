"""Prepare SIDD-val (1,280 sRGB noisy/ground-truth blocks of 256 × 256) into ``<data root>/sidd-val/``.

Table 2.4 of the thesis (source 003, chapter 2) tests the SIDD denoisers on the SIDD validation
blocks: 40 images × 32 blocks of 256 × 256 pixels, with their ground truth.

Official files, from https://www.eecs.yorku.ca/~kamel/sidd/benchmark.php ("SIDD Validation Data and
Ground Truth", sRGB), handed out from a cloud drive, so placed in the archive folder by hand (no
published checksum: the first files used are recorded):

* ``ValidationNoisyBlocksSrgb.mat``: variable ``ValidationNoisyBlocksSrgb``, uint8 (40, 32, 256, 256, 3);
* ``ValidationGtBlocksSrgb.mat``: variable ``ValidationGtBlocksSrgb``, the same shape.

Both are MATLAB v5 files (read with ``scipy.io.loadmat``).

Result: ``noisy/<image>_<block>.png``, ``clean/<image>_<block>.png`` (``00_00`` ... ``39_31``),
``manifest.csv`` (image = noisy, reference = clean, score = 0, ref_id = ``sidd-val/<image>``, split =
``test``, distortion = ``SIDD``) and ``dataset.json`` (task ``denoising``).

Usage: ``python data_scripts/sidd_val.py [--data-root DIR] [--archive-dir DIR] [--force]``.
Cite Abdelhamed, Lin, Brown, "A high-quality denoising dataset for smartphone cameras", CVPR 2018.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:  # run as a script or loaded by path: find _common
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ArchiveSpec,
    DownloadFn,
    archive_main,
    build_denoising_set,
    fetch_archive,
    output_folder,
)

from robustbook.data.download import ArchiveError, download  # noqa: E402
from robustbook.data.manifest import Sample  # noqa: E402

NAME = "sidd-val"
PAGE = "https://www.eecs.yorku.ca/~kamel/sidd/benchmark.php"
NOISY = ArchiveSpec("ValidationNoisyBlocksSrgb.mat", PAGE, manual=True)
CLEAN = ArchiveSpec("ValidationGtBlocksSrgb.mat", PAGE, manual=True)
SHAPE = (40, 32, 256, 256, 3)


def load_blocks(path: Path, variable: str) -> np.ndarray:
    """The uint8 ``(images, blocks, H, W, 3)`` array ``variable`` of a SIDD .mat file (else :class:`ArchiveError`)."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path, variable_names=[variable])
    except NotImplementedError:
        raise ArchiveError(f"{path} is a MATLAB v7.3 (HDF5) file; the official file is MATLAB v5. Delete it and "
                           f"place the file from {PAGE}") from None
    except (ValueError, OSError, TypeError) as exc:
        raise ArchiveError(f"{path} is not a readable MATLAB file ({exc}); delete it and place it again") from None
    if variable not in mat:
        raise ArchiveError(f"{path} has no variable {variable!r}: it is not the official file")
    blocks = mat[variable]
    if blocks.dtype != np.uint8 or blocks.ndim != 5 or blocks.shape[-1] != 3:
        raise ArchiveError(f"{path}: {variable} is {blocks.dtype} {blocks.shape}, expected uint8 "
                           f"(images, blocks, H, W, 3)")
    return blocks


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            force: bool = False, download_fn: DownloadFn | None = None, check_counts: bool = True) -> Path:
    """Verify and unpack the two block files (placed by hand) into PNG pairs; return ``<data root>/sidd-val``."""
    from PIL import Image

    out, archives, keep = output_folder(NAME, data_root, archive_dir, force)
    if keep:
        return out
    paths = [fetch_archive(spec, archives, download_fn or download) for spec in (NOISY, CLEAN)]
    noisy, clean = (load_blocks(p, p.stem) for p in paths)
    if noisy.shape != clean.shape:
        raise ArchiveError(f"the noisy blocks {noisy.shape} and the ground truth {clean.shape} differ in shape")
    if check_counts and noisy.shape != SHAPE:
        raise ArchiveError(f"the blocks have shape {noisy.shape}, SIDD-val has {SHAPE}; place the official files")

    def fill(tmp: Path) -> list[Sample]:
        (tmp / "noisy").mkdir()
        (tmp / "clean").mkdir()
        samples = []
        for i in range(noisy.shape[0]):
            for j in range(noisy.shape[1]):
                name = f"{i:02d}_{j:02d}.png"
                Image.fromarray(noisy[i, j]).save(tmp / "noisy" / name)
                Image.fromarray(clean[i, j]).save(tmp / "clean" / name)
                samples.append(Sample(image=f"noisy/{name}", reference=f"clean/{name}", score=0.0,
                                      ref_id=f"sidd-val/{i:02d}", split="test", distortion="SIDD"))
        return samples

    return build_denoising_set(
        out, NAME, fill, archives=list(zip(paths, (NOISY, CLEAN), strict=True)),
        source=f"SIDD validation blocks, sRGB (Abdelhamed et al. 2018), {PAGE}",
        notes="Real smartphone noise: image = noisy 256 x 256 block, reference = its ground truth; score = 0; "
              "all test.",
        extra={"shape": list(noisy.shape)})


def main(argv: list[str] | None = None) -> int:
    return archive_main(__doc__.splitlines()[0], prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
