"""The audit's attack suite: fixed and versioned, so that two report cards are comparable.

Every attack of the suite is one of the library's configured attacks
(:mod:`robustbook.attacks`), each run in **both directions** (raise the score: loss
:func:`~robustbook.attacks.losses.score_up`; lower it: :func:`~robustbook.attacks.losses.score_down`)
at **ε ∈ {1, 2, 4, 8}/255** (L∞):

* ``FGSM`` (one signed step), ``PGD`` (random start, ``2.5ε/steps`` step, restarts),
  ``APGD`` (Croce & Hein's step-size rule) on the score;
* ``UAP``: one universal perturbation per (ε, direction), learned on training images by
  :func:`~robustbook.attacks.train_uap` and added at amplitude 1 (MSU benchmark's attack);
* ``stAdv`` (Xiao et al. 2018): a flow of at most ``ε·255/8`` pixels (1/255 → 0.125 px,
  8/255 → 1 px; the book's mapping of the suite's ε onto a displacement budget);
* ``Square`` (score-based black-box; the gradient-masking check);
* ``C&W`` for full-reference models only: the BiRQA chapter's reading of C&W for a score
  (fixed step ε/4, no random start, the score itself as the margin, clipped to the L∞ ball).

:data:`SUITE_VERSION` changes whenever the suite's attacks, budgets or the sizes of a
profile change; a report card records it, and cards of different versions are not comparable.
The sizes of each profile (images, steps, restarts, queries) are :data:`PROFILES`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from typing import Any

import torch
from torch import nn

from robustbook.attacks import APGD, FGSM, PGD, Attack, Square, StAdv, losses

__all__ = ["SUITE_VERSION", "EPS_255", "DIRECTIONS", "FAMILIES", "AuditProfile", "PROFILES", "SuiteAttack",
           "build_suite", "get_profile"]

#: Bump when an attack, a budget or a profile's size changes.
SUITE_VERSION = "1.0"
#: The budgets, in units of 1/255 (L∞).
EPS_255 = (1, 2, 4, 8)
#: Raise the score, lower the score.
DIRECTIONS = ("up", "down")
#: The attack families in the order they run (C&W only for full-reference models).
FAMILIES = ("FGSM", "PGD", "APGD", "UAP", "stAdv", "Square", "C&W")
#: Families that see only the model's outputs (the black-box check compares them with the rest).
BLACK_BOX = ("Square",)
_LOSS = {"up": losses.score_up, "down": losses.score_down}


@dataclasses.dataclass(frozen=True)
class AuditProfile:
    """The sizes of one audit profile (``n_images = 0``: every test image)."""

    name: str
    n_images: int
    n_train: int          # training images the UAP is learned on
    crop: int             # bundled set: crop side in pixels
    per_photo: int        # bundled set: crops per photograph
    pgd_steps: int
    pgd_restarts: int
    apgd_steps: int
    square_queries: int
    stadv_steps: int
    uap_epochs: int
    cw_steps: int
    eot_draws: int        # EOT draws per step when the model is randomised
    n_boot: int           # bootstrap resamples of the 95 % intervals
    model_checks: int     # images of the randomness / zero-gradient checks
    chunk: int            # images attacked per call


PROFILES: dict[str, AuditProfile] = {
    "smoke": AuditProfile("smoke", n_images=16, n_train=16, crop=32, per_photo=4, pgd_steps=5, pgd_restarts=2,
                          apgd_steps=5, square_queries=40, stadv_steps=5, uap_epochs=2, cw_steps=5, eot_draws=4,
                          n_boot=300, model_checks=16, chunk=64),
    "quick": AuditProfile("quick", n_images=96, n_train=64, crop=48, per_photo=8, pgd_steps=20, pgd_restarts=2,
                          apgd_steps=20, square_queries=200, stadv_steps=20, uap_epochs=5, cw_steps=20, eot_draws=8,
                          n_boot=1000, model_checks=64, chunk=128),
    "full": AuditProfile("full", n_images=0, n_train=512, crop=224, per_photo=8, pgd_steps=100, pgd_restarts=5,
                         apgd_steps=100, square_queries=1000, stadv_steps=50, uap_epochs=10, cw_steps=100,
                         eot_draws=16, n_boot=2000, model_checks=256, chunk=64),
}


def get_profile(profile: str | AuditProfile) -> AuditProfile:
    """The :class:`AuditProfile` named ``profile`` (or ``profile`` itself)."""
    if isinstance(profile, AuditProfile):
        return profile
    if profile not in PROFILES:
        raise ValueError(f"unknown audit profile {profile!r}; valid: {list(PROFILES)}")
    return PROFILES[profile]


@dataclasses.dataclass(frozen=True)
class SuiteAttack:
    """One entry of the suite: an attack family at one budget in one direction.

    ``attack`` is the configured :class:`~robustbook.attacks.Attack`; for ``UAP`` it is ``None``
    until :meth:`materialise` has learned the perturbation on the model (UAP has two phases).
    ``key`` (``"PGD-up-eps4"``) names the attack's result file in an audit folder.
    """

    family: str
    direction: str
    eps_255: int
    attack: Attack | None
    uap_epochs: int = 0
    bpda: Callable[[nn.Module], ContextManager] | None = None

    @property
    def key(self) -> str:
        return f"{self.family}-{self.direction}-eps{self.eps_255}"

    @property
    def eps(self) -> float:
        return self.eps_255 / 255

    @property
    def black_box(self) -> bool:
        return self.family in BLACK_BOX

    @property
    def loss(self):
        return _LOSS[self.direction]

    def materialise(self, model: nn.Module, x_train: torch.Tensor, *, generator: torch.Generator | None = None,
                    eot: int = 1) -> Attack:
        """The runnable attack; for ``UAP``, learn ``δ`` on ``x_train`` (through ``bpda`` and EOT when given)."""
        if self.attack is not None:
            return self.attack
        import contextlib

        from robustbook.attacks import EOT, UAP, train_uap

        target = EOT(model, eot) if eot > 1 else model
        with self.bpda(model) if self.bpda is not None else contextlib.nullcontext():
            delta = train_uap(target, x_train, self.eps, epochs=self.uap_epochs, loss=self.loss, generator=generator)
        return UAP(delta, 1.0)

    def describe(self) -> dict[str, Any]:
        d = {"key": self.key, "family": self.family, "direction": self.direction, "eps_255": self.eps_255,
             "black_box": self.black_box}
        if self.attack is not None:
            d["attack"] = self.attack.describe()
        else:
            d["attack"] = {"name": "UAP", "label": f"UAP (L∞, ε={self.eps_255}/255, learned {self.uap_epochs} epochs)",
                           "eps": self.eps, "epochs": self.uap_epochs, "eot": 1}
        return d

    def __str__(self) -> str:
        return f"{self.family} {self.direction} ε={self.eps_255}/255"


def build_suite(profile: str | AuditProfile, full_reference: bool, *, eot: int = 1,
                bpda: Callable[[nn.Module], ContextManager] | None = None,
                generator: torch.Generator | None = None, eps_255: tuple[int, ...] = EPS_255,
                families: tuple[str, ...] | None = None) -> list[SuiteAttack]:
    """The suite at ``profile``'s sizes: every family × direction × ε (see the module docstring).

    Args:
        profile: ``"smoke"``, ``"quick"``, ``"full"`` or an :class:`AuditProfile`.
        full_reference: add C&W (the suite of a full-reference model).
        eot: draws per step of Expectation over Transformation for every gradient attack and
            Square (set it for randomised models; the audit does so when the randomness check fires).
        bpda: a ``model -> context manager`` surrogate for the backward pass (e.g.
            :func:`robustbook.models.bpda_soft_threshold`), used by every gradient attack.
        generator: random starts, Square's squares and UAP's shuffling (seeded by the audit).
        eps_255, families: a subset (for tests and exercises; a card made with a subset says so).
    """
    p = get_profile(profile)
    fams = tuple(f for f in FAMILIES if f != "C&W" or full_reference) if families is None else tuple(families)
    unknown = sorted(set(fams) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown attack families {unknown}; valid: {list(FAMILIES)}")
    out: list[SuiteAttack] = []
    for e255 in eps_255:
        e = e255 / 255
        for d in DIRECTIONS:
            loss = _LOSS[d]
            grad = {"loss": loss, "eot": eot, "bpda": bpda}
            made: dict[str, Attack | None] = {
                "FGSM": FGSM(e, **grad),
                "PGD": PGD(e, p.pgd_steps, restarts=p.pgd_restarts, generator=generator, **grad),
                "APGD": APGD(e, p.apgd_steps, generator=generator, **grad),
                "UAP": None,
                "stAdv": StAdv(e255 / 8, p.stadv_steps, loss=loss).replace(eot=eot, bpda=bpda),
                "Square": Square(e, p.square_queries, loss=loss, generator=generator, eot=eot),
                "C&W": PGD(e, p.cw_steps, alpha=e / 4, random_start=False, **grad),
            }
            for f in fams:
                out.append(SuiteAttack(f, d, e255, made[f], uap_epochs=p.uap_epochs if f == "UAP" else 0,
                                       bpda=bpda if f == "UAP" else None))
    return out
