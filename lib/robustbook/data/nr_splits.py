"""The no-reference IQA train/test tensors the RobustBlock and arena chapters share."""
from __future__ import annotations

from typing import Any

from robustbook.data.registry import prepare
from robustbook.data.tensors import load_split


def nr_iqa_splits(data_source: str, crop: int, per_photo: int, n_train: int, n_test: int,
                  seed: int) -> dict[str, Any]:
    """Train and test tensors (scores in [0, 1], 1 = best) and a sentence saying what they are.

    ``data_source`` "bundled": the bundled offline set (proxy labels), split by crop; otherwise
    KonIQ-10k resized to ``crop`` px. ``n_train``/``n_test`` 0 = all.
    """
    if data_source == "bundled":
        folder = prepare("bundled-iqa", crop=crop, per_photo=per_photo, seed=seed, split_by="crop")
        size = None
        note = ("bundled-iqa: crops of the photographs shipped with scikit-image under 5 synthetic distortions × 5 "
                "levels, with **proxy** labels (100 × SSIM), not human opinion scores")
    else:
        folder = prepare("koniq10k")
        size = crop
        note = f"KonIQ-10k (Hosu et al. 2020), official MOS, images resized to {crop} px"
    xtr, ytr, _ = load_split(folder, "train", size=size, limit=n_train or None, seed=seed)
    xte, yte, _ = load_split(folder, "test", size=size, limit=n_test or None, seed=seed)
    return {"train": (xtr, ytr), "test": (xte, yte), "note": note}
