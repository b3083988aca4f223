"""Batched prediction and attack over a whole tensor data set (introduced in chapter 0).

* :func:`predict`, :func:`attack_all` — a model's outputs and an attack's images, batch by batch.
* :func:`attack_quality` — a quality model under a set of attacks, with the per-image
  worst case over the attacks (the IQA counterpart of AutoAttack's "a point is robust
  only if every attack fails"), as a :class:`QualityRobustReport`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from robustbook.attacks import AttackFn, as_attacks
from robustbook.attacks import losses as _losses
from robustbook.attacks._core import attack_mode
from robustbook.checks import BLACK_BOX_MARGIN, NORMS, ChecksReport, PerturbationChecks, is_black_box, run_checks
from robustbook.device import model_device
from robustbook.metrics.correlation import krocc, plcc, srocc
from robustbook.modes import preserved_modes

__all__ = ["predict", "attack_all", "attack_quality", "QualityRobustReport", "DIRECTIONS"]


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``model(x)`` in eval mode, in batches, on the model's device; returns CPU outputs.

    Every submodule's train/eval mode is restored afterwards (see :func:`robustbook.modes.preserved_modes`).
    """
    dev = model_device(model)
    with preserved_modes(model, training=False):
        return torch.cat([model(x[i:i + batch_size].to(dev)).cpu() for i in range(0, len(x), batch_size)])


