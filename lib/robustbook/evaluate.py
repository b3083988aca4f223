"""Batched prediction and attack over a whole tensor data set (introduced in chapter 0)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from robustbook.device import model_device


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``model(x)`` in eval mode, in batches, on the model's device; returns CPU outputs.

    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    dev = model_device(model)
    try:
        return torch.cat([model(x[i:i + batch_size].to(dev)).cpu() for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def attack_all(attack: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor], model: nn.Module,
               x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Run ``attack(model, x_batch, y_batch)`` over ``x`` in batches; returns CPU images."""
    dev = model_device(model)
    out = [attack(model, x[i:i + batch_size].to(dev), y[i:i + batch_size].to(dev)).cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out)
