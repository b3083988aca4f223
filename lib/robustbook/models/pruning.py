"""Structured L2 filter pruning (source 001: "prune 10 % of low-importance weights by l2-norm", then fine-tune).

Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017, rank a layer's filters by their
norm; source 001 prunes ~10 % of the backbone by the L2 norm and fine-tunes 5 epochs. Here the
filters (output channels) of every prunable ``nn.Conv2d`` are ranked **globally** by the L2 norm
of their weights, and the ``round(share · total)`` smallest are zeroed with a fixed mask
(``torch.nn.utils.prune``), so fine-tuning cannot revive them: exactly the requested share of
filters is removed. A layer never loses its last filter (the next-smallest filter elsewhere is
taken instead). Orthogonal layers (Cayley, AOL, AOC) are excluded: they are re-orthogonalised
from their parameters at every call, so a zeroed filter would not stay zero or orthogonal.
Global ranking is the book's choice (the source does not say).

**PLS importance** (:func:`pls_filter_importance`), the source's option "for complex
architectures", follows Jordao, Yamada & Schwartz, "Deep network compression based on partial
least squares", Neurocomputing 2020 (and Jordao et al., "Discriminative Layer Pruning for
Convolutional Neural Networks", IEEE JSTSP 2020): every filter is represented by its feature map
pooled over space (here the global average) on a set of images; a partial least squares
regression (scikit-learn's ``PLSRegression``, standardised features) relates the filters of all
layers together to the target, here the model's own **predicted score** (no labels needed), and a
filter's importance is its Variable Importance in Projection,
``VIP_j = sqrt(p · Σ_a SS_a (w_ja / ‖w_a‖)² / Σ_a SS_a)`` with ``SS_a = q_a² t_aᵀ t_a``
(Wold et al. 2001; Mehmood et al. 2012). Pass it to :func:`prune_filters` as ``importance``; the
same exact-share rule and the same exclusions apply.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

__all__ = ["PruneReport", "prunable_convs", "prune_filters", "pls_filter_importance", "make_permanent"]


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
def prune_filters(model: nn.Module, share: float, *, exclude: tuple[type, ...] = (),
                  importance: Mapping[str, torch.Tensor] | None = None) -> PruneReport:
    """Zero (with a permanent mask) the ``round(share · total)`` least important filters, globally.

    Args:
        model: any network; its plain ``nn.Conv2d`` layers are pruned (see :func:`prunable_convs`).
        share: fraction of filters to remove, ``0 <= share < 1``.
        exclude: further module types to leave alone.
        importance: one score per filter for every layer of ``prunable_convs(model, exclude)``, by
            the same names (e.g. :func:`pls_filter_importance`); default: the filters' L2 norms.
            Already-pruned filters count as least important either way.
    """
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < 1:
        raise ValueError(f"share must be a number in [0, 1), got {share!r}")
    convs = prunable_convs(model, exclude)
    if not convs:
        raise ValueError("the model has no prunable nn.Conv2d layer")
    if importance is not None:
        if set(importance) != set(convs):
            raise ValueError(f"importance must score exactly the prunable layers {sorted(convs)}, got "
                             f"{sorted(importance)}")
        for name, conv in convs.items():
            if tuple(importance[name].shape) != (conv.out_channels,):
                raise ValueError(f"importance[{name!r}] must have one score per filter ({conv.out_channels}), "
                                 f"got shape {tuple(importance[name].shape)}")
    entries = []  # (importance, layer name, filter index)
    for name, conv in convs.items():
        w = conv.weight_orig if hasattr(conv, "weight_orig") else conv.weight
        mask = getattr(conv, "weight_mask", torch.ones_like(w))
        norms = (w * mask).flatten(1).norm(dim=1)
        score = norms if importance is None else torch.where(norms > 0, importance[name].to(norms).float(),
                                                             torch.full_like(norms, -1.0))
        entries += [(float(v), name, i) for i, v in enumerate(score)]
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


@torch.no_grad()
def pls_filter_importance(model: nn.Module, x: torch.Tensor, *, layers: Mapping[str, nn.Conv2d] | None = None,
                          target: torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None = None,
                          n_components: int = 2, batch_size: int = 64) -> dict[str, torch.Tensor]:
    """PLS-VIP importance of every filter w.r.t. the predicted score (module docstring; Jordao et al. 2020).

    Args:
        model: the network; run in eval mode on ``x`` (its modes are restored).
        x: images the filters' pooled responses are measured on (more images than components).
        layers: the convolutions to score, by name (default ``prunable_convs(model)``); pass
            ``prunable_convs(model.backbone)`` to prune the backbone with :func:`prune_filters`.
        target: the regression target, ``(N,)``; default the model's own predictions on ``x``.
        n_components: PLS components (capped at the number of images − 1 and of filters).
        batch_size: images per forward pass.

    Returns:
        ``{layer name: VIP per filter}`` (float32 tensors); a constant filter scores 0.
    """
    from sklearn.cross_decomposition import PLSRegression

    from robustbook.modes import preserved_modes

    layers = dict(prunable_convs(model) if layers is None else layers)
    if not layers:
        raise ValueError("no layer to score")
    if len(x) < 3:
        raise ValueError(f"PLS needs at least 3 images, got {len(x)}")
    pooled: dict[str, list[torch.Tensor]] = {n: [] for n in layers}
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: pooled[n].append(out.float().mean((2, 3)).cpu()))
             for n, m in layers.items()]
    preds = []
    try:
        with preserved_modes(model, training=False):
            for i in range(0, len(x), batch_size):
                preds.append(model(x[i:i + batch_size]).reshape(-1).float().cpu())
    finally:
        for h in hooks:
            h.remove()
    if target is None:
        y = torch.cat(preds)
    else:
        y = target(x) if callable(target) else target
        y = y.detach().reshape(-1).float().cpu()
    if len(y) != len(x):
        raise ValueError(f"target must hold one value per image ({len(x)}), got {len(y)}")
    feats = torch.cat([torch.cat(pooled[n]) for n in layers], 1).numpy().astype(np.float64)
    sizes = [layers[n].out_channels for n in layers]
    std = feats.std(0)
    live = std > 1e-12  # constant filters (pruned, dead) carry no information: VIP 0
    k = max(1, min(n_components, len(x) - 1, int(live.sum())))
    pls = PLSRegression(n_components=k, scale=True).fit(feats[:, live], y.numpy().astype(np.float64))
    t, w, q = pls.x_scores_, pls.x_weights_, pls.y_loadings_
    ss = (q[0] ** 2) * (t ** 2).sum(0)  # y variance explained per component
    vip_live = np.sqrt(live.sum() * ((w / np.linalg.norm(w, axis=0)) ** 2 @ ss) / ss.sum())
    vip = np.zeros(feats.shape[1])
    vip[live] = vip_live
    out, start = {}, 0
    for n, c in zip(layers, sizes, strict=True):
        out[n] = torch.as_tensor(vip[start:start + c], dtype=torch.float32)
        start += c
    return out


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every pruning mask into its weight (after fine-tuning), so the state dict is plain."""
    for m in model.modules():
        if hasattr(m, "weight_mask"):
            prune.remove(m, "weight")
    return model
