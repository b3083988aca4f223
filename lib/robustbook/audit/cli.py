"""``python -m robustbook audit``: the report card of a quality model, from the command line.

    python -m robustbook audit --model my_model.py:make --profile smoke
    python -m robustbook audit --model mypkg.models:build --weights model.pt --lower-is-better
    python -m robustbook audit --model birqa --weights birqa.pt --data kadid10k --profile full

The run folder (``--out``, default ``runs/audit/<model>-<profile>-<hash>``) follows ``run``'s rules
(:func:`robustbook.run.check_out`: ``--force`` replaces only an empty folder or one the book wrote,
a live run's folder is locked), with one addition: **an unfinished audit of the same model, data and
settings is resumed**, each finished attack (``attacks/<key>.pt``, written atomically) skipped. At the
end it holds ``metrics.json`` (the card's numbers, as a chapter run's), ``report.md``, ``report.html``
and ``figures/``. Bad input exits with status 2 before any attack runs.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from robustbook.audit.loading import AuditInputError, resolve_factory
from robustbook.audit.suite import PROFILES

__all__ = ["add_parser", "main_audit", "MARKER"]

#: The file that marks a folder as an audit's (written before the first attack).
MARKER = "audit.json"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``audit`` command to the runner's subparsers."""
    from robustbook.audit.loading import BOOK_MODELS

    a = sub.add_parser("audit", help="report card of a quality model under the book's attack suite",
                       description=__doc__.split("\n\n")[0])
    a.add_argument("--model", required=True,
                   help="package.module:factory, path/to/file.py:factory, or a book model: " + ", ".join(BOOK_MODELS))
    a.add_argument("--weights", default=None, help="state_dict file (read with torch.load(weights_only=True))")
    a.add_argument("--model-kwargs", default=None, metavar="YAML",
                   help="keyword arguments of the factory, e.g. '{width: 16}'")
    hib = a.add_mutually_exclusive_group()
    hib.add_argument("--higher-is-better", dest="higher_is_better", action="store_true", default=None,
                     help="a higher score means a better image (default; book models know their own)")
    hib.add_argument("--lower-is-better", dest="higher_is_better", action="store_false",
                     help="a lower score means a better image (distances, DMOS)")
    a.add_argument("--full-reference", action="store_true", default=None,
                   help="the model is called model(reference, distorted)")
    a.add_argument("--bpda", default=None, metavar="MODULE:CTX",
                   help="a model -> context manager giving non-differentiable parts a surrogate gradient")
    a.add_argument("--data", default=None,
                   help="an IQA data set of the registry (default: the bundled offline set of the model's kind)")
    a.add_argument("--size", type=int, default=None, help="resize images to SIZE x SIZE (default: the set's)")
    a.add_argument("--profile", default="quick", help=f"one of {', '.join(PROFILES)} (default quick)")
    a.add_argument("--seed", type=int, default=0, help="seed of the data subset and every attack (default 0)")
    a.add_argument("--eot", type=int, default=None, help="EOT draws per step (default: automatic)")
    a.add_argument("--out", type=Path, default=None, help="run folder (default runs/audit/<model>-<profile>-<hash>)")
    a.add_argument("--force", action="store_true", help="start over in an existing run folder")
    a.add_argument("--no-progress", action="store_true", help="no progress bar")
    return a


def _config(args: argparse.Namespace) -> dict:
    keep = ("model", "weights", "model_kwargs", "higher_is_better", "full_reference", "bpda", "data", "size",
            "profile", "seed", "eot")
    cfg = {k: getattr(args, k) for k in keep}
    if cfg["weights"]:
        cfg["weights"] = os.path.abspath(os.path.expanduser(cfg["weights"]))
    return cfg


