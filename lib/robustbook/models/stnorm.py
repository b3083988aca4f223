"""Soft Thresholding Norm (ST Norm): BatchNorm followed by L∞ normalisation and soft thresholding.

Source 000 (Yuan & Wang, "Towards Adversarial Robustness in Blind Image Quality
Assessment with Soft Thresholding Norm"), section III-B. The sparse post-processing
of eq. (8), ``argmin_S ‖S(x) − x‖₂ + λ‖S(x)‖₁``, is solved by the soft threshold of
eq. (9), ``S(x) = sign(x)·max(|x| − λ, 0)``; eq. (10) first divides the BatchNorm
output by its L∞ norm so that it lies in [−1, 1] and one threshold (λ = 0.2, the
paper's empirical value, Table II) fits every layer::

    S(x) = sign(x/‖x‖∞) · max(|x/‖x‖∞| − λ, 0),   x = BN(input)          (10)

With λ = 0 the threshold is the identity (eq. (13)) and only the normalisation
remains. The paper's Table III attacks ST Norm through a straight-through
estimator (STE / BPDA, Athalye et al. 2018): :class:`STNorm` has an ``ste`` flag and
:func:`straight_through_stnorm` sets it for a whole model for the duration of a
``with`` block. The paper's STE is the identity through normalise-and-threshold
(``ste="all"``); the book adds the tighter BPDA ``ste="threshold"``
(:func:`bpda_soft_threshold`), which replaces only the soft threshold, the one
non-smooth part with a flat band, by the identity and keeps the true Jacobian of the
L∞ normalisation.

Where the paper is silent: it calls the L∞ step a "layer normalization", so by
default the norm is taken per sample over channels and positions together
(``axes="chw"``); ``axes="hw"`` takes it per sample and channel instead.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from robustbook.autograd import straight_through

__all__ = [
    "AXES",
    "STE_PARTS",
    "STNorm",
    "bpda_soft_threshold",
    "linf_normalize",
    "relu_open_at_zero",
    "soft_threshold",
    "stnorm_modules",
    "straight_through_stnorm",
    "swap_batchnorm",
]

AXES = ("chw", "hw")
#: What ``STNorm.ste`` replaces by the identity in the backward pass.
STE_PARTS = ("all", "threshold")
_AXES_DIMS = {"chw": (1, 2, 3), "hw": (2, 3)}


def _check_lam(lam: float) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam >= 0:
        raise ValueError(f"lam (the threshold λ) must be a non-negative number, got {lam!r}")
    return float(lam)


def soft_threshold(u: torch.Tensor, lam: float) -> torch.Tensor:
    """Soft thresholding, eq. (9): ``sign(u) · max(|u| − λ, 0)`` elementwise.

    The proximal operator of ``λ‖·‖₁`` (the solution of eq. (8)); it is 1-Lipschitz,
    with slope 0 inside ``[−λ, λ]`` and 1 outside (the argument of eqs. (11)–(12)).
    Array-likes are converted with :func:`torch.as_tensor`.
    """
    lam = _check_lam(lam)
    u = torch.as_tensor(u)
    if not u.is_floating_point():
        u = u.float()
    # one fused kernel (forward and backward) for sign(u)·max(|u| − λ, 0); tested against that formula
    return torch.nn.functional.softshrink(u, lam)


def linf_normalize(u: torch.Tensor, dim: int | Sequence[int] | None = None, eps: float = 1e-12) -> torch.Tensor:
    """``u / max(‖u‖∞, eps)``, the normalisation inside eq. (10).

    Args:
        u: any floating tensor (array-likes are converted).
        dim: the axes over which the L∞ norm is taken (kept for broadcasting);
            ``None`` takes it over the whole tensor.
        eps: the norm is clamped at ``eps`` so an all-zero input maps to zeros, not NaN.

    Unlike :func:`soft_threshold` this map is not 1-Lipschitz: it blows small
    inputs up to unit L∞ norm.
    """
    if not (isinstance(eps, (int, float)) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    u = torch.as_tensor(u)
    if not u.is_floating_point():
        u = u.float()
    if dim is None:
        norm = u.abs().amax()
    else:
        norm = u.abs().amax(dim=dim, keepdim=True)
    return u / norm.clamp_min(eps)


class STNorm(nn.Module):
    """BatchNorm2d followed by eq. (10): L∞ normalisation, then soft thresholding with λ.

    Args:
        num_features: channels ``C`` of the ``(N, C, H, W)`` input (the BatchNorm's size).
        lam: threshold λ ≥ 0 applied after normalisation (paper: 0.2). With
            ``normalize=True`` values lie in [−1, 1], so λ ≥ 1 zeros the layer.
        axes: over which axes each L∞ norm is taken: ``"chw"`` (default) — one norm
            per sample over channels and positions together (the paper's "layer
            normalization"); ``"hw"`` — one norm per sample and channel.
        eps: the L∞ norm is clamped at ``eps`` (an all-zero map stays zero, no NaN).
        ste: straight-through mode; the forward value is unchanged either way.
            ``True`` or ``"all"``: the backward pass treats normalise-and-threshold as
            the identity (the paper's STE, Table III's "-A-STE"). ``"threshold"``: only
            the soft threshold is the identity backward, the L∞ normalisation keeps its
            true Jacobian (BPDA through the non-smooth part only). ``False``: exact gradients.
        normalize: apply the L∞ normalisation (switch off for the Fig. 3 ablation).
        threshold: apply the soft threshold (switch off for the Fig. 3 ablation).

    Attributes:
        bn: the :class:`torch.nn.BatchNorm2d` (``nn.BatchNorm2d(num_features)``); its
            running statistics, momentum and affine parameters behave as usual.
    """

    def __init__(self, num_features: int, lam: float = 0.2, *, axes: str = "chw", eps: float = 1e-12,
                 ste: bool = False, normalize: bool = True, threshold: bool = True) -> None:
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        if axes not in AXES:
            raise ValueError(f"axes must be one of {AXES}, got {axes!r}")
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise ValueError(f"eps must be a positive number, got {eps!r}")
        if not isinstance(ste, (bool, str)):
            raise TypeError(f"ste must be a bool or one of {STE_PARTS}, got {type(ste).__name__}")
        if isinstance(ste, str) and ste not in STE_PARTS:
            raise ValueError(f"ste must be a bool or one of {STE_PARTS}, got {ste!r}")
        for name, flag in (("normalize", normalize), ("threshold", threshold)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        self.bn = nn.BatchNorm2d(num_features)
        self.lam = _check_lam(lam)
        self.axes = axes
        self.eps = float(eps)
        self.ste = ste
        self.normalize = normalize
        self.threshold = threshold

    @classmethod
    def from_batchnorm(cls, bn: nn.BatchNorm2d, lam: float = 0.2, **kw: Any) -> STNorm:
        """An STNorm whose BatchNorm is a copy of ``bn`` (config, weights, buffers, device, mode)."""
        if not isinstance(bn, nn.BatchNorm2d):
            raise TypeError(f"bn must be an nn.BatchNorm2d, got {type(bn).__name__}")
        st = cls(bn.num_features, lam, **kw)
        st.bn = nn.BatchNorm2d(bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                               track_running_stats=bn.track_running_stats)
        st.bn.load_state_dict(bn.state_dict())
        ref = next((t for t in bn.state_dict().values() if t.is_floating_point()), None)
        if ref is not None:
            st.bn.to(device=ref.device, dtype=ref.dtype)
        st.train(bn.training)
        return st

    def post(self, z: torch.Tensor) -> torch.Tensor:
        """Eq. (10) applied to a BatchNorm output ``z`` of shape ``(N, C, H, W)``."""
        if self.normalize:
            z = linf_normalize(z, dim=_AXES_DIMS[self.axes], eps=self.eps)
        if self.threshold:
            z = soft_threshold(z, self.lam)
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"STNorm expects (N, C, H, W) input, got shape {tuple(x.shape)}")
        z = self.bn(x)
        if not (self.normalize or self.threshold):
            return z
        if self.ste == "threshold":
            if self.normalize:
                z = linf_normalize(z, dim=_AXES_DIMS[self.axes], eps=self.eps)
            return straight_through(self._threshold, z) if self.threshold else z
        if self.ste:
            return straight_through(self.post, z)
        return self.post(z)

    def _threshold(self, z: torch.Tensor) -> torch.Tensor:
        return soft_threshold(z, self.lam)

    def extra_repr(self) -> str:
        return (f"lam={self.lam}, axes={self.axes!r}, eps={self.eps}, ste={self.ste}, "
                f"normalize={self.normalize}, threshold={self.threshold}")


def stnorm_modules(model: nn.Module) -> list[STNorm]:
    """Every :class:`STNorm` inside ``model`` (in ``model.modules()`` order)."""
    return [m for m in model.modules() if isinstance(m, STNorm)]


@contextlib.contextmanager
def straight_through_stnorm(model: nn.Module, enabled: bool | str = True) -> Iterator[nn.Module]:
    """Set ``ste=enabled`` on every STNorm of ``model`` inside the block; restore each flag after.

    Use it to run an attack with BPDA through ST Norm (paper, section IV-C2, Table III)::

        with straight_through_stnorm(model):
            x_adv = fgsm(model, x, y, 1 / 255)

    or as an attack option, ``attacks.FGSM(eps, bpda=straight_through_stnorm)``.
    ``enabled`` is a bool or one of :data:`STE_PARTS` (see :class:`STNorm`).
    """
    if not (isinstance(enabled, bool) or enabled in STE_PARTS):
        raise ValueError(f"enabled must be a bool or one of {STE_PARTS}, got {enabled!r}")
    mods = stnorm_modules(model)
    saved = [m.ste for m in mods]
    for m in mods:
        m.ste = enabled
    try:
        yield model
    finally:
        for m, flag in zip(mods, saved, strict=True):
            m.ste = flag


class _ReLUOpenAtZero(torch.autograd.Function):
    """``max(u, 0)`` forward; backward the subgradient 1 at ``u = 0`` (PyTorch's ReLU takes 0 there)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(u)
        return u.clamp_min(0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (u,) = ctx.saved_tensors
        return grad * (u >= 0).to(grad.dtype)


def _relu_open(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
    return _ReLUOpenAtZero.apply(inputs[0])


@contextlib.contextmanager
def relu_open_at_zero(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block every :class:`torch.nn.ReLU` of ``model`` passes the gradient at exactly 0 (subgradient 1).

    The forward value is unchanged (``max(u, 0)``). A ReLU's derivative at 0 may be anything in [0, 1] and PyTorch
    takes 0; that choice never matters in a smooth network (a pre-activation is exactly 0 with probability 0), but
    behind ST Norm's soft threshold a fifth or more of the entries *are* exactly 0 (the flat band), and a ReLU
    reading them would stop the gradient that the straight-through threshold just passed (BPDA undone one layer
    later). In-place ReLUs run out of place inside the block (their input is needed for the mask); each module's
    ``inplace`` flag is restored after.
    """
    relus = [m for m in model.modules() if type(m) is nn.ReLU]
    saved = [m.inplace for m in relus]
    hooks = []
    try:
        for m in relus:
            m.inplace = False
            hooks.append(m.register_forward_hook(_relu_open))
        yield model
    finally:
        for h in hooks:
            h.remove()
        for m, flag in zip(relus, saved, strict=True):
            m.inplace = flag


@contextlib.contextmanager
def _bpda_threshold(model: nn.Module) -> Iterator[nn.Module]:
    with straight_through_stnorm(model, "threshold"), relu_open_at_zero(model):
        yield model


def bpda_soft_threshold(model: nn.Module) -> contextlib.AbstractContextManager[nn.Module]:
    """BPDA through the soft threshold only (``ste="threshold"`` on every STNorm of ``model``).

    The tighter surrogate of the book's strength check (not in the paper): the soft
    threshold's flat band ``[−λ, λ]`` zeroes the true gradient of a fifth or more of the
    entries, so the identity stands in for it backward, while the L∞ normalisation, which
    is differentiable almost everywhere, keeps its true Jacobian. Pass it as an attack
    option: ``attacks.PGD(eps, steps, bpda=bpda_soft_threshold)``.

    The band's outputs are exactly 0, and a ReLU that reads them (the stem's and each
    residual block's first ReLU follow an STNorm) has PyTorch's derivative 0 there: it
    would stop, one layer later, the gradient the identity just passed (measured on an
    untrained tiny ResNet: 6 % of the input-gradient entries exactly zero, 0 % with the
    fix). So inside the block the model's ReLUs also take the subgradient 1 at 0
    (:func:`relu_open_at_zero`); the forward pass is unchanged.
    """
    return _bpda_threshold(model)


# --------------------------------------------------------------------------- ResNet surgery

#: Stage names of a torchvision ResNet; ``stem`` is ``conv1/bn1/relu/maxpool``.
STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")
#: The paper's (He et al.) names: torchvision's ``layer3`` is the paper's ``res4``.
STAGE_ALIASES = {"conv1": "stem", "res2": "layer1", "res3": "layer2", "res4": "layer3", "res5": "layer4"}


def resnet_trunk(model: nn.Module) -> nn.Module:
    """The torchvision-style ResNet inside ``model``: ``model`` itself or ``model.trunk``.

    A trunk is any module with ``conv1, bn1, relu, maxpool, layer1 … layer4`` attributes
    (torchvision's :class:`~torchvision.models.ResNet` or the tiny one of
    :mod:`robustbook.models.resnet_iqa`).
    """
    for cand in (model, getattr(model, "trunk", None)):
        if isinstance(cand, nn.Module) and all(hasattr(cand, a) for a in ("conv1", "bn1", *STAGES[1:])):
            return cand
    raise TypeError(f"expected a torchvision-style ResNet (attributes conv1, bn1, layer1..layer4) "
                    f"or a model with one as .trunk, got {type(model).__name__}")


def resolve_stages(stages: Iterable[str] | str | None, allowed: Sequence[str] = STAGES) -> list[str]:
    """Canonical stage names (aliases resolved, order kept, duplicates dropped); ``None`` = ``allowed``."""
    if stages is None:
        return list(allowed)
    if isinstance(stages, str):
        stages = [stages]
    out: list[str] = []
    valid = sorted(set(allowed) | {a for a, s in STAGE_ALIASES.items() if s in allowed})
    for s in stages:
        name = STAGE_ALIASES.get(s, s) if isinstance(s, str) else s
        if name not in allowed:
            raise ValueError(f"unknown ResNet stage {s!r}; valid stages are {valid}")
        if name not in out:
            out.append(name)
    return out


def swap_batchnorm(model: nn.Module, lam: float = 0.2, stages: Iterable[str] | None = None, *,
                   include_downsample: bool = True, **kw: Any) -> nn.Module:
    """Replace the BatchNorm2d layers of a torchvision ResNet by :class:`STNorm`, in place.

    Each new STNorm copies its BatchNorm's configuration, weights and running
    statistics (:meth:`STNorm.from_batchnorm`), so with ``lam=0`` and
    ``normalize=False`` the model computes exactly what it did before.

    Args:
        model: a torchvision ResNet, or a model holding one as ``.trunk``
            (e.g. :func:`robustbook.models.resnet_iqa.resnet_iqa`).
        lam: threshold λ of eq. (10).
        stages: ``None`` for all of ``"stem"`` (``bn1``) and ``"layer1"`` … ``"layer4"``, or
            a list of those names; the paper's names ``"res2"`` … ``"res5"`` are accepted
            (``"res4"`` = ``"layer3"``, the block of the paper's Fig. 2).
        include_downsample: also replace the BatchNorm of the projection shortcut
            (``downsample.1``) inside the chosen stages (the paper does not say; default yes:
            every BatchNorm of the stage).
        **kw: forwarded to :class:`STNorm` (``axes``, ``eps``, ``ste``, ``normalize``, ``threshold``).

    Returns:
        ``model`` itself, modified.
    """
    trunk = resnet_trunk(model)
    names = resolve_stages(stages)
    targets: list[tuple[nn.Module, str, nn.BatchNorm2d]] = []
    for stage in names:
        if stage == "stem":
            if type(trunk.bn1) is nn.BatchNorm2d:
                targets.append((trunk, "bn1", trunk.bn1))
            continue
        root = getattr(trunk, stage)
        for parent_name, parent in root.named_modules():
            if isinstance(parent, STNorm):  # already swapped: leave its inner BatchNorm alone
                continue
            if not include_downsample and "downsample" in parent_name.split("."):
                continue
            for child_name, child in parent._modules.items():  # named_children() skips repeats
                if type(child) is nn.BatchNorm2d:
                    targets.append((parent, child_name, child))
    replacement: dict[int, STNorm] = {}  # a BatchNorm used at several places stays shared
    for parent, child_name, bn in targets:
        if id(bn) not in replacement:
            replacement[id(bn)] = STNorm.from_batchnorm(bn, lam, **kw)
        setattr(parent, child_name, replacement[id(bn)])
    return model
