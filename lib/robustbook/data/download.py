"""Download and unpack data set archives: resumable, verified, safe, atomic.

Three building blocks used by the scripts in ``data_scripts/`` (and by anyone
preparing a data set by hand):

* :func:`download` fetches one URL with the standard library only. A partial
  download lives in ``<dest>.part`` and is resumed with an HTTP ``Range``
  request on the next run (a server that ignores ``Range`` makes it start over
  cleanly). ``dest`` appears only once the whole file is there and verified.
* :func:`extract` unpacks a zip or tar(.gz/.bz2/.xz) archive refusing every
  member that could write outside the target folder, into a temporary sibling
  folder renamed onto the target only when everything succeeded.
* :func:`file_sha256` hashes a file in chunks.

Checksums
---------
When a data set's authors publish a SHA-256, pass it as ``sha256``. Most IQA
data sets publish none; then ``sha256=None`` means **trust on first use**: the
first complete download (or the first run that finds a file placed by hand)
writes ``<dest>.sha256`` in ``sha256sum`` format, and every later run verifies
the file against it. Delete that ``.sha256`` file if you deliberately replace
the archive with a different version.

Only a plausible file is ever recorded: an empty file, or one that starts like
an HTML page (a login, error or redirect page saved in place of the archive),
is refused before any digest is written. Callers that can check more (that the
archive opens and extracts) pass ``record=False`` and write the record with
:func:`write_sidecar` once it has: the scripts of ``data_scripts/`` do so, so
a truncated or wrong archive is never trusted and its good replacement is not
refused later.

Errors
------
``DownloadError`` (a ``RuntimeError``) for every download failure;
``NetworkUnavailable`` when the host cannot be reached (no network, DNS
failure, refused connection, timeout); ``ChecksumMismatch`` when the bytes are
not the expected ones. ``ArchiveError`` when an archive is corrupt or not an
archive, ``UnsafeArchiveError`` when a member would escape the target folder.
Every download error names the exact path where the file can be placed by
hand, so a machine without network can still be used.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import posixpath
import shutil
import ssl
import stat
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from robustbook.atomic import atomic_dir, atomic_path

CHUNK = 1 << 20
USER_AGENT = "robustbook-data/0.1 (+python urllib)"
_HTML_HEADS = (b"<!doctype", b"<html")


class DownloadError(RuntimeError):
    """A file could not be downloaded or did not verify."""

    def __init__(self, message: str, *, url: str = "", dest: Path | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.dest = dest


class NetworkUnavailable(DownloadError):
    """The host could not be reached: no network, DNS failure, refused connection or timeout."""


class ChecksumMismatch(DownloadError):
    """The file's SHA-256 (or size) is not the expected one."""


class ArchiveError(RuntimeError):
    """An archive is corrupt, truncated, not an archive, or lacks the expected members."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would be written outside the target folder (or is a device file)."""


# --------------------------------------------------------------------------- hashing

def file_sha256(path: str | os.PathLike) -> str:
    """Return the hex SHA-256 of the file at ``path``, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def sidecar_path(dest: str | os.PathLike) -> Path:
    """The trust-on-first-use checksum file of ``dest``: ``<dest>.sha256``."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".sha256")


def read_sidecar(dest: str | os.PathLike) -> str | None:
    """The SHA-256 recorded in ``<dest>.sha256``, or ``None`` when there is none."""
    side = sidecar_path(dest)
    if not side.is_file():
        return None
    parts = side.read_text().split()
    return parts[0].lower() if parts else None


def write_sidecar(dest: str | os.PathLike, digest: str) -> Path:
    """Record ``digest`` for ``dest`` in ``<dest>.sha256`` (``sha256sum`` format), atomically."""
    dest = Path(dest)
    side = sidecar_path(dest)
    with atomic_path(side) as tmp:
        tmp.write_text(f"{digest}  {dest.name}\n")
    return side


