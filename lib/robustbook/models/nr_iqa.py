"""Three no-reference IQA models with the structure of source 001's three, on a :class:`StagedNet` backbone.

Introduced in the chapter "Robustness as architecture". Each takes images in [0, 1] and returns
scores ``(N,)``; each exposes ``backbone`` (a :class:`~robustbook.models.robust_block.StagedNet`,
where a RobustBlock goes) and ``head_modules()`` (what is trained after the backbone).

* :class:`LinearityIQA` — Li, Jiang & Jiang, ACM MM 2020 ("Norm-in-Norm loss"): features of the
  last two backbone stages (their ResNeXt's layer3 and layer4), each reduced by a 1×1 convolution
  and globally average-pooled, concatenated, and regressed by a linear layer. Trained with
  :func:`~robustbook.losses.norm_in_norm.norm_in_norm_loss`.
* :class:`DBCNN` — Zhang et al., "Blind Image Quality Assessment Using a Deep Bilinear
  Convolutional Neural Network", IEEE TCSVT 2020: two streams (their S-CNN for synthetic
  distortions and VGG-16 for authentic ones; here a small S-CNN and the backbone), the S-CNN map
  pooled to the backbone's map size, bilinear pooling ``B = (1/|P|) Σ_p a_p b_pᵀ``, signed square
  root, L2 normalisation, linear layer.
* :class:`TReS` — Golestaneh, Dadsetan & Kitani, "No-Reference Image Quality Assessment via
  Transformers, Relative Ranking, and Self-Consistency", WACV 2022: the CNN's last map as tokens
  (1×1 projection + learned position embedding) through a transformer encoder, averaged, beside
  the CNN's globally pooled features, then a linear layer (the authors feed the transformer
  L2-pooled maps of all four ResNet layers; the book taps the last one). :meth:`TReS.features`
  returns the score and the two feature tensors their self-consistency loss compares; train it
  with :mod:`robustbook.losses.tres` (L1 + relative ranking + self-consistency).

``backbone="staged"`` (default) builds the small :class:`StagedNet` of the CPU profiles, with the
given widths; ``backbone="original"`` the source's: torchvision's ResNet-50 for Linearity and
TReS, VGG-16 with DBCNN's S-CNN stream for DBCNN, six stages each
(:mod:`robustbook.models.nr_backbones`), and the heads at the published sizes (Linearity: 256
channels per level; DBCNN: 512 × 128 bilinear features; TReS: 2 encoder layers, 16 heads,
feed-forward 64 as the authors' defaults, width 512). :func:`load_pretrained` puts user-provided
ImageNet (and S-CNN) weights into an ``"original"`` model.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from robustbook.models import nr_backbones as nb
from robustbook.models.normalize import Normalize
from robustbook.models.robust_block import StagedNet, StageList

__all__ = ["LinearityIQA", "DBCNN", "TReS", "nr_iqa_model", "load_pretrained", "NR_MODELS", "BACKBONES"]

NR_MODELS = ("linearity", "dbcnn", "tres")
BACKBONES = ("staged", "original")


class _NRBase(nn.Module):
    def __init__(self, widths: tuple[int, ...], strides: tuple[int, ...], backbone: StageList | None) -> None:
        super().__init__()
        self.normalize = Normalize()
        self.backbone = StagedNet(widths, strides) if backbone is None else backbone

    def head_modules(self) -> list[nn.Module]:
        return [m for name, m in self.named_children() if name not in ("normalize", "backbone")]


class LinearityIQA(_NRBase):
    """Multi-level (last two stages) pooled features → linear score; see the module docstring."""

    def __init__(self, widths: tuple[int, ...] = (8, 16, 16, 32, 32, 64), strides: tuple[int, ...] = (1, 2, 1, 2, 1, 2),
                 reduced: int = 32, backbone: StageList | None = None) -> None:
        super().__init__(widths, strides, backbone)
        widths = self.backbone.widths
        self.dr5 = nn.Conv2d(widths[-2], reduced, 1)
        self.dr6 = nn.Conv2d(widths[-1], reduced, 1)
        self.fc = nn.Linear(2 * reduced, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone(self.normalize(x))
        h = torch.cat([self.dr5(f[-2]).mean((2, 3)), self.dr6(f[-1]).mean((2, 3))], 1)
        return self.fc(h)[:, 0]


class DBCNN(_NRBase):
    """Two-stream bilinear pooling (S-CNN × backbone) → signed sqrt → L2 normalisation → linear."""

    def __init__(self, widths: tuple[int, ...] = (8, 16, 16, 32, 32, 64), strides: tuple[int, ...] = (1, 2, 1, 2, 1, 2),
                 scnn_width: int = 16, backbone: StageList | None = None, scnn: nn.Module | None = None) -> None:
        super().__init__(widths, strides, backbone)
        w = scnn_width
        if scnn is None:
            scnn = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU(),
                                 nn.Conv2d(w, w, 3, 2, 1), nn.BatchNorm2d(w), nn.ReLU(),
                                 nn.Conv2d(w, w, 3, 2, 1), nn.BatchNorm2d(w), nn.ReLU())
        else:
            w = [m for m in scnn.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        self.scnn = scnn
        self.fc = nn.Linear(self.backbone.widths[-1] * w, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.normalize(x)
        a = self.backbone(z)[-1]
        b = F.adaptive_avg_pool2d(self.scnn(z), a.shape[-2:])
        bil = torch.einsum("nchw,ndhw->ncd", a, b).flatten(1) / (a.shape[-1] * a.shape[-2])
        bil = torch.sign(bil) * torch.sqrt(bil.abs() + 1e-8)
        return self.fc(F.normalize(bil, dim=1))[:, 0]


class TReS(_NRBase):
    """CNN tokens through a transformer encoder, beside pooled CNN features → linear score."""

    def __init__(self, widths: tuple[int, ...] = (8, 16, 16, 32, 32, 64), strides: tuple[int, ...] = (1, 2, 1, 2, 1, 2),
                 d_model: int = 32, heads: int = 2, layers: int = 2, max_tokens: int = 1024,
                 feedforward: int | None = None, backbone: StageList | None = None) -> None:
        super().__init__(widths, strides, backbone)
        c = self.backbone.widths[-1]
        self.proj = nn.Conv2d(c, d_model, 1)
        self.pos = nn.Parameter(torch.zeros(1, max_tokens, d_model))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, feedforward or 2 * d_model, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.fc = nn.Linear(d_model + c, 1)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Scores ``(N,)`` and ``[encoder output (N, T, d), last CNN map (N, C, h, w)]`` (TReS's consistency pair)."""
        f = self.backbone(self.normalize(x))[-1]
        tokens = self.proj(f).flatten(2).transpose(1, 2)
        if tokens.shape[1] > self.pos.shape[1]:
            raise ValueError(f"{tokens.shape[1]} tokens exceed max_tokens={self.pos.shape[1]}; use smaller images")
        enc = self.encoder(tokens + self.pos[:, : tokens.shape[1]])
        return self.fc(torch.cat([enc.mean(1), f.mean((2, 3))], 1))[:, 0], [enc, f]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]


