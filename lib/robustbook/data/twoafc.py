"""Two-alternative forced choice (2AFC) triplets: BAPPS (Zhang et al., CVPR 2018), from ``data_scripts/bapps.py``.

A triplet is a reference ``ref``, two distorted versions ``p0`` and ``p1`` and ``judge`` = the
fraction of people who found ``p1`` closer to the reference. For a quality model (higher =
better) the 2AFC score of a triplet is ``judge`` when it scores ``p1`` higher and ``1 − judge``
when it scores ``p0`` higher (a tie counts half): LPIPS's protocol, reported as "accuracy" by
source 002 (Tables 7 and 9).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from robustbook.data.manifest import ManifestError, read_dataset
from robustbook.data.tensors import _load_image

__all__ = ["load_2afc", "twoafc_score"]


def load_2afc(folder: str | Path, split: str = "test", *, size: int | None = None, limit: int | None = None,
              seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ref, p0, p1, judge)`` of a split of a prepared 2AFC set; ``limit`` keeps a seeded random subset."""
    folder = Path(folder)
    _, meta = read_dataset(folder, check_files=False)
    name = meta.extra.get("triplets_file")
    if not name or not (folder / name).is_file():
        raise ManifestError(f"{folder} is not a prepared 2AFC set (no triplets file); prepare it with "
                            f"data_scripts/bapps.py")
    with (folder / name).open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == split]
    if not rows:
        raise ValueError(f"{folder / name} has no triplet in split {split!r}")
    if limit is not None and limit < len(rows):
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=limit, replace=False))
        rows = [rows[int(i)] for i in keep]
    load = [[_load_image(folder / r[k], size) for r in rows] for k in ("reference", "p0", "p1")]
    judge = torch.tensor([float(r["judge"]) for r in rows], dtype=torch.float32)
    return torch.stack(load[0]), torch.stack(load[1]), torch.stack(load[2]), judge


def twoafc_score(q0: torch.Tensor, q1: torch.Tensor, judge: torch.Tensor) -> float:
    """Mean 2AFC score of quality predictions ``q0`` (of ``p0``) and ``q1`` (of ``p1``), higher = better."""
    if not (q0.shape == q1.shape == judge.shape):
        raise ValueError(f"q0, q1 and judge must have one shape, got {tuple(q0.shape)}, {tuple(q1.shape)}, "
                         f"{tuple(judge.shape)}")
    prefers_p1 = (q1 > q0).float() + 0.5 * (q1 == q0).float()
    return float((prefers_p1 * judge + (1 - prefers_p1) * (1 - judge)).mean())
