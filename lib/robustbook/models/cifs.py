"""Channel-wise importance-based feature selection (CIFS) and channel-wise activation suppressing (CAS).

Introduced in the CIFS chapter (source 003, Yan's thesis, chapter 4; Yan et al., NeurIPS 2021).
Both modules sit after a residual block, take its output ``z`` (N, C, H, W), make a *raw
prediction* with a small auxiliary classifier, and rescale each channel of ``z`` by a
non-negative or signed per-sample factor; they return ``(z̄, raw_logits)``.

:class:`CIFS` (section 4.3.2, Fig. 4.2), in three steps:

1. **Surrogate raw prediction** ``p = A(z)`` by a *probe*: ``"linear"`` (global average
   pooling → Linear, used at the last block P1) or ``"mlp"`` (GAP → Linear(C, 128) →
   Softplus → Linear, used at the second-last block P2).
2. **Relevance** (eq. 4.1): ``g = ∇_δ Σ_{i ∈ top-k} A(z + δ·1ᵀ)_i |_{δ=0}``, the gradient of
   the sum of the top-k probe logits w.r.t. a perturbation shared by all positions of a
   channel. In training (labels given, see :func:`feed_labels`) the top-1 is replaced by the
   true label. The gradient is taken with ``create_graph`` whenever autograd is recording, so
   training and white-box attacks differentiate *through* the mask (no gradient masking).
3. **Importance mask** by an IMGF (section 4.3.2): ``sigmoid(α g)`` (α = 10), ``softplus(α g)/α``
   (α = 5) or ``softmax(g / T)`` over channels (T = 1), and the channel rescaling of eq. (4.2):
   ``z̄ = z ⊗ m``. The softmax mask's total is ``softmax_scale``: ``"one"`` sums to one as printed
   in the thesis (so the block's output shrinks by about 1/C), ``"k"`` multiplies it by ``k`` as
   the authors' released code does (``F.softmax(...) * 2`` in ``models/nets/resnet_CIFS.py`` of
   github.com/HanshuYAN/CIFS, with k = 2 hard-coded), and ``"channels"`` multiplies it by C, so
   that a uniform mask is 1 and the block keeps its scale (the book's choice for short runs).

:class:`CAS` (Bai et al., ICLR 2021): an auxiliary GAP → Linear classifier whose weight row of
the true class (training) or of the predicted class (inference) multiplies the channels.

A network that holds these modules records every raw prediction of its last forward pass
in ``model.probe_logits`` (an ordered dict position → logits), which the adaptive loss
:func:`robustbook.losses.cifs.adaptive_loss` of eq. (4.3) reads.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CIFS", "CAS", "IMGFS", "SOFTMAX_SCALES", "importance_mask", "topk_indices", "feed_labels", "LabelFeeder"]

#: importance-mask generating functions and their default parameter (α, or the temperature T for softmax)
IMGFS = {"softmax": 1.0, "softplus": 5.0, "sigmoid": 10.0}
PROBES = ("linear", "mlp")
#: totals of the softmax mask: 1 (thesis), k (authors' code), C (a uniform mask is all ones)
SOFTMAX_SCALES = ("one", "k", "channels")


def importance_mask(g: torch.Tensor, imgf: str = "softmax", param: float | None = None, *,
                    softmax_scale: float = 1.0) -> torch.Tensor:
    """The importance mask ``m`` of relevances ``g`` (N, C) by an IMGF (thesis section 4.3.2).

    * ``"sigmoid"``: ``1 / (1 + exp(-α g))`` (α = ``param``, default 10): a switch, NR channels → 0.
    * ``"softplus"``: ``log(1 + exp(α g)) / α`` (default α = 5): monotone, NR channels → 0.
    * ``"softmax"``: ``exp(g/T) / Σ_j exp(g_j/T)`` over channels (default T = 1), times ``softmax_scale``.
    """
    if imgf not in IMGFS:
        raise ValueError(f"imgf must be one of {sorted(IMGFS)}, got {imgf!r}")
    p = IMGFS[imgf] if param is None else float(param)
    if not p > 0:
        raise ValueError(f"the IMGF parameter (alpha, or temperature T for softmax) must be > 0, got {param!r}")
    if g.dim() != 2:
        raise ValueError(f"relevances must have shape (N, C), got {tuple(g.shape)}")
    if imgf == "sigmoid":
        return torch.sigmoid(p * g)
    if imgf == "softplus":
        return F.softplus(g, beta=p)
    return softmax_scale * torch.softmax(g / p, dim=1)


def topk_indices(logits: torch.Tensor, k: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Indices (N, k) of the logits whose sum CIFS differentiates (eq. 4.1).

    Without labels: the k largest logits. With labels (training): the true label first, then the
    k-1 largest logits of the *other* classes. (The thesis replaces the top-1 by the label and keeps
    the rest; when the label was already among the top-k that would count its logit twice. The book
    takes the k-1 best other classes instead; when the top-1 is the label both rules agree.)
    """
    k = min(k, logits.shape[1])
    scores = logits.detach()
    if labels is None:
        return scores.topk(k, dim=1).indices
    labels = labels.to(logits.device).long()
    if k == 1:
        return labels[:, None]
    others = scores.clone()
    others.scatter_(1, labels[:, None], float("-inf"))
    return torch.cat([labels[:, None], others.topk(k - 1, dim=1).indices], dim=1)


