"""``procedural10``: a 10-class colour image set cut from the photographs bundled with scikit-image.

An offline stand-in for CIFAR-10/SVHN in the CPU profiles of the neural-ODE
(source 003, ch. 3) and CIFS (ch. 4) chapters. Nothing is downloaded: the
sources are ten of :data:`robustbook.data.bundled.PHOTOS` (see
:data:`CLASSES`), one photograph per class, so a class is "patches of this
photograph" (a texture/scene family), not a semantic category.

How a sample is made (all draws from NumPy's ``default_rng`` seeded by
``(seed, class, split)``, so a set is a deterministic function of its
arguments, and asking for more samples only appends to a class):

1. Each photograph is resized (bicubic) so that its height is ``6·size``
   pixels (``retina`` is first cut to its central 70 % square, which avoids
   the black corners around the fundus).
2. Its columns are split into a **train region**, the left
   :data:`TRAIN_FRACTION` (70 %), and a **test region**, the right 30 %.
   Crops never straddle the boundary, so no test pixel is ever seen in
   training and the test set is not a copy of the training set (adjacent
   regions of one photograph are still alike: this measures generalisation
   within a texture family).
3. A square crop of side ``round(size · s)``, ``s ~ U[1, 1.5]``
   (capped by the region's width), at a uniform position inside the region,
   is resized (bilinear) to ``size × size``, flipped left-right with
   probability 1/2, and colour-jittered: multiplied by a brightness factor
   ``U[0.9, 1.1]`` and per-channel gains ``U[0.95, 1.05]``, then clipped to
   [0, 1].

Images are returned as float32 tensors ``(N, 3, size, size)`` in [0, 1],
labels as int64; samples are interleaved by class (sample ``i`` of class
``k`` at position ``10·i + k``), so every prefix is nearly balanced.
Greyscale photographs (``brick``, ``grass``) are replicated to RGB.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from PIL import Image

from robustbook.data.bundled import PHOTOS, load_photo

__all__ = ["CLASSES", "TRAIN_FRACTION", "Procedural10Meta", "procedural10"]

#: the class sources, class ``k`` = ``CLASSES[k]`` (eight colour photographs and two greyscale textures)
CLASSES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
           "stereo_motorcycle", "brick", "grass")
#: the left fraction of every photograph's columns that train crops come from
TRAIN_FRACTION = 0.7

_SCALE = (1.0, 1.5)
_BRIGHTNESS = (0.9, 1.1)
_GAIN = (0.95, 1.05)
_HEIGHT_FACTOR = 6
assert all(c in PHOTOS for c in CLASSES)


@dataclass(frozen=True)
class Procedural10Meta:
    """Where every sample came from, in the coordinates of the resized photographs.

    ``boxes_*`` are int64 arrays ``(N, 5)`` of ``(class, left, top, side, flipped)``;
    ``split_columns[k]`` is the first column of class ``k``'s test region and
    ``widths[k]`` the resized photograph's width.
    """

    classes: tuple[str, ...]
    split_columns: tuple[int, ...]
    widths: tuple[int, ...]
    boxes_train: np.ndarray
    boxes_test: np.ndarray


@lru_cache(maxsize=32)
def _source(name: str, height: int) -> np.ndarray:
    """The class photograph as uint8 ``(height, W, 3)`` (read-only)."""
    img = load_photo(name)
    if name == "retina":
        h, w = img.shape[:2]
        s = int(0.7 * min(h, w))
        top, left = (h - s) // 2, (w - s) // 2
        img = img[top:top + s, left:left + s]
    h, w = img.shape[:2]
    width = max(1, round(w * height / h))
    u8 = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    out = np.asarray(Image.fromarray(u8).resize((width, height), Image.BICUBIC))
    out.setflags(write=False)
    return out


def _crops(photo: np.ndarray, label: int, n: int, size: int, lo: int, hi: int, rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` jittered crops with columns in ``[lo, hi)``: images ``(n, size, size, 3)`` and boxes ``(n, 5)``."""
    height = photo.shape[0]
    max_side = min(hi - lo, height)
    if max_side < size:
        raise ValueError(f"a region of {hi - lo} x {height} px cannot hold a {size}-px crop")
    images = np.empty((n, size, size, 3), dtype=np.float32)
    boxes = np.empty((n, 5), dtype=np.int64)
    for i in range(n):
        side = min(max_side, round(size * rng.uniform(*_SCALE)))
        left = lo + int(rng.integers(0, hi - lo - side + 1))
        top = int(rng.integers(0, height - side + 1))
        flip = bool(rng.random() < 0.5)
        gain = rng.uniform(*_BRIGHTNESS) * rng.uniform(*_GAIN, size=3)
        patch = Image.fromarray(photo[top:top + side, left:left + side]).resize((size, size), Image.BILINEAR)
        x = np.asarray(patch, dtype=np.float32) / 255.0
        if flip:
            x = x[:, ::-1]
        images[i] = np.clip(x * gain.astype(np.float32), 0.0, 1.0)
        boxes[i] = (label, left, top, side, int(flip))
    return images, boxes


def _interleave(per_class: list[np.ndarray]) -> np.ndarray:
    """Stack ``[class0 (n, ...), class1, ...]`` so that sample ``i`` of class ``k`` lands at ``10·i + k``."""
    return np.stack(per_class, axis=1).reshape(-1, *per_class[0].shape[1:])


def procedural10(n_train_per_class: int, n_test_per_class: int, size: int = 32, seed: int = 0, *,
                 return_meta: bool = False):
    """``(x_train, y_train, x_test, y_test)`` of the procedural 10-class set (module docstring).

    Args:
        n_train_per_class, n_test_per_class: samples per class (≥ 0 and ≥ 1).
        size: image side in pixels (16–128; default 32, as CIFAR-10).
        seed: the set is a deterministic function of ``(n, size, seed)``.
        return_meta: also return a :class:`Procedural10Meta` (where each crop came from).

    Returns:
        float32 images ``(10·n, 3, size, size)`` in [0, 1] and int64 labels in 0..9.
    """
    for name, n, low in (("n_train_per_class", n_train_per_class, 0), ("n_test_per_class", n_test_per_class, 1)):
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < low:
            raise ValueError(f"{name} must be an int >= {low}, got {n!r}")
    if not isinstance(size, (int, np.integer)) or not 16 <= size <= 128:
        raise ValueError(f"size must be an int in [16, 128], got {size!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    height = _HEIGHT_FACTOR * int(size)
    xs: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    bs: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    splits, widths = [], []
    for k, name in enumerate(CLASSES):
        photo = _source(name, height)
        w = photo.shape[1]
        split = int(round(TRAIN_FRACTION * w))
        splits.append(split)
        widths.append(w)
        for s_idx, (split_name, n, lo, hi) in enumerate((("train", n_train_per_class, 0, split),
                                                         ("test", n_test_per_class, split, w))):
            rng = np.random.default_rng((int(seed), k, s_idx))
            imgs, boxes = _crops(photo, k, int(n), int(size), lo, hi, rng)
            xs[split_name].append(imgs)
            bs[split_name].append(boxes)

    def tensors(split_name: str) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        x = _interleave(xs[split_name])
        boxes = _interleave(bs[split_name])
        x_t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        return x_t, torch.from_numpy(boxes[:, 0].copy()), boxes

    x_train, y_train, boxes_train = tensors("train")
    x_test, y_test, boxes_test = tensors("test")
    if not return_meta:
        return x_train, y_train, x_test, y_test
    meta = Procedural10Meta(CLASSES, tuple(splits), tuple(widths), boxes_train, boxes_test)
    return x_train, y_train, x_test, y_test, meta
