"""DnCNN: the residual-learning denoiser of Zhang et al. (2017), used in the denoising chapter.

    f(y) = y − R(y),   R = Conv+ReLU → (depth − 2) × (Conv+BN+ReLU) → Conv

The network predicts the noise ``R(y)`` and subtracts it (residual learning); batch
normalisation in every middle layer. DnCNN-B (blind grayscale, ``channels=1``) and DnCNN-C
(blind colour, ``channels=3``) have 20 layers and 64 features in the thesis (ch. 2, §2.3.2,
following Zhang et al.); the offline profiles use fewer layers and features (same code).
Padding keeps the size, so the model takes any ``H × W``. Inputs and outputs are images in
[0, 1]; the output is *not* clipped (PSNR is computed on the clipped output, see the chapter).

Introduced in the denoising chapter (source 003, chapter 2).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["DnCNN"]


class DnCNN(nn.Module):
    """DnCNN with ``depth`` convolutional layers (Zhang et al., IEEE TIP 2017, Fig. 1).

    Args:
        channels: 1 (grayscale, DnCNN-B) or 3 (colour, DnCNN-C).
        depth: number of convolutional layers, >= 2 (20 in the thesis; 17 is DnCNN-S).
        features: channels of the hidden layers (64 in the thesis).
    """

    def __init__(self, channels: int = 1, depth: int = 20, features: int = 64) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale, DnCNN-B) or 3 (colour, DnCNN-C), got {channels!r}")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 2:
            raise ValueError(f"depth must be an int >= 2 (first and last convolution), got {depth!r}")
        if isinstance(features, bool) or not isinstance(features, int) or features < 1:
            raise ValueError(f"features must be a positive int, got {features!r}")
        self.channels, self.depth, self.features = channels, depth, features
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1, bias=True), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=False),
                       nn.BatchNorm2d(features, eps=1e-4, momentum=0.05), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, channels, 3, padding=1, bias=False))
        self.residual = nn.Sequential(*layers)
        for m in self.modules():       # He (fan-in) initialisation as in the reference implementation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # the book's choice: the last convolution starts small, so an untrained DnCNN is close to the
        # identity (its PSNR starts at the noisy input's, not far below it); short CPU runs train reliably
        nn.init.normal_(layers[-1].weight, std=1e-3)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if y.dim() != 4 or y.shape[1] != self.channels:
            raise ValueError(f"DnCNN({self.channels} channels) takes images (N, {self.channels}, H, W), "
                             f"got shape {tuple(y.shape)}")
        return y - self.residual(y)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, depth={self.depth}, features={self.features}"
