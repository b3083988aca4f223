"""One manifest format for every data set of the book.

A prepared data set is a folder ``<data root>/<name>/`` holding

* ``manifest.csv`` — one row per sample, columns :data:`COLUMNS`:

  ========== =========================================================
  image      path of the (distorted) image, relative to the folder
  reference  path of the pristine reference image ("" for no-reference sets)
  score      the quality score as published (MOS or DMOS) or, for
             classification sets, the integer class label
  ref_id     identifier of the source content; train and test never
             share a ``ref_id``
  split      ``train``, ``val`` or ``test``
  distortion distortion type ("" when unknown or pristine)
  level      distortion level (0 = pristine, -1 = unknown)
  ========== =========================================================

* ``dataset.json`` — metadata: ``name``, ``task`` (``nr-iqa``, ``fr-iqa``, ``denoising``,
  ``classification``), ``score_name`` (MOS/DMOS/label), ``score_range``,
  ``higher_is_better``, ``source`` (where it came from) and ``notes``.

Both files are written atomically; a folder without both is not a data set.
"""
from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from robustbook.atomic import atomic_path, write_json

COLUMNS = ("image", "reference", "score", "ref_id", "split", "distortion", "level")
SPLITS = ("train", "val", "test")
TASKS = ("nr-iqa", "fr-iqa", "classification", "denoising")
MANIFEST = "manifest.csv"
META = "dataset.json"


class ManifestError(ValueError):
    """A manifest or its metadata is missing, malformed or points at missing files."""


@dataclass(frozen=True)
class Sample:
    """One row of a manifest."""

    image: str
    score: float
    ref_id: str
    split: str
    reference: str = ""
    distortion: str = ""
    level: int = -1


@dataclass
class DatasetMeta:
    """The ``dataset.json`` of a prepared data set."""

    name: str
    task: str
    score_name: str
    score_range: tuple[float, float]
    higher_is_better: bool
    source: str
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ManifestError(f"task {self.task!r} is not one of {TASKS}")
        lo, hi = self.score_range
        if not lo < hi:
            raise ManifestError(f"score_range {self.score_range} must be (low, high) with low < high")
        self.score_range = (float(lo), float(hi))


def write_dataset(folder: str | Path, samples: Iterable[Sample], meta: DatasetMeta) -> Path:
    """Validate ``samples`` and write ``manifest.csv`` and ``dataset.json`` into ``folder``."""
    folder = Path(folder)
    rows = list(samples)
    _validate(rows, folder, check_files=True, score_range=meta.score_range)
    with atomic_path(folder / MANIFEST) as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS)
            w.writeheader()
            for s in rows:
                w.writerow({k: getattr(s, k) for k in COLUMNS})
    d = asdict(meta)
    d["n_samples"] = len(rows)
    d["splits"] = {sp: sum(r.split == sp for r in rows) for sp in SPLITS}
    write_json(folder / META, d)
    return folder


