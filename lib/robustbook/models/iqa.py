"""A small no-reference quality model for the CPU profiles (introduced in chapter 0)."""
from __future__ import annotations

import torch
from torch import nn

from robustbook.models.normalize import Normalize


def conv_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallIQANet(nn.Module):
    """Image in [0, 1] → quality score (≈ [0, 1], higher is better).

    A VGG-like stack of ``depth`` stages (two 3×3 conv–BN–ReLU blocks each, the
    second with stride 2), global average and standard-deviation pooling (a
    cheap second-order statistic that quality models like), and a two-layer
    regression head. Normalisation is the first layer, so attacks act on pixels.
    """

    def __init__(self, width: int = 32, depth: int = 4) -> None:
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be positive, got width={width}, depth={depth}")
        layers: list[nn.Module] = [Normalize()]
        c = 3
        for i in range(depth):
            w = width * 2 ** min(i, 2)
            layers += [conv_block(c, w, 1), conv_block(w, w, 2)]
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(2 * c, 64), nn.ReLU(inplace=True), nn.Linear(64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).flatten(2)
        pooled = torch.cat([f.mean(2), f.std(2)], dim=1)
        return self.head(pooled)[:, 0]
