"""Tests of the full-reference data scripts of source 002 (CSIQ, TID2013, PIPAL, PieAPP, BAPPS) on tiny archives.

Each builder writes a small archive laid out like the official one (tiny images, the official
label files' names, columns and formats); ``prepare`` runs on it with a download function that
fails the test if called. LIVE and KADID-10k are tested in test_data_scripts_live.py and
test_data_scripts.py.
"""
from __future__ import annotations

import csv
import io
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustbook.data.download import ArchiveError, DownloadError
from robustbook.data.manifest import read_dataset
from robustbook.data.twoafc import load_2afc, twoafc_score
from tests.data_script_loading import load_script, no_download

csiq = load_script("csiq")
tid = load_script("tid2013")
pipal = load_script("pipal")
pieapp = load_script("pieapp")
bapps = load_script("bapps")
LabelFileError = sys.modules["_common"].LabelFileError


def _img(fmt: str, seed: int, size: tuple[int, int] = (8, 8)) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _xlsx(rows: list[list[object]]) -> bytes:
    """A minimal Excel workbook (inline strings), as the official csiq.DMOS.xlsx is read."""
    def cell(ref: str, v: object) -> str:
        if isinstance(v, str):
            return f'<c r="{ref}" t="inlineStr"><is><t>{v}</t></is></c>'
        return f'<c r="{ref}"><v>{v}</v></c>'

    body = "".join(f'<row r="{i + 1}">' + "".join(cell(f"{chr(65 + j)}{i + 1}", v) for j, v in enumerate(r))
                   + "</row>" for i, r in enumerate(rows))
    sheet = ('<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             f"{body}</sheetData></worksheet>")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("xl/worksheets/sheet1.xml", "<worksheet xmlns=\"http://schemas.openxmlformats.org/"
                    "spreadsheetml/2006/main\"><sheetData><row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>notes"
                    "</t></is></c></row></sheetData></worksheet>")
        zf.writestr("xl/worksheets/sheet2.xml", sheet)
    return buf.getvalue()


# ------------------------------------------------------------------ builders (also used by test_real_data_paths)

CSIQ_REFS = ["1600", "aerial_city", "boston", "bridge", "butter_flower"]
CSIQ_TYPES = [("noise", "awgn", "AWGN"), ("jpeg 2000", "jpeg2000", "jpeg2000"), ("blur", "blur", "BLUR")]


def make_csiq(archives: Path, refs: list[str] = CSIQ_REFS, levels: int = 3, side: int = 8,
              bad_type: bool = False) -> Path:
    rows: list[list[object]] = [["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"]]
    m: dict[str, bytes] = {}
    for r, ref in enumerate(refs):
        m[f"CSIQ/src_imgs/{ref}.png"] = _img("PNG", r, (side, side))
        for t, (kind, folder, token) in enumerate(CSIQ_TYPES):
            for lv in range(1, levels + 1):
                m[f"CSIQ/dst_imgs/{folder}/{ref}.{token}.{lv}.png"] = _img("PNG", 100 + r * 31 + t * 7 + lv,
                                                                          (side, side))
                rows.append([float(ref) if ref.isdigit() else ref, t + 1, "warp" if bad_type else kind, lv, 0.01,
                             round(0.1 * lv + 0.05 * t + 0.01 * r, 4)])
    m["CSIQ/csiq.DMOS.xlsx"] = _xlsx(rows)
    return _zip(archives / "CSIQ.zip", m)


