"""Tests of data_scripts/{mnist,svhn,cifar10,imgnet10}.py on tiny files in the official layouts.

Each test writes fake official files (IDX gz, MATLAB v5 .mat, the CIFAR python
tarball, an ImageNet train/<wnid>/ tree) with a handful of tiny images, runs
``prepare`` offline (the download function fails the test if called) and reads
the result back with the book's loaders.
"""
from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustbook.data.classification import ChecksumError, class_names, load_classification
from robustbook.data.download import ArchiveError
from robustbook.data.manifest import read_dataset
from tests.data_script_loading import SCRIPTS
from tests.data_script_loading import load_script as _load
from tests.data_script_loading import no_download as _no_download

mnist = _load("mnist")
svhn = _load("svhn")
cifar = _load("cifar10")
imgnet = _load("imgnet10")




def _leftovers(root: Path, name: str) -> list[str]:
    return [p.name for p in root.iterdir() if p.name.startswith(f".{name}")] if root.exists() else []


# ------------------------------------------------------------------ MNIST

def _idx_images(images: np.ndarray, magic: int = 2051) -> bytes:
    n, h, w = images.shape
    return gzip.compress(struct.pack(">iiii", magic, n, h, w) + images.astype(np.uint8).tobytes())


def _idx_labels(labels: np.ndarray) -> bytes:
    return gzip.compress(struct.pack(">ii", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def make_mnist(archives: Path, n_train: int = 12, n_test: int = 5, seed: int = 0) -> dict:
    """The four official gzipped IDX files, with random 28x28 digits and labels."""
    rng = np.random.default_rng(seed)
    data = {}
    archives.mkdir(parents=True, exist_ok=True)
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = np.arange(n) % 10
        (archives / f"{prefix}-images-idx3-ubyte.gz").write_bytes(_idx_images(x))
        (archives / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(_idx_labels(y))
        data[split] = (x, y)
    return data


def test_mnist_prepares_and_loads(tmp_path: Path) -> None:
    data = make_mnist(tmp_path / "archives")
    out = mnist.prepare(data_root=tmp_path, download_fn=_no_download, check_official=False, expected_counts=None)
    assert out == tmp_path / "mnist"
    samples, meta = read_dataset(out)
    assert (meta.task, meta.score_name, meta.extra["channels"]) == ("classification", "label", 1)
    assert meta.extra["classes"] == [str(d) for d in range(10)]
    assert [s.split for s in samples].count("train") == 12 and [s.split for s in samples].count("test") == 5
    assert samples[0].ref_id == "train-00000" and samples[0].image == "images/train/train-00000.png"
    for split in ("train", "test"):
        x, y = load_classification(out, split)
        assert x.shape == (len(data[split][0]), 1, 28, 28) and x.dtype.is_floating_point
        np.testing.assert_array_equal((x[:, 0] * 255).round().numpy().astype(np.uint8), data[split][0])
        np.testing.assert_array_equal(y.numpy(), data[split][1])
    assert class_names(out) == [str(d) for d in range(10)]
    # a complete data set is left alone
    before = (out / "manifest.csv").stat().st_mtime_ns
    for p in (tmp_path / "archives").glob("*.gz"):
        p.unlink()
    assert mnist.prepare(data_root=tmp_path, download_fn=_no_download, check_official=False) == out
    assert (out / "manifest.csv").stat().st_mtime_ns == before


def test_mnist_official_md5_refuses_other_files(tmp_path: Path) -> None:
    make_mnist(tmp_path / "archives")
    with pytest.raises(ChecksumError, match="MD5.*official file"):
        mnist.prepare(data_root=tmp_path, download_fn=_no_download)
    assert not (tmp_path / "mnist").exists()
    # the command line turns it into one message and exit status 1
    assert mnist.main(["--data-root", str(tmp_path)]) == 1


def test_mnist_wrong_magic_and_truncation(tmp_path: Path) -> None:
    make_mnist(tmp_path / "archives")
    arc = tmp_path / "archives" / "t10k-images-idx3-ubyte.gz"
    arc.write_bytes(_idx_images(np.zeros((5, 28, 28), np.uint8), magic=2049))
    (tmp_path / "archives" / "t10k-images-idx3-ubyte.gz.sha256").unlink(missing_ok=True)
    with pytest.raises(ArchiveError, match="magic number 2049"):
        mnist.prepare(data_root=tmp_path, download_fn=_no_download, check_official=False, expected_counts=None)
    assert not (tmp_path / "archives" / "t10k-images-idx3-ubyte.gz.sha256").exists()  # the bad file was not trusted
    arc.write_bytes(gzip.compress(struct.pack(">iiii", 2051, 5, 28, 28) + b"\0" * 100))
    with pytest.raises(ArchiveError, match="truncated"):
        mnist.prepare(data_root=tmp_path, download_fn=_no_download, check_official=False, expected_counts=None)
    assert not (tmp_path / "mnist").exists() and _leftovers(tmp_path, "mnist") == []


def test_mnist_counts_are_checked(tmp_path: Path) -> None:
    make_mnist(tmp_path / "archives")
    with pytest.raises(ArchiveError, match="MNIST has 60000"):
        mnist.prepare(data_root=tmp_path, download_fn=_no_download, check_official=False)


def test_mnist_downloads_through_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real download() on file:// URLs: the files land in <data root>/archives/."""
    make_mnist(tmp_path / "mirror")
    monkeypatch.setattr(mnist, "FILES", {k: s.__class__(s.filename, (tmp_path / "mirror" / s.filename).as_uri())
                                         for k, s in mnist.FILES.items()})
    out = mnist.prepare(data_root=tmp_path / "root", check_official=False, expected_counts=None)
    assert (tmp_path / "root" / "archives" / "train-images-idx3-ubyte.gz").is_file()
    assert len(read_dataset(out)[0]) == 17


# ------------------------------------------------------------------ SVHN

def make_svhn(archives: Path, n_train: int = 7, n_test: int = 4) -> dict:
    from scipy.io import savemat

    rng = np.random.default_rng(1)
    archives.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(-1, 1).astype(np.uint8)    # 1..10, 10 = digit 0
        savemat(archives / f"{split}_32x32.mat", {"X": x, "y": y})
        data[split] = (x, y[:, 0])
    return data


def test_svhn_prepares_label_10_is_zero(tmp_path: Path) -> None:
    data = make_svhn(tmp_path / "archives", n_train=12)
    out = svhn.prepare(data_root=tmp_path, download_fn=_no_download, check_official=False, expected_counts=None)
    samples, meta = read_dataset(out)
    assert meta.extra["channels"] == 3 and len(samples) == 16
    x, y = load_classification("svhn", "train", root=tmp_path)
    assert x.shape == (12, 3, 32, 32)
    assert y.tolist() == [int(v) % 10 for v in data["train"][1]] and 0 in y.tolist() and 9 in y.tolist()
    img0 = data["train"][0][..., 0]                                       # (32, 32, 3)
    np.testing.assert_array_equal((x[0] * 255).round().numpy().astype(np.uint8).transpose(1, 2, 0), img0)


def test_svhn_refuses_a_file_without_X(tmp_path: Path) -> None:
    from scipy.io import savemat

    make_svhn(tmp_path / "archives")
    savemat(tmp_path / "archives" / "test_32x32.mat", {"images": np.zeros((2, 2))})
    (tmp_path / "archives" / "test_32x32.mat.sha256").unlink(missing_ok=True)
    with pytest.raises(ArchiveError, match="lacks the variables X and y"):
        svhn.prepare(data_root=tmp_path, download_fn=_no_download, check_official=False, expected_counts=None)
    assert not (tmp_path / "svhn").exists() and _leftovers(tmp_path, "svhn") == []
    with pytest.raises(ChecksumError):
        svhn.prepare(data_root=tmp_path, download_fn=_no_download)


# ------------------------------------------------------------------ CIFAR-10

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _pickle_bytes(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=2)


def make_cifar(archives: Path, per_batch: int = 3, evil: bool = False) -> dict:
    """cifar-10-python.tar.gz with cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}."""
    rng = np.random.default_rng(2)
    archives.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    data: dict[str, list] = {"train": [], "test": []}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = list(rng.integers(0, 10, per_batch).tolist())
        files[name] = _pickle_bytes({b"batch_label": name.encode(), b"labels": y, b"data": x,
                                     b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)]})
        data["test" if name == "test_batch" else "train"].append((x, y))
    files["batches.meta"] = _pickle_bytes({b"label_names": [n.encode() for n in CIFAR_NAMES],
                                           b"num_cases_per_batch": per_batch, b"num_vis": 3072})
    if evil:
        class Evil:
            def __reduce__(self):
                return (print, ("pwned",))
        files["data_batch_3"] = pickle.dumps(Evil(), protocol=2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, blob in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    (archives / "cifar-10-python.tar.gz").write_bytes(buf.getvalue())
    return data


def test_cifar10_prepares_and_loads(tmp_path: Path) -> None:
    data = make_cifar(tmp_path / "archives")
    out = cifar.prepare(data_root=tmp_path, download_fn=_no_download, check_official=False, expected_counts=None)
    samples, meta = read_dataset(out)
    assert meta.extra["classes"] == CIFAR_NAMES and len(samples) == 18
    assert not (out / "_raw").exists()
    x, y = load_classification(out, "train")
    assert x.shape == (15, 3, 32, 32)
    assert y.tolist() == [v for _, ys in data["train"] for v in ys]
    first = data["train"][0][0][0].reshape(3, 32, 32)                   # R, G, B planes, row-major
    np.testing.assert_array_equal((x[0] * 255).round().numpy().astype(np.uint8), first)
    xt, yt = load_classification(out, "test")
    assert xt.shape == (3, 3, 32, 32) and yt.tolist() == data["test"][0][1]


def test_cifar10_refuses_pickles_naming_other_objects(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_cifar(tmp_path / "archives", evil=True)
    with pytest.raises(ArchiveError, match="must not reference .*print"):
        cifar.prepare(data_root=tmp_path, download_fn=_no_download, check_official=False, expected_counts=None)
    assert "pwned" not in capsys.readouterr().out
    assert not (tmp_path / "cifar10").exists() and _leftovers(tmp_path, "cifar10") == []


def test_cifar10_official_md5(tmp_path: Path) -> None:
    make_cifar(tmp_path / "archives")
    with pytest.raises(ChecksumError, match="c58f30108f718f92721af3b95e74349a"):
        cifar.prepare(data_root=tmp_path, download_fn=_no_download)


# ------------------------------------------------------------------ ImgNet10

def make_imagenet(base: Path, per_wnid: int = 3, skip: str | None = None) -> Path:
    """<base>/train/<wnid>/<wnid>_<n>.JPEG for every wnid of Table 3.6 (tiny JPEGs of varied sizes)."""
    rng = np.random.default_rng(3)
    for wnids in imgnet.CLASSES.values():
        for w in wnids:
            if w == skip:
                continue
            folder = base / "train" / w
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(per_wnid):
                arr = rng.integers(0, 256, (int(rng.integers(10, 20)), int(rng.integers(10, 20)), 3), dtype=np.uint8)
                Image.fromarray(arr).save(folder / f"{w}_{100 + n}.JPEG", format="JPEG")
    (base / "train" / imgnet.CLASSES["dog"][0] / "notes.txt").write_text("not an image")
    return base


def test_imgnet10_selects_disjoint_splits_per_class(tmp_path: Path) -> None:
    src = make_imagenet(tmp_path / "ilsvrc")
    out = imgnet.prepare(src, data_root=tmp_path / "root", n_train=5, n_test=2, size=16)
    samples, meta = read_dataset(out)
    assert meta.extra["classes"] == list(imgnet.CLASSES) and meta.extra["wnids"]["crab"] == list(imgnet.CLASSES["crab"])
    assert len(samples) == 70
    train = [s for s in samples if s.split == "train"]
    test = [s for s in samples if s.split == "test"]
    assert len(train) == 50 and len(test) == 20
    assert not {s.ref_id for s in train} & {s.ref_id for s in test}
    for s in samples:                                 # each image's label is the class of its wnid
        wnid = s.ref_id.split("_")[0]
        assert wnid in imgnet.CLASSES[list(imgnet.CLASSES)[int(s.score)]]
    x, y = load_classification(out, "test")
    assert x.shape == (20, 3, 16, 16) and sorted(y.tolist()) == sorted(list(range(10)) * 2)
    # deterministic for a seed (the train folder itself is accepted too)
    again = imgnet.prepare(src / "train", data_root=tmp_path / "root2", n_train=5, n_test=2, size=16)
    assert [s.ref_id for s in read_dataset(again)[0]] == [s.ref_id for s in samples]
    other = imgnet.prepare(src, data_root=tmp_path / "root3", n_train=5, n_test=2, size=16, seed=1)
    assert [s.ref_id for s in read_dataset(other)[0]] != [s.ref_id for s in samples]


def test_imgnet10_missing_wnid_and_too_few_images(tmp_path: Path) -> None:
    src = make_imagenet(tmp_path / "a", skip="n01981276")
    with pytest.raises(ArchiveError, match="n01981276"):
        imgnet.prepare(src, data_root=tmp_path / "root", n_train=2, n_test=1, size=8)
    src = make_imagenet(tmp_path / "b", per_wnid=1)
    with pytest.raises(ArchiveError, match="fewer than the 4 needed"):
        imgnet.prepare(src, data_root=tmp_path / "root", n_train=3, n_test=1, size=8)
    assert not (tmp_path / "root" / "imgnet10").exists()
    assert imgnet.main(["--imagenet-dir", str(src), "--data-root", str(tmp_path / "root"), "--n-train", "3"]) == 1


def test_registry_names_the_scripts(tmp_path: Path) -> None:
    from robustbook.data.registry import REGISTRY, prepare

    for name in ("mnist", "svhn", "cifar10", "imgnet10"):
        entry = REGISTRY[name]
        assert entry.task == "classification" and (SCRIPTS / entry.script).is_file()
    with pytest.raises(FileNotFoundError, match=r"data_scripts/mnist.py"):
        prepare("mnist", root=tmp_path)
