"""robustbook.cache: trained weights are reused for the same key and code, recomputed otherwise."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from robustbook import cache


def _trainer(calls: list, value: float):
    def train() -> dict:
        calls.append(value)
        return {"w": torch.full((2,), value)}
    return train


def test_same_key_hits_other_key_misses(tmp_path: Path) -> None:
    calls: list = []
    state, hit = cache.cached_state("m", {"lr": 0.1}, _trainer(calls, 1.0), folder=tmp_path)
    assert not hit and torch.equal(state["w"], torch.ones(2))
    state, hit = cache.cached_state("m", {"lr": 0.1}, _trainer(calls, 2.0), folder=tmp_path)
    assert hit and torch.equal(state["w"], torch.ones(2)) and calls == [1.0]
    _, hit = cache.cached_state("m", {"lr": 0.2}, _trainer(calls, 3.0), folder=tmp_path)
    assert not hit and calls == [1.0, 3.0]
    sidecars = sorted(tmp_path.glob("m-*.json"))
    assert len(sidecars) == 2 and json.loads(sidecars[0].read_text())["_code"] == cache.code_fingerprint()
    assert not list(tmp_path.glob("*.partial*")) and not list(tmp_path.glob(".*"))


def test_changed_library_code_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list = []
    cache.cached_state("m", {"lr": 0.1}, _trainer(calls, 1.0), folder=tmp_path)
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "another-version")
    state, hit = cache.cached_state("m", {"lr": 0.1}, _trainer(calls, 2.0), folder=tmp_path)
    assert not hit and calls == [1.0, 2.0] and torch.equal(state["w"], torch.full((2,), 2.0))


def test_fingerprint_covers_the_model_sources() -> None:
    package = Path(cache.__file__).resolve().parent
    assert (package / "models" / "stnorm.py").is_file() and len(cache.code_fingerprint()) == 16


def test_corrupt_entry_is_recomputed(tmp_path: Path) -> None:
    calls: list = []
    cache.cached_state("m", {"a": 1}, _trainer(calls, 1.0), folder=tmp_path)
    (entry,) = tmp_path.glob("m-*.pt")
    entry.write_bytes(b"not a checkpoint")
    state, hit = cache.cached_state("m", {"a": 1}, _trainer(calls, 5.0), folder=tmp_path)
    assert not hit and calls == [1.0, 5.0] and torch.equal(state["w"], torch.full((2,), 5.0))
