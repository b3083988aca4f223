"""Tests of robustbook.data.download: resumable verified downloads and safe atomic extraction.

Downloads are served by a loopback-only HTTP server in a thread (or file:// URLs);
nothing leaves the machine.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import os
import socket
import stat
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from robustbook.data.download import (
    ArchiveError,
    ChecksumMismatch,
    DownloadError,
    NetworkUnavailable,
    UnsafeArchiveError,
    archive_members,
    download,
    extract,
    file_sha256,
    read_sidecar,
    sidecar_path,
)

PAYLOAD = bytes(range(256)) * 1000 + b"tail"   # 256,004 bytes, not HTML
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


class _Server:
    """A loopback HTTP server: ``files`` maps paths to (body, content type); records every request."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.honour_range = True
        self.cut_after: int | None = None    # send only this many bytes of the next answer, then hang up
        self.requests: list[dict[str, str | None]] = []
        self.bytes_sent = 0
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                srv.requests.append({"path": self.path, "range": self.headers.get("Range")})
                if self.path not in srv.files:
                    self.send_error(404)
                    return
                body, ctype = srv.files[self.path]
                rng = self.headers.get("Range")
                start = 0
                if rng and srv.honour_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                chunk = body[start:]
                if srv.cut_after is not None:
                    chunk, srv.cut_after = chunk[:srv.cut_after], None
                    self.close_connection = True
                srv.bytes_sent += len(chunk)  # counted before writing: the client may finish first
                self.wfile.write(chunk)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    s.files["/data.zip"] = (PAYLOAD, "application/zip")
    yield s
    s.close()


# ------------------------------------------------------------------ download