def check_plausible(path: str | os.PathLike) -> None:
    """Refuse an empty file or one that starts like an HTML page with :class:`ChecksumMismatch`.

    Run before any digest of ``path`` is recorded: neither can be a data set's
    archive, and trusting one would make its good replacement look corrupt.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise ChecksumMismatch(f"{path} is empty (0 bytes), not the expected file: an interrupted copy or "
                               f"download. Delete it and download it again, or place the right file there.",
                               dest=path)
    with open(path, "rb") as fh:
        head = fh.read(512)
    if _looks_like_html(head):
        raise ChecksumMismatch(f"{path} is an HTML page, not the expected file (probably a login, error or "
                               f"redirect page saved in its place). Delete it and download the file again (the "
                               f"data set may need you to accept its terms in a browser first), or place the "
                               f"right file there.", dest=path)


def verify_file(path: str | os.PathLike, *, sha256: str | None = None, size: int | None = None,
                tofu: bool = True, record: bool = True) -> str:
    """Check ``path`` against ``size`` and ``sha256`` (or its ``.sha256`` record); return its digest.

    With ``sha256=None`` and ``tofu=True`` the digest recorded in
    ``<path>.sha256`` is the expected one; when there is no record yet, the
    current digest is recorded (trust on first use) unless ``record=False``
    (the caller records it with :func:`write_sidecar` once the file has proved
    good, e.g. extracted). An empty file or an HTML page is refused first
    (:func:`check_plausible`). Raises :class:`ChecksumMismatch` naming expected
    and actual values; the file is left in place (callers decide whether to
    delete it).
    """
    path = Path(path)
    check_plausible(path)
    if size is not None and path.stat().st_size != size:
        raise ChecksumMismatch(f"{path} has {path.stat().st_size} bytes, expected {size}: it is incomplete or "
                               f"not the right file; delete it and download it again", dest=path)
    got = file_sha256(path)
    expected = sha256.lower() if sha256 else (read_sidecar(path) if tofu else None)
    if expected is None:
        if tofu and record:
            write_sidecar(path, got)
        return got
    if got != expected:
        origin = "expected" if sha256 else f"recorded in {sidecar_path(path)} on first use"
        raise ChecksumMismatch(f"SHA-256 mismatch for {path}:\n  {origin}: {expected}\n  got: {got}\n"
                               f"The file is corrupt or a different version. Delete it and download it again"
                               + ("" if sha256 else f" (or delete {sidecar_path(path).name} if you replaced "
                                                    f"the file on purpose)") + ".", dest=path)
    return got


# --------------------------------------------------------------------------- download

def _manual_hint(url: str, dest: Path) -> str:
    return (f"To place the file by hand: download\n    {url}\n(accepting the data set's terms) on a machine that "
            f"has network, put it at\n    {dest}\nand run again: a file already there is verified and used, "
            f"nothing is downloaded.")


def _looks_like_html(head: bytes) -> bool:
    return head.lstrip().lower().startswith(_HTML_HEADS)


def _html_error(url: str, dest: Path, why: str) -> DownloadError:
    return DownloadError(f"got an HTML page, probably a login/redirect page, instead of the archive from {url} "
                         f"({why}). The data set may need you to accept its terms or log in in a browser first.\n"
                         + _manual_hint(url, dest), url=url, dest=dest)


def _unlink(*paths: Path) -> None:
    for p in paths:
        if p.exists() or p.is_symlink():
            p.unlink()


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, size: int | None = None,
             progress: bool = True, timeout: float = 60, record: bool = True) -> Path:
    """Download ``url`` to ``dest`` (resuming ``<dest>.part``) and verify it; return ``dest``.

    * ``dest`` already there and verifying (against ``sha256``, ``size`` or its
      ``.sha256`` record): nothing is downloaded. There but not verifying: it
      is deleted and downloaded again.
    * A partial ``<dest>.part`` is resumed with ``Range: bytes=N-``; a server
      answering ``200`` instead of ``206`` makes the download restart from 0.
    * An HTML answer (``Content-Type: text/html`` or a body starting with
      ``<!DOCTYPE``/``<html``) is refused: it is a login or redirect page.
    * A checksum mismatch deletes the downloaded file and raises
      :class:`ChecksumMismatch` with expected and actual digests.
    * An empty answer is refused too.
    * ``sha256=None``: trust on first use, see the module docstring;
      ``record=False`` checks against an existing record but writes none.
    * No network: :class:`NetworkUnavailable`, whose message says where to
      place the file by hand. ``file://`` URLs work too (no resume).
    """
    dest = Path(dest).expanduser().resolve()
    part = dest.with_name(dest.name + ".part")
    if dest.is_file():
        try:
            verify_file(dest, sha256=sha256, size=size, record=record)
            return dest
        except ChecksumMismatch as exc:
            print(f"{exc}\nDeleting {dest} and downloading it again.", file=sys.stderr)
            dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    _fetch(url, part, dest, size=size, progress=progress, timeout=timeout)
    with open(part, "rb") as fh:
        if _looks_like_html(fh.read(512)):
            _unlink(part)
            raise _html_error(url, dest, "the downloaded file starts like an HTML document")
    got_size = part.stat().st_size
    if got_size == 0:
        _unlink(part)
        raise DownloadError(f"the server sent an empty file for {url}; nothing was saved.\n"
                            + _manual_hint(url, dest), url=url, dest=dest)
    if size is not None and got_size != size:
        _unlink(part)
        raise ChecksumMismatch(f"the download of {url} has {got_size} bytes, expected {size}; it was deleted.\n"
                               + _manual_hint(url, dest), url=url, dest=dest)
    digest = file_sha256(part)
    expected = sha256.lower() if sha256 else read_sidecar(dest)
    if expected is not None and digest != expected:
        _unlink(part)
        origin = "expected" if sha256 else f"recorded in {sidecar_path(dest).name} on first use"
        raise ChecksumMismatch(f"SHA-256 mismatch for the download of {url} (deleted, not saved as {dest}):\n"
                               f"  {origin}: {expected}\n  got: {digest}\n"
                               + ("" if sha256 else f"If the file was changed on purpose upstream, delete "
                                                    f"{sidecar_path(dest)} and run again.\n")
                               + "Otherwise the server sent a corrupt or different file; try again later or "
                                 "place a good copy by hand.\n" + _manual_hint(url, dest), url=url, dest=dest)
    os.replace(part, dest)
    if sha256 is None and record and read_sidecar(dest) is None:
        write_sidecar(dest, digest)
    return dest


def _open(url: str, offset: int, timeout: float, dest: Path):
    """Open ``url`` asking for bytes from ``offset``; map failures onto our errors."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return None  # the .part is already as long as (or longer than) the file: start over
        raise DownloadError(f"the server answered HTTP {exc.code} {exc.reason} for {url}.\n"
                            + _manual_hint(url, dest), url=url, dest=dest) from None
    except urllib.error.URLError as exc:
        raise _classify(url, dest, exc.reason) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _classify(url, dest, exc) from None


