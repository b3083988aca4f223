"""Tests of data_scripts/koniq10k.py and data_scripts/kadid10k.py on tiny archives in the official layout.

Each test builds fake archives (a handful of tiny images, the label CSV with the
official header), places them in the archive folder and runs ``prepare``; the
download function fails the test if it is called, unless the test is about
downloading.
"""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from robustbook.data.download import ArchiveError, NetworkUnavailable, read_sidecar
from robustbook.data.manifest import read_dataset
from tests.data_script_loading import SCRIPTS
from tests.data_script_loading import load_script as _load
from tests.data_script_loading import no_download as _no_download

koniq = _load("koniq10k")
kadid = _load("kadid10k")
LabelFileError = sys.modules["_common"].LabelFileError




def _image_bytes(fmt: str, seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (seed * 37 % 256, seed * 91 % 256, 128)).save(buf, format=fmt)
    return buf.getvalue()


def _csv_text(header: list[str], rows: list[list[object]], quote_all: bool = False) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _leftovers(root: Path, name: str) -> list[str]:
    return [p.name for p in root.iterdir() if p.name.startswith(f".{name}")] if root.exists() else []


# ------------------------------------------------------------------ KonIQ-10k

KONIQ_HEADER = ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "MOS_zscore"]
KONIQ_IDS = [826373, 10004473376, 10007357496, 10007903636, 100117038, 10012398043, 10013822223, 10014002683,
             10017119924, 10020766793]


def _koniq_mos(i: int) -> float:
    return round(1.2 + (0.37 * i) % 3.7, 4)


def make_koniq(archives: Path, *, header: list[str] = KONIQ_HEADER, with_sets: bool = False,
               ids: list[int] = KONIQ_IDS) -> None:
    """koniq10k_1024x768.zip (1024x768/<id>.jpg) and koniq10k_scores_and_distributions.zip, as published.

    The official sets file (``with_sets``) puts 60 % of ``ids`` in training, 20 % in validation, 20 % in test."""
    archives.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archives / "koniq10k_1024x768.zip", "w") as zf:
        for i, ident in enumerate(ids):
            zf.writestr(f"1024x768/{ident}.jpg", _image_bytes("JPEG", i))
    rows = [[f"{ident}.jpg", 0, 0.1, 0.5, 0.3, 0.1, 100, _koniq_mos(i), 0.55, 20 + 6 * i][:len(header)]
            for i, ident in enumerate(ids)]
    with zipfile.ZipFile(archives / "koniq10k_scores_and_distributions.zip", "w") as zf:
        zf.writestr("koniq10k_scores_and_distributions.csv", _csv_text(header, rows, quote_all=True))
    if with_sets:
        n_train, n_val = round(0.6 * len(ids)), round(0.2 * len(ids))
        sets = ["training"] * n_train + ["validation"] * n_val + ["test"] * (len(ids) - n_train - n_val)
        (archives / "koniq10k_distributions_sets.csv").write_text(_csv_text(
            ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "set"],
            [[f"{ident}.jpg", 0, 0.1, 0.5, 0.3, 0.1, 100, 55.5, 0.5, s] for ident, s in zip(ids, sets, strict=True)]))


def _check_disjoint(samples: list) -> None:
    seen: dict[str, str] = {}
    for s in samples:
        assert seen.setdefault(s.ref_id, s.split) == s.split


def test_koniq_seeded_split(tmp_path: Path) -> None:
    make_koniq(tmp_path / "archives")
    out = koniq.prepare(data_root=tmp_path, seed=3, download_fn=_no_download, official_split=False)
    assert out == tmp_path / "koniq10k"
    samples, meta = read_dataset(out)
    assert len(samples) == len(KONIQ_IDS)
    by_image = {s.image: s for s in samples}
    for i, ident in enumerate(KONIQ_IDS):
        s = by_image[f"images/{ident}.jpg"]
        assert s.score == pytest.approx(_koniq_mos(i)) and s.reference == "" and s.ref_id == f"{ident}.jpg"
        assert s.distortion == "" and s.level == -1
    assert sorted(s.split for s in samples).count("train") == 6
    assert {s.split for s in samples} == {"train", "val", "test"}
    _check_disjoint(samples)
    assert (meta.task, meta.score_name, meta.score_range, meta.higher_is_better) == ("nr-iqa", "MOS", (1, 5), True)
    assert "seeded" in meta.extra["split"] and meta.extra["seed"] == 3
    assert (out / "koniq10k_scores_and_distributions.csv").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "images", "koniq10k_scores_and_distributions.csv",
                                                     "manifest.csv"]
    # the archives were trusted on first use: their digests are recorded and listed in the metadata
    assert meta.extra["archives"]["koniq10k_1024x768.zip"] == read_sidecar(tmp_path / "archives" /
                                                                           "koniq10k_1024x768.zip")
    # another seed gives another (still disjoint) split; the same seed the same one
    again = koniq.prepare(data_root=tmp_path / "b", archive_dir=tmp_path / "archives", seed=3,
                          download_fn=_no_download, official_split=False)
    assert [s.split for s in read_dataset(again)[0]] == [s.split for s in samples]


