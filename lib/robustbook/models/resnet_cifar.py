"""CIFAR-style ResNets (He et al. 2016) with optional CIFS / CAS modules at the last blocks.

Introduced in the CIFS chapter (source 003, chapter 4; appendix 4.6.1): "one convolutional layer,
eight residual blocks, and one linear fully-connected layer" for ResNet-18 (3×3 stem, no max-pool,
four stages of two BasicBlocks with 64/128/256/512 channels, strides 1/2/2/2), one block per
stage for ResNet-10 (the thesis' Fashion-MNIST network), and WideResNet-28-10 (Zagoruyko &
Komodakis 2016; pre-activation blocks) for the ``full`` profile. ``width`` scales every stage
(64 = the thesis' ResNet), so the CPU profiles can train a narrow copy of the same network.

Channel modules (``channel_module="cifs"`` or ``"cas"``) are applied to the outputs of the blocks
named in ``positions``: ``"P1"`` = the last residual block, ``"P2"`` = the second-last (thesis
appendix 4.6.5). With CIFS, P1 gets a linear probe and P2 ``p2_probe`` (thesis: an MLP).

Every forward pass records the raw predictions of the channel modules in
``model.probe_logits`` (ordered by depth: P2 before P1), for the adaptive loss of eq. (4.3). In
train mode a model given ``train_labels`` (see :func:`robustbook.models.cifs.feed_labels`) passes
them to its channel modules. Images are in [0, 1]; there is no input normalisation (as the
thesis' released code for CIFAR-10).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustbook.models.cifs import CAS, CIFS

__all__ = ["BasicBlock", "WideBlock", "CIFARResNet", "resnet_cifar"]

POSITIONS = ("P1", "P2")
DEPTHS = {18: (2, 2, 2, 2), 10: (1, 1, 1, 1)}


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 conv + BN, identity or 1×1 projection shortcut, ReLU after the sum."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class WideBlock(nn.Module):
    """Pre-activation wide block (BN-ReLU-conv ×2); its output ends with BN-ReLU when ``last`` (for GAP)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, last: bool = False) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = None if (stride == 1 and c_in == c_out) else nn.Conv2d(c_in, c_out, 1, stride, bias=False)
        self.post = nn.Sequential(nn.BatchNorm2d(c_out), nn.ReLU()) if last else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        short = x if self.shortcut is None else self.shortcut(o)
        out = self.conv2(F.relu(self.bn2(self.conv1(o))))
        return self.post(out + short)


