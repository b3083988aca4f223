"""Flows of ODEs, for the illustrations of source 003, chapter 3 (§3.3.4, §3.4.1, §3.7.3).

* :func:`integral_curves_1d`: many solutions of a scalar ODE (Fig. 3.2: integral
  curves never intersect, Theorem 3.3.1).
* :func:`time_shift_check`: the time-invariant property, eq. (3.3): the solution
  started from ``z(T′)`` is ``z(t + T′)`` (Fig. 3.3), which holds for
  autonomous dynamics (eq. (3.2)) and fails for time-dependent ones.
* :func:`phase_portrait_grid`, :func:`trajectories_2d`: a 2-D vector field and
  solutions through it.
* :func:`gronwall_bound`, :func:`estimate_lipschitz_dynamics`: Gronwall's
  inequality (Theorem 3.7.1), ``‖z₁(t) − z₂(t)‖ ≤ ‖x₂ − x₁‖·e^{Ct}`` with ``C``
  a Lipschitz constant of the dynamics, estimated from Jacobians (a lower
  estimate: the sampled points may miss the steepest place).
* :func:`mlp_lipschitz_bound`: a *certified* Lipschitz constant of a
  feed-forward chain (Linear layers and 1-Lipschitz activations such as tanh):
  the product of the layers' spectral norms (Szegedy et al. 2014, §4.3), the
  ``C`` that makes Theorem 3.7.1 a guarantee rather than a check.
* :func:`euler_paths`, :func:`order_swaps`, :func:`euler_map_dets`: what a
  *fixed-step* solver does. Theorem 3.3.1 is about the exact flow; the models
  run the Euler map ``Φ_h(z) = z + h·f(t, z)``. If ``h·C < 1`` (``C`` a
  Lipschitz constant of ``f``) then ``‖Φ_h(a) − Φ_h(b)‖ ≥ (1 − h·C)‖a − b‖ > 0``:
  distinct states stay distinct, and in one dimension their order is kept
  (``Φ_h' = 1 + h f' > 0``). In two dimensions a step keeps the orientation
  where ``det(I + h·J) > 0``; where it is negative the map folds the plane
  and discrete trajectories can cross. With a step too large, ``1 + h f' < 0``
  somewhere and two Euler paths swap order: the no-crossing argument no longer
  applies.

Dynamics are torchdiffeq-style callables ``f(t, z)`` (``t`` a 0-dim tensor,
``z`` a batch of states), or an :class:`~robustbook.models.odenet.ODEBlock`
whose own solver is then used. Generic callables are solved with
``odeint(method, rtol, atol)`` (default: dopri5 at tight tolerances) in
float64. All helpers return NumPy arrays (they feed plots).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torchdiffeq import odeint

from robustbook.models.odenet import ODEBlock

__all__ = ["integral_curves_1d", "TimeShift", "time_shift_check", "phase_portrait_grid", "trajectories_2d",
           "gronwall_bound", "estimate_lipschitz_dynamics", "mlp_lipschitz_bound", "euler_paths", "order_swaps",
           "euler_map_dets"]

Dynamics = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ArrayLike = torch.Tensor | np.ndarray | Sequence[float] | float


def _times(t: ArrayLike, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    ts = torch.as_tensor(np.asarray(t.detach().cpu() if isinstance(t, torch.Tensor) else t, dtype=np.float64),
                         dtype=dtype).flatten()
    if ts.numel() < 2 or not bool((ts[1:] > ts[:-1]).all()):
        raise ValueError(f"times must hold at least two strictly increasing values, got {ts.tolist()}")
    return ts


def _states(z: ArrayLike, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    if isinstance(z, torch.Tensor):
        return z.detach().to(dtype)
    return torch.as_tensor(np.asarray(z, dtype=np.float64), dtype=dtype)


def _solve(f: Dynamics | ODEBlock, z0: torch.Tensor, ts: torch.Tensor, method: str, rtol: float, atol: float,
           options: dict | None) -> torch.Tensor:
    """States at ``ts`` from ``z0`` at ``ts[0]``: (len(ts), *z0.shape), without gradients."""
    with torch.no_grad():
        if isinstance(f, ODEBlock):
            p = next(iter(f.parameters()), None)
            dtype, device = (p.dtype, p.device) if p is not None else (z0.dtype, z0.device)
            return f.trajectory(z0.to(dtype=dtype, device=device), ts.to(dtype=dtype, device=device)).cpu()
        if not callable(f):
            raise TypeError(f"f must be callable as f(t, z) or an ODEBlock, got {type(f).__name__}")
        return odeint(f, z0, ts.to(z0.dtype), method=method, rtol=rtol, atol=atol, options=options)


def integral_curves_1d(f: Dynamics | ODEBlock, z0s: ArrayLike, t: ArrayLike, *, method: str = "dopri5",
                       rtol: float = 1e-7, atol: float = 1e-9, options: dict | None = None) -> np.ndarray:
    """Solutions of the scalar ODE ``dz/dt = f(t, z)`` from every start in ``z0s``; shape ``(T, N)``.

    ``f`` receives the ``N`` states at once as a tensor of shape ``(N,)``;
    ``t`` are the output times, ``t[0]`` the initial one (Fig. 3.2).
    """
    z0 = _states(z0s).flatten()
    return _solve(f, z0, _times(t), method, rtol, atol, options).numpy()


class TimeShift(NamedTuple):
    """Result of :func:`time_shift_check`: two curves of shape ``(T, *z0.shape)`` and their gap."""

    shifted: np.ndarray     #: the original solution at the times ``t + T′``, i.e. ``z(t + T′)``
    restarted: np.ndarray   #: the solution started from ``z(T′)`` at time 0, i.e. ``z̃(t)``
    max_error: float        #: ``max |z̃(t) − z(t + T′)|``; ≈ 0 for time-invariant dynamics, eq. (3.3)


def time_shift_check(f: Dynamics | ODEBlock, z0: ArrayLike, T_shift: float, t: ArrayLike, *,
                     method: str = "dopri5", rtol: float = 1e-7, atol: float = 1e-9,
                     options: dict | None = None) -> TimeShift:
    """Test the time-invariant property, eq. (3.3): ``z̃(t) = z(t + T′)`` with ``z̃(0) = z(T′)``.

    ``t`` are times with ``t[0] = 0``. The original solution starts from ``z0``
    at time 0; ``z̃`` starts from ``z(T′)``, again at time 0. With an
    :class:`ODEBlock` its own solver runs: with a fixed step ``h`` and ``T′``
    and ``t`` multiples of ``h`` both curves use the same steps and agree to
    rounding for time-invariant dynamics.
    """
    ts = _times(t)
    if float(ts[0]) != 0.0:
        raise ValueError(f"t must start at 0 (the restart time), got t[0] = {float(ts[0])}")
    if not (isinstance(T_shift, (int, float)) and T_shift > 0):
        raise ValueError(f"T_shift must be a positive number, got {T_shift!r}")
    z = _states(z0)
    original = _solve(f, z, torch.cat([ts[:1], ts + T_shift]), method, rtol, atol, options)
    shifted = original[1:]
    z_shift = _solve(f, z, torch.tensor([0.0, float(T_shift)], dtype=torch.float64), method, rtol, atol,
                     options)[-1]
    restarted = _solve(f, z_shift.to(z.dtype), ts, method, rtol, atol, options)
    err = float((restarted.double() - shifted.double()).abs().max())
    return TimeShift(shifted.numpy(), restarted.numpy(), err)


def phase_portrait_grid(dynamics_2d: Dynamics | ODEBlock, xlim: tuple[float, float], ylim: tuple[float, float],
                        n: int = 20, t: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The vector field of a 2-D ODE on an ``n × n`` grid: ``(X, Y, U, V)`` for ``plt.quiver``/``streamplot``.

    ``X, Y`` come from ``np.meshgrid`` (shape ``(n, n)``, ``X`` varying along
    columns); ``(U, V) = f(t, (X, Y))``, evaluated in one batch of ``n²``
    states of shape ``(n², 2)``.
    """
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    for name, lim in (("xlim", xlim), ("ylim", ylim)):
        if len(lim) != 2 or not lim[0] < lim[1]:
            raise ValueError(f"{name} must be (low, high) with low < high, got {lim!r}")
    X, Y = np.meshgrid(np.linspace(*xlim, n), np.linspace(*ylim, n))
    f = dynamics_2d.dynamics if isinstance(dynamics_2d, ODEBlock) else dynamics_2d
    if not callable(f):
        raise TypeError(f"dynamics_2d must be callable as f(t, z) or an ODEBlock, got {type(f).__name__}")
    dtype = torch.float64
    if isinstance(f, torch.nn.Module):
        p = next(iter(f.parameters()), None)
        dtype = p.dtype if p is not None else dtype
    z = torch.as_tensor(np.stack([X.ravel(), Y.ravel()], axis=1), dtype=dtype)
    with torch.no_grad():
        uv = f(torch.tensor(float(t), dtype=dtype), z)
    if tuple(uv.shape) != (n * n, 2):
        raise ValueError(f"dynamics_2d must map states (M, 2) to derivatives (M, 2), got {tuple(uv.shape)}")
    uv = uv.detach().double().cpu().numpy()
    return X, Y, uv[:, 0].reshape(n, n), uv[:, 1].reshape(n, n)


