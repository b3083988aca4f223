"""Tiny data, model and attack shared by the subprocess scripts of tests/test_train.py."""
from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset


class Blobs(Dataset):
    """Three Gaussian blobs in 2-D; __getitem__ adds numpy and python noise to exercise every RNG."""

    def __init__(self, n: int = 96, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.y = torch.arange(n) % 3
        centres = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
        self.x = centres[self.y] + 0.8 * torch.randn(n, 2, generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        jitter = torch.tensor(np.random.normal(0.0, 0.01, size=2), dtype=torch.float32)
        jitter += 0.01 * (random.random() - 0.5)
        return self.x[i] + jitter, self.y[i]


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


def fgsm_rs(eps: float = 0.1):
    """FGSM with a random start (draws from torch's global RNG)."""
    def attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        delta = (torch.rand_like(x) * 2 - 1) * eps
        delta.requires_grad_(True)
        loss = nn.functional.cross_entropy(model(x + delta), y)
        (grad,) = torch.autograd.grad(loss, delta)
        return x + (delta + eps * grad.sign()).clamp(-eps, eps).detach()
    return attack
