"""Orthogonal and 1-Lipschitz convolutions: Cayley (FFT), AOL, AOC, and a plain one behind one option.

Introduced in the chapter "Robustness as architecture" (source 001,
arXiv 2506.04951), whose RobustBlock is built on the first of them.

* :class:`CayleyConv2d` — Trockman & Kolter, "Orthogonalizing Convolutional Layers with the
  Cayley Transform", ICLR 2021. A circular convolution is block-diagonal in the 2-D Fourier
  basis: at every frequency ``(u, v)`` it multiplies the channel vector by a matrix
  ``Ŵ(u, v) ∈ C^{out×in}``. The layer replaces each ``Ŵ(u, v)`` by its Cayley transform
  ``(I + A)^{-1}(I − A)`` of the skew-Hermitian ``A = Ŵ − Ŵ^H``, which is
  unitary, so the whole convolution is orthogonal. Rectangular case (their section 4.2, the
  ``cayley`` function of their code): for ``out > in`` write ``Ŵ = [U; V]`` with ``U`` the first
  ``in`` rows; the first ``in`` columns of the Cayley transform of the ``out × out`` skew matrix
  ``[[U − U^H, −V^H], [V, 0]]`` are ``[(I + A)^{-1}(I − A); −2V(I + A)^{-1}]`` with
  ``A = U − U^H + V^H V``: orthonormal columns, an isometry (distances preserved exactly).
  For ``out < in`` the same is done to ``Ŵ^H`` and transposed back: orthonormal rows, a
  1-Lipschitz projection. The kernel is zero-padded to the ``n × n`` input and the spectrum is
  multiplied by a phase that shifts it by ``(k − 1) // 2`` (their ``fft_shift_matrix``), which
  centres odd kernels (the same as padding ``k // 2``). The matrix is rescaled by a learnable
  scale ``α`` before the transform, ``α Ŵ / ‖Ŵ‖_F``, with ``α`` initialised to ``‖Ŵ‖_F`` (their
  ``alpha``). Only the real half-spectrum (``rfft2``) is stored, as in their code.
* :class:`AOLConv2d` — Prach & Lampert, "Almost-Orthogonal Layers for Efficient General-Purpose
  Lipschitz Networks", ECCV 2022, Theorem 1 and its convolutional form (their section 3.3):
  the kernel's input channels are rescaled by ``d_i = (Σ_j |PᵀP|_{ij})^{-1/2}`` where ``PᵀP``
  is the kernel correlated with itself; then ``‖conv‖₂ ≤ 1`` for any padding.
* AOC — Boissin et al., "An Adaptive Orthogonal Convolution Scheme for Efficient and Flexible
  CNN Architectures" (the ``orthogonium`` package, ``AdaptiveOrthoConv2d``); used here through
  that package, imported only when asked for (:func:`orthogonal_conv` with ``kind="aoc"``).

:func:`orthogonal_conv` builds any of them, or a plain ``nn.Conv2d``, behind one option.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CayleyConv2d", "AOLConv2d", "cayley", "aol_rescaling", "orthogonal_conv", "KINDS"]

#: the choices of :func:`orthogonal_conv`
KINDS = ("cayley", "aoc", "aol", "plain")


def cayley(w: torch.Tensor) -> torch.Tensor:
    """Cayley transform of a batch of complex matrices ``(F, out, in)`` (Trockman & Kolter 2021).

    Returns matrices of the same shape with orthonormal columns (``out ≥ in``) or rows
    (``out < in``). For square inputs it is ``(I + A)^{-1}(I − A)`` with ``A = W − W^H``.
    """
    if w.dim() == 2:
        return cayley(w[None])[0]
    if w.dim() != 3:
        raise ValueError(f"cayley expects matrices (F, out, in) or (out, in), got shape {tuple(w.shape)}")
    _, cout, cin = w.shape
    if cin > cout:
        return cayley(w.transpose(1, 2)).transpose(1, 2)
    u, v = w[:, :cin], w[:, cin:]
    eye = torch.eye(cin, dtype=w.dtype, device=w.device)[None]
    vh = v.conj().transpose(1, 2)
    a = u - u.conj().transpose(1, 2) + vh @ v
    inv = torch.linalg.inv(eye + a)
    return torch.cat((inv @ (eye - a), -2 * v @ inv), dim=1)


def _pair_int(k: int, what: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{what} must be a positive int, got {k!r}")
    return k


class CayleyConv2d(nn.Module):
    """Orthogonal circular convolution by the Cayley transform in the Fourier domain (stride 1).

    Args:
        in_channels, out_channels: channels; ``out ≥ in`` preserves distances exactly
            (``‖f(x) − f(y)‖ = ‖x − y‖``), ``out < in`` is 1-Lipschitz.
        kernel_size: side ``k`` of the (square) kernel that parametrises the layer.
        bias: add a learnable bias (a translation: distances are unchanged).
        input_size: the side ``n`` of the square inputs. The layer is built for one size (its
            spectrum has ``n × n`` frequencies); ``None`` fixes it at the first call, which also
            sets the scale ``α`` to ``‖Ŵ‖_F`` as Trockman & Kolter's code does. Any other size
            then raises ``ValueError``.

    The weight is ``(out, in, k, k)`` like ``nn.Conv2d``'s; the layer computes
    ``y = irfft2(Q(u, v) · rfft2(x))`` with ``Q = cayley(α Ŵ/‖Ŵ‖_F)`` at each frequency.
    Without autograd (``torch.no_grad()``, i.e. deployed inference) ``Q`` is computed once and
    reused until the weights change (tracked by their version counters), as one would deploy
    the layer; with autograd it is rebuilt at every call, as in Trockman & Kolter's code.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 input_size: int | None = None) -> None:
        super().__init__()
        self.in_channels = _pair_int(in_channels, "in_channels")
        self.out_channels = _pair_int(out_channels, "out_channels")
        self.kernel_size = _pair_int(kernel_size, "kernel_size")
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.alpha = nn.Parameter(torch.ones(()))
        self.register_buffer("_size", torch.zeros((), dtype=torch.long))
        if input_size is not None:
            self._set_size(_pair_int(input_size, "input_size"))

    @property
    def input_size(self) -> int | None:
        """The input side ``n`` the layer is built for (``None`` until fixed)."""
        n = int(self._size)
        return n or None

    def _set_size(self, n: int) -> None:
        if n < self.kernel_size:
            raise ValueError(f"input_size {n} is smaller than the kernel ({self.kernel_size}); the circular "
                             "convolution needs n >= k")
        self._size.fill_(n)
        with torch.no_grad():
            self.alpha.copy_(self._spectrum(n).norm())

    def _shift(self, n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Phase that shifts the kernel by ``s = (k − 1) // 2`` pixels (T&K's ``fft_shift_matrix(n, −s)``)."""
        s = (self.kernel_size - 1) // 2
        idx = torch.arange(n, device=device, dtype=torch.float64)
        grid = idx[:, None] + idx[None, :]  # u + v, their "shift + shift.T"
        phase = torch.exp(-2j * math.pi * s * grid / n)[:, : n // 2 + 1]
        return phase.reshape(n * (n // 2 + 1), 1, 1).to(dtype)

    def _spectrum(self, n: int) -> torch.Tensor:
        """``Ŵ`` at every frequency of the real half-spectrum: ``(n·(n//2+1), out, in)``, complex."""
        cout, cin = self.out_channels, self.in_channels
        cdtype = torch.complex128 if self.weight.dtype == torch.float64 else torch.complex64
        wfft = torch.fft.rfft2(self.weight, (n, n)).reshape(cout, cin, n * (n // 2 + 1)).permute(2, 0, 1).conj()
        return self._shift(n, self.weight.device, cdtype) * wfft

    def matrices(self, n: int | None = None) -> torch.Tensor:
        """The orthogonal per-frequency matrices ``Q(u, v)``, shape ``(n, n//2+1, out, in)``."""
        n = self._check_size(n if n is not None else self.input_size)
        w = self._spectrum(n)
        q = cayley(self.alpha * w / w.norm())
        return q.reshape(n, n // 2 + 1, self.out_channels, self.in_channels)

    def _cached_matrices(self, n: int) -> torch.Tensor:
        key = (n, self.weight._version, self.alpha._version, self.weight.data_ptr(), self.weight.dtype,
               self.weight.device)
        cache = getattr(self, "_q_cache", None)
        if cache is None or cache[0] != key:
            cache = (key, self.matrices(n).detach())
            object.__setattr__(self, "_q_cache", cache)  # not a buffer: never saved, never moved
        return cache[1]

    def _check_size(self, n: int | None) -> int:
        if n is None:
            raise ValueError("the layer has no input size yet: pass input_size= or call it on an input first")
        if self.input_size is None:
            self._set_size(n)
        elif n != self.input_size:
            raise ValueError(f"CayleyConv2d was built for {self.input_size}×{self.input_size} inputs, got "
                             f"{n}×{n}: its orthogonal spectrum has one matrix per frequency of that size "
                             "(resize or pool the input to it, or build a layer for the new size)")
        return n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[2] != x.shape[3]:
            raise ValueError(f"CayleyConv2d expects square inputs (N, {self.in_channels}, n, n), got {tuple(x.shape)}")
        n = self._check_size(int(x.shape[-1]))
        batch = x.shape[0]
        q = self._cached_matrices(n) if not torch.is_grad_enabled() else self.matrices(n)
        q = q.reshape(n * (n // 2 + 1), self.out_channels, self.in_channels)
        xfft = torch.fft.rfft2(x).permute(2, 3, 1, 0).reshape(n * (n // 2 + 1), self.in_channels, batch)
        yfft = (q @ xfft.to(q.dtype)).reshape(n, n // 2 + 1, self.out_channels, batch)
        y = torch.fft.irfft2(yfft.permute(3, 2, 0, 1), s=(n, n))
        if self.bias is not None:
            y = y + self.bias[:, None, None]
        return y

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"input_size={self.input_size}, bias={self.bias is not None}")


def aol_rescaling(kernel: torch.Tensor) -> torch.Tensor:
    """AOL's per-input-channel factors ``d_i = (Σ_j |PᵀP|_{ij} + 1e-6)^{-1/2}`` for a kernel ``(out, in, k, k)``.

    ``PᵀP`` of a convolution is the kernel correlated with itself over output channels and
    all offsets (Prach & Lampert 2022, section 3.3), computed as a convolution of the
    input-channel slices with padding ``k − 1``.
    """
    if kernel.dim() != 4:
        raise ValueError(f"a conv kernel (out, in, kh, kw) is expected, got shape {tuple(kernel.shape)}")
    w = kernel.transpose(0, 1)  # (in, out, kh, kw): input channels as the batch
    ptp = F.conv2d(w, w, padding=(kernel.shape[2] - 1, kernel.shape[3] - 1))  # (in, in, 2k-1, 2k-1)
    return (ptp.abs().sum(dim=(1, 2, 3)) + 1e-6) ** -0.5


class AOLConv2d(nn.Conv2d):
    """Almost-Orthogonal Lipschitz convolution (Prach & Lampert 2022): ``‖conv‖₂ ≤ 1``.

    A ``nn.Conv2d`` (stride 1, padding ``k // 2``, any ``padding_mode``) whose kernel is
    rescaled by :func:`aol_rescaling` at every call. With ``in == out`` it starts as the
    identity (a Dirac kernel, the authors' initialisation); otherwise ``nn.Conv2d``'s.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 padding_mode: str = "zeros") -> None:
        super().__init__(_pair_int(in_channels, "in_channels"), _pair_int(out_channels, "out_channels"),
                         _pair_int(kernel_size, "kernel_size"), padding=kernel_size // 2, bias=bias,
                         padding_mode=padding_mode)
        if in_channels == out_channels:
            nn.init.dirac_(self.weight)

    def rescaled_weight(self) -> torch.Tensor:
        return self.weight * aol_rescaling(self.weight)[None, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.rescaled_weight(), self.bias)


def orthogonal_conv(kind: str, in_channels: int, out_channels: int, kernel_size: int, *,
                    input_size: int | None = None, bias: bool = True) -> nn.Module:
    """A stride-1 convolution that keeps the map size, of the chosen kind.

    Args:
        kind: ``"cayley"`` (:class:`CayleyConv2d`, built for ``input_size``), ``"aoc"``
            (``orthogonium``'s ``AdaptiveOrthoConv2d``, circular padding), ``"aol"``
            (:class:`AOLConv2d`, circular padding) or ``"plain"`` (``nn.Conv2d``, circular padding).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "cayley":
        return CayleyConv2d(in_channels, out_channels, kernel_size, bias=bias, input_size=input_size)
    if kind == "aoc":
        try:
            from orthogonium.layers.conv.AOC import AdaptiveOrthoConv2d
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("kind='aoc' needs the orthogonium package (pip install orthogonium==0.0.4); "
                              "valid kinds without it: cayley, aol, plain") from exc
        return AdaptiveOrthoConv2d(in_channels, out_channels, kernel_size, padding="same",
                                   padding_mode="circular", bias=bias)
    if kind == "aol":
        return AOLConv2d(in_channels, out_channels, kernel_size, bias=bias, padding_mode="circular")
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias,
                     padding_mode="circular")