class CIFARResNet(nn.Module):
    """A CIFAR-style residual network whose blocks are a flat list, with channel modules after some of them.

    Build it with :func:`resnet_cifar`. Attributes used by the chapter: ``blocks`` (the residual
    blocks, in order), ``select`` (position → CIFS/CAS module), ``penultimate`` (an identity on the
    features that enter global average pooling: hook it for the channel-wise activations of
    appendix 4.6.1), ``fc`` (the last linear layer), ``probe_logits`` (raw predictions of the last
    forward pass), ``train_labels``.
    """

    def __init__(self, stem: nn.Module, blocks: Sequence[nn.Module], channels: Sequence[int], num_classes: int,
                 channel_module: str | None = None, positions: Sequence[str] = POSITIONS,
                 cifs_kw: dict[str, Any] | None = None, p2_probe: str = "mlp") -> None:
        super().__init__()
        if channel_module not in (None, "cifs", "cas"):
            raise ValueError(f"channel_module must be None, 'cifs' or 'cas', got {channel_module!r}")
        bad = [p for p in positions if p not in POSITIONS]
        if bad or len(set(positions)) != len(positions):
            raise ValueError(f"positions must be distinct items of {POSITIONS}, got {list(positions)}")
        if channel_module is not None and not positions:
            raise ValueError("a channel module needs at least one position (P1 and/or P2)")
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.channel_module = channel_module
        n = len(self.blocks)
        self._at = {}                     # block index -> position name
        select = OrderedDict()
        for pos in sorted(positions, key=lambda p: -POSITIONS.index(p)) if channel_module else ():  # P2 first
            i = n - 1 - POSITIONS.index(pos)
            c = channels[i]
            if channel_module == "cas":
                select[pos] = CAS(c, num_classes)
            else:
                select[pos] = CIFS(c, num_classes, probe="linear" if pos == "P1" else p2_probe, **(cifs_kw or {}))
            self._at[i] = pos
        self.select = nn.ModuleDict(select)
        self.penultimate = nn.Identity()
        self.fc = nn.Linear(channels[-1], num_classes)
        self.num_classes = num_classes
        self.probe_logits: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.train_labels: torch.Tensor | None = None

    def _labels(self, x: torch.Tensor) -> torch.Tensor | None:
        y = self.train_labels
        if not self.training or y is None:
            return None
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"train_labels hold {y.shape[0]} labels but the batch has {x.shape[0]} images; "
                             "set model.train_labels per batch (robustbook.models.cifs.feed_labels)")
        return y

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The (rescaled) output of the last block, before global average pooling."""
        labels = self._labels(x)
        probes: OrderedDict[str, torch.Tensor] = OrderedDict()
        z = self.stem(x)
        for i, block in enumerate(self.blocks):
            z = block(z)
            pos = self._at.get(i)
            if pos is not None:
                z, probes[pos] = self.select[pos](z, labels)
        self.probe_logits = probes
        return self.penultimate(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


def resnet_cifar(arch: str = "resnet18", num_classes: int = 10, in_channels: int = 3, width: int = 64,
                 channel_module: str | None = None, positions: Sequence[str] = POSITIONS, *,
                 p2_probe: str = "mlp", widen: int = 10, **cifs_kw: Any) -> CIFARResNet:
    """Build the thesis' classifiers: ``"resnet18"``, ``"resnet10"`` or ``"wrn28"`` (WRN-28-``widen``).

    Args:
        arch: ``"resnet18"`` (CIFAR-10, SVHN), ``"resnet10"`` (Fashion-MNIST) or ``"wrn28"``.
        num_classes, in_channels: 10 and 3 (CIFAR-10/SVHN) or 1 (Fashion-MNIST).
        width: channels of the first stage (64 in the thesis; the WRN's stages are
            ``width/4 · widen · (1, 2, 4)`` after a ``width/4`` stem, i.e. 16/160/320/640 at 64).
        channel_module: None (vanilla), ``"cifs"`` or ``"cas"``.
        positions: where the modules go, ``("P1", "P2")`` (thesis), ``("P1",)`` or ``("P2",)``.
        p2_probe: probe of the CIFS module at P2, ``"mlp"`` (thesis) or ``"linear"`` (Table 4.15).
        **cifs_kw: passed to :class:`~robustbook.models.cifs.CIFS` (``k``, ``imgf``, ``imgf_param``,
            ``softmax_scale``, ``hidden``).
    """
    for name, v in (("num_classes", num_classes), ("in_channels", in_channels), ("width", width),
                    ("widen", widen)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if cifs_kw and channel_module != "cifs":
        raise ValueError(f"CIFS options {sorted(cifs_kw)} given without channel_module='cifs'")
    if arch in ("resnet18", "resnet10"):
        stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        blocks, channels, c_in = [], [], width
        for stage, n in enumerate(DEPTHS[int(arch[6:])]):
            c_out = width * 2 ** stage
            for j in range(n):
                blocks.append(BasicBlock(c_in, c_out, 2 if (j == 0 and stage > 0) else 1))
                channels.append(c_out)
                c_in = c_out
    elif arch == "wrn28":
        if width % 4:
            raise ValueError(f"wrn28 needs a width divisible by 4 (stem = width/4), got {width}")
        base = width // 4
        stem = nn.Conv2d(in_channels, base, 3, 1, 1, bias=False)
        blocks, channels, c_in = [], [], base
        for stage in range(3):
            c_out = base * widen * 2 ** stage
            for j in range(4):
                last = stage == 2 and j == 3
                blocks.append(WideBlock(c_in, c_out, 2 if (j == 0 and stage > 0) else 1, last=last))
                channels.append(c_out)
                c_in = c_out
    else:
        raise ValueError(f"arch must be 'resnet18', 'resnet10' or 'wrn28', got {arch!r}")
    return CIFARResNet(stem, blocks, channels, num_classes, channel_module, positions, cifs_kw or None, p2_probe)
