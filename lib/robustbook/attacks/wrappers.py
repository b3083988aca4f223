"""Wrappers that make an attack *know the defence*: fixed references, BPDA/STE and EOT.

* :class:`FixedReference` turns a full-reference model ``model(ref, dist)`` into a
  one-input model of ``dist``, so every attack perturbs the distorted image only.
* :func:`straight_through` (BPDA, Athalye et al. 2018) runs a non-differentiable
  or gradient-masking function forward and the identity backward.
* :class:`EOT` (Expectation over Transformation, Athalye et al. 2018) averages a
  randomised model's output over ``n`` draws, so the attack's gradient is the
  average gradient over the randomness.
"""
from __future__ import annotations

from typing import Callable

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
    """Average a randomised model over ``n`` forward passes: ``E_t[model(t(x))]``.

    By linearity the gradient of the average is the average of the gradients,
    which is what EOT attacks ascend. Pass ``transform`` for an explicit random
    input transformation, or leave it ``None`` when the model itself is random.
    """

    def __init__(self, model: nn.Module, n: int, transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        self.model, self.n, self.transform = model, n, transform

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.model(self.transform(x) if self.transform else x) for _ in range(self.n)]
        return torch.stack(outs).mean(0)
