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
  the CNN's globally pooled features, then a linear layer. (Their relative-ranking and
  self-consistency losses are not used: the book trains TReS with their L1 term only.)

Widths are scaled down for CPU profiles; ``full`` profiles pass wider backbones.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustbook.models.normalize import Normalize
from robustbook.models.robust_block import StagedNet

__all__ = ["LinearityIQA", "DBCNN", "TReS", "nr_iqa_model", "NR_MODELS"]

NR_MODELS = ("linearity", "dbcnn", "tres")


class _NRBase(nn.Module):
    def __init__(self, widths: tuple[int, ...], strides: tuple[int, ...]) -> None:
        super().__init__()
        self.normalize = Normalize()
        self.backbone = StagedNet(widths, strides)

    def head_modules(self) -> list[nn.Module]:
        return [m for name, m in self.named_children() if name not in ("normalize", "backbone")]


class LinearityIQA(_NRBase):
    """Multi-level (last two stages) pooled features → linear score; see the module docstring."""

    def __init__(self, widths: tuple[int, ...] = (8, 16, 16, 32, 32, 64), strides: tuple[int, ...] = (1, 2, 1, 2, 1, 2),
                 reduced: int = 32) -> None:
        super().__init__(widths, strides)
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
                 scnn_width: int = 16) -> None:
        super().__init__(widths, strides)
        w = scnn_width
        self.scnn = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU(),
                                  nn.Conv2d(w, w, 3, 2, 1), nn.BatchNorm2d(w), nn.ReLU(),
                                  nn.Conv2d(w, w, 3, 2, 1), nn.BatchNorm2d(w), nn.ReLU())
        self.fc = nn.Linear(widths[-1] * w, 1)

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
                 d_model: int = 32, heads: int = 2, layers: int = 2, max_tokens: int = 1024) -> None:
        super().__init__(widths, strides)
        self.proj = nn.Conv2d(widths[-1], d_model, 1)
        self.pos = nn.Parameter(torch.zeros(1, max_tokens, d_model))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.fc = nn.Linear(d_model + widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone(self.normalize(x))[-1]
        tokens = self.proj(f).flatten(2).transpose(1, 2)
        if tokens.shape[1] > self.pos.shape[1]:
            raise ValueError(f"{tokens.shape[1]} tokens exceed max_tokens={self.pos.shape[1]}; use smaller images")
        t = self.encoder(tokens + self.pos[:, : tokens.shape[1]]).mean(1)
        return self.fc(torch.cat([t, f.mean((2, 3))], 1))[:, 0]


def nr_iqa_model(name: str, widths: tuple[int, ...] = (8, 16, 16, 32, 32, 64),
                 strides: tuple[int, ...] = (1, 2, 1, 2, 1, 2)) -> _NRBase:
    """``"linearity"``, ``"dbcnn"`` or ``"tres"`` with the given backbone."""
    if name not in NR_MODELS:
        raise ValueError(f"name must be one of {NR_MODELS}, got {name!r}")
    return {"linearity": LinearityIQA, "dbcnn": DBCNN, "tres": TReS}[name](tuple(widths), tuple(strides))
