"""One configured-attack type for the whole book: :class:`Attack`, callable as ``attack(model, x, y)``.

The plain functions (:func:`~robustbook.attacks.fgsm`, :func:`~robustbook.attacks.pgd`,
:func:`~robustbook.attacks.apgd`, :func:`~robustbook.attacks.square`, ...) take every
setting as an argument: they are what a reader studies. Training loops, robust-accuracy
tables and the checks want an attack with its settings already bound, that also knows
its own name, norm, budget, steps and loss, so that a table can label it and
``metrics.json`` can record it without the chapter repeating them. The factories below
build such an :class:`Attack` for every attack of the library::

    pgd20 = PGD(8 / 255, 20, restarts=2, loss=losses.dlr)
    x_adv = pgd20(model, x, y)
    str(pgd20)          # 'PGD-20×2 (L∞, ε=8/255, α=2.5ε/20, loss dlr)'
    pgd20.describe()    # JSON-friendly dict of every setting
    pgd20.replace(steps=100)

Knowing the defence is an option of every attack, not a hand-built wrapper:

* ``eot=n`` attacks a randomised model with Expectation over Transformation (the mean
  over ``n`` draws of the loss gradient; ``eot_average="output"`` averages outputs);
* ``bpda=ctx`` runs the attack inside ``ctx(model)``, a context manager that switches
  the model's non-differentiable parts to a differentiable surrogate for the backward
  pass (e.g. :func:`robustbook.models.straight_through_stnorm`).

Introduced in chapter 0; the library-core contract of every later chapter.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager as ContextManager
from typing import Any

import torch
from torch import nn

from robustbook.attacks._core import NORMS, resolve_loss
from robustbook.attacks.apgd import apgd
from robustbook.attacks.fgsm import fgsm
from robustbook.attacks.losses import Loss
from robustbook.attacks.noise import gaussian_noise, random_sign
from robustbook.attacks.pgd import pgd
from robustbook.attacks.square import square
from robustbook.attacks.wrappers import EOT_AVERAGES, eot

__all__ = ["Attack", "AttackFn", "FGSM", "PGD", "APGD", "Square", "GaussianNoise", "RandomSign", "as_attacks", "FAT"]

#: Anything with the attack signature: ``attack(model, x, y) -> x_adv`` (an :class:`Attack` or a plain callable).
AttackFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def _fmt_eps(eps: float) -> str:
    """``8/255`` for budgets on the 8-bit grid, else 3 significant digits."""
    k = eps * 255
    if abs(k - round(k)) < 1e-6 and round(k) != 0:
        return f"{round(k)}/255"
    return f"{eps:.3g}"


def _loss_name(loss: Loss | None) -> str | None:
    if loss is None:
        return None
    return getattr(loss, "__name__", None) or getattr(type(loss), "__name__", "custom")


@dataclasses.dataclass(frozen=True, eq=False)
class Attack:
    """An attack with its settings bound: ``attack(model, x, y) -> x_adv`` in [0, 1].

    Build it with a factory (:func:`FGSM`, :func:`PGD`, :func:`APGD`, :func:`Square`,
    :func:`GaussianNoise`, :func:`RandomSign`) rather than directly.

    Attributes:
        name: the family, e.g. ``"PGD"``.
        fn: the plain attack function, called as ``fn(model, x, y, **params)``.
        params: the keyword arguments bound to ``fn`` (``eps``, ``steps``, ``loss`` ...).
        norm: ``"linf"``, ``"l2"`` or ``"none"`` (random noise, which has no budget ball).
        uses_gradient: whether ``fn`` differentiates the model (EOT and BPDA apply only then).
        eot: draws per step for Expectation over Transformation (1 = off).
        eot_average: ``"gradient"`` (mean loss gradient, Athalye et al.) or ``"output"``.
        bpda: ``bpda(model)`` is a context manager entered around the attack (a
            differentiable surrogate for the backward pass), or ``None``.
        black_box: the attack sees only the model's outputs (Square); the checks compare
            black-box against white-box attacks to detect gradient masking.
    """

    name: str
    fn: Callable[..., torch.Tensor]
    params: Mapping[str, Any]
    norm: str
    uses_gradient: bool = True
    eot: int = 1
    eot_average: str = "gradient"
    bpda: Callable[[nn.Module], ContextManager] | None = None
    black_box: bool = False

    def __post_init__(self) -> None:
        if self.norm not in NORMS + ("none",):
            raise ValueError(f"norm must be one of {NORMS + ('none',)}, got {self.norm!r}")
        if isinstance(self.eot, bool) or not isinstance(self.eot, int) or self.eot < 1:
            raise ValueError(f"eot must be a positive int (draws per step; 1 = off), got {self.eot!r}")
        if self.eot_average not in EOT_AVERAGES:
            raise ValueError(f"eot_average must be one of {EOT_AVERAGES}, got {self.eot_average!r}")
        if self.bpda is not None and not callable(self.bpda):
            raise TypeError("bpda must be a callable model -> context manager (e.g. straight_through_stnorm)")
        if not self.uses_gradient and (self.eot > 1 or self.bpda is not None):
            raise ValueError(f"{self.name} uses no gradient: eot and bpda do not apply to it")
        object.__setattr__(self, "params", dict(self.params))

    # ------------------------------------------------------------------ what it is
    @property
    def eps(self) -> float | None:
        """The budget (``sigma`` for Gaussian noise); ``None`` if the attack has none."""
        return self.params.get("eps", self.params.get("sigma"))

    @property
    def steps(self) -> int:
        """Gradient steps (1 for FGSM), queries for Square, 0 for random noise."""
        return int(self.params.get("steps", self.params.get("queries", 1 if self.uses_gradient else 0)))

    @property
    def loss(self) -> Loss | None:
        """The loss the attack increases (``None``: the default for the targets)."""
        return self.params.get("loss")

    @property
    def restarts(self) -> int:
        return int(self.params.get("restarts", self.params.get("n_restarts", 1)))

    def __str__(self) -> str:
        head = self.name
        if self.name in ("PGD", "APGD", "ObsAtk"):
            head += f"-{self.steps}"
        elif self.name == "Square":
            head += f"-{self.steps}q"
        if self.restarts > 1:
            head += f"×{self.restarts}"
        parts = []
        if self.norm != "none":
            root_m = "·√m" if self.params.get("per_pixel") else ""   # ObsAtk: budget per element (thesis ch. 2)
            parts.append(f"{'L∞' if self.norm == 'linf' else 'L2'}, ε={_fmt_eps(self.eps)}{root_m}")
        elif self.eps is not None:
            parts.append(f"σ={_fmt_eps(self.eps)}")
        if self.name == "PGD":
            alpha, eps = self.params["alpha"], self.params["eps"]
            parts.append(f"α={alpha * self.steps / eps:.3g}ε/{self.steps}" if eps else f"α={alpha:.3g}")
        if self.name == "ObsAtk":
            parts.append(f"zero-mean, η={self.params['rel_step']:.3g}·radius")
        elif self.loss is not None:
            parts.append(f"loss {_loss_name(self.loss)}")
        if self.eot > 1:
            parts.append(f"EOT×{self.eot}" + ("" if self.eot_average == "gradient" else " (output mean)"))
        if self.bpda is not None:
            parts.append(f"BPDA ({getattr(self.bpda, '__name__', 'surrogate')})")
        return f"{head} ({', '.join(parts)})" if parts else head

    def __repr__(self) -> str:
        return f"<Attack {self}>"

    def describe(self) -> dict[str, Any]:
        """Every setting as JSON-friendly values (for ``metrics.json`` and report cards)."""
        out: dict[str, Any] = {"name": self.name, "label": str(self), "norm": self.norm, "eps": self.eps,
                               "steps": self.steps, "restarts": self.restarts, "eot": self.eot,
                               "eot_average": self.eot_average if self.eot > 1 else None,
                               "bpda": getattr(self.bpda, "__name__", "surrogate") if self.bpda else None,
                               "loss": _loss_name(self.loss), "black_box": self.black_box}
        for k, v in self.params.items():
            if k in ("loss", "generator") or k in out:
                continue
            if isinstance(v, (bool, int, float, str)) or v is None:
                out[k] = v
        return out

    def replace(self, **changes: Any) -> Attack:
        """A copy with some settings changed: ``eot``, ``eot_average``, ``bpda`` or any bound parameter.

        ``pgd.replace(steps=100)`` keeps the step size ``alpha`` (more search along a longer
        path); build a new :func:`PGD` to rescale it.
        """
        own = {k: changes.pop(k) for k in ("eot", "eot_average", "bpda") if k in changes}
        unknown = sorted(set(changes) - set(self.params))
        if unknown:
            raise TypeError(f"{self.name} has no setting {unknown}; valid: "
                            f"{sorted(self.params) + ['bpda', 'eot', 'eot_average']}")
        return dataclasses.replace(self, params={**self.params, **changes}, **own)

    # ------------------------------------------------------------------ running it
    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        params = dict(self.params)
        target = model
        if self.uses_gradient:
            loss = resolve_loss(params.get("loss"), y)
            if self.eot > 1:
                target, loss = eot(model, loss, self.eot, average=self.eot_average)
            params["loss"] = loss
        ctx = self.bpda(model) if self.bpda is not None else contextlib.nullcontext()
        with ctx:
            return self.fn(target, x, y, **params)


def _check_eps(eps: float, what: str = "eps") -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"{what} must be a finite non-negative number in pixel units (e.g. 8/255), got {eps!r}")
    return float(eps)


def _check_count(n: int, what: str, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}, got {n!r}")
    return n


def FGSM(eps: float, *, loss: Loss | None = None, eot: int = 1, eot_average: str = "gradient",
         bpda: Callable[[nn.Module], ContextManager] | None = None, eval_mode: bool = True) -> Attack:
    """Configured :func:`~robustbook.attacks.fgsm` (L∞, one signed step of size ε)."""
    return Attack("FGSM", fgsm, {"eps": _check_eps(eps), "loss": loss, "eval_mode": eval_mode}, "linf",
                  eot=eot, eot_average=eot_average, bpda=bpda)


def PGD(eps: float, steps: int, *, alpha: float | None = None, rel_step: float = 2.5, norm: str = "linf",
        random_start: bool = True, restarts: int = 1, loss: Loss | None = None,
        generator: torch.Generator | None = None, eot: int = 1, eot_average: str = "gradient",
        bpda: Callable[[nn.Module], ContextManager] | None = None, eval_mode: bool = True) -> Attack:
    """Configured :func:`~robustbook.attacks.pgd`.

    The step is ``alpha`` if given (**fixed-step mode**: more steps walk a longer path,
    so a step sweep is more search), else ``rel_step · ε / steps`` (Madry et al.'s 2.5ε/steps:
    every step count walks the same path length, only finer). A random start is the
    default here (the plain function's default is none, as torchattacks').
    """
    eps = _check_eps(eps)
    steps = _check_count(steps, "steps")
    step = rel_step * eps / steps if alpha is None else _check_eps(alpha, "alpha")
    return Attack("PGD", pgd, {"eps": eps, "alpha": step, "steps": steps, "norm": norm,
                               "random_start": random_start, "restarts": _check_count(restarts, "restarts"),
                               "loss": loss, "generator": generator, "eval_mode": eval_mode},
                  norm, eot=eot, eot_average=eot_average, bpda=bpda)


def APGD(eps: float, steps: int = 100, *, norm: str = "linf", restarts: int = 1, loss: Loss | None = None,
         rho: float = 0.75, generator: torch.Generator | None = None, eot: int = 1,
         eot_average: str = "gradient", bpda: Callable[[nn.Module], ContextManager] | None = None,
         eval_mode: bool = True) -> Attack:
    """Configured :func:`~robustbook.attacks.apgd` (Croce & Hein 2020; step size adapts, no α to tune)."""
    return Attack("APGD", apgd, {"eps": _check_eps(eps), "steps": _check_count(steps, "steps"), "norm": norm,
                                 "n_restarts": _check_count(restarts, "restarts"), "loss": loss, "rho": rho,
                                 "generator": generator, "eval_mode": eval_mode},
                  norm, eot=eot, eot_average=eot_average, bpda=bpda)


def Square(eps: float, queries: int = 1000, *, p_init: float = 0.05, loss: Loss | None = None,
           generator: torch.Generator | None = None, eot: int = 1, eval_mode: bool = True) -> Attack:
    """Configured :func:`~robustbook.attacks.square` (score-based black-box, L∞; the gradient-masking check).

    ``eot=n`` averages the loss over ``n`` draws of a randomised model at every query.
    """
    return Attack("Square", square, {"eps": _check_eps(eps), "queries": _check_count(queries, "queries"),
                                     "p_init": p_init, "loss": loss, "generator": generator,
                                     "eval_mode": eval_mode}, "linf", eot=eot, black_box=True)


def _noise(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, sigma: float,
           generator: torch.Generator | None = None) -> torch.Tensor:
    return gaussian_noise(x, sigma, generator=generator)


def _sign_noise(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
    return random_sign(x, eps, generator=generator)


def GaussianNoise(sigma: float, generator: torch.Generator | None = None) -> Attack:
    """Zero-mean Gaussian noise of standard deviation ``sigma`` as an attack (ignores the model)."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return Attack("GaussianNoise", _noise, {"sigma": _check_eps(sigma, "sigma"), "generator": generator}, "none",
                  uses_gradient=False)


