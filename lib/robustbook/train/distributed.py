"""Distributed plumbing of the training loop: torchrun's environment, the process group, DDP unwrapping.

Everything here only decides *which process does what* (ranks, the process
group, gathering a sharded evaluation back into dataset order); none of it
changes what a process computes, so it is not part of the weight cache's code
fingerprint (:data:`robustbook.cache.CODE_MODULES`).
"""
from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data.distributed import DistributedSampler

__all__ = ["is_main_process", "rank", "world_size"]


def world_size() -> int:
    """Number of processes of this run: the process group's size, else ``$WORLD_SIZE``, else 1."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank: the process group's rank, else ``$RANK``, else 0."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """True on rank 0 (and in every ordinary, non-distributed run)."""
    return rank() == 0


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def _distributed_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


_groups_created = 0


def _init_process_group(backend: str) -> None:
    """``init_process_group`` from torchrun's environment, under a fresh key prefix every time.

    fit destroys the group it created, and PyTorch cannot re-create a default
    group on the same rendezvous store (its keys restart from the same names
    and the second init hangs: pytorch/pytorch#55967, #114585). A per-process
    counter, equal on every rank as long as every rank calls fit alike, gives
    each group its own keys, so a script may call fit several times.
    """
    global _groups_created
    _groups_created += 1
    store, r, n = next(dist.rendezvous("env://"))
    store = dist.PrefixStore(f"robustbook.train/{_groups_created}", store)
    dist.init_process_group(backend=backend, store=store, rank=r, world_size=n)


def _collective_device() -> torch.device:
    """Tensors given to collectives must live where the backend expects them."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside a DistributedDataParallel (or DataParallel) wrapper."""
    inner = getattr(model, "module", None)
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) and inner is not None:
        return inner
    return model


def _gather_in_dataset_order(sampler: DistributedSampler, pred: torch.Tensor, target: torch.Tensor,
                             n_local: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All processes' predictions, sorted by dataset index, with the sampler's padding removed."""
    idx = torch.tensor(list(iter(sampler))[:n_local], dtype=torch.int64)
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (idx, pred, target))
    idx = torch.cat([p[0] for p in parts])
    pred = torch.cat([p[1] for p in parts])
    target = torch.cat([p[2] for p in parts])
    order = torch.argsort(idx, stable=True)
    idx, pred, target = idx[order], pred[order], target[order]
    keep = torch.ones(len(idx), dtype=torch.bool)
    keep[1:] = idx[1:] != idx[:-1]
    return pred[keep], target[keep]
