"""Real Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) for the offline profiles of the CIFS chapter.

Fashion-MNIST: 70,000 greyscale 28×28 images of clothes in 10 classes (60,000 train,
10,000 test), in MNIST's IDX format. The thesis evaluates CIFS on it with a ResNet-10 at
ε = 0.3 (source 003, appendix 4.6.4); it is the one setting of the chapter that the CPU
profiles run on *real* data.

Where the files come from, first found wins:

1. a data set prepared by ``data_scripts/fashion_mnist.py`` under the data root
   (``<root>/fashion_mnist/manifest.csv``; official download, or the Debian copy);
2. Debian's ``dataset-fashion-mnist`` package (``apt-get install dataset-fashion-mnist``),
   which installs the four gzipped IDX files in :data:`DEBIAN_DIR`; read directly, no copy.

:func:`fashion_mnist` returns tensors; a seeded, class-stratified subset when ``n_train`` or
``n_test`` is given (the CPU profiles train on a few thousand images).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from robustbook.data.idx import read_idx

__all__ = ["CLASSES", "DEBIAN_DIR", "FILES", "read_idx", "fashion_mnist", "find_source"]

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {("train", "images"): "train-images-idx3-ubyte.gz", ("train", "labels"): "train-labels-idx1-ubyte.gz",
         ("test", "images"): "t10k-images-idx3-ubyte.gz", ("test", "labels"): "t10k-labels-idx1-ubyte.gz"}


def find_source(root: str | Path | None = None) -> tuple[str, Path]:
    """``("prepared", folder)`` or ``("debian", DEBIAN_DIR)``; FileNotFoundError saying how to get the data."""
    from robustbook.data.root import data_root

    folder = data_root(root) / "fashion_mnist"
    if (folder / "manifest.csv").is_file():
        return "prepared", folder
    if all((DEBIAN_DIR / f).is_file() for f in FILES.values()):
        return "debian", DEBIAN_DIR
    raise FileNotFoundError(
        f"Fashion-MNIST not found: neither {folder}/manifest.csv nor {DEBIAN_DIR}. Install Debian's package "
        "(apt-get install dataset-fashion-mnist) or run: python data_scripts/fashion_mnist.py")


def _subset(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a class-stratified subset of size ``n`` (0 = all), interleaved by class."""
    if n == 0 or n >= len(y):
        return np.arange(len(y))
    classes = np.unique(y)
    per = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    take = [p[: n // len(classes) + (1 if i < n % len(classes) else 0)] for i, p in enumerate(per)]
    order = np.stack([np.pad(t, (0, max(map(len, take)) - len(t)), constant_values=-1) for t in take], 1).ravel()
    return order[order >= 0]


def fashion_mnist(n_train: int = 0, n_test: int = 0, seed: int = 0, *, root: str | Path | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)``: float32 ``(N, 1, 28, 28)`` in [0, 1], int64 labels 0..9.

    Args:
        n_train, n_test: sizes of seeded class-stratified subsets of the official splits (0 = all).
        seed: seeds the subsets.
        root: data root to look for a prepared copy (default ``$ROBUSTBOOK_DATA``).
    """
    for name, v in (("n_train", n_train), ("n_test", n_test), ("seed", seed)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    kind, where = find_source(root)
    out = []
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        if kind == "prepared":
            from robustbook.data.classification import load_classification

            x_t, y_t = load_classification(where, split, channels=1)
            x, y = (x_t.numpy() * 255).round().astype(np.uint8)[:, 0], y_t.numpy()
        else:
            x, y = read_idx(where / FILES[(split, "images")], "images"), read_idx(where / FILES[(split, "labels")],
                                                                                "labels")
        idx = _subset(np.asarray(y), int(n), rng)
        out += [torch.from_numpy(x[idx].astype(np.float32) / 255.0)[:, None].contiguous(),
                torch.from_numpy(np.asarray(y)[idx].astype(np.int64))]
    return out[0], out[1], out[2], out[3]