def test_fresh_download_verifies_and_renames(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "data.zip"
    assert download(server.url("/data.zip"), dest, sha256=SHA, size=len(PAYLOAD), progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "sub" / "data.zip.part").exists()
    assert not sidecar_path(dest).exists()          # an official checksum needs no record
    assert server.requests[0]["range"] is None


def test_resume_uses_range_and_appends(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.zip"
    half = len(PAYLOAD) // 2
    (tmp_path / "data.zip.part").write_bytes(PAYLOAD[:half])
    download(server.url("/data.zip"), dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1]["range"] == f"bytes={half}-"
    assert server.bytes_sent == len(PAYLOAD) - half
    assert not (tmp_path / "data.zip.part").exists()


def test_broken_connection_keeps_part_and_resumes(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.zip"
    server.cut_after = 100_000
    with pytest.raises(NetworkUnavailable, match="network interrupted") as err:
        download(server.url("/data.zip"), dest, sha256=SHA, progress=False)
    assert str(dest) in str(err.value) and not dest.exists()
    assert (tmp_path / "data.zip.part").stat().st_size == 100_000
    download(server.url("/data.zip"), dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1]["range"] == "bytes=100000-"


def test_server_ignoring_range_restarts_cleanly(server: _Server, tmp_path: Path) -> None:
    server.honour_range = False
    dest = tmp_path / "data.zip"
    (tmp_path / "data.zip.part").write_bytes(PAYLOAD[:1000])
    download(server.url("/data.zip"), dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD   # not the first 1000 bytes twice


def test_part_longer_than_file_restarts(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.zip"
    (tmp_path / "data.zip.part").write_bytes(PAYLOAD + b"junk")
    download(server.url("/data.zip"), dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert [r["range"] for r in server.requests] == [f"bytes={len(PAYLOAD) + 4}-", None]


def test_checksum_mismatch_deletes_and_names_both(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.zip"
    wrong = "0" * 64
    with pytest.raises(ChecksumMismatch) as err:
        download(server.url("/data.zip"), dest, sha256=wrong, progress=False)
    assert wrong in str(err.value) and SHA in str(err.value)
    assert not dest.exists() and not (tmp_path / "data.zip.part").exists()


def test_size_mismatch_is_refused(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(ChecksumMismatch, match="expected 5"):
        download(server.url("/data.zip"), tmp_path / "data.zip", size=5, progress=False)


@pytest.mark.parametrize("ctype,body", [("text/html; charset=utf-8", b"<p>please log in</p>"),
                                        ("application/octet-stream", b"\n  <!DOCTYPE html><html>login</html>"),
                                        ("application/zip", b"<html><body>redirect</body></html>")])
def test_html_page_is_refused(server: _Server, tmp_path: Path, ctype: str, body: bytes) -> None:
    server.files["/login.zip"] = (body, ctype)
    dest = tmp_path / "login.zip"
    with pytest.raises(DownloadError, match="got an HTML page, probably a login/redirect page"):
        download(server.url("/login.zip"), dest, progress=False)
    assert not dest.exists() and not (tmp_path / "login.zip.part").exists()
    assert not sidecar_path(dest).exists()


def test_existing_verified_file_is_not_downloaded(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.zip"
    dest.write_bytes(PAYLOAD)
    download(server.url("/data.zip"), dest, sha256=SHA, progress=False)
    assert server.requests == []


def test_trust_on_first_use(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.zip"
    download(server.url("/data.zip"), dest, progress=False)
    assert read_sidecar(dest) == SHA
    assert sidecar_path(dest).read_text() == f"{SHA}  data.zip\n"
    n = len(server.requests)
    download(server.url("/data.zip"), dest, progress=False)        # verified against the record
    assert len(server.requests) == n
    dest.write_bytes(b"corrupted locally")                         # broken: fetched again, checked on record
    download(server.url("/data.zip"), dest, progress=False)
    assert dest.read_bytes() == PAYLOAD and len(server.requests) == n + 1
    server.files["/data.zip"] = (PAYLOAD[::-1], "application/zip")  # the server's file changed
    dest.write_bytes(b"corrupted again")
    with pytest.raises(ChecksumMismatch, match="recorded in .*on first use"):
        download(server.url("/data.zip"), dest, progress=False)
    assert not dest.exists()


def test_http_error_is_not_network_unavailable(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404") as err:
        download(server.url("/missing.zip"), tmp_path / "m.zip", progress=False)
    assert not isinstance(err.value, NetworkUnavailable)
    assert str(tmp_path / "m.zip") in str(err.value)


def test_no_network_names_url_and_manual_path(tmp_path: Path) -> None:
    url = "http://nonexistent.invalid/x.zip"
    dest = tmp_path / "archives" / "x.zip"
    with pytest.raises(NetworkUnavailable) as err:
        download(url, dest, progress=False, timeout=5)
    msg = str(err.value)
    assert msg.startswith("no network") and url in msg and str(dest) in msg
    assert isinstance(err.value, RuntimeError)
    assert not dest.exists()


def test_refused_connection_is_network_unavailable(tmp_path: Path) -> None:
    with socket.socket() as s:             # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NetworkUnavailable, match="no network"):
        download(f"http://127.0.0.1:{port}/x.zip", tmp_path / "x.zip", progress=False, timeout=5)


def test_file_url(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "copy.bin"
    download(src.as_uri(), dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    with pytest.raises(DownloadError) as err:
        download((tmp_path / "absent.bin").as_uri(), tmp_path / "absent_copy.bin", progress=False)
    assert not isinstance(err.value, NetworkUnavailable)


def test_file_sha256(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(PAYLOAD)
    assert file_sha256(p) == SHA
    p.write_bytes(b"")
    assert file_sha256(p) == hashlib.sha256(b"").hexdigest()


# ------------------------------------------------------------------ extraction

FILES = {"set/a.txt": b"alpha", "set/sub/b.bin": bytes(range(50)), "top.txt": b"top"}


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, files: dict[str, bytes], mode: str = "w:gz", extra: list[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info)
    return path


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize("maker", ["zip", "w:gz", "w:bz2", "w:xz", "w"])
def test_extract_formats(tmp_path: Path, maker: str) -> None:
    arc = _zip(tmp_path / "a.zip", FILES) if maker == "zip" else _tar(tmp_path / "a.tar", FILES, maker)
    out = extract(arc, tmp_path / "out")
    assert _tree(out) == FILES
    assert sorted(archive_members(arc)) == sorted(FILES)


def test_extract_members_prefix_strips(tmp_path: Path) -> None:
    arc = _zip(tmp_path / "a.zip", FILES)
    out = extract(arc, tmp_path / "out", members_prefix="set/")
    assert _tree(out) == {"a.txt": b"alpha", "sub/b.bin": bytes(range(50))}
    with pytest.raises(ArchiveError, match="no member below 'nothere/'"):
        extract(arc, tmp_path / "out2", members_prefix="nothere/")
    assert not (tmp_path / "out2").exists()


def test_extract_replaces_existing_folder_only_on_success(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    extract(_zip(tmp_path / "a.zip", FILES), tmp_path / "out")
    assert _tree(tmp_path / "out") == FILES


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.endswith(".partial"))


@pytest.mark.parametrize("name", ["../evil.txt", "ok/../../evil.txt", "/tmp/evil_abs.txt"])
def test_zip_path_traversal_is_refused(tmp_path: Path, name: str) -> None:
    arc = _zip(tmp_path / "bad.zip", {"fine.txt": b"x", name: b"evil"})
    dest = tmp_path / "deep" / "out"
    with pytest.raises(UnsafeArchiveError, match="refusing"):
        extract(arc, dest)
    assert not dest.exists() and _leftovers(dest.parent) == []
    assert not (tmp_path / "deep" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("bad", [
    [_link("escape", "../../outside")],                    # symlink out
    [_link("abs", "/etc/passwd")],                         # absolute symlink
    [_link("hard", "../outside", tarfile.LNKTYPE)],        # hard link out
    [_link("y", "."), _link("z", "y/..")],                 # escape through an inner link
])
def test_tar_links_outside_are_refused(tmp_path: Path, bad: list[tarfile.TarInfo]) -> None:
    arc = _tar(tmp_path / "bad.tar.gz", {"fine.txt": b"x"}, extra=bad)
    with pytest.raises(UnsafeArchiveError):
        extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_zip_symlink_outside_is_refused(tmp_path: Path) -> None:
    arc = tmp_path / "link.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("fine.txt", b"x")
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "../../outside")
    with pytest.raises(UnsafeArchiveError, match="symlink"):
        extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_tar_absolute_and_device_members_are_refused(tmp_path: Path) -> None:
    arc = _tar(tmp_path / "abs.tar", {"/abs/file.txt": b"x"}, "w")
    with pytest.raises(UnsafeArchiveError, match="absolute"):
        extract(arc, tmp_path / "out")
    dev = tarfile.TarInfo("dev/null_copy")
    dev.type = tarfile.CHRTYPE
    dev.devmajor, dev.devminor = 1, 3
    arc = _tar(tmp_path / "dev.tar", {"fine.txt": b"x"}, "w", extra=[dev])
    with pytest.raises(UnsafeArchiveError, match="device"):
        extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_links_inside_are_kept(tmp_path: Path) -> None:
    arc = _tar(tmp_path / "ok.tar", {"d/real.txt": b"real"}, "w",
               extra=[_link("d/alias.txt", "real.txt"), _link("hard.txt", "d/real.txt", tarfile.LNKTYPE)])
    out = extract(arc, tmp_path / "out")
    assert (out / "d" / "alias.txt").read_bytes() == b"real"
    assert (out / "hard.txt").read_bytes() == b"real"


@pytest.mark.parametrize("kind", ["truncated-zip", "garbage", "crc", "truncated-tgz"])
def test_corrupt_archive_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    big = {f"f{i}.bin": os.urandom(20000) for i in range(5)}
    if kind == "truncated-zip":
        arc = _zip(tmp_path / "c.zip", big)
        arc.write_bytes(arc.read_bytes()[:30000])
    elif kind == "garbage":
        arc = tmp_path / "c.zip"
        arc.write_bytes(b"this is not an archive at all" * 10)
    elif kind == "crc":
        arc = tmp_path / "c.zip"
        with zipfile.ZipFile(arc, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("f.bin", b"A" * 5000)
        data = bytearray(arc.read_bytes())
        data[100] ^= 0xFF                     # flip a byte of the stored content
        arc.write_bytes(bytes(data))
    else:
        arc = _tar(tmp_path / "c.tar.gz", big)
        arc.write_bytes(arc.read_bytes()[:50000])
    with pytest.raises(ArchiveError) as err:
        extract(arc, tmp_path / "out")
    msg = str(err.value)
    assert str(arc) in msg and "download it again" in msg and "Delete" in msg
    assert not isinstance(err.value, UnsafeArchiveError)
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []
