"""Prepare CSIQ (Larson & Chandler, J. Electronic Imaging 2010) into ``<data root>/csiq/``.

CSIQ: 30 reference images (512x512 PNG) distorted by six types (additive white noise, JPEG,
JPEG 2000, additive pink "1/f" noise, Gaussian blur, global contrast decrement) at four or five
levels: 866 distorted images. Full-reference IQA; the score is DMOS on 0..1, **lower is better**.

Official files (https://s2.smu.edu/~eclarson/csiq.html, "CSIQ database"; no direct archive URL,
so place the archive by hand): the script expects ``CSIQ.zip`` holding, anywhere inside,
``src_imgs/<image>.png``, ``dst_imgs/<type folder>/<image>.<TYPE>.<level>.png`` (type folders
``awgn, jpeg, jpeg2000, fnoise, blur, contrast``; the type token in the name in any case) and the
label workbook ``csiq.DMOS.xlsx`` (sheet with the columns ``image, dst_idx, dst_type, dst_lev,
dmos_std, dmos``; read with the standard library, no openpyxl needed; a CSV export
``csiq.DMOS.csv`` with the same columns is accepted instead). This layout follows public loaders
(e.g. DBCNN's ``CSIQFolder``); the archive could not be inspected while writing this.
``--extracted DIR`` takes an unpacked release instead of the archive.

Result: ``src_imgs/``, ``dst_imgs/``, the label file, ``manifest.csv`` (image = distorted image,
reference = ``src_imgs/<image>.png``, ref_id = image name, distortion = type folder, level),
``splits.csv`` (the 10 random 6:2:2 splits by reference of source 002: there is no official split)
and ``dataset.json``. The manifest holds split ``--seed`` (0..9).

Usage: ``python data_scripts/csiq.py [--data-root DIR] [--archive-dir DIR] [--seed 0] [--force]
[--extracted DIR]``. The data set's terms apply: see data_scripts/README.md.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # run as a script or loaded by path: find _common
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ArchiveSpec,
    DownloadFn,
    LabelFileError,
    fr_parser,
    parse_score,
    prepare_fr,
    random_reference_splits,
    read_label_csv,
    run,
    source_folder,
    unpack,
)

from robustbook.data.download import ArchiveError, download  # noqa: E402
from robustbook.data.manifest import DatasetMeta, Sample  # noqa: E402

NAME = "csiq"
HOMEPAGE = "https://s2.smu.edu/~eclarson/csiq.html"
ARCHIVE = ArchiveSpec("CSIQ.zip", "")
LABEL_XLSX, LABEL_CSV = "csiq.DMOS.xlsx", "csiq.DMOS.csv"
COLUMNS = ("image", "dst_type", "dst_lev", "dmos")
#: dst_type of the workbook -> (folder under dst_imgs/, token in the file name)
TYPES = {"noise": ("awgn", "awgn"), "jpeg": ("jpeg", "jpeg"), "jpeg 2000": ("jpeg2000", "jpeg2000"),
         "1/f noise": ("fnoise", "fnoise"), "blur": ("blur", "blur"), "contrast": ("contrast", "contrast")}
SCORE_RANGE = (0.0, 1.0)
_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def prepare(data_root: str | os.PathLike | None = None, archive_dir: str | os.PathLike | None = None,
            seed: int = 0, force: bool = False, download_fn: DownloadFn | None = None, *,
            extracted: str | os.PathLike | None = None) -> Path:
    """Verify, extract and index CSIQ (archive placed by hand, or ``extracted``); return ``<data root>/csiq``."""
    def build(tmp: Path, sources: list[Path]) -> tuple[list[Sample], DatasetMeta]:
        src = sources[0] if extracted is not None else unpack(sources[0], tmp / "_src", _marker(sources[0]))
        for folder in ("src_imgs", "dst_imgs"):
            if not (src / folder).is_dir():
                raise ArchiveError(f"the CSIQ release has no folder {folder}/ beside its label file: it is not the "
                                   f"expected archive; delete it and download it again")
            (shutil.copytree if extracted is not None else os.replace)(src / folder, tmp / folder)
        label = src / LABEL_XLSX if (src / LABEL_XLSX).is_file() else src / LABEL_CSV
        shutil.copy2(label, tmp / label.name)
        if extracted is None:
            shutil.rmtree(src)
        rows = _read_xlsx(tmp / label.name) if label.suffix == ".xlsx" else read_label_csv(tmp / label.name,
                                                                                         COLUMNS)[0]
        samples = _samples(rows, tmp, seed)
        meta = DatasetMeta(
            name=NAME, task="fr-iqa", score_name="DMOS", score_range=SCORE_RANGE, higher_is_better=False,
            source=f"CSIQ (Larson & Chandler, J. Electronic Imaging 2010), {HOMEPAGE}",
            notes=("Score: DMOS on 0..1, lower is better. distortion = type folder (awgn, jpeg, jpeg2000, fnoise, "
                   "blur, contrast). No official split: splits.csv holds 10 random 6:2:2 splits by reference "
                   f"(seeds 0..9); the manifest holds seed {seed}'s."),
            extra={"split": f"random 6:2:2 by reference, seed {seed} of splits.csv", "seed": seed,
                   "label_file": label.name})
        return samples, meta

    src = source_folder(extracted, LABEL_XLSX) if extracted is not None else None
    return prepare_fr(NAME, data_root=data_root, archive_dir=archive_dir, force=force, specs=[ARCHIVE],
                      download_fn=download_fn or download, homepage=HOMEPAGE, build=build, extracted=src)


def _marker(archive: Path) -> str:
    names = {n.replace("\\", "/").rsplit("/", 1)[-1] for n in zipfile.ZipFile(archive).namelist()} \
        if zipfile.is_zipfile(archive) else set()
    return LABEL_CSV if LABEL_CSV in names and LABEL_XLSX not in names else LABEL_XLSX


def _read_xlsx(path: Path) -> list[dict[str, str]]:
    """The rows of the first worksheet whose header holds :data:`COLUMNS` (standard library only)."""
    try:
        with zipfile.ZipFile(path) as zf:
            shared = []
            if "xl/sharedStrings.xml" in zf.namelist():
                for si in ET.fromstring(zf.read("xl/sharedStrings.xml")).iter(f"{_NS}si"):
                    shared.append("".join(t.text or "" for t in si.iter(f"{_NS}t")))
            sheets = sorted(n for n in zf.namelist() if n.startswith("xl/worksheets/sheet") and n.endswith(".xml"))
            for sheet in sheets:
                table = []
                for row in ET.fromstring(zf.read(sheet)).iter(f"{_NS}row"):
                    cells = {}
                    for c in row.iter(f"{_NS}c"):
                        col = "".join(ch for ch in c.get("r", "") if ch.isalpha())
                        v, t = c.find(f"{_NS}v"), c.get("t")
                        text = "".join(x.text or "" for x in c.iter(f"{_NS}t")) if t == "inlineStr" else \
                            (v.text or "" if v is not None else "")
                        cells[col] = shared[int(text)] if t == "s" and text else text
                    table.append(cells)
                for i, cells in enumerate(table[:20]):
                    header = {k: v.strip().lower() for k, v in cells.items()}
                    if set(COLUMNS) <= set(header.values()):
                        return [{header[k]: v.strip() for k, v in r.items() if k in header} for r in table[i + 1:]
                                if any(v.strip() for v in r.values())]
    except (zipfile.BadZipFile, ET.ParseError, KeyError, ValueError, IndexError) as exc:
        raise LabelFileError(f"{path.name} cannot be read as an Excel workbook ({exc}); delete the archive and "
                             f"download it again") from None
    raise LabelFileError(f"{path.name} has no sheet with the columns {list(COLUMNS)}: it is not the official file")


def _name(value: str) -> str:
    """``"1600.0"`` (a number stored by Excel) -> ``"1600"``; names stay as they are."""
    try:
        f = float(value)
        return str(int(f)) if f.is_integer() else value
    except ValueError:
        return value


def _samples(rows: list[dict[str, str]], folder: Path, seed: int) -> list[Sample]:
    files = {p.name.lower(): p.relative_to(folder).as_posix() for p in (folder / "dst_imgs").rglob("*") if p.is_file()}
    refs = {p.stem.lower(): p.relative_to(folder).as_posix() for p in (folder / "src_imgs").iterdir() if p.is_file()}
    parsed = []
    for i, r in enumerate(rows, start=2):
        where = f"CSIQ labels row {i}"
        image, kind = _name(r["image"]), r["dst_type"].strip().lower()
        if kind not in TYPES:
            raise LabelFileError(f"{where}: dst_type {r['dst_type']!r} is not one of {sorted(TYPES)}")
        try:
            level = int(float(r["dst_lev"]))
        except ValueError:
            raise LabelFileError(f"{where}: dst_lev {r['dst_lev']!r} is not a whole number") from None
        folder_name, token = TYPES[kind]
        dist = files.get(f"{image}.{token}.{level}.png".lower())
        if dist is None:
            raise LabelFileError(f"{where}: image {image}.{token.upper()}.{level}.png is not in dst_imgs/")
        if image.lower() not in refs:
            raise LabelFileError(f"{where}: reference {image}.png is not in src_imgs/")
        score = parse_score(r["dmos"], where=where, low=SCORE_RANGE[0], high=SCORE_RANGE[1])
        parsed.append(Sample(image=dist, reference=refs[image.lower()], score=score, ref_id=image, split="",
                             distortion=folder_name, level=level))
    if not parsed:
        raise LabelFileError("the CSIQ label file has no rows")
    splits = random_reference_splits([s.ref_id for s in parsed], seed, folder)
    return [dataclasses.replace(s, split=splits[s.ref_id]) for s in parsed]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    args = fr_parser("Verify and index CSIQ into <data root>/csiq/.").parse_args(argv)
    return run(lambda: prepare(data_root=args.data_root, archive_dir=args.archive_dir, seed=args.seed,
                               force=args.force, extracted=args.extracted))


if __name__ == "__main__":
    sys.exit(main())
