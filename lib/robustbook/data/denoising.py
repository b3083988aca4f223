"""Offline data for the denoising chapter: clean crops of scikit-image's photographs and noise models.

* :func:`photo_split` — which bundled photographs train and which test (disjoint by photograph,
  for grayscale and for colour; colour uses only the truly colour photographs).
* :func:`test_crops` — non-overlapping test crops ``(N, C, s, s)`` of the test photographs.
* :func:`train_patches` — random training patches (flips and rotations) of the training
  photographs, as DnCNN is trained on patches (Zhang et al. 2017: 50 × 50 in the thesis).
* :class:`NoisyPairs` — ``(y, x)`` pairs with fresh Gaussian noise of level σ ~ U(0, γ) at
  every access: the γ-denoiser's training set ``S^γ`` of the thesis (§2.2).
* Test noise of §2.3.2: :func:`gaussian`, :func:`uniform` (U(−√3γ̂, √3γ̂): the same
  energy density γ̂²), and the *unseen* noise models that stand in for real sensor noise
  offline (Table 2.4's PolyU, CC and SIDD need downloads): :func:`poisson_gaussian`
  (signal-dependent shot noise plus read noise), :func:`demosaic_noise` (white noise on a
  Bayer mosaic, then bilinear demosaicing: spatially and cross-channel correlated; for
  grayscale a 3 × 3 correlated field) and :func:`jpeg_noise` (Gaussian noise, then JPEG
  compression). Every noisy image is clipped to [0, 1] (a sensor saturates).

Introduced in the denoising chapter (source 003, chapter 2).
"""
from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from robustbook.data.bundled import PHOTOS, load_photo

__all__ = ["COLOUR_PHOTOS", "TEST_PHOTOS", "photo_split", "test_crops", "train_patches", "patches_from_images",
           "paired_patches", "NoisyPairs",
           "gaussian", "uniform", "poisson_gaussian", "demosaic_noise", "jpeg_noise", "UNSEEN_NOISE",
           "unseen_noise"]

#: photographs of scikit-image that are truly in colour (the others are grayscale or replicated)
COLOUR_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle", "immunohistochemistry",
                 "retina", "hubble_deep_field")
#: test photographs (never used for training): cameraman is also in Set12
TEST_PHOTOS = ("camera", "coffee", "stereo_motorcycle", "moon")


def photo_split(channels: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(train, test)`` photograph names for grayscale (1) or colour (3) denoisers; disjoint."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    pool = PHOTOS if channels == 1 else COLOUR_PHOTOS
    train = tuple(p for p in pool if p not in TEST_PHOTOS)
    test = tuple(p for p in pool if p in TEST_PHOTOS)
    return train, test


def _photo(name: str, channels: int, scale: float) -> np.ndarray:
    """A photograph as float (C, H, W) in [0, 1], luminance for grayscale, resized by ``scale``."""
    img = load_photo(name)
    if scale != 1.0:
        h, w = img.shape[:2]
        pil = Image.fromarray(np.round(img * 255).astype(np.uint8))
        img = np.asarray(pil.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BICUBIC),
                         dtype=np.float64) / 255.0
    if channels == 1:
        img = (img @ np.array([0.299, 0.587, 0.114]))[..., None]   # ITU-R BT.601 luma
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def test_crops(channels: int, size: int, per_photo: int, seed: int, scale: float = 0.5) -> torch.Tensor:
    """Non-overlapping ``size × size`` crops of the test photographs, float32 ``(N, C, size, size)``.

    Photographs are first resized by ``scale`` (0.5 by default, so a crop shows a scene, not a
    texture close-up); ``per_photo`` grid cells are drawn without replacement (seeded).
    """
    if size < 8 or per_photo < 1:
        raise ValueError(f"size must be >= 8 and per_photo >= 1, got {size}, {per_photo}")
    rng = np.random.default_rng(seed)
    out = []
    for name in photo_split(channels)[1]:
        img = _photo(name, channels, scale)
        rows, cols = img.shape[1] // size, img.shape[2] // size
        if rows * cols < per_photo:
            raise ValueError(f"{name} at scale {scale} holds only {rows * cols} crops of {size} px; "
                             f"asked for {per_photo}")
        for cell in sorted(rng.choice(rows * cols, size=per_photo, replace=False)):
            r, c = divmod(int(cell), cols)
            out.append(img[:, r * size:(r + 1) * size, c * size:(c + 1) * size])
    return torch.tensor(np.stack(out), dtype=torch.float32)


