"""The original backbones of source 001's three IQA models, cut into six numbered stages, and their weights.

* ResNet-50 (He et al. 2016; Linearity uses ResNeXt/ResNet features of layer3 and layer4, TReS a
  ResNet-50): :func:`resnet50_stages`.
* VGG-16 (Simonyan & Zisserman 2015) without its last max-pool, DBCNN's authentic-distortion
  stream: :func:`vgg16_stages`; and DBCNN's S-CNN, the synthetic-distortion stream (Zhang et al.,
  TCSVT 2020, their ``SCNN.features``: nine 3×3 conv-BN-ReLU layers, 48/64/128 channels, four of
  stride 2): :func:`scnn_features`.

**Stages** (the book's cut; the source numbers positions 1..6 without saying where they are):
both networks have five conv blocks (ResNet-50: stem, layer1..layer4; VGG-16: the five blocks
between max-pools, each pool opening the next block); the fourth is split in two, so stage 5
ends the fourth block and position 5 is "between the last two conv blocks", the source's default.
ResNet-50: stem | layer1 | layer2 | layer3[:3] | layer3[3:] | layer4 (64, 256, 512, 1024, 1024,
2048 channels). VGG-16 ``features``: [0:4] | [4:9] | [9:16] | [16:19] | [19:23] | [23:30] (64, 128,
256, 512, 512, 512).

**Weights** cannot be downloaded here. :func:`load_backbone_weights` reads a user-provided state
dict (torchvision's ``resnet50-*.pth`` / ``vgg16-*.pth``, DBCNN's ``scnn.pkl``) with the library's
safe loader (``weights_only=True``) and checks it covers every trunk tensor with the right shape;
the classifier (``fc.*``, ``classifier.*``; S-CNN's ``projection``/``classifier``) is ignored.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet50, vgg16

from robustbook.models.robust_block import StageList
from robustbook.safeload import load_checkpoint_file

__all__ = ["ARCHS", "resnet50_stages", "vgg16_stages", "scnn_features", "load_backbone_weights",
           "find_weights", "WeightsMismatchError"]

ARCHS = ("resnet50", "vgg16", "scnn")
_IGNORED = {"resnet50": ("fc.",), "vgg16": ("classifier.",), "scnn": ("projection.", "classifier.")}


class WeightsMismatchError(ValueError):
    """A weights file loads but does not fit the architecture (missing, unexpected or mis-shaped tensors)."""


def _resnet_stages(net: nn.Module) -> StageList:
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    l3 = list(net.layer3.children())
    half = len(l3) // 2
    return StageList([stem, net.layer1, net.layer2, nn.Sequential(*l3[:half]), nn.Sequential(*l3[half:]), net.layer4],
                     (64, 256, 512, 1024, 1024, 2048))


def _vgg_stages(net: nn.Module) -> StageList:
    f = list(net.features.children())
    cuts = [(0, 4), (4, 9), (9, 16), (16, 19), (19, 23), (23, 30)]  # the last max-pool (30) is dropped, as DBCNN does
    return StageList([nn.Sequential(*f[a:b]) for a, b in cuts], (64, 128, 256, 512, 512, 512))


def resnet50_stages(weights: str | os.PathLike | None = None) -> StageList:
    """torchvision's ResNet-50 trunk as six stages (module docstring); ``weights``: its state dict file."""
    net = resnet50(weights=None)
    if weights is not None:
        load_backbone_weights(net, weights, "resnet50")
    return _resnet_stages(net)


def vgg16_stages(weights: str | os.PathLike | None = None) -> StageList:
    """torchvision's VGG-16 ``features`` without the last pool, as six stages; ``weights``: its state dict file."""
    net = vgg16(weights=None)
    if weights is not None:
        load_backbone_weights(net, weights, "vgg16")
    return _vgg_stages(net)


class _SCNN(nn.Module):
    """Holder whose ``features`` key names match DBCNN's ``SCNN`` (so its ``scnn.pkl`` loads)."""

    def __init__(self) -> None:
        super().__init__()
        spec = [(3, 48, 1), (48, 48, 2), (48, 64, 1), (64, 64, 2), (64, 64, 1), (64, 64, 2), (64, 128, 1),
                (128, 128, 1), (128, 128, 2)]
        layers: list[nn.Module] = []
        for cin, cout, s in spec:
            layers += [nn.Conv2d(cin, cout, 3, s, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)


def scnn_features(weights: str | os.PathLike | None = None) -> nn.Sequential:
    """DBCNN's S-CNN feature stream (128 channels, 1/16 of the input side); ``weights``: DBCNN's ``scnn.pkl``."""
    net = _SCNN()
    if weights is not None:
        load_backbone_weights(net, weights, "scnn")
    return net.features


def load_backbone_weights(net: nn.Module, path: str | os.PathLike, arch: str) -> nn.Module:
    """Load a state dict file into ``net`` (torchvision's ResNet-50 / VGG-16, or the S-CNN holder), checked.

    A ``module.`` prefix (``nn.DataParallel``) is stripped; classifier tensors are ignored.

    Raises:
        FileNotFoundError: no file at ``path``.
        robustbook.safeload.CorruptCheckpointError: the file is not a loadable PyTorch file.
        WeightsMismatchError: it lacks a trunk tensor, holds one the architecture does not have, or
            a tensor's shape differs; the message lists the first few of each.
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {arch} weights at {path}: pretrained weights cannot be downloaded here; put "
                                f"the state dict file there (see robustbook.models.nr_backbones)")
    state = load_checkpoint_file(path, remedy="Replace it with the state dict file of the architecture.")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsMismatchError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(_IGNORED[arch])}
    own = {k: v for k, v in net.state_dict().items() if not k.startswith(_IGNORED[arch])}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs {arch} {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{len(missing)} missing (e.g. {missing[:3]})" if missing else "",
                 f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})" if unexpected else "",
                 f"{len(shapes)} of another shape (e.g. {shapes[:2]})" if shapes else ""]
        hint = "DBCNN's S-CNN (scnn.pkl)" if arch == "scnn" else f"torchvision's {arch} state dict"
        raise WeightsMismatchError(f"{path} does not fit {arch}: " + "; ".join(p for p in parts if p)
                                   + f". Use {hint}.")
    net.load_state_dict(state, strict=False)
    return net


def find_weights(folder: str | os.PathLike, arch: str, *, required: bool = True) -> Path | None:
    """The weights file of ``arch`` in ``folder``: ``<arch>.pth``, ``<arch>.pkl`` or a single ``<arch>-*.pth``
    (torchvision's cache names, e.g. ``resnet50-0676ba61.pth``); None if absent and not ``required``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"pretrained_weights must be a folder holding the backbone files, got {folder}")
    found = [p for p in (folder / f"{arch}.pth", folder / f"{arch}.pkl") if p.is_file()]
    found += sorted(folder.glob(f"{arch}-*.pth"))
    if len(found) > 1:
        raise ValueError(f"several {arch} weights files in {folder}: {[p.name for p in found]}; keep one")
    if not found:
        if required:
            raise FileNotFoundError(f"no {arch} weights in {folder}: expected {arch}.pth or torchvision's "
                                    f"{arch}-<hash>.pth (they cannot be downloaded here)")
        return None
    return found[0]