def _classify(url: str, dest: Path, reason: object) -> DownloadError:
    if url.startswith("file:"):
        return DownloadError(f"cannot read {url}: {reason}", url=url, dest=dest)
    if isinstance(reason, ssl.SSLError):
        return DownloadError(f"TLS/certificate error talking to {url}: {reason}.\n" + _manual_hint(url, dest),
                             url=url, dest=dest)
    return NetworkUnavailable(f"no network: could not reach {url} ({reason}).\n" + _manual_hint(url, dest),
                              url=url, dest=dest)


def _fetch(url: str, part: Path, dest: Path, *, size: int | None, progress: bool, timeout: float) -> None:
    """Bring ``part`` to the full length of ``url``'s content (resuming when possible)."""
    offset = part.stat().st_size if part.is_file() else 0
    if offset and size is not None and offset >= size:
        if offset == size:
            return  # complete already; verification decides
        _unlink(part)
        offset = 0
    for _attempt in range(2):
        resp = _open(url, offset, timeout, dest)
        if resp is None:  # HTTP 416: the .part does not fit the file any more
            _unlink(part)
            offset = 0
            continue
        with resp:
            status = getattr(resp, "status", None) or 200
            if offset and (status != 206 or not _range_starts_at(resp.headers.get("Content-Range"), offset)):
                if status == 206:  # a range, but not the one asked for: ask again for everything
                    _unlink(part)
                    offset = 0
                    continue
                offset = 0  # the server ignored Range and sends everything: restart cleanly
            _receive(resp, url, part, dest, offset=offset, size=size, progress=progress)
            return
    raise DownloadError(f"the server keeps answering {url} with unusable ranges.\n" + _manual_hint(url, dest),
                        url=url, dest=dest)


