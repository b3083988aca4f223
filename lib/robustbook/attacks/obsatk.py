"""ObsAtk: the observation-based zero-mean attack on image denoisers (Yan, thesis ch. 2, Algorithm 1).

A denoiser ``f`` maps a noisy observation ``y = x + v`` (``v`` zero-mean noise) to an estimate
of the clean image ``x``. ObsAtk looks for the perturbation of the *observation* that hurts the
reconstruction most, eq. (2.1)::

    δ* = argmax_δ ‖f(y + δ) − x‖²    s.t.  ‖δ‖₂ ≤ ε,   M(δ) = (1/m) Σ_i δ_i = 0.

The zero-mean constraint keeps the perturbation "noise": a constant shift only changes the
brightness, which a denoiser is right to keep. PGD solves it with the two-step projection of
eq. (2.2), first onto the zero-mean hyperplane, then onto the ε-ball
(:func:`project_zero_mean_l2`); Theorem 2.6.1 shows the two steps give the exact projection
onto the intersection (tested against a generic constrained solver).

Budgets follow the thesis' notation ``Atk-ε/√m``: with ``per_pixel=True`` (the default)
``eps`` is the root-mean-square budget per element, e.g. ``5/255``, and the L2 radius of an
image with ``m = C·H·W`` elements is ``eps·√m`` (:func:`l2_radius`).

The step. Algorithm 1 writes a raw-gradient step ``δ ← δ + η∇`` and leaves η unstated. The
book follows the authors' released code (HanshuYAN/ObsAtk, ``advertorch/attacks4IP/
zero_mean_pgd.py`` and ``main_train_HAT.py``): a step along the L2-normalised gradient of
length ``rel_step · radius`` (0.3 for the five evaluation steps, 1 for HAT's one-step training
attack), and at every step ``y + δ`` is clipped to [0, 1] *before* the zero-mean and L2
projections; the result is clipped once more at the end (Algorithm 1, line 6). This is the
book's reading of an unstated step, labelled as such on the page.

Introduced in the denoising chapter (source 003, chapter 2).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from robustbook.attacks._core import attack_mode, check_inputs, input_gradient
from robustbook.attacks.configured import Attack

__all__ = ["project_zero_mean_l2", "l2_radius", "reconstruction_error", "obsatk", "ObsAtk"]


def _radius_tensor(eps: float | torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``eps`` as a per-sample tensor broadcastable against ``delta`` (N, ...)."""
    shape = (delta.shape[0],) + (1,) * (delta.dim() - 1)
    if isinstance(eps, torch.Tensor):
        if eps.numel() not in (1, delta.shape[0]):
            raise ValueError(f"eps must be a number or hold one radius per sample ({delta.shape[0]}), "
                             f"got {eps.numel()} values")
        if torch.isnan(eps).any() or (eps < 0).any():
            raise ValueError("every radius in eps must be a non-negative number")
        return eps.to(delta.dtype).to(delta.device).reshape(-1).expand(delta.shape[0]).reshape(shape)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite non-negative number (an L2 radius), got {eps!r}")
    return torch.full(shape, float(eps), dtype=delta.dtype, device=delta.device)