def trajectories_2d(block_or_f: Dynamics | ODEBlock, starts: ArrayLike, ts: ArrayLike, *, method: str = "dopri5",
                    rtol: float = 1e-7, atol: float = 1e-9, options: dict | None = None) -> np.ndarray:
    """Solutions of a 2-D ODE from every start in ``starts`` (shape ``(N, 2)``); shape ``(T, N, 2)``."""
    z0 = _states(starts)
    if z0.ndim != 2 or z0.shape[1] != 2:
        raise ValueError(f"starts must have shape (N, 2), got {tuple(z0.shape)}")
    return _solve(block_or_f, z0, _times(ts), method, rtol, atol, options).numpy()


def gronwall_bound(delta0: ArrayLike, L: float, t: ArrayLike) -> np.ndarray:
    """Gronwall's bound (Theorem 3.7.1): ``‖δ₀‖ · exp(L·t)``, elementwise in ``t``.

    ``delta0`` is the initial difference ``x₂ − x₁`` (its ℓ2 norm is taken) or
    already its norm (a scalar); ``L ≥ 0`` is a Lipschitz constant of the
    dynamics in ``z`` (the theorem's ``C``).
    """
    if not (isinstance(L, (int, float, np.floating)) and L >= 0):
        raise ValueError(f"L must be a non-negative number, got {L!r}")
    d = np.asarray(delta0.detach().cpu() if isinstance(delta0, torch.Tensor) else delta0, dtype=np.float64)
    norm = float(np.linalg.norm(d.ravel()))
    tt = np.asarray(t.detach().cpu() if isinstance(t, torch.Tensor) else t, dtype=np.float64)
    return norm * np.exp(float(L) * tt)


