"""The four analytic feature maps of BiRQA (Gushchin et al., source 002, §3.1), differentiable.

A reference–distorted pair ``(ref, dist)`` of RGB images in [0, 1] gives, at full
resolution, the channels

* ``ssim`` (1): the SSIM map of Wang et al. (2004) on the luma Y (Gaussian window 11, σ = 1.5,
  C1 = (0.01)², C2 = (0.03)², reflect padding so the map keeps the image size);
* ``info`` (2): local information content after IW-SSIM (Wang & Li 2010):
  ``log2(1 + σ²/C2)`` of the local variance σ² of the reference and of the distorted luma.
  §3.1 says "variance of pixel intensities"; the source's Table 5 says "gradient
  magnitude" — the book follows §3.1 and notes the conflict;
* ``color`` (3): ``|ΔY|, |ΔCb|, |ΔCr|`` in YCbCr (ITU-R BT.601, full range, [0, 1] units);
* ``lbp`` (2): rotation-invariant local binary patterns (8 neighbours on a circle of radius 1,
  bilinear interpolation, scikit-image's ``method="ror"``) of the reference and of the distorted
  luma, divided by 255. P = 8, R = 1 and rotation invariance are the book's choice: the source's
  Table 5 says only "gray-scale and rotation robust".

LBP thresholds ``neighbour − centre ≥ 0``: a step function whose gradient is zero almost
everywhere. ``lbp_grad="hard"`` keeps that (an attack gets no gradient through LBP:
gradient masking); ``lbp_grad="sigmoid"`` (default) runs the hard code forward and, backward,
the gradient of the same code with each bit replaced by ``sigmoid((n − c) / τ)`` (a
straight-through surrogate), so white-box attacks reach through every feature.

The pyramid (§3.1, "we compute feature maps at the original resolution and integrate them
into a pyramidal framework", four levels, each halved): ``pyramid="pool"`` (default, the closer
reading) computes the maps once at full size and average-pools them by 2 per level;
``pyramid="image"`` recomputes them on a downscaled image pair at each level.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FEATURES", "FEATURE_CHANNELS", "gaussian_window", "rgb_to_ycbcr", "ssim_map", "local_variance",
           "info_content", "color_difference", "lbp", "BiRQAFeatures"]

FEATURES = ("ssim", "info", "color", "lbp")
FEATURE_CHANNELS = {"ssim": 1, "info": 2, "color": 3, "lbp": 2}
C1, C2 = 0.01 ** 2, 0.03 ** 2
LBP_GRADS = ("sigmoid", "hard")
PYRAMIDS = ("pool", "image")


def _check_images(*xs: torch.Tensor) -> None:
    for x in xs:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected RGB images (N, 3, H, W) in [0, 1], got {got}")
    if len(xs) == 2 and xs[0].shape != xs[1].shape:
        raise ValueError(f"reference and distorted image differ in shape: {tuple(xs[0].shape)} vs {tuple(xs[1].shape)}")


def gaussian_window(size: int = 11, sigma: float = 1.5, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """The normalised 1-D Gaussian window of SSIM (Wang et al. 2004)."""
    t = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _blur(x: torch.Tensor, win: torch.Tensor, padding: str) -> torch.Tensor:
    """Separable Gaussian filter per channel; ``padding`` 'valid' or 'reflect' (same size)."""
    c, k = x.shape[1], win.numel()
    if padding == "reflect":
        p = k // 2
        if min(x.shape[-2:]) <= p:
            x = F.pad(x, (p, p, p, p), mode="replicate")
        else:
            x = F.pad(x, (p, p, p, p), mode="reflect")
    elif padding != "valid":
        raise ValueError(f"padding must be 'valid' or 'reflect', got {padding!r}")
    w = win.to(x.dtype)
    x = F.conv2d(x, w.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, w.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] → YCbCr (BT.601 full range) in [0, 1]: Y, Cb and Cr centred on 0.5."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 0.5 + (b - y) * 0.564
    cr = 0.5 + (r - y) * 0.713
    return torch.cat([y, cb, cr], 1)


def _luma(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def ssim_map(a: torch.Tensor, b: torch.Tensor, *, win_size: int = 11, sigma: float = 1.5,
             padding: str = "reflect") -> torch.Tensor:
    """Per-pixel SSIM of single- or multi-channel images ``(N, C, H, W)`` in [0, 1] (data range 1).

    ``padding="valid"`` is the map pytorch-msssim averages (its ``ssim(..., size_average=False)``
    equals ``ssim_map(a, b, padding="valid").mean((1, 2, 3))``).
    """
    win = gaussian_window(win_size, sigma, dtype=a.dtype, device=a.device)
    mu_a, mu_b = _blur(a, win, padding), _blur(b, win, padding)
    s_aa = _blur(a * a, win, padding) - mu_a ** 2
    s_bb = _blur(b * b, win, padding) - mu_b ** 2
    s_ab = _blur(a * b, win, padding) - mu_a * mu_b
    return ((2 * mu_a * mu_b + C1) * (2 * s_ab + C2)) / ((mu_a ** 2 + mu_b ** 2 + C1) * (s_aa + s_bb + C2))


def local_variance(x: torch.Tensor, *, win_size: int = 11, sigma: float = 1.5,
                   padding: str = "reflect") -> torch.Tensor:
    """Gaussian-weighted local variance ``E[x²] − E[x]²`` (clamped at 0)."""
    win = gaussian_window(win_size, sigma, dtype=x.dtype, device=x.device)
    mu = _blur(x, win, padding)
    return (_blur(x * x, win, padding) - mu ** 2).clamp_min(0.0)


def info_content(ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """IW-SSIM-style information content ``log2(1 + σ²/C2)`` of both lumas: 2 channels."""
    return torch.cat([torch.log2(1 + local_variance(_luma(ref)) / C2),
                      torch.log2(1 + local_variance(_luma(dist)) / C2)], 1) / 10.0


def color_difference(ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """``|ΔY|, |ΔCb|, |ΔCr|`` between the pair in YCbCr: 3 channels."""
    return (rgb_to_ycbcr(ref) - rgb_to_ycbcr(dist)).abs()


# neighbour offsets of skimage's LBP: rr = -R sin(2πp/P), cc = R cos(2πp/P), rounded to 5 decimals
_P, _R = 8, 1.0
_OFFSETS = [(round(-_R * math.sin(2 * math.pi * p / _P), 5), round(_R * math.cos(2 * math.pi * p / _P), 5))
            for p in range(_P)]


def _neighbours(img: torch.Tensor) -> torch.Tensor:
    """The 8 circular neighbours ``(N, 8, H, W)``, bilinear, zero outside (as scikit-image computes them)."""
    h, w = img.shape[-2:]
    pad = F.pad(img, (2, 2, 2, 2))  # zeros: skimage's constant mode, cval 0
    out = []
    for rr, cc in _OFFSETS:
        r0, c0 = math.floor(rr), math.floor(cc)
        dr, dc = rr - r0, cc - c0

        def at(dy: int, dx: int) -> torch.Tensor:
            return pad[..., 2 + dy:2 + dy + h, 2 + dx:2 + dx + w]

        if dr == 0 and dc == 0:
            out.append(at(r0, c0))
            continue
        # the same operations, in the same order, as skimage's bilinear_interpolation
        top = (1 - dc) * at(r0, c0) + dc * at(r0, c0 + 1)
        bottom = (1 - dc) * at(r0 + 1, c0) + dc * at(r0 + 1, c0 + 1)
        out.append((1 - dr) * top + dr * bottom)
    return torch.cat(out, 1)


def _ror_min(bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation-invariant code (min over circular shifts) of bits ``(N, 8, H, W)`` and the best shift."""
    weights = (2.0 ** torch.arange(_P, dtype=bits.dtype, device=bits.device)).view(1, _P, 1, 1)
    codes = torch.stack([(torch.roll(bits, -k, dims=1) * weights).sum(1) for k in range(_P)], 1)
    val, k = codes.min(1)
    return val, k


