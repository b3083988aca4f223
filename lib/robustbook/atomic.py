"""Atomic writes: a file or folder is either complete or absent, never half-written.

Temporary siblings carry their owner in their name (``.<name>.<pid>@<host>.<random>.partial``,
``.tmp`` for files), so the sweep of leftovers that every new attempt performs removes only those
of processes that are dead (same host, pid gone): a concurrent writer's live folder is never
touched. Leftovers of another host are left alone (their owner's liveness cannot be checked).
What is renamed into place gets the permissions an ordinary ``open``/``mkdir`` would give it
(``0o666``/``0o777`` minus the umask), not the ``0600``/``0700`` of :mod:`tempfile`.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_OWNER = re.compile(r"^(\d+)@([A-Za-z0-9-]+)\.[A-Za-z0-9_]+$")   # <pid>@<host>.<random>
_LEGACY = re.compile(r"^[A-Za-z0-9_]+$")                            # <random>, written before owners


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def owner_tag() -> str:
    """``<pid>@<host>``: who owns a temporary sibling."""
    return f"{os.getpid()}@{_host()}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (a zombie counts as dead). Off POSIX: assume it does."""
    if pid <= 0:
        return False
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_stale(entry: str, name: str, suffix: str) -> bool:
    """Whether ``entry`` is a temporary sibling of ``name`` (ending in ``suffix``) left by a dead process."""
    head = f".{name}."
    if not (entry.startswith(head) and entry.endswith(suffix)) or len(entry) <= len(head) + len(suffix):
        return False
    middle = entry[len(head):-len(suffix)]
    m = _OWNER.match(middle)
    if m:
        return m.group(2) == _host() and not pid_alive(int(m.group(1)))
    return bool(_LEGACY.match(middle))  # an older version's leftover: it had no owner, so it is not live


def _sweep(parent: Path, name: str, suffixes: tuple[str, ...]) -> None:
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for e in entries:
        if any(is_stale(e.name, name, s) for s in suffixes):
            p = Path(e.path)
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    p.unlink()


def umask() -> int:
    """The process's umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` keeps its previous
    content; one left by a killed process is removed by a later attempt.
    ``os.replace`` is atomic on POSIX and Windows. The file gets the mode of the
    file it replaces, else ``0o666 & ~umask``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep(path.parent, path.name, (".tmp",))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{owner_tag()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            mode = 0o666 & ~umask()
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success rename it to ``path``.

    An existing ``path`` is replaced (callers decide about overwriting first): it is
    renamed aside, the new folder renamed in, the old one deleted. On failure the
    temporary folder is deleted, so no half-built folder remains; one left by a
    killed process is removed by the next attempt at the same ``path``. The folder
    gets mode ``0o777 & ~umask``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep(path.parent, path.name, (".partial", ".old"))
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{owner_tag()}.", suffix=".partial", dir=path.parent))
    old = tmp.with_name(tmp.name[:-len(".partial")] + ".old")
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~umask())
        for _ in range(10):  # another writer may rename its folder in between; move it aside again
            if path.exists() or path.is_symlink():
                _remove(old)
                os.replace(path, old)
            try:
                os.replace(tmp, path)
                break
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
        else:
            raise OSError(f"could not rename {tmp} to {path}: other processes keep writing it")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        _remove(old)


def _remove(p: Path) -> None:
    if p.is_symlink() or p.is_file():
        p.unlink()
    elif p.exists():
        shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, *, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock named after ``path`` (the file ``.<name>.lock`` beside it).

    Serialises processes that build the same thing (two chapters preparing one data
    set; two runs into one folder). The lock is released when the block ends or the
    process dies. The holder deletes the lock file before releasing it; a waiter
    that then wins the lock of the deleted file notices (its inode is no longer the
    path's) and locks the path anew, so deleting it cannot let two holders in. With
    ``blocking=False`` it yields ``False`` at once when another process holds the
    lock. Where ``fcntl`` is missing (Windows) it always yields ``True``.
    """
    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        yield True
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            fd = -1
            break
        try:
            held, now = os.fstat(fd), os.stat(lock)
            if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # we locked a file its previous holder had deleted: try again
    if fd < 0:
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(obj: Any) -> Any:
    import numpy as np
    import torch

    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
