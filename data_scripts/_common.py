"""Plumbing shared by the data preparation scripts of ``data_scripts/`` (not part of the library).

Every script follows the same steps: resolve the data root and the archive
folder, leave a complete data set alone (unless ``--force``), take each
official archive from the archive folder or download it, verify it, extract it
safely, index it, and write the data set folder atomically (built in a hidden
temporary sibling folder, renamed at the very end).

Trust on first use records only good archives: :func:`fetch_archive` verifies
an archive against its official or recorded SHA-256 but records none itself;
the script calls :func:`record_archives` once the data set was built from them,
so a truncated archive or an HTML page saved in its place is never trusted,
and its good replacement is not refused as corrupt.

Exit codes of :func:`run`: 0 done, 1 a failure the message explains (network,
checksum, corrupt archive, label file, disk), 2 a data root or archive folder
that cannot be created or written (choose another one).
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustbook.data.download import (
    ArchiveError,
    DownloadError,
    NetworkUnavailable,
    archive_members,
    read_sidecar,
    sidecar_path,
    verify_file,
    write_sidecar,
)
from robustbook.data.manifest import ManifestError, Sample, read_dataset
from robustbook.data.root import ENV_VAR as ROOT_ENV
from robustbook.data.root import data_root as _data_root

ARCHIVE_SUBDIR = "archives"
DownloadFn = Callable[..., Path]


class LabelFileError(ValueError):
    """A label file of a data set is missing, lacks a column, or has a malformed row."""


class DataRootError(RuntimeError):
    """The data root or the archive folder cannot be created or written."""


#: archives verified in this process (size, official or recorded digest) whose first-use digest is not
#: recorded yet: ``{resolved path: sha256}``; :func:`record_archives` records them once they proved good
_UNRECORDED: dict[Path, str] = {}


def ensure_writable_dir(folder: Path, what: str, option: str) -> Path:
    """Create ``folder`` (and its parents) and check that files can be created in it.

    :class:`DataRootError` naming the folder and the option that chooses
    another one otherwise (``/proc/x``, a read-only mount, a path below a file).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryDirectory(dir=folder, prefix=".robustbook-write-test.").cleanup()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DataRootError(f"cannot create or write the {what} {folder}: {reason}"
                            + (f" ({exc.filename})" if exc.filename and str(exc.filename) != str(folder) else "")
                            + f". Choose a folder you can write with {option}.") from None
    return folder


@dataclass(frozen=True)
class ArchiveSpec:
    """One official file of a data set: its file name in the archive folder and where it comes from."""

    filename: str
    url: str
    sha256: str | None = None     # None: no official checksum; trust on first use (``<file>.sha256``)
    size: int | None = None
    manual: bool = False          # behind a request form or a cloud drive: placed by hand, never downloaded


