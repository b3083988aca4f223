"""Channel-wise activations per class (source 003, appendix 4.6.1; Figs. 4.1, 4.3, 4.5).

For a layer whose output feeds global average pooling and a last linear layer:

1. the layer's features are averaged over positions (GAP): one activation per channel and image;
2. per class, each channel's mean activation **magnitude** over the class's images, normalised by
   dividing by the largest absolute mean of that class;
3. per class, each channel's **activation frequency**: the fraction of the class's images in which
   the channel's activation magnitude exceeds ``threshold`` (1 %) of the largest activation among
   all channels *of that image* (the thesis: "1% of the maximum of all channels' activations");
4. the channels are ordered by the last linear layer's weights for the class, in descending order
   (the most positively relevant channel first).

Introduced in the CIFS chapter.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from robustbook.device import model_device
from robustbook.modes import preserved_modes

__all__ = ["ChannelActivations", "channel_statistics", "channel_activations"]


@dataclass
class ChannelActivations:
    """Per-class channel statistics (arrays of shape (K, C)); ``sorted_by_weight(k)`` reorders one class.

    Attributes:
        magnitude: mean activation magnitude per class and channel, divided by the class's maximum.
        frequency: fraction of the class's images in which the channel is activated.
        weights: the last linear layer's weights (K, C), or None.
        order: per class, the channels sorted by descending weight (or by descending magnitude
            when no weights were given).
        counts: images per class (K,).
    """

    magnitude: np.ndarray
    frequency: np.ndarray
    weights: np.ndarray | None
    order: np.ndarray
    counts: np.ndarray

    def sorted_by_weight(self, k: int) -> dict[str, np.ndarray]:
        """Class ``k``'s magnitude, frequency and weights in the order of its sorted weights."""
        o = self.order[k]
        out = {"magnitude": self.magnitude[k, o], "frequency": self.frequency[k, o]}
        if self.weights is not None:
            out["weights"] = self.weights[k, o]
        return out


def channel_statistics(acts: torch.Tensor, labels: torch.Tensor, num_classes: int, *,
                       weights: torch.Tensor | None = None, threshold: float = 0.01) -> ChannelActivations:
    """The statistics of appendix 4.6.1 from pooled activations ``acts`` (N, C) and labels (N,)."""
    if acts.dim() != 2 or labels.dim() != 1 or acts.shape[0] != labels.shape[0]:
        raise ValueError(f"acts must be (N, C) and labels (N,), got {tuple(acts.shape)} and {tuple(labels.shape)}")
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must lie in [0, 1), got {threshold!r}")
    if weights is not None and tuple(weights.shape) != (num_classes, acts.shape[1]):
        raise ValueError(f"weights must be (num_classes, C) = ({num_classes}, {acts.shape[1]}), "
                         f"got {tuple(weights.shape)}")
    a = acts.detach().double().abs()
    y = labels.long()
    C = a.shape[1]
    mag = np.zeros((num_classes, C))
    freq = np.zeros((num_classes, C))
    counts = np.zeros(num_classes, dtype=np.int64)
    on = a > threshold * a.max(dim=1, keepdim=True).values
    for k in range(num_classes):
        sel = y == k
        counts[k] = int(sel.sum())
        if counts[k] == 0:
            continue
        mean = a[sel].mean(0)
        top = mean.max()
        mag[k] = (mean / top).numpy() if top > 0 else mean.numpy()
        freq[k] = on[sel].double().mean(0).numpy()
    w = None if weights is None else weights.detach().double().cpu().numpy()
    order = np.argsort(-(w if w is not None else mag), axis=1, kind="stable")
    return ChannelActivations(mag, freq, w, order, counts)


def _resolve_layer(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    if isinstance(layer, nn.Module):
        return layer
    try:
        return model.get_submodule(layer)
    except AttributeError:
        raise ValueError(f"model has no submodule {layer!r}") from None


def channel_activations(model: nn.Module, loader: Iterable, layer: nn.Module | str | Sequence[nn.Module | str], *,
                        num_classes: int | None = None, weights: torch.Tensor | None | str = "fc",
                        attack: Callable | None = None,
                        threshold: float = 0.01) -> ChannelActivations | list[ChannelActivations]:
    """Per-class channel-wise activations of ``layer``'s output over ``loader`` (appendix 4.6.1).

    Args:
        model: the classifier (run in eval mode; modes restored).
        loader: yields ``(x, y)`` batches (a DataLoader, or a list of tensor pairs).
        layer: the module (or its dotted name) whose output (N, C, H, W) is pooled, e.g.
            ``"penultimate"`` of :class:`~robustbook.models.resnet_cifar.CIFARResNet`; a list of
            layers returns a list of results from the same forward passes (and the same attack).
        num_classes: K (default: ``model.num_classes`` or the largest label + 1).
        weights: the last layer's weights (K, C), the name of a linear submodule (default ``"fc"``),
            or None (channels then sorted by magnitude). Used for every layer of a list whose
            channel count matches; other layers are sorted by magnitude.
        attack: optional ``attack(model, x, y) -> x_adv``: statistics of adversarial data.
        threshold: fraction of an image's largest channel activation above which a channel counts
            as activated (thesis: 1 %).
    """
    many = isinstance(layer, (list, tuple))
    layers = list(layer) if many else [layer]
    modules = [_resolve_layer(model, lay) for lay in layers]
    if isinstance(weights, str):
        weights = _resolve_layer(model, weights).weight
    dev = model_device(model)
    captured: list[list[torch.Tensor]] = [[] for _ in modules]

    def make_hook(i: int):
        def hook(_m, _inp, out):
            if out.dim() != 4:
                raise ValueError(f"layer {layers[i]!r} must output (N, C, H, W) features, got {tuple(out.shape)}")
            captured[i].append(out.detach().mean(dim=(2, 3)).cpu())
        return hook

    labels = []
    with preserved_modes(model, training=False):
        for x, y in loader:
            x, y = x.to(dev), y.to(dev)
            if attack is not None:
                with torch.enable_grad():
                    x = attack(model, x, y).detach()
            handles = [m.register_forward_hook(make_hook(i)) for i, m in enumerate(modules)]
            try:
                with torch.no_grad():
                    model(x)
            finally:
                for h in handles:
                    h.remove()
            labels.append(y.cpu())
    if not labels:
        raise ValueError("the loader yielded no batches")
    y = torch.cat(labels)
    k = int(num_classes or getattr(model, "num_classes", None) or int(y.max()) + 1)
    out = []
    for caps in captured:
        a = torch.cat(caps)
        w = weights if weights is not None and tuple(weights.shape) == (k, a.shape[1]) else None
        if w is None and weights is not None and not many:
            w = weights  # a single layer: let channel_statistics report the mismatch
        out.append(channel_statistics(a, y, k, weights=None if w is None else w.detach().cpu(), threshold=threshold))
    return out if many else out[0]