def RandomSign(eps: float, generator: torch.Generator | None = None) -> Attack:
    """Random ±ε per pixel: an L∞ perturbation of an attack's size that ignores the model."""
    return Attack("RandomSign", _sign_noise, {"eps": _check_eps(eps), "generator": generator}, "linf",
                  uses_gradient=False)


def as_attacks(attacks: Mapping[str, AttackFn] | list | tuple) -> dict[str, AttackFn]:
    """``{name: attack}`` from a mapping or a sequence of :class:`Attack` (named by ``str(attack)``)."""
    if isinstance(attacks, Mapping):
        return dict(attacks)
    out: dict[str, AttackFn] = {}
    for a in attacks:
        if not isinstance(a, Attack):
            raise TypeError(f"a sequence of attacks must hold Attack objects (got {type(a).__name__}); "
                            "pass a dict name -> attack(model, x, y) for plain callables")
        if str(a) in out:
            raise ValueError(f"two attacks are both labelled {str(a)!r}; pass a dict with distinct names")
        out[str(a)] = a
    return out


def FAT(eps: float, steps: int, *, alpha: float | None = None, tau: int = 0, loss: Loss | None = None,
        generator: torch.Generator | None = None, eval_mode: bool = True) -> Attack:
    """Configured early-stopped PGD of Friendly Adversarial Training (:func:`~robustbook.attacks.fat.early_stopped_pgd`;
    Zhang et al. 2020): a *training* attack. ``alpha`` defaults to ε/4 (CIFS chapter, Table 4.3)."""
    from robustbook.attacks.fat import early_stopped_pgd

    eps = _check_eps(eps)
    step = eps / 4 if alpha is None else _check_eps(alpha, "alpha")
    return Attack("FAT", early_stopped_pgd, {"eps": eps, "alpha": step,
                                             "steps": _check_count(steps, "steps"), "tau": _check_count(tau, "tau", 0),
                                             "loss": loss, "generator": generator, "eval_mode": eval_mode}, "linf")
