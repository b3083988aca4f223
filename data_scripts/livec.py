"""Prepare the LIVE In the Wild Image Quality Challenge Database (LIVEC; Ghadiyaram & Bovik, IEEE TIP 2016).

The result goes into ``<data root>/livec/``.

LIVEC ("LIVE Challenge"): 1,169 photographs taken with mobile devices, with
authentic (not synthetic) distortions, rated by over 8,000 crowd workers. The
score is a MOS on 0..100, **higher is better**. No-reference IQA: every image is
its own content.

Official file (https://live.ece.utexas.edu/research/ChallengeDB/index.html; the
download link is given after a request form, so :data:`ARCHIVE`'s URL may need
to be replaced by the one you receive): ``ChallengeDB_release.zip``. What the
script expects inside (confirmed against several public loaders, e.g. the
HyperIQA/DBCNN ``LIVEChallengeFolder`` code; the archive itself could not be
inspected while writing this):

* ``Data/AllImages_release.mat``: ``AllImages_release``, a 1169 x 1 cell of image
  file names; ``Data/AllMOS_release.mat``: ``AllMOS_release``, 1 x 1169 MOS in the same
  order (``Data/AllStdDev_release.mat`` holds the standard deviations and is kept);
* ``Images/`` with the images, except the **first seven** entries (``t1.bmp`` ...
  ``t7.bmp``), which lie in ``Images/trainingImages/``.

Those seven were the images shown to the crowd workers to train them, not part of
the study's test set; published IQA protocols drop them (``[7:1169]`` in the
common loaders) and use 1,162 images. So does this script by default;
``include_training_images=True`` (``--include-training-images``) keeps them.

Everything may sit below one top folder (``ChallengeDB_release/``): the script
finds ``Data/AllMOS_release.mat`` wherever it is and takes ``Images/`` beside ``Data/``.

Result: ``Images/`` as published, ``Data/`` (the .mat files), ``manifest.csv``
(image = ``Images/<name>``, reference = "", ref_id = image name, distortion = "",
level = -1, score = MOS on 0..100) and ``dataset.json``.

Split: a seeded 6:2:2 split of the images
(:func:`robustbook.data.manifest.split_by_reference`; LIVEC has no official split).

Usage: ``python data_scripts/livec.py [--data-root DIR] [--archive-dir DIR] [--seed 0] [--force]
[--include-training-images] [--extracted DIR]``. The data set's terms apply (see
data_scripts/README.md): cite Ghadiyaram & Bovik (2016).
"""
from __future__ import annotations

import math
import os
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

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
    record_archives,
    run,
    split_counts,
)

from robustbook.atomic import atomic_dir  # noqa: E402
from robustbook.data.download import ArchiveError, download, extract  # noqa: E402
from robustbook.data.manifest import DatasetMeta, Sample, split_by_reference, write_dataset  # noqa: E402

NAME = "livec"
HOMEPAGE = "https://live.ece.utexas.edu/research/ChallengeDB/index.html"
ARCHIVE = ArchiveSpec("ChallengeDB_release.zip", "https://live.ece.utexas.edu/research/ChallengeDB/ChallengeDB_release.zip")
NAMES_FILE = "AllImages_release.mat"
MOS_FILE = "AllMOS_release.mat"
DATA_FOLDER, IMAGE_FOLDER, TRAINING_FOLDER = "Data", "Images", "trainingImages"
N_TOTAL, N_TRAINING = 1169, 7
SCORE_RANGE = (0.0, 100.0)


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            seed: int = 0, force: bool = False, download_fn: DownloadFn | None = None, *,
            include_training_images: bool = False, extracted: str | os.PathLike | None = None) -> Path:
    """Download (if needed), verify, extract and index LIVEC; return ``<data root>/livec``.

    A complete data set already there is returned untouched unless ``force``.
    ``download_fn(url, dest, *, sha256, size)`` defaults to
    :func:`robustbook.data.download.download`; it is called only when
    ``ChallengeDB_release.zip`` is not yet in ``archive_dir`` (and ``extracted`` is not given).
    ``extracted`` is a folder holding the already unzipped release (with ``Data/`` and ``Images/``).
    """
    out, archives, keep = output_folder(NAME, data_root, archive_dir, force)
    if keep:
        return out
    archive: Path | None = None
    if extracted is None:
        archive = fetch_archive(ARCHIVE, archives, download_fn or download)
    with atomic_dir(out) as tmp:
        if archive is not None:
            data_prefix = find_file_prefix(archive, MOS_FILE)
            parts = data_prefix.rstrip("/").split("/") if data_prefix else []
            if not parts or parts[-1] != DATA_FOLDER:
                raise ArchiveError(f"archive {archive} holds {MOS_FILE} outside a {DATA_FOLDER}/ folder "
                                   f"({data_prefix or 'top level'}): it is not the expected release")
            if _encrypted(archive):
                raise ArchiveError(f"archive {archive} is password protected; unzip it yourself and pass "
                                   f"--extracted DIR (the folder holding {DATA_FOLDER}/ and {IMAGE_FOLDER}/)")
            root_prefix = "".join(p + "/" for p in parts[:-1])
            src = extract(archive, tmp / "_src", members_prefix=root_prefix or None)
        else:
            src = Path(extracted).expanduser().resolve()
        for folder in (DATA_FOLDER, IMAGE_FOLDER):
            if not (src / folder).is_dir():
                raise ArchiveError(f"the LIVEC release at {src} has no folder {folder}/: it is not the expected "
                                   f"release; delete it and download it again")
            if archive is not None:
                os.replace(src / folder, tmp / folder)
            else:
                shutil.copytree(src / folder, tmp / folder)
        if archive is not None:
            shutil.rmtree(src)
        samples, excluded = _samples(tmp, seed, include_training_images)
        meta = DatasetMeta(
            name=NAME, task="nr-iqa", score_name="MOS", score_range=SCORE_RANGE, higher_is_better=True,
            source=f"LIVE In the Wild Image Quality Challenge Database (Ghadiyaram & Bovik, IEEE TIP 2016), {HOMEPAGE}",
            notes=("Mean opinion score on 0..100 (AllMOS_release), higher is better. No-reference: each image is "
                   "its own content (ref_id = image name). "
                   + (f"The {N_TRAINING} training images (Images/trainingImages, the first entries of "
                      f"{NAMES_FILE}) are left out, as in published protocols. " if excluded else
                      f"The {N_TRAINING} training images are included. ")
                   + f"Split: seeded 6:2:2 of the images (split_by_reference, seed={seed}); LIVEC has no official "
                     "split."),
            extra={"split": f"seeded 6:2:2 (split_by_reference, seed={seed})", "seed": seed,
                   "label_files": [f"{DATA_FOLDER}/{NAMES_FILE}", f"{DATA_FOLDER}/{MOS_FILE}"],
                   "training_images_excluded": excluded,
                   "archives": ({archive.name: archive_digest(archive, ARCHIVE)} if archive is not None
                                else {"extracted": str(extracted)})})
        write_dataset(tmp, samples, meta)
    record_archives(archive)  # trusted on first use only now that it was extracted and indexed
    counts = split_counts(samples)
    print(f"{NAME}: {len(samples)} images, split {counts}", file=sys.stderr)
    return out


