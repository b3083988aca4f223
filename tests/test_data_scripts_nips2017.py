"""data_scripts/nips2017_dev.py on a tiny archive laid out like Kaggle's (images/<ImageId>.png + images.csv)."""
from __future__ import annotations

import csv
import io
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from robustbook.data.manifest import read_dataset
from tests.data_script_loading import load_script, no_download

nips = load_script("nips2017_dev")
LabelFileError = sys.modules["_common"].LabelFileError
HEADER = ["ImageId", "URL", "x1", "y1", "x2", "y2", "TrueLabel", "TargetClass", "OriginalLandingURL", "License",
          "Author", "AuthorProfileURL"]
IDS = ["0c7ac4a8c9dfa802", "0c8d4a1e9e8b4c7d", "1a2b3c4d5e6f7a8b"]


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (9, 9), (seed * 40 % 256, 90, 200)).save(buf, format="PNG")
    return buf.getvalue()


def make_archive(archives: Path, *, prefix: str = "", rows=None, ids=IDS) -> Path:
    archives.mkdir(parents=True, exist_ok=True)
    if rows is None:
        rows = [[i, f"https://x/{i}.jpg", 0, 0, 9, 9, 100 + k, 500 + k, "https://l", "CC", "a", "p"]
                for k, i in enumerate(ids)]
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows(rows)
    path = archives / nips.ARCHIVE.filename
    with zipfile.ZipFile(path, "w") as zf:
        for k, i in enumerate(ids):
            zf.writestr(f"{prefix}images/{i}.png", _png(k))
        zf.writestr(f"{prefix}images.csv", text.getvalue())
    return path


@pytest.mark.parametrize("prefix", ["", "nips-2017-adversarial-learning-development-set/"])
def test_prepare_builds_a_test_only_classification_set(tmp_path, prefix):
    make_archive(tmp_path / "archives", prefix=prefix)
    out = nips.prepare(data_root=tmp_path / "data", archive_dir=tmp_path / "archives", download_fn=no_download)
    rows, meta = read_dataset(out)
    assert meta.task == "classification" and len(rows) == 3
    assert {r.split for r in rows} == {"test"}
    assert sorted(r.score for r in rows) == [100, 101, 102]
    assert meta.extra["target_class"][IDS[0]] == 500
    assert (out / "images.csv").is_file() and (tmp_path / "archives" / f"{nips.ARCHIVE.filename}.sha256").is_file()
    # a complete set is left alone; the archive is verified against its first-use record next time
    assert nips.prepare(data_root=tmp_path / "data", archive_dir=tmp_path / "archives", download_fn=no_download) == out


def test_label_row_without_image_is_refused(tmp_path):
    rows = [[i, "u", 0, 0, 9, 9, 3, 4, "l", "c", "a", "p"] for i in IDS + ["missing0000000000"]]
    make_archive(tmp_path / "archives", rows=rows)
    with pytest.raises(LabelFileError, match="missing0000000000"):
        nips.prepare(data_root=tmp_path / "data", archive_dir=tmp_path / "archives", download_fn=no_download)
    assert not (tmp_path / "data" / "nips2017_dev").exists()
    assert not (tmp_path / "archives" / f"{nips.ARCHIVE.filename}.sha256").exists()


def test_bad_label_and_cli(tmp_path):
    rows = [[i, "u", 0, 0, 9, 9, "1001", 4, "l", "c", "a", "p"] for i in IDS]
    make_archive(tmp_path / "archives", rows=rows)
    with pytest.raises(LabelFileError, match="outside"):
        nips.prepare(data_root=tmp_path / "data", archive_dir=tmp_path / "archives", download_fn=no_download)
    make_archive(tmp_path / "ok")
    assert nips.main(["--data-root", str(tmp_path / "d2"), "--archive-dir", str(tmp_path / "ok")]) == 0
