"""Load a PyTorch file safely, and say clearly which file is broken when it cannot be loaded.

Every checkpoint and cache entry of the library is read with
``torch.load(weights_only=True)``, which never executes code from the file.
When the file is truncated (a killed copy, a full disk), garbled (a bad
transfer) or not a PyTorch file at all (an HTML error page saved under the
checkpoint's name), torch raises a bare ``RuntimeError``/``UnpicklingError``/
``EOFError`` that does not name the file and even suggests retrying with
``weights_only=False``, which would execute whatever the file contains.
:func:`load_checkpoint_file` turns all of these into one
:class:`CorruptCheckpointError` that names the file and what to do.

Garbled tensor bytes are not noticed by ``torch.load`` itself (it does not
check the CRC-32 that ``torch.save`` stores for every member of its zip
archive), so the CRCs are verified here first.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["CorruptCheckpointError", "load_checkpoint_file"]

_CHUNK = 1 << 20
_ZIP_MAGIC = b"PK\x03\x04"  # what torch.save's files (zip archives) begin with


class CorruptCheckpointError(ValueError):
    """A checkpoint or cache file exists but cannot be loaded: truncated, garbled or not a PyTorch file.

    ``path`` is the offending file. The message never suggests
    ``weights_only=False``: a file that fails the safe load is deleted or
    replaced, not trusted.
    """

    def __init__(self, path: Path, reason: str, remedy: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path} is corrupt or not a checkpoint: {reason}. {remedy}")


def _crc_problem(path: Path) -> str | None:
    """The first zip member whose bytes fail their stored CRC-32, as a reason; None when all pass.

    Members stored with a CRC of 0 are skipped: PyTorch writes 0 when CRC
    computation is switched off (``torch.serialization.config.save.compute_crc32``).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.CRC == 0:
                    continue
                with archive.open(info) as member:
                    while member.read(_CHUNK):
                        pass
    except zipfile.BadZipFile as exc:
        return f"its zip archive is damaged ({exc}); the bytes were garbled or cut off"
    except (OSError, EOFError, ValueError, NotImplementedError) as exc:
        return f"its zip archive cannot be read ({type(exc).__name__}); the bytes were garbled or cut off"
    return None


def _reason(path: Path, exc: BaseException) -> str:
    """A short, safe description of why ``torch.load`` failed (torch's own message is not repeated)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        head = b""
    if not head:
        return "the file is empty"
    sample = head.lstrip()[:16]
    if sample.startswith((b"<", b"{", b"[")) or (sample.isascii() and sample.decode("ascii").isprintable()):
        return ("it holds text, not a PyTorch file (an HTML error page saved by a failed download, "
                "perhaps)")
    if isinstance(exc, EOFError):
        return "the file ends early (truncated)"
    if isinstance(exc, RuntimeError) and "zip archive" in str(exc):
        return "its zip archive is truncated or damaged"
    return (f"the safe loader refused it ({type(exc).__name__}); it is damaged, or holds "
            "objects other than tensors and plain data, which the library never writes")


def load_checkpoint_file(path: str | os.PathLike, *, remedy: str) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``, or :class:`CorruptCheckpointError`.

    Args:
        path: the file; a missing file raises :class:`FileNotFoundError` as usual.
        remedy: the sentence appended to the error, e.g. ``"Delete it to start afresh."``

    Raises:
        CorruptCheckpointError: the file is empty, truncated, garbled (a zip
            member fails its CRC-32) or not a PyTorch file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        starts_as_zip = f.read(4) == _ZIP_MAGIC
    if starts_as_zip:
        if not zipfile.is_zipfile(path):
            raise CorruptCheckpointError(path, "it is truncated: it begins as a PyTorch archive but its end "
                                               "(the zip directory) is missing", remedy)
        problem = _crc_problem(path)
        if problem is not None:
            raise CorruptCheckpointError(path, problem, remedy)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - every load failure is reported as the file being unusable
        raise CorruptCheckpointError(path, _reason(path, exc), remedy) from None
