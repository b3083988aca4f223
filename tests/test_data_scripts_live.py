"""Tests of data_scripts/live.py (LIVE release 2) and data_scripts/livec.py (LIVE In the Wild) on tiny archives.

Each test builds a fake archive in the official layout (a handful of tiny BMP
images, the .mat label files written with ``scipy.io.savemat`` with the official
variable names and shapes), places it in the archive folder and runs
``prepare``; the download function fails the test if it is called.
"""
from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from robustbook.data.download import ArchiveError, read_sidecar
from robustbook.data.manifest import read_dataset
from robustbook.data.tensors import ManifestDataset
from tests.data_script_loading import SCRIPTS
from tests.data_script_loading import load_script as _load
from tests.data_script_loading import no_download as _no_download

live = _load("live")
livec = _load("livec")
LabelFileError = sys.modules["_common"].LabelFileError




def _bmp(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (6, 5), (seed * 37 % 256, seed * 91 % 256, 128)).save(buf, format="BMP")
    return buf.getvalue()


def _mat_bytes(**arrays: object) -> bytes:
    buf = io.BytesIO()
    savemat(buf, arrays)
    return buf.getvalue()


def _cell(names: list[str]) -> np.ndarray:
    """A MATLAB cell array of strings, as loadmat returns it (object array of 1-element string arrays)."""
    c = np.empty((1, len(names)), dtype=object)
    for i, n in enumerate(names):
        c[0, i] = np.array([n])
    return c


# ------------------------------------------------------------------ LIVE release 2

LIVE_REFS = ["bikes.bmp", "buildings.bmp", "caps.bmp", "coinsinfountain.bmp", "parrots.bmp"]


def _live_table() -> list[tuple[str, str, str, float, int]]:
    """(folder, image, refname, dmos, orgs) for all 982 entries, in the official order."""
    rows = []
    i = 0
    for dist, count in live.DISTORTIONS:
        for k in range(1, count + 1):
            ref = LIVE_REFS[i % len(LIVE_REFS)]
            org = 1 if k % 9 == 0 else 0       # some hidden references, as in the real release
            dmos = 0.0 if org else round(10 + (i * 7.3) % 95, 3)
            if i == 5:
                dmos = -2.5                     # unrealigned DMOS slightly below 0 occurs
            rows.append((dist, f"{dist}/img{k}.bmp", ref, dmos, org))
            i += 1
    return rows