def make_tid2013(archives: Path, n_refs: int = 5, types: tuple[int, ...] = (1, 8, 24), side: int = 8,
                 extra_line: str = "") -> Path:
    m: dict[str, bytes] = {}
    lines = []
    for r in range(1, n_refs + 1):
        m[f"tid2013/reference_images/I{r:02d}.BMP"] = _img("BMP", r, (side, side))
        for t in types:
            for lv in (1, 3, 5):
                name = f"i{r:02d}_{t:02d}_{lv}.bmp" if r != 2 else f"I{r:02d}_{t:02d}_{lv}.BMP"
                m[f"tid2013/distorted_images/{name}"] = _img("BMP", 50 + r * 13 + t + lv, (side, side))
                lines.append(f"{7.0 - lv + 0.01 * t + 0.1 * r:.5f} {name.lower()}")
    m["tid2013/mos_with_names.txt"] = ("\n".join(lines) + "\n" + extra_line).encode()
    return _zip(archives / "tid2013.rar", m)  # a zip repack under the official name is read directly


def make_pipal(archives: Path, n_refs: int = 5, per_ref: int = 6, side: int = 8) -> list[Path]:
    ref_m, dis_m, lab_m = {}, {}, {}
    for r in range(1, n_refs + 1):
        ref_m[f"Train_Ref/A{r:04d}.bmp"] = _img("BMP", r, (side, side))
        lines = []
        for k in range(per_ref):
            name = f"A{r:04d}_{k % 3:02d}_{k:02d}.bmp"
            dis_m[f"Train_Dis/{name}"] = _img("BMP", 70 + r * 11 + k, (side, side))
            lines.append(f"{name},{1100 + 37 * k + 9 * r:.4f}")
        lab_m[f"Train_Label/A{r:04d}.txt"] = "\n".join(lines).encode()
    return [_zip(archives / "Train_Ref.zip", ref_m), _zip(archives / "Train_Dis.zip", dis_m),
            _zip(archives / "Train_Label.zip", lab_m)]


def make_pieapp(archives: Path, side: int = 8) -> Path:
    m: dict[str, bytes] = {}
    head_pair = "ref. image,distorted image A,distorted image B,raw probability of preference for A," \
                "processed probability of preference for A\n"
    for split, refs in (("train", [1, 2]), ("val", [3]), ("test", [4, 5, 6])):
        for n in refs:
            ref = f"ref_{n:04d}"
            m[f"PieAPP/reference_images/{split}/{ref}.png"] = _img("PNG", n, (side, side))
            names = [f"distort_{n:04d}_{kind}_inter_{k}.png" for k, kind in
                     enumerate(["gaussian_noise", "jpeg", "blur", "gaussian_noise"])]
            for k, name in enumerate(names):
                m[f"PieAPP/distorted_images/{split}/{ref}/{name}"] = _img("PNG", 10 * n + k, (side, side))
            pairs = [f"{ref}.png,{names[0]},{names[1]},,0.4", f"{ref}.png,{names[1]},{names[2]},0.7,0.65"]
            if split == "test":
                pairs = [p.rsplit(",", 1)[0] for p in pairs]
                m[f"PieAPP/labels/{split}/{ref}_per_image_score.csv"] = (
                    "ref. image,distorted image,score for distorted image\n" + f"{ref}.png,{ref}.png,0\n"
                    + "".join(f"{ref}.png,{nm},{0.8 * k + 0.1 * n:.3f}\n" for k, nm in enumerate(names))).encode()
                pairs[0] = pairs[0] + "0.4" if pairs[0].endswith(",") else pairs[0]
            m[f"PieAPP/labels/{split}/{ref}_pairwise_labels.csv"] = (head_pair + "\n".join(pairs) + "\n").encode()
    return _zip(archives / pieapp.ARCHIVE.filename, m)


def make_bapps(archives: Path, parts: tuple[str, ...] = ("train", "val"), per_cat: int = 6, side: int = 8) -> None:
    archives.mkdir(parents=True, exist_ok=True)
    cats = {"train": ["traditional", "cnn"], "val": ["traditional", "superres"]}
    for part in parts:
        with tarfile.open(archives / bapps.ARCHIVES[part].filename, "w:gz") as tf:
            def add(name: str, data: bytes) -> None:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            for c, cat in enumerate(cats[part]):
                for i in range(per_cat):
                    base = f"dataset/2afc/{part}/{cat}"
                    for k, kind in enumerate(("ref", "p0", "p1")):
                        add(f"{base}/{kind}/{i:06d}.png", _img("PNG", 1000 * c + 10 * i + k, (side, side)))
                    buf = io.BytesIO()
                    np.save(buf, np.array([((i * 37 + c * 11) % 10) / 9.0], dtype=np.float32))
                    add(f"{base}/judge/{i:06d}.npy", buf.getvalue())


