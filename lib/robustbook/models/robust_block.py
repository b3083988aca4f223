"""RobustBlock: an orthogonal, norm-preserving block inserted into a backbone (source 001).

The source 001 (arXiv 2506.04951), "Robustness as Architecture: Designing IQA Models to Withstand Adversarial
Perturbations" (arXiv 2506.04951), section "RobustBlock": channel reduction, adaptive pooling to a
square map, an FFT-based orthogonal convolution (Trockman & Kolter 2021, Cayley transform),
placed "between the last two conv blocks". The summary we work from leaves the rest open; the
choices below are the book's and the chapter lists them:

* **order**: adaptive average pooling to ``size × size``, then the 1×1 channel reduction. Both
  are linear and a 1×1 convolution commutes with spatial averaging, so this equals reduction
  followed by pooling, and lets the reduction be an orthogonal layer built for one size.
* **reduction** ``in → reduced`` by a 1×1 convolution of the same kind as the main one (for
  Cayley: orthonormal rows, 1-Lipschitz); **expansion** back to ``in`` channels by the main
  ``k × k`` orthogonal convolution (``reduced → in``: orthonormal columns, an isometry), so the
  block fits between two stages of an unchanged backbone; the next stage runs on the pooled map.
* **activation**: MaxMin (GroupSort with groups of 2, Anil, Lucas & Grosse, ICML 2019), which
  permutes values at each position and so preserves norms and distances' upper bound
  (1-Lipschitz); ``"relu"`` and ``"none"`` are options.
* **no residual path**: ``x + f(x)`` can double a perturbation's norm; the block is 1-Lipschitz
  as a whole (pooling over ``r × r`` windows scales norms by ``1/r`` at most).

Positions: :class:`StagedNet` numbers its stages 1..S; position ``i`` puts the block after
stage ``i`` (the source's positions 1, 2, 4, 6 of its Table 1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustbook.models.orthogonal import KINDS, orthogonal_conv

__all__ = ["MaxMin", "RobustBlock", "StageList", "StagedNet", "ACTIVATIONS"]

ACTIVATIONS = ("maxmin", "relu", "none")


class MaxMin(nn.Module):
    """GroupSort with groups of two (Anil et al. 2019): channel pairs ``(a, b) → (max, min)``.

    A permutation at every position: 1-Lipschitz and norm-preserving."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] % 2:
            raise ValueError(f"MaxMin pairs channels: their number must be even, got {x.shape[1]}")
        a, b = x.chunk(2, dim=1)
        return torch.cat((torch.maximum(a, b), torch.minimum(a, b)), dim=1)


