"""Neural-ODE classifiers of source 003, chapter 3: ODEnet, TisODE and their CNN counterparts.

The thesis (H. Yan, chapter 3, "On Robustness of Neural Ordinary Differential
Equations") builds every classifier as in its Fig. 3.1::

    image → Normalize → FE (feature extractor) → RM (representation mapping) → FCC (classifier)

and compares four representation mappings that share one function ``g`` (the
layers listed as "RM" in Tables 3.5 and 3.9):

* ``"ode"`` (vanilla ODEnet): ``dz/dt = g(z, t)``, eq. (3.1), solved from 0 to
  ``T = t1 = 1`` by the Euler method with step 0.1 (§3.3.1). Every convolution of
  ``g`` sees one extra input channel holding ``t`` (:class:`ConcatConv2d`, §3.3).
* ``"tisode"`` (time-invariant steady ODE): ``dz/dt = g(z)``, eq. (3.2), the same
  layers without the time channel; train it with the steady-state loss of
  eq. (3.5) (:func:`robustbook.losses.steady_state_loss`).
* ``"cnn"``: one residual block ``z + g(z)`` (the counterpart of §3.3 with "the
  same network architecture ... for the FE and FCC parts").
* ``"shared_resnet"``: the residual block repeated ``n = t1 / step_size`` times
  with *shared* weights, so that it makes as many evaluations of ``g`` as the
  Euler solver (the matched-NFE comparison of §3.7.4: step 0.05 → 20
  evaluations against 20 shared blocks).

Parameter counts at the tables' widths (10 classes; :func:`odenet`):

============ ======== ======== ==========
data set     ode      cnn      difference
============ ======== ======== ==========
MNIST (3.5)  142,410  141,258  0.8 %
SVHN (3.5)   143,562  142,410  0.8 %
ImgNet10     286,250  282,794  1.2 %
CIFAR10 3.9   99,722   98,570  1.2 %
============ ======== ======== ==========

(the thesis: "around 140k" for MNIST, "approximately 280k" for ImgNet10).
``tisode`` has exactly the parameters of ``cnn``; ``shared_resnet`` too.

Choices where the thesis is silent are marked *choice* in the docstrings below.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torchdiffeq import odeint, odeint_adjoint

from robustbook.models.feature_denoise import FeatureDenoise
from robustbook.models.normalize import IMAGENET_MEAN, IMAGENET_STD, Normalize

__all__ = [
    "FIXED_STEP_METHODS", "ADAPTIVE_METHODS", "DATASETS", "KINDS", "DATASET_STATS",
    "fixed_grid", "ODEBlock", "ConcatConv2d", "ConvDynamics", "BasicBlock", "BasicBlockDynamics",
    "ResidualBlock", "ODENet", "CNNNet", "odenet",
]

#: torchdiffeq's fixed-grid solvers: they take ``step_size`` (one grid of steps of that size)
FIXED_STEP_METHODS = ("euler", "midpoint", "heun2", "heun3", "rk4", "explicit_adams", "implicit_adams",
                      "fixed_adams")
#: torchdiffeq's adaptive solvers: they take ``rtol``/``atol``
ADAPTIVE_METHODS = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")

DATASETS = ("mnist", "svhn", "imgnet10", "cifar10")
KINDS = ("ode", "tisode", "cnn", "shared_resnet")

#: per-data-set input statistics for :class:`~robustbook.models.normalize.Normalize` (*choice*: the
#: usual published values; the thesis does not say how it normalised inputs)
DATASET_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "imgnet10": (IMAGENET_MEAN, IMAGENET_STD),
}

Dynamics = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def fixed_grid(start: float, end: float, step_size: float) -> list[float]:
    """The time grid of a fixed-step solve from ``start`` to ``end``: steps of ``step_size``.

    ``[start, start + h, ..., end]``; when ``(end − start) / h`` is an integer up to
    1e-6 relative rounding there are exactly that many steps, otherwise the last
    step is shorter. (torchdiffeq's own ``step_size`` grid adds a spurious
    near-zero step for some values in float32, e.g. 110 → 111 steps for
    h = 0.01 over [0, 1.1]; this grid never does.) ``end < start`` gives a
    decreasing grid.
    """
    if not (isinstance(step_size, (int, float)) and step_size > 0 and math.isfinite(step_size)):
        raise ValueError(f"step_size must be a positive finite number, got {step_size!r}")
    span = float(end) - float(start)
    q = abs(span) / step_size
    n = max(1, round(q)) if abs(q - round(q)) <= 1e-6 * max(1.0, q) else math.ceil(q)
    sign = 1.0 if span >= 0 else -1.0
    return [float(start) + sign * k * step_size for k in range(n)] + [float(end)]


def _grid_constructor(step_size: float) -> Callable[[object, torch.Tensor, torch.Tensor], torch.Tensor]:
    def construct(func: object, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        inner = torch.tensor(fixed_grid(float(t[0]), float(t[-1]), step_size)[1:-1], dtype=t.dtype,
                             device=t.device)
        return torch.cat([t[:1], inner, t[-1:]])
    return construct


class ODEBlock(nn.Module):
    """The neural-ODE representation mapping of eq. (3.1): ``z(0) = z_in ↦ z(t1)``.

    Solves ``dz/dt = dynamics(t, z)`` with torchdiffeq's ``odeint`` (or
    ``odeint_adjoint`` when ``adjoint=True``; the thesis back-propagates through
    the solver, §3.2). ``dynamics`` is called exactly like torchdiffeq's
    ``func``: ``dynamics(t, z)`` with ``t`` a 0-dim tensor.

    Args:
        dynamics: the dynamics ``f_θ`` (an ``nn.Module``, whose parameters are
            registered, or any callable).
        t1: the terminal time ``T`` (1 in the thesis).
        method: a torchdiffeq solver; :data:`FIXED_STEP_METHODS` integrate on
            :func:`fixed_grid` steps of ``step_size`` (the thesis: ``"euler"``,
            0.1), :data:`ADAPTIVE_METHODS` (e.g. ``"dopri5"``) use ``rtol``/``atol``.
        step_size: the fixed step ``h``; also the step of the steady-state
            continuation (:func:`robustbook.losses.steady_state_loss`).
        time_invariant: declares that ``dynamics`` ignores ``t`` (TisODE,
            eq. (3.2)). ``None`` takes ``dynamics.time_invariant`` when it has
            one, else False; an explicit value that contradicts
            ``dynamics.time_invariant`` is a ValueError. The solver passes ``t``
            either way.
        adjoint: use the adjoint method (constant memory, slower).
        rtol, atol: tolerances of adaptive solvers (ignored by fixed-step ones).

    ``nfe`` counts the calls of ``dynamics`` since the last solve started
    (:meth:`forward` and :meth:`trajectory` reset it; with ``adjoint=True`` the
    backward pass adds its own calls).
    """

    def __init__(self, dynamics: Dynamics, t1: float = 1.0, method: str = "euler", step_size: float = 0.1,
                 time_invariant: bool | None = None, adjoint: bool = False, rtol: float = 1e-3,
                 atol: float = 1e-3) -> None:
        super().__init__()
        if not callable(dynamics):
            raise TypeError(f"dynamics must be callable as dynamics(t, z), got {type(dynamics).__name__}")
        if not (isinstance(t1, (int, float)) and t1 > 0 and math.isfinite(t1)):
            raise ValueError(f"t1 must be a positive finite number, got {t1!r}")
        if method not in FIXED_STEP_METHODS + ADAPTIVE_METHODS:
            raise ValueError(f"unknown method {method!r}; valid: fixed-step {FIXED_STEP_METHODS}, "
                             f"adaptive {ADAPTIVE_METHODS}")
        if not (isinstance(step_size, (int, float)) and 0 < step_size and math.isfinite(step_size)):
            raise ValueError(f"step_size must be a positive finite number, got {step_size!r}")
        for name, tol in (("rtol", rtol), ("atol", atol)):
            if not (isinstance(tol, (int, float)) and tol > 0):
                raise ValueError(f"{name} must be a positive number, got {tol!r}")
        declared = getattr(dynamics, "time_invariant", None)
        if time_invariant is None:
            time_invariant = bool(declared) if declared is not None else False
        elif declared is not None and bool(declared) != bool(time_invariant):
            raise ValueError(f"time_invariant={time_invariant} contradicts dynamics.time_invariant={declared}; "
                             "leave time_invariant=None to inherit it")
        self.dynamics = dynamics
        self.t1, self.method, self.step_size = float(t1), method, float(step_size)
        self.time_invariant, self.adjoint = bool(time_invariant), bool(adjoint)
        self.rtol, self.atol = float(rtol), float(atol)
        self.nfe = 0

    @property
    def fixed_step(self) -> bool:
        """Whether the solver integrates on a fixed grid of ``step_size`` steps."""
        return self.method in FIXED_STEP_METHODS

    def _func(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return self.dynamics(t, z)

    def _solve(self, z0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        if not isinstance(z0, torch.Tensor) or not z0.is_floating_point():
            raise TypeError(f"z0 must be a floating-point tensor, got {type(z0).__name__}")
        self.nfe = 0
        kwargs: dict = {"method": self.method}
        if self.fixed_step:
            kwargs["options"] = {"grid_constructor": _grid_constructor(self.step_size)}
        else:
            kwargs.update(rtol=self.rtol, atol=self.atol)
        if self.adjoint:
            params = tuple(self.dynamics.parameters()) if isinstance(self.dynamics, nn.Module) else ()
            return odeint_adjoint(self._func, z0, ts, adjoint_params=params, **kwargs)
        return odeint(self._func, z0, ts, **kwargs)

    def forward(self, z0: torch.Tensor) -> torch.Tensor:
        """``z(t1)`` from ``z(0) = z0`` (the output ``z_out`` of eq. (3.1))."""
        ts = torch.tensor([0.0, self.t1], dtype=z0.dtype, device=z0.device)
        return self._solve(z0, ts)[-1]

    def trajectory(self, z0: torch.Tensor, ts: torch.Tensor | Sequence[float]) -> torch.Tensor:
        """States at the times ``ts`` (strictly increasing), ``z0`` being the state at ``ts[0]``.

        Returns a tensor of shape ``(len(ts), *z0.shape)``. Fixed-step solvers
        step on :func:`fixed_grid` from ``ts[0]`` to ``ts[-1]`` and interpolate
        linearly at times off the grid.
        """
        ts = torch.as_tensor(ts, dtype=z0.dtype, device=z0.device).flatten()
        if ts.numel() < 2 or not bool((ts[1:] > ts[:-1]).all()):
            raise ValueError(f"ts must hold at least two strictly increasing times, got {ts.tolist()}")
        return self._solve(z0, ts)

    def extra_repr(self) -> str:
        return (f"t1={self.t1}, method={self.method!r}, step_size={self.step_size}, "
                f"time_invariant={self.time_invariant}, adjoint={self.adjoint}")


def _groups(channels: int, groups: int | None) -> int:
    """GroupNorm groups: ``groups`` if given (must divide), else torchdiffeq's ``min(32, C)`` (*choice*)."""
    if groups is not None:
        if not isinstance(groups, int) or groups < 1 or channels % groups:
            raise ValueError(f"groups must be a positive int dividing {channels} channels, got {groups!r}")
        return groups
    g = min(32, channels)
    while channels % g:
        g -= 1
    return g


