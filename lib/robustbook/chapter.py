"""The run context a chapter notebook opens in its second cell.

A chapter's first code cell (tagged ``parameters``) assigns ``profile``, ``run_dir``
and one variable per parameter of its ``chapter.yml`` (``None`` = the profile's
value). The second cell calls::

    run = robustbook.chapter.start("attacks", globals())

which validates every name defined so far (so a misspelt ``-p epcohs 3`` injected
by papermill stops the run with "did you mean 'epochs'?"), fills in the
profile's values, seeds everything, applies the book's figure style and opens
the run folder. The notebook then records every number it reports with
``run.log(...)``, saves figures with ``run.savefig(...)`` and ends with
``run.finish()``, which writes ``metrics.json``.
"""
from __future__ import annotations

import platform
import sys
import time
import types
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from robustbook.atomic import write_json
from robustbook.params import ParameterError, discover, find_chapter, params_hash
from robustbook.paths import book_dir, runs_dir

_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


class Config(dict):
    """The resolved parameters, readable as ``cfg.epochs`` or ``cfg["epochs"]``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r}; parameters: {sorted(self)}") from None


class Run:
    """One execution of a chapter: its parameters, folder, metrics and figures."""

    def __init__(self, chapter: str, profile: str, cfg: Config, folder: Path) -> None:
        self.chapter, self.profile, self.cfg, self.dir = chapter, profile, cfg, folder
        self.metrics: dict[str, Any] = {}
        self.figures: list[str] = []
        self._t0 = time.perf_counter()
        self._started = datetime.now(UTC).isoformat(timespec="seconds")
        self.dir.mkdir(parents=True, exist_ok=True)

    # -- recording ---------------------------------------------------------------------
    def log(self, key: str | None = None, value: Any = None, /, **items: Any) -> None:
        """Record numbers: ``run.log("clean.srocc", 0.91)`` or ``run.log(clean_srocc=0.91)``.

        Dotted keys build nested sections of ``metrics.json``.
        """
        if key is not None:
            items[key] = value
        for k, v in items.items():
            node = self.metrics
            *parents, leaf = k.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = _plain(v)

    def get(self, key: str, default: Any = None) -> Any:
        """Read back a dotted key of the metrics."""
        node: Any = self.metrics
        for p in key.split("."):
            if not isinstance(node, dict) or p not in node:
                return default
            node = node[p]
        return node

    def savefig(self, fig, name: str, **kw: Any) -> Path:
        """Save ``fig`` as ``<run dir>/figures/<name>.png`` (kept small for the book)."""
        path = self.dir / "figures" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=kw.pop("dpi", 90), bbox_inches="tight", **kw)
        self.figures.append(str(path.relative_to(self.dir)))
        return path

    @property
    def seeds(self) -> list[int]:
        """The run's seeds: parameter ``seed``, else the list ``seeds``, else none."""
        if self.cfg.get("seed") is not None:
            return [int(self.cfg["seed"])]
        return [int(s) for s in self.cfg.get("seeds") or []]

    def banner(self, data: str) -> Any:
        """A Markdown note saying which profile and data produced the page."""
        from IPython.display import Markdown

        note = {
            "smoke": "a **smoke** run: tiny sizes that only check the code runs; its numbers mean nothing",
            "quick": "the **quick** profile: a few minutes on 2 CPU cores with bundled offline data; "
                     "numbers show the direction of the paper's claims, not its values",
            "full": "the **full** profile: the source's setting",
        }[self.profile]
        seeds = self.seeds
        if len(seeds) == 1:
            seed_note = f"Seed {seeds[0]}. "
        else:
            seed_note = f"Seeds {', '.join(map(str, seeds))}. " if seeds else ""
        return Markdown(f"```{{note}}\nThis page was produced by {note}. Data: {data}. {seed_note}Rerun it with "
                        f"`python -m robustbook run {self.chapter} --profile <profile>`.\n```")

    def finish(self) -> Path:
        """Write ``metrics.json``: every number, the parameters, seed, versions, device, wall time."""
        import torch

        from robustbook.device import default_device

        record = {
            "chapter": self.chapter,
            "profile": self.profile,
            "params": dict(self.cfg),
            "seed": self.cfg.get("seed", self.seeds or None),
            "metrics": self.metrics,
            "figures": self.figures,
            "device": str(default_device()),
            "torch_threads": torch.get_num_threads(),
            "versions": package_versions(),
            "platform": platform.platform(),
            "started": self._started,
            "wall_time_s": round(time.perf_counter() - self._t0, 2),
        }
        path = self.dir / "metrics.json"
        write_json(path, record)
        return path


def start(chapter: str, namespace: Mapping[str, Any]) -> Run:
    """Validate a notebook's parameters and open its run (see the module docstring)."""
    spec = find_chapter(discover(book_dir()), chapter)
    given = {k: v for k, v in namespace.items()
             if not k.startswith("_") and k not in _IPYTHON_NAMES
             and not isinstance(v, (types.ModuleType, types.FunctionType, type))}
    profile = given.pop("profile", "quick")
    run_dir = given.pop("run_dir", None)
    overrides = {k: v for k, v in given.items() if v is not None}
    unknown = set(given) - set(spec.params)
    if unknown:  # resolve() names the closest valid parameter
        spec.resolve(profile, {k: given[k] for k in sorted(unknown)})
    cfg = Config(spec.resolve(profile, overrides))
    folder = Path(run_dir) if run_dir else runs_dir() / chapter / f"{profile}-{params_hash(profile, cfg)}"
    run = Run(chapter, profile, cfg, folder)
    if run.seeds:
        from robustbook.seeding import seed_everything

        seed_everything(run.seeds[0])
    from robustbook.plotting import use_style

    use_style()
    return run


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("robustbook", "torch", "torchvision", "numpy", "scipy", "scikit-image", "torchattacks",
                 "torchdiffeq", "papermill"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _plain(v: Any) -> Any:
    """Turn numpy/torch scalars and arrays into JSON-friendly Python values."""
    try:
        import numpy as np
        import torch
    except ImportError:  # pragma: no cover
        return v
    if isinstance(v, torch.Tensor):
        return v.item() if v.numel() == 1 else v.detach().cpu().tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


__all__ = ["start", "Run", "Config", "ParameterError"]
