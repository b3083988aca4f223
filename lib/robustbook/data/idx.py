"""The IDX format of MNIST and Fashion-MNIST (LeCun et al.): a big-endian header, then uint8 data.

One parser for the MNIST and Fashion-MNIST data scripts and the Fashion-MNIST loader.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "IDX_MAGIC"]

#: Magic number and number of dimensions of the two IDX files MNIST-style sets use.
IDX_MAGIC = {"images": (2051, 3), "labels": (2049, 1)}


def read_idx(path: str | Path, kind: str) -> np.ndarray:
    """A gzipped IDX file as uint8: images ``(N, 28, 28)`` or labels ``(N,)``.

    Raises ``ValueError`` naming the file for an unreadable gzip, a short header, a wrong magic
    number or a data length that disagrees with the header.
    """
    path = Path(path)
    if kind not in IDX_MAGIC:
        raise ValueError(f"kind must be one of {sorted(IDX_MAGIC)}, got {kind!r}")
    magic, ndim = IDX_MAGIC[kind]
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable gzip file ({exc}); delete it and download it again") from None
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is too short to be an IDX {kind} file")
    got, *dims = struct.unpack(">" + "i" * (1 + ndim), data[:header])
    if got != magic:
        raise ValueError(f"{path} has magic number {got}, expected {magic} for IDX {kind}: it is not an "
                         f"MNIST-format {kind} file")
    n = int(np.prod(dims))
    if len(data) - header != n:
        raise ValueError(f"{path} holds {len(data) - header} bytes of data, its header announces {n}: truncated?")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
