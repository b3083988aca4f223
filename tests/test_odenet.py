"""Neural-ODE models of chapter 3 (source 003): ODEBlock, ODENet/CNNNet, FDn, IRd, steady-state loss, flows."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from robustbook.analysis.ode_flows import (
    estimate_lipschitz_dynamics,
    gronwall_bound,
    integral_curves_1d,
    phase_portrait_grid,
    time_shift_check,
    trajectories_2d,
)
from robustbook.attacks import EOT, fgsm
from robustbook.losses import steady_state_loss, with_steady_state
from robustbook.models.feature_denoise import FeatureDenoise
from robustbook.models.input_randomization import Randomized, RandomResizePad
from robustbook.models.odenet import (
    CNNNet,
    ConcatConv2d,
    ConvDynamics,
    ODEBlock,
    ODENet,
    ResidualBlock,
    fixed_grid,
    odenet,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: one intra-op thread avoids OpenMP spin-waits on a busy 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _z(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _dyn(channels: int = 8, time_invariant: bool = False, groups: int | None = 2) -> ConvDynamics:
    torch.manual_seed(0)
    return ConvDynamics(channels, time_invariant=time_invariant, groups=groups).double()


# --------------------------------------------------------------------------- ODEBlock


@pytest.mark.parametrize("t1, step, n_steps", [(1.0, 0.1, 10), (0.25, 0.1, 3), (1.0, 0.05, 20)])
def test_euler_block_equals_hand_written_euler_loop(t1: float, step: float, n_steps: int) -> None:
    f = _dyn()
    block = ODEBlock(f, t1=t1, step_size=step)
    z0 = _z(2, 8, 5, 5)
    z, t, steps = z0.clone(), 0.0, 0
    while t < t1 - 1e-12:
        h = min(step, t1 - t)
        z = z + h * f(torch.tensor(t, dtype=z.dtype), z)
        t, steps = t + h, steps + 1
    out = block(z0)
    assert steps == n_steps == block.nfe
    torch.testing.assert_close(out, z, atol=1e-6, rtol=0)
    assert not torch.allclose(out, z0)


def test_nfe_counts_and_resets() -> None:
    f = _dyn()
    z0 = _z(1, 8, 4, 4)
    block = ODEBlock(f, step_size=0.1)
    block(z0)
    assert block.nfe == 10
    block(z0)
    assert block.nfe == 10  # reset each forward
    fine = ODEBlock(f, step_size=0.05)
    fine(z0)
    assert fine.nfe == 20
    rk4 = ODEBlock(f, method="rk4", step_size=0.1)
    rk4(z0)
    assert rk4.nfe == 40
    traj = block.trajectory(z0, [0.0, 0.5, 1.0])
    assert traj.shape == (3, 1, 8, 4, 4) and block.nfe == 10
    torch.testing.assert_close(traj[0], z0)
    torch.testing.assert_close(traj[-1], block(z0))


def test_fixed_grid_has_no_spurious_step() -> None:
    grid = fixed_grid(0.0, 1.1, 0.01)
    assert len(grid) == 111 and grid[0] == 0.0 and grid[-1] == 1.1
    assert fixed_grid(0.0, 0.25, 0.1) == pytest.approx([0.0, 0.1, 0.2, 0.25])
    block = ODEBlock(lambda t, z: -z, t1=1.1, step_size=0.01)
    block(torch.ones(3))
    assert block.nfe == 110  # torchdiffeq's own step_size grid makes 111 here in float32


def test_adaptive_and_adjoint_solvers() -> None:
    a = torch.tensor([[-0.5, 1.0], [-1.0, -0.3]], dtype=torch.float64, requires_grad=True)
    f = lambda t, z: z @ a.T  # noqa: E731
    z0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    exact = z0 @ torch.linalg.matrix_exp(a.detach()).T
    dopri = ODEBlock(f, method="dopri5", rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(dopri(z0), exact, atol=1e-6, rtol=0)
    assert dopri.nfe > 0

    class Linear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Parameter(a.detach().clone())

        def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
            return z @ self.a.T

    grads = []
    for adjoint in (False, True):
        lin = Linear()
        ODEBlock(lin, step_size=0.01, adjoint=adjoint)(z0).sum().backward()
        grads.append(lin.a.grad)
    torch.testing.assert_close(grads[0], grads[1], atol=2e-2, rtol=0)


def test_odeblock_validation() -> None:
    f = _dyn(time_invariant=True)
    with pytest.raises(ValueError, match="method"):
        ODEBlock(f, method="leapfrog")
    with pytest.raises(ValueError, match="step_size"):
        ODEBlock(f, step_size=0.0)
    with pytest.raises(ValueError, match="contradicts"):
        ODEBlock(f, time_invariant=False)
    assert ODEBlock(f).time_invariant and not ODEBlock(_dyn()).time_invariant
    with pytest.raises(TypeError):
        ODEBlock(3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- time invariance, eq. (3.3)


def test_time_invariant_block_is_shift_invariant_and_vanilla_is_not() -> None:
    z0 = _z(1, 8, 4, 4)
    ts = [round(0.1 * k, 10) for k in range(11)]
    tis = ODEBlock(_dyn(time_invariant=True), step_size=0.1)
    res = time_shift_check(tis, z0, 0.3, ts)  # T' = 3 steps
    assert res.shifted.shape == (11, 1, 8, 4, 4)
    assert res.max_error < 1e-9
    vanilla = ODEBlock(_dyn(time_invariant=False), step_size=0.1)
    assert time_shift_check(vanilla, z0, 0.3, ts).max_error > 1e-3


def test_time_shift_check_on_plain_callables() -> None:
    t = np.linspace(0, 2, 9)
    assert time_shift_check(lambda t, z: -z + torch.sin(z), [0.5, -1.0], 0.7, t).max_error < 1e-6
    assert time_shift_check(lambda t, z: -z + t, [0.5, -1.0], 0.7, t).max_error > 0.1


def test_concat_conv_sees_time() -> None:
    torch.manual_seed(0)
    conv = ConcatConv2d(3, 4, 3, padding=1)
    x = _z(2, 3, 5, 5, dtype=torch.float32)
    assert conv.conv.in_channels == 4
    assert not torch.allclose(conv(torch.tensor(0.0), x), conv(torch.tensor(1.0), x))


# --------------------------------------------------------------------------- steady-state loss, eq. (3.5)


def test_steady_state_loss_of_decay_matches_hand_riemann_sum() -> None:
    h, T = 1e-3, 1.0
    block = ODEBlock(lambda t, z: -z, t1=T, step_size=h)
    zT = _z(3, 4)
    z, acc = zT.clone(), torch.zeros_like(zT)
    for _ in range(round(T / h)):
        acc += (-z).abs() * h
        z = z - h * z
    hand = acc.norm(dim=1).mean()
    loss = steady_state_loss(block, zT)
    assert loss.ndim == 0
    torch.testing.assert_close(loss, hand, atol=1e-12, rtol=0)
    analytic = (zT.norm(dim=1) * (1 - math.exp(-T))).mean()  # ∫_0^T |z| e^{-t} dt
    assert abs(float(loss) - float(analytic)) < 1e-3 * float(analytic)


def test_steady_state_loss_of_constant_dynamics_is_norm_times_T() -> None:
    c = _z(2, 5)
    for T in (1.0, 2.0, 0.35):
        block = ODEBlock(lambda t, z: c.expand_as(z), t1=1.0, step_size=0.1)
        loss = steady_state_loss(block, torch.zeros(2, 5, dtype=torch.float64), T=T)
        torch.testing.assert_close(loss, c.norm(dim=1).mean() * T, atol=1e-12, rtol=0)


def test_steady_state_loss_passes_time_to_vanilla_dynamics() -> None:
    seen: list[float] = []

    def f(t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        seen.append(float(t))
        return t * torch.ones_like(z)

    block = ODEBlock(f, t1=1.0, step_size=0.25)
    loss = steady_state_loss(block, torch.zeros(1, 4, dtype=torch.float64))
    assert seen == [1.0, 1.25, 1.5, 1.75]
    hand = sum(seen) * 0.25 * 2.0  # ‖(s, s, s, s)‖₂ = 2 s with s the Riemann sum
    assert float(loss) == pytest.approx(hand)


def test_steady_state_loss_trains_the_dynamics_and_is_a_batch_mean() -> None:
    torch.manual_seed(0)
    net = odenet("mnist", "tisode", width=8, normalize=False).double()
    x = torch.rand(2, 1, 12, 12, dtype=torch.float64)
    _, zT = net(x, return_state=True)
    loss = steady_state_loss(net.rm, zT)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.rm.parameters())
    with torch.no_grad():
        single = steady_state_loss(net.rm, zT[:1])
        doubled = steady_state_loss(net.rm, torch.cat([zT[:1], zT[:1]]))
    torch.testing.assert_close(single, doubled)
    with pytest.raises(TypeError, match="ODEBlock"):
        steady_state_loss(net, zT)  # type: ignore[arg-type]


def test_with_steady_state_adds_the_weighted_term() -> None:
    torch.manual_seed(0)
    net = odenet("mnist", "tisode", width=8)
    x, y = torch.rand(4, 1, 12, 12), torch.tensor([0, 1, 2, 3])
    ce = nn.functional.cross_entropy
    out = net(x)
    total = with_steady_state(ce, net, 0.1)(out, y)
    torch.testing.assert_close(total, ce(out, y) + 0.1 * steady_state_loss(net.rm, net.last_state))
    assert total.item() > ce(out, y).item()
    with pytest.raises(TypeError):
        with_steady_state(ce, odenet("mnist", "cnn", width=8), 0.1)


# --------------------------------------------------------------------------- architectures, Tables 3.5 / 3.9

PARAMS = {"mnist": (142410, 141258), "svhn": (143562, 142410), "imgnet10": (286250, 282794),
          "cifar10": (99722, 98570)}


@pytest.mark.parametrize("dataset", sorted(PARAMS))
def test_parameter_counts_match_within_ten_percent(dataset: str) -> None:
    n = {k: sum(p.numel() for p in odenet(dataset, k).parameters()) for k in ("ode", "tisode", "cnn",
                                                                               "shared_resnet")}
    assert (n["ode"], n["cnn"]) == PARAMS[dataset]
    assert abs(n["ode"] - n["cnn"]) <= 0.1 * n["cnn"]
    assert n["tisode"] == n["cnn"] == n["shared_resnet"]


def test_thesis_sizes() -> None:
    assert 130_000 < PARAMS["mnist"][0] < 150_000  # "around 140k" (§3.3.1)
    assert 260_000 < PARAMS["imgnet10"][0] < 300_000  # "approximately 280k"
    net = odenet("imgnet10", "ode")
    assert sum(isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1) for m in net.modules()) == 9  # "nine conv"


def test_shared_resnet_matches_euler_nfe() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 1, 12, 12)
    shared = odenet("mnist", "shared_resnet", width=8, step_size=0.05)
    ode = odenet("mnist", "ode", width=8, step_size=0.05)
    shared(x), ode(x)
    assert shared.nfe == 20 == ode.nfe
    assert isinstance(shared.rm, ResidualBlock) and shared.rm.repeats == 20
    cnn = odenet("mnist", "cnn", width=8)
    cnn(x)
    assert cnn.nfe == 1
    with pytest.raises(ValueError, match="integer"):
        odenet("mnist", "shared_resnet", step_size=0.3)


@pytest.mark.parametrize("kind", ["ode", "tisode", "cnn", "shared_resnet"])
@pytest.mark.parametrize("dataset, shape", [("mnist", (1, 12, 12)), ("svhn", (3, 12, 12)),
                                            ("cifar10", (3, 16, 16)), ("imgnet10", (3, 32, 32))])
def test_forward_backward_every_kind(kind: str, dataset: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = odenet(dataset, kind, width=8, step_size=0.25)
    assert isinstance(net, ODENet if kind in ("ode", "tisode") else CNNNet)
    x = torch.rand(2, *shape)
    out = net(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    nn.functional.cross_entropy(out, torch.tensor([1, 2])).backward()
    assert all(p.grad is not None for p in net.parameters())
    assert net.last_state is not None and net.last_state.shape[1] == 8


def test_odenet_factory_validation() -> None:
    with pytest.raises(ValueError, match="dataset"):
        odenet("imagenet")
    with pytest.raises(ValueError, match="kind"):
        odenet("mnist", "resnet")
    with pytest.raises(ValueError, match="divisible by 4"):
        odenet("cifar10", width=10)
    with pytest.raises(ValueError, match="channels"):
        odenet("cifar10", in_channels=1)
    assert isinstance(odenet("cifar10", in_channels=1, normalize=False).normalize, nn.Identity)
    with pytest.raises(TypeError):
        ODENet(nn.Identity(), ResidualBlock(ConvDynamics(4, True)), nn.Identity())
    with pytest.raises(ValueError, match="time-invariant"):
        ResidualBlock(ConvDynamics(4, time_invariant=False))


# --------------------------------------------------------------------------- FDn (non-local denoising)


def test_nonlocal_block_is_identity_at_init_and_computes_the_dot_product_mean() -> None:
    torch.manual_seed(0)
    x = _z(2, 6, 5, 4, dtype=torch.float32)
    for embed in (False, True):
        block = FeatureDenoise(6, "dot", embed=embed)
        assert torch.equal(block(x), x)
        flat = x.flatten(2)
        theta = block.theta(x).flatten(2) if embed else flat
        phi = block.phi(x).flatten(2) if embed else flat
        w = torch.einsum("bki,bkj->bij", theta, phi) / flat.shape[-1]  # (θ(x_i)·φ(x_j)) / N
        brute = torch.einsum("bij,bcj->bci", w, flat).view_as(x)
        torch.testing.assert_close(block.nonlocal_means(x), brute, atol=1e-5, rtol=1e-5)
        nn.init.normal_(block.conv.weight)
        assert not torch.allclose(block(x), x)
    assert sum(p.numel() for p in FeatureDenoise(6, "dot").parameters()) == 6 * 6


@pytest.mark.parametrize("position", ["classifier", "features"])
def test_denoise_option_starts_as_identity(position: str) -> None:
    torch.manual_seed(0)
    net = odenet("mnist", "tisode", width=8, denoise=True, denoise_position=position)
    assert isinstance(net.denoise, FeatureDenoise) and net.denoise.mode == "dot"
    x = torch.rand(2, 1, 12, 12)
    with_block = net(x)
    net.denoise = nn.Identity()
    torch.testing.assert_close(with_block, net(x))


# --------------------------------------------------------------------------- IRd (input randomisation)


def test_random_resize_pad_sizes_and_randomness() -> None:
    t = RandomResizePad(31, min_scale=28 / 31, generator=torch.Generator().manual_seed(0))
    assert t.min_size == 28
    ones = torch.ones(1, 1, 28, 28)
    sizes, offsets = set(), set()
    for _ in range(60):
        y = t(ones)
        assert y.shape == (1, 1, 31, 31)
        r = math.isqrt(int(y.sum()))
        assert r * r == int(y.sum()) and 28 <= r < 31
        rows = torch.nonzero(y[0, 0].sum(1)).flatten()
        sizes.add(r)
        offsets.add(int(rows[0]))
    assert sizes == {28, 29, 30} and len(offsets) >= 2
    a = RandomResizePad(31, generator=torch.Generator().manual_seed(5))(ones)
    b = RandomResizePad(31, generator=torch.Generator().manual_seed(5))(ones)
    assert torch.equal(a, b)
    per = RandomResizePad(20, min_scale=0.5, per_sample=True, generator=torch.Generator().manual_seed(1))
    sums = per(torch.ones(16, 1, 8, 8)).sum((1, 2, 3))
    assert len(set(sums.tolist())) > 1
    with pytest.raises(ValueError, match="min_scale"):
        RandomResizePad(10, min_scale=0.99)


def test_randomized_model_is_random_in_eval_and_eot_averages_draws() -> None:
    torch.manual_seed(0)
    net = odenet("mnist", "cnn", width=8).eval()
    gen = torch.Generator()
    model = Randomized(net, RandomResizePad(14, min_scale=0.5, generator=gen)).eval()
    x = torch.rand(3, 1, 12, 12)
    gen.manual_seed(0)
    draws = torch.stack([model(x) for _ in range(6)])
    assert draws.std(0).max() > 1e-4  # random in eval mode
    gen.manual_seed(0)
    eot = EOT(model, n=6)
    torch.testing.assert_close(eot(x), draws.mean(0))
    x_adv = fgsm(eot, x, torch.tensor([0, 1, 2]), eps=0.1)
    assert x_adv.shape == x.shape and (x_adv - x).abs().max() <= 0.1 + 1e-6


# --------------------------------------------------------------------------- flows and Gronwall (§3.7.3)


def test_gronwall_bound_holds_for_a_linear_system_and_can_fail() -> None:
    a = torch.tensor([[1.0, 2.0], [0.0, 0.5]], dtype=torch.float64)
    f = lambda t, z: z @ a.T  # noqa: E731
    pts = _z(16, 2)
    L = estimate_lipschitz_dynamics(f, pts)
    assert L == pytest.approx(float(np.linalg.svd(a.numpy(), compute_uv=False).max()), rel=1e-9)
    t = np.linspace(0.0, 3.0, 31)
    x1 = np.array([0.3, -0.2])
    x2 = x1 + 1e-2 * np.array([1.0, 0.0])  # along the eigenvector of eigenvalue 1: gap = ‖δ₀‖ e^{t}
    traj = trajectories_2d(f, np.stack([x1, x2]), t)
    assert traj.shape == (31, 2, 2)
    gap = np.linalg.norm(traj[:, 1] - traj[:, 0], axis=1)
    np.testing.assert_allclose(gap, 1e-2 * np.exp(t), rtol=1e-6)
    assert np.all(gap <= gronwall_bound(x2 - x1, L, t) * (1 + 1e-9))
    assert np.any(gap > gronwall_bound(x2 - x1, 0.5, t))  # a too-small constant is violated


def test_lipschitz_estimate_of_a_network_and_flow_helpers() -> None:
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).double()
    f = lambda t, z: mlp(z)  # noqa: E731
    L = estimate_lipschitz_dynamics(f, _z(8, 2))
    with torch.no_grad():
        bound = float(torch.linalg.matrix_norm(mlp[2].weight, 2) * torch.linalg.matrix_norm(mlp[0].weight, 2))
    assert 0 < L <= bound
    assert estimate_lipschitz_dynamics(ODEBlock(f), _z(8, 2)) == pytest.approx(L)
    X, Y, U, V = phase_portrait_grid(lambda t, z: torch.stack([-z[:, 1], z[:, 0]], 1), (-1, 1), (-2, 2), n=5)
    assert X.shape == Y.shape == U.shape == V.shape == (5, 5)
    np.testing.assert_allclose(U, -Y)
    np.testing.assert_allclose(V, X)
    curves = integral_curves_1d(lambda t, z: torch.sin(z) + t, [-1.0, -0.5, 0.0, 0.5], np.linspace(0, 2, 21))
    assert curves.shape == (21, 4)
    assert np.all(np.diff(curves, axis=1) > 0)  # integral curves never cross (Theorem 3.3.1)
    block = ODEBlock(lambda t, z: -z, step_size=0.1)
    traj = trajectories_2d(block, [[1.0, 2.0]], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(traj[-1, 0], np.array([1.0, 2.0]) * 0.9 ** 10, rtol=1e-12)
