"""The mini-batches of Anchored Adversarial Training (BiRQA, source 002, §4.1 and Algorithm 1).

Each batch of N samples (16 in the source) lies in one MOS band ``[y_low, y_low + R]`` of fixed
width ``R = (dataset MOS range) / 20`` (``MOS_r/10 · |S|/N``). Its ``|S|`` anchors (8) are the
samples of the band closest to both ends plus ``|S| − 2`` samples closest to evenly spaced
points of the band ("quantiles + endpoints"); the other ``N − |S|`` samples are drawn at random
from the rest of the band, so they lie inside the anchors' range. Then the batch minimum and
maximum are anchors and every non-anchor is bracketed by two anchors (Theorem 1's assumption 2);
the sampler asserts the first and records the measured η of every batch in :attr:`etas`.

:class:`AATBatchSampler` is a ``batch_sampler`` for a ``DataLoader``: it yields lists of
``(index, is_anchor)`` pairs, which :class:`PairScores` turns into ``(pair, [score, anchor])``.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

__all__ = ["AATBatchSampler", "ImageScores", "PairScores", "band_anchors"]


def band_anchors(mos: np.ndarray, members: np.ndarray, lo: float, hi: float, n_anchors: int) -> list[int]:
    """Anchors among ``members`` (indices into ``mos``) of the band [lo, hi]: both ends + evenly spaced inside."""
    if len(members) < n_anchors:
        raise ValueError(f"the band holds {len(members)} samples, fewer than the {n_anchors} anchors asked for")
    vals = mos[members]
    chosen: list[int] = []
    free = np.ones(len(members), dtype=bool)
    targets = [lo, hi] + [lo + (hi - lo) * m / (n_anchors - 1) for m in range(1, n_anchors - 1)]
    for t in targets:
        dist = np.where(free, np.abs(vals - t), np.inf)
        j = int(np.argmin(dist))
        free[j] = False
        chosen.append(int(members[j]))
    return chosen


class AATBatchSampler(Sampler):
    """Batches of Algorithm 1: ``batch_size`` samples of one MOS band, ``n_anchors`` of them anchors.

    Args:
        scores: the MOS of every sample of the data set (any order).
        batch_size: N (16). n_anchors: |S| (8), at least 2 (both ends).
        band: the band width R; default ``(max − min) / 20`` as the source sets it. A band that holds fewer
            than N samples is widened (doubled) until it holds N; such batches are counted in ``widened``.
        batches: batches per epoch (default: ``len(scores) // batch_size``).
        seed: the draws of epoch e depend only on (seed, e) (:meth:`set_epoch`, called by ``fit``).
    """

    def __init__(self, scores: Sequence[float] | np.ndarray | torch.Tensor, batch_size: int = 16,
                 n_anchors: int = 8, band: float | None = None, batches: int | None = None, seed: int = 0) -> None:
        mos = np.asarray(scores.detach().cpu() if isinstance(scores, torch.Tensor) else scores, dtype=np.float64)
        if mos.ndim != 1 or mos.size < batch_size:
            raise ValueError(f"scores must be a vector of at least batch_size={batch_size} values, "
                             f"got shape {mos.shape}")
        if not 2 <= n_anchors <= batch_size:
            raise ValueError(f"n_anchors must be in [2, batch_size={batch_size}], got {n_anchors}")
        span = float(mos.max() - mos.min())
        if not span > 0:
            raise ValueError("all scores are equal: there is no MOS band to sample")
        self.mos, self.batch_size, self.n_anchors, self.seed = mos, int(batch_size), int(n_anchors), int(seed)
        self.band = span / 20.0 if band is None else float(band)
        if not self.band > 0:
            raise ValueError(f"band must be > 0, got {band!r}")
        self.batches = int(batches) if batches is not None else max(1, mos.size // batch_size)
        self.epoch = 0
        self.etas: list[float] = []
        self.widened = 0
        self._order = np.argsort(mos, kind="stable")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def sampler(self) -> AATBatchSampler:
        """Itself: ``robustbook.train.fit`` looks for ``loader.batch_sampler.sampler.set_epoch``."""
        return self

    def __len__(self) -> int:
        return self.batches

    def _band(self, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
        width = self.band
        lo_all, hi_all = float(self.mos.min()), float(self.mos.max())
        while True:
            y_low = rng.uniform(lo_all, max(lo_all, hi_all - width))
            members = np.nonzero((self.mos >= y_low) & (self.mos <= y_low + width))[0]
            if members.size >= self.batch_size:
                return members, y_low, y_low + width
            # retry a few draws before widening
            for _ in range(8):
                y_low = rng.uniform(lo_all, max(lo_all, hi_all - width))
                members = np.nonzero((self.mos >= y_low) & (self.mos <= y_low + width))[0]
                if members.size >= self.batch_size:
                    return members, y_low, y_low + width
            width *= 2
            self.widened += 1

    def batch(self, rng: np.random.Generator) -> list[tuple[int, bool]]:
        members, lo, hi = self._band(rng)
        anchors = band_anchors(self.mos, members, lo, hi, self.n_anchors)
        rest = np.setdiff1d(members, anchors)
        others = rng.choice(rest, size=self.batch_size - self.n_anchors, replace=False)
        out = [(int(i), True) for i in anchors] + [(int(i), False) for i in others]
        ys = self.mos[[i for i, _ in out]]
        is_anchor = np.array([a for _, a in out])
        assert ys[is_anchor].min() == ys.min() and ys[is_anchor].max() == ys.max(), \
            "the batch minimum and maximum must be anchors"
        ya = ys[is_anchor]
        eta = 0.0
        for y in ys[~is_anchor]:
            eta = max(eta, float(y - ya[ya <= y].max()), float(ya[ya >= y].min() - y))
        self.etas.append(eta)
        return out

    def __iter__(self) -> Iterator[list[tuple[int, bool]]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        for _ in range(self.batches):
            yield self.batch(rng)


class PairScores(Dataset):
    """Reference–distorted pairs and scores as tensors.

    ``ds[i]`` → ``(pair (2, 3, H, W), score)``; ``ds[(i, is_anchor)]`` (from :class:`AATBatchSampler`)
    → ``(pair, tensor([score, is_anchor]))``.
    """

    def __init__(self, ref: torch.Tensor, dist: torch.Tensor, y: torch.Tensor) -> None:
        if ref.shape != dist.shape or ref.dim() != 4 or len(y) != len(ref):
            raise ValueError(f"ref {tuple(ref.shape)}, dist {tuple(dist.shape)} and y {tuple(y.shape)} must be "
                             "(N, 3, H, W), (N, 3, H, W) and (N,)")
        self.ref, self.dist, self.y = ref, dist, y.float()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, item):
        if isinstance(item, tuple):
            i, anchor = item
            return torch.stack([self.ref[i], self.dist[i]]), torch.stack([self.y[i], torch.tensor(float(anchor))])
        return torch.stack([self.ref[item], self.dist[item]]), self.y[item]


class ImageScores(Dataset):
    """Images and scores of a no-reference model, indexed like :class:`PairScores`.

    ``ds[i]`` → ``(image (3, H, W), score)``; ``ds[(i, is_anchor)]`` → ``(image, tensor([score, is_anchor]))``.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if x.dim() != 4 or len(y) != len(x):
            raise ValueError(f"x {tuple(x.shape)} and y {tuple(y.shape)} must be (N, 3, H, W) and (N,)")
        self.x, self.y = x, y.float()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, item):
        if isinstance(item, tuple):
            i, anchor = item
            return self.x[i], torch.stack([self.y[i], torch.tensor(float(anchor))])
        return self.x[item], self.y[item]
