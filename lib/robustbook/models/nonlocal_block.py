"""The dot-product non-local denoising block (FDn) of Xie et al. (2019).

"Feature Denoising for Improving Adversarial Robustness" (Xie, Wu, van der
Maaten, Yuille & He, CVPR 2019) denoises a feature map ``x`` (``N = H·W``
positions ``x_i ∈ R^C``) with a non-local mean and adds the result back
through a 1×1 convolution::

    y_i = x_i + W · (1/N) Σ_j (θ(x_i) · φ(x_j)) g(x_j)

Their *dot-product* version has no softmax and normalises by ``C(x) = N``.
By default (*choice*: source 003 only says "the dot-product non-local
denoising layer") it has no embedding, ``θ = φ = g = identity`` (Xie et al.'s
``embed=False``), so the 1×1 convolution ``W`` is the block's only parameter;
``embed=True`` adds bias-free 1×1 embeddings ``θ, φ`` with ``C/2`` channels
while ``g`` stays the identity, as in Xie et al.'s released code. ``W`` is
zero-initialised (Xie et al. zero-initialise the BatchNorm after it; this
block has no normalisation), so the block starts as the identity.

Source 003 uses this block in Table 3.4 ("CNN-FDn", "TisODE-FDn"), "added to
the head of the fully-connected classifier" (§3.4.3).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["NonLocalBlock"]


class NonLocalBlock(nn.Module):
    """``x ↦ x + conv1x1(nonlocal_mean(x))``, the dot-product denoising block (softmax-free, ``C(x) = N``)."""

    def __init__(self, channels: int, embed: bool = False, embed_channels: int | None = None) -> None:
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        self.channels, self.embed = channels, bool(embed)
        if self.embed:
            k = embed_channels if embed_channels is not None else max(1, channels // 2)
            if not isinstance(k, int) or k < 1:
                raise ValueError(f"embed_channels must be a positive int, got {embed_channels!r}")
            self.theta = nn.Conv2d(channels, k, 1, bias=False)
            self.phi = nn.Conv2d(channels, k, 1, bias=False)
        elif embed_channels is not None:
            raise ValueError("embed_channels needs embed=True")
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def nonlocal_mean(self, x: torch.Tensor) -> torch.Tensor:
        """``(1/N) Σ_j (θ(x_i)·φ(x_j)) x_j`` at every position ``i``; same shape as ``x``.

        Computed as ``(g φᵀ) θ / N`` (a ``C × C'`` matrix first), which is exact
        and costs ``O(N·C·C')`` instead of ``O(N²·C)``.
        """
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"expected (B, {self.channels}, H, W) features, got {tuple(x.shape)}")
        b, c, h, w = x.shape
        g = x.flatten(2)                                            # (B, C, N)
        theta = self.theta(x).flatten(2) if self.embed else g       # (B, C', N)
        phi = self.phi(x).flatten(2) if self.embed else g           # (B, C', N)
        m = torch.bmm(g, phi.transpose(1, 2)) / (h * w)            # (B, C, C') = (1/N) Σ_j g_j φ_jᵀ
        return torch.bmm(m, theta).view(b, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(self.nonlocal_mean(x))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, embed={self.embed}"
