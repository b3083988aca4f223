"""The bundled offline full-reference set: (reference, distorted, proxy score) from scikit-image's photographs.

The same crops and distortions as the no-reference ``bundled-iqa`` set
(:mod:`robustbook.data.bundled`, :mod:`robustbook.data.distortions`: 5 distortions × 5 levels), but
each row also names its pristine reference image, as KADID-10k's manifest does. Used by the BiRQA
chapter's offline profiles.

**Labels are proxies, not opinions.** Nobody rated these images. The proxy score of a distorted
crop is ``100 × SSIM(d, r) × exp(−ΔE₀₀/20)``: SSIM on RGB (Wang et al. 2004, Gaussian window
σ = 1.5) times a penalty for the mean CIEDE2000 colour difference (Sharma et al. 2005, scikit-image),
clipped at 0. The book's choice: SSIM alone would be one of BiRQA's own input features, and the colour
term lets colour distortions count. A model that matches these labels matches a formula, which
tracks but is not perceived quality.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from robustbook.atomic import atomic_dir, file_lock
from robustbook.data.bundled import PHOTOS, _skimage_version, proxy_score, reference_crops
from robustbook.data.distortions import DISTORTIONS, LEVELS, distort, to_uint8
from robustbook.data.manifest import DatasetMeta, Sample, read_dataset, split_by_reference, write_dataset
from robustbook.data.root import data_root

__all__ = ["FR_PROXY_NOTE", "fr_proxy_score", "bundled_fr_iqa"]

FR_PROXY_NOTE = ("Scores are proxies for human opinion: 100 x SSIM(distorted, reference) x exp(-mean CIEDE2000 / 20), "
                 "computed, not rated by people.")


def fr_proxy_score(distorted: np.ndarray, reference: np.ndarray) -> float:
    """The full-reference proxy score in [0, 100] (see the module docstring); RGB floats in [0, 1]."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    de = float(np.mean(deltaE_ciede2000(rgb2lab(reference), rgb2lab(distorted))))
    return float(proxy_score(distorted, reference) * np.exp(-de / 20.0))


def bundled_fr_iqa(crop: int = 64, per_photo: int = 6, seed: int = 0, root: str | Path | None = None,
                   force: bool = False) -> Path:
    """Build (once) and return the folder of the bundled full-reference set (split 6:2:2 by reference crop)."""
    folder = data_root(root) / f"bundled-fr-iqa-c{crop}-n{per_photo}-s{seed}"
    if folder.is_dir() and not force:
        read_dataset(folder, check_files=False)
        return folder
    with file_lock(folder):
        if folder.is_dir() and not force:
            read_dataset(folder, check_files=False)
            return folder
        return _build(folder, crop, per_photo, seed)


def _build(folder: Path, crop: int, per_photo: int, seed: int) -> Path:
    crops = reference_crops(crop, per_photo, seed)
    ref_ids = [f"{name}_{i:02d}" for name, i, _ in crops]
    splits = split_by_reference(ref_ids, (0.6, 0.2, 0.2), seed=seed)
    rng = np.random.default_rng(seed + 1)
    with atomic_dir(folder) as tmp:
        (tmp / "images").mkdir()
        samples = []
        for (_name, _i, ref), ref_id in zip(crops, ref_ids, strict=False):
            ref_q = to_uint8(ref)
            ref_rel = f"images/{ref_id}_reference.png"
            Image.fromarray(ref_q).save(tmp / ref_rel)
            for kind in DISTORTIONS:
                for lvl in LEVELS:
                    q = to_uint8(distort(ref, kind, lvl, rng))
                    rel = f"images/{ref_id}_{kind}_{lvl}.png"
                    Image.fromarray(q).save(tmp / rel)
                    score = fr_proxy_score(q / 255.0, ref_q / 255.0)
                    samples.append(Sample(image=rel, reference=ref_rel, score=round(score, 4), ref_id=ref_id,
                                          split=splits[ref_id], distortion=kind, level=lvl))
        meta = DatasetMeta(name="bundled-fr-iqa", task="fr-iqa", score_name="proxy MOS (SSIM x colour penalty)",
                           score_range=(0.0, 100.0), higher_is_better=True,
                           source="photographs bundled with scikit-image " + _skimage_version(), notes=FR_PROXY_NOTE,
                           extra={"crop": crop, "per_photo": per_photo, "seed": seed, "photos": list(PHOTOS)})
        write_dataset(tmp, samples, meta)
    return folder
