"""A truncated, garbled or foreign ``.pt`` file is reported by name, never loaded, never a bare torch traceback.

Resuming (:func:`robustbook.train.fit`) and :func:`robustbook.train.load_weights`
raise :class:`robustbook.train.CorruptCheckpointError` (a ``ValueError``) that
names the file and says that deleting it starts afresh; the weight cache
recomputes the entry with a warning naming it. No message suggests
``weights_only=False``.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.functional import cross_entropy
from torch.utils.data import TensorDataset

from robustbook import cache
from robustbook.train import CorruptCheckpointError, fit, load_weights, make_loader

HTML = b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>\n"


def _truncate(path: Path, model: nn.Module) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garble(path: Path, model: nn.Module) -> None:
    """Flip every 29th byte: the zip structure itself is damaged."""
    data = bytearray(path.read_bytes())
    for i in range(64, len(data) - 64, 29):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _garble_weights(path: Path, model: nn.Module) -> None:
    """Flip bytes inside the stored weight tensor only: the archive is intact, torch.load alone would not notice."""
    data = bytearray(path.read_bytes())
    raw = model.weight.detach().numpy().tobytes()
    at = bytes(data).find(raw)
    assert at >= 0, "the weight tensor is stored uncompressed in the archive"
    for i in range(at, at + 16):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def _html(path: Path, model: nn.Module) -> None:
    path.write_bytes(HTML)


def _empty(path: Path, model: nn.Module) -> None:
    path.write_bytes(b"")


DAMAGES = {"truncated": _truncate, "garbled": _garble, "garbled-weights": _garble_weights, "html": _html,
           "empty": _empty}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(4, 3)


def _fit(checkpoint_dir: Path, epochs: int, model: nn.Module | None = None) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(12, 4, generator=g), torch.randint(0, 3, (12,), generator=g))
    model = model if model is not None else _model()
    fit(model, make_loader(ds, 4, shuffle=True, seed=0), loss_fn=cross_entropy, epochs=epochs, seed=0,
        optimizer=lambda p: torch.optim.SGD(p, lr=0.1), checkpoint_dir=checkpoint_dir, device="cpu",
        progress=False)
    return model


def _check_message(exc: BaseException, path: Path) -> None:
    msg = str(exc)
    assert str(path) in msg and "Delete" in msg
    assert "weights_only" not in msg
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)  # no torch traceback


@pytest.mark.parametrize("damage", DAMAGES)
def test_resuming_from_a_corrupt_checkpoint_names_it(tmp_path: Path, damage: str) -> None:
    model = _fit(tmp_path, epochs=1)
    ckpt = tmp_path / "last.pt"
    DAMAGES[damage](ckpt, model)
    with pytest.raises(CorruptCheckpointError) as info:
        _fit(tmp_path, epochs=2)
    assert isinstance(info.value, ValueError) and info.value.path == ckpt
    _check_message(info.value, ckpt)
    assert "afresh" in str(info.value)
    ckpt.unlink()  # as the message says: deleting it starts afresh
    fresh = _fit(tmp_path, epochs=2)
    assert ckpt.is_file() and torch.equal(fresh.weight, _fit(tmp_path / "again", epochs=2).weight)


@pytest.mark.parametrize("damage", DAMAGES)
def test_load_weights_from_a_corrupt_file_names_it(tmp_path: Path, damage: str) -> None:
    model = _fit(tmp_path, epochs=1)
    ckpt = tmp_path / "last.pt"
    load_weights(ckpt, _model())  # intact: loads
    DAMAGES[damage](ckpt, model)
    with pytest.raises(CorruptCheckpointError) as info:
        load_weights(ckpt, _model())
    _check_message(info.value, ckpt)


def test_load_weights_of_a_foreign_object_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(CorruptCheckpointError, match=re.escape(str(path)) + ".*neither a robustbook checkpoint"):
        load_weights(path, _model())
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_weights(tmp_path / "absent.pt", _model())


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_corrupt_cache_entry_is_recomputed_with_a_warning_naming_it(tmp_path: Path, damage: str) -> None:
    model = _model()
    calls: list[int] = []

    def train() -> dict:
        calls.append(1)
        return {k: v.clone() for k, v in model.state_dict().items()}

    cache.cached_state("lin", {"a": 1}, train, folder=tmp_path)
    (entry,) = tmp_path.glob("lin-*.pt")
    DAMAGES[damage](entry, model)
    with pytest.warns(RuntimeWarning, match=re.escape(str(entry))) as record:
        state, hit = cache.cached_state("lin", {"a": 1}, train, folder=tmp_path)
    assert not hit and len(calls) == 2 and torch.equal(state["weight"], model.weight)
    assert "weights_only" not in str(record[0].message)
    _, hit = cache.cached_state("lin", {"a": 1}, train, folder=tmp_path)
    assert hit and len(calls) == 2
