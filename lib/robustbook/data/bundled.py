"""The bundled offline tier: real photographs that ship inside scikit-image's wheel.

No download is needed: :data:`PHOTOS` are the natural photographs that
``skimage.data`` loads from its installed package (the ones that need a network
fetch are excluded). From them the book builds

* **reference crops** — square patches at random (seeded) positions of each
  photograph, after resizing it so that its shorter side is four crops long;
* **bundled-iqa** — a no-reference quality set: every crop, pristine and under
  the five distortions of :mod:`robustbook.data.distortions` at five levels.

Its labels are **proxies for human opinion scores**, not opinions: the score of
an image is ``100 × SSIM(distorted, pristine)`` (Wang et al. 2004; scikit-image's
``structural_similarity`` on RGB, Gaussian window σ = 1.5), a full-reference
fidelity measure that a no-reference model must learn to predict without the
reference. Correlation with these labels says how well a model predicts SSIM,
which tracks but is not perceived quality. The book says so wherever it uses them.

Train, validation and test never share a reference image (a pristine crop); crops
never overlap. With ``split_by="photo"`` they never share a photograph either.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from robustbook.atomic import atomic_dir, file_lock
from robustbook.data.distortions import DISTORTIONS, LEVELS, distort, to_uint8
from robustbook.data.manifest import DatasetMeta, Sample, read_dataset, split_by_reference, write_dataset
from robustbook.data.root import data_root

#: natural photographs inside scikit-image's wheel (greyscale ones are replicated to RGB)
PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "coins", "moon", "clock", "page", "text",
          "hubble_deep_field", "immunohistochemistry", "retina", "brick", "grass", "gravel", "cell",
          "stereo_motorcycle")

PROXY_NOTE = ("Scores are proxies for human opinion: 100 x SSIM(distorted, pristine) on RGB. "
              "They are computed, not rated by people.")


def load_photo(name: str) -> np.ndarray:
    """A bundled photograph as float RGB ``(H, W, 3)`` in [0, 1]."""
    import skimage.data

    if name not in PHOTOS:
        raise ValueError(f"unknown bundled photograph {name!r}; valid: {list(PHOTOS)}")
    img = getattr(skimage.data, name)()
    if name == "stereo_motorcycle":
        img = img[0]  # the left view
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[..., :3]
    return img.astype(np.float64) / (255.0 if img.dtype != np.float64 else 1.0)


def reference_crops(crop: int, per_photo: int, seed: int, photos: tuple[str, ...] = PHOTOS
                    ) -> list[tuple[str, int, np.ndarray]]:
    """``per_photo`` non-overlapping square crops of side ``crop`` from each photograph.

    Each photograph is resized so that its shorter side is ``4 * crop``, cut into a
    grid of ``crop``-sized cells (at least 4 x 4), and ``per_photo`` cells are drawn
    without replacement: two crops never share a pixel, so each is a distinct
    reference image.
    """
    if crop < 16:
        raise ValueError(f"crop must be at least 16 pixels, got {crop}")
    if not 1 <= per_photo <= 16:
        raise ValueError(f"per_photo must be in 1..16 (a 4 x 4 grid at least), got {per_photo}")
    rng = np.random.default_rng(seed)
    out = []
    for name in photos:
        img = load_photo(name)
        h, w = img.shape[:2]
        scale = 4 * crop / min(h, w)
        size = (max(4 * crop, round(w * scale)), max(4 * crop, round(h * scale)))
        img = np.asarray(Image.fromarray(to_uint8(img)).resize(size, Image.BICUBIC), dtype=np.float64) / 255.0
        rows, cols = img.shape[0] // crop, img.shape[1] // crop
        cells = rng.choice(rows * cols, size=per_photo, replace=False)
        for i, cell in enumerate(sorted(cells)):
            r, c = divmod(int(cell), cols)
            out.append((name, i, img[r * crop:(r + 1) * crop, c * crop:(c + 1) * crop]))
    return out


def proxy_score(distorted: np.ndarray, pristine: np.ndarray) -> float:
    """The proxy opinion score: ``100 × SSIM`` on RGB, clipped at 0 (see the module docstring).

    SSIM can fall below 0 for anti-correlated images; the set's declared score range is [0, 100].
    """
    from skimage.metrics import structural_similarity

    return 100.0 * max(0.0, float(structural_similarity(pristine, distorted, channel_axis=-1, data_range=1.0,
                                               gaussian_weights=True, sigma=1.5, use_sample_covariance=False)))


def bundled_iqa(crop: int = 64, per_photo: int = 6, seed: int = 0, root: str | Path | None = None,
                force: bool = False, split_by: str = "crop") -> Path:
    """Build (once) and return the folder of the bundled no-reference IQA set.

    ``split_by="crop"`` (default) splits 6:2:2 by reference image, i.e. by pristine
    crop, as KADID-10k's reference-based splits do: test crops are other regions of
    photographs seen in training. ``split_by="photo"`` keeps whole photographs apart,
    a much harder generalisation test for 18 photographs (see chapter 0's exercises).
    The folder name carries the parameters (``bundled-iqa-c64-n6-s0-crop``); an
    existing complete folder is reused unless ``force``. Built atomically: an
    interrupted build leaves nothing behind.
    """
    if split_by not in ("crop", "photo"):
        raise ValueError(f"split_by must be 'crop' or 'photo', got {split_by!r}")
    folder = data_root(root) / f"bundled-iqa-c{crop}-n{per_photo}-s{seed}-{split_by}"
    if folder.is_dir() and not force:
        read_dataset(folder, check_files=False)  # raises if corrupt
        return folder
    with file_lock(folder):  # two chapters preparing the same set at once: one builds, the other waits
        if folder.is_dir() and not force:
            read_dataset(folder, check_files=False)
            return folder
        return _build_bundled_iqa(folder, crop, per_photo, seed, split_by)


def _build_bundled_iqa(folder: Path, crop: int, per_photo: int, seed: int, split_by: str) -> Path:
    crops = reference_crops(crop, per_photo, seed)
    ref_ids = [f"{name}_{i:02d}" if split_by == "crop" else name for name, i, _ in crops]
    splits = split_by_reference(ref_ids, (0.6, 0.2, 0.2), seed=seed)
    rng = np.random.default_rng(seed + 1)
    with atomic_dir(folder) as tmp:
        samples = []
        for (name, i, ref), ref_id in zip(crops, ref_ids, strict=True):
            stem = f"{name}_{i:02d}"
            (tmp / "images").mkdir(exist_ok=True)
            variants = [("", 0, ref)] + [(kind, lvl, distort(ref, kind, lvl, rng))
                                         for kind in DISTORTIONS for lvl in LEVELS]
            for kind, lvl, img in variants:
                rel = f"images/{stem}_{kind or 'pristine'}_{lvl}.png"
                q = to_uint8(img)
                Image.fromarray(q).save(tmp / rel)
                score = proxy_score(q / 255.0, to_uint8(ref) / 255.0)
                samples.append(Sample(image=rel, score=round(score, 4), ref_id=ref_id, split=splits[ref_id],
                                      distortion=kind, level=lvl))
        meta = DatasetMeta(name="bundled-iqa", task="nr-iqa", score_name="proxy MOS (100 x SSIM)",
                           score_range=(0.0, 100.0), higher_is_better=True,
                           source="photographs bundled with scikit-image " + _skimage_version(),
                           notes=PROXY_NOTE, extra={"crop": crop, "per_photo": per_photo, "seed": seed,
                                                    "split_by": split_by, "photos": list(PHOTOS)})
        write_dataset(tmp, samples, meta)
    return folder


def _skimage_version() -> str:
    import skimage

    return skimage.__version__