def train_patches(channels: int, patch: int, n: int, seed: int,
                  scales: tuple[float, ...] = (0.5, 0.4, 0.3)) -> torch.Tensor:
    """``n`` random ``patch × patch`` crops of the training photographs, float32 ``(n, C, p, p)``.

    As DnCNN's training data: each photograph at several scales, crops at random positions,
    each flipped/rotated by one of the 8 dihedral transforms. Seeded; no test photograph is used.
    """
    if patch < 8 or n < 1:
        raise ValueError(f"patch must be >= 8 and n >= 1, got {patch}, {n}")
    images = [_photo(p, channels, s) for p in photo_split(channels)[0] for s in scales]
    return patches_from_images(images, patch, n, seed)


def _as_float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)


def patches_from_images(images: Sequence[np.ndarray], patch: int, n: int, seed: int) -> torch.Tensor:
    """``n`` random ``patch × patch`` crops of ``(C, H, W)`` images (float in [0, 1] or uint8), each
    flipped/rotated by one of the 8 dihedral transforms; float32 ``(n, C, p, p)``. Images smaller than
    the patch are skipped. Seeded. Serves the bundled photographs and the real training sets alike."""
    return paired_patches([(im, None) for im in images], patch, n, seed)[0]


def paired_patches(pairs: Sequence[tuple[np.ndarray, np.ndarray | None]], patch: int, n: int,
                   seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Crops at the same place of each ``(a, b)`` pair of same-shape images (e.g. SIDD's noisy and clean
    shots, for Noise2Clean), with the same dihedral transform; ``(A, B)`` float32 ``(n, C, p, p)``
    (``B`` is None when every ``b`` is None). Seeded."""
    if patch < 8 or n < 1:
        raise ValueError(f"patch must be >= 8 and n >= 1, got {patch}, {n}")
    rng = np.random.default_rng(seed)
    pairs = [(a, b) for a, b in pairs if min(a.shape[1:]) >= patch]
    if not pairs:
        raise ValueError(f"no training image is at least {patch} px on each side")
    with_b = pairs[0][1] is not None
    channels = pairs[0][0].shape[0]
    out = [np.empty((n, channels, patch, patch), dtype=np.float32) for _ in range(1 + with_b)]
    for k in range(n):
        a, b = pairs[rng.integers(len(pairs))]
        r = rng.integers(a.shape[1] - patch + 1)
        c = rng.integers(a.shape[2] - patch + 1)
        rot, flip = int(rng.integers(4)), bool(rng.integers(2))
        for j, im in enumerate((a, b)[:1 + with_b]):
            p = np.rot90(_as_float(im[:, r:r + patch, c:c + patch]), k=rot, axes=(1, 2))
            out[j][k] = p[:, :, ::-1] if flip else p
    return torch.from_numpy(out[0]), (torch.from_numpy(out[1]) if with_b else None)


class NoisyPairs(Dataset):
    """``(x + σ·n, x)`` with σ ~ U(0, γ) drawn afresh at every access (the thesis' ``S^γ``).

    The draws come from torch's global generator, which :func:`robustbook.train.fit` seeds,
    so a training run is reproducible.
    """

    def __init__(self, clean: torch.Tensor, gamma: float) -> None:
        if clean.dim() != 4:
            raise ValueError(f"clean must be (N, C, H, W), got {tuple(clean.shape)}")
        if not (isinstance(gamma, (int, float)) and 0 <= gamma <= 1):
            raise ValueError(f"gamma must be a noise level in [0, 1] (e.g. 25/255), got {gamma!r}")
        self.clean, self.gamma = clean, float(gamma)

    def __len__(self) -> int:
        return self.clean.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.clean[i]
        sigma = torch.rand(()) * self.gamma
        return torch.clamp(x + sigma * torch.randn_like(x), 0.0, 1.0), x


def _gen(generator: torch.Generator | None) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(0)


def gaussian(x: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``clip(x + N(0, σ²))``: the Gaussian column of Table 2.1 (σ = γ̂)."""
    return torch.clamp(x + sigma * torch.randn(x.shape, generator=_gen(generator)), 0.0, 1.0)


def uniform(x: torch.Tensor, gamma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``clip(x + U(−√3γ̂, √3γ̂))``: the uniform column of Table 2.1 (variance γ̂²)."""
    a = math.sqrt(3.0) * gamma
    return torch.clamp(x + (2 * torch.rand(x.shape, generator=_gen(generator)) - 1) * a, 0.0, 1.0)


def poisson_gaussian(x: torch.Tensor, photons: float = 60.0, read: float = 4 / 255,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Shot noise ``Poisson(photons·x)/photons`` plus Gaussian read noise: signal-dependent, like a sensor."""
    g = _gen(generator)
    shot = torch.poisson(x.double() * photons, generator=g).float() / photons
    return torch.clamp(shot + read * torch.randn(x.shape, generator=g), 0.0, 1.0)


def _bilinear_demosaic(mosaic: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation of each colour plane of an RGGB mosaic (``mask``: (3, H, W) sampling masks)."""
    k = torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    planes = mosaic[:, None] * mask[None]                                   # (N, 3, H, W)
    num = torch.nn.functional.conv2d(planes, k.expand(3, 1, 3, 3), padding=1, groups=3)
    den = torch.nn.functional.conv2d(mask[None].expand_as(planes), k.expand(3, 1, 3, 3), padding=1, groups=3)
    return num / den


def demosaic_noise(x: torch.Tensor, sigma: float = 12 / 255,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Noise correlated as after a camera pipeline: white noise on a Bayer mosaic, demosaiced.

    Colour (C = 3): an RGGB mosaic of ``x`` gets N(0, σ²) per photosite; both the clean and the
    noisy mosaic are demosaiced bilinearly, and their *difference* (zero-mean, correlated across
    neighbouring pixels and channels) is added to ``x``, so the clean image stays the reference.
    Grayscale: white noise filtered by the same 3 × 3 kernel and rescaled to standard deviation σ.
    """
    g = _gen(generator)
    n, c, h, w = x.shape
    if c == 1:
        k = torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
        k = (k / k.norm())[None, None]
        field = torch.nn.functional.conv2d(torch.randn((n, 1, h + 2, w + 2), generator=g), k)
        return torch.clamp(x + sigma * field, 0.0, 1.0)
    if c != 3:
        raise ValueError(f"demosaic_noise takes 1 or 3 channels, got {c}")
    mask = torch.zeros(3, h, w)
    mask[0, 0::2, 0::2] = 1
    mask[1, 0::2, 1::2] = 1
    mask[1, 1::2, 0::2] = 1
    mask[2, 1::2, 1::2] = 1
    mosaic = (x * mask[None]).sum(1)
    noisy = mosaic + sigma * torch.randn(mosaic.shape, generator=g)
    diff = _bilinear_demosaic(noisy, mask) - _bilinear_demosaic(mosaic, mask)
    return torch.clamp(x + diff, 0.0, 1.0)


def jpeg_noise(x: torch.Tensor, sigma: float = 10 / 255, quality: int = 70,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian noise, then JPEG compression at ``quality`` (Pillow): blocky, correlated residual noise."""
    y = gaussian(x, sigma, generator)
    out = []
    for img in y:
        arr = np.round(img.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        pil = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=int(quality))
        dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())), dtype=np.float32) / 255.0
        out.append(dec[None] if dec.ndim == 2 else dec.transpose(2, 0, 1))
    return torch.tensor(np.stack(out))


#: the offline stand-ins for real noise (Table 2.4), name -> function(x, generator=)
UNSEEN_NOISE = {"poisson-gaussian": poisson_gaussian, "demosaiced": demosaic_noise, "jpeg": jpeg_noise}


def unseen_noise(x: torch.Tensor, kind: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply one of :data:`UNSEEN_NOISE` with its documented default level."""
    if kind not in UNSEEN_NOISE:
        raise ValueError(f"unknown noise {kind!r}; valid: {sorted(UNSEEN_NOISE)}")
    return UNSEEN_NOISE[kind](x, generator=generator)
