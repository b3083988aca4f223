"""Every IQA defence of the book as "backbone + defence X": one registry (introduced in the arena chapter).

A defence changes a no-reference quality model in one or both of two places, and the registry says which:

* **the model** (architecture defences): ST Norm (source 000, eq. (10), :func:`~robustbook.models.swap_batchnorm`),
  stochastic LWTA (Panousis et al., a baseline of source 000, :func:`~robustbook.models.swap_relu_for_lwta`),
  feature denoising (Xie et al. 2019, a baseline of source 000, :func:`~robustbook.models.add_feature_denoise`),
  RobustBlock (source 001, :class:`~robustbook.models.RobustBlock` "between the last two conv blocks");
* **the training step** (training defences, all on :func:`robustbook.train.fit`): AT (PGD adversarial
  training mixed with the clean loss, eq. (4) of source 000 with PGD as the inner maximiser), R- (vanilla
  adversarial training, eq. (2) of source 002: the loss on attacked images only), AT- (Chistyakova et al.
  2024's label penalty, :class:`~robustbook.train.aat.LabelPenalty`) and AAT (source 002, Algorithm 1:
  band batches with clean anchors, :class:`~robustbook.losses.AATLoss`, :func:`~robustbook.train.aat.fit_aat`).

Each :class:`Defence` also says how an attacker who knows it attacks it (:meth:`Defence.adaptive`): EOT over
the random draws of a randomised model (LWTA samples its winners at test time) and BPDA through the parts
whose gradient is zero or misleading (ST Norm's soft threshold has a flat band:
:func:`~robustbook.models.bpda_soft_threshold`). Nothing here is an attack, a metric or a model of its own:
the registry only wires the library's pieces together.

Usage::

    from robustbook import defences
    model = defences.build("stnorm", lambda: resnet_iqa("tiny", width=8), input_size=32)
    history = defences.train("stnorm", model, x, y, defences.TrainSetup(epochs=8))
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from robustbook.attacks import PGD
from robustbook.attacks import losses as attack_losses
from robustbook.losses.birqa import regression_loss
from robustbook.models.feature_denoise import add_feature_denoise
from robustbook.models.lwta import swap_relu_for_lwta
from robustbook.models.robust_block import RobustBlock
from robustbook.models.stnorm import bpda_soft_threshold, swap_batchnorm
from robustbook.train.aat import fit_aat, fit_adversarial
from robustbook.train.loaders import make_loader
from robustbook.train.loop import fit

__all__ = ["DEFENCES", "Defence", "TrainSetup", "build", "names", "train"]

TRAININGS = ("plain", "at", "r", "at_label", "aat")


@dataclass(frozen=True)
class TrainSetup:
    """What every defence of one comparison shares: the budget and the optimiser, the base loss, the attack.

    Args:
        epochs: passes over the training set (AAT: as many band batches per epoch as a plain epoch has batches).
        lr: Adam's learning rate. batch_size: images per batch (AAT: its band batches, the same size).
        seed: initial weights (call ``seed_everything`` before :func:`build`), shuffling and the attack's starts.
        loss_alpha: α of the base loss, eq. (5) of source 002: ``α·MSE − (1 − α)·PLCC`` (1 = plain MSE).
        eps: the training attack's L∞ budget in units of 1/255.
        steps: PGD steps of the training attack (step ``2.5ε/steps``, random start).
        mix_alpha: AT's weight of the clean loss (eq. (4) of source 000); AT- uses 0.5 (Chistyakova et al.).
        lam: ST Norm's threshold λ (source 000: 0.2). denoise_stages: stages followed by a denoising block.
        robustblock_after: the ResNet stage the RobustBlock follows (``layer3``: between the last two blocks).
        n_anchors: AAT's clean anchors per batch (source 002: 8 of 16). topk: k of eq. (6) (4).
        aat_weight: the anchored loss's weight in L_AAT (eq. (6): ½).
        label_penalty: p of AT- (1).
    """

    epochs: int = 8
    lr: float = 1e-3
    batch_size: int = 16
    seed: int = 0
    loss_alpha: float = 0.7
    eps: float = 4.0
    steps: int = 3
    mix_alpha: float = 0.5
    lam: float = 0.2
    denoise_stages: tuple[str, ...] = ("layer3", "layer4")
    robustblock_after: str = "layer3"
    n_anchors: int = 8
    topk: int = 4
    aat_weight: float = 0.5
    label_penalty: float = 1.0

    def key(self) -> dict:
        """JSON-friendly (for cache keys)."""
        d = asdict(self)
        d["denoise_stages"] = list(self.denoise_stages)
        return d


def _identity(model: nn.Module, setup: TrainSetup, input_size: int) -> nn.Module:
    return model


def _stnorm(model, setup, input_size):
    return swap_batchnorm(model, setup.lam)


def _lwta(model, setup, input_size):
    return swap_relu_for_lwta(model)


def _denoise(model, setup, input_size):
    return add_feature_denoise(model, list(setup.denoise_stages))


def _robustblock(model, setup, input_size):
    trunk = getattr(model, "trunk", None)
    stage = getattr(trunk, setup.robustblock_after, None) if trunk is not None else None
    if stage is None:
        raise ValueError("the RobustBlock goes after a stage of a ResNet trunk "
                         f"(model.trunk.{setup.robustblock_after}); "
                         f"{type(model).__name__} has none")
    shapes: dict[str, torch.Size] = {}

    def record(module, inputs, output) -> None:  # returns None: the output is left as it is
        shapes["out"] = output.shape

    hook = stage.register_forward_hook(record)
    probe = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, input_size, input_size))
    hook.remove()
    model.train(probe)
    _, c, h, w = shapes["out"]
    if h != w or h < 3:
        raise ValueError(f"the RobustBlock's 3x3 orthogonal convolution needs a square map of at least 3 px after "
                         f"{setup.robustblock_after}, got {h}x{w} for {input_size}-px images: use larger images or a "
                         "smaller stem stride")
    setattr(trunk, setup.robustblock_after, nn.Sequential(stage, RobustBlock(int(c), int(h))))
    return model


@dataclass(frozen=True)
class Defence:
    """One defence: how it changes the model (``modify``), how it trains (``training``), how to attack it.

    Attributes:
        name: registry key. label: for tables. source: where the book takes it from.
        modify: ``(backbone, setup, input_size) -> model`` (in place is fine; return the model).
        training: ``"plain"`` (the base loss), ``"at"`` (PGD AT mixed with clean, eq. (4) of source 000),
            ``"r"`` (attacked images only, eq. (2) of source 002), ``"at_label"`` (AT-, label penalty),
            ``"aat"`` (Algorithm 1 of source 002).
        randomised: the forward pass draws random numbers at test time (attack with EOT).
        bpda: a ``model -> context manager`` that swaps in a surrogate gradient (attack with BPDA).
    """

    name: str
    label: str
    source: str
    modify: Callable[[nn.Module, TrainSetup, int], nn.Module] = _identity
    training: str = "plain"
    randomised: bool = False
    bpda: Callable[[nn.Module], contextlib.AbstractContextManager] | None = None

    def __post_init__(self) -> None:
        if self.training not in TRAININGS:
            raise ValueError(f"training must be one of {TRAININGS}, got {self.training!r}")

    def adaptive(self, eot: int) -> dict[str, Any]:
        """The options of :mod:`robustbook.attacks`' gradient attacks that know this defence: ``eot``, ``bpda``."""
        out: dict[str, Any] = {}
        if self.randomised:
            out["eot"] = int(eot)
        if self.bpda is not None:
            out["bpda"] = self.bpda
        return out


