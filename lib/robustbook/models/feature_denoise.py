"""Feature denoising blocks (Xie, Wu, van der Maaten, Yuille & He, CVPR 2019).

"Feature Denoising for Improving Adversarial Robustness", the "Denoise" baseline
of source 000 (ST Norm), Tables I and IV. A denoising block filters a feature map
with a non-local means operation, then applies a 1×1 convolution and adds the
input back (Xie et al., Fig. 3)::

    y = x + conv1x1(NLM(x)),   NLM(x)_i = (1 / C(x)) Σ_j f(x_i, x_j) · x_j

over all positions ``i, j`` of the map. Two choices of ``f`` (Xie et al., sec. 4):

* ``mode="gaussian"`` (default) — "Gaussian (softmax)":
  ``f(x_i, x_j) / C = softmax_j(θ(x_i)ᵀ φ(x_j) / √d)``, with θ, φ 1×1 convolutions to
  ``d = C/2`` channels (``embed=True``, the embedded Gaussian of Xie et al.'s best
  model) or the identity (``embed=False``, plain ``softmax_j(x_iᵀ x_j / √C)``).
* ``mode="dot"`` — "dot product": ``f(x_i, x_j) = θ(x_i)ᵀ φ(x_j)`` normalised by the
  number of positions ``N = H·W`` (no softmax); without embedding (``embed=False``,
  the default for this mode) θ = φ = identity. It is computed as ``(g φᵀ) θ / N``
  (a ``C × C'`` matrix first), exact and ``O(N·C·C')`` instead of ``O(N²·C)``.
  Source 003 (Table 3.4, "FDn") uses this block "added to the head of the
  fully-connected classifier" (§3.4.3).

The 1×1 convolution is zero-initialised, so the block starts as the identity and
inserting it into a trained network changes nothing until it is trained. (Xie et
al.'s released code puts a BatchNorm with zero-initialised γ after the
convolution instead; ``bn=True`` reproduces that.) θ and φ are initialised from
N(0, 0.01²) as in that code.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from robustbook.models.stnorm import STAGES, resnet_trunk, resolve_stages

__all__ = ["FeatureDenoise", "MODES", "add_feature_denoise"]

MODES = ("gaussian", "dot")


class FeatureDenoise(nn.Module):
    """Denoising block ``y = x + conv1x1(NLM(x))`` on ``(N, C, H, W)`` features.

    Args:
        channels: ``C``.
        mode: ``"gaussian"`` (softmax over positions) or ``"dot"`` (dot product / N).
        embed: use learned 1×1 θ/φ embeddings to ``C // 2`` channels rather than the
            raw features; ``None`` (default) = True for ``"gaussian"`` (Xie et al.'s
            best model), False for ``"dot"``.
        bn: follow the 1×1 convolution by a BatchNorm with γ = 0 (Xie et al.'s code)
            instead of zero-initialising the convolution.
    """

    def __init__(self, channels: int, mode: str = "gaussian", *, embed: bool | None = None, bn: bool = False) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.channels, self.mode = channels, mode
        self.embed = (mode == "gaussian") if embed is None else bool(embed)
        if self.embed:
            d = max(1, channels // 2)
            self.theta = nn.Conv2d(channels, d, 1, bias=False)
            self.phi = nn.Conv2d(channels, d, 1, bias=False)
            nn.init.normal_(self.theta.weight, std=0.01)
            nn.init.normal_(self.phi.weight, std=0.01)
        self.conv = nn.Conv2d(channels, channels, 1, bias=False)
        if bn:
            self.bn: nn.Module = nn.BatchNorm2d(channels)
            nn.init.zeros_(self.bn.weight)
        else:
            self.bn = nn.Identity()
            nn.init.zeros_(self.conv.weight)

    def nonlocal_means(self, x: torch.Tensor) -> torch.Tensor:
        """The non-local means ``NLM(x)`` (before the 1×1 convolution and residual)."""
        n, c, h, w = x.shape
        g = x.flatten(2)                                   # (N, C, HW)
        theta = (self.theta(x) if self.embed else x).flatten(2)   # (N, C', HW)
        phi = (self.phi(x) if self.embed else x).flatten(2)       # (N, C', HW)
        if self.mode == "dot":                             # out_i = (1/HW) Σ_j (θ_i·φ_j) x_j = (g φᵀ / HW) θ_i
            m = torch.bmm(g, phi.transpose(1, 2)) / (h * w)          # (N, C, C')
            return torch.bmm(m, theta).view(n, c, h, w)
        logits = torch.bmm(theta.transpose(1, 2), phi) / math.sqrt(theta.shape[1])
        f = torch.softmax(logits, dim=2)                   # rows i sum to 1 over j
        return torch.bmm(g, f.transpose(1, 2)).view(n, c, h, w)  # out_i = Σ_j f_ij x_j

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"FeatureDenoise({self.channels}) expects (N, {self.channels}, H, W) input, "
                             f"got shape {tuple(x.shape)}")
        return x + self.bn(self.conv(self.nonlocal_means(x)))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, mode={self.mode!r}, embed={self.embed}"


def _stage_channels(stage: nn.Sequential) -> int:
    """Output channels of a ResNet stage: the last convolution of its last residual block."""
    for m in reversed(list(stage)):
        for attr in ("conv3", "conv2"):
            conv = getattr(m, attr, None)
            if isinstance(conv, nn.Conv2d):
                return conv.out_channels
    raise TypeError("cannot infer the stage's output channels: expected torchvision BasicBlock/Bottleneck blocks")


def add_feature_denoise(model: nn.Module, stages: Iterable[str] = ("layer1", "layer2", "layer3", "layer4"),
                        mode: str = "gaussian", **kw: Any) -> nn.Module:
    """Append a :class:`FeatureDenoise` block at the end of each named ResNet stage, in place.

    Xie et al. add one block after each of res2 … res5 (torchvision ``layer1`` …
    ``layer4``), the default. The block is appended to the stage's
    ``nn.Sequential`` (``layer3[-1]``), so existing parameter names do not change and
    ``layer3``'s output is the denoised one. ``"res2"`` … ``"res5"`` are accepted as
    aliases. ``**kw`` goes to :class:`FeatureDenoise` (``embed``, ``bn``).

    Returns:
        ``model`` itself, modified.
    """
    trunk = resnet_trunk(model)
    for name in resolve_stages(stages, allowed=STAGES[1:]):
        stage = getattr(trunk, name)
        if not isinstance(stage, nn.Sequential):
            raise TypeError(f"{name} must be an nn.Sequential of residual blocks, got {type(stage).__name__}")
        block = FeatureDenoise(_stage_channels(stage), mode, **kw)
        ref = next(stage.parameters(), None)
        if ref is not None:
            block.to(device=ref.device, dtype=ref.dtype)
        block.train(stage.training)
        stage.append(block)
    return model
