"""Prepare KADID-10k (Lin, Hosu & Saupe, QoMEX 2019) into ``<data root>/kadid10k/``.

KADID-10k: 81 pristine reference images (``I01.png`` ... ``I81.png``), each
distorted by 25 distortion types at 5 levels (10,125 images named
``I01_01_01.png`` = reference_type_level), rated by crowd workers.
Full-reference IQA.

Official file (https://database.mmsp-kn.de/kadid-10k-database.html):
``kadid10k.zip``, holding a folder ``kadid10k/`` with ``images/`` and
``dmos.csv`` (columns ``dist_img, ref_img, dmos, var``). The score is called
DMOS but lies on 1..5 and **higher is better**.

Result: ``images/`` as published, ``dmos.csv``, ``manifest.csv`` (image =
distorted image, reference = its reference, ref_id = ``I01``..., distortion =
type index ``01``..``25``, level = 1..5) and ``dataset.json`` (whose
``extra.distortion_names`` maps the indices to :data:`DISTORTION_NAMES`).

Split: by reference content, 6:2:2, seeded
(:func:`robustbook.data.manifest.split_by_reference`), as in source 002; no
reference content appears in two splits.

Usage: ``python data_scripts/kadid10k.py [--data-root DIR] [--archive-dir DIR] [--seed 0] [--force]``.
The data set's terms apply: see data_scripts/README.md.
"""
from __future__ import annotations

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
    archive_digest,
    base_parser,
    fetch_archive,
    find_file_prefix,
    output_folder,
    parse_score,
    read_label_csv,
    record_archives,
    run,
    split_counts,
)

from robustbook.atomic import atomic_dir  # noqa: E402
from robustbook.data.download import ArchiveError, download, extract  # noqa: E402
from robustbook.data.manifest import DatasetMeta, Sample, split_by_reference, write_dataset  # noqa: E402

NAME = "kadid10k"
HOMEPAGE = "https://database.mmsp-kn.de/kadid-10k-database.html"
ARCHIVE = ArchiveSpec("kadid10k.zip", "https://datasets.vqa.mmsp-kn.de/archives/kadid10k.zip")
LABEL_FILE = "dmos.csv"
SCORE_RANGE = (1.0, 5.0)
N_TYPES, N_LEVELS = 25, 5
_DIST_NAME = re.compile(r"(I\d+)_(\d+)_(\d+)\.(png|bmp|jpe?g)", re.IGNORECASE)

