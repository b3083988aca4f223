"""Robust accuracy of a classifier against a list of attacks, the AutoAttack way.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble
of diverse parameter-free attacks" (ICML 2020), evaluate an ensemble so that a
point counts as robust only if *every* attack fails on it:

1. predict the clean images; only clean-correct points can be robust;
2. run the attacks in order, each only on the points still robust, and mark
   those whose adversarial image is misclassified as broken;
3. robust accuracy = fraction of *all* points that are clean-correct and
   survive every attack (the worst case over the ensemble).

Beside the worst case, :func:`robust_accuracy` reports each attack run alone
(on all clean-correct points) and sanity checks of every adversarial image
produced: the largest perturbation norm, NaNs, and the pixel range, which
must stay inside [0, 1] (AutoAttack's ``checks.py`` idea: a red flag is
checked, not trusted).

:func:`accuracy_on_correct` is the other convention of the book's sources
(Yan's thesis, ch. 3, §3.3): the accuracy on adversarial images *among the
clean-correct samples*, i.e. robust accuracy divided by clean accuracy.

An attack is any callable ``attack(model, x, y) -> x_adv`` returning images of
``x``'s shape in pixel space [0, 1] (:data:`~robustbook.attacks.AttackFn`), given as a dict
name → attack or a list of configured :class:`~robustbook.attacks.Attack` (named by their
labels); the model maps images to logits (N, classes). The image checks are
:class:`robustbook.checks.PerturbationChecks`, the same for every task.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from robustbook.attacks import AttackFn, as_attacks
from robustbook.checks import PerturbationChecks, is_black_box, perturbation_problems
from robustbook.device import model_device
from robustbook.modes import preserved_modes

__all__ = ["RobustReport", "robust_accuracy", "accuracy_on_correct"]

NORMS = ("linf", "l2")


@dataclass
class RobustReport:
    """What :func:`robust_accuracy` measured. Accuracies are fractions of all ``n`` points.

    Attributes:
        n: number of evaluated points.
        norm: ``"linf"`` or ``"l2"``, the norm of ``max_perturbation``.
        clean_accuracy: fraction classified correctly without attack.
        robust_accuracy: fraction clean-correct and surviving every attack (worst case).
        per_attack: attack name → robust accuracy with that attack alone
            (empty when ``per_attack=False`` was asked for).
        cumulative: attack name → robust accuracy after this attack and all
            before it in the order given (the last value is ``robust_accuracy``).
        n_adversarial: number of adversarial images checked below.
        max_perturbation: largest ``‖x_adv − x‖`` over all adversarial images
            without NaN (None if no image was produced).
        nan_count: number of adversarial images holding at least one NaN.
        min_pixel, max_pixel: smallest / largest finite adversarial pixel value
            (None if no image was produced).
        eps: the budget the attacks were meant to keep, if given; only used by :attr:`problems`.
        black_box: names of the black-box and random attacks (Square, noise:
            :func:`robustbook.checks.is_black_box`), for :func:`robustbook.checks.run_checks`.
    """

    n: int
    norm: str
    clean_accuracy: float
    robust_accuracy: float
    per_attack: dict[str, float] = field(default_factory=dict)
    cumulative: dict[str, float] = field(default_factory=dict)
    n_adversarial: int = 0
    max_perturbation: float | None = None
    nan_count: int = 0
    min_pixel: float | None = None
    max_pixel: float | None = None
    eps: float | None = None
    black_box: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Red flags found by the sanity checks (empty when all is well)."""
        return perturbation_problems(self.norm, self.eps, self.nan_count, self.max_perturbation,
                                     self.min_pixel, self.max_pixel)

    def checks_inputs(self) -> dict:
        """What :func:`robustbook.checks.run_checks` needs: per-attack accuracies (lower = stronger),
        the black-box attacks and the image checks."""
        pc = PerturbationChecks(self.norm, self.eps)
        pc.count, pc.nan, pc.max_norm = self.n_adversarial, self.nan_count, self.max_perturbation
        pc.lo, pc.hi = self.min_pixel, self.max_pixel
        results = self.per_attack or (dict(self.cumulative) if len(self.cumulative) == 1 else {})
        return {"results": results, "lower_is_stronger": True, "black_box": list(self.black_box) or None,
                "perturbation": [pc]}

    @property
    def ok(self) -> bool:
        """True when no sanity check raised a red flag."""
        return not self.problems

    def as_dict(self) -> dict:
        """A JSON-friendly dict (Python floats and ints; None for a non-finite or missing value)."""

        def clean(v):
            if isinstance(v, dict):
                return {k: clean(u) for k, u in v.items()}
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        out = {k: clean(v) for k, v in asdict(self).items()}
        out["problems"] = self.problems
        return out

    def __str__(self) -> str:
        width = max([len("worst case")] + [len(k) for k in self.cumulative])
        lines = [
            f"robust accuracy ({self.norm}, n={self.n})",
            f"{'attack':<{width}}  {'alone':>8}  {'cumulative':>10}",
            f"{'clean':<{width}}  {self.clean_accuracy:>8.4f}  {self.clean_accuracy:>10.4f}",
        ]
        for name, cum in self.cumulative.items():
            alone = self.per_attack.get(name)
            alone_s = f"{alone:>8.4f}" if alone is not None else f"{'-':>8}"
            lines.append(f"{name:<{width}}  {alone_s}  {cum:>10.4f}")
        lines.append(f"{'worst case':<{width}}  {'':>8}  {self.robust_accuracy:>10.4f}")

        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.4g}"

        budget = f" (eps {self.eps:.4g})" if self.eps is not None else ""
        lines.append(
            f"checks on {self.n_adversarial} adversarial images: max {self.norm} perturbation "
            f"{fmt(self.max_perturbation)}{budget}, NaN images {self.nan_count}, "
            f"pixel range [{fmt(self.min_pixel)}, {fmt(self.max_pixel)}]"
        )
        lines.append("checks: ok" if self.ok else "RED FLAGS: " + "; ".join(self.problems))
        return "\n".join(lines)