def _encrypted(archive: Path) -> bool:
    try:
        with zipfile.ZipFile(archive) as zf:
            return any(info.flag_bits & 0x1 for info in zf.infolist())
    except (zipfile.BadZipFile, OSError):
        return False  # a tar, or corrupt: extract() decides


def _loadmat(path: Path) -> dict[str, Any]:
    from scipy.io import loadmat

    if not path.is_file():
        raise LabelFileError(f"label file {path.name} is missing from {DATA_FOLDER}/: the archive is not the "
                             f"expected one")
    try:
        return loadmat(path)
    except Exception as exc:  # scipy raises ValueError/TypeError/MatReadError on damaged files
        raise LabelFileError(f"{path.name} cannot be read as a MATLAB file ({exc}); delete the archive and "
                             f"download it again") from None


def _vector(mat: dict[str, Any], key: str, file: str) -> list[Any]:
    import numpy as np

    if key not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise LabelFileError(f"{file} has no variable {key!r} (it has {keys}); it is not the official file")
    return list(np.asarray(mat[key], dtype=object).ravel())


def _name(cell: Any) -> str:
    import numpy as np

    a = np.asarray(cell).ravel()
    return str(a[0] if a.size else "").strip()


def _samples(folder: Path, seed: int, include_training: bool) -> tuple[list[Sample], bool]:
    names = [_name(c) for c in _vector(_loadmat(folder / DATA_FOLDER / NAMES_FILE), "AllImages_release", NAMES_FILE)]
    mos = [float(v) for v in _vector(_loadmat(folder / DATA_FOLDER / MOS_FILE), "AllMOS_release", MOS_FILE)]
    if len(names) != len(mos):
        raise LabelFileError(f"{NAMES_FILE} lists {len(names)} images but {MOS_FILE} has {len(mos)} scores")
    if len(names) != N_TOTAL:
        print(f"warning: the release lists {len(names)} images, not the published {N_TOTAL}", file=sys.stderr)
    start = 0 if include_training else N_TRAINING
    rows = []
    for i, (name, score) in enumerate(zip(names, mos, strict=True)):
        if i < start:
            continue
        where = f"{NAMES_FILE} entry {i + 1} ({name!r})"
        if not name or Path(name).name != name:
            raise LabelFileError(f"{where}: not a plain file name")
        if not (math.isfinite(score) and SCORE_RANGE[0] <= score <= SCORE_RANGE[1]):
            raise LabelFileError(f"{where}: MOS {score} is outside the published range {SCORE_RANGE}")
        rel = f"{IMAGE_FOLDER}/{name}"
        if not (folder / rel).is_file():
            alt = f"{IMAGE_FOLDER}/{TRAINING_FOLDER}/{name}"
            if i < N_TRAINING and (folder / alt).is_file():
                rel = alt
            else:
                raise LabelFileError(f"{where}: image {rel!r} is not in the archive")
        rows.append((rel, name, score))
    if not rows:
        raise LabelFileError(f"{NAMES_FILE} lists no images beyond the {N_TRAINING} training images")
    splits = split_by_reference([n for _, n, _ in rows], (0.6, 0.2, 0.2), seed=seed)
    samples = [Sample(image=rel, score=score, ref_id=name, split=splits[name]) for rel, name, score in rows]
    return samples, not include_training


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = base_parser("Download, verify and index LIVE In the Wild (LIVEC) into <data root>/livec/.")
    parser.add_argument("--include-training-images", action="store_true",
                        help=f"keep the {N_TRAINING} training images (left out by default, as in published protocols)")
    parser.add_argument("--extracted", default=None,
                        help="folder of an already unzipped release (holding Data/ and Images/); no archive needed")
    args = parser.parse_args(argv)
    return run(lambda: prepare(data_root=args.data_root, archive_dir=args.archive_dir, seed=args.seed,
                               force=args.force, include_training_images=args.include_training_images,
                               extracted=args.extracted))


if __name__ == "__main__":
    sys.exit(main())
