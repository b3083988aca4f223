"""Hostile archives and data roots for the data scripts (issue 10, items 4 and 7).

* Trust on first use records only good files: an HTML page, an empty file or a
  truncated archive where an archive belongs is refused, its SHA-256 is never
  recorded, and the good archive placed afterwards is accepted (and recorded).
* A data root that cannot be created gives one plain message naming it and exit
  status 2, not a traceback.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from robustbook.data.download import (
    ArchiveError,
    ChecksumMismatch,
    DownloadError,
    download,
    file_sha256,
    read_sidecar,
    sidecar_path,
    verify_file,
)
from robustbook.data.manifest import read_dataset
from tests.data_script_loading import SCRIPTS, no_download
from tests.test_data_scripts import kadid, make_kadid

HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please log in</body></html>\n"


def _bad_bytes(kind: str, good: bytes) -> bytes:
    return {"html": HTML, "empty": b"", "truncated": good[: len(good) // 2], "junk": b"PK\x03\x04" + b"\x00" * 64}[kind]


@pytest.mark.parametrize("kind,error,match", [
    ("html", ChecksumMismatch, "is an HTML page, not the expected file"),
    ("empty", ChecksumMismatch, r"is empty \(0 bytes\)"),
    ("truncated", ArchiveError, "corrupt, truncated or not an archive"),
    ("junk", ArchiveError, "corrupt, truncated or not an archive"),
])
def test_bad_archive_is_not_trusted_and_good_one_is_accepted(tmp_path: Path, kind: str, error: type,
                                                             match: str) -> None:
    good = make_kadid(tmp_path / "good").read_bytes()
    arc = tmp_path / "archives" / "kadid10k.zip"
    arc.parent.mkdir()
    arc.write_bytes(_bad_bytes(kind, good))
    for _ in range(2):                       # the same refusal on every run: nothing was learnt from the bad file
        with pytest.raises(error, match=match):
            kadid.prepare(data_root=tmp_path, download_fn=no_download)
        assert read_sidecar(arc) is None and not sidecar_path(arc).exists()
    arc.write_bytes(good)                    # the user places the real archive
    out = kadid.prepare(data_root=tmp_path, download_fn=no_download)
    assert read_sidecar(arc) == file_sha256(arc)                       # recorded once it proved good
    assert read_dataset(out)[1].extra["archives"]["kadid10k.zip"] == file_sha256(arc)


def test_recorded_archive_still_guards_against_a_different_one(tmp_path: Path) -> None:
    """The fix must not switch trust on first use off: after a good build, other bytes are refused."""
    arc = make_kadid(tmp_path / "archives")
    kadid.prepare(data_root=tmp_path, download_fn=no_download)
    recorded = read_sidecar(arc)
    assert recorded == file_sha256(arc)
    arc.write_bytes(arc.read_bytes() + b"\0")   # a different version (still a valid zip)
    with pytest.raises(ChecksumMismatch, match="recorded in .* on first use"):
        kadid.prepare(data_root=tmp_path, download_fn=no_download, force=True)
    assert read_sidecar(arc) == recorded


def test_downloaded_truncated_archive_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the real download() (file:// URL): a truncated archive downloads, fails extraction, leaves no record."""
    mirror = tmp_path / "mirror"
    good = make_kadid(mirror).read_bytes()
    (mirror / "kadid10k.zip").write_bytes(good[: len(good) // 3])
    monkeypatch.setattr(kadid, "ARCHIVE", kadid.ARCHIVE.__class__("kadid10k.zip", (mirror / "kadid10k.zip").as_uri()))
    arc = tmp_path / "root" / "archives" / "kadid10k.zip"
    with pytest.raises(ArchiveError, match="corrupt"):
        kadid.prepare(data_root=tmp_path / "root")
    assert arc.is_file() and read_sidecar(arc) is None
    arc.unlink()                                             # as the message says: delete it and download again
    (mirror / "kadid10k.zip").write_bytes(good)
    kadid.prepare(data_root=tmp_path / "root")
    assert read_sidecar(arc) == file_sha256(arc)


def test_download_refuses_empty_and_html_and_record_false_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"")
    with pytest.raises(DownloadError, match="empty file"):
        download(src.as_uri(), tmp_path / "a.zip", progress=False)
    assert not (tmp_path / "a.zip").exists() and not sidecar_path(tmp_path / "a.zip").exists()
    src.write_bytes(b"payload")
    download(src.as_uri(), tmp_path / "b.zip", progress=False, record=False)
    assert (tmp_path / "b.zip").read_bytes() == b"payload" and read_sidecar(tmp_path / "b.zip") is None
    download(src.as_uri(), tmp_path / "c.zip", progress=False)            # the default still records
    assert read_sidecar(tmp_path / "c.zip") == file_sha256(src)
    placed = tmp_path / "placed.zip"
    placed.write_bytes(HTML)
    with pytest.raises(ChecksumMismatch, match="HTML page"):
        verify_file(placed)
    assert read_sidecar(placed) is None


def test_html_file_in_place_is_replaced_by_download(tmp_path: Path) -> None:
    """download() finding an HTML page at dest deletes it and downloads the real file."""
    src = tmp_path / "src.bin"
    src.write_bytes(b"PK real bytes")
    dest = tmp_path / "d.zip"
    dest.write_bytes(HTML)
    download(src.as_uri(), dest, progress=False)
    assert dest.read_bytes() == b"PK real bytes" and read_sidecar(dest) == file_sha256(src)


# ------------------------------------------------------------------ data root that cannot be used

def test_data_root_below_a_file_exits_2_with_the_path(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    root = afile / "root"
    assert kadid.main(["--data-root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot create or write the data root") and str(root) in err
    assert "--data-root" in err and "Traceback" not in err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("script", ["kadid10k", "mnist"])
def test_unwritable_env_data_root_exits_2_without_traceback(script: str) -> None:
    """The command of the issue: ROBUSTBOOK_DATA=/proc/x python data_scripts/<script>.py."""
    env = {**os.environ, "ROBUSTBOOK_DATA": "/proc/x",
           "PYTHONPATH": os.pathsep.join([str(SCRIPTS.parent / "lib"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(SCRIPTS / f"{script}.py")], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "/proc/x" in proc.stderr and "ROBUSTBOOK_DATA" in proc.stderr


def test_unwritable_archive_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert kadid.main(["--data-root", str(tmp_path / "root"), "--archive-dir", str(afile / "arch")]) == 2
    err = capsys.readouterr().err
    assert "archive folder" in err and str(afile / "arch") in err and "--archive-dir" in err


def test_complete_data_set_on_read_only_root_is_still_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only building needs a writable root: a complete data set is returned without any write test."""
    make_kadid(tmp_path / "archives")
    out = kadid.prepare(data_root=tmp_path, download_fn=no_download)
    common = sys.modules["_common"]

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("a complete data set must not need a writable data root")

    monkeypatch.setattr(common, "ensure_writable_dir", refuse)
    assert kadid.prepare(data_root=tmp_path, download_fn=no_download) == out


@pytest.mark.parametrize("args,match", [(["--seed", "-1"], "outside 0 .. 4294967295"),
                                        (["--seed", "x"], "not a whole number")])
def test_bad_seed_is_an_argparse_error(tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str],
                                       match: str) -> None:
    with pytest.raises(SystemExit) as info:
        kadid.main(["--data-root", str(tmp_path), *args])
    assert info.value.code == 2 and match in capsys.readouterr().err


@pytest.mark.parametrize("content,match", [
    (b"dist_img,ref_img,dmos,var\n\xff\xfe\x00garbage\n", "is not UTF-8 text"),
    (b"dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,3.0,0.1,surplus\n", "line 2 has more fields"),
])
def test_hostile_label_file_is_a_label_error(tmp_path: Path, content: bytes, match: str) -> None:
    from tests.test_data_scripts import LabelFileError

    common = sys.modules["_common"]
    (tmp_path / "dmos.csv").write_bytes(content)
    with pytest.raises(LabelFileError, match=match):
        common.read_label_csv(tmp_path / "dmos.csv", ("dist_img", "ref_img", "dmos"))
