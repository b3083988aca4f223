"""Loaders whose order in epoch ``e`` is a function of ``(seed, e)`` only, and the sampler plumbing of fit.

:class:`EpochSampler` shuffles with a generator of its own, so resuming at
epoch 7 replays exactly the order of an uninterrupted run's epoch 7;
:func:`make_loader` picks it, or a :class:`DistributedSampler` under torchrun.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, RandomSampler, Sampler
from torch.utils.data.distributed import DistributedSampler

from robustbook.train.distributed import rank, world_size

__all__ = ["EpochSampler", "make_loader"]


def _mix_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit seed that is a function of ``(seed, epoch)`` only."""
    state = np.random.SeedSequence([seed % 2**64, epoch]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class EpochSampler(Sampler[int]):
    """Indices ``0..n-1``, shuffled (when ``shuffle``) by a permutation that is a function of ``(seed, epoch)``.

    Call :meth:`set_epoch` before iterating (``fit`` does). It never touches the
    global random generators, so the order of epoch 7 is the same whether the
    run started at epoch 0 or resumed at epoch 7.
    """

    def __init__(self, n: int, *, shuffle: bool, seed: int) -> None:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        self.n = n
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of epoch ``epoch``."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(_mix_seed(self.seed, self.epoch))
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    drop_last: bool = False,
    num_workers: int = 0,
    distributed: bool | None = None,
    collate_fn: Callable | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader whose order in epoch ``e`` is a function of ``(seed, e)``.

    ``distributed=None`` shards the data across processes exactly when the
    script runs under ``torchrun`` with more than one process (a
    :class:`~torch.utils.data.distributed.DistributedSampler` with ``seed``);
    otherwise it uses an :class:`EpochSampler`. Pass ``distributed=False`` for
    an evaluation loader that every process should read whole. The process
    group need not exist yet: rank and world size are read from the
    environment torchrun sets.
    """
    if isinstance(dataset, IterableDataset):
        raise TypeError("make_loader needs a map-style dataset (with __len__ and __getitem__), "
                        "not an IterableDataset")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if distributed is None:
        distributed = world_size() > 1
    sampler: Sampler[int]
    if distributed:
        sampler = DistributedSampler(dataset, num_replicas=world_size(), rank=rank(), shuffle=shuffle,
                                     seed=seed, drop_last=drop_last)
    else:
        sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                      num_workers=num_workers, collate_fn=collate_fn, pin_memory=pin_memory,
                      persistent_workers=False)


def _samplers(loader: Iterable) -> list[Any]:
    found: list[Any] = []
    for s in (getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        if s is not None and all(s is not f for f in found):
            found.append(s)
    return found


def _set_epoch(loader: Iterable, epoch: int) -> None:
    for s in _samplers(loader):
        if hasattr(s, "set_epoch"):
            s.set_epoch(epoch)


def _distributed_sampler(loader: Iterable) -> DistributedSampler | None:
    for s in _samplers(loader):
        if isinstance(s, DistributedSampler):
            return s
    return None


def _shard_loader(loader: Iterable, seed: int) -> DataLoader:
    """Rebuild an ordinary DataLoader so that each process reads its own shard."""
    if _distributed_sampler(loader) is not None:
        return loader  # type: ignore[return-value]
    if (not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset)
            or loader.batch_size is None):
        raise ValueError("under torchrun, train_loader must shard the data across processes; build it with "
                         "robustbook.train.make_loader(dataset, batch_size, shuffle=..., seed=...), which does "
                         "so automatically (got a loader fit cannot rebuild: "
                         f"{type(loader).__name__} with a custom batch_sampler or an IterableDataset)")
    sampler = loader.sampler
    shuffle = isinstance(sampler, RandomSampler) or bool(getattr(sampler, "shuffle", False))
    dsampler = DistributedSampler(loader.dataset, num_replicas=world_size(), rank=rank(), shuffle=shuffle,
                                  seed=seed, drop_last=loader.drop_last)
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=dsampler, drop_last=loader.drop_last,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
                      worker_init_fn=loader.worker_init_fn)
