"""Analysis tools: feature shift and smoothness of a trained model.

* :mod:`~robustbook.analysis.eds` — Euclidean Distance Statistics of clean vs.
  adversarial features, BatchNorm channel means, forward-hook capture (source 000, Fig. 2)
* :mod:`~robustbook.analysis.lipschitz` — local Lipschitz estimates, input-gradient
  norms, and the soft threshold / L∞ normalisation maps of eqs. (9)–(12)
* :mod:`~robustbook.analysis.ode_flows` — integral curves, phase portraits and
  Gronwall's bound for the neural-ODE chapter (source 003, ch. 3)
* :mod:`~robustbook.analysis.channels` — per-class channel-wise activations, activation
  frequencies and weight-sorted channels (source 003, ch. 4, appendix 4.6.1)
"""
from __future__ import annotations

from robustbook.analysis.eds import bn_channel_means, capture, eds
from robustbook.analysis.lipschitz import (
    input_gradient_norm,
    linf_normalize,
    local_lipschitz,
    soft_threshold,
    soft_threshold_grad,
)
from robustbook.analysis.ode_flows import (
    TimeShift,
    estimate_lipschitz_dynamics,
    euler_map_dets,
    euler_paths,
    gronwall_bound,
    integral_curves_1d,
    mlp_lipschitz_bound,
    order_swaps,
    phase_portrait_grid,
    time_shift_check,
    trajectories_2d,
)

__all__ = [
    "eds",
    "bn_channel_means",
    "capture",
    "local_lipschitz",
    "input_gradient_norm",
    "soft_threshold",
    "soft_threshold_grad",
    "linf_normalize",
    "integral_curves_1d",
    "time_shift_check",
    "TimeShift",
    "phase_portrait_grid",
    "trajectories_2d",
    "gronwall_bound",
    "estimate_lipschitz_dynamics",
    "mlp_lipschitz_bound",
    "euler_paths",
    "order_swaps",
    "euler_map_dets",
]

# singular values of convolutions, spectral norms, perturbation growth (source 001)
from robustbook.analysis.spectral import conv_singular_values, perturbation_growth, spectral_norm_power  # noqa: E402

__all__ += ["conv_singular_values", "spectral_norm_power", "perturbation_growth"]

from robustbook.analysis.channels import ChannelActivations, channel_activations, channel_statistics  # noqa: E402

__all__ += ["ChannelActivations", "channel_activations", "channel_statistics"]
