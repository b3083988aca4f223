"""The real-noise and BSD500 data scripts of the denoising chapter on tiny archives in the official layouts (offline).

BSD500 (BSR_bsds500.tgz + the IRCNN repository's CBSD68), PolyU and CC (repository zips of
noisy/clean pairs), SIDD-small (a zip placed by hand) and SIDD-val (two MATLAB v5 files placed by hand).
The builders are shared with tests/test_real_data_paths.py.
"""
from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustbook.data.download import ArchiveError, DownloadError
from robustbook.data.manifest import read_dataset
from tests.data_script_loading import load_script, no_download

bsd500, polyu, cc = load_script("bsd500"), load_script("polyu"), load_script("cc")
sidd_small, sidd_val = load_script("sidd_small"), load_script("sidd_val")


def _image(rng: np.random.Generator, size: tuple[int, int], fmt: str) -> bytes:
    """A smooth random colour image (``size`` = (width, height)) encoded as ``fmt``."""
    w, h = size
    base = rng.uniform(0, 255, (h // 4 + 2, w // 4 + 2, 3)).astype(np.uint8)
    img = Image.fromarray(base).resize((w, h), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def make_bsd500(folder: Path, ids=(2092, 8049, 12003, 15004, 101085, 101087), test_ids=(101085, 101087),
                size=(40, 32)) -> tuple[Path, Path]:
    """BSR_bsds500.tgz (images/{train,val,test}, plus bench/ and groundTruth decoys) and IRCNN-master.zip (CBSD68)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    tgz = folder / "BSR_bsds500.tgz"
    with tarfile.open(tgz, "w:gz") as tf:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for k, i in enumerate(ids):
            part = ("train", "val", "test")[k % 3]
            wh = size if k % 2 else size[::-1]            # portrait and landscape, as in BSDS500
            add(f"BSR/BSDS500/data/images/{part}/{i}.jpg", _image(rng, wh, "JPEG"))
            add(f"BSR/BSDS500/data/groundTruth/{part}/{i}.mat", b"MATLAB 5.0")
        add("BSR/bench/data/images/100007.jpg", _image(rng, size, "JPEG"))
        add("BSR/BSDS500/data/images/train/Thumbs.db", b"\0")
    zpath = folder / "IRCNN-master.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for i in test_ids:
            zf.writestr(f"IRCNN-master/testsets/CBSD68/{i}.png", _image(rng, size, "PNG"))
        zf.writestr("IRCNN-master/testsets/Set12/01.png", _image(rng, (12, 12), "PNG"))
    return tgz, zpath


def _pairs_zip(path: Path, folder: str, stems, ext: str, fmt: str, extra=(), size=(40, 32)) -> Path:
    rng = np.random.default_rng(len(stems))
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for stem in stems:
            clean = _image(rng, size, fmt)
            zf.writestr(f"{folder}/{stem}_mean{ext}", clean)
            arr = np.asarray(Image.open(io.BytesIO(clean))).astype(float) + rng.normal(0, 12, (size[1], size[0], 3))
            buf = io.BytesIO()
            Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, format=fmt)
            zf.writestr(f"{folder}/{stem}_real{ext}", buf.getvalue())
        for name in extra:
            zf.writestr(f"{folder}/{name}", b"x")
    return path


def make_polyu(folder: Path, n: int = 3) -> Path:
    stems = [f"Canon5D2_5_160_3200_chair_{k}" for k in range(n)]
    return _pairs_zip(folder / polyu.ARCHIVE.filename, "PolyU-Real-World-Noisy-Images-Dataset-master/CroppedImages",
                      stems, ".JPG", "JPEG", extra=["readme.txt"])


def make_cc(folder: Path, n: int = 3) -> Path:
    stems = [f"d800_iso3200_{k}" for k in range(1, n + 1)]
    return _pairs_zip(folder / cc.ARCHIVE.filename, "MCWNNM-ICCV2017-master/Real_ccnoise_denoised_part", stems,
                      ".png", "PNG", extra=[f"{s}_ours.png" for s in stems])


def make_sidd_small(folder: Path, n: int = 3, size=(48, 40)) -> Path:
    path = folder / sidd_small.ARCHIVE.filename
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    with zipfile.ZipFile(path, "w") as zf:
        for k in range(n):
            scene = f"SIDD_Small_sRGB_Only/Data/{k + 1:04d}_001_S6_00100_00060_3200_L"
            zf.writestr(f"{scene}/GT_SRGB_010.PNG", _image(rng, size, "PNG"))
            zf.writestr(f"{scene}/NOISY_SRGB_010.PNG", _image(rng, size, "PNG"))
        zf.writestr("SIDD_Small_sRGB_Only/Scene_Instances.txt", "x")
    return path


def make_sidd_val(folder: Path, images: int = 2, blocks: int = 2, side: int = 32) -> tuple[Path, Path]:
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(6)
    clean = rng.integers(40, 215, (images, blocks, side, side, 3), dtype=np.uint8)
    noisy = np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255).astype(np.uint8)
    paths = folder / sidd_val.NOISY.filename, folder / sidd_val.CLEAN.filename
    savemat(paths[0], {"ValidationNoisyBlocksSrgb": noisy})
    savemat(paths[1], {"ValidationGtBlocksSrgb": clean})
    return paths


# ------------------------------------------------------------------ BSD500

def test_bsd500_splits_bsd432_and_cbsd68(tmp_path):
    make_bsd500(tmp_path / "archives")
    out = bsd500.prepare(tmp_path, download_fn=no_download, check_counts=False)
    samples, meta = read_dataset(out, check_files=True)
    assert meta.task == "denoising"
    train = {s.ref_id for s in samples if s.split == "train"}
    test = {s.ref_id for s in samples if s.split == "test"}
    assert test == {"bsd/101085", "bsd/101087"} and train == {"bsd/2092", "bsd/8049", "bsd/12003", "bsd/15004"}
    assert {s.distortion for s in samples if s.split == "train"} == {"BSD432"}
    assert np.asarray(Image.open(out / "CBSD68/101085.png")).shape == (32, 40, 3)
    assert (tmp_path / "archives" / "BSR_bsds500.tgz.sha256").is_file()
    assert bsd500.prepare(tmp_path, download_fn=no_download, check_counts=False) == out


def test_bsd500_checks_counts_and_ids(tmp_path):
    make_bsd500(tmp_path / "archives")
    with pytest.raises(ArchiveError, match="official sets"):
        bsd500.prepare(tmp_path, download_fn=no_download)
    assert not (tmp_path / "bsd500").exists()
    assert not (tmp_path / "archives" / "BSR_bsds500.tgz.sha256").exists()     # not trusted: nothing was built
    make_bsd500(tmp_path / "archives", test_ids=(101085, 999999))
    with pytest.raises(ArchiveError, match="not in BSDS500"):
        bsd500.prepare(tmp_path, download_fn=no_download, check_counts=False)


# ------------------------------------------------------------------ PolyU and CC

@pytest.mark.parametrize("script, make, n", [(polyu, make_polyu, 3), (cc, make_cc, 3)])
def test_pairs_are_indexed_noisy_with_clean_reference(tmp_path, script, make, n):
    make(tmp_path / "archives")
    out = script.prepare(tmp_path, download_fn=no_download, check_counts=False)
    samples, meta = read_dataset(out, check_files=True)
    assert len(samples) == n and {s.split for s in samples} == {"test"} and meta.task == "denoising"
    for s in samples:
        assert s.image.startswith("noisy/") and s.reference.startswith("clean/")
        noisy = np.asarray(Image.open(out / s.image), dtype=float)
        clean = np.asarray(Image.open(out / s.reference), dtype=float)
        assert noisy.shape == clean.shape and 3 < np.abs(noisy - clean).mean() < 30
    assert not list(out.rglob("*_ours*"))


def test_pairs_missing_partner_and_counts(tmp_path):
    path = make_polyu(tmp_path / "archives")
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("PolyU-Real-World-Noisy-Images-Dataset-master/CroppedImages/lonely_real.JPG", b"x")
    with pytest.raises(ArchiveError, match="without their noisy or clean partner"):
        polyu.prepare(tmp_path, download_fn=no_download, check_counts=False)
    make_cc(tmp_path / "archives")
    with pytest.raises(ArchiveError, match="CC has 15"):
        cc.prepare(tmp_path, download_fn=no_download)


def test_polyu_download_and_cli(tmp_path, capsys):
    src = make_polyu(tmp_path / "src")

    def fake_download(url, dest, **kw):
        assert url == polyu.ARCHIVE.url
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_bytes(src.read_bytes())
        return Path(dest)

    assert (polyu.prepare(tmp_path / "root", download_fn=fake_download, check_counts=False) / "manifest.csv").is_file()
    make_cc(tmp_path / "archives")
    assert cc.main(["--data-root", str(tmp_path)]) == 1
    assert "CC has 15" in capsys.readouterr().err


# ------------------------------------------------------------------ SIDD

def test_sidd_small_pairs(tmp_path):
    make_sidd_small(tmp_path / "archives")
    out = sidd_small.prepare(tmp_path, check_counts=False)
    samples, _ = read_dataset(out, check_files=True)
    assert len(samples) == 3 and {s.split for s in samples} == {"train"}
    assert samples[0].ref_id == "0001_001_S6_00100_00060_3200_L"


def test_sidd_archives_are_placed_by_hand(tmp_path, capsys):
    def must_not_download(url, dest, **kw):
        raise AssertionError("SIDD files are behind a cloud drive: no download may be tried")

    with pytest.raises(DownloadError, match="place it at"):
        sidd_small.prepare(tmp_path, download_fn=must_not_download)
    assert sidd_val.main(["--data-root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "ValidationNoisyBlocksSrgb.mat" in err and "benchmark.php" in err


def test_sidd_val_blocks_become_png_pairs(tmp_path):
    noisy_mat, _ = make_sidd_val(tmp_path / "archives")
    out = sidd_val.prepare(tmp_path, check_counts=False)
    samples, meta = read_dataset(out, check_files=True)
    assert len(samples) == 4 and meta.extra["shape"] == [2, 2, 32, 32, 3]
    from scipy.io import loadmat
    ref = loadmat(noisy_mat)["ValidationNoisyBlocksSrgb"][1, 0]
    assert np.array_equal(np.asarray(Image.open(out / "noisy/01_00.png")), ref)
    with pytest.raises(ArchiveError, match="SIDD-val has"):
        sidd_val.prepare(tmp_path, force=True)


def test_sidd_val_refuses_a_wrong_mat(tmp_path):
    from scipy.io import savemat

    make_sidd_val(tmp_path / "archives")
    savemat(tmp_path / "archives" / sidd_val.CLEAN.filename, {"other": np.zeros((2, 2))})
    for f in (tmp_path / "archives").glob("*.sha256"):
        f.unlink()
    with pytest.raises(ArchiveError, match="no variable"):
        sidd_val.prepare(tmp_path, check_counts=False)
