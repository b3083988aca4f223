"""The steady-state loss of TisODE, eq. (3.5) of source 003 (chapter 3, §3.4.1).

For a time-invariant neural ODE ``dz/dt = f_θ(z)`` (eq. (3.2)) the output
deviation caused by starting at ``z(T′)`` instead of ``z(0)`` is bounded by the
flow *after* the output time (eq. (3.4))::

    ‖z̃(T) − z(T)‖ ≤ ‖∫_T^{2T} |f_θ(z(t))| dt‖₂        (|·| elementwise)

so TisODE adds the steady-state loss

    L_ss = Σ_i ‖∫_T^{2T} |f_θ(z_i(t))| dt‖₂                               (3.5)

to the training objective (weight 0.1 in §3.4.2, a choice of the chapter and
not of this function). :func:`steady_state_loss` continues the solve from
``z(T)`` to ``2T`` with the block's Euler step ``h`` (the chapter's solver) and
approximates the integral by the left Riemann sum along that continuation,
``Σ_k |f(t_k, z_k)|·h`` with ``z_{k+1} = z_k + h·f(t_k, z_k)``.

**Mean, not sum.** The thesis sums over the N training samples; here the loss
is the *mean* over the batch, so that it adds to a batch-mean cross-entropy
with a weight that does not depend on the batch size (the Σ of eq. (3.5)
equals N times this mean).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from robustbook.models.odenet import ODEBlock, fixed_grid

__all__ = ["steady_state_loss", "with_steady_state"]


def steady_state_loss(block: ODEBlock, zT: torch.Tensor, T: float | None = None) -> torch.Tensor:
    """Eq. (3.5): the batch mean of ``‖∫_T^{2T} |f_θ(z_i(t))| dt‖₂``, continuing from ``zT = z(T)``.

    Args:
        block: the :class:`~robustbook.models.odenet.ODEBlock` whose dynamics
            and ``step_size`` are used (``net.rm`` of an ODENet).
        zT: the block's output ``z(T)``, batch first (``net.last_state``);
            keep it in the autograd graph to train through it.
        T: the output time (default ``block.t1``); the integral runs over
            ``[T, 2T]`` on :func:`~robustbook.models.odenet.fixed_grid` steps of
            ``block.step_size`` (the last one shorter if ``T/h`` is no integer).

    The dynamics are called as ``dynamics(t, z)`` with ``t`` a 0-dim tensor, so
    time-invariant dynamics (TisODE) ignore it and vanilla ones (ODEnet) see
    the continued time ``t ∈ [T, 2T)``. These calls do not count in
    ``block.nfe``. Returns a 0-dim tensor.
    """
    if not isinstance(block, ODEBlock):
        raise TypeError(f"block must be an ODEBlock (an ODENet's .rm), got {type(block).__name__}")
    if not isinstance(zT, torch.Tensor) or not zT.is_floating_point() or zT.ndim < 1 or zT.shape[0] == 0:
        raise ValueError("zT must be a non-empty floating-point tensor with the batch as its first dimension")
    T = block.t1 if T is None else T
    if not (isinstance(T, (int, float)) and T > 0):
        raise ValueError(f"T must be a positive number, got {T!r}")
    grid = fixed_grid(float(T), 2.0 * float(T), block.step_size)
    z = zT
    acc = torch.zeros_like(zT)
    for t0, t1 in zip(grid[:-1], grid[1:], strict=True):
        dt = t1 - t0
        f = block.dynamics(torch.tensor(t0, dtype=zT.dtype, device=zT.device), z)
        acc = acc + f.abs() * dt
        z = z + dt * f
    return acc.reshape(zT.shape[0], -1).norm(dim=1).mean()


def with_steady_state(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], net: nn.Module,
                      weight: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss_fn(out, y) + weight · L_ss(net.rm, net.last_state)``, for :func:`robustbook.train.fit`.

    ``net`` is an :class:`~robustbook.models.odenet.ODENet`; its ``last_state``
    is the ODE output of the forward that produced ``out`` (the training loop
    calls the loss right after each forward). The chapter uses ``weight=0.1``.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if not isinstance(getattr(net, "rm", None), ODEBlock):
        raise TypeError("net must be an ODENet (its .rm an ODEBlock) to add the steady-state loss")
    if not (isinstance(weight, (int, float)) and weight >= 0):
        raise ValueError(f"weight must be a non-negative number, got {weight!r}")

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        base = loss_fn(out, y)
        if weight == 0:
            return base
        if net.last_state is None:
            raise RuntimeError("net has no last_state: call net(x) before the loss")
        return base + weight * steady_state_loss(net.rm, net.last_state)

    return loss
