"""Checkpoints of a fit: what ``last.pt`` holds, the RNG state in it, and loading it back safely.

A checkpoint is written atomically after every epoch and read with
``torch.load(weights_only=True)`` only, so no code in it is ever executed. A
truncated or garbled file raises :class:`~robustbook.safeload.CorruptCheckpointError`
naming the file, never a bare torch traceback.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from robustbook.atomic import atomic_path
from robustbook.safeload import CorruptCheckpointError, load_checkpoint_file
from robustbook.seeding import rng_state, set_rng_state
from robustbook.train.distributed import _distributed_active, _unwrap
from robustbook.train.history import History

__all__ = ["CHECKPOINT_NAME", "HISTORY_NAME", "CorruptCheckpointError", "load_weights"]

CHECKPOINT_NAME = "last.pt"
HISTORY_NAME = "history.json"
_FORMAT = 1


def _storable_rng(state: dict) -> dict[str, Any]:
    """:func:`rng_state` as tensors and primitives, loadable with ``torch.load(weights_only=True)``."""
    version, internal, gauss = state["python"]
    name, keys, pos, has_gauss, cached = state["numpy"]
    out: dict[str, Any] = {
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss": None if gauss is None else float(gauss)},
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": state["torch"].clone(),
    }
    if "cuda" in state:
        out["cuda"] = [s.clone() for s in state["cuda"]]
    return out


def _restore_rng(stored: dict[str, Any]) -> None:
    """Inverse of :func:`_storable_rng`, then :func:`set_rng_state`."""
    py, npy = stored["python"], stored["numpy"]
    state: dict[str, Any] = {
        "python": (py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]),
        "numpy": (npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                  npy["cached"]),
        "torch": stored["torch"],
    }
    if "cuda" in stored:
        state["cuda"] = stored["cuda"]
    set_rng_state(state)


def _normalise_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict of JSON-like values, got {type(config).__name__}")
    try:
        return json.loads(json.dumps(dict(config), sort_keys=True))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"config must hold only JSON-like values (str, int, float, bool, None, lists, dicts): {exc}"
                        ) from None


def _config_diff(stored: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    lines = []
    for key in sorted(set(stored) | set(given)):
        a, b = stored.get(key, "<absent>"), given.get(key, "<absent>")
        if a != b:
            lines.append(f"  {key}: checkpoint {a!r} vs given {b!r}")
    return lines


#: What :func:`_save_checkpoint` writes and resuming reads.
_REQUIRED = ("format", "epoch", "model", "optimizer", "history", "rng")


def _resume_remedy(path: Path) -> str:
    return f"Delete {path} to start the run afresh from epoch 0 (or use another checkpoint_dir)"


def _load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint fit resumes from; :class:`CorruptCheckpointError` naming ``path`` when it is unusable."""
    remedy = _resume_remedy(path)
    ckpt = load_checkpoint_file(path, remedy=remedy)
    if not isinstance(ckpt, dict) or ckpt.get("format") != _FORMAT:
        raise CorruptCheckpointError(path, f"it is not a robustbook.train checkpoint (format {_FORMAT})", remedy)
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CorruptCheckpointError(path, f"it lacks the entries {missing}", remedy)
    return ckpt


def load_weights(path: str | os.PathLike, model: nn.Module, *, strict: bool = True) -> nn.Module:
    """Load the model weights of a :func:`fit` checkpoint (or a bare state dict) into ``model``.

    Uses ``torch.load(weights_only=True)``, so no code in the file is executed.
    Returns ``model``. A missing file raises :class:`FileNotFoundError`; a
    truncated, garbled or non-PyTorch file raises :class:`CorruptCheckpointError`
    (a ``ValueError``) naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    remedy = "Delete it and train again to write a new one (fit starts afresh when its last.pt is missing)"
    obj = load_checkpoint_file(path, remedy=remedy)
    if isinstance(obj, dict) and obj.get("format") == _FORMAT and "model" in obj:
        obj = obj["model"]
    if not isinstance(obj, Mapping):
        raise CorruptCheckpointError(path, "it holds neither a robustbook checkpoint nor a state dict "
                                           f"(got {type(obj).__name__})", remedy)
    _unwrap(model).load_state_dict(obj, strict=strict)
    return model


def _gather_rng() -> list[dict[str, Any]]:
    """Every process's RNG state, indexed by rank."""
    mine = _storable_rng(rng_state())
    if not _distributed_active():
        return [mine]
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, mine)
    return parts


def _save_checkpoint(path: Path, *, model: nn.Module, opt: torch.optim.Optimizer, sched: Any,
                     scaler: torch.amp.GradScaler | None, epoch: int, history: History, rngs: list,
                     seed: int, config: dict[str, Any], ws: int) -> None:
    state = {
        "format": _FORMAT,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict() if sched is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "history": [dict(r) for r in history.epochs],
        "rng": rngs,
        "seed": seed,
        "config": config,
        "world_size": ws,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