def _receive(resp, url: str, part: Path, dest: Path, *, offset: int, size: int | None, progress: bool) -> None:
    """Stream the body of ``resp`` into ``part`` (appending from ``offset``) with a progress bar."""
    from tqdm.auto import tqdm

    ctype = (resp.headers.get("Content-Type") or "").lower()
    if ctype.startswith("text/html"):
        raise _html_error(url, dest, f"Content-Type {ctype}")
    length = resp.headers.get("Content-Length")
    total = offset + int(length) if length and length.isdigit() else size
    bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
               desc=dest.name, disable=not progress, leave=False)
    try:
        with open(part, "ab" if offset else "wb") as out:
            first = not offset
            while True:
                try:
                    chunk = resp.read(CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise NetworkUnavailable(
                        f"network interrupted: the download of {url} broke off ({exc}); {part.name} keeps what "
                        f"arrived and the next run resumes it.\n" + _manual_hint(url, dest),
                        url=url, dest=dest) from None
                if not chunk:
                    break
                if first and _looks_like_html(chunk[:512]):
                    out.close()
                    _unlink(part)
                    raise _html_error(url, dest, "the body starts like an HTML document")
                first = False
                out.write(chunk)
                bar.update(len(chunk))
    finally:
        bar.close()
    got = part.stat().st_size
    if total is not None and got != total:
        raise NetworkUnavailable(f"network interrupted: the download of {url} stopped at {got} of {total} bytes; "
                                 f"{part.name} keeps what arrived and the next run resumes it.\n"
                                 + _manual_hint(url, dest), url=url, dest=dest)


def _range_starts_at(content_range: str | None, offset: int) -> bool:
    """Whether ``Content-Range: bytes A-B/N`` starts at ``offset`` (missing header: assume yes)."""
    if not content_range:
        return True
    try:
        unit, rest = content_range.split(None, 1)
        return unit == "bytes" and int(rest.split("-", 1)[0]) == offset
    except ValueError:
        return False


# --------------------------------------------------------------------------- extraction

@dataclass(frozen=True)
class _Member:
    name: str                    # path inside the archive, "/"-separated
    kind: str                    # file, dir, symlink, hardlink, special
    link: str                    # link target (symlink: relative to the member; hardlink: archive path)
    open: Callable[[], IO[bytes]]


def archive_members(archive: str | os.PathLike) -> list[str]:
    """Names of the members of a zip or tar archive (raises :class:`ArchiveError` when corrupt)."""
    with _open_archive(Path(archive)) as members:
        return [m.name for m in members]


class _open_archive:
    """Context manager yielding the :class:`_Member` list of a zip or tar archive."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self._handle: zipfile.ZipFile | tarfile.TarFile | None = None

    def __enter__(self) -> list[_Member]:
        a = self.archive
        if not a.is_file():
            raise ArchiveError(f"archive {a} does not exist")
        try:
            if zipfile.is_zipfile(a):
                zf = zipfile.ZipFile(a)
                self._handle = zf
                return [_zip_member(zf, info) for info in zf.infolist()]
            if _is_tar(a):
                tf = tarfile.open(a, "r:*")
                self._handle = tf
                return [_tar_member(tf, info) for info in tf.getmembers()]
        except (*_CORRUPT, OSError) as exc:
            self.__exit__(None, None, None)
            raise _corrupt(a, exc) from None
        raise _corrupt(a, "it is neither a zip nor a tar archive")

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except _CORRUPT:
        return False


_CORRUPT: tuple[type[BaseException], ...] = (zipfile.BadZipFile, tarfile.TarError, gzip.BadGzipFile, EOFError,
                                              zlib.error, ValueError, NotImplementedError, RuntimeError)
try:  # optional compressors
    import lzma
    _CORRUPT = _CORRUPT + (lzma.LZMAError,)
except ImportError:  # pragma: no cover
    pass


def _corrupt(archive: Path, why: object) -> ArchiveError:
    return ArchiveError(f"archive {archive} is corrupt, truncated or not an archive ({why}). "
                        f"Delete it (and {sidecar_path(archive).name} if present) and download it again.")


def _zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Member:
    mode = info.external_attr >> 16
    if info.is_dir():
        kind = "dir"
    elif stat.S_ISLNK(mode):
        kind = "symlink"
    elif mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) and stat.S_IFMT(mode):
        kind = "special"
    else:
        kind = "file"
    link = zf.read(info).decode("utf-8", "replace") if kind == "symlink" else ""
    return _Member(info.filename.replace("\\", "/"), kind, link, lambda: zf.open(info))


def _tar_member(tf: tarfile.TarFile, info: tarfile.TarInfo) -> _Member:
    if info.isreg():
        kind = "file"
    elif info.isdir():
        kind = "dir"
    elif info.issym():
        kind = "symlink"
    elif info.islnk():
        kind = "hardlink"
    else:
        kind = "special"  # character/block devices, fifos, ...

    def opener() -> IO[bytes]:
        fh = tf.extractfile(info)
        if fh is None:  # pragma: no cover - only for non-regular members
            raise ArchiveError(f"cannot read member {info.name}")
        return fh

    return _Member(info.name, kind, info.linkname, opener)


def _safe_relpath(name: str, archive: Path) -> str:
    """Validate a member name; return it normalised (no leading ``./``, no trailing ``/``)."""
    if "\x00" in name:
        raise UnsafeArchiveError(f"{archive}: member name {name!r} contains a NUL byte; refusing to extract")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} contains '..' (path traversal); refusing to extract")
    return "/".join(parts)


def _strip(rel: str, prefix: str) -> str | None:
    """``rel`` below ``prefix`` (``None`` when outside it); ``prefix`` is normalised, may be ``""``."""
    if not prefix:
        return rel
    if rel == prefix:
        return ""
    return rel[len(prefix) + 1:] if rel.startswith(prefix + "/") else None


def _inside(root: Path, path: Path) -> bool:
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root + os.sep)


def extract(archive: str | os.PathLike, dest_dir: str | os.PathLike, *,
            members_prefix: str | None = None) -> Path:
    """Unpack a zip or tar(.gz/.bz2/.xz) ``archive`` into ``dest_dir`` safely and atomically; return it.

    ``members_prefix`` (e.g. ``"1024x768/"``) extracts only the members below
    that folder of the archive and strips it, so ``1024x768/1.jpg`` becomes
    ``dest_dir/1.jpg``; :class:`ArchiveError` when no member lies below it.

    Refused with :class:`UnsafeArchiveError`: absolute paths, ``..``
    components, symbolic or hard links resolving outside ``dest_dir``, device
    files and fifos. Everything is written into a temporary sibling folder that
    replaces ``dest_dir`` only after the last member was written, so a failure
    leaves neither a half-extracted folder nor a changed ``dest_dir``. A
    corrupt archive raises :class:`ArchiveError` naming the file.
    """
    archive = Path(archive)
    dest_dir = Path(dest_dir)
    prefix = _safe_relpath(members_prefix, archive) if members_prefix else ""
    with _open_archive(archive) as members, atomic_dir(dest_dir) as tmp:
        n = 0
        try:
            for m in members:
                n += _extract_member(m, tmp, prefix, archive)
        except ArchiveError:
            raise
        except _CORRUPT as exc:
            raise _corrupt(archive, exc) from None
        if prefix and n == 0:
            raise ArchiveError(f"archive {archive} has no member below {members_prefix!r}: it is not the expected "
                               f"archive or its layout changed")
        for link in _links(tmp):
            if not _inside(tmp, link):
                raise UnsafeArchiveError(f"{archive}: link {link.relative_to(tmp)} resolves outside the target "
                                         f"folder; refusing to extract")
    return dest_dir


def _links(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink():
                yield p


def _extract_member(m: _Member, root: Path, prefix: str, archive: Path) -> int:
    """Write one member below ``root``; return 1 when something was written, else 0."""
    rel = _strip(_safe_relpath(m.name, archive), prefix)
    if rel is None:
        return 0
    if m.kind == "special":
        raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a device file or fifo; refusing to extract")
    if rel == "":
        return 0
    target = root / rel
    if not _inside(root, target.parent):
        raise UnsafeArchiveError(f"{archive}: member {m.name!r} would be written through a link outside the "
                                 f"target folder; refusing to extract")
    if target.is_symlink():
        raise UnsafeArchiveError(f"{archive}: member {m.name!r} would overwrite a link; refusing to extract")
    if m.kind == "dir":
        target.mkdir(parents=True, exist_ok=True)
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    if m.kind == "symlink":
        if m.link.startswith("/") or posixpath.normpath(posixpath.join(posixpath.dirname(rel), m.link)) \
                .startswith(".."):
            raise UnsafeArchiveError(f"{archive}: symlink {m.name!r} -> {m.link!r} points outside the target "
                                     f"folder; refusing to extract")
        os.symlink(m.link, target)
        if not _inside(root, target):
            raise UnsafeArchiveError(f"{archive}: symlink {m.name!r} -> {m.link!r} resolves outside the target "
                                     f"folder; refusing to extract")
        return 1
    if m.kind == "hardlink":
        src_rel = _strip(_safe_relpath(m.link, archive), prefix) if m.link else None
        src = root / src_rel if src_rel else None
        if src is None or not _inside(root, src) or not src.is_file():
            raise UnsafeArchiveError(f"{archive}: hard link {m.name!r} -> {m.link!r} points outside the extracted "
                                     f"files; refusing to extract")
        shutil.copyfile(src, target)
        return 1
    with open(target, "wb") as out:
        try:
            src_fh = m.open()
        except (*_CORRUPT, OSError) as exc:
            raise _corrupt(archive, f"member {m.name}: {exc}") from None
        with src_fh:
            while True:
                try:
                    chunk = src_fh.read(CHUNK)
                except (*_CORRUPT, OSError) as exc:
                    raise _corrupt(archive, f"member {m.name}: {exc}") from None
                if not chunk:
                    break
                out.write(chunk)
    return 1


__all__ = ["download", "extract", "file_sha256", "verify_file", "check_plausible", "archive_members", "sidecar_path",
           "read_sidecar", "write_sidecar", "DownloadError", "NetworkUnavailable", "ChecksumMismatch",
           "ArchiveError", "UnsafeArchiveError"]