DEFENCES: dict[str, Defence] = {d.name: d for d in (
    Defence("plain", "plain training", "the undefended backbone"),
    Defence("at", "AT (PGD)", "adversarial training, eq. (4) of source 000 with PGD", training="at"),
    Defence("stnorm", "ST Norm", "source 000, eq. (10)", modify=_stnorm, bpda=bpda_soft_threshold),
    Defence("lwta", "LWTA", "Panousis et al. 2019, a baseline of source 000", modify=_lwta, randomised=True),
    Defence("denoise", "feature denoising", "Xie et al. 2019, a baseline of source 000", modify=_denoise),
    Defence("robustblock", "RobustBlock", "source 001", modify=_robustblock),
    Defence("aat", "AAT", "source 002, Algorithm 1", training="aat"),
    Defence("r", "R-", "vanilla adversarial training, eq. (2) of source 002", training="r"),
    Defence("at_label", "AT-", "label-smoothing AT, Chistyakova et al. 2024 (a baseline of source 002)",
            training="at_label"),
)}


def names() -> list[str]:
    """The registry's defence names, in the book's order."""
    return list(DEFENCES)


def _get(name: str) -> Defence:
    if name not in DEFENCES:
        raise KeyError(f"unknown defence {name!r}; the registry has {names()}")
    return DEFENCES[name]


