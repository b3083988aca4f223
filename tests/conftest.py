"""Shared fixtures: tiny models and data that every unit test can use."""
from __future__ import annotations

import os

import pytest
import torch
from torch import nn

# make test runs two xdist workers with OMP_NUM_THREADS=1 each; 2 threads per worker on 2 cores thrash
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))
# the suite already runs two chapters at once: their independent jobs stay in one process each
# (tests/test_parallel.py runs the worker processes on purpose)
os.environ.setdefault("ROBUSTBOOK_WORKERS", "1")


class TinyCNN(nn.Module):
    """A small classifier with BatchNorm and dropout (so eval/train mode matters)."""

    def __init__(self, n_out: int = 10, channels: int = 3) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Dropout(0.2),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.fixture
def tiny_classifier() -> nn.Module:
    torch.manual_seed(0)
    return TinyCNN(10).eval()


@pytest.fixture
def image_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)
