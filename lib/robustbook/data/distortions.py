"""Synthetic distortions, five levels each, for the bundled quality-assessment set.

Each function maps an RGB float image ``(H, W, 3)`` in [0, 1] and a level 1..5 to
a distorted image of the same shape in [0, 1]. The levels follow the spirit of
KADID-10k's (Lin et al. 2019): level 1 barely visible, level 5 severe, at the
small crop sizes the offline profiles use.
"""
from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

LEVELS = (1, 2, 3, 4, 5)

BLUR_SIGMA = (0.5, 0.9, 1.4, 2.0, 3.0)            # pixels
NOISE_SIGMA = (0.02, 0.04, 0.07, 0.10, 0.15)      # in [0, 1] units
JPEG_QUALITY = (50, 30, 18, 10, 5)
CONTRAST_FACTOR = (0.80, 0.65, 0.50, 0.35, 0.20)  # < 1 lowers contrast
SATURATION_FACTOR = (0.80, 0.60, 0.40, 0.20, 0.0)  # 0 = grey


def _check(img: np.ndarray, level: int) -> None:
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {img.shape}")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def gaussian_blur(img: np.ndarray, level: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Gaussian blur with σ = BLUR_SIGMA[level-1] pixels on each channel."""
    _check(img, level)
    return np.clip(gaussian_filter(img, sigma=(BLUR_SIGMA[level - 1],) * 2 + (0,)), 0, 1)


def gaussian_noise(img: np.ndarray, level: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Additive white Gaussian noise with σ = NOISE_SIGMA[level-1] (seeded by ``rng``)."""
    _check(img, level)
    rng = rng if rng is not None else np.random.default_rng(0)
    return np.clip(img + rng.normal(0.0, NOISE_SIGMA[level - 1], img.shape), 0, 1)


def jpeg(img: np.ndarray, level: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """JPEG compression at quality JPEG_QUALITY[level-1] (PIL, 4:2:0 subsampling)."""
    _check(img, level)
    buf = io.BytesIO()
    Image.fromarray(to_uint8(img)).save(buf, format="JPEG", quality=JPEG_QUALITY[level - 1])
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float64) / 255.0


def contrast_change(img: np.ndarray, level: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Contrast reduction towards the mean grey level by CONTRAST_FACTOR[level-1]."""
    _check(img, level)
    m = img.mean()
    return np.clip(m + CONTRAST_FACTOR[level - 1] * (img - m), 0, 1)


def saturation_change(img: np.ndarray, level: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Colour desaturation: blend with the luma (Rec. 601) by SATURATION_FACTOR[level-1]."""
    _check(img, level)
    luma = (img @ np.array([0.299, 0.587, 0.114]))[..., None]
    return np.clip(luma + SATURATION_FACTOR[level - 1] * (img - luma), 0, 1)


DISTORTIONS: dict[str, Callable[..., np.ndarray]] = {
    "gaussian_blur": gaussian_blur,
    "gaussian_noise": gaussian_noise,
    "jpeg": jpeg,
    "contrast": contrast_change,
    "saturation": saturation_change,
}


def distort(img: np.ndarray, kind: str, level: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Apply the distortion ``kind`` (a key of :data:`DISTORTIONS`) at ``level``."""
    if kind not in DISTORTIONS:
        raise ValueError(f"unknown distortion {kind!r}; valid: {sorted(DISTORTIONS)}")
    return DISTORTIONS[kind](img, level, rng)


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