def _zipcrypto(path: Path, members: dict[str, bytes], password: bytes) -> None:
    """Write a stored zip encrypted with legacy ZipCrypto (PKWARE APPNOTE 6.1), which zipfile can read but not write."""
    import struct
    import zlib

    table = [0] * 256
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table[i] = c

    def crc(v: int, b: int) -> int:
        return (v >> 8) ^ table[(v ^ b) & 0xFF]

    def encrypt(data: bytes) -> bytes:
        k = [0x12345678, 0x23456789, 0x34567890]

        def update(b: int) -> None:
            k[0] = crc(k[0], b)
            k[1] = ((k[1] + (k[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
            k[2] = crc(k[2], k[1] >> 24)

        for b in password:
            update(b)
        out = bytearray()
        for b in data:
            t = (k[2] | 2) & 0xFFFF
            out.append(b ^ (((t * (t ^ 1)) >> 8) & 0xFF))
            update(b)
        return bytes(out)

    blob, central = bytearray(), bytearray()
    for name, data in members.items():
        c32 = zlib.crc32(data) & 0xFFFFFFFF
        payload = encrypt(bytes(range(11)) + bytes([c32 >> 24]) + data)
        raw = name.encode()
        offset = len(blob)
        blob += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 1, 0, 0, 0x21, c32, len(payload), len(data), len(raw), 0)
        blob += raw + payload
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 1, 0, 0, 0x21, c32, len(payload), len(data),
                               len(raw), 0, 0, 0, 0, 0, offset) + raw
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(blob), 0)
    path.write_bytes(bytes(blob + central + eocd))


def make_live(archives: Path, *, top: str = "databaserelease2/", drop: str | None = None,
              bad_count: bool = False, realigned: bool = True, password: bytes | None = None) -> Path:
    """databaserelease2.zip as published: refimgs/, five distortion folders, dmos.mat, refnames_all.mat."""
    archives.mkdir(parents=True, exist_ok=True)
    rows = _live_table()
    dmos = np.array([[r[3] for r in rows]])
    orgs = np.array([[r[4] for r in rows]], dtype=float)
    if bad_count:
        dmos, orgs = dmos[:, :-1], orgs[:, :-1]
    members: dict[str, bytes] = {}
    for j, ref in enumerate(LIVE_REFS):
        members[f"{top}refimgs/{ref}"] = _bmp(j)
    for n, (_, image, _, _, _) in enumerate(rows):
        members[f"{top}{image}"] = _bmp(n)
    for dist, _ in live.DISTORTIONS:
        members[f"{top}{dist}/info.txt"] = b"refname distname parameter\n"
    members[f"{top}dmos.mat"] = _mat_bytes(dmos=dmos, orgs=orgs)
    members[f"{top}refnames_all.mat"] = _mat_bytes(refnames_all=_cell([r[2] for r in rows]))
    if realigned:
        members[f"{top}dmos_realigned.mat"] = _mat_bytes(dmos_new=np.clip(dmos, 0, 100) + 1.0, orgs=orgs,
                                                         dmos_std=np.ones_like(dmos))
    if drop:
        members.pop(f"{top}{drop}")
    arc = archives / "databaserelease2.zip"
    if password is not None:
        _zipcrypto(arc, members, password)
        return arc
    with zipfile.ZipFile(arc, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return arc


def test_live_prepare(tmp_path: Path) -> None:
    make_live(tmp_path / "archives")
    out = live.prepare(data_root=tmp_path, seed=2, download_fn=_no_download)
    assert out == tmp_path / "live"
    samples, meta = read_dataset(out)
    rows = _live_table()
    kept = [r for r in rows if not r[4]]
    assert len(samples) == len(kept) and len(rows) == 982
    by_image = {s.image: s for s in samples}
    for dist, image, ref, dmos, org in rows:
        if org:
            assert image not in by_image            # hidden references are left out
            continue
        s = by_image[image]
        assert (s.reference, s.ref_id, s.distortion, s.level) == (f"refimgs/{ref}", Path(ref).stem, dist, -1)
        assert s.score == pytest.approx(dmos)
    assert (meta.task, meta.score_name, meta.higher_is_better) == ("fr-iqa", "DMOS", False)
    assert meta.score_range == (-3.0, 105.0) or meta.score_range[0] <= -2.5
    assert meta.score_range[1] >= 100
    seen: dict[str, str] = {}
    for s in samples:
        assert seen.setdefault(s.ref_id, s.split) == s.split
    assert sorted({s.split for s in samples}) == ["test", "train", "val"]
    zip_path = tmp_path / "archives" / "databaserelease2.zip"
    assert meta.extra["archives"]["databaserelease2.zip"] == read_sidecar(zip_path)
    # the data layer maps DMOS (lower = better) into [0, 1] with 1 = best
    ds = ManifestDataset(out, "train")
    ys = [ds.normalise(s.score) for s in ds.samples]
    assert 0.0 <= min(ys) and max(ys) <= 1.0
    best = min(ds.samples, key=lambda s: s.score)
    assert ds.normalise(best.score) == pytest.approx(max(ys))
    (ref_img, img), y = ds[0]
    assert ref_img.shape == img.shape == (3, 5, 6) and 0.0 <= float(y) <= 1.0


def test_live_realigned_and_flat_layout(tmp_path: Path) -> None:
    make_live(tmp_path / "archives", top="")
    out = live.prepare(data_root=tmp_path, download_fn=_no_download, realigned=True)
    samples, meta = read_dataset(out)
    rows = {r[1]: r for r in _live_table()}
    s = samples[10]
    assert s.score == pytest.approx(min(max(rows[s.image][3], 0), 100) + 1.0)
    assert meta.extra["realigned"] is True and "realigned" in meta.notes


def test_live_second_run_does_not_rebuild(tmp_path: Path) -> None:
    make_live(tmp_path / "archives")
    out = live.prepare(data_root=tmp_path, download_fn=_no_download)
    ino = out.stat().st_ino
    (tmp_path / "archives" / "databaserelease2.zip").unlink()
    assert live.prepare(data_root=tmp_path, download_fn=_no_download) == out and out.stat().st_ino == ino


def test_live_from_extracted_folder(tmp_path: Path) -> None:
    arc = make_live(tmp_path / "zips")
    with zipfile.ZipFile(arc) as zf:
        zf.extractall(tmp_path / "unzipped")
    out = live.prepare(data_root=tmp_path / "root", download_fn=_no_download,
                       extracted=tmp_path / "unzipped" / "databaserelease2")
    assert len(read_dataset(out)[0]) == sum(1 for r in _live_table() if not r[4])
    assert (tmp_path / "unzipped" / "databaserelease2" / "dmos.mat").is_file()   # the source is left alone


@pytest.mark.parametrize("breakage,error,match", [
    ("corrupt", ArchiveError, "databaserelease2.zip.*download it again"),
    ("no-folder", ArchiveError, "no folder gblur/"),
    ("missing-image", LabelFileError, "jpeg/img3.bmp"),
    ("bad-count", LabelFileError, "expected 982"),
    ("no-refnames", LabelFileError, "refnames_all.mat is missing"),
    ("encrypted", ArchiveError, "password protected"),
])
def test_live_errors_leave_nothing(tmp_path: Path, breakage: str, error: type, match: str) -> None:
    archives = tmp_path / "archives"
    if breakage == "corrupt":
        arc = make_live(archives)
        arc.write_bytes(arc.read_bytes()[: arc.stat().st_size // 2])
    elif breakage == "no-folder":
        arc = make_live(archives)
        with zipfile.ZipFile(arc) as zf:
            keep = {n: zf.read(n) for n in zf.namelist() if "/gblur/" not in n}
        with zipfile.ZipFile(arc, "w") as zf:
            for n, d in keep.items():
                zf.writestr(n, d)
    elif breakage == "missing-image":
        make_live(archives, drop="jpeg/img3.bmp")
    elif breakage == "bad-count":
        make_live(archives, bad_count=True)
    elif breakage == "no-refnames":
        make_live(archives, drop="refnames_all.mat")
    else:
        make_live(archives, password=b"secret")
    with pytest.raises(error, match=match):
        live.prepare(data_root=tmp_path, download_fn=_no_download)
    assert not (tmp_path / "live").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".live")] == []


def test_live_encrypted_archive_with_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arc = make_live(tmp_path / "archives", password=b"s3cret")
    with zipfile.ZipFile(arc) as zf:                          # the fixture really is encrypted
        assert all(i.flag_bits & 1 for i in zf.infolist())
        assert zf.read("databaserelease2/dmos.mat", pwd=b"s3cret")[:6] == b"MATLAB"
    with pytest.raises(ArchiveError, match="Check the password"):
        live.prepare(data_root=tmp_path, download_fn=_no_download, password="wrong")
    assert not (tmp_path / "live").exists()
    monkeypatch.setenv(live.PASSWORD_ENV, "s3cret")
    samples, _ = read_dataset(live.prepare(data_root=tmp_path, download_fn=_no_download))
    assert len(samples) == sum(1 for r in _live_table() if not r[4])


def test_live_download_fn_gets_official_url(tmp_path: Path) -> None:
    src = make_live(tmp_path / "elsewhere")
    calls: list[tuple[str, Path]] = []

    def fake(url: str, dest: Path, **kw: object) -> Path:
        calls.append((url, dest))
        dest.write_bytes(src.read_bytes())
        return dest

    live.prepare(data_root=tmp_path / "root", download_fn=fake)
    assert calls == [(live.ARCHIVE.url, tmp_path / "root" / "archives" / "databaserelease2.zip")]


# ------------------------------------------------------------------ LIVE In the Wild (LIVEC)

def _livec_names(n: int) -> list[str]:
    return [f"t{i}.bmp" for i in range(1, 8)] + [f"{100 + i}.{'JPG' if i % 4 == 0 else 'bmp'}" for i in range(n - 7)]


def _livec_mos(i: int) -> float:
    return round(3.5 + (i * 13.7) % 89, 4)


def make_livec(archives: Path, *, n: int = 27, top: str = "ChallengeDB_release/", drop: str | None = None,
               mos_key: str = "AllMOS_release", mos_high: bool = False) -> Path:
    """ChallengeDB_release.zip as published: Data/*.mat, Images/ and Images/trainingImages/ (t1..t7)."""
    archives.mkdir(parents=True, exist_ok=True)
    names = _livec_names(n)
    mos = np.array([[_livec_mos(i) for i in range(n)]])
    if mos_high:
        mos[0, 9] = 140.0
    members: dict[str, bytes] = {
        f"{top}Data/AllImages_release.mat": _mat_bytes(AllImages_release=_cell(names).T),   # 1169 x 1 cell
        f"{top}Data/{'AllMOS_release.mat'}": _mat_bytes(**{mos_key: mos}),
        f"{top}Data/AllStdDev_release.mat": _mat_bytes(AllStdDev_release=np.ones_like(mos)),
    }
    for i, name in enumerate(names):
        folder = "Images/trainingImages/" if i < 7 else "Images/"
        members[f"{top}{folder}{name}"] = _bmp(i)
    if drop:
        members.pop(f"{top}{drop}")
    arc = archives / "ChallengeDB_release.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return arc


def test_livec_prepare_drops_training_images(tmp_path: Path) -> None:
    make_livec(tmp_path / "archives", n=27)
    out = livec.prepare(data_root=tmp_path, seed=1, download_fn=_no_download)
    samples, meta = read_dataset(out)
    names = _livec_names(27)
    assert len(samples) == 20
    assert not any(s.ref_id.startswith("t") for s in samples)
    by_id = {s.ref_id: s for s in samples}
    for i, name in enumerate(names[7:], start=7):
        s = by_id[name]
        assert s.image == f"Images/{name}" and s.reference == "" and s.score == pytest.approx(_livec_mos(i))
        assert (s.distortion, s.level) == ("", -1)
    assert sorted(s.split for s in samples).count("train") == 12
    assert (meta.task, meta.score_name, meta.score_range, meta.higher_is_better) == ("nr-iqa", "MOS", (0, 100), True)
    assert meta.extra["training_images_excluded"] is True and "left out" in meta.notes
    assert (out / "Data" / "AllMOS_release.mat").is_file()
    x = ManifestDataset(out, "test")[0]
    assert x[0].shape == (3, 5, 6) and 0 <= float(x[1]) <= 1


def test_livec_include_training_images(tmp_path: Path) -> None:
    make_livec(tmp_path / "archives", n=27, top="")
    out = livec.prepare(data_root=tmp_path, download_fn=_no_download, include_training_images=True)
    samples, meta = read_dataset(out)
    assert len(samples) == 27
    s = next(s for s in samples if s.ref_id == "t3.bmp")
    assert s.image == "Images/trainingImages/t3.bmp" and s.score == pytest.approx(_livec_mos(2))
    assert meta.extra["training_images_excluded"] is False


def test_livec_from_extracted_folder(tmp_path: Path) -> None:
    arc = make_livec(tmp_path / "zips")
    with zipfile.ZipFile(arc) as zf:
        zf.extractall(tmp_path / "unzipped")
    out = livec.prepare(data_root=tmp_path / "root", download_fn=_no_download,
                        extracted=tmp_path / "unzipped" / "ChallengeDB_release")
    assert len(read_dataset(out)[0]) == 20


@pytest.mark.parametrize("breakage,error,match", [
    ("corrupt", ArchiveError, "ChallengeDB_release.zip.*download it again"),
    ("missing-image", LabelFileError, "Images/105.bmp"),
    ("wrong-key", LabelFileError, "no variable 'AllMOS_release'"),
    ("score-range", LabelFileError, "outside the published range"),
    ("no-mos", ArchiveError, "no file 'AllMOS_release.mat'"),
])
def test_livec_errors_leave_nothing(tmp_path: Path, breakage: str, error: type, match: str) -> None:
    archives = tmp_path / "archives"
    if breakage == "corrupt":
        arc = make_livec(archives)
        arc.write_bytes(arc.read_bytes()[: arc.stat().st_size // 2])
    elif breakage == "missing-image":
        make_livec(archives, drop="Images/105.bmp")
    elif breakage == "wrong-key":
        make_livec(archives, mos_key="MOS")
    elif breakage == "score-range":
        make_livec(archives, mos_high=True)
    else:
        make_livec(archives, drop="Data/AllMOS_release.mat")
    with pytest.raises(error, match=match):
        livec.prepare(data_root=tmp_path, download_fn=_no_download)
    assert not (tmp_path / "livec").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".livec")] == []


def test_scripts_run_as_commands(tmp_path: Path) -> None:
    """``python data_scripts/live.py`` finds _common and robustbook; an error exits 1 without a traceback."""
    for script, arc_name in (("live.py", "databaserelease2.zip"), ("livec.py", "ChallengeDB_release.zip")):
        (tmp_path / "archives").mkdir(exist_ok=True)
        (tmp_path / "archives" / arc_name).write_bytes(b"not a zip")
        res = subprocess.run([sys.executable, str(SCRIPTS / script), "--data-root", str(tmp_path)],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
        assert "corrupt" in res.stderr or "no file" in res.stderr


def test_cli_help(capsys: pytest.CaptureFixture) -> None:
    for mod, extra in ((live, "--realigned"), (livec, "--include-training-images")):
        with pytest.raises(SystemExit) as ex:
            mod.main(["--help"])
        assert ex.value.code == 0
        out = capsys.readouterr().out
        assert all(opt in out for opt in ("--data-root", "--archive-dir", "--seed", "--force", "--extracted", extra))


def test_registry_names_the_scripts(tmp_path: Path) -> None:
    from robustbook.data.registry import REGISTRY, prepare

    assert REGISTRY["live"].task == "fr-iqa" and (SCRIPTS / REGISTRY["live"].script).is_file()
    assert REGISTRY["livec"].task == "nr-iqa" and (SCRIPTS / REGISTRY["livec"].script).is_file()
    with pytest.raises(FileNotFoundError, match=r"data_scripts/livec.py"):
        prepare("livec", root=tmp_path)
    make_livec(tmp_path / "archives")
    livec.prepare(data_root=tmp_path, download_fn=_no_download)
    assert prepare("livec", root=tmp_path) == tmp_path / "livec"
