"""The CIFS chapter's `full` data path: prepared Fashion-MNIST, CIFAR-10 and SVHN (tiny archives in the official
layouts, prepared by the real data scripts) at `smoke` sizes with ``data=real``."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.data_script_loading import load_script, no_download
from tests.test_data_scripts_classification import make_cifar, make_svhn
from tests.test_data_scripts_fashion_mnist import _write as make_fashion_mnist
from tests.test_real_data_paths import run_real

pytestmark = [pytest.mark.chapter, pytest.mark.xdist_group("real-data")]


def test_cifs_reads_fashion_mnist_cifar10_and_svhn(tmp_path: Path) -> None:
    root = tmp_path / "data"
    archives = root / "archives"
    make_fashion_mnist(archives, n_train=40, n_test=20)
    make_cifar(archives, per_batch=12)
    make_svhn(archives, n_train=60, n_test=20)
    load_script("fashion_mnist").prepare(data_root=root, download_fn=no_download, check_official=False,
                                         expected_counts=None, from_debian=False)
    for name in ("cifar10", "svhn"):
        load_script(name).prepare(data_root=root, download_fn=no_download, check_official=False, expected_counts=None)
    record = run_real("cifs", root, tmp_path / "runs", "data", "real", "datasets", "[fmnist, cifar10, svhn]")
    data = record["metrics"]["data"]
    assert data["fmnist"]["n_train"] == 40 and data["fmnist"]["n_test"] == 20   # the prepared copy, not Debian's
    assert data["cifar10_resnet18"]["n_train"] == 60 and data["svhn_resnet18"]["n_test"] == 20
    assert set(record["metrics"]["eval"]) == {"fmnist", "cifar10_resnet18", "svhn_resnet18"}
    assert "C&W" in record["metrics"]["eval"]["cifar10_resnet18"]["cifs"]["last"]["attacks"]
