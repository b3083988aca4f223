"""Peak signal-to-noise ratio, the book's pixel-fidelity metric (denoising, perturbation size).

    PSNR(x, y) = 10 · log10(data_range² / MSE(x, y)),   MSE = mean over C, H, W

computed per image, as ``skimage.metrics.peak_signal_noise_ratio`` does for
one image; identical images give ``inf`` dB.
"""
from __future__ import annotations

import torch

__all__ = ["psnr"]

REDUCTIONS = ("mean", "none")


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Per-image PSNR in dB between ``x`` and ``y`` of shape (N, C, H, W) or (C, H, W).

    Args:
        x, y: images of the same shape; for pixel space [0, 1] keep ``data_range=1``,
            for uint8-scaled images pass ``data_range=255``.
        data_range: the span of possible pixel values (max - min), > 0.
        reduction: ``"mean"`` averages the per-image values over the batch
            (one identical pair makes the mean ``inf``); ``"none"`` returns
            them, shape (N,). An unbatched (C, H, W) pair gives a 0-d tensor
            either way.

    Returns:
        a float64 tensor on the inputs' device; differentiable where the inputs are.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"x and y must be torch tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.dim() not in (3, 4):
        raise ValueError(f"images must be (N, C, H, W) or (C, H, W), got {x.dim()}-D shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"images are empty, shape {tuple(x.shape)}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
        raise ValueError(f"data_range must be a positive number (1.0 for [0, 1] images, 255 for uint8), "
                         f"got {data_range!r}")
    for name, t in (("x", x), ("y", y)):
        if t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"{name} must hold real pixel values, got dtype {t.dtype}")
        if t.is_floating_point() and torch.isnan(t).any():
            raise ValueError(f"{name} contains {int(torch.isnan(t).sum())} NaN pixel(s)")

    unbatched = x.dim() == 3
    xd, yd = x.to(torch.float64), y.to(torch.float64)
    if unbatched:
        xd, yd = xd.unsqueeze(0), yd.unsqueeze(0)
    mse = (xd - yd).pow(2).flatten(1).mean(dim=1)
    # mse == 0 gives log10(inf) = inf, the conventional value for identical images.
    values = 10.0 * torch.log10(float(data_range) ** 2 / mse)
    if unbatched:
        return values[0]
    return values.mean() if reduction == "mean" else values