def project_zero_mean_l2(delta: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
    """Project each sample of ``delta`` onto ``{z : mean(z) = 0} ∩ {z : ‖z‖₂ ≤ eps}`` (eq. 2.2).

    Step 1 (eq. 2.2a) removes the mean over all ``C·H·W`` elements of each sample (the
    projection onto the hyperplane ``nᵀz = 0`` with ``n`` the all-ones vector); step 2
    (eq. 2.2b) rescales by ``min(eps / ‖δ'‖₂, 1)``. By Theorem 2.6.1 the result is the exact
    Euclidean projection onto the intersection.

    Args:
        delta: perturbations, shape ``(N, ...)``; batched over the first axis.
        eps: the L2 radius, a number or one value per sample (``(N,)``).

    Returns:
        A tensor shaped like ``delta`` whose every sample has mean 0 and norm ≤ eps.
    """
    if not isinstance(delta, torch.Tensor) or not delta.is_floating_point():
        raise TypeError(f"delta must be a floating-point tensor (N, ...), got {type(delta).__name__}")
    if delta.dim() < 2:
        raise ValueError(f"delta must be batched, shape (N, ...) with at least 2 dims, got {tuple(delta.shape)}")
    radius = _radius_tensor(eps, delta)
    flat = delta.flatten(1)
    centred = (flat - flat.mean(dim=1, keepdim=True)).view_as(delta)      # eq. (2.2a)
    norm = centred.flatten(1).norm(p=2, dim=1).view_as(radius)
    scale = torch.clamp(radius / norm.clamp_min(1e-12), max=1.0)          # eq. (2.2b)
    return centred * scale


def l2_radius(eps: float, x: torch.Tensor) -> float:
    """The L2 radius ``eps·√m`` of the thesis' ``Atk-eps`` for images shaped like ``x`` (m = C·H·W)."""
    if x.dim() < 2:
        raise ValueError(f"x must be batched images (N, C, H, W), got shape {tuple(x.shape)}")
    return float(eps) * math.sqrt(x[0].numel())


def reconstruction_error(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample squared error ``‖f(y) − x‖²`` summed over ``C, H, W`` (ObsAtk's objective, eq. 2.1a)."""
    if output.shape != target.shape:
        raise ValueError(f"a denoiser's output {tuple(output.shape)} must have the target's shape "
                         f"{tuple(target.shape)}")
    return (output - target.to(output.dtype)).pow(2).flatten(1).sum(dim=1)


def obsatk(denoiser: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, x: torch.Tensor, eps: float,
           steps: int = 5, rel_step: float = 0.3, *, per_pixel: bool = True, step_size: float | None = None,
           clip: bool = True, eval_mode: bool = True) -> torch.Tensor:
    """Observation-based zero-mean attack (Algorithm 1): returns the attacked observations ``y + δ*``.

    Maximises ``‖f(y + δ) − x‖²`` over zero-mean ``δ`` with ``‖δ‖₂ ≤ radius``, starting from
    ``δ = 0``. Each step: ``δ ← δ + η · g/‖g‖₂`` (``g`` the gradient, per sample), then
    ``δ ← clip(y + δ, 0, 1) − y``, then :func:`project_zero_mean_l2`. The last iterate is
    clipped once more (``clip=True``), so the returned images lie in [0, 1]; before that last
    clip every sample of δ is zero-mean with norm ≤ radius (clipping only shrinks each element,
    so the norm bound survives it).

    Args:
        denoiser: module or callable, noisy images in [0, 1] → clean estimates (same shape).
        y: noisy observations ``(N, C, H, W)`` in [0, 1] (the inputs the attack perturbs).
        x: the ground-truth clean images, same shape (the attack's target).
        eps: the budget: per element (``Atk-eps``, radius ``eps·√(C·H·W)``) if ``per_pixel``,
            else the L2 radius itself.
        steps: PGD iterations (the thesis evaluates with 5, trains HAT with 1).
        rel_step: step length as a fraction of the radius (authors' code: 0.3 for
            evaluation, 1.0 for the one-step training attack).
        step_size: an absolute step length (L2) overriding ``rel_step``.
        clip: keep ``y + δ`` in [0, 1] at every step and at the end (Algorithm 1, line 6).
        eval_mode: run the denoiser in eval mode; every submodule's mode is restored.

    Returns:
        ``y + δ*``, detached, shaped like ``y``.
    """
    check_inputs(y, eps, "l2")
    if not isinstance(x, torch.Tensor) or x.shape != y.shape:
        raise ValueError(f"x (clean targets) must be a tensor shaped like y {tuple(y.shape)}, "
                         f"got {tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if not (isinstance(rel_step, (int, float)) and math.isfinite(rel_step) and rel_step >= 0):
        raise ValueError(f"rel_step must be a finite non-negative number (a fraction of the radius), got {rel_step!r}")
    if step_size is not None and not (isinstance(step_size, (int, float)) and step_size >= 0):
        raise ValueError(f"step_size must be None or a non-negative number, got {step_size!r}")
    y0, x0 = y.detach(), x.detach()
    radius = l2_radius(eps, y0) if per_pixel else float(eps)
    eta = float(step_size) if step_size is not None else rel_step * radius
    delta = torch.zeros_like(y0)
    with attack_mode(denoiser, eval_mode):
        for _ in range(steps):
            grad = input_gradient(denoiser, y0 + delta, x0, reconstruction_error)
            gnorm = grad.flatten(1).norm(p=2, dim=1).view(-1, *([1] * (grad.dim() - 1)))
            delta = delta + eta * grad / (gnorm + 1e-12)
            if clip:
                delta = torch.clamp(y0 + delta, 0.0, 1.0) - y0
            delta = project_zero_mean_l2(delta, radius).detach()
    out = y0 + delta
    return torch.clamp(out, 0.0, 1.0) if clip else out


def _obsatk(model: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, x: torch.Tensor, *,
            loss: object = None, **params: object) -> torch.Tensor:
    # the configured Attack passes its (fixed) loss; ObsAtk's objective is eq. (2.1a) itself
    return obsatk(model, y, x, **params)


def ObsAtk(eps: float, steps: int = 5, *, rel_step: float = 0.3, per_pixel: bool = True, clip: bool = True,
           eval_mode: bool = True) -> Attack:
    """Configured :func:`obsatk`: ``attack(denoiser, noisy, clean) -> attacked noisy images``.

    ``ObsAtk(5 / 255)`` is the thesis' evaluation attack ``Atk-5/255`` (radius ``5/255·√m``, five
    steps of 0.3 × radius); ``ObsAtk(5 / 255, 1, rel_step=1.0)`` is HAT's one-step training attack.
    The second argument of the call is the model's *input* (the noisy observation) and the third
    its *target* (the clean image), as for every attack of the book.
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite non-negative number (per element, e.g. 5/255), got {eps!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if not (isinstance(rel_step, (int, float)) and math.isfinite(rel_step) and rel_step > 0):
        raise ValueError(f"rel_step must be a positive number (step length / radius), got {rel_step!r}")
    return Attack("ObsAtk", _obsatk, {"eps": float(eps), "steps": steps, "rel_step": float(rel_step),
                                      "per_pixel": bool(per_pixel), "clip": bool(clip), "eval_mode": eval_mode,
                                      "loss": reconstruction_error}, "l2")
