"""Local Lipschitz estimates and the one-dimensional maps behind ST Norm's Lipschitz argument.

Source 000 (ST Norm), section III-C. The Lipschitz constant of eq. (11),
``Lip(f) = sup_{δ≠0} ‖f(x) − f(x+δ)‖ / ‖δ‖``, is bounded below here by search:
:func:`local_lipschitz` maximises the ratio over a small ball around each input by
projected gradient ascent, and :func:`input_gradient_norm` gives its infinitesimal
version ``‖∇_x f(x)‖₂``. Eq. (12), ``Lip(f) ≥ Lip(S ∘ f)``, rests on the soft
threshold ``S`` (eq. (9), :func:`soft_threshold`) being 1-Lipschitz, with slope 0
inside the threshold band and 1 outside (:func:`soft_threshold_grad`). The L∞
normalisation of eq. (10) (:func:`linf_normalize`) is *not* 1-Lipschitz — it scales
small inputs up — so eq. (12) alone does not cover the full ST Norm.

All functions differentiate with :func:`torch.autograd.grad` with respect to the
input only (parameters' ``.grad`` are never touched) and restore every submodule's
train/eval mode.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from robustbook.attacks._core import NORMS, attack_mode, flat_norm, project
from robustbook.models.stnorm import linf_normalize, soft_threshold

__all__ = ["input_gradient_norm", "linf_normalize", "local_lipschitz", "soft_threshold", "soft_threshold_grad"]


def soft_threshold_grad(u: torch.Tensor, lam: float) -> torch.Tensor:
    """Derivative of :func:`soft_threshold`: 1 where ``|u| > λ``, 0 where ``|u| ≤ λ``.

    At the kinks ``|u| = λ`` the value 0 is used (a valid subgradient choice). With
    ``λ = 0`` the derivative is 1 except at ``u = 0``.
    """
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam >= 0:
        raise ValueError(f"lam must be a non-negative number, got {lam!r}")
    u = torch.as_tensor(u)
    dtype = u.dtype if u.is_floating_point() else torch.float32
    return (u.abs() > lam).to(dtype)


def _flat_out(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    out = f(x)
    if not isinstance(out, torch.Tensor) or out.dim() < 1 or out.shape[0] != x.shape[0]:
        raise ValueError(f"f must return a tensor whose first axis is the batch ({x.shape[0]}), got "
                         f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    return out.reshape(x.shape[0], -1)


def _check_x(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"x must be a batch (N, ...), got shape {tuple(x.shape)}")


def _random_start(x: torch.Tensor, eps: float, norm: str, generator: torch.Generator | None) -> torch.Tensor:
    kw = {"generator": generator, "device": "cpu" if generator is not None else x.device, "dtype": x.dtype}
    if norm == "linf":
        d = (torch.rand(x.shape, **kw) * 2 - 1) * eps
    else:
        d = torch.randn(x.shape, **kw)
        d = eps * d / flat_norm(d).clamp_min(1e-12)
    return d.to(x.device)


def local_lipschitz(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, eps: float = 1 / 255,
                    steps: int = 20, step_size: float | None = None, norm: str = "l2", n_restarts: int = 1,
                    generator: torch.Generator | None = None, eval_mode: bool = True) -> torch.Tensor:
    """Lower bound on the local Lipschitz constant of ``f`` around each sample (eq. (11)).

    Maximises ``R(δ) = ‖f(x+δ) − f(x)‖₂ / ‖δ‖₂`` over ``‖δ‖ ≤ eps`` by projected gradient
    ascent on ``R`` itself: a random start (L2: a random direction at radius ``eps``;
    L∞: uniform in the box), then ``steps`` normalised-gradient steps (L2:
    ``δ ← Π(δ + α ∇R/‖∇R‖₂)``; L∞: ``δ ← Π(δ + α sign ∇R)``), ``n_restarts`` times. The
    largest ratio met at any iterate is returned per sample, so the result is a
    valid lower bound on ``sup R`` (up to floating-point error). For a linear map it
    approaches the largest singular value.

    Args:
        f: module or callable, ``(N, ...) → (N, ...)`` (scalar scores ``(N,)`` too). Samples
            must not interact (eval-mode BatchNorm); the ratio uses each sample's
            flattened output.
        x: inputs ``(N, ...)``; no clipping to an image range is applied (the
            ratio is a property of ``f`` on the whole space).
        eps: radius of the ball in ``norm`` (default 1/255: a *local* constant at the
            scale of the paper's attacks).
        steps: ascent steps per restart (≥ 0).
        step_size: ``α``; default ``eps / 4``.
        norm: the ball: ``"l2"`` or ``"linf"``. The ratio itself is always L2/L2.
        n_restarts: independent random starts (≥ 1).
        generator: optional CPU generator for the random starts.
        eval_mode: evaluate ``f`` in eval mode (mode restored afterwards).

    Returns:
        ``(N,)`` detached tensor of ratios.
    """
    _check_x(x)
    if not (isinstance(eps, (int, float)) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if isinstance(n_restarts, bool) or not isinstance(n_restarts, int) or n_restarts < 1:
        raise ValueError(f"n_restarts must be a positive int, got {n_restarts!r}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    alpha = eps / 4 if step_size is None else step_size
    if not (isinstance(alpha, (int, float)) and alpha > 0):
        raise ValueError(f"step_size must be a positive number, got {step_size!r}")
    x0 = x.detach()
    best = torch.zeros(x0.shape[0], dtype=x0.dtype, device=x0.device)
    with attack_mode(f, eval_mode):
        with torch.no_grad():
            y0 = _flat_out(f, x0)
        for _ in range(n_restarts):
            delta = _random_start(x0, eps, norm, generator)
            for t in range(steps + 1):
                delta = delta.detach().requires_grad_(True)
                with torch.enable_grad():
                    num = (_flat_out(f, x0 + delta) - y0).norm(p=2, dim=1)
                    ratio = num / delta.flatten(1).norm(p=2, dim=1).clamp_min(1e-30)
                    best = torch.maximum(best, ratio.detach())
                    if t == steps:
                        break
                    (g,) = torch.autograd.grad(ratio.sum(), delta)
                if norm == "l2":
                    step = alpha * g / flat_norm(g).clamp_min(1e-30)
                else:
                    step = alpha * g.sign()
                delta = project(delta.detach() + step, eps, norm)
    return best.detach()


def input_gradient_norm(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *,
                        eval_mode: bool = True) -> torch.Tensor:
    """Per-sample ``‖∇_x f(x)‖₂`` — the infinitesimal Lipschitz ratio at ``x``.

    Scalar outputs ``(N,)`` (or ``(N, 1)``): the L2 norm of the input gradient, one
    backward pass. Vector outputs ``(N, K)``: the Frobenius norm of the per-sample
    Jacobian, ``sqrt(Σ_k ‖∇_x f_k(x)‖₂²)``, computed exactly with one backward pass per
    output ``k`` (``K`` passes), assuming samples do not interact (eval mode). For a
    random model (LWTA) one forward draw is differentiated.

    Returns:
        ``(N,)`` detached tensor.
    """
    _check_x(x)
    xg = x.detach().requires_grad_(True)
    with attack_mode(f, eval_mode), torch.enable_grad():
        out = _flat_out(f, xg)
        k = out.shape[1]
        sq = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for j in range(k):
            (g,) = torch.autograd.grad(out[:, j].sum(), xg, retain_graph=j < k - 1)
            sq = sq + g.flatten(1).pow(2).sum(1)
    return sq.sqrt().detach()