def test_koniq_official_split_from_sets_file(tmp_path: Path) -> None:
    make_koniq(tmp_path / "arch", with_sets=True)
    out = koniq.prepare(data_root=tmp_path / "root", archive_dir=tmp_path / "arch", download_fn=_no_download)
    samples, meta = read_dataset(out)
    split_of = {s.ref_id: s.split for s in samples}
    assert [split_of[f"{i}.jpg"] for i in KONIQ_IDS] == ["train"] * 6 + ["val"] * 2 + ["test"] * 2
    assert "official" in meta.extra["split"]
    assert [s.score for s in samples] == pytest.approx([_koniq_mos(i) for i in range(len(KONIQ_IDS))])  # not 55.5


def test_koniq_falls_back_to_seeded_split_offline(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_koniq(tmp_path / "archives")
    asked: list[str] = []

    def offline(url: str, dest: Path, **kw: object) -> Path:
        asked.append(url)
        raise NetworkUnavailable(f"no network: could not reach {url}")

    samples, meta = read_dataset(koniq.prepare(data_root=tmp_path, download_fn=offline))
    assert asked == [koniq.SETS.url]
    assert "seeded" in meta.extra["split"]
    assert "koniq10k_distributions_sets.csv" in capsys.readouterr().err
    _check_disjoint(samples)


def test_koniq_second_run_does_not_rebuild_unless_forced(tmp_path: Path) -> None:
    make_koniq(tmp_path / "archives")
    out = koniq.prepare(data_root=tmp_path, download_fn=_no_download, official_split=False)
    manifest = out / "manifest.csv"
    before = (out.stat().st_ino, manifest.stat().st_mtime_ns)
    (tmp_path / "archives" / "koniq10k_1024x768.zip").unlink()   # a rebuild would fail without the archive
    assert koniq.prepare(data_root=tmp_path, download_fn=_no_download, official_split=False) == out
    assert (out.stat().st_ino, manifest.stat().st_mtime_ns) == before
    make_koniq(tmp_path / "archives")
    (tmp_path / "archives" / "koniq10k_1024x768.zip.sha256").unlink()  # new archive bytes: forget the old record
    koniq.prepare(data_root=tmp_path, download_fn=_no_download, force=True, official_split=False)
    assert out.stat().st_ino != before[0]
    assert len(read_dataset(out)[0]) == len(KONIQ_IDS)


def test_koniq_corrupt_archive_leaves_nothing(tmp_path: Path) -> None:
    make_koniq(tmp_path / "archives")
    arc = tmp_path / "archives" / "koniq10k_1024x768.zip"
    arc.write_bytes(arc.read_bytes()[:200])
    with pytest.raises(ArchiveError, match="koniq10k_1024x768.zip.*download it again"):
        koniq.prepare(data_root=tmp_path, download_fn=_no_download, official_split=False)
    assert not (tmp_path / "koniq10k").exists() and _leftovers(tmp_path, "koniq10k") == []


def test_koniq_label_file_missing_column(tmp_path: Path) -> None:
    make_koniq(tmp_path / "archives", header=[c for c in KONIQ_HEADER if c != "MOS"])
    with pytest.raises(LabelFileError, match=r"lacks the column\(s\) \['MOS'\]"):
        koniq.prepare(data_root=tmp_path, download_fn=_no_download, official_split=False)
    assert not (tmp_path / "koniq10k").exists() and _leftovers(tmp_path, "koniq10k") == []


def test_koniq_wrong_images_archive_layout(tmp_path: Path) -> None:
    make_koniq(tmp_path / "archives")
    with zipfile.ZipFile(tmp_path / "archives" / "koniq10k_1024x768.zip", "w") as zf:
        zf.writestr("512x384/826373.jpg", _image_bytes("JPEG", 0))
    (tmp_path / "archives" / "koniq10k_1024x768.zip.sha256").unlink(missing_ok=True)
    with pytest.raises(ArchiveError, match="no folder '1024x768'"):
        koniq.prepare(data_root=tmp_path, download_fn=_no_download, official_split=False)
    assert not (tmp_path / "koniq10k").exists()


def test_koniq_downloads_missing_archives_through_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real download() on file:// URLs: archives land in <data root>/archives/ and are indexed."""
    make_koniq(tmp_path / "mirror")
    for spec_name in ("IMAGES", "SCORES"):
        spec = getattr(koniq, spec_name)
        monkeypatch.setattr(koniq, spec_name, spec.__class__(spec.filename, (tmp_path / "mirror" / spec.filename)
                                                             .as_uri()))
    out = koniq.prepare(data_root=tmp_path / "root", official_split=False)
    assert (tmp_path / "root" / "archives" / "koniq10k_1024x768.zip").is_file()
    assert read_sidecar(tmp_path / "root" / "archives" / "koniq10k_scores_and_distributions.zip")
    assert len(read_dataset(out)[0]) == len(KONIQ_IDS)


def test_koniq_cli_no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(koniq, "IMAGES", koniq.IMAGES.__class__(koniq.IMAGES.filename,
                                                                "http://nonexistent.invalid/koniq10k_1024x768.zip"))
    code = koniq.main(["--data-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "no network" in err and "Traceback" not in err
    assert str(tmp_path / "archives" / "koniq10k_1024x768.zip") in err   # where to place it by hand
    assert not (tmp_path / "koniq10k").exists()


def test_scripts_run_as_commands(tmp_path: Path) -> None:
    """``python data_scripts/koniq10k.py`` finds _common and robustbook; an error exits 1 without a traceback."""
    make_koniq(tmp_path / "archives")
    arc = tmp_path / "archives" / "koniq10k_1024x768.zip"
    arc.write_bytes(b"not a zip")
    res = subprocess.run([sys.executable, str(SCRIPTS / "koniq10k.py"), "--data-root", str(tmp_path),
                          "--seeded-split"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "Traceback" not in res.stderr and "corrupt" in res.stderr


def test_cli_help(capsys: pytest.CaptureFixture) -> None:
    for mod in (koniq, kadid):
        with pytest.raises(SystemExit) as ex:
            mod.main(["--help"])
        assert ex.value.code == 0
        out = capsys.readouterr().out
        assert all(opt in out for opt in ("--data-root", "--archive-dir", "--seed", "--force"))


# ------------------------------------------------------------------ KADID-10k

KADID_REFS = [f"I{i:02d}" for i in range(1, 6)]
KADID_TYPES = [1, 10, 25]
KADID_LEVELS = [1, 5]


def _kadid_dmos(r: int, t: int, lv: int) -> float:
    return round(4.8 - 0.6 * lv + 0.01 * t + 0.03 * r, 3)


def make_kadid(archives: Path, *, header: tuple[str, ...] = ("dist_img", "ref_img", "dmos", "var"),
               rows: list[list[object]] | None = None) -> Path:
    """kadid10k.zip holding kadid10k/images/*.png and kadid10k/dmos.csv, as published."""
    archives.mkdir(parents=True, exist_ok=True)
    arc = archives / "kadid10k.zip"
    if rows is None:
        rows = [[f"{ref}_{t:02d}_{lv:02d}.png", f"{ref}.png", _kadid_dmos(r, t, lv), 0.4]
                for r, ref in enumerate(KADID_REFS) for t in KADID_TYPES for lv in KADID_LEVELS]
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("kadid10k/", b"")
        for r, ref in enumerate(KADID_REFS):
            zf.writestr(f"kadid10k/images/{ref}.png", _image_bytes("PNG", r))
            for t in KADID_TYPES:
                for lv in KADID_LEVELS:
                    zf.writestr(f"kadid10k/images/{ref}_{t:02d}_{lv:02d}.png", _image_bytes("PNG", r + t + lv))
        zf.writestr("kadid10k/dmos.csv", _csv_text(list(header), [row[:len(header)] for row in rows]))
    return arc


def test_kadid_prepare(tmp_path: Path) -> None:
    make_kadid(tmp_path / "archives")
    out = kadid.prepare(data_root=tmp_path, seed=1, download_fn=_no_download)
    samples, meta = read_dataset(out)
    assert len(samples) == len(KADID_REFS) * len(KADID_TYPES) * len(KADID_LEVELS)
    s = next(s for s in samples if s.image == "images/I03_10_05.png")
    assert (s.reference, s.ref_id, s.distortion, s.level) == ("images/I03.png", "I03", "10", 5)
    assert s.score == pytest.approx(_kadid_dmos(2, 10, 5))
    assert {x.distortion for x in samples} == {"01", "10", "25"} and {x.level for x in samples} == {1, 5}
    _check_disjoint(samples)
    refs_per_split = {sp: {x.ref_id for x in samples if x.split == sp} for sp in ("train", "val", "test")}
    assert [len(v) for v in refs_per_split.values()] == [3, 1, 1]
    assert (meta.task, meta.score_name, meta.score_range, meta.higher_is_better) == ("fr-iqa", "DMOS", (1, 5), True)
    assert meta.extra["distortion_names"]["01"] == "gaussian_blur"
    assert meta.extra["distortion_names"]["25"] == "contrast_change"
    assert len(kadid.DISTORTION_NAMES) == 25
    assert json.loads((out / "dataset.json").read_text())["splits"]["train"] == 3 * 6
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "dmos.csv", "images", "manifest.csv"]
    other = kadid.prepare(data_root=tmp_path / "b", archive_dir=tmp_path / "archives", seed=2,
                          download_fn=_no_download)
    assert {x.ref_id: x.split for x in read_dataset(other)[0]} != {x.ref_id: x.split for x in samples}


def test_kadid_second_run_does_not_rebuild(tmp_path: Path) -> None:
    make_kadid(tmp_path / "archives")
    out = kadid.prepare(data_root=tmp_path, download_fn=_no_download)
    ino = out.stat().st_ino
    (tmp_path / "archives" / "kadid10k.zip").unlink()
    assert kadid.prepare(data_root=tmp_path, download_fn=_no_download) == out and out.stat().st_ino == ino


@pytest.mark.parametrize("breakage,error,match", [
    ("corrupt", ArchiveError, "kadid10k.zip.*download it again"),
    ("no-dmos-column", LabelFileError, r"lacks the column\(s\) \['dmos'\]"),
    ("bad-name", LabelFileError, "not like I01_01_01.png"),
    ("missing-image", LabelFileError, "I09_01_01.png"),
    ("score-range", LabelFileError, "outside the published range"),
])
def test_kadid_errors_leave_nothing(tmp_path: Path, breakage: str, error: type, match: str) -> None:
    archives = tmp_path / "archives"
    if breakage == "corrupt":
        arc = make_kadid(archives)
        arc.write_bytes(arc.read_bytes()[: arc.stat().st_size // 2])
    elif breakage == "no-dmos-column":
        make_kadid(archives, header=("dist_img", "ref_img", "var"))
    else:
        row = {"bad-name": ["I01-01-01.png", "I01.png", 3.0, 0.1],
               "missing-image": ["I09_01_01.png", "I09.png", 3.0, 0.1],
               "score-range": ["I01_01_01.png", "I01.png", 73.0, 0.1]}[breakage]
        make_kadid(archives, rows=[row])
    with pytest.raises(error, match=match):
        kadid.prepare(data_root=tmp_path, download_fn=_no_download)
    assert not (tmp_path / "kadid10k").exists() and _leftovers(tmp_path, "kadid10k") == []


def test_kadid_cli_no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture) -> None:
    def offline(url: str, dest: Path, **kw: object) -> Path:
        raise NetworkUnavailable(f"no network: could not reach {url}. Place the file at {dest}")

    monkeypatch.setattr(kadid, "download", offline)
    assert kadid.main(["--data-root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("downloading") and "no network" in err and "Traceback" not in err
    assert str(tmp_path / "archives" / "kadid10k.zip") in err
    assert not (tmp_path / "kadid10k").exists()


def test_download_fn_gets_official_url_and_archive_path(tmp_path: Path) -> None:
    calls: list[tuple[str, Path]] = []
    src = make_kadid(tmp_path / "elsewhere")

    def fake(url: str, dest: Path, **kw: object) -> Path:
        calls.append((url, dest))
        dest.write_bytes(src.read_bytes())
        return dest

    kadid.prepare(data_root=tmp_path / "root", download_fn=fake)
    assert calls == [(kadid.ARCHIVE.url, tmp_path / "root" / "archives" / "kadid10k.zip")]
    assert kadid.ARCHIVE.url == "https://datasets.vqa.mmsp-kn.de/archives/kadid10k.zip"
