"""Prepare the Kodak PhotoCD set (Kodak24: 24 colour photographs, 768 × 512) into ``<data root>/kodak24/``.

The thesis' chapter 2 (source 003) tests its colour denoisers (DnCNN-C) on Kodak24 (Table 2.6).
The images are released by Eastman Kodak for unrestricted research use and are distributed as
24 lossless PNG files, ``kodim01.png`` ... ``kodim24.png``, at http://r0k.us/graphics/kodak/
(``kodak/kodimNN.png``). There is no archive and no published checksum: each file is downloaded
into the archive folder once and recorded on first use (see data_scripts/README.md).

Each file must be an RGB PNG of 768 × 512 or 512 × 768 pixels (checked; ``check_sizes=False``
accepts other sizes for tests).

Result: ``images/kodimNN.png`` as published, ``manifest.csv`` (image = ``images/<file>``,
reference = "", score = 0 (no label: clean images only), ref_id = ``kodimNN``, split = ``test``,
distortion = ``Kodak24``, level = -1) and ``dataset.json`` (task ``denoising``).

Usage: ``python data_scripts/kodak24.py [--data-root DIR] [--archive-dir DIR] [--force]``.
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
    output_folder,
    record_archives,
    split_counts,
)

from robustbook.atomic import atomic_dir  # noqa: E402
from robustbook.data.download import ArchiveError, download  # noqa: E402
from robustbook.data.manifest import DatasetMeta, Sample, write_dataset  # noqa: E402

NAME = "kodak24"
BASE_URL = "http://r0k.us/graphics/kodak/kodak/"
FILES = tuple(ArchiveSpec(f"kodim{i:02d}.png", f"{BASE_URL}kodim{i:02d}.png") for i in range(1, 25))
SIZES = {(768, 512), (512, 768)}


def _check_image(path: Path, check_sizes: bool) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            fmt, mode, size = im.format, im.mode, im.size
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ArchiveError(f"{path} is not a readable PNG ({exc}); delete it and download it again") from None
    if fmt != "PNG" or mode != "RGB":
        raise ArchiveError(f"{path} is a {fmt} image in mode {mode}, Kodak24 files are RGB PNGs; delete it and "
                           f"download it again")
    if check_sizes and size not in SIZES:
        raise ArchiveError(f"{path} is {size[0]} x {size[1]} pixels, Kodak24 images are 768 x 512 (or 512 x 768)")


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            force: bool = False, download_fn: DownloadFn | None = None, check_sizes: bool = True) -> Path:
    """Download (if needed), verify and index the 24 images; return ``<data root>/kodak24``."""
    out, archives, keep = output_folder(NAME, data_root, archive_dir, force)
    if keep:
        return out
    paths = [fetch_archive(spec, archives, download_fn or download) for spec in FILES]
    for p in paths:
        _check_image(p, check_sizes)
    samples = []
    with atomic_dir(out) as tmp:
        (tmp / "images").mkdir()
        for p in paths:
            shutil.copyfile(p, tmp / "images" / p.name)
            samples.append(Sample(image=f"images/{p.name}", score=0.0, ref_id=p.stem, split="test",
                                  distortion="Kodak24"))
        meta = DatasetMeta(
            name=NAME, task="denoising", score_name="none", score_range=(0.0, 1.0), higher_is_better=True,
            source=f"Kodak PhotoCD images (Eastman Kodak), {BASE_URL}",
            notes="24 clean colour photographs; score = 0 (no label); all in the test split.",
            extra={"archives": {p.name: archive_digest(p, spec) for p, spec in zip(paths, FILES, strict=False)}})
        write_dataset(tmp, samples, meta)
    record_archives(*paths)
    print(f"{NAME}: {len(samples)} images, split {split_counts(samples)}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    return archive_main(__doc__.splitlines()[0], prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
