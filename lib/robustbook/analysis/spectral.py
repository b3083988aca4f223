"""Singular values of convolutions and spectral-norm estimates; how a perturbation grows layer by layer.

Introduced in the chapter "Robustness as architecture" (source 001): the orthogonality check
(every singular value of the Cayley layer is 1) and the Lipschitz plots.

* :func:`conv_singular_values` — the exact singular values of a **circular** convolution on
  ``n × n`` inputs: the 2-D DFT block-diagonalises it, one ``out × in`` matrix per frequency
  (Sedghi, Gupta & Long, "The Singular Values of Convolutional Layers", ICLR 2019, Theorem 6),
  so its singular values are those of the ``n²`` small matrices. For a
  :class:`~robustbook.models.CayleyConv2d` the matrices are the layer's own (after the Cayley
  transform); for an ``nn.Conv2d`` (stride 1) they come from its kernel, which is exact for
  ``padding_mode="circular"`` and the usual estimate for zero padding.
* :func:`spectral_norm_power` — power iteration on ``JᵀJ`` of any differentiable map at a point
  (Jacobian-vector and vector-Jacobian products by autograd); for a linear layer it is the
  operator norm ``‖W‖₂`` (a lower estimate that converges from below).
* :func:`perturbation_growth` — ``‖f_{1..l}(x + δ) − f_{1..l}(x)‖ / ‖δ‖`` after each of a list of stages.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = ["conv_singular_values", "spectral_norm_power", "perturbation_growth"]


def _kernel_matrices(weight: torch.Tensor, n: int) -> torch.Tensor:
    """Per-frequency matrices ``(n, n, out, in)`` of the circular cross-correlation with ``weight``."""
    if weight.shape[-1] > n or weight.shape[-2] > n:
        raise ValueError(f"input_size {n} is smaller than the kernel {tuple(weight.shape[-2:])}")
    return torch.fft.fft2(weight, (n, n)).permute(2, 3, 0, 1)


@torch.no_grad()
def conv_singular_values(layer: nn.Module, input_size: int) -> torch.Tensor:
    """All singular values of a circular convolution on ``input_size × input_size`` inputs, sorted descending.

    Args:
        layer: a :class:`~robustbook.models.CayleyConv2d`, an :class:`~robustbook.models.AOLConv2d`
            (its rescaled kernel), or an ``nn.Conv2d`` with stride 1, dilation 1 and one group.
        input_size: the side ``n`` of the square input.

    Returns:
        a float64 tensor of ``n² · min(in, out)`` singular values.
    """
    from robustbook.models.orthogonal import AOLConv2d, CayleyConv2d

    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"input_size must be a positive int, got {input_size!r}")
    if isinstance(layer, CayleyConv2d):
        # the layer stores the real half-spectrum; the other half is its mirror image (conjugates)
        q = layer.matrices(input_size).to(torch.complex128)
        return torch.linalg.svdvals(_full_spectrum(q, input_size)).flatten().sort(descending=True).values
    if isinstance(layer, nn.Conv2d):
        if layer.stride not in ((1, 1), 1) or layer.dilation not in ((1, 1), 1) or layer.groups != 1:
            raise ValueError("conv_singular_values handles stride 1, dilation 1, groups 1 convolutions; got "
                             f"stride {layer.stride}, dilation {layer.dilation}, groups {layer.groups}")
        w = layer.rescaled_weight() if isinstance(layer, AOLConv2d) else layer.weight
        m = _kernel_matrices(w.detach().to(torch.float64), input_size)
        return torch.linalg.svdvals(m).flatten().sort(descending=True).values
    raise TypeError(f"conv_singular_values takes a CayleyConv2d or an nn.Conv2d, got {type(layer).__name__}; "
                    "use spectral_norm_power for any other layer")


def _full_spectrum(q_half: torch.Tensor, n: int) -> torch.Tensor:
    """The ``(n, n, out, in)`` spectrum from its real half ``(n, n//2+1, out, in)`` (Hermitian symmetry)."""
    full = torch.empty((n, n) + q_half.shape[2:], dtype=q_half.dtype)
    full[:, : n // 2 + 1] = q_half
    for v in range(n // 2 + 1, n):
        u = (-torch.arange(n)) % n
        full[:, v] = q_half[u, n - v].conj()
    return full


def spectral_norm_power(fn: Callable[[torch.Tensor], torch.Tensor], input_shape: Sequence[int], *,
                        iters: int = 50, at: torch.Tensor | None = None,
                        generator: torch.Generator | None = None) -> float:
    """Largest singular value of the Jacobian of ``fn`` at ``at`` (default: zeros) by power iteration.

    For a linear (or affine) layer this is ``‖W‖₂``; for a network it is the local gain at
    ``at``. ``input_shape`` excludes nothing: pass ``(1, C, H, W)`` for a conv layer.
    """
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters must be a positive int, got {iters!r}")
    x0 = torch.zeros(tuple(input_shape)) if at is None else at.detach()
    v = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
    v = v / v.norm()
    sigma = 0.0
    for i in range(iters):
        if i == 0:  # torch loads its forward-AD decompositions on the first jvp through torch.jit.script, which
            with warnings.catch_warnings():  # warns that jit is deprecated: torch's internals, not ours
                warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated", category=FutureWarning)
                _, jv = torch.func.jvp(fn, (x0,), (v,))
        else:
            _, jv = torch.func.jvp(fn, (x0,), (v,))
        _, vjp = torch.func.vjp(fn, x0)
        (jtjv,) = vjp(jv)
        norm = jtjv.detach().norm()
        if norm == 0:
            return 0.0
        sigma = float(jv.detach().norm())
        v = (jtjv / norm).detach()
    return sigma


@torch.no_grad()
def perturbation_growth(stages: Sequence[nn.Module], x: torch.Tensor, delta: torch.Tensor) -> list[float]:
    """Per-image mean of ``‖h_l(x + δ) − h_l(x)‖₂ / ‖δ‖₂`` after each stage ``l`` (``h_l`` = stages 1..l).

    Run the stages in the order given, in their current mode (call ``model.eval()`` first).
    """
    if x.shape != delta.shape:
        raise ValueError(f"x and delta differ in shape: {tuple(x.shape)} vs {tuple(delta.shape)}")
    base = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    a, b = x, x + delta
    out = []
    for s in stages:
        a, b = s(a), s(b)
        out.append(float(((b - a).flatten(1).norm(dim=1) / base).mean()))
    return out