def resolve_dirs(data_root: str | os.PathLike | None, archive_dir: str | os.PathLike | None) -> tuple[Path, Path]:
    """The data root (see :func:`robustbook.data.root.data_root`) and the archive folder (``<root>/archives``)."""
    root = _data_root(data_root)
    archives = Path(archive_dir).expanduser().resolve() if archive_dir else root / ARCHIVE_SUBDIR
    return root, archives


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a complete, valid data set (manifest, metadata and every listed file)."""
    try:
        read_dataset(folder, check_files=True)
    except ManifestError:
        return False
    return True


def output_folder(name: str, data_root: str | os.PathLike | None, archive_dir: str | os.PathLike | None,
                  force: bool) -> tuple[Path, Path, bool]:
    """``(out, archives, keep)``: the data set folder ``<root>/<name>``, the archive folder, and
    whether a complete data set is already there and is to be left alone (``force`` rebuilds)."""
    root, archives = resolve_dirs(data_root, archive_dir)
    out = root / name
    try:
        keep = not force and is_complete(out)
    except OSError as exc:  # e.g. a data root that may not be read
        raise DataRootError(f"cannot read the data root {root}: {exc.strerror or exc}. Choose another one with "
                            f"--data-root DIR or ${ROOT_ENV}.") from None
    if keep:
        print(f"{out} is already complete; pass --force to rebuild it", file=sys.stderr)
    else:
        ensure_writable_dir(root, "data root", f"--data-root DIR or ${ROOT_ENV}")
    return out, archives, keep


def split_counts(samples: Sequence, splits: Sequence[str] = ("train", "val", "test")) -> dict[str, int]:
    """How many samples each split holds (for the closing line of a script)."""
    return {sp: sum(s.split == sp for s in samples) for sp in splits}


def array_items(data: Mapping[str, tuple[Sequence, Sequence]]) -> Iterator[tuple[str, str, int, Any]]:
    """``(split, id, label, image)`` for every image of ``{split: (images, labels)}``, ids
    ``<split>-00000`` (zero-padded to at least five digits), in order: what
    :func:`robustbook.data.classification.write_classification` takes."""
    for split, (images, labels) in data.items():
        width = max(5, len(str(len(labels))))
        for i in range(len(labels)):
            yield split, f"{split}-{i:0{width}d}", int(labels[i]), images[i]


def fetch_archive(spec: ArchiveSpec, archive_dir: Path, download_fn: DownloadFn) -> Path:
    """Return ``archive_dir/spec.filename``, verified; download it first when it is not there.

    A file already in the archive folder (downloaded earlier or placed by
    hand) is verified, never downloaded again: against ``spec.sha256`` when
    known, else against its ``.sha256`` record. An empty file or an HTML page
    is refused. Without a record yet, none is written here: the script calls
    :func:`record_archives` once the data set was built from the archive.
    """
    dest = archive_dir / spec.filename
    if not dest.is_file() and spec.manual:
        raise DownloadError(f"{spec.filename} is not in the archive folder {archive_dir}, and this script cannot "
                            f"download it (the data set's page hands it out after a form or from a cloud drive). "
                            f"Get it from\n    {spec.url}\n(accepting the data set's terms), place it at\n    {dest}\n"
                            f"under exactly that name, and run again.", url=spec.url, dest=dest)
    if not dest.is_file():
        ensure_writable_dir(archive_dir, "archive folder", "--archive-dir DIR (or --data-root DIR)")
        had_record = read_sidecar(dest) is not None
        print(f"downloading {spec.url}\n         -> {dest}", file=sys.stderr)
        dest = Path(download_fn(spec.url, dest, sha256=spec.sha256, size=spec.size))
        if spec.sha256 is None and not had_record:
            sidecar_path(dest).unlink(missing_ok=True)  # a download's own first-use record waits for extraction
    digest = verify_file(dest, sha256=spec.sha256, size=spec.size, record=False)
    if spec.sha256 is None and read_sidecar(dest) is None:
        _UNRECORDED[dest.resolve()] = digest
    return dest


def record_archives(*paths: Path | None) -> None:
    """Record the first-use SHA-256 of each archive in ``paths`` that :func:`fetch_archive` verified
    without a record, now that a data set was built from it (paths it did not fetch are ignored).
    A record that cannot be written is a warning: the archive is trusted again on the next run."""
    for path in paths:
        if path is None:
            continue
        digest = _UNRECORDED.pop(Path(path).resolve(), None)
        if digest is None:
            continue
        try:
            write_sidecar(path, digest)
        except OSError as exc:
            print(f"warning: could not record the SHA-256 of {path} in {sidecar_path(path)} ({exc.strerror or exc})",
                  file=sys.stderr)


def archive_digest(path: Path, spec: ArchiveSpec) -> str | None:
    """The SHA-256 an archive was verified against (official, recorded, or to be recorded on first use)."""
    return spec.sha256 or read_sidecar(path) or _UNRECORDED.get(Path(path).resolve())


def find_folder_prefix(archive: Path, folder: str) -> str:
    """The shortest member path of ``archive`` ending in the folder ``folder`` (e.g. ``"1024x768"``)."""
    best: str | None = None
    for name in archive_members(archive):
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
        if not parts or parts[0] == "__MACOSX" or folder not in parts[:-1]:
            continue
        prefix = "/".join(parts[:parts.index(folder) + 1])
        if best is None or len(prefix) < len(best):
            best = prefix
    if best is None:
        raise ArchiveError(f"archive {archive} has no folder {folder!r}: it is not the expected archive or its "
                           f"layout changed; delete it and download it again")
    return best + "/"


def find_file_prefix(archive: Path, filename: str) -> str:
    """The folder (``""`` or ``"a/b/"``) of the shallowest member of ``archive`` named ``filename``."""
    best: list[str] | None = None
    for name in archive_members(archive):
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
        if parts and parts[-1] == filename and parts[0] != "__MACOSX" and (best is None or len(parts) < len(best)):
            best = parts
    if best is None:
        raise ArchiveError(f"archive {archive} has no file {filename!r}: it is not the expected archive or its "
                           f"layout changed; delete it and download it again")
    return "".join(p + "/" for p in best[:-1])


def read_label_csv(path: Path, required: Sequence[str]) -> tuple[list[dict[str, str]], list[str]]:
    """Read a label CSV; return its rows and columns. :class:`LabelFileError` when a required column is missing."""
    if not path.is_file():
        raise LabelFileError(f"label file {path} is missing: the archive is not the expected one")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in required if c not in columns]
            if missing:
                raise LabelFileError(f"label file {path.name} lacks the column(s) {missing}; its columns are "
                                     f"{columns}. It is not the official file (or its format changed); delete the "
                                     f"archive and download it again")
            rows = []
            for i, r in enumerate(reader, start=2):
                if None in r:
                    raise LabelFileError(f"label file {path.name} line {i} has more fields than its header "
                                         f"{columns}; is this the official file?")
                rows.append({(k or "").strip(): (v or "").strip() for k, v in r.items()})
    except UnicodeDecodeError as exc:
        raise LabelFileError(f"label file {path.name} is not UTF-8 text (byte {exc.start}: {exc.reason}): it is "
                             f"not the official file; delete the archive and download it again") from None
    except csv.Error as exc:
        raise LabelFileError(f"label file {path.name} is not a valid CSV file ({exc}); delete the archive and "
                             f"download it again") from None
    if not rows:
        raise LabelFileError(f"label file {path.name} has no rows")
    return rows, columns


def parse_score(value: str, *, where: str, low: float, high: float) -> float:
    """Parse a score and check it lies in ``[low, high]``; :class:`LabelFileError` otherwise."""
    try:
        score = float(value)
    except ValueError:
        raise LabelFileError(f"{where}: score {value!r} is not a number") from None
    if not math.isfinite(score) or not low <= score <= high:
        raise LabelFileError(f"{where}: score {value} is outside the published range [{low}, {high}]; "
                             f"is this the right label file?")
    return score


def seed_int(text: str) -> int:
    """An argparse type: a seed in 0 .. 2**32-1 (what NumPy's seeding takes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 2**32 - 1:
        raise argparse.ArgumentTypeError(f"{value} is outside 0 .. {2**32 - 1}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1")
    return value


def base_parser(description: str) -> argparse.ArgumentParser:
    """The options every data script takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data-root", default=None,
                   help="data root (default: $ROBUSTBOOK_DATA, else data/ in the repository)")
    p.add_argument("--archive-dir", default=None,
                   help="folder holding (or receiving) the downloaded archives (default: <data root>/archives)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the train/val/test split (default 0)")
    p.add_argument("--force", action="store_true", help="rebuild even when a complete data set is there")
    return p


def archive_main(description: str, prepare: Callable[..., Path], argv: Sequence[str] | None) -> int:
    """The command line of a script whose ``prepare`` takes only the options of :func:`base_parser`
    (``--seed`` is accepted and ignored: the data set has an official split)."""
    args = base_parser(description).parse_args(argv)
    return run(lambda: prepare(data_root=args.data_root, archive_dir=args.archive_dir, force=args.force))


def run(prepare: Callable[[], Path]) -> int:
    """Run ``prepare`` for the command line: a plain message, no traceback, on expected failures.

    Exit code 2 when the data root or archive folder cannot be used, 1 for
    every other explained failure (network, checksum, archive, label file, and
    operating-system errors such as a full disk, which name the file)."""
    try:
        folder = prepare()
    except DataRootError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NetworkUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except (DownloadError, ArchiveError, LabelFileError, ManifestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    print(f"data set ready: {folder}")
    return 0


# ----------------------------------------------------------- denoising sets (source 003, chapter 2)

#: what ``dataset.json`` says about every denoising set: clean images (and noisy ones) carry no score
DENOISING_SCORE = {"task": "denoising", "score_name": "none", "score_range": (0.0, 1.0), "higher_is_better": True}


def build_denoising_set(out: Path, name: str, fill: Callable[[Path], list[Sample]], *, source: str, notes: str,
                        archives: Sequence[tuple[Path, ArchiveSpec]], extra: Mapping[str, Any] | None = None) -> Path:
    """Build the denoising data set ``out`` atomically: ``fill(tmp)`` puts the images into the hidden
    temporary folder and returns their :class:`Sample` rows; then the manifest and ``dataset.json``
    (task ``denoising``, score 0, the archives' digests) are written, the folder is renamed onto ``out``
    and the archives' first-use digests are recorded. Prints the split counts; returns ``out``."""
    from robustbook.atomic import atomic_dir
    from robustbook.data.manifest import DatasetMeta, write_dataset

    with atomic_dir(out) as tmp:
        samples = fill(tmp)
        if not samples:
            raise ArchiveError(f"{name}: the archives held no images; they are not the expected ones")
        meta = DatasetMeta(name=name, source=source, notes=notes, **DENOISING_SCORE,
                           extra={**(extra or {}), "archives": {p.name: archive_digest(p, s) for p, s in archives}})
        write_dataset(tmp, samples, meta)
    record_archives(*(p for p, _ in archives))
    print(f"{name}: {len(samples)} images, split {split_counts(samples)}", file=sys.stderr)
    return out


def extract_pairs(archive: Path, folder: str, dest: Path, *, noisy: str, clean: str,
                  exts: Sequence[str] = (".png", ".jpg", ".jpeg")) -> list[tuple[str, Path, Path]]:
    """Extract ``folder/`` of ``archive`` into ``dest`` and match its noisy/clean pairs by name:
    ``<stem><noisy><ext>`` with ``<stem><clean><ext>`` (e.g. ``_real.JPG`` / ``_mean.JPG`` of PolyU and CC).
    Returns ``[(stem, noisy path, clean path)]`` sorted by stem; :class:`ArchiveError` for a folder
    without pairs or an image without its partner. Other files (e.g. a method's outputs) are ignored."""
    from robustbook.data.download import extract

    src = extract(archive, dest, members_prefix=find_folder_prefix(archive, folder))
    found: dict[str, dict[str, Path]] = {}
    for f in src.iterdir():
        if not f.is_file() or f.suffix.lower() not in exts:
            continue
        for role, suffix in (("noisy", noisy), ("clean", clean)):
            if f.stem.endswith(suffix):
                found.setdefault(f.stem[:-len(suffix)], {})[role] = f
    if not found:
        raise ArchiveError(f"{folder}/ in {archive} holds no *{noisy}/*{clean} image pairs: it is not the "
                           f"expected archive; delete it and download it again")
    lonely = sorted(stem for stem, roles in found.items() if len(roles) != 2)
    if lonely:
        raise ArchiveError(f"{folder}/ in {archive}: {len(lonely)} image(s) without their noisy or clean partner "
                           f"(e.g. {lonely[0]!r}); the archive is incomplete, delete it and download it again")
    return [(stem, found[stem]["noisy"], found[stem]["clean"]) for stem in sorted(found)]


def pair_samples(tmp: Path, pairs: Sequence[tuple[str, Path, Path]], name: str, split: str) -> list[Sample]:
    """Move each (noisy, clean) pair of :func:`extract_pairs` into ``tmp/noisy`` and ``tmp/clean`` and index it;
    image = noisy, reference = clean (PolyU, CC)."""
    (tmp / "noisy").mkdir()
    (tmp / "clean").mkdir()
    samples = []
    for stem, noisy, clean in pairs:
        os.replace(noisy, tmp / "noisy" / f"{stem}{noisy.suffix}")
        os.replace(clean, tmp / "clean" / f"{stem}{clean.suffix}")
        samples.append(Sample(image=f"noisy/{stem}{noisy.suffix}", reference=f"clean/{stem}{clean.suffix}",
                              score=0.0, ref_id=stem, split=split, distortion=name))
    return samples


def prepare_cropped_pairs(name: str, spec: ArchiveSpec, folder: str, count: int, label: str, *,
                          data_root: str | os.PathLike | None, archive_dir: str | os.PathLike | None, force: bool,
                          download_fn: DownloadFn | None, check_counts: bool, source: str, notes: str) -> Path:
    """Download (if needed), verify, extract and index a real-noise set published as ``folder/<stem>_real.*``
    (noisy) beside ``<stem>_mean.*`` (clean) in one archive, all test images (PolyU, CC); ``count`` pairs are
    expected unless ``check_counts`` is off. Returns ``<data root>/<name>``."""
    from robustbook.data.download import download

    out, archives, keep = output_folder(name, data_root, archive_dir, force)
    if keep:
        return out
    archive = fetch_archive(spec, archives, download_fn or download)

    def fill(tmp: Path) -> list[Sample]:
        pairs = extract_pairs(archive, folder, tmp / "_src", noisy="_real", clean="_mean")
        if check_counts and len(pairs) != count:
            raise ArchiveError(f"{folder}/ in {archive} holds {len(pairs)} pairs, {label} has {count}; delete the "
                               f"archive and download it again")
        samples = pair_samples(tmp, pairs, label, "test")
        shutil.rmtree(tmp / "_src")
        return samples

    return build_denoising_set(out, name, fill, archives=[(archive, spec)], source=source, notes=notes)


__all__ = ["ARCHIVE_SUBDIR", "ArchiveSpec", "LabelFileError", "DataRootError", "ensure_writable_dir",
           "resolve_dirs", "is_complete", "output_folder", "split_counts", "array_items", "fetch_archive",
           "record_archives", "archive_digest", "seed_int", "positive_int", "find_folder_prefix", "find_file_prefix",
           "read_label_csv", "parse_score", "base_parser", "archive_main", "run", "DENOISING_SCORE",
           "build_denoising_set", "extract_pairs", "pair_samples", "prepare_cropped_pairs"]


# ------------------------------------------------------------------ full-reference sets of source 002
#: how many random 6:2:2 splits by reference a data set without an official split records (source 002, §5)
N_RANDOM_SPLITS = 10
SPLITS_FILE = "splits.csv"


def random_reference_splits(ref_ids: Sequence[str], seed: int, folder: Path,
                            n: int = N_RANDOM_SPLITS) -> dict[str, str]:
    """Write the ``n`` random 6:2:2 splits by reference (seeds ``0 .. n-1``) to ``folder/splits.csv``
    (columns ``ref_id, split_0 .. split_{n-1}``) and return ``{ref_id: split}`` of ``seed`` for the manifest.

    Source 002 reports "the mean value for 10 runs on random splits in 6:2:2 proportion" based on
    reference images; preparing with ``--seed k`` (k < n) puts split ``k`` in the manifest."""
    from robustbook.data.manifest import split_by_reference

    refs = sorted(set(ref_ids))
    table = [split_by_reference(refs, (0.6, 0.2, 0.2), seed=k) for k in range(n)]
    chosen = table[seed] if seed < n else split_by_reference(refs, (0.6, 0.2, 0.2), seed=seed)
    with (folder / SPLITS_FILE).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["ref_id"] + [f"split_{k}" for k in range(n)])
        for r in refs:
            w.writerow([r] + [t[r] for t in table])
    return chosen


def fetch_or_explain(spec: ArchiveSpec, archive_dir: Path, download_fn: DownloadFn, homepage: str) -> Path:
    """:func:`fetch_archive`, or, for a file with no direct download (``spec.url == ""``, e.g. behind a
    form or on a file-hosting page), a :class:`DownloadError` saying where to get it and where to put it."""
    if not spec.url and not (archive_dir / spec.filename).is_file():
        raise DownloadError(f"{spec.filename} has no direct download: get it from {homepage} and place it at "
                            f"{archive_dir / spec.filename} (or pass --archive-dir DIR), then run the script again")
    return fetch_archive(spec, archive_dir, download_fn)


def unpack(archive: Path, dest: Path, marker: str) -> Path:
    """Extract the folder of ``archive`` that holds the file ``marker`` into ``dest`` (zip or tar; a RAR
    archive through ``unrar``, ``7z`` or ``bsdtar`` if one is installed) and return ``dest``."""
    from robustbook.data.download import extract

    if archive.read_bytes()[:4] == b"Rar!":
        import shutil
        import subprocess

        tools = [(t, cmd) for t, cmd in (("unrar", ["unrar", "x", "-o+", "-inul"]), ("7z", ["7z", "x", "-y"]),
                                         ("bsdtar", ["bsdtar", "-xf"])) if shutil.which(t)]
        if not tools:
            raise ArchiveError(f"{archive} is a RAR archive and none of unrar, 7z, bsdtar is installed: install one "
                               f"(e.g. apt-get install unrar), or extract it yourself and pass --extracted DIR")
        raw = dest.parent / (dest.name + ".rar-out")
        raw.mkdir(parents=True)
        tool, cmd = tools[0]
        args = cmd + [str(archive), f"-o{raw}" if tool == "7z" else str(raw) + "/"]
        if tool == "bsdtar":
            args = cmd + [str(archive), "-C", str(raw)]
        if subprocess.run(args, capture_output=True).returncode != 0:
            raise ArchiveError(f"{tool} could not extract {archive}: it is corrupt; delete it and download it again")
        hits = sorted(raw.rglob(marker), key=lambda p: len(p.parts))
        if not hits:
            raise ArchiveError(f"archive {archive} has no file {marker!r}: it is not the expected archive")
        os.replace(hits[0].parent, dest)
        return dest
    prefix = find_file_prefix(archive, marker)
    return extract(archive, dest, members_prefix=prefix or None)


def source_folder(extracted: str | os.PathLike | None, marker: str) -> Path | None:
    """The folder of an already extracted release (``--extracted DIR``), checked to hold ``marker``."""
    if extracted is None:
        return None
    src = Path(extracted).expanduser().resolve()
    hits = [src] if (src / marker).is_file() else sorted((p.parent for p in src.rglob(marker)),
                                                           key=lambda p: len(p.parts))
    if not hits:
        raise ArchiveError(f"--extracted {src} holds no {marker}: pass the folder of the unpacked release")
    return hits[0]


def prepare_fr(name: str, *, data_root: str | os.PathLike | None, archive_dir: str | os.PathLike | None,
               force: bool, specs: Sequence[ArchiveSpec], download_fn: DownloadFn, homepage: str,
               build: Callable[[Path, list[Path]], tuple[list, Any]], extracted: Path | None = None) -> Path:
    """The steps every full-reference script of source 002 shares: output folder, archives (fetched,
    or an ``extracted`` release instead), ``build(tmp, sources) -> (samples, meta)`` inside an
    atomic folder, the manifest, first-use records, a closing line. ``sources`` are the archives
    in ``specs`` order, or ``[extracted]``."""
    from robustbook.atomic import atomic_dir
    from robustbook.data.manifest import write_dataset

    out, archives, keep = output_folder(name, data_root, archive_dir, force)
    if keep:
        return out
    paths = [] if extracted is not None else [fetch_or_explain(s, archives, download_fn, homepage) for s in specs]
    with atomic_dir(out) as tmp:
        samples, meta = build(tmp, paths or [extracted])
        meta.extra.setdefault("archives", {p.name: archive_digest(p, s) for p, s in zip(paths, specs, strict=False)}
                              if paths else {"extracted": str(extracted)})
        write_dataset(tmp, samples, meta)
    record_archives(*paths)
    print(f"{name}: {len(samples)} samples of {len({s.ref_id for s in samples})} references, "
          f"split {split_counts(samples)}", file=sys.stderr)
    return out


def fr_parser(description: str, extracted: bool = True) -> argparse.ArgumentParser:
    """:func:`base_parser` plus ``--extracted DIR`` (an unpacked release instead of the archive)."""
    p = base_parser(description)
    if extracted:
        p.add_argument("--extracted", default=None,
                       help="folder of an already unpacked release (no archive needed)")
    return p


__all__ += ["N_RANDOM_SPLITS", "SPLITS_FILE", "random_reference_splits", "fetch_or_explain", "unpack",
            "source_folder", "prepare_fr", "fr_parser"]
