"""What every gradient attack shares: mode handling, the input gradient, projections."""
from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from robustbook.attacks.losses import Loss, default_loss
from robustbook.modes import preserved_modes

NORMS = ("linf", "l2")


def check_inputs(x: torch.Tensor, eps: float, norm: str = "linf") -> None:
    """Validate the shared arguments of an attack."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor of images in [0, 1], got {type(x).__name__}"
                        + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"images must lie in [0, 1] (normalisation belongs inside the model); "
                         f"got min {x.min().item():.3g}, max {x.max().item():.3g}")
    if not (isinstance(eps, (int, float)) and eps >= 0):
        raise ValueError(f"eps must be a non-negative number, got {eps!r}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def attack_mode(model: nn.Module, eval_mode: bool = True) -> contextlib.AbstractContextManager[None]:
    """Put ``model`` in eval mode (if asked) for the attack and restore every submodule's mode."""
    return preserved_modes(model, training=False if eval_mode else None)


def input_gradient(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                   loss: Loss) -> torch.Tensor:
    """∇_x Σ_i loss(model(x), y)_i with one forward and one backward pass.

    ``torch.autograd.grad`` differentiates with respect to ``x`` only, so the
    model's parameter ``.grad`` fields are never touched.
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        value = loss(model(x), y)
        if value.dim() > 0:
            value = value.sum()
        (grad,) = torch.autograd.grad(value, x)
    return grad


def per_sample(value: torch.Tensor, n: int) -> torch.Tensor:
    """A loss value as one number per sample, shape ``(n,)`` (summing any trailing dimensions)."""
    if value.dim() == 0:
        raise ValueError("this attack needs a per-sample loss (shape (N,)); the given loss returned a scalar")
    value = value.reshape(n, -1)
    return value.sum(1) if value.shape[1] > 1 else value[:, 0]


@torch.no_grad()
def loss_values(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                loss: Loss) -> torch.Tensor:
    """Per-sample ``loss(model(x), y)`` with one forward pass and no graph."""
    return per_sample(loss(model(x), y), x.shape[0]).detach()


def loss_and_gradient(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                      loss: Loss) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample ``loss(model(x), y)`` (shape ``(N,)``, detached) and ∇_x of its sum, from ONE pass.

    One forward and one backward pass, like :func:`input_gradient`; attacks that
    track the loss of every iterate (APGD) get the value for free. A loss that
    returns extra dimensions per sample is summed over them; a scalar loss is
    refused, because a per-sample value cannot be recovered from it.
    """
    n = x.shape[0]
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        value = loss(model(x), y)
        if value.dim() == 0 or value.shape[0] != n:
            raise ValueError(f"the loss must return one value per sample, shape ({n},), got shape "
                             f"{tuple(value.shape)}; a scalar loss (e.g. reduction='mean') cannot be "
                             "tracked per sample: use reduction='none'")
        value = value.reshape(n, -1).sum(1)
        (grad,) = torch.autograd.grad(value.sum(), x)
    return value.detach(), grad


def resolve_loss(loss: Loss | None, y: torch.Tensor) -> Loss:
    return default_loss(y) if loss is None else loss


def flat_norm(t: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(p=2, dim=1).view(-1, *([1] * (t.dim() - 1)))


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project a perturbation onto the ε-ball of ``norm``."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    n = flat_norm(delta).clamp_min(1e-12)
    return delta * torch.clamp(eps / n, max=1.0)
