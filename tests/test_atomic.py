"""Atomic writes: complete or absent, and leftovers of killed attempts are cleaned."""
from __future__ import annotations

import pytest

from robustbook.atomic import atomic_dir, atomic_path, write_json


def test_atomic_path_keeps_old_content_on_failure(tmp_path):
    target = tmp_path / "a.json"
    write_json(target, {"v": 1})

    def killed_mid_write():
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        killed_mid_write()
    assert target.read_text().strip().startswith("{") and '"v": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_dir_leaves_nothing_on_failure_and_cleans_stale(tmp_path):
    target = tmp_path / "run"

    def killed_mid_write():
        with atomic_dir(target) as tmp:
            (tmp / "x").write_text("1")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        killed_mid_write()
    assert list(tmp_path.iterdir()) == []
    stale = tmp_path / ".run.abc123.partial"   # as a SIGKILLed process would leave it
    stale.mkdir()
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (target / "x").read_text() == "2"


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_removes_only_leftovers_of_dead_processes(tmp_path):
    import os

    from robustbook.atomic import _host, is_stale

    host = _host()
    live = tmp_path / f".run.{os.getpid()}@{host}.abc123.partial"       # a concurrent writer (alive)
    dead = tmp_path / f".run.{_dead_pid()}@{host}.def456.partial"       # a killed writer
    remote = tmp_path / f".run.1@{host}x-elsewhere.ghi789.partial"        # another host: cannot tell
    sibling = tmp_path / f".run.x.{_dead_pid()}@{host}.jkl012.partial"  # belongs to target "run.x"
    for p in (live, dead, remote, sibling):
        p.mkdir()
    assert not is_stale(live.name, "run", ".partial") and is_stale(dead.name, "run", ".partial")
    with atomic_dir(tmp_path / "run") as tmp:
        assert tmp.name.startswith(f".run.{os.getpid()}@{host}.")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, remote.name, sibling.name, "run"])
    stale_file = tmp_path / f".a.json.{_dead_pid()}@{host}.xyz.tmp"
    live_file = tmp_path / f".a.json.{os.getpid()}@{host}.xyz.tmp"
    stale_file.write_text("")
    live_file.write_text("")
    write_json(tmp_path / "a.json", {})
    assert not stale_file.exists() and live_file.exists()


def test_atomic_dir_replaces_an_existing_folder_or_link(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "old").write_text("1")
    with atomic_dir(target) as tmp:
        (tmp / "new").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("3")
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    with atomic_dir(link) as tmp:
        (tmp / "new").write_text("4")
    assert not link.is_symlink() and (link / "new").is_file() and (elsewhere / "keep").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "link", "run"]


@pytest.mark.parametrize("mask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                     (0o002, 0o664, 0o775)])
def test_written_files_get_the_umask_permissions(tmp_path, mask, file_mode, dir_mode):
    import os
    import stat

    old = os.umask(mask)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
        with atomic_path(tmp_path / "w.pt") as tmp:
            tmp.write_bytes(b"x")
        with atomic_dir(tmp_path / "run") as tmp:
            (tmp / "metrics.json").write_text("{}")
            (tmp / "sub").mkdir()
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "m.json") == mode(tmp_path / "w.pt") == file_mode
    assert mode(tmp_path / "run") == mode(tmp_path / "run" / "sub") == dir_mode
    assert mode(tmp_path / "run" / "metrics.json") == file_mode


def test_atomic_path_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    import stat

    target = tmp_path / "secret.json"
    write_json(target, {"v": 1})
    target.chmod(0o600)
    write_json(target, {"v": 2})
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and '"v": 2' in target.read_text()


def test_file_lock_excludes_a_second_holder(tmp_path):
    from robustbook.atomic import file_lock

    with file_lock(tmp_path / "data") as first:
        assert first
        with file_lock(tmp_path / "data", blocking=False) as second:
            assert not second
    with file_lock(tmp_path / "data", blocking=False) as again:
        assert again
    assert list(tmp_path.iterdir()) == []  # the lock file goes with its holder


def test_two_preparations_of_one_data_set_build_it_once(tmp_path, monkeypatch):
    """Two chapters of a parallel book build asking for the same bundled set at once."""
    import threading
    import time

    from robustbook.atomic import file_lock
    from robustbook.data import bundled

    builds = []
    real = bundled._build_bundled_iqa

    def counting(*args, **kw):
        builds.append(threading.get_ident())
        return real(*args, **kw)

    monkeypatch.setattr(bundled, "_build_bundled_iqa", counting)
    folder = tmp_path / "bundled-iqa-c16-n1-s0-crop"
    results = []
    with file_lock(folder):  # hold the lock until both preparations are waiting for it
        threads = [threading.Thread(target=lambda: results.append(
            bundled.bundled_iqa(crop=16, per_photo=1, root=tmp_path))) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.5)  # not a timing assertion: only gives both threads the chance to reach the lock
    for t in threads:
        t.join()
    assert results == [folder, folder] and len(builds) == 1