class RobustBlock(nn.Module):
    """Pool → reduce channels → orthogonal conv back to ``in_channels`` → MaxMin; no residual.

    Args:
        in_channels: channels of the stage output it follows (and of its own output).
        size: side of the square map the orthogonal convolution works on (adaptive pooling).
        reduced: channels after the reduction (default ``in_channels // 2``).
        kernel_size: side of the orthogonal convolution's kernel.
        conv: ``"cayley"``, ``"aoc"``, ``"aol"`` or ``"plain"`` (see :func:`orthogonal_conv`).
        activation: ``"maxmin"`` (default), ``"relu"`` or ``"none"``.
    """

    def __init__(self, in_channels: int, size: int, *, reduced: int | None = None, kernel_size: int = 3,
                 conv: str = "cayley", activation: str = "maxmin") -> None:
        super().__init__()
        if conv not in KINDS:
            raise ValueError(f"conv must be one of {KINDS}, got {conv!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        reduced = max(1, in_channels // 2) if reduced is None else reduced
        if isinstance(reduced, bool) or not isinstance(reduced, int) or not 1 <= reduced <= in_channels:
            raise ValueError(f"reduced must be an int in 1..in_channels ({in_channels}), got {reduced!r}")
        self.in_channels, self.size, self.reduced = in_channels, size, reduced
        self.pool = nn.AdaptiveAvgPool2d(size)
        self.reduce = orthogonal_conv(conv, in_channels, reduced, 1, input_size=size, bias=False)
        self.conv = orthogonal_conv(conv, reduced, in_channels, kernel_size, input_size=size)
        self.act = {"maxmin": MaxMin(), "relu": nn.ReLU(), "none": nn.Identity()}[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(self.reduce(self.pool(x))))

    def compression(self, in_size: int) -> float:
        """``c_out · s_out² / (c_in · s_in²)`` at the orthogonal convolution (``c_out`` = reduced channels)."""
        return self.reduced * self.size ** 2 / (self.in_channels * in_size ** 2)


class _Stage(nn.Module):
    """Two 3×3 conv-BN-ReLU layers with a (projected) residual: one conv block of a :class:`StagedNet`."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                      if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.short(x))


class StageList(nn.Module):
    """A backbone as numbered stages (conv blocks) into which a module can be inserted.

    ``stages[i]`` is stage ``i + 1`` with ``widths[i]`` output channels. ``forward`` returns the
    output of every stage (a list), so heads can tap several levels. :meth:`insert` puts a
    module after stage ``position`` (1-based): the stage becomes ``nn.Sequential(stage, module)``
    and the module part of that stage's output. :class:`StagedNet` is the book's small one;
    :mod:`robustbook.models.nr_backbones` cuts torchvision's ResNet-50 and VGG-16 the same way.
    """

    def __init__(self, stages: list[nn.Module], widths: tuple[int, ...]) -> None:
        super().__init__()
        if len(stages) != len(widths) or not stages:
            raise ValueError(f"stages and widths must be equally long and non-empty, got {len(stages)} and {widths}")
        self.stages = nn.ModuleList(stages)
        self.widths = tuple(widths)
        self.inserted: dict[int, nn.Module] = {}

    def __len__(self) -> int:
        return len(self.stages)

    @torch.no_grad()
    def out_size(self, position: int, input_size: int) -> int:
        """Side of stage ``position``'s own output (before any module inserted after it) for a square input.

        Measured with one forward pass of a zero image in eval mode (the modes are restored)."""
        from robustbook.modes import preserved_modes

        if isinstance(position, bool) or not isinstance(position, int) or not 1 <= position <= len(self):
            raise ValueError(f"position must be an int in 1..{len(self)}, got {position!r}")
        p = next(self.parameters())
        x = torch.zeros(1, 3, input_size, input_size, device=p.device, dtype=p.dtype)
        with preserved_modes(self, training=False):
            for i, st in enumerate(self.stages[:position], start=1):
                own = st[0] if i in self.inserted else st
                h = own(x)
                x = st[1](h) if i in self.inserted else h
        return int(h.shape[-1])

    def insert(self, position: int, block: nn.Module) -> None:
        """Put ``block`` after stage ``position`` (1..len(self))."""
        if isinstance(position, bool) or not isinstance(position, int) or not 1 <= position <= len(self):
            raise ValueError(f"position must be an int in 1..{len(self)} (after stage i), got {position!r}")
        if position in self.inserted:
            raise ValueError(f"a block is already inserted after stage {position}")
        self.stages[position - 1] = nn.Sequential(self.stages[position - 1], block)
        self.inserted[position] = block

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for s in self.stages:
            x = s(x)
            outs.append(x)
        return outs


class StagedNet(StageList):
    """A small ResNet-style backbone of numbered stages (conv blocks), for block insertion.

    ``widths[i]`` channels and stride ``strides[i]`` in stage ``i + 1`` (see :class:`StageList`).
    """

    def __init__(self, widths: tuple[int, ...] = (8, 16, 16, 32, 32, 64),
                 strides: tuple[int, ...] = (1, 2, 1, 2, 1, 2)) -> None:
        if len(widths) != len(strides) or not widths:
            raise ValueError(f"widths and strides must be equally long and non-empty, got {widths}, {strides}")
        chans = (3,) + tuple(widths)
        super().__init__([_Stage(chans[i], chans[i + 1], strides[i]) for i in range(len(widths))], tuple(widths))
        self.strides = tuple(strides)

    def out_size(self, position: int, input_size: int) -> int:
        """Side of stage ``position``'s output for a square input of side ``input_size`` (no block before it)."""
        s = input_size
        for st in self.strides[:position]:
            s = (s - 1) // st + 1
        return s