# ------------------------------------------------------------------ tests

def _splits_table(out: Path) -> list[dict[str, str]]:
    with (out / "splits.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_csiq_prepare_reads_the_workbook_and_writes_ten_splits(tmp_path: Path) -> None:
    make_csiq(tmp_path / "archives")
    out = csiq.prepare(data_root=tmp_path, seed=3, download_fn=no_download)
    samples, meta = read_dataset(out)
    assert len(samples) == len(CSIQ_REFS) * 3 * 3
    s = next(x for x in samples if x.image == "dst_imgs/awgn/1600.AWGN.2.png")
    assert (s.reference, s.ref_id, s.distortion, s.level, s.score) == ("src_imgs/1600.png", "1600", "awgn", 2, 0.2)
    assert (meta.task, meta.higher_is_better, meta.score_range) == ("fr-iqa", False, (0.0, 1.0))
    table = _splits_table(out)
    assert len(table) == len(CSIQ_REFS) and list(table[0]) == ["ref_id"] + [f"split_{k}" for k in range(10)]
    assert {r["ref_id"]: r["split_3"] for r in table} == {x.ref_id: x.split for x in samples}
    assert len({tuple(r[f"split_{k}"] for r in table) for k in range(10)}) > 1, "the 10 splits are all equal"


def test_csiq_bad_type_and_manual_download(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="no direct download.*CSIQ.zip"):
        csiq.prepare(data_root=tmp_path, download_fn=no_download)
    make_csiq(tmp_path / "archives", bad_type=True)
    with pytest.raises(LabelFileError, match="dst_type 'warp'"):
        csiq.prepare(data_root=tmp_path, download_fn=no_download)
    assert not (tmp_path / "csiq").exists()


def test_tid2013_prepare_mixed_case_names(tmp_path: Path) -> None:
    make_tid2013(tmp_path / "archives")
    out = tid.prepare(data_root=tmp_path, download_fn=no_download)
    samples, meta = read_dataset(out)
    assert len(samples) == 5 * 3 * 3 and meta.score_range == (0.0, 9.0) and meta.higher_is_better
    s = next(x for x in samples if x.ref_id == "I02" and x.distortion == "24" and x.level == 5)
    assert s.image == "distorted_images/I02_24_5.BMP" and s.reference == "reference_images/I02.BMP"
    assert len(_splits_table(out)) == 5


def test_tid2013_errors(tmp_path: Path) -> None:
    make_tid2013(tmp_path / "archives", extra_line="5.0 i01_25_1.bmp")
    with pytest.raises(LabelFileError, match="type 25"):
        tid.prepare(data_root=tmp_path, download_fn=no_download)
    (tmp_path / "archives" / "tid2013.rar").write_bytes(b"Rar!\x1a\x07\x00broken")
    with pytest.raises(ArchiveError, match="RAR|could not extract"):
        tid.prepare(data_root=tmp_path, download_fn=no_download)
    assert not (tmp_path / "tid2013").exists()


def test_tid2013_extracted_release(tmp_path: Path) -> None:
    arc = make_tid2013(tmp_path / "archives")
    with zipfile.ZipFile(arc) as zf:
        zf.extractall(tmp_path / "unpacked")
    out = tid.prepare(data_root=tmp_path / "root", extracted=tmp_path / "unpacked", download_fn=no_download)
    assert len(read_dataset(out)[0]) == 45 and (tmp_path / "unpacked" / "tid2013" / "mos_with_names.txt").is_file()


def test_pipal_prepare_and_missing_archive(tmp_path: Path) -> None:
    arcs = make_pipal(tmp_path / "archives")
    out = pipal.prepare(data_root=tmp_path, download_fn=no_download)
    samples, meta = read_dataset(out)
    assert len(samples) == 30 and meta.higher_is_better and meta.score_range[0] <= 1109 <= meta.score_range[1]
    assert {s.distortion for s in samples} == {"00", "01", "02"}
    arcs[2].unlink()
    with pytest.raises(DownloadError, match="Train_Label.zip"):
        pipal.prepare(data_root=tmp_path / "b", archive_dir=tmp_path / "archives", download_fn=no_download)


def test_pieapp_official_split_scores_and_pairs(tmp_path: Path) -> None:
    make_pieapp(tmp_path / "archives")
    out = pieapp.prepare(data_root=tmp_path, download_fn=no_download)
    samples, meta = read_dataset(out)
    assert {s.split for s in samples} == {"test"} and len(samples) == 3 * 4 and not meta.higher_is_better
    assert {s.distortion for s in samples} == {"gaussian_noise", "jpeg", "blur"}
    with (out / "pairs.csv").open(newline="") as fh:
        pairs = list(csv.DictReader(fh))
    assert {p["split"] for p in pairs} == {"train", "val", "test"} and len(pairs) == 12
    assert float(next(p for p in pairs if p["split"] == "train")["p_a"]) == 0.4   # processed probability


def test_bapps_prepare_and_2afc_score(tmp_path: Path) -> None:
    make_bapps(tmp_path / "archives")
    out = bapps.prepare(data_root=tmp_path, download_fn=no_download)
    samples, meta = read_dataset(out)
    assert {s.split for s in samples} == {"train", "test"} and len(samples) == 24
    ref, p0, p1, h = load_2afc(out, "test", limit=5)
    assert ref.shape == p0.shape == p1.shape == (5, 3, 8, 8) and h.shape == (5,)
    assert twoafc_score(torch_ones(5), 2 * torch_ones(5), h) == pytest.approx(float(h.mean()))
    assert twoafc_score(torch_ones(5), torch_ones(5), h) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="parts"):
        bapps.prepare(data_root=tmp_path, parts=("test",))


