"""Load a prepared data set's split into tensors (small sets) or a torch Dataset (large ones)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from robustbook.data.manifest import SPLITS, DatasetMeta, Sample, read_dataset


def _load_image(path: Path, size: int | None) -> torch.Tensor:
    img = Image.open(path).convert("RGB")
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


class ManifestDataset(Dataset):
    """Images of one split and their scores normalised to [0, 1] (higher = better).

    ``__getitem__`` returns ``(image, score)`` or, for full-reference sets,
    ``((reference, image), score)``.
    """

    def __init__(self, folder: str | Path, split: str, *, size: int | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.folder = Path(folder)
        rows, self.meta = read_dataset(self.folder)
        self.samples: list[Sample] = [r for r in rows if r.split == split]
        if not self.samples:
            raise ValueError(f"{self.folder} has no samples in split {split!r}")
        self.size = size

    def __len__(self) -> int:
        return len(self.samples)

    def normalise(self, score: float) -> float:
        return normalise_score(score, self.meta)

    def __getitem__(self, i: int):
        s = self.samples[i]
        img = _load_image(self.folder / s.image, self.size)
        y = torch.tensor(self.normalise(s.score), dtype=torch.float32)
        if s.reference:
            return (_load_image(self.folder / s.reference, self.size), img), y
        return img, y


def normalise_score(score: float, meta: DatasetMeta) -> float:
    """Map a score to [0, 1] with 1 = best quality, whatever the data set's convention."""
    lo, hi = meta.score_range
    t = (score - lo) / (hi - lo)
    return t if meta.higher_is_better else 1.0 - t


def load_split(folder: str | Path, split: str, *, size: int | None = None, limit: int | None = None,
               seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[Sample]]:
    """All images of a split as one tensor ``(N, 3, H, W)``, scores in [0, 1], and the rows.

    ``limit`` keeps a seeded random subset of that many samples (for small profiles).
    """
    ds = ManifestDataset(folder, split, size=size)
    idx = np.arange(len(ds))
    if limit is not None and limit < len(ds):
        idx = np.sort(np.random.default_rng(seed).choice(len(ds), size=limit, replace=False))
    items = [ds[int(i)] for i in idx]
    x = torch.stack([it[0] for it in items])
    y = torch.stack([it[1] for it in items])
    return x, y, [ds.samples[int(i)] for i in idx]


class FlipRotateDataset(Dataset):
    """``(x[i], y[i])`` under a random element of the dihedral group (flips and 90° turns).

    Flipping or turning an image changes neither its distortions nor its quality, so
    this is a label-preserving augmentation for quality models. Randomness comes
    from torch's global generator, which :func:`robustbook.train.fit` seeds and
    checkpoints, so augmented training stays reproducible and resumable.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if len(x) != len(y):
            raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
        if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"x must be square images (N, C, S, S), got {tuple(x.shape)}")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        k, flip = torch.randint(0, 4, ()).item(), torch.randint(0, 2, ()).item()
        img = torch.rot90(self.x[i], k, dims=(-2, -1))
        return (img.flip(-1) if flip else img), self.y[i]