def read_dataset(folder: str | Path, *, check_files: bool = True) -> tuple[list[Sample], DatasetMeta]:
    """Read and validate a prepared data set; raise :class:`ManifestError` with the reason.

    Both files are read as UTF-8 (a leading byte-order mark is allowed); a file
    that is not text, a malformed row, a path leaving the folder (``image`` or
    ``reference``) or a score outside ``score_range`` is reported with the
    file's name.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"data set folder {folder} does not exist; prepare it with its script in data_scripts/")
    for name in (MANIFEST, META):
        if not (folder / name).is_file():
            raise ManifestError(f"{folder} has no {name}: the data set was not prepared completely; "
                                "run its script in data_scripts/ again")
    meta = _read_meta(folder / META)
    rows: list[Sample] = []
    path = folder / MANIFEST
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise ManifestError(f"{path} has columns {reader.fieldnames}; expected {list(COLUMNS)}")
            for i, r in enumerate(reader, start=2):
                if None in r:
                    raise ManifestError(f"{path} line {i} is malformed: it has more than {len(COLUMNS)} fields")
                try:
                    rows.append(Sample(image=r["image"], reference=r["reference"], score=float(r["score"]),
                                       ref_id=r["ref_id"], split=r["split"], distortion=r["distortion"],
                                       level=int(r["level"])))
                except (TypeError, ValueError) as exc:
                    raise ManifestError(f"{path} line {i} is malformed: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); it is corrupt: prepare "
                            f"the data set again") from None
    except csv.Error as exc:
        raise ManifestError(f"{path} is not a valid CSV file ({exc}); it is corrupt: prepare the data set "
                            f"again") from None
    _validate(rows, folder, check_files=check_files, score_range=meta.score_range, where=path)
    return rows, meta


def _read_meta(path: Path) -> DatasetMeta:
    """Read ``dataset.json``; :class:`ManifestError` naming it when it is not what :class:`DatasetMeta` takes."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
        if not isinstance(raw, dict):
            raise TypeError(f"it holds a {type(raw).__name__}, not an object")
        raw.pop("n_samples", None)
        raw.pop("splits", None)
        raw["score_range"] = tuple(raw["score_range"])
        return DatasetMeta(**raw)
    except ManifestError as exc:
        raise ManifestError(f"{path} is corrupt: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path} is corrupt: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except (json.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
        raise ManifestError(f"{path} is corrupt: {type(exc).__name__}: {exc}") from exc


def _check_path(p: str, what: str, s: Sample, where: Path) -> None:
    """``p`` must be a plain relative path inside the data set folder (on POSIX and Windows alike)."""
    parts = p.replace("\\", "/").split("/")
    if "\x00" in p or p.startswith(("/", "\\")) or Path(p).is_absolute() \
            or (len(p) > 1 and p[1] == ":" and p[0].isalpha()) or ".." in parts:
        raise ManifestError(f"{where}: sample {s.image!r}: {what} path {p!r} must be relative to the data set folder "
                            f"and stay inside it")


def _validate(rows: Sequence[Sample], folder: Path, *, check_files: bool,
              score_range: tuple[float, float] | None = None, where: Path | None = None) -> None:
    where = where or folder
    if not rows:
        raise ManifestError(f"data set in {where} has no samples")
    by_ref: dict[str, str] = {}
    for s in rows:
        if s.split not in SPLITS:
            raise ManifestError(f"{where}: sample {s.image!r} has split {s.split!r}; valid: {SPLITS}")
        if not math.isfinite(s.score):
            raise ManifestError(f"{where}: sample {s.image!r} has a non-finite score {s.score}")
        if score_range is not None and not score_range[0] <= s.score <= score_range[1]:
            raise ManifestError(f"{where}: sample {s.image!r} has score {s.score}, outside the data set's "
                                f"score_range [{score_range[0]}, {score_range[1]}]")
        if not s.image:
            raise ManifestError(f"{where}: a sample has an empty image path")
        _check_path(s.image, "image", s, where)
        if s.reference:
            _check_path(s.reference, "reference", s, where)
        prev = by_ref.setdefault(s.ref_id, s.split)
        if prev != s.split:
            raise ManifestError(f"{where}: reference {s.ref_id!r} appears in both {prev!r} and {s.split!r}: "
                                "train and test must never share a reference")
        if check_files:
            for p in (s.image, s.reference):
                if p and not (folder / p).is_file():
                    raise ManifestError(f"{folder / p} listed in the manifest does not exist")


def split_by_reference(ref_ids: Iterable[str], fractions: Sequence[float] = (0.6, 0.2, 0.2),
                       seed: int = 0) -> dict[str, str]:
    """Assign each distinct reference id to train/val/test, deterministically.

    The 6:2:2 split by reference content is the one of source 002 (Datasets).
    Returns ``{ref_id: split}``.
    """
    import numpy as np

    if len(fractions) != 3 or any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    refs = sorted(set(ref_ids))
    order = np.random.default_rng(seed).permutation(len(refs))
    n = len(refs)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    out = {}
    for rank, idx in enumerate(order):
        out[refs[idx]] = "train" if rank < n_train else ("val" if rank < n_train + n_val else "test")
    return out


__all__ = ["COLUMNS", "SPLITS", "Sample", "DatasetMeta", "ManifestError", "write_dataset", "read_dataset",
           "split_by_reference", "MANIFEST", "META"]