def build(name: str, backbone: Callable[[], nn.Module], *, input_size: int,
          setup: TrainSetup | None = None) -> nn.Module:
    """``backbone()`` with defence ``name`` applied to the model (training defences leave it unchanged).

    ``backbone`` is a factory (e.g. ``lambda: resnet_iqa("tiny", width=8)``) of a :class:`~robustbook.models.ResNetIQA`;
    ``input_size`` is the side of the square images (the RobustBlock's orthogonal convolution is built for one size).
    """
    d = _get(name)
    model = backbone()
    if not isinstance(model, nn.Module):
        raise TypeError(f"backbone() must return an nn.Module, got {type(model).__name__}")
    return d.modify(model, setup or TrainSetup(), int(input_size))


def train_attack(setup: TrainSetup, loss: Callable) -> PGD:
    """The training attack of every adversarial defence: PGD-``steps`` at ``eps``/255, batch statistics."""
    return PGD(setup.eps / 255, setup.steps, loss=loss, eval_mode=False)


def train(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, setup: TrainSetup, *,
          progress: bool = False) -> dict[str, Any]:
    """Train ``model`` (from :func:`build`) on images ``x`` in [0, 1] and scores ``y`` as defence ``name`` trains.

    Returns ``{"history": fit's history as a dict, "wall_s", "cpu_s", "passes"}``: the training's wall and CPU
    time, and ``passes``, the images that went through ``model``'s forward pass per training image (training steps,
    the training attack's steps and any other evaluation alike). The CPU time is the cost in
    seconds, architecture included; ``passes`` is the same budget counted exactly (it does not vary from run to run
    and grows with every attack step).
    """
    d = _get(name)
    if x.dim() != 4 or y.shape != (len(x),):
        raise ValueError(f"x must be images (N, 3, H, W) and y scores (N,), got {tuple(x.shape)} and {tuple(y.shape)}")
    base = partial(regression_loss, alpha=setup.loss_alpha)
    adam = partial(torch.optim.Adam, lr=setup.lr)
    common = {"epochs": setup.epochs, "lr": setup.lr, "seed": setup.seed, "batch_size": setup.batch_size,
              "alpha": setup.loss_alpha, "progress": progress}
    seen = [0]

    def count(module: nn.Module, inputs: tuple) -> None:  # returns None: the input is left as it is
        seen[0] += int(inputs[0].shape[0]) if inputs and isinstance(inputs[0], torch.Tensor) else 0

    hook = model.register_forward_pre_hook(count)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        if d.training in ("plain", "at"):
            loader = make_loader(torch.utils.data.TensorDataset(x, y), setup.batch_size, shuffle=True, seed=setup.seed,
                                 drop_last=len(x) > setup.batch_size)
            at = d.training == "at"
            hist = fit(model, loader, loss_fn=base, epochs=setup.epochs, seed=setup.seed, optimizer=adam,
                       attack=train_attack(setup, attack_losses.mse_away) if at else None,
                       mix_alpha=setup.mix_alpha if at else None, progress=progress).as_dict()
        elif d.training in ("r", "at_label"):  # source 002: the attacker raises the score (eq. (1))
            hist = fit_adversarial(model, None, x, y, mode="R" if d.training == "r" else "AT",
                                   attack=train_attack(setup, attack_losses.score_up), p=setup.label_penalty,
                                   y_range=(0.0, 1.0), **common)["history"]  # scores in [0, 1] (data.normalise_score)
        else:  # aat
            out = fit_aat(model, None, x, y, attack=train_attack(setup, attack_losses.score_up),
                          n_anchors=setup.n_anchors, k=setup.topk, weight=setup.aat_weight,
                          batches=max(1, len(x) // setup.batch_size), **common)
            hist = {**out["history"], "aat_batches": len(out["batches"]), "aat_widened": out["widened"]}
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        hook.remove()
    return {"history": hist, "wall_s": wall, "cpu_s": cpu, "passes": seen[0] / len(x)}