def _config_hash(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _prepare_out(out: Path, cfg: dict, force: bool) -> Path:
    """The run folder: new, resumed (same settings) or started over (``--force``)."""
    from robustbook.run import ParameterError, check_out

    out = Path(os.path.abspath(os.path.expanduser(out)))
    marker = out / MARKER
    if out.is_dir() and marker.is_file() and not force:
        try:
            saved = json.loads(marker.read_text())
        except (OSError, ValueError):
            saved = {}
        if saved.get("config_hash") == _config_hash(cfg):
            return out
        raise ParameterError(f"{out} holds an audit with other settings ({saved.get('config')}); pass --force "
                             "to start over there, or choose another --out")
    if out.is_dir() and marker.is_file() and force:
        shutil.rmtree(out)
    else:
        out = check_out(out, force=force)
        if out.is_dir() and force:
            shutil.rmtree(out)
    return out


def _resolve(args: argparse.Namespace):
    """Model, its settings and the data, checked; every problem an AuditInputError (exit 2)."""
    from robustbook.audit.loading import check_model, load_audit_data, load_model

    if args.profile not in PROFILES:
        raise AuditInputError(f"unknown profile {args.profile!r}; valid: {list(PROFILES)}")
    if args.eot is not None and args.eot < 1:
        raise AuditInputError(f"--eot must be at least 1 (draws per step), got {args.eot}")
    if args.size is not None and args.size < 8:
        raise AuditInputError(f"--size must be at least 8 pixels, got {args.size}")
    kwargs: Any = {}
    if args.model_kwargs:
        try:
            kwargs = yaml.safe_load(args.model_kwargs)
        except yaml.YAMLError as exc:
            raise AuditInputError(f"--model-kwargs {args.model_kwargs!r} is not YAML: {exc}") from None
        if not isinstance(kwargs, dict):
            raise AuditInputError(f"--model-kwargs must be a mapping such as '{{width: 16}}', "
                                  f"got {args.model_kwargs!r}")
    model, info = load_model(args.model, weights=args.weights, kwargs=kwargs)
    fr = info["full_reference"]
    if fr is not None and args.full_reference is not None and args.full_reference != fr:
        raise AuditInputError(f"--full-reference contradicts the book model {args.model!r}, which is "
                              f"{'full' if fr else 'no'}-reference")
    full_reference = bool(fr if fr is not None else args.full_reference)
    hib = args.higher_is_better if args.higher_is_better is not None else (info["higher_is_better"]
                                                                            if info["higher_is_better"] is not None
                                                                            else True)
    bpda = info["bpda"]
    if args.bpda:
        bpda, _ = resolve_factory(args.bpda)
    data = load_audit_data(args.data, args.profile, full_reference=full_reference, size=args.size, seed=args.seed)
    check_model(model, data)
    return model, info, full_reference, hib, bpda, data


def main_audit(args: argparse.Namespace) -> int:
    """The ``audit`` command (called by :func:`robustbook.run.main`)."""
    from robustbook.atomic import file_lock, write_json
    from robustbook.audit.report import write_report
    from robustbook.audit.runner import run_audit
    from robustbook.chapter import package_versions
    from robustbook.paths import runs_dir
    from robustbook.run import ParameterError

    t0 = time.perf_counter()
    cfg = _config(args)
    model, info, full_reference, hib, bpda, data = _resolve(args)
    label = info["label"].replace("/", "_").replace(":", "_")
    out = args.out or runs_dir() / "audit" / f"{label}-{args.profile}-{_config_hash(cfg)}"
    out = _prepare_out(out, cfg, args.force)
    out.mkdir(parents=True, exist_ok=True)
    with file_lock(out, blocking=False) as mine:
        if not mine:
            raise ParameterError(f"another audit is writing {out} right now; wait for it, or choose another --out")
        write_json(out / MARKER, {"kind": "audit", "config": cfg, "config_hash": _config_hash(cfg)})
        print(f"[robustbook] auditing {info['label']} ({args.profile}) -> {out}", flush=True)
        result = run_audit(model, data, profile=args.profile, higher_is_better=hib, full_reference=full_reference,
                           progress=not args.no_progress, out=out, bpda=bpda, eot=args.eot, seed=args.seed,
                           model_label=info["label"],
                           model_info={k: v for k, v in info.items() if k not in ("bpda", "label")})
        write_json(out / "metrics.json", {"chapter": "audit", "profile": args.profile, "params": cfg,
                                          "seed": args.seed, "metrics": result.record, "versions": package_versions(),
                                          "wall_time_s": round(time.perf_counter() - t0, 2)})
        paths = write_report(result, out)
    reused = result.record["cost"]["reused"]
    print(f"[robustbook] {result.record['verdict']}; {len(reused)} attack(s) reused, "
          f"{result.record['cost']['attacks_run']} run, {time.perf_counter() - t0:.1f} s", flush=True)
    print(f"[robustbook] report card: {paths['md']} and {paths['html']}")
    print(out / "metrics.json")
    return 0
