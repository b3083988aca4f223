"""ResNet no-reference IQA regressors, the backbone of source 000 (ST Norm), section IV-A.

``image in [0, 1] → Normalize (ImageNet statistics) → ResNet trunk → global average
pool → linear → score (N,)``. The paper uses ResNet-50; ``"resnet18"``/``"resnet34"``
are cheaper stand-ins and ``"tiny"`` is a four-stage BasicBlock ResNet that trains
on two CPU cores at 32–64 px. Weights are random (``weights=None``; nothing is
downloaded).

The variants of the paper's comparison are switches of :func:`resnet_iqa`:
``norm="stnorm"`` (ST Norm, eq. (10), via :func:`~robustbook.models.stnorm.swap_batchnorm`),
``activation="lwta"`` (:mod:`robustbook.models.lwta`) and ``denoise=True``
(:mod:`robustbook.models.feature_denoise`). Adversarial training (eq. (4)) is a
training-loop matter, not a model one.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torchvision.models import resnet
from torchvision.models.resnet import BasicBlock

from robustbook.models.feature_denoise import add_feature_denoise
from robustbook.models.lwta import swap_relu_for_lwta
from robustbook.models.normalize import Normalize
from robustbook.models.stnorm import STAGES, resolve_stages, swap_batchnorm

__all__ = ["ARCHS", "ResNetIQA", "TinyResNet", "resnet_iqa"]

ARCHS = ("resnet18", "resnet34", "resnet50", "tiny")
NORMS = ("bn", "stnorm")
ACTIVATIONS = ("relu", "lwta")


class TinyResNet(nn.Module):
    """A torchvision-compatible ResNet with one BasicBlock per stage and base width ``width``.

    Stage widths ``width·(1, 2, 4, 8)``, strides ``(1, 2, 2, 2)``. For small images
    the stem is a 3×3 convolution with stride ``stem_stride`` (default 2) and
    ``maxpool`` is the identity, so a 32-px input gives 16/8/4/2-px maps in
    ``layer1 … layer4`` (64 px: 32/16/8/4; ``stem_stride=1`` doubles each side).
    Attribute names (``conv1, bn1, relu, maxpool, layer1 … layer4, avgpool, fc``) and
    initialisation follow :class:`torchvision.models.ResNet`, so the surgery
    functions of this package apply unchanged. ``fc`` is the identity: ``forward``
    returns the pooled ``(N, 8·width)`` features.
    """

    def __init__(self, width: int = 16, layers: tuple[int, int, int, int] = (1, 1, 1, 1),
                 stem_stride: int = 2) -> None:
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive int, got {width!r}")
        if stem_stride not in (1, 2) or isinstance(stem_stride, bool):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
        if len(layers) != 4 or any((not isinstance(b, int)) or b < 1 for b in layers):
            raise ValueError(f"layers must be four positive ints, got {layers!r}")
        self.conv1 = nn.Conv2d(3, width, 3, stride=stem_stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.inplanes = width
        self.layer1 = self._make_layer(width, layers[0], 1)
        self.layer2 = self._make_layer(2 * width, layers[1], 2)
        self.layer3 = self._make_layer(4 * width, layers[2], 2)
        self.layer4 = self._make_layer(8 * width, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Identity()
        self.num_features = 8 * width
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(resnet.conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        mods = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        mods += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ResNetIQA(nn.Module):
    """``Normalize → trunk → global average pool → Linear(·, 1)``; images in [0, 1] → scores ``(N,)``.

    Attributes:
        normalize: :class:`~robustbook.models.normalize.Normalize` with ImageNet statistics.
        trunk: a torchvision-style ResNet whose ``fc`` is the identity.
        head: ``nn.Linear(num_features, 1)``.
    """

    def __init__(self, trunk: nn.Module, num_features: int) -> None:
        super().__init__()
        self.normalize = Normalize()
        self.trunk = trunk
        self.trunk.fc = nn.Identity()
        self.head = nn.Linear(num_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(self.normalize(x)))[:, 0]

    def features(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        """The output of ``stage`` (``"stem"``, ``"layer1"`` … ``"layer4"``, or ``"res2"`` … ``"res5"``).

        Runs the network up to that stage only, in the current mode and with
        gradients as the caller's context allows. ``"stem"`` is the output of
        ``maxpool``; a stage's output includes any denoising block appended to it.
        """
        (name,) = resolve_stages([stage])
        t = self.trunk
        h = t.maxpool(t.relu(t.bn1(t.conv1(self.normalize(x)))))
        if name == "stem":
            return h
        for s in STAGES[1:]:
            h = getattr(t, s)(h)
            if s == name:
                return h
        raise AssertionError("unreachable")  # pragma: no cover


def resnet_iqa(arch: str = "resnet18", *, norm: str = "bn", lam: float = 0.2,
               stages: Iterable[str] | None = None, activation: str = "relu",
               denoise: bool | Iterable[str] = False, width: int | None = None,
               stem_stride: int | None = None) -> ResNetIQA:
    """Build a ResNet IQA regressor with the paper's variants switched on or off.

    Args:
        arch: ``"resnet18"``, ``"resnet34"``, ``"resnet50"`` (torchvision, random weights)
            or ``"tiny"`` (:class:`TinyResNet`).
        norm: ``"bn"`` (plain BatchNorm) or ``"stnorm"`` (BatchNorm → eq. (10)).
        lam: ST Norm threshold λ (paper: 0.2); used with ``norm="stnorm"``.
        stages: which stages get ST Norm: ``None`` = all (stem ``bn1`` and ``layer1`` …
            ``layer4``), or names such as ``["layer3"]`` (= the paper's ``"res4"``).
        activation: ``"relu"`` or ``"lwta"`` (every ReLU becomes a stochastic LWTA, U = 2).
        denoise: ``True`` for a feature-denoising block after each of ``layer1`` …
            ``layer4`` (Xie et al.), or an iterable of stage names.
        width: base width of ``"tiny"`` (default 16); must be ``None`` for the others.
        stem_stride: stride of the stem of ``"tiny"`` (default 2; 1 keeps full resolution
            for 32-px inputs); must be ``None`` for the others.

    The surgeries are applied in the order norm → activation → denoise.
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if norm == "bn" and stages is not None:
        raise ValueError("stages selects where ST Norm goes; pass norm='stnorm' with it")
    if arch == "tiny":
        trunk: nn.Module = TinyResNet(16 if width is None else width,
                                      stem_stride=2 if stem_stride is None else stem_stride)
        num_features = trunk.num_features
    else:
        for label, value in (("width", width), ("stem_stride", stem_stride)):
            if value is not None:
                raise ValueError(f"{label} applies to arch='tiny' only, got {label}={value!r} for {arch!r}")
        trunk = getattr(resnet, arch)(weights=None)
        num_features = trunk.fc.in_features
    model = ResNetIQA(trunk, num_features)
    if norm == "stnorm":
        swap_batchnorm(model, lam, stages)
    if activation == "lwta":
        swap_relu_for_lwta(model)
    if isinstance(denoise, bool):
        if denoise:
            add_feature_denoise(model)
    elif isinstance(denoise, (str, list, tuple)):
        add_feature_denoise(model, [denoise] if isinstance(denoise, str) else denoise)
    else:
        raise TypeError(f"denoise must be a bool or stage names (str, list or tuple), got {type(denoise).__name__}")
    return model
