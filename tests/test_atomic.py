"""Atomic writes: complete or absent, and leftovers of killed attempts are cleaned."""
from __future__ import annotations

import pytest

from robustbook.atomic import atomic_dir, atomic_path, write_json


def test_atomic_path_keeps_old_content_on_failure(tmp_path):
    target = tmp_path / "a.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text().strip().startswith("{") and '"v": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_dir_leaves_nothing_on_failure_and_cleans_stale(tmp_path):
    target = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "x").write_text("1")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    stale = tmp_path / ".run.abc123.partial"   # as a SIGKILLed process would leave it
    stale.mkdir()
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (target / "x").read_text() == "2"