def lbp(img: torch.Tensor, *, grad: str = "sigmoid", tau: float = 0.02) -> torch.Tensor:
    """Rotation-invariant LBP (P = 8, R = 1; scikit-image's ``method="ror"``) of ``(N, 1, H, W)``.

    Returns codes in {0, …, 255} as float ``(N, 1, H, W)``. ``grad="hard"``: the true gradient
    (zero). ``grad="sigmoid"``: forward unchanged, backward through bits ``sigmoid((n − c)/τ)``
    at the rotation the hard code chose.
    """
    if grad not in LBP_GRADS:
        raise ValueError(f"grad must be one of {LBP_GRADS}, got {grad!r}")
    if img.dim() != 4 or img.shape[1] != 1:
        raise ValueError(f"lbp expects a single-channel image (N, 1, H, W), got {tuple(img.shape)}")
    diff = _neighbours(img) - img
    hard_bits = (diff >= 0).to(img.dtype)
    code, shift = _ror_min(hard_bits)
    code = code[:, None]
    if grad == "hard" or not (torch.is_grad_enabled() and img.requires_grad):
        return code.detach() if grad == "hard" else code
    soft = torch.sigmoid(diff / tau)
    weights = (2.0 ** torch.arange(_P, dtype=img.dtype, device=img.device)).view(1, _P, 1, 1)
    idx = (torch.arange(_P, device=img.device).view(1, _P, 1, 1) + shift[:, None]) % _P
    soft_code = (torch.gather(soft, 1, idx) * weights).sum(1, keepdim=True)
    return code + (soft_code - soft_code.detach())


