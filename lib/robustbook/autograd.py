"""Generic autograd tools shared by models and attacks.

:func:`straight_through` is the straight-through estimator (Bengio et al.
2013, "Estimating or Propagating Gradients Through Stochastic Neurons"), which
Athalye et al. (2018, "Obfuscated Gradients Give a False Sense of Security",
§4.1) use as BPDA with ``g(x) = x``: run a non-differentiable or
gradient-masking function forward and the identity backward. Models use it
(ST Norm's differentiable surrogate) and attacks use it (BPDA), so it lives
here, below both: a model never imports an attack.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["straight_through"]


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        with torch.no_grad():
            return fn(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad, None


def straight_through(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn(x)`` forward, identity backward (BPDA with g(x) = x). ``fn`` must keep the shape."""
    return _StraightThrough.apply(x, fn)
