"""data_scripts/fashion_mnist.py and robustbook.data.fashion_mnist on tiny files in the official layout."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from robustbook.data.classification import ChecksumError, class_names, load_classification
from robustbook.data.fmnist import fashion_mnist
from tests.data_script_loading import load_script, no_download

fm = load_script("fashion_mnist")


def _write(folder: Path, n_train: int = 20, n_test: int = 10, seed: int = 0, magic: int = 2051) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">iiii", magic, n, 28, 28) + x.tobytes()))
        labels = gzip.compress(struct.pack(">ii", 2049, n) + y.tobytes())
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(labels)
        data[split] = (x, y)
    return data


def test_prepares_from_archives_and_loads(tmp_path: Path) -> None:
    data = _write(tmp_path / "archives")
    out = fm.prepare(data_root=tmp_path, download_fn=no_download, check_official=False, expected_counts=None,
                     debian_dir=tmp_path / "none")
    x, y = load_classification(out, "train", channels=1)
    assert x.shape == (20, 1, 28, 28) and y.tolist() == data["train"][1].tolist()
    assert np.array_equal((x[3, 0].numpy() * 255).round().astype(np.uint8), data["train"][0][3])
    assert class_names(out)[9] == "Ankle boot"
    # the library loader prefers the prepared copy and subsamples stratified by class
    xtr, ytr, xte, yte = fashion_mnist(10, 0, seed=1, root=tmp_path)
    assert xtr.shape == (10, 1, 28, 28) and sorted(ytr.tolist()) == list(range(10)) and len(yte) == 10


def test_official_md5_refuses_other_files(tmp_path: Path) -> None:
    _write(tmp_path / "archives")
    with pytest.raises(ChecksumError):
        fm.prepare(data_root=tmp_path, download_fn=no_download, debian_dir=tmp_path / "none")
    assert not (tmp_path / "fashion_mnist").exists()


def test_copies_from_debian_without_download(tmp_path: Path) -> None:
    data = _write(tmp_path / "debian", seed=3)
    out = fm.prepare(data_root=tmp_path / "root", download_fn=no_download, expected_counts=None,
                     debian_dir=tmp_path / "debian")
    x, y = load_classification(out, "test", channels=1)
    assert y.tolist() == data["test"][1].tolist()
    assert '"source": "debian"' in (out / "dataset.json").read_text()
    assert (tmp_path / "root" / "archives" / "t10k-images-idx3-ubyte.gz").is_file()


def test_counts_and_magic_are_checked(tmp_path: Path) -> None:
    _write(tmp_path / "debian")
    with pytest.raises(fm.IDXError, match="60000"):
        fm.prepare(data_root=tmp_path / "a", download_fn=no_download, debian_dir=tmp_path / "debian")
    _write(tmp_path / "bad", magic=1234)
    with pytest.raises(fm.IDXError, match="magic"):
        fm.prepare(data_root=tmp_path / "b", download_fn=no_download, expected_counts=None,
                   debian_dir=tmp_path / "bad")


def test_from_debian_needs_the_package(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        fm.prepare(data_root=tmp_path, download_fn=no_download, from_debian=True, debian_dir=tmp_path / "none")
    with pytest.raises(SystemExit):                       # the option exists on the command line
        fm.main(["--from-debian", "--help"])


def test_downloads_through_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "mirror")
    monkeypatch.setattr(fm, "FILES", {k: s.__class__(s.filename, (tmp_path / "mirror" / s.filename).as_uri())
                                      for k, s in fm.FILES.items()})
    out = fm.prepare(data_root=tmp_path / "root", check_official=False, expected_counts=None, from_debian=False)
    assert load_classification(out, "test", channels=1)[0].shape == (10, 1, 28, 28)
