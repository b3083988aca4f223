"""The evaluation protocol of the denoising chapter (Yan thesis ch. 2, §2.3.2): PSNR per noise column.

For a test set of clean images ``x`` and a test noise level γ̂ (the energy density of the noise
is bounded by γ̂²), each column of Tables 2.1–2.3/2.5/2.6 is the mean over images of
``PSNR(clip(f(y)), x)`` for a different observation ``y``:

* ``"N"`` — Gaussian noise with σ = γ̂;
* ``"U"`` — uniform noise on (−√3γ̂, √3γ̂) (the same variance);
* ``"Atk-e"`` — ObsAtk with budget ``e`` per element (radius ``e·√m``) applied to an
  observation whose Gaussian noise has σ = γ̂ − e, so that the total noise is still about
  ``γ̂·√m`` in norm (the thesis: "noise generated from N(0, γ̂ − ε/√m)");
* ``"rand-e"`` — the same start plus a *random* zero-mean perturbation of the same norm:
  the control that shows the damage comes from the attack's search, not from the budget
  (also the "random beats white-box" red flag of :mod:`robustbook.checks`).

The denoiser's output is clipped to [0, 1] before the PSNR (the book's choice: a displayed
image is clipped). Introduced in the denoising chapter (source 003, chapter 2).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from robustbook.attacks.obsatk import ObsAtk, l2_radius, project_zero_mean_l2
from robustbook.checks import PerturbationChecks
from robustbook.data.denoising import gaussian, uniform
from robustbook.metrics.image import psnr

__all__ = ["denoise", "denoising_psnr"]


@torch.no_grad()
def denoise(model: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """``clip(f(y), 0, 1)`` in eval mode (the model's modes are restored), batched."""
    from robustbook.attacks._core import attack_mode

    with attack_mode(model, True):
        return torch.cat([model(y[i:i + batch_size]).clamp(0, 1) for i in range(0, len(y), batch_size)])


def denoising_psnr(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, gamma: float,
                   eps_list: Sequence[float] = (), *, steps: int = 5, rel_step: float = 0.3,
                   uniform_column: bool = True, random_control: bool = True, seed: int = 0,
                   checks: dict[str, PerturbationChecks] | None = None,
                   batch_size: int = 64) -> dict[str, np.ndarray]:
    """Per-image PSNR (dB) of ``model`` on ``x`` for each column of the thesis' tables.

    Args:
        model: the denoiser (images in [0, 1] → images).
        x: clean test images ``(N, C, H, W)`` in [0, 1].
        gamma: the test noise level γ̂ (e.g. 15/255).
        eps_list: ObsAtk budgets per element (e.g. ``[3/255, 5/255, 7/255]``), each < γ̂... or equal.
        steps, rel_step: ObsAtk's iterations and step (the thesis: 5 steps; η = 0.3·radius, see
            :func:`robustbook.attacks.obsatk`).
        seed: the noise draws (one generator per column, so columns are reproducible alone).
        checks: if given, ``checks[f"Atk-{e}"]`` accumulates the adversarial images
            (:class:`~robustbook.checks.PerturbationChecks`, L2, radius ``e·√m``).

    Returns:
        ``{column: per-image PSNR array}`` with columns ``"N"``, ``"U"``, ``"Atk-<k>"`` and
        ``"rand-<k>"`` where ``k = round(255·e)`` (or ``e`` itself if off the 8-bit grid).
    """
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma must be a noise level in (0, 1] (e.g. 15/255), got {gamma!r}")
    out: dict[str, np.ndarray] = {}

    def score(y: torch.Tensor) -> np.ndarray:
        return psnr(denoise(model, y, batch_size), x, reduction="none").numpy()

    out["N"] = score(gaussian(x, gamma, torch.Generator().manual_seed(seed)))
    if uniform_column:
        out["U"] = score(uniform(x, gamma, torch.Generator().manual_seed(seed + 1)))
    for j, e in enumerate(eps_list):
        if not 0 <= e <= gamma:
            raise ValueError(f"every ObsAtk budget must lie in [0, gamma] = [0, {gamma:.4g}] (the total noise "
                             f"stays within gamma), got {e!r}")
        k = round(e * 255)
        tag = str(k) if abs(e * 255 - k) < 1e-6 else f"{e:.4g}"
        y0 = gaussian(x, gamma - e, torch.Generator().manual_seed(seed + 10 + j))
        attack = ObsAtk(e, steps, rel_step=rel_step)
        adv = torch.cat([attack(model, y0[i:i + batch_size], x[i:i + batch_size])
                         for i in range(0, len(x), batch_size)])
        out[f"Atk-{tag}"] = score(adv)
        if checks is not None:
            acc = checks.setdefault(f"Atk-{tag}", PerturbationChecks("l2", l2_radius(e, x), label=str(attack)))
            acc.update(y0, adv)
        if random_control:
            g = torch.Generator().manual_seed(seed + 100 + j)
            rand = project_zero_mean_l2(torch.randn(x.shape, generator=g) * 1e3, l2_radius(e, x))
            out[f"rand-{tag}"] = score(torch.clamp(y0 + rand, 0, 1))
    return out
