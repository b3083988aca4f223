"""What the audit needs before any attack runs: the model (with its weights) and the data, checked.

A model is named by ``--model``:

* ``package.module:factory`` — a callable importable from ``sys.path`` (the current folder first);
* ``path/to/file.py:factory`` — a callable defined in a Python file;
* a book model by name (:data:`BOOK_MODELS`, e.g. ``small-iqa``, ``stnorm-tiny``, ``birqa``).

The factory returns an ``nn.Module`` mapping images ``(N, 3, H, W)`` in [0, 1] to one score per image
(``(N,)`` or ``(N, 1)``); a full-reference model is called ``model(ref, dist)``. Weights are read with
``torch.load(weights_only=True)``. Every problem (module not importable, factory missing or not a
model, weights that do not fit, outputs of the wrong shape or NaN) is an :class:`AuditInputError`
(the CLI's exit status 2) that says what was wrong and what is valid.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustbook.params import ParameterError

__all__ = ["AuditInputError", "BookModel", "BOOK_MODELS", "AuditData", "load_model", "load_weights",
           "load_audit_data", "check_model", "resolve_factory"]


class AuditInputError(ParameterError):
    """Bad input to the audit, found before any attack runs (exit status 2 on the command line)."""


# --------------------------------------------------------------------------- the book's own models
@dataclasses.dataclass(frozen=True)
class BookModel:
    """A model of the book that ``--model NAME`` builds (random weights unless ``--weights`` is given)."""

    name: str
    factory: Callable[..., nn.Module]
    full_reference: bool
    description: str
    higher_is_better: bool = True
    bpda: Callable[[nn.Module], ContextManager] | None = None


def _small_iqa(**kw: Any) -> nn.Module:
    from robustbook.models import SmallIQANet

    return SmallIQANet(**kw)


def _resnet_tiny(**kw: Any) -> nn.Module:
    from robustbook.models import resnet_iqa

    return resnet_iqa("tiny", **kw)


def _stnorm_tiny(**kw: Any) -> nn.Module:
    from robustbook.models import resnet_iqa

    return resnet_iqa("tiny", norm="stnorm", **kw)


def _lwta_tiny(**kw: Any) -> nn.Module:
    from robustbook.models import resnet_iqa

    return resnet_iqa("tiny", activation="lwta", **kw)


def _nr(name: str) -> Callable[..., nn.Module]:
    def make(**kw: Any) -> nn.Module:
        from robustbook.models import nr_iqa_model

        return nr_iqa_model(name, **kw)

    return make


def _birqa(**kw: Any) -> nn.Module:
    from robustbook.models import BiRQA

    return BiRQA(**kw)


def _lpips_like(**kw: Any) -> nn.Module:
    from robustbook.models import LPIPSLike

    return LPIPSLike(**kw)


def _stnorm_bpda(model: nn.Module) -> ContextManager:
    from robustbook.models import bpda_soft_threshold

    return bpda_soft_threshold(model)


_stnorm_bpda.__name__ = "bpda_soft_threshold"


def _lbp_bpda(model: nn.Module) -> ContextManager:
    from robustbook.models.birqa import lbp_surrogate

    return lbp_surrogate(model)


_lbp_bpda.__name__ = "lbp_surrogate"

BOOK_MODELS: dict[str, BookModel] = {m.name: m for m in [
    BookModel("small-iqa", _small_iqa, False, "chapter 0's SmallIQANet (kwargs: width, depth)"),
    BookModel("resnet-tiny", _resnet_tiny, False, "ST Norm chapter's TinyResNet IQA regressor with BatchNorm"),
    BookModel("stnorm-tiny", _stnorm_tiny, False, "TinyResNet with ST Norm (BPDA: straight-through soft threshold)",
              bpda=_stnorm_bpda),
    BookModel("lwta-tiny", _lwta_tiny, False, "TinyResNet with stochastic LWTA activations (randomised: EOT)"),
    BookModel("linearity", _nr("linearity"), False, "RobustBlock chapter's Linearity structure on StagedNet"),
    BookModel("dbcnn", _nr("dbcnn"), False, "RobustBlock chapter's DBCNN structure on StagedNet"),
    BookModel("tres", _nr("tres"), False, "RobustBlock chapter's TReS structure on StagedNet"),
    BookModel("birqa", _birqa, True, "BiRQA full-reference model (BPDA: sigmoid LBP surrogate)", bpda=_lbp_bpda),
    BookModel("lpips-like", _lpips_like, True, "LPIPS-structured full-reference baseline (random-init AlexNet)"),
]}


# --------------------------------------------------------------------------- user models
def _import_file(path: Path) -> Any:
    name = f"_robustbook_audit_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AuditInputError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise AuditInputError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def resolve_factory(spec: str) -> tuple[Callable[..., Any], str]:
    """``(factory, label)`` for ``module.path:factory`` or ``file.py:factory``."""
    if ":" not in spec:
        raise AuditInputError(
            f"--model {spec!r} is neither a book model ({', '.join(BOOK_MODELS)}) nor of the form "
            "'package.module:factory' or 'path/to/file.py:factory'")
    where, _, attr = spec.rpartition(":")
    if not where or not attr:
        raise AuditInputError(f"--model {spec!r}: give both parts, 'module_or_file.py:factory'")
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = Path(where).expanduser()
        if not path.is_file():
            raise AuditInputError(f"--model {spec!r}: the file {path} does not exist")
        module = _import_file(path.resolve())
        label = path.stem
    else:
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise AuditInputError(f"--model {spec!r}: cannot import module {where!r} ({exc}); is it on "
                                  "PYTHONPATH, or did you mean a file path ending in .py?") from exc
        except Exception as exc:
            raise AuditInputError(f"--model {spec!r}: importing {where!r} failed: {type(exc).__name__}: {exc}") from exc
        label = where.rsplit(".", 1)[-1]
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            found = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                           and getattr(v, "__module__", None) == module.__name__)
            raise AuditInputError(f"--model {spec!r}: {where} has no {attr!r}; callables defined there: "
                                  f"{found or 'none'}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise AuditInputError(f"--model {spec!r}: {attr!r} is a {type(obj).__name__}, not a callable factory")
    return obj, f"{label}.{attr}"


def load_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Load a ``state_dict`` (or a dict holding one under ``state_dict``/``state``/``model``) into ``model``."""
    from robustbook.safeload import CorruptCheckpointError, load_checkpoint_file

    path = Path(path).expanduser()
    if not path.is_file():
        raise AuditInputError(f"--weights {path}: no such file")
    try:
        obj = load_checkpoint_file(path, remedy="Give a file written by torch.save(model.state_dict(), path).")
    except CorruptCheckpointError as exc:
        raise AuditInputError(str(exc)) from exc
    except Exception as exc:  # weights_only refuses pickled objects
        raise AuditInputError(f"--weights {path} cannot be read with torch.load(weights_only=True): {exc}. "
                              "Save plain tensors: torch.save(model.state_dict(), path)") from exc
    if isinstance(obj, dict):
        for k in ("state_dict", "state", "model"):
            if isinstance(obj.get(k), dict):
                obj = obj[k]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise AuditInputError(f"--weights {path} holds a {type(obj).__name__}, not a state_dict (names -> tensors); "
                              "save it with torch.save(model.state_dict(), path)")
    own = model.state_dict()
    missing = sorted(set(own) - set(obj))
    unexpected = sorted(set(obj) - set(own))
    shapes = [f"{k}: file {tuple(obj[k].shape)} vs model {tuple(own[k].shape)}" for k in own
              if k in obj and obj[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing in the file: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"not in the model: {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if shapes:
            parts.append(f"other shapes: {shapes[:3]}{' ...' if len(shapes) > 3 else ''}")
        raise AuditInputError(f"--weights {path} do not fit the model ({'; '.join(parts)}). Build the model with "
                              "the settings it was trained with (--model-kwargs) or give its own weights")
    model.load_state_dict(obj)


def load_model(spec: str, *, weights: str | os.PathLike | None = None, kwargs: dict | None = None
               ) -> tuple[nn.Module, dict[str, Any]]:
    """Build the model named by ``spec`` and load ``weights``; returns ``(model, info)``.

    ``info`` holds ``label``, ``full_reference`` / ``higher_is_better`` / ``bpda`` for book models
    (``None`` for user models: the caller says), and ``book_model``.
    """
    kwargs = dict(kwargs or {})
    book = BOOK_MODELS.get(spec)
    if book is not None:
        factory, label = book.factory, book.name
    else:
        factory, label = resolve_factory(spec)
    try:
        model = factory(**kwargs)
    except TypeError as exc:
        sig = ""
        with __import__("contextlib").suppress(TypeError, ValueError):
            sig = str(inspect.signature(factory))
        raise AuditInputError(f"--model {spec!r}: calling the factory with {kwargs or 'no arguments'} failed: {exc}"
                              + (f"; its signature is {sig}" if sig else "")) from exc
    except Exception as exc:
        raise AuditInputError(f"--model {spec!r}: the factory raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise AuditInputError(f"--model {spec!r}: the factory returned a {type(model).__name__}, not a torch.nn.Module "
                              "(it must return the model: images in [0, 1] -> one score per image)")
    if weights is not None:
        load_weights(model, weights)
    model.eval()
    info = {"label": label, "book_model": book is not None, "weights": str(weights) if weights else None,
            "kwargs": kwargs,
            "full_reference": book.full_reference if book else None,
            "higher_is_better": book.higher_is_better if book else None,
            "bpda": book.bpda if book else None}
    return model, info


# --------------------------------------------------------------------------- data
@dataclasses.dataclass
class AuditData:
    """Test images and labels (scaled to [0, 1], higher = better), training images for UAP, references
    for full-reference sets (``ref``/``ref_train``; ``None`` for no-reference)."""

    x: torch.Tensor
    y: torch.Tensor
    x_train: torch.Tensor
    ref: torch.Tensor | None = None
    ref_train: torch.Tensor | None = None
    name: str = "custom"
    note: str = ""

    @property
    def full_reference(self) -> bool:
        return self.ref is not None

    def __post_init__(self) -> None:
        for what, t in (("x", self.x), ("x_train", self.x_train)):
            if not isinstance(t, torch.Tensor) or t.dim() != 4 or t.shape[0] == 0:
                raise AuditInputError(f"{what} must be a non-empty image batch (N, C, H, W), got "
                                      f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
            if float(t.min()) < 0 or float(t.max()) > 1:
                raise AuditInputError(f"{what} must hold pixels in [0, 1], got [{float(t.min()):.3g}, "
                                      f"{float(t.max()):.3g}]")
        if not isinstance(self.y, torch.Tensor) or self.y.shape != (self.x.shape[0],):
            raise AuditInputError(f"y must hold one score per test image, shape ({self.x.shape[0]},)")
        if len(self.y) < 3 or float(self.y.max() - self.y.min()) == 0:
            raise AuditInputError("the test set needs at least 3 images with scores that are not all equal "
                                  "(SROCC is undefined otherwise)")
        if self.ref is not None and self.ref.shape != self.x.shape:
            raise AuditInputError(f"ref must have x's shape {tuple(self.x.shape)}, got {tuple(self.ref.shape)}")
        if (self.ref is None) != (self.ref_train is None):
            raise AuditInputError("give references for both the test and the training images, or for neither")

    @classmethod
    def coerce(cls, data: Any) -> AuditData:
        """An :class:`AuditData`, or ``(x, y)`` / ``(x, y, x_train)`` tensors (UAP then learns on ``x``)."""
        if isinstance(data, AuditData):
            return data
        if isinstance(data, (tuple, list)) and len(data) in (2, 3):
            x, y = data[0], data[1]
            return cls(x=x, y=y.to(torch.float32), x_train=data[2] if len(data) == 3 else x)
        raise TypeError("data must be an AuditData or a tuple (x, y[, x_train]) of tensors; for full-reference "
                        "models build AuditData(x=dist, y=y, x_train=..., ref=ref, ref_train=...)")


def _load_rows(folder: Path, split: str, size: int | None, limit: int, seed: int):
    import numpy as np

    from robustbook.data import ManifestDataset

    ds = ManifestDataset(folder, split, size=size)
    idx = np.arange(len(ds))
    if limit and limit < len(ds):
        idx = np.sort(np.random.default_rng(seed).choice(len(ds), size=limit, replace=False))
    items = [ds[int(i)] for i in idx]
    y = torch.stack([it[1] for it in items]).to(torch.float32)
    if isinstance(items[0][0], tuple):
        ref = torch.stack([it[0][0] for it in items])
        x = torch.stack([it[0][1] for it in items])
        return x, y, ref
    return torch.stack([it[0] for it in items]), y, None


def load_audit_data(name: str | None, profile, *, full_reference: bool, size: int | None = None, seed: int = 0
                    ) -> AuditData:
    """The audit's data: ``profile``'s number of test images of data set ``name`` (a registry name;
    ``None``: the bundled offline set of the model's kind) and training images for UAP."""
    from robustbook.audit.suite import get_profile
    from robustbook.data import REGISTRY, prepare, read_dataset

    p = get_profile(profile)
    if name is None:
        name = "bundled-fr-iqa" if full_reference else "bundled-iqa"
    iqa = {k: e for k, e in REGISTRY.items() if e.task in ("nr-iqa", "fr-iqa")}
    if name not in iqa:
        raise AuditInputError(f"--data {name!r} is not an IQA data set of the registry; valid: {sorted(iqa)}")
    entry = iqa[name]
    if full_reference and entry.task != "fr-iqa":
        raise AuditInputError(f"--data {name!r} is a no-reference set but the model is full-reference; valid: "
                              f"{sorted(k for k, e in iqa.items() if e.task == 'fr-iqa')}")
    try:
        if entry.tier == "bundled":
            folder = prepare(name, crop=p.crop, per_photo=p.per_photo, seed=seed)
        else:
            folder = prepare(name)
    except FileNotFoundError as exc:
        raise AuditInputError(str(exc)) from exc
    _, meta = read_dataset(folder, check_files=False)
    size = size if size is not None else (None if entry.tier == "bundled" else p.crop)
    x, y, ref = _load_rows(folder, "test", size, p.n_images, seed)
    x_train, _, ref_train = _load_rows(folder, "train", size, p.n_train, seed)
    if not full_reference:
        ref = ref_train = None  # a no-reference model audited on a full-reference set sees the distorted images
    note = f"{meta.name}: {meta.score_name}, scaled to [0, 1] (higher = better)" + (f". {meta.notes}" if meta.notes
                                                                                    else "")
    return AuditData(x=x, y=y, x_train=x_train, ref=ref, ref_train=ref_train, name=name, note=note)


# --------------------------------------------------------------------------- the model on the data
def check_model(model: nn.Module, data: AuditData, *, n: int = 4) -> None:
    """Run ``model`` on a few test images and refuse what the audit cannot measure, before any attack."""
    k = min(n, len(data.x))
    x = data.x[:k]
    from robustbook.device import model_device

    dev = model_device(model)
    try:
        with torch.no_grad():
            out = model(data.ref[:k].to(dev), x.to(dev)) if data.full_reference else model(x.to(dev))
    except Exception as exc:
        how = "model(ref, dist)" if data.full_reference else "model(images)"
        raise AuditInputError(f"the model failed on {k} test images of shape {tuple(x.shape[1:])} in [0, 1] "
                              f"({how}): {type(exc).__name__}: {exc}") from exc
    if not isinstance(out, torch.Tensor):
        raise AuditInputError(f"the model returned a {type(out).__name__}; it must return a tensor of scores")
    if tuple(out.shape) not in ((k,), (k, 1)):
        raise AuditInputError(f"the model returned shape {tuple(out.shape)} for {k} images; a quality model must "
                              f"return one score per image, shape ({k},) or ({k}, 1)")
    if not bool(torch.isfinite(out).all()):
        raise AuditInputError(f"the model returned {int((~torch.isfinite(out)).sum())} NaN or infinite score(s) on "
                              f"{k} clean test images in [0, 1]; fix the model (or its weights) first")