def _check_inputs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"x and y must be torch tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch (N, ...) of images, got shape {tuple(x.shape)}")
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must be 1-D with one label per image ({x.shape[0]}), got shape {tuple(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


def _predict(model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """Predicted classes of ``x`` (on ``x``'s device), batch by batch, without gradients."""
    out = []
    with torch.no_grad():
        for xb in x.split(batch_size):
            logits = model(xb.to(device))
            if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != xb.shape[0]:
                shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
                raise ValueError(f"model must return logits of shape (N, classes) = ({xb.shape[0]}, K), got {shape}")
            out.append(logits.argmax(dim=1).to(x.device))
    return torch.cat(out)


def _survives(
    model: nn.Module,
    attack: AttackFn,
    name: str,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    device: torch.device,
    checks: PerturbationChecks,
) -> torch.Tensor:
    """Run ``attack`` on (x, y) batch by batch; True where the adversarial image is still classified ``y``."""
    keep = []
    for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=False):
        xb, yb = xb.to(device), yb.to(device)
        x_adv = attack(model, xb, yb)
        if not isinstance(x_adv, torch.Tensor):
            raise TypeError(f"attack {name!r} must return a torch tensor, got {type(x_adv).__name__}")
        if x_adv.shape != xb.shape:
            raise ValueError(
                f"attack {name!r} returned shape {tuple(x_adv.shape)}, expected the input's {tuple(xb.shape)}"
            )
        x_adv = x_adv.detach().to(device)
        checks.update(xb, x_adv)
        keep.append((_predict(model, x_adv, batch_size, device) == yb).to(x.device))
    return torch.cat(keep)


def robust_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: Mapping[str, AttackFn] | list | tuple,
    *,
    batch_size: int = 256,
    norm: str = "linf",
    eps: float | None = None,
    per_attack: bool | Iterable[str] = True,
) -> RobustReport:
    """Worst-case robust accuracy of ``model`` on (x, y) over an ordered ensemble of attacks.

    The model is put in eval mode for the whole evaluation (attacks included)
    and every submodule's train/eval flag is restored afterwards.

    Args:
        model: maps images (N, ...) to logits (N, classes); its device is used.
        x: images in pixel space [0, 1], shape (N, ...).
        y: integer labels, shape (N,).
        attacks: name → ``attack(model, x, y) -> x_adv``, or a list of configured
            :class:`~robustbook.attacks.Attack` (named by ``str(attack)``); run in this order,
            each only on the points still robust (correct and unbroken so far).
        batch_size: images per model call and per attack call.
        norm: ``"linf"`` or ``"l2"``, the norm of the reported largest perturbation.
        eps: the intended budget; if given, a larger perturbation is a red flag.
        per_attack: also report each attack alone on all clean-correct points (``True``:
            every attack; a collection of names: only those, so that further attacks
            added for the worst case run only on the points still robust).
            This reuses the sequential run and calls attack *k* additionally only
            on the clean-correct points broken by attacks before it, so the total
            attack work equals running each attack once on the clean-correct points
            (exact for attacks that treat each image independently).

    Returns:
        a :class:`RobustReport`.
    """
    _check_inputs(model, x, y, batch_size)
    if isinstance(attacks, (list, tuple)):
        attacks = as_attacks(attacks)
    if not isinstance(attacks, Mapping) or not attacks:
        raise ValueError("attacks must be a non-empty dict of name -> attack(model, x, y) -> x_adv "
                         "or a non-empty list of Attack")
    for name, attack in attacks.items():
        if not callable(attack):
            raise TypeError(f"attack {name!r} is not callable; expected attack(model, x, y) -> x_adv")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if eps is not None and not eps >= 0:
        raise ValueError(f"eps must be a non-negative number or None, got {eps!r}")

    if isinstance(per_attack, bool):
        report_alone = set(attacks) if per_attack else set()
    else:
        report_alone = set(per_attack)
        unknown = report_alone - set(attacks)
        if unknown:
            raise ValueError(f"per_attack names {sorted(unknown)} that are not among the attacks {list(attacks)}")
    n = x.shape[0]
    device = model_device(model)
    checks = PerturbationChecks(norm, eps)
    alone: dict[str, float] = {}
    cumulative: dict[str, float] = {}
    with preserved_modes(model, training=False):
        correct = _predict(model, x, batch_size, device) == y
        robust = correct.clone()
        for name, attack in attacks.items():
            before = robust.clone()
            idx = before.nonzero().squeeze(1)
            survived = 0
            if idx.numel():
                ok = _survives(model, attack, name, x[idx], y[idx], batch_size, device, checks)
                robust[idx[~ok]] = False
                survived = int(ok.sum())
            cumulative[name] = robust.sum().item() / n
            if name in report_alone:
                earlier = (correct & ~before).nonzero().squeeze(1)
                if earlier.numel():
                    ok = _survives(model, attack, name, x[earlier], y[earlier], batch_size, device, checks)
                    survived += int(ok.sum())
                alone[name] = survived / n

    return RobustReport(
        n=n,
        norm=norm,
        clean_accuracy=correct.sum().item() / n,
        robust_accuracy=robust.sum().item() / n,
        per_attack=alone,
        cumulative=cumulative,
        n_adversarial=checks.count,
        max_perturbation=checks.max_norm,
        nan_count=checks.nan,
        min_pixel=checks.lo,
        max_pixel=checks.hi,
        eps=None if eps is None else float(eps),
        black_box=[name for name, a in attacks.items() if is_black_box(name, a)],
    )


def accuracy_on_correct(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: AttackFn,
    *,
    batch_size: int = 256,
) -> float:
    """Accuracy under ``attack`` among the clean-correctly classified samples (Yan's thesis, §3.3.2).

    "We first identify and select the samples whose clean versions are
    correctly classified [...] Then, we compute the classification accuracy of
    the adversarial examples on the set of the selected samples." Equal to
    ``robust_accuracy / clean_accuracy`` of :func:`robust_accuracy` with this
    single attack. Raises :class:`ValueError` if no sample is classified correctly.
    """
    _check_inputs(model, x, y, batch_size)
    if not callable(attack):
        raise TypeError("attack must be callable: attack(model, x, y) -> x_adv")
    device = model_device(model)
    with preserved_modes(model, training=False):
        idx = (_predict(model, x, batch_size, device) == y).nonzero().squeeze(1)
        if idx.numel() == 0:
            raise ValueError("no sample is classified correctly; accuracy on the correct samples is undefined")
        ok = _survives(model, attack, "attack", x[idx], y[idx], batch_size, device, PerturbationChecks("linf"))
    return ok.sum().item() / idx.numel()
