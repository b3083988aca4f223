"""data_scripts/dncnn_sets.py on a tiny zip laid out like the DnCNN repository archive (offline)."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustbook.data.download import ArchiveError
from robustbook.data.manifest import read_dataset
from tests.data_script_loading import load_script, no_download

dncnn = load_script("dncnn_sets")
TRAIN = "DnCNN-master/TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400"


def _png(rng: np.random.Generator, size: int = 12) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def make_archive(folder: Path, decoy_set68: bool = True, counts=(3, 2, 4), size: int = 12) -> Path:
    """DnCNN-master.zip with Train400, testsets/Set12, testsets/BSD68 (and the repository's other Set68 folder)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "DnCNN-master.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(counts[0]):
            zf.writestr(f"{TRAIN}/test_{i + 1:03d}.png", _png(rng, size))
        for i in range(counts[1]):
            zf.writestr(f"DnCNN-master/testsets/Set12/{i + 1:02d}.png", _png(rng, size))
        for i in range(counts[2]):
            zf.writestr(f"DnCNN-master/testsets/BSD68/test{i + 1:03d}.png", _png(rng, size))
        if decoy_set68:
            zf.writestr("DnCNN-master/TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Test/Set68/test004.png", _png(rng))
        zf.writestr("DnCNN-master/README.md", "DnCNN")
    return path


def test_prepares_the_three_sets(tmp_path):
    make_archive(tmp_path / "archives")
    out = dncnn.prepare(tmp_path, download_fn=no_download, check_counts=False)
    samples, meta = read_dataset(out, check_files=True)
    assert meta.task == "denoising"
    by_set = {}
    for s in samples:
        by_set.setdefault(s.distortion, []).append(s)
    assert {k: len(v) for k, v in by_set.items()} == {"Train400": 3, "Set12": 2, "Set68": 4}
    assert {s.split for s in by_set["Train400"]} == {"train"}
    assert {s.split for s in by_set["Set12"] + by_set["Set68"]} == {"test"}
    img = np.asarray(Image.open(out / by_set["Set68"][0].image))
    assert img.shape == (12, 12)
    assert (tmp_path / "archives" / "DnCNN-master.zip.sha256").is_file()   # trusted on first use, after building
    # a second run leaves the complete set alone
    assert dncnn.prepare(tmp_path, download_fn=no_download, check_counts=False) == out


def test_official_counts_are_checked(tmp_path):
    make_archive(tmp_path / "archives")
    with pytest.raises(ArchiveError, match="Train400 has 400"):
        dncnn.prepare(tmp_path, download_fn=no_download)
    assert not (tmp_path / "dncnn-gray").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dncnn-gray")]


def test_wrong_archive_is_refused(tmp_path):
    folder = tmp_path / "archives"
    folder.mkdir()
    with zipfile.ZipFile(folder / "DnCNN-master.zip", "w") as zf:
        zf.writestr("other/Set12/01.png", _png(np.random.default_rng(1)))
    with pytest.raises(ArchiveError):
        dncnn.prepare(tmp_path, download_fn=no_download, check_counts=False)


def test_download_is_used_when_the_archive_is_missing(tmp_path):
    src = make_archive(tmp_path / "src")

    def fake_download(url, dest, **kw):
        assert url == dncnn.ARCHIVE.url
        Path(dest).write_bytes(src.read_bytes())
        return Path(dest)

    out = dncnn.prepare(tmp_path / "root", download_fn=fake_download, check_counts=False)
    assert (out / "manifest.csv").is_file()


def test_command_line_exit_codes(tmp_path, capsys):
    make_archive(tmp_path / "archives")
    assert dncnn.main(["--data-root", str(tmp_path)]) == 1            # counts differ from the official ones
    assert "Train400 has 400" in capsys.readouterr().err


# ------------------------------------------------------------------ Kodak24

kodak = load_script("kodak24")


def _rgb_png(size=(24, 16), seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_kodak24_downloads_each_file_once_and_indexes_them(tmp_path):
    calls = []

    def fake_download(url, dest, **kw):
        calls.append(url)
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_bytes(_rgb_png(seed=len(calls)))
        return Path(dest)

    out = kodak.prepare(tmp_path, download_fn=fake_download, check_sizes=False)
    assert len(calls) == 24 and calls[0].endswith("/kodim01.png")
    samples, meta = read_dataset(out, check_files=True)
    assert meta.task == "denoising" and len(samples) == 24 and {s.split for s in samples} == {"test"}
    assert np.asarray(Image.open(out / samples[0].image)).shape == (16, 24, 3)
    assert (tmp_path / "archives" / "kodim24.png.sha256").is_file()
    # rebuilding reuses the files in the archive folder: no download
    assert kodak.prepare(tmp_path, download_fn=no_download, force=True, check_sizes=False) == out


def test_kodak24_refuses_wrong_files(tmp_path):
    folder = tmp_path / "archives"
    folder.mkdir()
    for i in range(1, 25):
        (folder / f"kodim{i:02d}.png").write_bytes(_rgb_png())
    with pytest.raises(ArchiveError, match="768 x 512"):
        kodak.prepare(tmp_path, download_fn=no_download)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(buf, format="PNG")
    (folder / "kodim05.png").write_bytes(buf.getvalue())
    for f in folder.glob("*.sha256"):
        f.unlink()
    with pytest.raises(ArchiveError, match="mode L"):
        kodak.prepare(tmp_path, download_fn=no_download, check_sizes=False)
    assert not (tmp_path / "kodak24").exists()
