"""Certified Lipschitz constants and fixed-step Euler maps (source 003, ch. 3: Theorem 3.3.1, Theorem 3.7.1)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from robustbook.analysis.ode_flows import (
    estimate_lipschitz_dynamics,
    euler_map_dets,
    euler_paths,
    integral_curves_1d,
    mlp_lipschitz_bound,
    order_swaps,
)
from robustbook.models.odenet import ODEBlock


def _mlp(seed: int = 0, hidden: int = 16, act: type = nn.Tanh) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, hidden), act(), nn.Linear(hidden, 2)).double()


def test_bound_is_the_product_of_spectral_norms_and_bounds_every_pair() -> None:
    mlp = _mlp()
    want = float(np.linalg.norm(mlp[0].weight.detach().numpy(), 2) * np.linalg.norm(mlp[2].weight.detach().numpy(), 2))
    C = mlp_lipschitz_bound(mlp)
    assert C == pytest.approx(want, rel=1e-12)
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2000, 2, generator=g, dtype=torch.float64) * 3, torch.randn(2000, 2, generator=g,
                                                                                   dtype=torch.float64) * 3
    with torch.no_grad():
        ratios = (mlp(a) - mlp(b)).norm(dim=1) / (a - b).norm(dim=1)
    assert float(ratios.max()) <= C * (1 + 1e-12)
    sampled = estimate_lipschitz_dynamics(lambda t, z: mlp(z), a[:50])
    assert 0 < sampled <= C                      # the sampled Jacobian estimate is a lower one


def test_bound_is_exact_for_one_linear_layer_and_scales_activations() -> None:
    lin = nn.Sequential(nn.Linear(3, 3)).double()
    sampled = estimate_lipschitz_dynamics(lambda t, z: lin(z), torch.randn(4, 3, dtype=torch.float64))
    assert mlp_lipschitz_bound(lin) == pytest.approx(sampled, rel=1e-9)
    assert mlp_lipschitz_bound(_mlp(act=nn.Sigmoid)) == pytest.approx(0.25 * mlp_lipschitz_bound(_mlp()), rel=1e-12)


def test_bound_accepts_blocks_and_wrappers_and_refuses_unknown_layers() -> None:
    class Dyn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = _mlp()

        def forward(self, t, z):
            return self.net(z)

    assert mlp_lipschitz_bound(ODEBlock(Dyn())) == pytest.approx(mlp_lipschitz_bound(_mlp()))
    with pytest.raises(TypeError, match="no known Lipschitz constant"):
        mlp_lipschitz_bound(nn.Sequential(nn.Linear(2, 2), nn.Dropout()))
    with pytest.raises(TypeError, match="nn.Sequential"):
        mlp_lipschitz_bound(nn.Conv2d(1, 1, 3))
    with pytest.raises(ValueError, match="negative_slope"):
        mlp_lipschitz_bound(nn.Sequential(nn.Linear(2, 2), nn.LeakyReLU(2.0)))


def test_euler_paths_match_the_fixed_step_block() -> None:
    mlp = _mlp()
    f = lambda t, z: mlp(z)  # noqa: E731
    starts = torch.randn(5, 2, dtype=torch.float64)
    paths = euler_paths(f, starts, 0.1, 10)
    assert paths.shape == (11, 5, 2)
    with torch.no_grad():
        out = ODEBlock(f, t1=1.0, step_size=0.1)(starts)
    np.testing.assert_allclose(paths[-1], out.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("step, swapped", [(0.3, False), (0.5, True)])
def test_euler_map_keeps_order_only_while_step_times_lipschitz_is_below_one(step: float, swapped: bool) -> None:
    f = lambda t, z: -2.5 * (z - 1.0)  # noqa: E731   C = 2.5: h·C = 0.75 keeps the order, 1.25 reverses it
    starts = np.linspace(0.0, 2.0, 9)
    paths = euler_paths(f, starts, step, 6)
    assert (order_swaps(paths) > 0) is swapped
    dets = euler_map_dets(f, starts[:, None], step)
    np.testing.assert_allclose(dets, 1 - 2.5 * step)
    assert order_swaps(integral_curves_1d(f, starts, np.linspace(0, 3, 31))) == 0   # the exact flow never swaps


def test_dets_of_a_linear_map_and_positivity_under_the_certified_step() -> None:
    a = torch.tensor([[-3.0, 1.0], [0.5, -1.0]], dtype=torch.float64)
    dets = euler_map_dets(lambda t, z: z @ a.T, torch.randn(3, 2, dtype=torch.float64), 0.7)
    np.testing.assert_allclose(dets, np.linalg.det(np.eye(2) + 0.7 * a.numpy()))
    assert dets[0] < 0                                               # 0.7 is too large a step for this field
    mlp = _mlp(seed=3)
    h = 0.9 / mlp_lipschitz_bound(mlp)                               # h·C < 1: every det is positive
    dets = euler_map_dets(lambda t, z: mlp(z), torch.randn(200, 2, dtype=torch.float64) * 3, h)
    assert dets.min() > 0


def test_validation() -> None:
    with pytest.raises(ValueError, match="step"):
        euler_paths(lambda t, z: z, [0.0, 1.0], 0.0, 3)
    with pytest.raises(ValueError, match="n_steps"):
        euler_paths(lambda t, z: z, [0.0, 1.0], 0.1, 0)
    with pytest.raises(ValueError, match="increasing"):
        order_swaps(np.array([[1.0, 0.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="shape"):
        euler_map_dets(lambda t, z: z, np.zeros(3), 0.1)
