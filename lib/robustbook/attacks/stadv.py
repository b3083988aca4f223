"""stAdv: spatially transformed adversarial examples (Xiao et al., ICLR 2018).

Instead of adding noise, stAdv moves every pixel by a flow ``f = (Δu, Δv)`` and samples the image
bilinearly at the moved positions. It maximises the attack objective minus
``τ · L_flow``, the total-variation smoothness of the flow:
``L_flow(f) = Σ_p Σ_{q ∈ N(p)} sqrt(‖Δu_p − Δu_q‖² + ‖Δv_p − Δv_q‖² + 1e-8)`` over the 4-neighbours (their flow loss).
Xiao et al. optimise with L-BFGS and no hard bound; the book uses Adam and bounds the
displacement of every pixel by ``max_flow`` pixels (clamped after each step), which makes the
budget checkable. In the MSU benchmark's set-up (Antsiferova et al., AAAI 2024) the objective
raises the predicted score: the default loss is :func:`~robustbook.attacks.losses.score_up`.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from robustbook.attacks._core import attack_mode, check_inputs, resolve_loss
from robustbook.attacks.configured import Attack
from robustbook.attacks.losses import Loss, score_up

__all__ = ["warp", "flow_smoothness", "stadv", "StAdv"]


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``x`` (N, C, H, W) bilinearly at each pixel moved by ``flow`` (N, 2, H, W), in pixels (x, y order)."""
    n, _, h, w = x.shape
    if flow.shape != (n, 2, h, w):
        raise ValueError(f"flow must have shape {(n, 2, h, w)}, got {tuple(flow.shape)}")
    ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype, device=x.device),
                            torch.arange(w, dtype=x.dtype, device=x.device), indexing="ij")
    px = xs[None] + flow[:, 0]
    py = ys[None] + flow[:, 1]
    grid = torch.stack((2 * px / max(w - 1, 1) - 1, 2 * py / max(h - 1, 1) - 1), dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def flow_smoothness(flow: torch.Tensor) -> torch.Tensor:
    """Per-sample flow loss ``L_flow`` of Xiao et al. (4-neighbourhood, replicate border)."""
    f = F.pad(flow, (1, 1, 1, 1), mode="replicate")
    c = f[:, :, 1:-1, 1:-1]
    total = 0
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        nb = f[:, :, dy:dy + flow.shape[2], dx:dx + flow.shape[3]]
        total = total + torch.sqrt(((c - nb) ** 2).sum(1) + 1e-8)
    return total.flatten(1).sum(1)


def stadv(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, *, max_flow: float = 1.0,
          steps: int = 20, lr: float = 0.1, tau: float = 0.05, loss: Loss | None = None, eval_mode: bool = True,
          return_flow: bool = False):
    """Maximise ``loss(model(warp(x, f)), y) − τ · L_flow(f)`` over flows with ``|f| ≤ max_flow`` pixels.

    Returns the warped images (and the flow if ``return_flow``), detached, in [0, 1].
    """
    check_inputs(x, 0.0)
    if not (isinstance(max_flow, (int, float)) and max_flow >= 0):
        raise ValueError(f"max_flow must be a non-negative number of pixels, got {max_flow!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    loss_fn = resolve_loss(loss, y)
    x0 = x.detach()
    flow = torch.zeros(x0.shape[0], 2, *x0.shape[2:], dtype=x0.dtype, device=x0.device, requires_grad=True)
    opt = torch.optim.Adam([flow], lr=lr)
    with attack_mode(model, eval_mode), torch.enable_grad():
        for _ in range(steps):
            adv = warp(x0, flow)
            value = loss_fn(model(adv), y).reshape(len(x0), -1).sum(1) - tau * flow_smoothness(flow)
            opt.zero_grad()
            (-value.sum()).backward()
            opt.step()
            with torch.no_grad():
                flow.clamp_(-max_flow, max_flow)
    with torch.no_grad():
        adv = warp(x0, flow).clamp(0.0, 1.0)
    return (adv.detach(), flow.detach()) if return_flow else adv.detach()


def StAdv(max_flow: float = 1.0, steps: int = 20, *, lr: float = 0.1, tau: float = 0.05, loss: Loss | None = score_up,
          eval_mode: bool = True) -> Attack:
    """Configured :func:`stadv` (default loss: raise the score). Its budget is ``max_flow`` pixels of displacement,
    not a pixel norm, so the attack's ``norm`` is ``"none"``."""
    if not (isinstance(max_flow, (int, float)) and not isinstance(max_flow, bool) and max_flow >= 0):
        raise ValueError(f"max_flow must be a non-negative number of pixels, got {max_flow!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    return Attack("stAdv", stadv, {"max_flow": float(max_flow), "steps": steps, "lr": lr, "tau": tau, "loss": loss,
                                   "eval_mode": eval_mode}, "none")
