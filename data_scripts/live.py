"""Prepare LIVE Image Quality Assessment Database Release 2 (Sheikh, Sabir & Bovik, IEEE TIP 2006).

The result goes into ``<data root>/live/``.

LIVE release 2: 29 pristine reference images (``refimgs/``, BMP) distorted by five
distortion types, 982 images in all, of which 779 are distorted and 203 are
copies of a reference that the authors included as hidden references
(``orgs == 1``). Full-reference IQA; the score is DMOS (difference mean opinion
score): **lower is better**.

Official file (https://live.ece.utexas.edu/research/quality/subjective.htm; the
download link is given after a request form):
``databaserelease2.zip``. What the script expects inside (confirmed against
several public loaders, e.g. the DBCNN/HyperIQA ``LIVEFolder`` code; the
archive itself could not be inspected while writing this):

* five folders ``jp2k/`` (227 images), ``jpeg/`` (233), ``wn/`` (174), ``gblur/`` (174),
  ``fastfading/`` (174) holding ``img1.bmp`` ... ``imgN.bmp`` (and an ``info.txt``);
* ``refimgs/`` with the 29 references (``bikes.bmp``, ``coinsinfountain.bmp``, ...);
* ``dmos.mat`` with ``dmos`` (1 x 982) and ``orgs`` (1 x 982, 1 = the "distorted"
  image is the reference itself), in the order jp2k img1..img227, jpeg img1..img233,
  wn, gblur, fastfading (:data:`DISTORTIONS`);
* ``refnames_all.mat`` with ``refnames_all`` (1 x 982 cell of reference file names,
  same order);
* often also ``dmos_realigned.mat`` (``dmos_new``, ``dmos_std``, ``orgs``), the DMOS
  realigned across the study's sessions; ``realigned=True`` (``--realigned``) uses it.

Everything may sit below one top folder (``databaserelease2/``): the script finds
``dmos.mat`` wherever it is and takes the folders beside it.

The archive has been distributed **password protected** (the password comes with
the request form's answer; Python's zipfile can open only legacy ZipCrypto). An
encrypted archive is refused with a message; pass ``--password`` (or set
``ROBUSTBOOK_LIVE_PASSWORD``), or unzip it yourself and pass ``--extracted DIR``
(the folder holding ``dmos.mat``) instead of an archive.

Result: ``refimgs/``, the five distortion folders, ``dmos.mat``,
``refnames_all.mat``, ``manifest.csv`` (image = distorted image, reference =
``refimgs/<name>``, ref_id = reference name without extension, distortion = folder
name, level = -1 (LIVE has no levels), score = DMOS) and ``dataset.json``. The 203
hidden references (``orgs == 1``) are left out, as every published protocol does
(779 images remain).

Scores: DMOS as published, lower is better. The nominal scale is 0..100, but
the unrealigned DMOS of release 2 reaches slightly past it; the manifest's
``score_range`` is ``(min(0, floor(min DMOS)), max(100, ceil(max DMOS)))`` so that the
data layer maps every score into [0, 1] with 1 = best.

Split: by reference content, 6:2:2, seeded
(:func:`robustbook.data.manifest.split_by_reference`): 17/6/6 of the 29 references.

Usage: ``python data_scripts/live.py [--data-root DIR] [--archive-dir DIR] [--seed 0] [--force]
[--realigned] [--password PW | --extracted DIR]``. The data set's terms apply (see data_scripts/README.md):
cite Sheikh et al. (2006) and the LIVE release 2 web page.
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

NAME = "live"
HOMEPAGE = "https://live.ece.utexas.edu/research/quality/subjective.htm"
ARCHIVE = ArchiveSpec("databaserelease2.zip", "https://live.ece.utexas.edu/research/quality/release2/databaserelease2.zip")
LABEL_FILE = "dmos.mat"
REALIGNED_FILE = "dmos_realigned.mat"
REFNAMES_FILE = "refnames_all.mat"
REF_FOLDER = "refimgs"
PASSWORD_ENV = "ROBUSTBOOK_LIVE_PASSWORD"
#: The distortion folders in the order of ``dmos.mat`` and their image counts.
DISTORTIONS: tuple[tuple[str, int], ...] = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174),
                                            ("fastfading", 174))
N_TOTAL = sum(n for _, n in DISTORTIONS)  # 982
NOMINAL_RANGE = (0.0, 100.0)


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            seed: int = 0, force: bool = False, download_fn: DownloadFn | None = None, *,
            realigned: bool = False, password: str | None = None,
            extracted: str | os.PathLike | None = None) -> Path:
    """Download (if needed), verify, extract and index LIVE release 2; return ``<data root>/live``.

    A complete data set already there is returned untouched unless ``force``.
    ``download_fn(url, dest, *, sha256, size)`` defaults to
    :func:`robustbook.data.download.download`; it is called only when
    ``databaserelease2.zip`` is not yet in ``archive_dir`` (and ``extracted`` is not given).
    ``realigned=True`` takes the scores from ``dmos_realigned.mat`` (``dmos_new``).
    ``password`` (default ``$ROBUSTBOOK_LIVE_PASSWORD``) opens an encrypted archive;
    ``extracted`` is a folder holding the already unzipped release (the folder of ``dmos.mat``).
    """
    out, archives, keep = output_folder(NAME, data_root, archive_dir, force)
    if keep:
        return out
    password = password if password is not None else os.environ.get(PASSWORD_ENV) or None
    archive: Path | None = None
    if extracted is None:
        archive = fetch_archive(ARCHIVE, archives, download_fn or download)
    with atomic_dir(out) as tmp:
        if archive is not None:
            _extract_release(archive, tmp / "_src", password)
            src = tmp / "_src"
        else:
            src = Path(extracted).expanduser().resolve()
            if not (src / LABEL_FILE).is_file():
                raise ArchiveError(f"--extracted {src} holds no {LABEL_FILE}: pass the folder of the unzipped "
                                   f"release that holds {LABEL_FILE}, {REFNAMES_FILE}, {REF_FOLDER}/ and the "
                                   f"distortion folders")
        for folder in (REF_FOLDER, *(d for d, _ in DISTORTIONS)):
            if not (src / folder).is_dir():
                raise ArchiveError(f"the LIVE release has no folder {folder}/ beside {LABEL_FILE}: it is not the "
                                   f"expected archive (release 2); delete it and download it again")
            _move_or_copy(src / folder, tmp / folder, move=archive is not None)
        label_files = [LABEL_FILE, REFNAMES_FILE] + ([REALIGNED_FILE] if (src / REALIGNED_FILE).is_file() else [])
        for name in label_files:
            if not (src / name).is_file():
                raise LabelFileError(f"label file {name} is missing beside {LABEL_FILE}: the archive is not the "
                                     f"expected one")
            _move_or_copy(src / name, tmp / name, move=archive is not None)
        if archive is not None:
            shutil.rmtree(src)
        if realigned and not (tmp / REALIGNED_FILE).is_file():
            raise LabelFileError(f"--realigned needs {REALIGNED_FILE}, which this release does not hold")
        samples, lo, hi, score_note = _samples(tmp, seed, realigned)
        meta = DatasetMeta(
            name=NAME, task="fr-iqa", score_name="DMOS", score_range=(lo, hi), higher_is_better=False,
            source=("LIVE Image Quality Assessment Database Release 2 (Sheikh, Sabir & Bovik, IEEE TIP 2006), "
                    f"{HOMEPAGE}"),
            notes=(f"{score_note} Lower is better. score_range = (min(0, floor(min)), max(100, ceil(max))) of the "
                   f"scores so that every score maps into [0, 1]. The hidden references (orgs == 1) are left out. "
                   f"distortion = folder (jp2k, jpeg, wn, gblur, fastfading); LIVE has no levels (level = -1). "
                   f"Split: seeded 6:2:2 by reference content (split_by_reference, seed={seed})."),
            extra={"split": f"seeded 6:2:2 by reference (split_by_reference, seed={seed})", "seed": seed,
                   "label_file": REALIGNED_FILE if realigned else LABEL_FILE, "realigned": realigned,
                   "archives": ({archive.name: archive_digest(archive, ARCHIVE)} if archive is not None
                                else {"extracted": str(extracted)})})
        write_dataset(tmp, samples, meta)
    record_archives(archive)  # trusted on first use only now that it was extracted and indexed
    counts = split_counts(samples)
    print(f"{NAME}: {len(samples)} distorted images of {len({s.ref_id for s in samples})} references, "
          f"split {counts}", file=sys.stderr)
    return out


def _move_or_copy(src: Path, dst: Path, *, move: bool) -> None:
    if move:
        os.replace(src, dst)
    elif src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy2(src, dst)


def _encrypted(archive: Path) -> bool:
    if not zipfile.is_zipfile(archive):
        return False
    try:
        with zipfile.ZipFile(archive) as zf:
            return any(info.flag_bits & 0x1 for info in zf.infolist())
    except zipfile.BadZipFile:
        return False  # extract() reports the corruption


def _extract_release(archive: Path, dest: Path, password: str | None) -> None:
    """Extract the folder of ``dmos.mat`` (safely: :func:`robustbook.data.download.extract`)."""
    prefix = find_file_prefix(archive, LABEL_FILE)
    if not _encrypted(archive):
        extract(archive, dest, members_prefix=prefix or None)
        return
    if not password:
        raise ArchiveError(f"archive {archive} is password protected. Pass --password (or set ${PASSWORD_ENV}) with "
                           f"the password LIVE sent you, or unzip it yourself and pass --extracted DIR (the folder "
                           f"holding {LABEL_FILE})")
    # zipfile decrypts legacy ZipCrypto only. Decrypt into a plain folder, then run it through the
    # same member checks as extract() by re-reading it as a directory: names are validated here.
    dest.mkdir(parents=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = info.filename.replace("\\", "/")
                if not name.startswith(prefix) or info.is_dir():
                    continue
                rel = name[len(prefix):]
                parts = [p for p in rel.split("/") if p not in ("", ".")]
                if not parts or ".." in parts or name.startswith("/") or ":" in parts[0]:
                    raise ArchiveError(f"{archive}: member {name!r} has an unsafe path; refusing to extract")
                target = dest.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info, pwd=password.encode()) as fh, open(target, "wb") as outf:
                    shutil.copyfileobj(fh, outf)
    except RuntimeError as exc:  # bad password
        raise ArchiveError(f"cannot decrypt {archive}: {exc}. Check the password") from None
    except NotImplementedError as exc:  # AES encryption
        raise ArchiveError(f"cannot decrypt {archive} with Python's zipfile ({exc}); unzip it yourself and pass "
                           f"--extracted DIR") from None


def _loadmat(path: Path) -> dict[str, Any]:
    from scipy.io import loadmat

    try:
        return loadmat(path)
    except Exception as exc:  # scipy raises ValueError/TypeError/MatReadError on damaged files
        raise LabelFileError(f"{path.name} cannot be read as a MATLAB file ({exc}); delete the archive and "
                             f"download it again") from None


def _vector(mat: dict[str, Any], key: str, file: str) -> list[Any]:
    if key not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise LabelFileError(f"{file} has no variable {key!r} (it has {keys}); it is not the official file")
    import numpy as np

    v = np.asarray(mat[key]).ravel()
    if len(v) != N_TOTAL:
        raise LabelFileError(f"{file}: {key} has {len(v)} entries, expected {N_TOTAL} (release 2)")
    return list(v)


def _name(cell: Any) -> str:
    """A MATLAB cell entry (``array(['bikes.bmp'])``) as a plain string."""
    import numpy as np

    a = np.asarray(cell).ravel()
    return str(a[0] if a.size else "").strip()


def _samples(folder: Path, seed: int, realigned: bool) -> tuple[list[Sample], float, float, str]:
    dm = _loadmat(folder / LABEL_FILE)
    if realigned:
        rm = _loadmat(folder / REALIGNED_FILE)
        scores = _vector(rm, "dmos_new", REALIGNED_FILE)
        orgs = _vector(rm, "orgs", REALIGNED_FILE) if "orgs" in rm else _vector(dm, "orgs", LABEL_FILE)
        note = f"Score: realigned DMOS (dmos_new of {REALIGNED_FILE})."
    else:
        scores = _vector(dm, "dmos", LABEL_FILE)
        orgs = _vector(dm, "orgs", LABEL_FILE)
        note = f"Score: DMOS (dmos of {LABEL_FILE}, not realigned)."
    refnames = [_name(c) for c in _vector(_loadmat(folder / REFNAMES_FILE), "refnames_all", REFNAMES_FILE)]
    rows = []
    i = 0
    for dist, count in DISTORTIONS:
        for k in range(1, count + 1):
            rows.append((dist, f"{dist}/img{k}.bmp", refnames[i], float(scores[i]), int(orgs[i])))
            i += 1
    kept = []
    for dist, image, ref, score, org in rows:
        where = f"{LABEL_FILE} entry {image}"
        if org:
            continue
        if not math.isfinite(score):
            raise LabelFileError(f"{where}: score {score} is not finite")
        if not ref:
            raise LabelFileError(f"{REFNAMES_FILE}: {image} has no reference name")
        for p in (image, f"{REF_FOLDER}/{ref}"):
            if not (folder / p).is_file():
                raise LabelFileError(f"{where}: image {p!r} is not in the archive")
        kept.append((dist, image, ref, score))
    if not kept:
        raise LabelFileError(f"{LABEL_FILE}: every entry is marked as a reference (orgs == 1)")
    values = [s for *_, s in kept]
    lo = min(NOMINAL_RANGE[0], math.floor(min(values)))
    hi = max(NOMINAL_RANGE[1], math.ceil(max(values)))
    ref_ids = [Path(ref).stem for _, _, ref, _ in kept]
    splits = split_by_reference(ref_ids, (0.6, 0.2, 0.2), seed=seed)
    samples = [Sample(image=image, reference=f"{REF_FOLDER}/{ref}", score=score, ref_id=rid, split=splits[rid],
                      distortion=dist, level=-1)
               for (dist, image, ref, score), rid in zip(kept, ref_ids, strict=True)]
    return samples, float(lo), float(hi), note


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = base_parser("Download, verify and index LIVE release 2 into <data root>/live/.")
    parser.add_argument("--realigned", action="store_true",
                        help=f"use the realigned DMOS of {REALIGNED_FILE} (dmos_new) instead of {LABEL_FILE}")
    parser.add_argument("--password", default=None,
                        help=f"password of an encrypted databaserelease2.zip (default ${PASSWORD_ENV})")
    parser.add_argument("--extracted", default=None,
                        help="folder of an already unzipped release (the one holding dmos.mat); no archive needed")
    args = parser.parse_args(argv)
    return run(lambda: prepare(data_root=args.data_root, archive_dir=args.archive_dir, seed=args.seed,
                               force=args.force, realigned=args.realigned, password=args.password,
                               extracted=args.extracted))


if __name__ == "__main__":
    sys.exit(main())
