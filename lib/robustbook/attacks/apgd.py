"""Auto-PGD (Croce & Hein, ICML 2020), L∞ and L2: PGD without a step size to tune.

"Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", Algorithm 1. Per sample:

* the step size starts at ``η = 2ε`` and is halved at checkpoints ``w_j`` when
  the search stalls; after a halving the search restarts from the best point so far;
* each step is a projected gradient step followed by momentum ``α = 0.75``
  (eq. (2)): ``z = P(x⁽ᵏ⁾ + η·s(∇))``, ``x⁽ᵏ⁺¹⁾ = P(x⁽ᵏ⁾ + α(z − x⁽ᵏ⁾) + (1 − α)(x⁽ᵏ⁾ − x⁽ᵏ⁻¹⁾))``,
  ``s = sign`` for L∞ and ``∇/‖∇‖₂`` for L2 (no momentum at the first step);
* checkpoints ``w_j = ⌈p_j N⌉``, ``p_0 = 0``, ``p_1 = 0.22``,
  ``p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)``;
* at ``w_j`` the step is halved if **condition 1**: at most a fraction ``ρ`` of the
  steps since ``w_{j−1}`` increased the loss, or **condition 2**: the step was not
  halved at ``w_{j−1}`` and the best loss has not increased since then;
* the point returned is the one with the highest loss seen (not the last iterate).

Where the paper leaves details open this follows the authors' code (and
torchattacks' ``APGD``, which copies it): the checkpoint intervals are
``max(⌊0.22N⌋, 1)``, shrinking by ``max(⌊0.03N⌋, 1)`` down to ``max(⌊0.06N⌋, 1)``
(the same ``w_j`` as the formula for N = 100); condition 1 uses ``≤ ρ·(w_j − w_{j−1})``;
condition 2 cannot fire at the first checkpoint; a step counts as successful when
its loss beats the previous evaluated iterate's; the random start is
``x + ε·t/‖t‖`` with ``t`` uniform in [−1, 1] (L∞, ``‖·‖∞``) or Gaussian (L2,
``‖·‖₂``), i.e. on the sphere of the ball, clipped to [0, 1]. One deliberate
difference: the first step of the first interval is compared with the loss of
the start point, as the paper defines it (the authors' code compares it with an
unfilled entry, zero). With a loss that is positive at the start (cross-entropy)
the two agree whenever the first step increases the loss (tested against
torchattacks, step for step, on a linear classifier).

Unlike torchattacks' ``APGD`` (classifiers only: it attacks only correctly
classified points and reports any misclassified iterate), this version
maximises ANY per-sample loss ``loss(output, y) -> (N,)`` for every sample and
every step: a quality model's score, a denoiser's distance, or cross-entropy /
:func:`~robustbook.attacks.losses.dlr` for a classifier. There is no early
stopping; a point that is already misclassified keeps climbing its loss.
Each iteration is one forward and one backward pass; the loss value comes from
the same pass as the gradient (:func:`~robustbook.attacks._core.loss_and_gradient`).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from robustbook.attacks._core import (
    attack_mode,
    check_inputs,
    flat_norm,
    loss_and_gradient,
    project,
    resolve_loss,
)
from robustbook.attacks.losses import Loss

__all__ = ["apgd", "checkpoints"]

MOMENTUM = 0.75  # α of eq. (2); the paper fixes it


def checkpoints(steps: int) -> list[int]:
    """The iterations ``w_1 < w_2 < …`` (1-based, ≤ ``steps``) at which APGD may halve its step.

    Interval lengths as the authors' code: ``max(⌊0.22N⌋, 1)``, then each one
    ``max(⌊0.03N⌋, 1)`` shorter, never shorter than ``max(⌊0.06N⌋, 1)``. For
    ``N = 100``: 22, 41, 57, 70, 80, 87, 93, 99, i.e. ``⌈p_j N⌉`` of the paper.
    """
    k, decrease, k_min = _intervals(steps)
    out, w = [], 0
    while w + k <= steps:
        w += k
        out.append(w)
        k = max(k - decrease, k_min)
    return out


def _intervals(steps: int) -> tuple[int, int, int]:
    return max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)


def apgd(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, eps: float,
         steps: int, *, norm: str = "linf", loss: Loss | None = None, n_restarts: int = 1, rho: float = 0.75,
         random_start: bool = True, eval_mode: bool = True,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """Maximise ``loss(model(x + δ), y)`` over ``‖δ‖ ≤ ε`` with Auto-PGD (Croce & Hein 2020, Alg. 1).

    Args:
        model: module or callable, images in [0, 1] → outputs (see :func:`fgsm`);
            composes with :class:`EOT` and :func:`straight_through` like :func:`pgd`.
        x: clean images ``(N, C, H, W)`` in [0, 1].
        y: class labels or float scores, passed to ``loss``.
        eps: budget in pixel units, in the L∞ or L2 norm per sample.
        steps: iterations per restart (≥ 0); each is one forward and one backward pass.
        norm: ``"linf"`` or ``"l2"``.
        loss: per-sample quantity to increase, ``loss(output, y) -> (N,)`` (a scalar
            loss is refused: APGD tracks every sample's loss). Default:
            cross-entropy for labels, squared error for scores (``mse_away``); for
            classifiers also :func:`~robustbook.attacks.losses.dlr`.
        n_restarts: independent runs (≥ 1), each from its own random start; per
            sample the point with the highest loss over all runs is returned.
        rho: ρ of condition 1, in (0, 1] (paper: 0.75).
        random_start: start each run from a random point on the ε-sphere (as the
            authors' code); ``False`` starts from ``x`` (then every restart is the
            same run, so use ``n_restarts=1``).
        eval_mode: run the model in eval mode during the attack; its mode is restored.
        generator: optional CPU ``torch.Generator`` for the random starts (reproducible
            runs; restart ``r`` uses the ``r``-th draw).

    Returns:
        Per sample the iterate with the highest loss over all steps and restarts
        (the start point included), detached, in [0, 1], within ε of ``x`` in ``norm``.
    """
    check_inputs(x, eps, norm)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if isinstance(n_restarts, bool) or not isinstance(n_restarts, int) or n_restarts < 1:
        raise ValueError(f"n_restarts must be a positive int, got {n_restarts!r}")
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0 < rho <= 1:
        raise ValueError(f"rho must be a number in (0, 1], got {rho!r}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch (N, ...), got shape {tuple(x.shape)}")
    loss_fn = resolve_loss(loss, y)
    x0 = x.detach()
    best_x, best_loss = x0.clone(), torch.full((x0.shape[0],), float("-inf"), dtype=x0.dtype, device=x0.device)
    with attack_mode(model, eval_mode):
        for _ in range(n_restarts):
            start = x0
            if random_start:
                start = torch.clamp(x0 + _random_start(x0, eps, norm, generator), 0.0, 1.0)
            run_x, run_loss = _single_run(model, x0, y, start, eps, steps, norm, loss_fn, rho)
            better = run_loss > best_loss
            best_x = torch.where(_bcast(better, x0), run_x, best_x)
            best_loss = torch.where(better, run_loss, best_loss)
    return best_x.detach()


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def _random_start(x: torch.Tensor, eps: float, norm: str, generator: torch.Generator | None) -> torch.Tensor:
    """A point of the ε-sphere: ``ε·t/‖t‖``, t uniform in [−1, 1] (L∞) or Gaussian (L2), as the authors' code."""
    if norm == "linf":
        t = 2 * torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device) - 1
        size = t.flatten(1).abs().max(1).values.view(-1, *([1] * (x.dim() - 1)))
    else:
        t = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        size = flat_norm(t)
    return eps * t / (size + 1e-12)