def attack_all(attack: AttackFn, model: nn.Module,
               x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Run ``attack(model, x_batch, y_batch)`` over ``x`` in batches; returns CPU images."""
    dev = model_device(model)
    out = [attack(model, x[i:i + batch_size].to(dev), y[i:i + batch_size].to(dev)).cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out)


# --------------------------------------------------------------------------- quality models under attack

#: The per-image aims of :func:`attack_quality` ("better"/"worse" follow ``higher_is_better``).
DIRECTIONS = ("up", "down", "away", "better", "worse")
CLEAN = "clean"


def _agreement(pred: torch.Tensor, y: torch.Tensor) -> dict[str, float | None]:
    """SROCC, PLCC (raw) and KROCC; ``None`` for predictions holding a NaN or infinity."""
    if not bool(torch.isfinite(pred).all()):
        return {"srocc": None, "plcc": None, "krocc": None}
    return {"srocc": srocc(pred, y), "plcc": plcc(pred, y), "krocc": krocc(pred, y)}


def _scores(out: torch.Tensor, n: int, what: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor) or out.shape not in ((n,), (n, 1)):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{what} must be one score per image, shape ({n},) or ({n}, 1), got {shape}; "
                         "attack_quality is for quality models")
    return out.reshape(n).to(torch.float64)


def _fmt(v: Any, spec: str = ".4f") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


@dataclass
class QualityRobustReport:
    """What :func:`attack_quality` measured. Correlations are against the targets ``y``.

    Attributes:
        n: number of images.
        direction: the per-image aim ("up", "down", "away") or the objective's name.
        clean: ``{"srocc", "plcc", "krocc", "objective"}`` of the clean predictions.
        per_attack: attack name → ``{"srocc", "plcc", "krocc", "mean_change", "mean_abs_change",
            "objective"}``, each attack alone (changes are ``pred_adv − pred_clean``; ``objective``
            is the mean per-image objective, higher = the attack reached its aim further).
        worst_case: the same numbers on the per-image worst case over the attacks.
        wins: ``"clean"`` and each attack name → number of images whose worst case it gave
            (``"clean"``: no attack moved the image in the direction asked for).
        checks: the red flags (:class:`~robustbook.checks.ChecksReport`): per-attack
            perturbation checks, black-box against white-box (on SROCC), and the model checks.
        black_box: the black-box and random attacks (:func:`robustbook.checks.is_black_box`).
        clean_pred, worst_pred: per-image predictions (CPU float64), clean and worst case.
        winner: per image, the index into ``["clean", *per_attack]`` of its worst case.
        x_worst: the worst-case images (only with ``return_images=True``).
        perturbation: the per-attack :class:`~robustbook.checks.PerturbationChecks` (in ``checks``).
        black_box_by: the per-attack number the black-box check compares, ``"srocc"`` (lower =
            stronger) or ``"objective"`` (higher = stronger).
    """

    n: int
    direction: str
    clean: dict[str, float | None]
    per_attack: dict[str, dict[str, float | None]]
    worst_case: dict[str, float | None]
    wins: dict[str, int]
    checks: ChecksReport
    black_box: list[str] = field(default_factory=list)
    clean_pred: torch.Tensor | None = field(default=None, repr=False)
    worst_pred: torch.Tensor | None = field(default=None, repr=False)
    winner: torch.Tensor | None = field(default=None, repr=False)
    x_worst: torch.Tensor | None = field(default=None, repr=False)
    perturbation: list[PerturbationChecks] = field(default_factory=list, repr=False)
    black_box_by: str = "srocc"

    @property
    def problems(self) -> list[str]:
        """Names of the flagged checks (empty when all is well)."""
        return [r.name for r in self.checks.flagged]

    @property
    def ok(self) -> bool:
        return self.checks.ok

    def checks_inputs(self) -> dict:
        """For :func:`robustbook.checks.run_checks`: the per-attack numbers of :attr:`black_box_by` and the
        image checks."""
        key = self.black_box_by
        return {"results": {k: v[key] for k, v in self.per_attack.items() if v[key] is not None},
                "lower_is_stronger": key == "srocc", "black_box": list(self.black_box) or None,
                "perturbation": list(self.perturbation)}

    def as_dict(self) -> dict:
        """JSON-friendly (Python numbers; None for a missing or non-finite value); no per-image tensors."""

        def clean(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: clean(u) for k, u in v.items()}
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        return {"n": self.n, "direction": self.direction, "clean": clean(self.clean),
                "per_attack": clean(self.per_attack), "worst_case": clean(self.worst_case), "wins": dict(self.wins),
                "black_box": list(self.black_box), "checks": self.checks.as_dict()}

    def __str__(self) -> str:
        rows = [(CLEAN, self.clean, {"mean_change": 0.0, "mean_abs_change": 0.0,
                                     "objective": self.clean.get("objective")}, self.wins.get(CLEAN, 0))]
        rows += [(k, v, v, self.wins.get(k, 0)) for k, v in self.per_attack.items()]
        rows.append(("worst case", self.worst_case, self.worst_case, None))
        w = max(len(r[0]) for r in rows)
        own = self.direction not in ("up", "down", "away")  # a callable objective: show its mean
        lines = [f"quality under attack (n={self.n}, worst case per image: {self.direction})",
                 f"{'attack':<{w}}  {'SROCC':>7}  {'PLCC':>7}  {'KROCC':>7}  {'mean Δ':>9}  {'mean |Δ|':>9}  "
                 + (f"{'objective':>9}  " if own else "") + f"{'wins':>5}"]
        for name, corr, change, wins in rows:
            lines.append(f"{name:<{w}}  {_fmt(corr['srocc']):>7}  {_fmt(corr['plcc']):>7}  {_fmt(corr['krocc']):>7}  "
                         f"{_fmt(change.get('mean_change'), '.4g'):>9}  "
                         f"{_fmt(change.get('mean_abs_change'), '.4g'):>9}  "
                         + (f"{_fmt(change.get('objective'), '.4g'):>9}  " if own else "")
                         + f"{'' if wins is None else wins:>5}")
        lines.append(str(self.checks))
        return "\n".join(lines)


def _objective(direction: str | Callable, higher_is_better: bool) -> tuple[str, Callable]:
    """``(label, f(pred_adv, pred_clean, y) -> per-image objective to maximise)``."""
    if callable(direction):
        name = getattr(direction, "__name__", type(direction).__name__)
        return name, lambda pred, clean, y: direction(pred, y)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS} or a callable objective(pred_adv, y) -> (N,), "
                         f"got {direction!r}")
    if direction in ("better", "worse"):
        direction = "up" if (direction == "better") == higher_is_better else "down"
    if direction == "up":
        return "up", lambda pred, clean, y: pred - clean
    if direction == "down":
        return "down", lambda pred, clean, y: clean - pred
    return "away", lambda pred, clean, y: (pred - clean).abs()


def _check_loss(direction: str | Callable, attacks: Mapping[str, AttackFn]):
    """The loss of the zero-gradient check: the first gradient attack's own loss, else the direction's."""
    for a in attacks.values():
        if getattr(a, "uses_gradient", False) and getattr(a, "loss", None) is not None:
            return a.loss
    if callable(direction):
        def objective_loss(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return direction(output.reshape(output.shape[0]), y)

        objective_loss.__name__ = getattr(direction, "__name__", "objective")
        return objective_loss
    return {"up": _losses.score_up, "down": _losses.score_down}.get(direction)


def attack_quality(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   attacks: Mapping[str, AttackFn] | Sequence, *, direction: str | Callable = "away",
                   higher_is_better: bool = True, batch_size: int = 256, norm: str = "linf",
                   eps: float | None = None, model_checks: int = 256, black_box_by: str = "srocc",
                   black_box_margin: float = BLACK_BOX_MARGIN, return_images: bool = False) -> QualityRobustReport:
    """A quality model under several attacks, each alone and in the per-image worst case.

    AutoAttack counts a point as robust only if every attack fails on it (Croce & Hein
    2020). A quality model has no "fails": each attack moves each score by some amount. The
    counterpart is the **worst case per image**: for every image, keep the attacked version
    (among the clean image and every attack's) that moves the prediction furthest in the
    direction asked for, and report SROCC/PLCC/KROCC on that set beside each attack alone.
    The worst case is never better for the model than any single attack *in the objective*;
    the correlations usually follow (they are not per-image quantities, so it is not a theorem).

    Args:
        model: images ``(N, C, H, W)`` in [0, 1] → scores ``(N,)`` or ``(N, 1)``.
        x: images in [0, 1]; y: their subjective scores (MOS/DMOS), shape ``(N,)``.
        attacks: dict name → ``attack(model, x, y) -> x_adv``, or a list of
            :class:`~robustbook.attacks.Attack` (named by their labels). Run in order.
        direction: the per-image aim that picks the worst case: ``"up"`` (largest raise of
            the score), ``"down"`` (largest drop), ``"away"`` (largest ``|change|``),
            ``"better"``/``"worse"`` (up/down as ``higher_is_better`` says), or a callable
            ``objective(pred_adv, y) -> (N,)`` to maximise, e.g.
            ``attacks.losses.invert_ranking(lo, hi)`` (pull each score to the mirror of its label).
        higher_is_better: whether a higher score means a better image (MOS: yes; DMOS: no).
        batch_size: images per model and attack call.
        norm, eps: the budget of attacks that are plain callables (an
            :class:`~robustbook.attacks.Attack` brings its own norm and ε; random noise has no budget).
        model_checks: images used for the model checks (randomness, zero gradients); 0 skips them.
        black_box_by, black_box_margin: the black-box check compares the attacks' SROCC
            (``"srocc"``, lower = stronger, scale-free: the default) or their mean objective
            (``"objective"``, higher = stronger; the margin is then in objective units, e.g.
            score units for "up"/"down"/"away"), flagging a black-box attack stronger by more
            than the margin (:func:`robustbook.checks.check_black_box`).
        return_images: keep the worst-case images in ``x_worst``.

    Ties go to the clean image, then to the earlier attack: an image counts as attacked only
    if some attack moved it strictly further than the clean image's objective. Adversarial
    predictions that are NaN never win, and their attack's correlations are ``None`` (the
    perturbation check flags them).

    Returns:
        a :class:`QualityRobustReport`; the model's train/eval modes are restored.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"x and y must be torch tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch (N, ...) of images, got shape {tuple(x.shape)}")
    if y.shape != (x.shape[0],) or not y.is_floating_point():
        raise ValueError(f"y must be float scores of shape ({x.shape[0]},), got {y.dtype} {tuple(y.shape)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if isinstance(attacks, (list, tuple)):
        attacks = as_attacks(attacks)
    if not isinstance(attacks, Mapping) or not attacks:
        raise ValueError("attacks must be a non-empty dict name -> attack(model, x, y) or a list of Attack")
    for name, attack in attacks.items():
        if not callable(attack):
            raise TypeError(f"attack {name!r} is not callable; expected attack(model, x, y) -> x_adv")
    if black_box_by not in ("srocc", "objective"):
        raise ValueError(f"black_box_by must be 'srocc' or 'objective', got {black_box_by!r}")
    if CLEAN in attacks:
        raise ValueError(f"{CLEAN!r} names the unattacked images in the report; rename that attack")
    label, objective = _objective(direction, higher_is_better)

    n = x.shape[0]
    x_cpu = x.detach().cpu()
    y64 = y.detach().cpu().to(torch.float64)
    perturbation: list[PerturbationChecks] = []
    per_attack: dict[str, dict[str, float | None]] = {}
    with attack_mode(model, True):
        clean_pred = _scores(predict(model, x, batch_size), n, "the model's output")
        clean_obj = _scores(objective(clean_pred, clean_pred, y64), n, "the objective")
        best = clean_obj.clone()
        worst_pred = clean_pred.clone()
        winner = torch.zeros(n, dtype=torch.long)
        x_worst = x_cpu.clone() if return_images else None
        for k, (name, attack) in enumerate(attacks.items(), start=1):
            a_norm = getattr(attack, "norm", norm)
            pc = PerturbationChecks(a_norm if a_norm in NORMS else "linf",
                                    getattr(attack, "eps", eps) if a_norm in NORMS else None, label=name)
            x_adv = attack_all(attack, model, x, y, batch_size)
            if not isinstance(x_adv, torch.Tensor) or x_adv.shape != x.shape:
                shape = tuple(x_adv.shape) if isinstance(x_adv, torch.Tensor) else type(x_adv).__name__
                raise ValueError(f"attack {name!r} returned {shape}, expected the input's shape {tuple(x.shape)}")
            perturbation.append(pc.update(x_cpu, x_adv))
            pred = _scores(predict(model, x_adv, batch_size), n, "the model's output")
            obj = _scores(objective(pred, clean_pred, y64), n, "the objective")
            obj = torch.where(torch.isfinite(obj), obj, torch.full_like(obj, -math.inf))
            change = pred - clean_pred
            per_attack[name] = {**_agreement(pred, y64), "mean_change": float(change.mean()),
                                "mean_abs_change": float(change.abs().mean()), "objective": float(obj.mean())}
            wins = obj > best
            best = torch.where(wins, obj, best)
            worst_pred = torch.where(wins, pred, worst_pred)
            winner[wins] = k
            if x_worst is not None:
                x_worst[wins] = x_adv[wins]
    change = worst_pred - clean_pred
    worst = {**_agreement(worst_pred, y64), "mean_change": float(change.mean()),
             "mean_abs_change": float(change.abs().mean()), "objective": float(best.mean())}
    names = [CLEAN, *attacks]
    counts = np.bincount(winner.numpy(), minlength=len(names))
    black_box = [k for k, a in attacks.items() if is_black_box(k, a)]
    report = QualityRobustReport(
        n=n, direction=label, clean={**_agreement(clean_pred, y64), "objective": float(clean_obj.mean())},
        per_attack=per_attack, worst_case=worst,
        wins={k: int(c) for k, c in zip(names, counts, strict=True)}, checks=ChecksReport([], "quality"),
        black_box=black_box,
        clean_pred=clean_pred, worst_pred=worst_pred, winner=winner, x_worst=x_worst, perturbation=perturbation,
        black_box_by=black_box_by)
    m = min(max(int(model_checks), 0), n)
    report.checks = run_checks(model, x[:max(m, 1)], y[:max(m, 1)], task="quality",
                               loss=_check_loss(direction if callable(direction) else label, attacks),
                               attacks_results=report, attacks=attacks,
                               margin=black_box_margin, batch_size=batch_size, model_checks=m > 0)
    return report