def estimate_lipschitz_dynamics(f: Dynamics | ODEBlock, zs: ArrayLike, t: float = 0.0, max_dim: int = 1024
                                ) -> float:
    """``max_k ‖∂f/∂z (t, z_k)‖₂`` over sample points ``zs`` (shape ``(M, d)``): a Lipschitz estimate.

    Each Jacobian comes from ``torch.autograd.functional.jacobian``; ``f`` is
    called on one state at a time as ``f(t, z[None])`` (a batch of one). This
    is a *lower* estimate of the global Lipschitz constant (exact for linear
    dynamics), meant for small ``d`` (at most ``max_dim``). An
    :class:`ODEBlock` stands for its ``dynamics``.
    """
    return max((float(torch.linalg.matrix_norm(jac, ord=2)) for jac in _jacobians(f, zs, t, max_dim)), default=0.0)


def _jacobians(f: Dynamics | ODEBlock, zs: ArrayLike, t: float, max_dim: int) -> Iterator[torch.Tensor]:
    """The ``d × d`` Jacobian ``∂f/∂z(t, z_k)`` at every sample point of ``zs`` (shape ``(M, d)``), one at a time.

    ``f`` is called on one state at a time as ``f(t, z[None])``, in its parameters' dtype (float64 for a plain
    function); an :class:`ODEBlock` stands for its ``dynamics``.
    """
    f = f.dynamics if isinstance(f, ODEBlock) else f
    if not callable(f):
        raise TypeError(f"f must be callable as f(t, z) or an ODEBlock, got {type(f).__name__}")
    z = _states(zs)
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"zs must have shape (M, d) with M >= 1, got {tuple(z.shape)}")
    if z.shape[1] > max_dim:
        raise ValueError(f"d = {z.shape[1]} exceeds max_dim = {max_dim}: a d×d Jacobian per point is too costly")
    dtype = torch.float64
    if isinstance(f, torch.nn.Module):
        p = next(iter(f.parameters()), None)
        dtype = p.dtype if p is not None else dtype
    tt = torch.tensor(float(t), dtype=dtype)
    for zk in z.to(dtype):
        jac = torch.autograd.functional.jacobian(lambda v: f(tt, v[None])[0], zk)
        yield jac.reshape(zk.numel(), zk.numel())


#: Lipschitz constants of the elementwise activations :func:`mlp_lipschitz_bound` accepts.
ACTIVATION_LIPSCHITZ: dict[type, float] = {torch.nn.Tanh: 1.0, torch.nn.ReLU: 1.0, torch.nn.LeakyReLU: 1.0,
                                           torch.nn.Identity: 1.0, torch.nn.Sigmoid: 0.25,
                                           torch.nn.Softplus: 1.0}