#: The 25 distortion types of KADID-10k, by type index (the middle number of ``I01_07_03.png``),
#: in the order of Lin et al. (2019), Table I.
DISTORTION_NAMES: dict[str, str] = {f"{i:02d}": n for i, n in enumerate((
    "gaussian_blur", "lens_blur", "motion_blur",
    "color_diffusion", "color_shift", "color_quantization", "color_saturation_1", "color_saturation_2",
    "jpeg2000", "jpeg",
    "white_noise", "white_noise_color_component", "impulse_noise", "multiplicative_noise", "denoise",
    "brighten", "darken", "mean_shift",
    "jitter", "non_eccentricity_patch", "pixelate", "quantization", "color_block",
    "high_sharpen", "contrast_change",
), start=1)}


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            seed: int = 0, force: bool = False, download_fn: DownloadFn | None = None) -> Path:
    """Download (if needed), verify, extract and index KADID-10k; return ``<data root>/kadid10k``.

    A complete data set already there is returned untouched unless ``force``.
    ``download_fn(url, dest, *, sha256, size)`` defaults to
    :func:`robustbook.data.download.download`; it is called only when
    ``kadid10k.zip`` is not yet in ``archive_dir``.
    """
    out, archives, keep = output_folder(NAME, data_root, archive_dir, force)
    if keep:
        return out
    archive = fetch_archive(ARCHIVE, archives, download_fn or download)
    prefix = find_file_prefix(archive, LABEL_FILE)
    with atomic_dir(out) as tmp:
        src = extract(archive, tmp / "_src", members_prefix=prefix or None)
        if not (src / "images").is_dir():
            raise ArchiveError(f"archive {archive} has no folder {prefix}images/ beside {LABEL_FILE}: it is not "
                               f"the expected archive; delete it and download it again")
        os.replace(src / "images", tmp / "images")
        os.replace(src / LABEL_FILE, tmp / LABEL_FILE)
        shutil.rmtree(src)
        rows, _ = read_label_csv(tmp / LABEL_FILE, ("dist_img", "ref_img", "dmos"))
        samples = _samples(rows, tmp, seed)
        meta = DatasetMeta(
            name=NAME, task="fr-iqa", score_name="DMOS", score_range=SCORE_RANGE, higher_is_better=True,
            source=f"KADID-10k (Lin, Hosu & Saupe, QoMEX 2019), {HOMEPAGE}",
            notes=("Score: the published 'dmos' column, on 1..5 where higher is better despite the name. "
                   "distortion = type index 01..25 (names in extra.distortion_names), level = 1..5. "
                   f"Split: seeded 6:2:2 by reference content (split_by_reference, seed={seed})."),
            extra={"split": f"seeded 6:2:2 by reference (split_by_reference, seed={seed})", "seed": seed,
                   "label_file": LABEL_FILE, "distortion_names": DISTORTION_NAMES,
                   "archives": {archive.name: archive_digest(archive, ARCHIVE)}})
        write_dataset(tmp, samples, meta)
    record_archives(archive)  # trusted on first use only now that it was extracted and indexed
    counts = split_counts(samples)
    print(f"{NAME}: {len(samples)} distorted images of {len({s.ref_id for s in samples})} references, "
          f"split {counts}", file=sys.stderr)
    return out


def _samples(rows: list[dict[str, str]], folder: Path, seed: int) -> list[Sample]:
    """One sample per row of ``dmos.csv``, split by reference."""
    parsed = []
    seen: set[str] = set()
    for i, r in enumerate(rows, start=2):
        where = f"{LABEL_FILE} line {i}"
        m = _DIST_NAME.fullmatch(r["dist_img"])
        if not m:
            raise LabelFileError(f"{where}: distorted image name {r['dist_img']!r} is not like I01_01_01.png")
        ref, dtype, level = m.group(1), int(m.group(2)), int(m.group(3))
        if not (1 <= dtype <= N_TYPES and 1 <= level <= N_LEVELS):
            raise LabelFileError(f"{where}: {r['dist_img']!r} has distortion type {dtype} / level {level}; "
                                 f"expected 1..{N_TYPES} / 1..{N_LEVELS}")
        if Path(r["ref_img"]).stem != ref:
            raise LabelFileError(f"{where}: {r['dist_img']!r} is listed with reference {r['ref_img']!r}")
        if r["dist_img"] in seen:
            raise LabelFileError(f"{where}: {r['dist_img']!r} is listed twice")
        seen.add(r["dist_img"])
        for name in (r["dist_img"], r["ref_img"]):
            if not (folder / "images" / name).is_file():
                raise LabelFileError(f"{where}: image {name!r} is not in the archive's images/ folder")
        score = parse_score(r["dmos"], where=where, low=SCORE_RANGE[0], high=SCORE_RANGE[1])
        parsed.append((r, ref, dtype, level, score))
    splits = split_by_reference((p[1] for p in parsed), (0.6, 0.2, 0.2), seed=seed)
    return [Sample(image=f"images/{r['dist_img']}", reference=f"images/{r['ref_img']}", score=score, ref_id=ref,
                   split=splits[ref], distortion=f"{dtype:02d}", level=level)
            for r, ref, dtype, level, score in parsed]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    args = base_parser("Download, verify and index KADID-10k into <data root>/kadid10k/.").parse_args(argv)
    return run(lambda: prepare(data_root=args.data_root, archive_dir=args.archive_dir, seed=args.seed,
                               force=args.force))


if __name__ == "__main__":
    sys.exit(main())
