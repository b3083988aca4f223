"""Batched prediction and attack over a whole tensor data set (introduced in chapter 0)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from robustbook.device import model_device
from robustbook.modes import preserved_modes


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``model(x)`` in eval mode, in batches, on the model's device; returns CPU outputs.

    Every submodule's train/eval mode is restored afterwards (see :func:`robustbook.modes.preserved_modes`).
    """
    dev = model_device(model)
    with preserved_modes(model, training=False):
        return torch.cat([model(x[i:i + batch_size].to(dev)).cpu() for i in range(0, len(x), batch_size)])


def attack_all(attack: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor], model: nn.Module,
               x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Run ``attack(model, x_batch, y_batch)`` over ``x`` in batches; returns CPU images."""
    dev = model_device(model)
    out = [attack(model, x[i:i + batch_size].to(dev), y[i:i + batch_size].to(dev)).cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out)
