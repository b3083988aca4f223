"""``digits``: scikit-learn's bundled handwritten digits as a small offline MNIST stand-in.

``sklearn.datasets.load_digits`` ships 1,797 greyscale 8×8 digits (values
0..16, 10 classes, UCI "Optical Recognition of Handwritten Digits") inside
the wheel, so no download is needed. :func:`digits` scales them to [0, 1],
upsamples them bilinearly to ``size × size`` (28 by default, MNIST's side) and
splits them stratified by class with a seeded shuffle. Used by the CPU
profiles of the neural-ODE (source 003, ch. 3) and CIFS (ch. 4) chapters in
place of MNIST; it is far smaller (about 1,350 training images) and blurrier.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["digits"]


def digits(size: int = 28, seed: int = 0, test_fraction: float = 0.25
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)``: float32 ``(N, 1, size, size)`` in [0, 1] and int64 labels 0..9.

    Args:
        size: output side in pixels (≥ 8; 8 keeps the original resolution).
        seed: seeds the stratified split (``train_test_split(random_state=seed)``).
        test_fraction: fraction of each class held out for testing, in (0, 1).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not (isinstance(test_fraction, float) and 0.0 < test_fraction < 1.0):
        raise ValueError(f"test_fraction must be a float in (0, 1), got {test_fraction!r}")
    data = load_digits()
    x = torch.from_numpy(data.images.astype(np.float32) / 16.0).unsqueeze(1)     # (N, 1, 8, 8) in [0, 1]
    if size != 8:
        x = F.interpolate(x, size=(int(size), int(size)), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    y = torch.from_numpy(data.target.astype(np.int64))
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=test_fraction, random_state=int(seed),
                                           stratify=data.target)
    idx_train, idx_test = torch.from_numpy(idx_train), torch.from_numpy(idx_test)
    return x[idx_train].contiguous(), y[idx_train], x[idx_test].contiguous(), y[idx_test]
