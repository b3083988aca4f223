"""robustbook.cache: trained weights are reused for the same key and code, recomputed otherwise."""
from __future__ import annotations

import json
import re
import shutil
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
    assert all((package / entry).exists() for entry in cache.CODE_MODULES)


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of the robustbook sources to edit (the fingerprint of the copy equals the real one)."""
    src = Path(cache.__file__).resolve().parent
    dst = tmp_path / "robustbook"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    assert cache.code_fingerprint(dst) == cache.code_fingerprint()
    return dst


# what determines trained weights: models, losses, attacks, the training loop and the data generators
WEIGHT_SOURCES = ["models/stnorm.py", "losses/steady_state.py", "attacks/fgsm.py", "autograd.py",
                  "train/loop.py", "train/epoch.py", "train/loaders.py",
                  "data/procedural.py", "data/bundled.py", "data/digits.py", "data/distortions.py",
                  "data/tensors.py", "data/classification.py"]
# plumbing that cannot change a weight
PLUMBING = ["train/distributed.py", "train/checkpoint.py", "train/history.py", "train/__init__.py",
            "safeload.py", "atomic.py", "data/download.py", "data/registry.py", "data/root.py", "plotting.py"]


@pytest.mark.parametrize("source", WEIGHT_SOURCES)
def test_changing_a_source_of_the_weights_changes_the_key(package_copy: Path, source: str) -> None:
    before = cache.code_fingerprint(package_copy)
    with open(package_copy / source, "a") as f:
        f.write("\n# an edit\n")
    assert cache.code_fingerprint(package_copy) != before


@pytest.mark.parametrize("source", PLUMBING)
def test_changing_plumbing_keeps_the_key(package_copy: Path, source: str) -> None:
    assert (package_copy / source).is_file()
    before = cache.code_fingerprint(package_copy)
    with open(package_copy / source, "a") as f:
        f.write("\n# an edit\n")
    assert cache.code_fingerprint(package_copy) == before


def test_a_missing_code_module_is_an_error_not_a_smaller_key(package_copy: Path) -> None:
    (package_copy / "data" / "digits.py").unlink()
    with pytest.raises(FileNotFoundError, match="data/digits.py"):
        cache.code_fingerprint(package_copy)


def test_corrupt_entry_is_recomputed_with_a_warning_naming_it(tmp_path: Path) -> None:
    calls: list = []
    cache.cached_state("m", {"a": 1}, _trainer(calls, 1.0), folder=tmp_path)
    (entry,) = tmp_path.glob("m-*.pt")
    entry.write_bytes(b"not a checkpoint")
    with pytest.warns(RuntimeWarning, match=re.escape(str(entry))) as record:
        state, hit = cache.cached_state("m", {"a": 1}, _trainer(calls, 5.0), folder=tmp_path)
    assert not hit and calls == [1.0, 5.0] and torch.equal(state["w"], torch.full((2,), 5.0))
    assert "weights_only=False" not in str(record[0].message)
    _, hit = cache.cached_state("m", {"a": 1}, _trainer(calls, 6.0), folder=tmp_path)
    assert hit and calls == [1.0, 5.0]
