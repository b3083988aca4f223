"""Offline image sets of the neural-ODE and CIFS chapters: procedural10 (scikit-image photographs) and digits."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from robustbook.data.digits import digits
from robustbook.data.procedural import CLASSES, TRAIN_FRACTION, procedural10


@pytest.fixture(scope="module")
def p10():
    return procedural10(6, 4, size=32, seed=0, return_meta=True)


def test_procedural10_shapes_ranges_and_balance(p10) -> None:
    x_train, y_train, x_test, y_test, meta = p10
    assert x_train.shape == (60, 3, 32, 32) and x_test.shape == (40, 3, 32, 32)
    assert x_train.dtype == x_test.dtype == torch.float32
    assert y_train.dtype == y_test.dtype == torch.int64
    for x in (x_train, x_test):
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0 and float(x.std()) > 0.05
    assert torch.bincount(y_train, minlength=10).tolist() == [6] * 10
    assert torch.bincount(y_test, minlength=10).tolist() == [4] * 10
    assert y_train[:10].tolist() == list(range(10))  # interleaved: every prefix is balanced
    assert len(CLASSES) == 10 == len(meta.classes)
    # classes differ: per-class mean colours are not all alike
    means = torch.stack([x_train[y_train == k].mean((0, 2, 3)) for k in range(10)])
    assert torch.cdist(means, means).fill_diagonal_(1.0).min() > 1e-3


def test_procedural10_is_deterministic_per_seed(p10) -> None:
    again = procedural10(6, 4, size=32, seed=0)
    for a, b in zip(p10[:4], again, strict=True):
        assert torch.equal(a, b)
    other = procedural10(6, 4, size=32, seed=1)
    assert not torch.equal(p10[0], other[0]) and not torch.equal(p10[2], other[2])
    # more samples only append to each class; the test set does not depend on n_train
    bigger = procedural10(8, 4, size=32, seed=0)
    for k in range(10):
        assert torch.equal(bigger[0][bigger[1] == k][:6], p10[0][p10[1] == k])
    assert torch.equal(bigger[2], p10[2])


def test_procedural10_train_and_test_come_from_disjoint_regions(p10) -> None:
    x_train, _, x_test, _, meta = p10
    for k in range(10):
        split, width = meta.split_columns[k], meta.widths[k]
        assert split == round(TRAIN_FRACTION * width)
        tr = meta.boxes_train[meta.boxes_train[:, 0] == k]
        te = meta.boxes_test[meta.boxes_test[:, 0] == k]
        assert np.all(tr[:, 1] >= 0) and np.all(tr[:, 1] + tr[:, 3] <= split)
        assert np.all(te[:, 1] >= split) and np.all(te[:, 1] + te[:, 3] <= width)
        assert np.all(tr[:, 3] >= 32) and np.all(te[:, 3] >= 32)
    # no test image is a copy of a training image
    dist = torch.cdist(x_test.flatten(1), x_train.flatten(1))
    assert float(dist.min()) > 1.0


def test_procedural10_sizes_and_validation() -> None:
    x_train, y_train, x_test, y_test = procedural10(1, 1, size=16, seed=3)
    assert x_train.shape == (10, 3, 16, 16) and x_test.shape == (10, 3, 16, 16)
    assert procedural10(0, 1)[0].shape == (0, 3, 32, 32)
    with pytest.raises(ValueError, match="size"):
        procedural10(1, 1, size=8)
    with pytest.raises(ValueError, match="n_test_per_class"):
        procedural10(1, 0)
    with pytest.raises(ValueError, match="seed"):
        procedural10(1, 1, seed=-1)


def test_digits_shapes_labels_and_stratified_split() -> None:
    x_train, y_train, x_test, y_test = digits()
    assert x_train.shape == (1347, 1, 28, 28) and x_test.shape == (450, 1, 28, 28)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert float(x_train.min()) == 0.0 and float(x_train.max()) <= 1.0 and float(x_train.max()) > 0.9
    assert set(y_train.tolist()) == set(range(10)) == set(y_test.tolist())
    from sklearn.datasets import load_digits
    counts = np.bincount(load_digits().target, minlength=10)
    test_counts = torch.bincount(y_test, minlength=10).numpy()
    assert np.all(np.abs(test_counts - 0.25 * counts) <= 1)  # stratified
    again = digits()
    assert all(torch.equal(a, b) for a, b in zip((x_train, y_train, x_test, y_test), again, strict=True))
    assert not torch.equal(digits(seed=1)[1], y_train)


def test_digits_keeps_the_original_pixels_at_size_8() -> None:
    from sklearn.datasets import load_digits
    x_train, y_train, x_test, y_test = digits(size=8, test_fraction=0.5)
    assert x_train.shape[1:] == (1, 8, 8) and len(x_train) + len(x_test) == 1797
    originals = {tuple((img / 16.0).astype(np.float32).ravel()) for img in load_digits().images}
    assert all(tuple(x.ravel().tolist()) in originals for x in x_test[:20].numpy())
    with pytest.raises(ValueError, match="test_fraction"):
        digits(test_fraction=1.5)
    with pytest.raises(ValueError, match="size"):
        digits(size=4)


def test_mnist5k_is_real_mnist_split_by_class():
    from robustbook.data import mnist5k

    xtr, ytr, xte, yte = mnist5k(seed=0)
    assert xtr.shape == (4000, 1, 28, 28) and xte.shape == (1000, 1, 28, 28)
    assert xtr.dtype == torch.float32 and 0.0 <= float(xtr.min()) and float(xtr.max()) <= 1.0
    assert torch.bincount(yte).tolist() == [100] * 10
    assert float(xtr.max()) == 1.0 and float((xtr == 0).float().mean()) > 0.5  # ink on a black background
    again = mnist5k(seed=0)
    assert torch.equal(again[2], xte)
    assert not torch.equal(mnist5k(seed=1)[2], xte)
    with pytest.raises(ValueError, match="test_fraction"):
        mnist5k(test_fraction=1.5)