class BiRQAFeatures(nn.Module):
    """``(ref, dist)`` → a list of 4 pyramid levels, each ``(N, 8, H/2^i, W/2^i)`` (channels: :data:`FEATURES`).

    Args:
        levels: pyramid levels (4 in the source).
        pyramid: ``"pool"`` (maps at full size, average-pooled per level) or ``"image"`` (maps recomputed on
            a downscaled pair per level).
        lbp_grad: ``"sigmoid"`` (surrogate backward) or ``"hard"`` (zero gradient through LBP).
        tau: temperature of the sigmoid surrogate, in pixel units of [0, 1].
    """

    def __init__(self, levels: int = 4, pyramid: str = "pool", lbp_grad: str = "sigmoid", tau: float = 0.02) -> None:
        super().__init__()
        if pyramid not in PYRAMIDS:
            raise ValueError(f"pyramid must be one of {PYRAMIDS}, got {pyramid!r}")
        if lbp_grad not in LBP_GRADS:
            raise ValueError(f"lbp_grad must be one of {LBP_GRADS}, got {lbp_grad!r}")
        if not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be a positive int, got {levels!r}")
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau!r}")
        self.levels, self.pyramid, self.lbp_grad, self.tau = levels, pyramid, lbp_grad, tau

    @property
    def channels(self) -> dict[str, int]:
        return dict(FEATURE_CHANNELS)

    def maps(self, ref: torch.Tensor, dist: torch.Tensor) -> dict[str, torch.Tensor]:
        """The four maps at the pair's resolution, by name."""
        _check_images(ref, dist)
        yr, yd = _luma(ref), _luma(dist)
        return {"ssim": ssim_map(yr, yd), "info": info_content(ref, dist), "color": color_difference(ref, dist),
                "lbp": torch.cat([lbp(yr, grad=self.lbp_grad, tau=self.tau),
                                  lbp(yd, grad=self.lbp_grad, tau=self.tau)], 1) / 255.0}

    def forward(self, ref: torch.Tensor, dist: torch.Tensor) -> list[torch.Tensor]:
        _check_images(ref, dist)
        if min(ref.shape[-2:]) < 2 ** (self.levels - 1):
            raise ValueError(f"images of {tuple(ref.shape[-2:])} are too small for {self.levels} pyramid levels "
                             f"(need at least {2 ** (self.levels - 1)} pixels per side)")
        if self.pyramid == "pool":
            base = torch.cat([self.maps(ref, dist)[k] for k in FEATURES], 1)
            out = [base]
            for _ in range(1, self.levels):
                out.append(F.avg_pool2d(out[-1], 2, ceil_mode=True))
            return out
        out = []
        r, d = ref, dist
        for i in range(self.levels):
            if i:
                r, d = F.avg_pool2d(r, 2, ceil_mode=True), F.avg_pool2d(d, 2, ceil_mode=True)
            out.append(torch.cat([self.maps(r, d)[k] for k in FEATURES], 1))
        return out
