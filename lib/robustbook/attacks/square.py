"""Square Attack (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020), L∞, score-based black-box.

"Square Attack: a query-efficient black-box adversarial attack via random search".
It needs no gradient, only the value of the loss the attacker wants to increase,
which makes it the book's **gradient-masking check**: a defence whose white-box
robustness comes from useless gradients (shattered, stochastic or vanishing)
falls to it, while a truly robust model does not. Introduced in the ST Norm
chapter (source 000), where it is run against ST Norm beside FGSM and PGD.

torchattacks' ``Square`` serves classifiers only (margin loss on logits, and it
stops on misclassified points). This version takes any per-sample loss
``loss(output, y)`` (e.g. :func:`robustbook.attacks.losses.mse_away` for a quality
model) and keeps searching on every sample for the whole query budget.

Random search in the L∞ ball, per sample:

1. start from vertical stripes: ``δ[c, :, w] = ±ε`` (one random sign per channel and column);
2. at query ``i`` pick a random square window of side
   ``s = round(sqrt(p_i · H · W))`` (``p_i`` follows the schedule of the paper, halving
   from ``p_init``) and set ``δ`` on it to ``±ε`` (one random sign per channel);
3. keep the change if the loss increased, else undo it.

Every iterate lies in the ε-ball around ``x`` and in [0, 1]; the loss of the kept
iterate never decreases. One query is one forward pass of the batch.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from robustbook.attacks._core import attack_mode, check_inputs, per_sample, resolve_loss
from robustbook.attacks.losses import Loss

__all__ = ["square", "p_schedule"]


def p_schedule(p_init: float, it: int, n_queries: int) -> float:
    """Fraction of pixels changed at query ``it`` (Andriushchenko et al.'s schedule).

    ``p_init`` is halved at queries 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000
    of a 10,000-query run; for other budgets the milestones are rescaled to ``n_queries``.
    """
    it = int(it / max(n_queries, 1) * 10000)
    for k, milestone in enumerate((10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)):
        if it <= milestone:
            return p_init / 2 ** k
    return p_init / 2 ** 9


def square(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, eps: float, *,
           queries: int = 1000, p_init: float = 0.05, loss: Loss | None = None, eval_mode: bool = True,
           generator: torch.Generator | None = None, return_history: bool = False):
    """Square Attack in the L∞ ball: increase ``loss(model(x + δ), y)`` by random search.

    Args:
        model: module or callable, images ``(N, C, H, W)`` in [0, 1] → outputs. Only
            forward passes are used (under ``torch.no_grad``).
        x: clean images in [0, 1].
        y: labels or scores, passed to ``loss``.
        eps: L∞ budget in pixel units (e.g. ``2/255``).
        queries: forward passes in all (≥ 1), the stripe initialisation included.
        p_init: initial fraction of pixels in the square (paper: 0.05 for L∞ on ImageNet,
            0.05–0.3 elsewhere).
        loss: per-sample quantity to increase, ``loss(output, y) -> (N,)``; default:
            cross-entropy for labels, squared error for scores (``mse_away``).
        eval_mode: run the model in eval mode (its mode is restored afterwards).
        generator: optional CPU ``torch.Generator`` for every random draw (reproducible runs).
        return_history: also return the mean loss of the kept iterates after each query.

    Returns:
        The adversarial images (detached, same shape/device as ``x``, in [0, 1],
        ``‖x_adv − x‖∞ ≤ eps``); with ``return_history`` the pair ``(x_adv, history)``,
        ``history`` a list of ``queries`` floats, non-decreasing.
    """
    check_inputs(x, eps)
    if isinstance(queries, bool) or not isinstance(queries, int) or queries < 1:
        raise ValueError(f"queries must be a positive int, got {queries!r}")
    if not (isinstance(p_init, (int, float)) and 0 < p_init <= 1):
        raise ValueError(f"p_init must be in (0, 1], got {p_init!r}")
    if x.dim() != 4:
        raise ValueError(f"x must be a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
    loss_fn = resolve_loss(loss, y)
    n, c, h, w = x.shape
    x0 = x.detach()
    dev, dtype = x0.device, x0.dtype

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, dtype=dtype).to(dev)

    def randint(high: int, size: int) -> torch.Tensor:
        return torch.randint(0, high, (size,), generator=generator).to(dev)

    def signs(*shape: int) -> torch.Tensor:
        return torch.where(rand(*shape) < 0.5, -1.0, 1.0).to(dtype)

    history: list[float] = []
    with attack_mode(model, eval_mode), torch.no_grad():
        def evaluate(xa: torch.Tensor) -> torch.Tensor:
            return per_sample(loss_fn(model(xa), y), n).detach()

        delta = eps * signs(n, c, 1, w).expand(n, c, h, w)
        x_best = torch.clamp(x0 + delta, 0.0, 1.0)
        best = evaluate(x_best)
        history.append(float(best.mean()))
        rows = torch.arange(h, device=dev).view(1, h, 1)
        cols = torch.arange(w, device=dev).view(1, 1, w)
        for it in range(1, queries):
            p = p_schedule(p_init, it, queries)
            s = int(min(max(round(math.sqrt(p * h * w)), 1), h - 1 if h > 1 else 1, w - 1 if w > 1 else 1))
            top = randint(max(h - s, 1), n).view(n, 1, 1)
            left = randint(max(w - s, 1), n).view(n, 1, 1)
            window = ((rows >= top) & (rows < top + s) & (cols >= left) & (cols < left + s)).unsqueeze(1)  # (N,1,H,W)
            new_vals = eps * signs(n, c, 1, 1)
            delta_cur = x_best - x0
            delta_new = torch.where(window, new_vals.expand(n, c, h, w), delta_cur)
            x_new = torch.clamp(x0 + delta_new.clamp(-eps, eps), 0.0, 1.0)
            value = evaluate(x_new)
            better = value > best
            x_best = torch.where(better.view(n, 1, 1, 1), x_new, x_best)
            best = torch.where(better, value, best)
            history.append(float(best.mean()))
    x_adv = x_best.detach()
    return (x_adv, history) if return_history else x_adv