def nr_iqa_model(name: str, widths: tuple[int, ...] = (8, 16, 16, 32, 32, 64),
                 strides: tuple[int, ...] = (1, 2, 1, 2, 1, 2), backbone: str = "staged") -> _NRBase:
    """``"linearity"``, ``"dbcnn"`` or ``"tres"``; ``backbone="staged"`` (with ``widths``, ``strides``) or
    ``"original"`` (the source's backbones and head sizes, random weights: see :func:`load_pretrained`)."""
    if name not in NR_MODELS:
        raise ValueError(f"name must be one of {NR_MODELS}, got {name!r}")
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
    if backbone == "staged":
        return {"linearity": LinearityIQA, "dbcnn": DBCNN, "tres": TReS}[name](tuple(widths), tuple(strides))
    if name == "linearity":
        return LinearityIQA(reduced=256, backbone=nb.resnet50_stages())
    if name == "dbcnn":
        return DBCNN(backbone=nb.vgg16_stages(), scnn=nb.scnn_features())
    return TReS(d_model=512, heads=16, layers=2, feedforward=64, backbone=nb.resnet50_stages())


def load_pretrained(model: _NRBase, folder: str | os.PathLike) -> list[str]:
    """Put user-provided pretrained weights from ``folder`` into an ``"original"`` model; return the files used.

    ``folder`` holds ``resnet50.pth`` (Linearity, TReS) or ``vgg16.pth`` (DBCNN), torchvision's
    ImageNet state dicts (torchvision's cache names ``resnet50-<hash>.pth`` work too), and for
    DBCNN optionally ``scnn.pkl``/``scnn.pth``, DBCNN's S-CNN pretrained on synthetic distortions
    (without it the S-CNN keeps its random initialisation). Only the backbone (and S-CNN) change;
    a block inserted before loading is an error. Errors: see
    :func:`~robustbook.models.nr_backbones.load_backbone_weights`.
    """
    if model.backbone.inserted:
        raise ValueError("load pretrained weights before inserting a block (the backbone's stages have changed)")
    dbcnn = isinstance(model, DBCNN)
    arch = "vgg16" if dbcnn else "resnet50"
    if model.backbone.widths != {"vgg16": (64, 128, 256, 512, 512, 512),
                                 "resnet50": (64, 256, 512, 1024, 1024, 2048)}[arch]:
        raise ValueError(f"the model's backbone is not {arch} (widths {model.backbone.widths}); build it with "
                         "nr_iqa_model(name, backbone='original')")
    path = nb.find_weights(folder, arch)
    stages = nb.vgg16_stages(path) if dbcnn else nb.resnet50_stages(path)
    model.backbone.load_state_dict(stages.state_dict())
    used = [str(path)]
    if dbcnn:
        spath = nb.find_weights(folder, "scnn", required=False)
        if spath is not None:
            model.scnn.load_state_dict(nb.scnn_features(spath).state_dict())
            used.append(str(spath))
    return used
