"""BiRQA: Bidirectional Robust Quality Assessment (Gushchin, Vatolin & Antsiferova; source 002, §3.2).

A full-reference quality model: ``BiRQA()(ref, dist) -> score (N,)``, higher = better. It can
also be called with one stacked tensor ``pair`` of shape ``(N, 2, 3, H, W)`` (reference first),
which is how :func:`robustbook.train.fit` feeds pairs. Attack the distorted image only through
:class:`robustbook.attacks.FixedReference`.

Pipeline (Fig. 1): the four feature maps of :class:`~robustbook.models.birqa_features.BiRQAFeatures`
in a four-level pyramid → per-feature preprocessing (a 3×3 conv per feature and level, §3.2) →
**AdaptiveFusion** per level (joint attention ``α_i^j = σ(MLP_i^j(GAP(⊕_j F_i^j)))``, fused
``G_i = φ_i(⊕_j α_i^j ⊙ F_i^j)``, then squeeze-and-excitation, Hu et al. 2018) →
**CSRAM** bottom-up (fine → coarse: message ``Ĝ = Conv↓(G_i) + Resize↓(G_i)``, mask
``M = σ(AvgPool_c(Ĝ) + MaxPool_c(Ĝ))``, ``Ĝ ← Ĝ ⊙ M``; from ``z = [G_{i+1}, M]`` strength
``α = softplus(ψ_α(z))``, confidence ``ρ = σ(ψ_ρ(z))``, residual ``R = tanh(ψ_R(Ĝ))``;
``G_{i+1} ← G_{i+1} + ρ ⊙ α ⊙ R``) → **SCGB** top-down (``g = σ(MLP(G_{i+1}))`` upsampled,
``G_i ← G_i + G_i ⊙ g``) → **Reliability-Aware Head** (``z_i = GeM(h_i(G_i))`` with learnable p,
contribution ``c_i`` and reliability logit ``a_i`` from two small MLPs, ``ŷ = Σ softmax(a)_i c_i``).
Only eqs. (1)–(8) of the source are numbered; these blocks are §3.2.

Ablation switches (Table 4, "CSRAM and SCGB replaced with cross-attention layers and element-wise
multiplication; RAH replaced with pooling and MLP"): ``csram=False`` injects the fine level
into the coarse one by single-head cross-attention (coarse queries, pooled fine keys/values);
``scgb=False`` replaces the gated update by the plain product ``G_i ← G_i ⊙ Up(G_{i+1})``;
``rah=False`` replaces the head by global average pooling of every level, concatenated, and an MLP.
The widths are the book's (the source gives 5.5 M parameters and no widths): see
:meth:`BiRQA.parameter_count`.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from robustbook.models.birqa_features import FEATURE_CHANNELS, FEATURES, BiRQAFeatures

__all__ = ["BiRQA", "AdaptiveFusion", "CSRAM", "SCGB", "ReliabilityAwareHead", "GeM", "split_pair", "lbp_surrogate"]


def split_pair(ref: torch.Tensor, dist: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ref, dist)`` from two tensors, or from one stacked ``(N, 2, 3, H, W)`` pair tensor."""
    if dist is None:
        if ref.dim() != 5 or ref.shape[1] != 2:
            raise ValueError("a full-reference model takes (ref, dist) or one stacked pair tensor (N, 2, 3, H, W); "
                             f"got a single tensor of shape {tuple(ref.shape)}")
        return ref[:, 0], ref[:, 1]
    return ref, dist


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, r: int = 4) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(c, max(1, c // r)), nn.ReLU(inplace=True), nn.Linear(max(1, c // r), c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc(x.mean((2, 3))))[:, :, None, None]


class AdaptiveFusion(nn.Module):
    """Multi-feature adaptive fusion of one pyramid level (§3.2), with squeeze-and-excitation."""

    def __init__(self, dims: list[int], width: int) -> None:
        super().__init__()
        total = sum(dims)
        self.dims = list(dims)
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(total, max(4, total // 2)), nn.ReLU(inplace=True),
                                                nn.Linear(max(4, total // 2), d)) for d in dims)
        self.phi = nn.Sequential(nn.Conv2d(total, width, 3, padding=1), nn.ReLU(inplace=True))
        self.se = SqueezeExcite(width)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        cat = torch.cat(feats, 1)
        gap = cat.mean((2, 3))
        weighted = [torch.sigmoid(mlp(gap))[:, :, None, None] * f for mlp, f in zip(self.mlps, feats, strict=False)]
        return self.se(self.phi(torch.cat(weighted, 1)))


class CSRAM(nn.Module):
    """Cross-Scale Residual Attention Module (§3.2, Fig. 2): lifts level i's cues into level i+1."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.down = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.psi_alpha = nn.Conv2d(c + 1, c, 1)
        self.psi_rho = nn.Conv2d(c + 1, c, 1)
        self.psi_r = nn.Conv2d(c, c, 1)

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        size = coarse.shape[-2:]
        msg = F.interpolate(self.down(fine), size=size, mode="nearest") + F.adaptive_avg_pool2d(fine, size)
        mask = torch.sigmoid(msg.mean(1, keepdim=True) + msg.amax(1, keepdim=True))
        msg = msg * mask
        z = torch.cat([coarse, mask], 1)
        strength = F.softplus(self.psi_alpha(z))
        confidence = torch.sigmoid(self.psi_rho(z))
        residual = torch.tanh(self.psi_r(msg))
        self.last_gates = (strength.detach(), confidence.detach())
        return coarse + confidence * strength * residual


class CrossAttentionLift(nn.Module):
    """Table 4's replacement of CSRAM: single-head cross-attention, coarse queries over pooled fine features."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        n, c, h, w = coarse.shape
        kv = F.adaptive_avg_pool2d(fine, (h, w))
        q = self.q(coarse).flatten(2).transpose(1, 2)
        k, v = self.k(kv).flatten(2), self.v(kv).flatten(2).transpose(1, 2)
        att = torch.softmax(q @ k / c ** 0.5, -1)
        return coarse + (att @ v).transpose(1, 2).reshape(n, c, h, w)


class SCGB(nn.Module):
    """Spatial Cross-Gating Block (§3.2): coarse context gates the finer level, ``G_i + G_i ⊙ σ(MLP(G_{i+1}))``."""

    def __init__(self, c: int, gated: bool = True) -> None:
        super().__init__()
        self.gated = gated
        self.mlp = nn.Sequential(nn.Conv2d(c, c, 1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 1)) if gated else None

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        if not self.gated:  # Table 4's element-wise multiplication
            return fine * F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        g = torch.sigmoid(self.mlp(coarse))
        return fine + fine * F.interpolate(g, size=fine.shape[-2:], mode="bilinear", align_corners=False)


class GeM(nn.Module):
    """Generalised-mean pooling with a learnable exponent p (Radenović et al. 2018)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p.clamp(1.0, 8.0)
        return x.clamp_min(self.eps).pow(p).mean((2, 3)).pow(1.0 / p)


class ReliabilityAwareHead(nn.Module):
    """RAH (§3.2): per scale ``z_i = GeM(h_i(G_i))``, contribution ``c_i``, reliability ``a_i``; ``Σ softmax(a)_i c_i``.

    ``shared=True`` uses one pair of MLPs for every scale (the source does not say; per-scale is the default).
    """

    def __init__(self, c: int, levels: int, d: int, shared: bool = False) -> None:
        super().__init__()
        self.h = nn.ModuleList(nn.Sequential(nn.Conv2d(c, d, 1), nn.ReLU(inplace=True)) for _ in range(levels))
        self.gem = nn.ModuleList(GeM() for _ in range(levels))

        def mlp() -> nn.Module:
            return nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, 1))

        n_mlp = 1 if shared else levels
        self.contrib = nn.ModuleList(mlp() for _ in range(n_mlp))
        self.reliab = nn.ModuleList(mlp() for _ in range(n_mlp))
        self.shared = shared

    def forward(self, gs: list[torch.Tensor]) -> torch.Tensor:
        cs, as_ = [], []
        for i, g in enumerate(gs):
            z = self.gem[i](self.h[i](g))
            j = 0 if self.shared else i
            cs.append(self.contrib[j](z))
            as_.append(self.reliab[j](z))
        c, a = torch.cat(cs, 1), torch.cat(as_, 1)
        w = torch.softmax(a, 1)
        self.last_weights = w.detach()
        return (w * c).sum(1)


class PoolMLPHead(nn.Module):
    """Table 4's replacement of RAH: global average pooling of every level, concatenated, and an MLP."""

    def __init__(self, c: int, levels: int, d: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(c * levels, d), nn.ReLU(inplace=True), nn.Linear(d, 1))

    def forward(self, gs: list[torch.Tensor]) -> torch.Tensor:
        return self.mlp(torch.cat([g.mean((2, 3)) for g in gs], 1))[:, 0]


class BiRQA(nn.Module):
    """BiRQA full-reference quality model (source 002, §3). Images in [0, 1]; score higher = better.

    Args:
        width: channels C of every level after fusion.
        feat_width: channels D_j of each preprocessed feature.
        head_width: the shared width d of the head.
        levels: pyramid levels (4).
        csram, scgb, rah: Table 4's switches (False = the replacement described in the module docstring).
        shared_head: one pair of head MLPs for all scales.
        pyramid, lbp_grad, tau: passed to :class:`BiRQAFeatures`.
    """

    def __init__(self, width: int = 32, feat_width: int = 8, head_width: int = 32, levels: int = 4, *,
                 csram: bool = True, scgb: bool = True, rah: bool = True, shared_head: bool = False,
                 pyramid: str = "pool", lbp_grad: str = "sigmoid", tau: float = 0.02) -> None:
        super().__init__()
        for name, v in (("width", width), ("feat_width", feat_width), ("head_width", head_width), ("levels", levels)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if levels < 2:
            raise ValueError(f"levels must be at least 2 (CSRAM and SCGB connect adjacent levels), got {levels}")
        self.features = BiRQAFeatures(levels, pyramid=pyramid, lbp_grad=lbp_grad, tau=tau)
        self.switches = {"csram": bool(csram), "scgb": bool(scgb), "rah": bool(rah)}
        dims = [feat_width] * len(FEATURES)
        self.pre = nn.ModuleList(
            nn.ModuleList(nn.Sequential(nn.Conv2d(FEATURE_CHANNELS[k], feat_width, 3, padding=1), nn.ReLU(inplace=True))
                          for k in FEATURES) for _ in range(levels))
        self.fusion = nn.ModuleList(AdaptiveFusion(dims, width) for _ in range(levels))
        self.lift = nn.ModuleList((CSRAM(width) if csram else CrossAttentionLift(width)) for _ in range(levels - 1))
        self.gate = nn.ModuleList(SCGB(width, gated=scgb) for _ in range(levels - 1))
        self.head = (ReliabilityAwareHead(width, levels, head_width, shared=shared_head) if rah
                     else PoolMLPHead(width, levels, head_width))

    @property
    def lbp_grad(self) -> str:
        return self.features.lbp_grad

    @lbp_grad.setter
    def lbp_grad(self, value: str) -> None:
        if value not in ("sigmoid", "hard"):
            raise ValueError(f"lbp_grad must be 'sigmoid' or 'hard', got {value!r}")
        self.features.lbp_grad = value

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, ref: torch.Tensor, dist: torch.Tensor | None = None) -> torch.Tensor:
        ref, dist = split_pair(ref, dist)
        pyr = self.features(ref, dist)
        gs = []
        for i, level in enumerate(pyr):
            chunks = torch.split(level, [FEATURE_CHANNELS[k] for k in FEATURES], 1)
            gs.append(self.fusion[i]([pre(ch) for pre, ch in zip(self.pre[i], chunks, strict=False)]))
        for i in range(len(gs) - 1):  # bottom-up: fine → coarse
            gs[i + 1] = self.lift[i](gs[i], gs[i + 1])
        for i in reversed(range(len(gs) - 1)):  # top-down: coarse → fine
            gs[i] = self.gate[i](gs[i], gs[i + 1])
        return self.head(gs)


@contextlib.contextmanager
def lbp_surrogate(model: nn.Module) -> Iterator[nn.Module]:
    """BPDA for BiRQA's LBP: every :class:`BiRQAFeatures` inside ``model`` backpropagates through the
    sigmoid surrogate while the context is open (the forward pass is unchanged); modes restored after.

    Pass it as ``bpda=lbp_surrogate`` to any gradient attack of :mod:`robustbook.attacks` on a BiRQA whose
    ``lbp_grad`` is ``"hard"`` (its true, zero gradient through LBP).
    """
    feats = [m for m in model.modules() if isinstance(m, BiRQAFeatures)]
    saved = [f.lbp_grad for f in feats]
    for f in feats:
        f.lbp_grad = "sigmoid"
    try:
        yield model
    finally:
        for f, g in zip(feats, saved, strict=False):
            f.lbp_grad = g