def mlp_lipschitz_bound(net: torch.nn.Module) -> float:
    """A certified ℓ2 Lipschitz constant of a feed-forward chain: ``Π_k ‖W_k‖₂ · Π_j Lip(σ_j)``.

    ``net`` is an ``nn.Sequential`` (possibly nested) of ``nn.Linear`` layers and
    elementwise activations of known Lipschitz constant (:data:`ACTIVATION_LIPSCHITZ`:
    tanh, ReLU, leaky ReLU with slope ≤ 1, softplus: 1; sigmoid: 1/4), or an
    :class:`ODEBlock` / a module with a ``net`` attribute holding one. The bound is the
    product of the factors' constants (composition), hence an *upper* bound of the
    true constant for every input, unlike :func:`estimate_lipschitz_dynamics`,
    which is a lower estimate from sampled Jacobians. Biases do not change it.
    """
    if isinstance(net, ODEBlock):
        net = net.dynamics
    if not isinstance(net, torch.nn.Sequential) and isinstance(getattr(net, "net", None), torch.nn.Sequential):
        net = net.net
    if not isinstance(net, torch.nn.Sequential):
        raise TypeError(f"net must be an nn.Sequential of Linear layers and activations (or hold one as .net), "
                        f"got {type(net).__name__}")
    bound, n_linear = 1.0, 0
    for layer in net:
        if isinstance(layer, torch.nn.Sequential):
            bound *= mlp_lipschitz_bound(layer)
        elif isinstance(layer, torch.nn.Linear):
            with torch.no_grad():
                bound *= float(torch.linalg.matrix_norm(layer.weight.double(), ord=2))
            n_linear += 1
        elif type(layer) in ACTIVATION_LIPSCHITZ:
            if isinstance(layer, torch.nn.LeakyReLU) and abs(layer.negative_slope) > 1:
                raise ValueError(f"LeakyReLU with |negative_slope| > 1 is not 1-Lipschitz: {layer}")
            bound *= ACTIVATION_LIPSCHITZ[type(layer)]
        else:
            raise TypeError(f"layer {layer!r} has no known Lipschitz constant; valid: nn.Linear, nested "
                            f"nn.Sequential, {sorted(t.__name__ for t in ACTIVATION_LIPSCHITZ)}")
    return bound


def euler_paths(f: Dynamics, z0s: ArrayLike, step: float, n_steps: int, t0: float = 0.0) -> np.ndarray:
    """Fixed-step Euler paths ``z_{k+1} = z_k + h·f(t_k, z_k)`` from every start; shape ``(n_steps + 1, *z0s.shape)``.

    The discrete counterpart of :func:`integral_curves_1d` / :func:`trajectories_2d`
    (what an :class:`ODEBlock` with a fixed step computes), in float64.
    """
    if not callable(f):
        raise TypeError(f"f must be callable as f(t, z), got {type(f).__name__}")
    if not (isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0):
        raise ValueError(f"step must be a positive number, got {step!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be an int >= 1, got {n_steps!r}")
    z = _states(z0s)
    out = [z]
    with torch.no_grad():
        for k in range(n_steps):
            t = torch.tensor(t0 + k * step, dtype=z.dtype)
            z = z + step * f(t, z).to(z.dtype)
            out.append(z)
    return torch.stack(out).numpy()


def order_swaps(curves: np.ndarray) -> int:
    """Number of (time, neighbour) pairs at which scalar curves started in increasing order are no longer strictly
    increasing: ``curves`` has shape ``(T, N)`` with ``curves[0]`` sorted ascending (0 = order kept throughout)."""
    c = np.asarray(curves, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] < 2:
        raise ValueError(f"curves must have shape (T, N) with N >= 2, got {c.shape}")
    if not np.all(np.diff(c[0]) > 0):
        raise ValueError("the curves must start in strictly increasing order (sort the starts)")
    return int((np.diff(c, axis=1) <= 0).sum())


def euler_map_dets(f: Dynamics | ODEBlock, zs: ArrayLike, step: float, t: float = 0.0, max_dim: int = 64
                   ) -> np.ndarray:
    """``det(I + h·∂f/∂z(t, z_k))`` at every sample point ``z_k`` (``zs`` of shape ``(M, d)``): the Jacobian
    determinant of one Euler step. Positive everywhere on a region: the step keeps orientation there; negative
    somewhere: the step folds the space and Euler trajectories can cross. For ``d = 1`` it is ``1 + h f'(z)``."""
    if not (isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0):
        raise ValueError(f"step must be a positive number, got {step!r}")
    return np.asarray([float(torch.linalg.det(torch.eye(len(jac), dtype=torch.float64) + step * jac.double()))
                       for jac in _jacobians(f, zs, t, max_dim)])
