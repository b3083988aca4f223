"""Input randomisation (IRd) of Xie et al. (2018): random resizing and random zero-padding.

"Mitigating Adversarial Effects Through Randomization" (Xie, Wang, Zhang, Ren
& Yuille, ICLR 2018) puts two random layers in front of a classifier, at
training *and* test time: resize the image to a random size ``r`` (299 → r ∈
[299, 331) in their ImageNet setting) and zero-pad it, at a random offset, to
a fixed size (331). Source 003 combines it with CNNs and TisODE in Table 3.4
("CNN-IRd", "TisODE-IRd", §3.4.3). Attack it with EOT
(:class:`robustbook.attacks.EOT`), which averages the gradient over draws.

:class:`RandomResizePad` draws ``r`` uniformly from the integers in
``[min_size, out_size)`` with ``min_size = round(min_scale · out_size)``; the
default ``min_scale = 299/331`` is Xie et al.'s ratio. The pad offsets are
uniform too, so the total padding ``out_size − r`` (≥ 1) is split at random
between left/right and top/bottom. Resizing is nearest-neighbour by default
(*choice*, as Xie et al.'s code); ``"bilinear"`` gives smoother gradients.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RandomResizePad", "Randomized"]

MODES = ("nearest", "bilinear", "bicubic", "area", "nearest-exact")


class RandomResizePad(nn.Module):
    """Random resize to ``r ∈ [min_size, out_size)`` then random zero-pad to ``out_size × out_size``.

    Random in both train and eval mode. ``per_sample=False`` (Xie et al.) draws
    one size and one offset per batch; ``per_sample=True`` draws them for
    every image. ``generator`` (a CPU ``torch.Generator``) makes the draws
    reproducible; by default they come from torch's global generator.
    """

    def __init__(self, out_size: int, min_scale: float = 299 / 331, mode: str = "nearest",
                 per_sample: bool = False, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(out_size, int) or out_size < 2:
            raise ValueError(f"out_size must be an int >= 2, got {out_size!r}")
        if not (isinstance(min_scale, (int, float)) and 0 < min_scale <= 1):
            raise ValueError(f"min_scale must be in (0, 1], got {min_scale!r}")
        min_size = max(1, round(min_scale * out_size))
        if min_size >= out_size:
            raise ValueError(f"min_scale={min_scale} leaves no size in [round(min_scale*out_size), out_size) = "
                             f"[{min_size}, {out_size}); use a smaller min_scale or a larger out_size")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        self.out_size, self.min_size, self.min_scale = out_size, min_size, float(min_scale)
        self.mode, self.per_sample, self.generator = mode, bool(per_sample), generator

    def _draw(self, high: int) -> int:
        return int(torch.randint(0, high, (1,), generator=self.generator).item())

    def _one(self, x: torch.Tensor) -> torch.Tensor:
        r = self.min_size + self._draw(self.out_size - self.min_size)
        kwargs = {} if self.mode in ("nearest", "area", "nearest-exact") else {"align_corners": False}
        resized = F.interpolate(x, size=(r, r), mode=self.mode, **kwargs)
        total = self.out_size - r
        left, top = self._draw(total + 1), self._draw(total + 1)
        return F.pad(resized, (left, total - left, top, total - top))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected images (B, C, H, W), got shape {tuple(x.shape)}")
        if self.per_sample:
            return torch.cat([self._one(x[i:i + 1]) for i in range(x.shape[0])])
        return self._one(x)

    def extra_repr(self) -> str:
        return (f"out_size={self.out_size}, sizes=[{self.min_size}, {self.out_size}), mode={self.mode!r}, "
                f"per_sample={self.per_sample}")


class Randomized(nn.Module):
    """``x ↦ model(transform(x))``: a classifier behind a random input layer (IRd), in train and eval.

    ``train()``/``eval()`` reach the wrapped model (and the transform, when it
    is a module); the transform stays random in both modes.
    """

    def __init__(self, model: nn.Module, transform: nn.Module) -> None:
        super().__init__()
        if not callable(model) or not callable(transform):
            raise TypeError("model and transform must be callable modules")
        self.model, self.transform = model, transform

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.transform(x))