def _to_ball(z: torch.Tensor, x0: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    return torch.clamp(x0 + project(z - x0, eps, norm), 0.0, 1.0)


def _single_run(model, x0: torch.Tensor, y: torch.Tensor, start: torch.Tensor, eps: float, steps: int,
                norm: str, loss_fn: Loss, rho: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One run of Algorithm 1 from ``start``; returns (best point, its loss) per sample."""
    x_cur = start.detach()
    loss_cur, grad = loss_and_gradient(model, x_cur, y, loss_fn)
    x_best, loss_best, grad_best = x_cur.clone(), loss_cur.clone(), grad.clone()
    n = x0.shape[0]
    eta = torch.full((n,), 2.0 * eps, dtype=x0.dtype, device=x0.device)
    x_prev = x_cur
    k, decrease, k_min = _intervals(steps)
    since_check = 0
    successes = torch.zeros(n, dtype=torch.int64, device=x0.device)
    loss_prev = loss_cur
    best_at_check = loss_best.clone()
    halved_at_check = torch.ones(n, dtype=torch.bool, device=x0.device)  # condition 2 off at w_1 (authors' code)
    for i in range(steps):
        a = MOMENTUM if i > 0 else 1.0
        e = _bcast(eta, x0)
        if norm == "linf":
            direction = grad.sign()
        else:
            direction = grad / (flat_norm(grad) + 1e-12)
        z = _to_ball(x_cur + e * direction, x0, eps, norm)
        x_new = _to_ball(x_cur + a * (z - x_cur) + (1 - a) * (x_cur - x_prev), x0, eps, norm)
        x_prev, x_cur = x_cur, x_new.detach()
        loss_cur, grad = loss_and_gradient(model, x_cur, y, loss_fn)

        successes += (loss_cur > loss_prev).long()
        loss_prev = loss_cur
        improved = loss_cur > loss_best
        x_best = torch.where(_bcast(improved, x0), x_cur, x_best)
        grad_best = torch.where(_bcast(improved, x0), grad, grad_best)
        loss_best = torch.where(improved, loss_cur, loss_best)

        since_check += 1
        if since_check == k:  # checkpoint w_j
            cond1 = successes.to(x0.dtype) <= rho * k
            cond2 = ~halved_at_check & (best_at_check >= loss_best)
            halve = cond1 | cond2
            halved_at_check, best_at_check = halve, loss_best.clone()
            eta = torch.where(halve, eta / 2, eta)
            hb = _bcast(halve, x0)
            x_cur = torch.where(hb, x_best, x_cur)  # restart from the best point (x_prev kept: momentum as the paper)
            grad = torch.where(hb, grad_best, grad)
            successes.zero_()
            since_check = 0
            k = max(k - decrease, k_min)
    return x_best, loss_best
