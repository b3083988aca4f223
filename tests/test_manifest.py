"""The one manifest format (robustbook.data.manifest): hostile manifests are refused by name (issue 10, item 8)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from robustbook.data.manifest import COLUMNS, DatasetMeta, ManifestError, Sample, read_dataset, write_dataset

META = DatasetMeta(name="t", task="fr-iqa", score_name="DMOS", score_range=(1.0, 5.0), higher_is_better=True,
                   source="test")


def _good(folder: Path) -> Path:
    (folder / "images").mkdir(parents=True)
    for name in ("a.png", "b.png", "ref.png"):
        (folder / "images" / name).write_bytes(b"x")
    samples = [Sample(image="images/a.png", reference="images/ref.png", score=2.0, ref_id="r1", split="train"),
               Sample(image="images/b.png", reference="images/ref.png", score=4.5, ref_id="r1", split="train")]
    return write_dataset(folder, samples, META)


def _rewrite(folder: Path, **change: str) -> None:
    """Rewrite the first row of manifest.csv with ``change`` applied (what a hand edit or an attacker does)."""
    with (folder / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[0].update(change)
    with (folder / "manifest.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)


def test_round_trip(tmp_path: Path) -> None:
    rows, meta = read_dataset(_good(tmp_path / "d"))
    assert [r.image for r in rows] == ["images/a.png", "images/b.png"] and meta.score_range == (1.0, 5.0)


@pytest.mark.parametrize("column", ["image", "reference"])
@pytest.mark.parametrize("path", ["../../../../../etc/passwd", "/etc/passwd", "images/../../x.png",
                                  "..\\..\\etc\\passwd", "C:/Windows/win.ini", "\\\\server\\share\\x.png"])
def test_paths_must_stay_inside_the_folder(tmp_path: Path, column: str, path: str) -> None:
    folder = _good(tmp_path / "d")
    _rewrite(folder, **{column: path})
    for check_files in (True, False):      # refused before any file is looked at
        with pytest.raises(ManifestError, match=f"{column} path .* must be relative to the data set folder"):
            read_dataset(folder, check_files=check_files)


def test_writing_a_traversing_reference_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"x")
    with pytest.raises(ManifestError, match="reference path '../../../../../etc/passwd'"):
        write_dataset(folder, [Sample(image="a.png", reference="../../../../../etc/passwd", score=2.0, ref_id="r",
                                      split="test")], META)
    assert not (folder / "manifest.csv").exists()


@pytest.mark.parametrize("score", ["0.5", "5.01", "-1e9", "nan", "inf"])
def test_scores_outside_the_declared_range_are_refused(tmp_path: Path, score: str) -> None:
    folder = _good(tmp_path / "d")
    _rewrite(folder, score=score)
    with pytest.raises(ManifestError, match=r"outside the data set's score_range \[1.0, 5.0\]|non-finite"):
        read_dataset(folder, check_files=False)
    for edge in ("1", "5.0"):              # the bounds themselves are valid
        _rewrite(folder, score=edge)
        read_dataset(folder)


def test_writing_a_score_outside_the_range_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"x")
    with pytest.raises(ManifestError, match="score 7.0, outside"):
        write_dataset(folder, [Sample(image="a.png", score=7.0, ref_id="r", split="test")], META)


def test_utf8_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Excel and Notepad save CSV with a BOM: the first column must still be 'image', not '\\ufeffimage'."""
    folder = _good(tmp_path / "d")
    text = (folder / "manifest.csv").read_text(encoding="utf-8")
    (folder / "manifest.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    meta_text = (folder / "dataset.json").read_text(encoding="utf-8")
    (folder / "dataset.json").write_bytes(b"\xef\xbb\xbf" + meta_text.encode("utf-8"))
    rows, _ = read_dataset(folder)
    assert len(rows) == 2


def test_non_ascii_paths_survive(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "bild_ä.png").write_bytes(b"x")
    write_dataset(folder, [Sample(image="bild_ä.png", score=3.0, ref_id="r", split="test")], META)
    assert read_dataset(folder)[0][0].image == "bild_ä.png"


@pytest.mark.parametrize("name,content", [
    ("manifest.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfa"),          # binary
    ("manifest.csv", b"image,reference,score,ref_id,split,distortion,level\n" + b"a\x00b,,1,r,test,,0\n"),
    ("dataset.json", b"\xff\xfe{\x00"),                                         # UTF-16, not UTF-8
    ("dataset.json", b"[1, 2]"),
    ("dataset.json", b'{"name": "t", "task": "fr-iqa", "score_name": "s", "score_range": [1, 2, 3], '
                     b'"higher_is_better": true, "source": "x"}'),
])
def test_undecodable_or_malformed_files_are_reported_by_name(tmp_path: Path, name: str, content: bytes) -> None:
    folder = _good(tmp_path / "d")
    (folder / name).write_bytes(content)
    with pytest.raises(ManifestError) as info:
        read_dataset(folder)
    assert str(folder / name) in str(info.value)


def test_extra_fields_in_a_row_are_refused(tmp_path: Path) -> None:
    folder = _good(tmp_path / "d")
    with (folder / "manifest.csv").open("a", newline="") as fh:
        fh.write("images/a.png,,2,r9,test,,0,surplus\n")
    with pytest.raises(ManifestError, match="line 4 is malformed: it has more than 7 fields"):
        read_dataset(folder)


def test_empty_image_path_is_refused(tmp_path: Path) -> None:
    folder = _good(tmp_path / "d")
    _rewrite(folder, image="")
    with pytest.raises(ManifestError, match="empty image path"):
        read_dataset(folder, check_files=False)
    assert json.loads((folder / "dataset.json").read_text())["n_samples"] == 2