def group_norm(channels: int, groups: int | None = None) -> nn.GroupNorm:
    """GroupNorm, not BatchNorm: each datum's dynamics must not depend on its batch (§3.7.1)."""
    return nn.GroupNorm(_groups(channels, groups), channels)


class ConcatConv2d(nn.Module):
    """A convolution whose input is concatenated with one constant channel holding ``t`` (§3.3).

    ``forward(t, x) = conv([t·1, x])``; it has ``in_channels + 1`` input channels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels + 1, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)

    def forward(self, t: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
        tt = torch.ones_like(x[:, :1]) * t
        return self.conv(torch.cat([tt, x], dim=1))


class _Conv(nn.Module):
    """A plain convolution with the ``(t, x)`` call of :class:`ConcatConv2d`; ``t`` is ignored."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)

    def forward(self, t: torch.Tensor | float | None, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _conv_cls(time_invariant: bool) -> type[nn.Module]:
    return _Conv if time_invariant else ConcatConv2d


class ConvDynamics(nn.Module):
    """The RM function ``g`` of Tables 3.5 (MNIST, SVHN) and 3.9 (CIFAR10).

    ``n_layers`` (= 2, the tables' "×2") times ``Conv(C, C, 3, 1) + GroupNorm +
    ReLU``, in the tables' order. Vanilla (``time_invariant=False``): every
    convolution is a :class:`ConcatConv2d` (input concatenated with ``t``);
    TisODE / CNN (``time_invariant=True``): plain convolutions, ``t`` ignored.
    Note that the tables' final ReLU makes ``g ≥ 0`` elementwise.
    ``forward(t, z)`` is torchdiffeq's calling convention.
    """

    def __init__(self, channels: int, time_invariant: bool = False, groups: int | None = None,
                 n_layers: int = 2) -> None:
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if not isinstance(n_layers, int) or n_layers < 1:
            raise ValueError(f"n_layers must be a positive int, got {n_layers!r}")
        self.time_invariant = bool(time_invariant)
        conv = _conv_cls(self.time_invariant)
        self.convs = nn.ModuleList(conv(channels, channels, 3, 1, 1) for _ in range(n_layers))
        self.norms = nn.ModuleList(group_norm(channels, groups) for _ in range(n_layers))

    def forward(self, t: torch.Tensor | float | None, z: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms, strict=True):
            z = torch.relu(norm(conv(t, z)))
        return z


class BasicBlock(nn.Module):
    """He et al.'s (2016) BasicBlock with GroupNorm in place of BatchNorm (§3.7.1).

    ``relu(GN(conv3x3(relu(GN(conv3x3_s(x))))) + shortcut(x))``, the shortcut
    being ``GN(conv1x1_s(x))`` when the shape changes. Convolutions have no
    bias (He et al.). ``time_invariant=False`` makes both 3×3 convolutions
    :class:`ConcatConv2d` (used inside vanilla ODE dynamics); call it as
    ``block(x, t)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, groups: int | None = None,
                 time_invariant: bool = True) -> None:
        super().__init__()
        conv = _conv_cls(time_invariant)
        self.conv1 = conv(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm1 = group_norm(out_channels, groups)
        self.conv2 = conv(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm2 = group_norm(out_channels, groups)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          group_norm(out_channels, groups))

    def forward(self, x: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        out = torch.relu(self.norm1(self.conv1(t, x)))
        out = self.norm2(self.conv2(t, out))
        return torch.relu(out + self.shortcut(x))


class BasicBlockDynamics(nn.Module):
    """The RM function ``g`` of Table 3.5 for ImgNet10: ``n_blocks`` (= 3) BasicBlock(C, C, 1) in sequence.

    *Choice*: the table lists "×3 BasicBlock(64, 64, 1)" as the RM; the whole
    stack (each block keeping its own shortcut) is the dynamics of the ODE and
    the ``g`` of the CNN's ``z + g(z)``, as for MNIST. ``forward(t, z)``.
    """

    def __init__(self, channels: int, time_invariant: bool = False, groups: int | None = None,
                 n_blocks: int = 3) -> None:
        super().__init__()
        if not isinstance(n_blocks, int) or n_blocks < 1:
            raise ValueError(f"n_blocks must be a positive int, got {n_blocks!r}")
        self.time_invariant = bool(time_invariant)
        self.blocks = nn.ModuleList(BasicBlock(channels, channels, 1, groups, self.time_invariant)
                                    for _ in range(n_blocks))

    def forward(self, t: torch.Tensor | float | None, z: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            z = block(z, t)
        return z


class ResidualBlock(nn.Module):
    """The CNN counterpart of the ODE block: ``z ← z + g(z)``, ``repeats`` times with one ``g``.

    ``repeats=1`` is the CNN of §3.3 (a residual block); ``repeats=n`` shares
    the weights of ``g`` across ``n`` blocks (the matched-NFE ResNet of §3.7.4).
    ``g`` is called as ``g(None, z)`` (it must be time-invariant). ``nfe``
    counts the applications of ``g`` in the last forward, like
    :attr:`ODEBlock.nfe`.
    """

    def __init__(self, g: nn.Module, repeats: int = 1) -> None:
        super().__init__()
        if getattr(g, "time_invariant", True) is False:
            raise ValueError("a residual block's g must be time-invariant (build it with time_invariant=True)")
        if not isinstance(repeats, int) or repeats < 1:
            raise ValueError(f"repeats must be a positive int, got {repeats!r}")
        self.g, self.repeats = g, repeats
        self.nfe = 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.nfe = 0
        for _ in range(self.repeats):
            z = z + self.g(None, z)
            self.nfe += 1
        return z

    def extra_repr(self) -> str:
        return f"repeats={self.repeats}"


DENOISE_POSITIONS = ("classifier", "features")


class _FeatureRMClassifier(nn.Module):
    """Fig. 3.1: ``Normalize → FE → RM → FCC``, optionally with a non-local denoising block (FDn).

    ``denoise_position="classifier"`` puts the block "to the head of the
    fully-connected classifier" (§3.4.3), i.e. between the RM and the FCC;
    ``"features"`` puts it between the FE and the RM.

    ``last_state`` holds the RM's output ``z(T)`` of the most recent forward
    (still in the autograd graph), so that a loss can add the steady-state
    term of eq. (3.5) (see :func:`robustbook.losses.with_steady_state`).
    """

    def __init__(self, features: nn.Module, rm: nn.Module, classifier: nn.Module, *,
                 normalize: nn.Module | None = None, denoise: nn.Module | None = None,
                 denoise_position: str = "classifier") -> None:
        super().__init__()
        if denoise_position not in DENOISE_POSITIONS:
            raise ValueError(f"denoise_position must be one of {DENOISE_POSITIONS}, got {denoise_position!r}")
        self.normalize = normalize if normalize is not None else nn.Identity()
        self.features, self.rm, self.classifier = features, rm, classifier
        self.denoise = denoise if denoise is not None else nn.Identity()
        self.denoise_position = denoise_position
        self.last_state: torch.Tensor | None = None

    @property
    def nfe(self) -> int:
        """Evaluations of the RM function in the last forward (:attr:`ODEBlock.nfe`)."""
        return int(self.rm.nfe)

    def forward(self, x: torch.Tensor, return_state: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        z = self.features(self.normalize(x))
        if self.denoise_position == "features":
            z = self.denoise(z)
        z = self.rm(z)
        self.last_state = z
        out = z if self.denoise_position == "features" else self.denoise(z)
        logits = self.classifier(out)
        return (logits, z) if return_state else logits


class ODENet(_FeatureRMClassifier):
    """An ODE-based classifier (Fig. 3.1) whose RM ``rm`` is an :class:`ODEBlock` (ODEnet or TisODE)."""

    def __init__(self, features: nn.Module, rm: ODEBlock, classifier: nn.Module, **kwargs) -> None:
        if not isinstance(rm, ODEBlock):
            raise TypeError(f"ODENet's rm must be an ODEBlock, got {type(rm).__name__}")
        super().__init__(features, rm, classifier, **kwargs)


class CNNNet(_FeatureRMClassifier):
    """The CNN counterpart of :class:`ODENet`: the same FE and FCC, a :class:`ResidualBlock` as RM."""

    def __init__(self, features: nn.Module, rm: ResidualBlock, classifier: nn.Module, **kwargs) -> None:
        if not isinstance(rm, ResidualBlock):
            raise TypeError(f"CNNNet's rm must be a ResidualBlock, got {type(rm).__name__}")
        super().__init__(features, rm, classifier, **kwargs)


def _conv_gn_relu(c_in: int, c_out: int, k: int, stride: int, groups: int | None) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, stride=stride, padding=(k - 1) // 2 if k % 2 else 1),
            group_norm(c_out, groups), nn.ReLU(inplace=True)]


def _feature_extractor(dataset: str, in_channels: int, width: int, groups: int | None) -> nn.Sequential:
    """The FE of Table 3.5 / 3.9, with every width scaled by ``width / 64``."""
    if dataset in ("mnist", "svhn"):
        # Conv(c, 64, 3, 1) + GN + ReLU; Conv(64, 64, 4, 2) + GN + ReLU   (padding 1: 28 → 14)
        return nn.Sequential(*_conv_gn_relu(in_channels, width, 3, 1, groups),
                             *_conv_gn_relu(width, width, 4, 2, groups))
    if dataset == "cifar10":
        # Conv(3, 16, 3, 1), Conv(16, 32, 3, 2), Conv(32, 64, 3, 2), each + GN + ReLU   (32 → 8)
        return nn.Sequential(*_conv_gn_relu(in_channels, width // 4, 3, 1, groups),
                             *_conv_gn_relu(width // 4, width // 2, 3, 2, groups),
                             *_conv_gn_relu(width // 2, width, 3, 2, groups))
    # imgnet10: Conv(3, 32, 5, 2) + GN; MaxPool(2); BasicBlock(32, 64, 2); MaxPool(2)   (128 → 8).
    # As in the table, no ReLU after the first GroupNorm; the stem has no bias (He et al.).
    return nn.Sequential(nn.Conv2d(in_channels, width // 2, 5, stride=2, padding=2, bias=False),
                         group_norm(width // 2, groups), nn.MaxPool2d(2),
                         BasicBlock(width // 2, width, 2, groups), nn.MaxPool2d(2))


def _rm_function(dataset: str, width: int, time_invariant: bool, groups: int | None) -> nn.Module:
    if dataset == "imgnet10":
        return BasicBlockDynamics(width, time_invariant=time_invariant, groups=groups)
    return ConvDynamics(width, time_invariant=time_invariant, groups=groups)


def odenet(dataset: str = "mnist", kind: str = "ode", width: int | None = None, in_channels: int | None = None,
           num_classes: int = 10, step_size: float = 0.1, *, t1: float = 1.0, method: str = "euler",
           adjoint: bool = False, denoise: bool = False, denoise_position: str = "classifier",
           normalize: bool | tuple[Sequence[float], Sequence[float]] = True,
           groups: int | None = None) -> ODENet | CNNNet:
    """A classifier of chapter 3 built per Table 3.5 (MNIST, SVHN, ImgNet10) or Table 3.9 (CIFAR10).

    Args:
        dataset: ``"mnist"``, ``"svhn"``, ``"imgnet10"`` or ``"cifar10"`` (the
            architecture; any input size works thanks to the adaptive pooling).
        kind: ``"ode"`` (vanilla ODEnet, time channel), ``"tisode"``
            (time-invariant, eq. (3.2)), ``"cnn"`` (``z + g(z)``) or
            ``"shared_resnet"`` (``z + g(z)`` repeated ``t1 / step_size`` times
            with shared weights, §3.7.4).
        width: the RM's channel count (64 in the tables); the FE's widths scale
            with it (CIFAR10: ``width/4, width/2, width``; ImgNet10:
            ``width/2, width``). ``None``: the tables' 64.
        in_channels: image channels (default 1 for MNIST, 3 otherwise).
        num_classes: outputs of the final Linear.
        step_size: the Euler step (0.1 in §3.3.1, 0.05 in §3.7.4); for
            ``shared_resnet`` it sets the number of blocks.
        t1: terminal time ``T`` (1 in the thesis).
        method, adjoint: passed to :class:`ODEBlock`.
        denoise: add a dot-product :class:`FeatureDenoise` block (FDn, Table 3.4).
        denoise_position: ``"classifier"`` (the thesis, §3.4.3) or ``"features"``.
        normalize: True for the data set's :data:`DATASET_STATS`, False for none
            (e.g. digits already in [0, 1]), or an explicit ``(mean, std)``.
        groups: GroupNorm groups (default ``min(32, C)``, torchdiffeq's choice).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {DATASETS}")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid: {KINDS}")
    width = 64 if width is None else width
    step = {"cifar10": 4, "imgnet10": 2}.get(dataset, 1)
    if not isinstance(width, int) or width < step or width % step:
        raise ValueError(f"width must be a positive int divisible by {step} for {dataset}, got {width!r}")
    in_channels = (1 if dataset == "mnist" else 3) if in_channels is None else in_channels
    if not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")

    if normalize is True:
        mean, std = DATASET_STATS[dataset]
    elif normalize is False or normalize is None:
        mean = std = None
    else:
        try:
            mean, std = normalize
        except (TypeError, ValueError):
            raise TypeError("normalize must be True, False or a (mean, std) pair of sequences") from None
    norm_layer = None
    if mean is not None:
        if len(mean) not in (1, in_channels) or len(std) != len(mean):
            raise ValueError(f"normalisation statistics have {len(mean)} channels but the input has "
                             f"{in_channels}; pass normalize=False or normalize=(mean, std)")
        norm_layer = Normalize(tuple(mean), tuple(std))

    features = _feature_extractor(dataset, in_channels, width, groups)
    classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
    denoise_block = FeatureDenoise(width, "dot") if denoise else None
    common = dict(normalize=norm_layer, denoise=denoise_block, denoise_position=denoise_position)
    if kind in ("ode", "tisode"):
        g = _rm_function(dataset, width, kind == "tisode", groups)
        rm = ODEBlock(g, t1=t1, method=method, step_size=step_size, adjoint=adjoint)
        return ODENet(features, rm, classifier, **common)
    g = _rm_function(dataset, width, True, groups)
    repeats = 1
    if kind == "shared_resnet":
        q = t1 / step_size
        repeats = round(q)
        if repeats < 1 or abs(q - repeats) > 1e-6 * max(1.0, q):
            raise ValueError(f"shared_resnet needs t1 / step_size to be a positive integer, got {t1}/{step_size}")
    return CNNNet(features, ResidualBlock(g, repeats), classifier, **common)
