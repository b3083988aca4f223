"""Unit tests of robustbook.attacks.noise and robustbook.data.classification (introduced in chapter 3)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from robustbook.attacks import GaussianAugment, GaussianNoise, gaussian_noise
from robustbook.data.classification import (
    ChecksumError,
    class_names,
    load_classification,
    verify_md5,
    write_classification,
)
from robustbook.data.download import DownloadError
from robustbook.data.manifest import ManifestError, read_dataset
from robustbook.metrics import robust_accuracy

# ------------------------------------------------------------------ Gaussian noise

def test_gaussian_noise_statistics_and_range() -> None:
    x = torch.full((4000, 1, 4, 4), 0.5)
    noisy = gaussian_noise(x, 25 / 255, generator=torch.Generator().manual_seed(0))
    d = noisy - x
    assert noisy.min() >= 0 and noisy.max() <= 1 and noisy.shape == x.shape and not noisy.requires_grad
    assert abs(float(d.mean())) < 2e-3 and float(d.std()) == pytest.approx(25 / 255, rel=0.02)
    clipped = gaussian_noise(torch.ones(1000, 3), 0.5, generator=torch.Generator().manual_seed(1))
    assert clipped.max() == 1.0 and clipped.min() >= 0
    assert torch.equal(gaussian_noise(x, 0), x)


def test_gaussian_noise_is_reproducible_with_a_generator() -> None:
    x = torch.rand(8, 3, 5, 5)
    a = gaussian_noise(x, 0.1, generator=torch.Generator().manual_seed(3))
    b = GaussianNoise(0.1, torch.Generator().manual_seed(3))(None, x, None)
    assert torch.equal(a, b)
    assert not torch.equal(a, gaussian_noise(x, 0.1, generator=torch.Generator().manual_seed(4)))


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.1", True])
def test_gaussian_noise_rejects_bad_sigma(bad) -> None:
    with pytest.raises(ValueError, match="sigma"):
        gaussian_noise(torch.rand(2, 2), bad)


def test_noise_goes_through_robust_accuracy() -> None:
    """A constant classifier ignores noise; the report counts it like any attack."""
    class Const(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.stack([torch.ones(len(x)), torch.zeros(len(x))], 1) + self.w

    x, y = torch.rand(10, 1, 3, 3), torch.tensor([0] * 7 + [1] * 3)
    rep = robust_accuracy(Const(), x, y, {"noise": GaussianNoise(0.3, torch.Generator().manual_seed(0))})
    assert rep.clean_accuracy == pytest.approx(0.7) and rep.robust_accuracy == pytest.approx(0.7)
    assert rep.ok and 0 <= rep.min_pixel and rep.max_pixel <= 1


def test_gaussian_augment_probability_and_sigma_set() -> None:
    x = torch.full((3000, 1, 6, 6), 0.5)
    aug = GaussianAugment([0.05, 0.2], p=0.5, generator=torch.Generator().manual_seed(0))
    out = aug(None, x, None)
    std = (out - x).flatten(1).std(dim=1)
    clean = std == 0
    assert 0.45 < float(clean.float().mean()) < 0.55                  # about half the images untouched
    noisy = std[~clean]
    small, large = noisy[noisy < 0.12], noisy[noisy >= 0.12]
    assert len(small) + len(large) == len(noisy) and abs(len(small) - len(large)) < 0.15 * len(noisy)
    assert float(small.mean()) == pytest.approx(0.05, rel=0.1) and float(large.mean()) == pytest.approx(0.2, rel=0.1)
    assert torch.equal(GaussianAugment([0.1], p=0.0)(None, x, None), x)
    assert (GaussianAugment([0.1], p=1.0, generator=torch.Generator().manual_seed(1))(None, x, None) != x).any(1).all()
    with pytest.raises(ValueError, match="probability"):
        GaussianAugment([0.1], p=1.5)
    with pytest.raises(ValueError, match="at least one"):
        GaussianAugment([])


def test_gaussian_augment_as_fit_attack() -> None:
    """fit() accepts the augmentation as its inner 'attack' and trains."""
    from torch.utils.data import TensorDataset

    from robustbook.train import fit, make_loader

    torch.manual_seed(0)
    x = torch.rand(64, 1, 4, 4)
    y = (x.mean((1, 2, 3)) > 0.5).long()
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    hist = fit(model, make_loader(TensorDataset(x, y), 16, shuffle=True, seed=0), loss_fn=nn.CrossEntropyLoss(),
               epochs=2, optimizer=lambda p: torch.optim.SGD(p, lr=0.1), seed=0, progress=False,
               attack=GaussianAugment([0.1], p=0.5, generator=torch.Generator().manual_seed(0)))
    assert len(hist.epochs) == 2 and np.isfinite(hist.epochs[-1]["train_loss"])


# ------------------------------------------------------------------ classification sets

def _items(n: int, channels: int, split: str = "train"):
    rng = np.random.default_rng(0)
    for i in range(n):
        shape = (5, 6) if channels == 1 else (5, 6, 3)
        yield split, f"{split}-{i}", i % 3, rng.integers(0, 256, shape, dtype=np.uint8)


def test_write_then_load_round_trip(tmp_path: Path) -> None:
    items = list(_items(6, 3)) + list(_items(4, 3, "test"))
    write_classification(tmp_path, items, name="toy", classes=["a", "b", "c"], channels=3, source="test")
    rows, meta = read_dataset(tmp_path)
    assert meta.task == "classification" and meta.score_range == (0.0, 2.0) and meta.extra["channels"] == 3
    x, y = load_classification(tmp_path, "train")
    assert x.shape == (6, 3, 5, 6) and y.dtype == torch.int64 and y.tolist() == [0, 1, 2, 0, 1, 2]
    np.testing.assert_array_equal((x[2] * 255).round().numpy().astype(np.uint8).transpose(1, 2, 0), items[2][3])
    xs, _ = load_classification(tmp_path, "test", size=8)
    assert xs.shape == (4, 3, 8, 8)
    sub_x, sub_y = load_classification(tmp_path, "train", limit=3, seed=1)
    assert sub_x.shape[0] == 3 and torch.equal(load_classification(tmp_path, "train", limit=3, seed=1)[1], sub_y)
    assert class_names(tmp_path) == ["a", "b", "c"]
    grey, _ = load_classification(tmp_path, "train", channels=1)
    assert grey.shape == (6, 1, 5, 6)


def test_write_classification_rejects_bad_items(tmp_path: Path) -> None:
    img = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match="appears twice"):
        write_classification(tmp_path / "a", [("train", "x", 0, img), ("test", "x", 1, img)], name="t",
                             classes=["a", "b"], channels=1, source="s")
    with pytest.raises(ValueError, match="outside 0..1"):
        write_classification(tmp_path / "b", [("train", "x", 2, img)], name="t", classes=["a", "b"], channels=1,
                             source="s")
    with pytest.raises(ValueError, match="plain"):
        write_classification(tmp_path / "c", [("train", "../x", 0, img)], name="t", classes=["a", "b"],
                             channels=1, source="s")
    with pytest.raises(ValueError, match="uint8"):
        write_classification(tmp_path / "d", [("train", "x", 0, img.astype(np.float32))], name="t",
                             classes=["a", "b"], channels=1, source="s")


def test_load_classification_refuses_iqa_sets_and_unknown_names(tmp_path: Path) -> None:
    from robustbook.data.bundled import bundled_iqa

    folder = bundled_iqa(root=tmp_path, crop=16, per_photo=1, seed=0)
    with pytest.raises(ManifestError, match="not a classification"):
        load_classification(folder, "train")
    with pytest.raises(ValueError, match="neither a registered data set"):
        load_classification("no-such-set", "train")
    with pytest.raises(ValueError, match="split"):
        load_classification(folder, "training")


def test_verify_md5(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"robustbook")
    import hashlib

    verify_md5(p, hashlib.md5(b"robustbook").hexdigest().upper())
    with pytest.raises(ChecksumError, match="official file has 00") as info:
        verify_md5(p, "00" * 16)
    assert isinstance(info.value, DownloadError)
