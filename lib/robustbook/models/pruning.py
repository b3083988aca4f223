"""Structured L2 filter pruning (source 001: "prune 10 % of low-importance weights by l2-norm", then fine-tune).

Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017, rank a layer's filters by their
norm; source 001 prunes ~10 % of the backbone by the L2 norm and fine-tunes 5 epochs. Here the
filters (output channels) of every prunable ``nn.Conv2d`` are ranked **globally** by the L2 norm
of their weights, and the ``round(share · total)`` smallest are zeroed with a fixed mask
(``torch.nn.utils.prune``), so fine-tuning cannot revive them: exactly the requested share of
filters is removed. A layer never loses its last filter (the next-smallest filter elsewhere is
taken instead). Orthogonal layers (Cayley, AOL, AOC) are excluded: they are re-orthogonalised
from their parameters at every call, so a zeroed filter would not stay zero or orthogonal.
Global ranking is the book's choice (the source does not say); PLS-based pruning, the source's
option for complex models, is not implemented.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import prune

__all__ = ["PruneReport", "prunable_convs", "prune_filters", "make_permanent"]


@dataclass
class PruneReport:
    """What :func:`prune_filters` removed: counts overall and per layer."""

    total: int
    removed: int
    per_layer: dict[str, tuple[int, int]]  # name -> (removed, filters)

    @property
    def share(self) -> float:
        return self.removed / self.total if self.total else 0.0


def prunable_convs(model: nn.Module, exclude: tuple[type, ...] = ()) -> dict[str, nn.Conv2d]:
    """Every plain ``nn.Conv2d`` of ``model`` by name, without orthogonal layers or anything inside them."""
    from robustbook.models.orthogonal import AOLConv2d
    from robustbook.models.robust_block import RobustBlock

    skip = (AOLConv2d, RobustBlock) + tuple(exclude)
    out: dict[str, nn.Conv2d] = {}
    skipped: list[str] = []
    for name, m in model.named_modules():
        if isinstance(m, skip) or type(m).__module__.startswith("orthogonium"):
            skipped.append(name)
            continue
        if any(name.startswith(s + ".") for s in skipped if s):
            continue
        if type(m) is nn.Conv2d:
            out[name] = m
    return out


@torch.no_grad()
def prune_filters(model: nn.Module, share: float, *, exclude: tuple[type, ...] = ()) -> PruneReport:
    """Zero (with a permanent mask) the ``round(share · total)`` filters of smallest L2 norm, globally.

    Args:
        model: any network; its plain ``nn.Conv2d`` layers are pruned (see :func:`prunable_convs`).
        share: fraction of filters to remove, ``0 <= share < 1``.
        exclude: further module types to leave alone.
    """
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < 1:
        raise ValueError(f"share must be a number in [0, 1), got {share!r}")
    convs = prunable_convs(model, exclude)
    if not convs:
        raise ValueError("the model has no prunable nn.Conv2d layer")
    entries = []  # (norm, layer name, filter index)
    for name, conv in convs.items():
        w = conv.weight_orig if hasattr(conv, "weight_orig") else conv.weight
        mask = getattr(conv, "weight_mask", torch.ones_like(w))
        norms = (w * mask).flatten(1).norm(dim=1)
        entries += [(float(v), name, i) for i, v in enumerate(norms)]
    total = len(entries)
    k = int(round(share * total))
    left = {name: conv.out_channels for name, conv in convs.items()}
    chosen: dict[str, list[int]] = {name: [] for name in convs}
    for _, name, i in sorted(entries):
        if sum(map(len, chosen.values())) == k:
            break
        if left[name] > 1:
            chosen[name].append(i)
            left[name] -= 1
    removed = sum(map(len, chosen.values()))
    if removed != k:
        raise ValueError(f"cannot remove {k} filters while keeping one per layer "
                         f"({total} filters in {len(convs)} layers)")
    for name, conv in convs.items():
        mask = torch.ones_like(conv.weight)
        if hasattr(conv, "weight_mask"):
            mask = conv.weight_mask.clone()
        mask[chosen[name]] = 0
        if hasattr(conv, "weight_mask"):
            prune.remove(conv, "weight")
        prune.custom_from_mask(conv, "weight", mask)
    return PruneReport(total, removed, {n: (len(chosen[n]), convs[n].out_channels) for n in convs})


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every pruning mask into its weight (after fine-tuning), so the state dict is plain."""
    for m in model.modules():
        if hasattr(m, "weight_mask"):
            prune.remove(m, "weight")
    return model