class CIFS(nn.Module):
    """CIFS module for a block with ``channels`` channels (thesis eqs. 4.1 and 4.2; Fig. 4.2).

    Args:
        channels: channels C of the block output it rescales.
        num_classes: K, outputs of the probe.
        probe: ``"linear"`` (GAP → Linear) or ``"mlp"`` (GAP → Linear(C, hidden) → Softplus → Linear).
        k: how many top logits the relevance sums (thesis: 2).
        imgf: ``"softmax"`` (thesis default, T = 1), ``"softplus"`` (α = 5) or ``"sigmoid"`` (α = 10).
        imgf_param: α or T; None = the thesis' value.
        softmax_scale: the softmax mask's total: ``"one"`` (the thesis: it sums to 1), ``"k"`` (the
            authors' released code: × k) or ``"channels"`` (× C: a uniform mask is all ones, the
            block keeps its scale). Other IMGFs ignore it.
        hidden: width of the MLP probe (thesis: 128).

    ``forward(z, labels=None) -> (z̄, probe_logits)``.
    """

    def __init__(self, channels: int, num_classes: int, *, probe: str = "linear", k: int = 2,
                 imgf: str = "softmax", imgf_param: float | None = None, softmax_scale: str = "one",
                 hidden: int = 128) -> None:
        super().__init__()
        for name, v in (("channels", channels), ("num_classes", num_classes), ("k", k), ("hidden", hidden)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if k > num_classes:
            raise ValueError(f"k must be at most num_classes ({num_classes}), got {k}")
        if probe not in PROBES:
            raise ValueError(f"probe must be one of {PROBES}, got {probe!r}")
        if softmax_scale not in SOFTMAX_SCALES:
            raise ValueError(f"softmax_scale must be one of {SOFTMAX_SCALES} ('one': the thesis, 'k': the authors' "
                             f"code, 'channels': × C), got {softmax_scale!r}")
        importance_mask(torch.zeros(1, 1), imgf, imgf_param)  # validates imgf and its parameter
        self.channels, self.num_classes, self.k = channels, num_classes, k
        self.probe_kind, self.imgf, self.imgf_param, self.softmax_scale = probe, imgf, imgf_param, softmax_scale
        if probe == "linear":
            self.probe = nn.Linear(channels, num_classes)
        else:
            self.probe = nn.Sequential(nn.Linear(channels, hidden), nn.Softplus(), nn.Linear(hidden, num_classes))

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, num_classes={self.num_classes}, probe={self.probe_kind!r}, k={self.k}, "
                f"imgf={self.imgf!r}, softmax_scale={self.softmax_scale!r}")

    def raw_prediction(self, z: torch.Tensor) -> torch.Tensor:
        """The probe's logits ``p = A(z)`` (N, K) from global-average-pooled channels."""
        return self.probe(z.mean(dim=(2, 3)))

    def relevance(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                  create_graph: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(g, p)``: channel relevances (N, C) of eq. (4.1) and the probe's logits (N, K).

        ``create_graph`` (default: whether autograd is recording) keeps ``g`` differentiable.
        """
        if z.dim() != 4 or z.shape[1] != self.channels:
            raise ValueError(f"CIFS expects features (N, {self.channels}, H, W), got {tuple(z.shape)}")
        graph = torch.is_grad_enabled() if create_graph is None else create_graph
        with torch.enable_grad():
            base = z if graph else z.detach()
            delta = torch.zeros(z.shape[0], z.shape[1], device=z.device, dtype=z.dtype, requires_grad=True)
            p = self.raw_prediction(base + delta[:, :, None, None])
            idx = topk_indices(p, self.k, labels)
            (g,) = torch.autograd.grad(p.gather(1, idx).sum(), delta, create_graph=graph)
        if not graph:
            g, p = g.detach(), p.detach()
        return g, p

    def mask(self, g: torch.Tensor) -> torch.Tensor:
        """The importance mask ``m`` of relevances ``g`` by this module's IMGF."""
        scale = {"one": 1.0, "k": float(self.k), "channels": float(self.channels)}[self.softmax_scale]
        return importance_mask(g, self.imgf, self.imgf_param, softmax_scale=scale)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        g, p = self.relevance(z, labels)
        m = self.mask(g)
        return z * m[:, :, None, None], p


class CAS(nn.Module):
    """Channel-wise Activation Suppressing (Bai et al., ICLR 2021), the thesis' baseline channel method.

    An auxiliary classifier ``p = W·GAP(z) + b`` predicts from the block output; the channels are
    multiplied by ``W[y]``, the weight row of the true class ``y`` in training (labels given) or of
    the predicted class otherwise. ``forward(z, labels=None) -> (z̃, p)``.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        for name, v in (("channels", channels), ("num_classes", num_classes)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.channels, self.num_classes = channels, num_classes
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if z.dim() != 4 or z.shape[1] != self.channels:
            raise ValueError(f"CAS expects features (N, {self.channels}, H, W), got {tuple(z.shape)}")
        p = self.fc(z.mean(dim=(2, 3)))
        idx = labels.to(z.device).long() if labels is not None else p.detach().argmax(1)
        return z * self.fc.weight[idx][:, :, None, None], p


class LabelFeeder:
    """A loader that hands each batch's labels to ``model`` before yielding the batch (see :func:`feed_labels`)."""

    def __init__(self, loader: Iterable, model: nn.Module) -> None:
        if not hasattr(model, "train_labels"):
            raise TypeError(f"{type(model).__name__} takes no training labels (it has no `train_labels`); "
                            "feed_labels is for networks with CIFS or CAS modules")
        self.loader, self.model = loader, model

    def __iter__(self) -> Iterator:
        try:
            for batch in self.loader:
                self.model.train_labels = batch[1]
                yield batch
        finally:
            self.model.train_labels = None

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __getattr__(self, name: str):  # sampler, batch_sampler, dataset ... for fit's epoch seeding
        if name in ("loader", "model"):
            raise AttributeError(name)
        return getattr(self.loader, name)


def feed_labels(loader: Iterable, model: nn.Module) -> LabelFeeder:
    """Wrap a training loader so that ``model`` knows each batch's true labels.

    CIFS replaces its top-1 by the true label, and CAS masks with the true class's weights, *in
    training* (thesis section 4.3.2; Bai et al. 2021), including the forward passes of the training
    attack (run it with ``eval_mode=False``). The network uses ``model.train_labels`` only while it
    is in train mode and the batch sizes agree; evaluation and evaluation attacks (eval mode) never
    see a label. The labels are cleared when the loader is exhausted.
    """
    return LabelFeeder(loader, model)