def test_bapps_missing_judge_image(tmp_path: Path) -> None:
    make_bapps(tmp_path / "archives", parts=("val",))
    arc = tmp_path / "archives" / "twoafc_val.tar.gz"
    with tarfile.open(arc) as tf:
        members = [(m, tf.extractfile(m).read()) for m in tf.getmembers() if not m.name.endswith("p1/000002.png")]
    with tarfile.open(arc, "w:gz") as tf:
        for m, data in members:
            tf.addfile(m, io.BytesIO(data))
    with pytest.raises(LabelFileError, match="p1 image"):
        bapps.prepare(data_root=tmp_path, parts=("val",), download_fn=no_download)


def test_fr_scripts_cli_help(capsys: pytest.CaptureFixture) -> None:
    for mod in (csiq, tid, pipal, pieapp, bapps):
        with pytest.raises(SystemExit) as ex:
            mod.main(["--help"])
        assert ex.value.code == 0
        assert "--data-root" in capsys.readouterr().out


def torch_ones(n: int):
    import torch

    return torch.ones(n)


def test_registry_knows_the_fr_sets(tmp_path: Path) -> None:
    from robustbook.data.registry import REGISTRY, prepare
    from tests.data_script_loading import SCRIPTS

    for name in ("csiq", "tid2013", "pipal", "pieapp", "bapps"):
        entry = REGISTRY[name]
        assert entry.task == "fr-iqa" and (SCRIPTS / entry.script).is_file()
        with pytest.raises(FileNotFoundError, match=f"data_scripts/{entry.script}"):
            prepare(name, root=tmp_path)
