"""Wrappers that make an attack *know the defence*: fixed references, BPDA/STE and EOT.

* :class:`FixedReference` turns a full-reference model ``model(ref, dist)`` into a
  one-input model of ``dist``, so every attack perturbs the distorted image only.
* :func:`straight_through` (BPDA, Athalye et al. 2018) runs a non-differentiable
  or gradient-masking function forward and the identity backward.
* :func:`eot` (Expectation over Transformation, Athalye, Carlini & Wagner 2018,
  §3 and Athalye, Engstrom, Ilyas & Kwok 2018, eq. (1)) turns a randomised model and
  a loss into a pair whose input gradient is ``(1/n) Σ_k ∇_x ℓ(h(t_k(x)), y)``: the
  mean over draws of the *loss gradient*, the estimator EOT is defined by.
  ``average="output"`` gives the other estimator, ``∇_x ℓ((1/n) Σ_k h(t_k(x)), y)``
  (the gradient of the loss of the mean output, :class:`EOT`), which differs from
  it whenever ℓ is not linear in the output (cross-entropy, squared error).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from robustbook.autograd import straight_through  # noqa: F401 - re-exported: robustbook.attacks.straight_through


class FixedReference(nn.Module):
    """``dist ↦ model(ref, dist)`` for a full-reference model; only ``dist`` is attacked.

    ``ref`` must have the same batch size as the ``dist`` passed later (slice it
    together with the batch). The wrapper owns no parameters of its own and
    forwards ``train()``/``eval()`` to the wrapped model.
    """

    def __init__(self, model: nn.Module, ref: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("ref", ref.detach(), persistent=False)

    def forward(self, dist: torch.Tensor) -> torch.Tensor:
        if dist.shape != self.ref.shape:
            raise ValueError(f"dist has shape {tuple(dist.shape)} but the fixed reference has {tuple(self.ref.shape)}")
        return self.model(self.ref, dist)


class EOT(nn.Module):
    """Average a randomised model's *outputs* over ``n`` forward passes: ``(1/n) Σ_k model(t_k(x))``.

    This is the output-averaging estimator (``eot(..., average="output")``): the
    gradient of a loss of the mean output. Athalye et al.'s EOT averages the loss
    gradients instead; use :func:`eot` (or ``Attack(eot=n)``) for that. Pass
    ``transform`` for an explicit random input transformation, or leave it
    ``None`` when the model itself is random. Also a smoothed predictor in its own right.
    """

    def __init__(self, model: nn.Module, n: int,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        self.model, self.n, self.transform = model, n, transform

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.model(self.transform(x) if self.transform else x) for _ in range(self.n)]
        return torch.stack(outs).mean(0)


class EOTDraws(nn.Module):
    """``n`` independent forward passes of a randomised model, concatenated along the batch.

    ``x`` of batch ``N`` gives outputs of batch ``n·N`` (draw-major: rows ``k·N … k·N + N − 1``
    are draw ``k``). Each draw is its own forward call, so a model that draws its
    randomness once per call (a random resize of the whole batch) gets ``n`` draws.
    Pair it with :func:`eot_loss`; :func:`eot` builds both.
    """

    def __init__(self, model: nn.Module, n: int,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        self.model, self.n, self.transform = model, n, transform

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.model(self.transform(x) if self.transform else x) for _ in range(self.n)])


def eot_loss(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], n: int
             ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss`` of :class:`EOTDraws`' outputs, averaged over the ``n`` draws per sample.

    The result is per-sample (shape ``(N,)``) when ``loss`` is, so its summed gradient is
    ``(1/n) Σ_k ∇_x ℓ(h(t_k(x)), y)``; a scalar ``loss`` is divided by ``n``.
    """

    def averaged(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y_rep = y.repeat(n, *([1] * (y.dim() - 1))) if isinstance(y, torch.Tensor) and y.dim() > 0 else y
        value = loss(output, y_rep)
        if value.dim() == 0:
            return value / n
        return value.reshape(n, -1, *value.shape[1:]).mean(0)

    return averaged


EOT_AVERAGES = ("gradient", "output")


def eot(model: nn.Module, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], n: int, *,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None, average: str = "gradient"):
    """Model and loss for an EOT attack with ``n`` draws: pass both to any gradient attack.

    ``average="gradient"`` (Athalye et al.'s EOT): ``(EOTDraws(model, n), eot_loss(loss, n))``,
    whose input gradient is the mean over draws of the loss gradient. ``average="output"``:
    ``(EOT(model, n), loss)``, the gradient of the loss of the mean output. One attack step costs
    ``n`` forward and ``n`` backward passes either way (``benchmarks/pgd_cost.py``)::

        m, l = eot(lwta_model, losses.mse_away, 8)
        x_adv = pgd(m, x, y, eps, alpha, steps, loss=l)
    """
    if average not in EOT_AVERAGES:
        raise ValueError(f"average must be one of {EOT_AVERAGES}, got {average!r}")
    if average == "output":
        return EOT(model, n, transform), loss
    return EOTDraws(model, n, transform), eot_loss(loss, n)
