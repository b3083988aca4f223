"""The denoising chapter's library: ObsAtk's projection (Theorem 2.6.1), ObsAtk, HAT, DnCNN, data."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from robustbook import attacks
from robustbook.attacks import ObsAtk, l2_radius, obsatk, project_zero_mean_l2, reconstruction_error
from robustbook.data import denoising as D
from robustbook.losses import HATLoss, half_sse
from robustbook.metrics import psnr
from robustbook.models import DnCNN
from robustbook.train import run_epoch


def exact_projection(d: np.ndarray, eps: float) -> np.ndarray:
    """argmin ½‖d − z‖² s.t. Σz = 0, ‖z‖² ≤ eps² (eq. 2.8) by a generic constrained solver (SLSQP)."""
    cons = [{"type": "eq", "fun": lambda z: z.sum(), "jac": lambda z: np.ones_like(z)},
            {"type": "ineq", "fun": lambda z: eps ** 2 - z @ z, "jac": lambda z: -2 * z}]
    res = minimize(lambda z: 0.5 * np.sum((d - z) ** 2), np.zeros_like(d), jac=lambda z: z - d,
                   constraints=cons, method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
    assert res.success, res.message
    return res.x


@pytest.mark.parametrize("case", ["outside", "inside"])
@pytest.mark.parametrize("m", [2, 3, 7])
def test_projection_equals_exact_projection(case, m):
    rng = np.random.default_rng(m)
    for _ in range(5):
        d = rng.normal(size=m) * 2 + rng.normal()          # a mean shift, so step 1 matters
        pa = np.linalg.norm(d - d.mean())
        eps = 0.5 * pa if case == "outside" else 1.5 * pa   # the two cases of Theorem 2.6.1
        ours = project_zero_mean_l2(torch.tensor(d[None]), eps)[0].numpy()
        ref = exact_projection(d, eps)
        np.testing.assert_allclose(ours, ref, atol=1e-6)
        assert abs(ours.sum()) < 1e-9 and np.linalg.norm(ours) <= eps + 1e-9


def test_projection_is_batched_and_lands_in_both_sets():
    g = torch.Generator().manual_seed(0)
    d = torch.randn(6, 3, 5, 4, generator=g, dtype=torch.float64) + 0.7
    eps = torch.tensor([0.1, 1.0, 5.0, 50.0, 0.0, 2.0], dtype=torch.float64)
    p = project_zero_mean_l2(d, eps)
    assert p.shape == d.shape
    assert torch.allclose(p.flatten(1).mean(1), torch.zeros(6, dtype=torch.float64), atol=1e-12)
    assert (p.flatten(1).norm(dim=1) <= eps + 1e-12).all()
    for i in range(6):     # each sample alone gives the same result
        assert torch.allclose(p[i:i + 1], project_zero_mean_l2(d[i:i + 1], float(eps[i])))
    # idempotent, and a point already in A ∩ B is left alone
    assert torch.allclose(project_zero_mean_l2(p, eps), p)


def test_projection_rejects_bad_input():
    with pytest.raises(ValueError, match="batched"):
        project_zero_mean_l2(torch.zeros(5), 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        project_zero_mean_l2(torch.zeros(2, 5), -1.0)
    with pytest.raises(ValueError, match="one radius per sample"):
        project_zero_mean_l2(torch.zeros(2, 5), torch.ones(3))


def _denoiser(channels=1, seed=0):
    torch.manual_seed(seed)
    return DnCNN(channels, depth=4, features=8).eval()


def _images(channels=1, n=4, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = 0.25 + 0.5 * torch.rand(n, channels, size, size, generator=g)
    y = torch.clamp(x + 0.05 * torch.randn(x.shape, generator=g), 0, 1)
    return x, y


def test_dncnn_shapes_and_residual():
    for c in (1, 3):
        net = DnCNN(c, depth=20, features=16)
        assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == 20
        y = torch.rand(2, c, 13, 17)
        assert net(y).shape == y.shape
        with torch.no_grad():
            assert torch.allclose(net(y), y - net.residual(y))
    with pytest.raises(ValueError, match="channels"):
        DnCNN(2)
    with pytest.raises(ValueError, match="takes images"):
        DnCNN(1, depth=3)(torch.rand(1, 3, 8, 8))


def test_obsatk_delta_is_zero_mean_within_budget_and_beats_random_noise():
    net = _denoiser()
    x, y = _images()
    eps = 5 / 255
    radius = l2_radius(eps, y)
    assert math.isclose(radius, eps * 16)
    adv = obsatk(net, y, x, eps, steps=5, clip=False)      # pixels stay inside [0, 1] here: no clip needed
    delta = (adv - y).flatten(1)
    assert delta.mean(1).abs().max() < 1e-6
    assert (delta.norm(dim=1) <= radius * (1 + 1e-5)).all()
    assert (delta.norm(dim=1) >= 0.99 * radius).all()        # PGD ends on the sphere
    clipped = obsatk(net, y, x, eps, steps=5)
    assert clipped.min() >= 0 and clipped.max() <= 1
    assert ((clipped - y).flatten(1).norm(dim=1) <= radius * (1 + 1e-5)).all()
    g = torch.Generator().manual_seed(1)
    rand = project_zero_mean_l2(torch.randn(y.shape, generator=g) * 10, radius)   # random, same norm
    with torch.no_grad():
        p_adv = psnr(net(adv).clamp(0, 1), x, reduction="none")
        p_rand = psnr(net(y + rand).clamp(0, 1), x, reduction="none")
    assert (p_adv < p_rand).all(), (p_adv, p_rand)


def test_obsatk_configured_attack_matches_function_and_restores_mode():
    net = _denoiser(3)
    net.train()
    x, y = _images(3)
    atk = ObsAtk(7 / 255, 3)
    assert str(atk).startswith("ObsAtk-3 (L2, ε=7/255·√m")
    assert atk.describe()["eps"] == pytest.approx(7 / 255) and atk.norm == "l2"
    out = atk(net, y, x)
    assert net.training and all(m.training for m in net.modules())
    assert torch.equal(out, obsatk(net, y, x, 7 / 255, 3))
    assert atk.replace(steps=1, rel_step=1.0).steps == 1
    assert "ObsAtk" in attacks.__all__
    with pytest.raises(ValueError, match="steps"):
        ObsAtk(5 / 255, 0)


def test_obsatk_leaves_no_parameter_gradients():
    net = _denoiser()
    x, y = _images()
    obsatk(net, y, x, 5 / 255, 2)
    assert all(p.grad is None for p in net.parameters())


def test_hat_with_alpha_zero_is_normal_training():
    net = _denoiser()
    x, y = _images()
    y_adv = obsatk(net, y, x, 5 / 255, 1, rel_step=1.0)
    net.train()
    out, out_adv = net(y), net(y_adv)
    l_hat, l_nt = HATLoss(0.0)(out, out_adv, x), half_sse(out, x)
    assert torch.allclose(l_hat, l_nt)
    g_hat = torch.autograd.grad(l_hat, list(net.parameters()), retain_graph=True, allow_unused=True)
    g_nt = torch.autograd.grad(l_nt, list(net.parameters()), retain_graph=True)
    for a, b in zip(g_hat, g_nt, strict=False):
        assert torch.allclose(a, b)
    # alpha > 0: the consistency term enters with weight alpha / (1 + alpha), gradients through both outputs
    l1 = HATLoss(1.0)(out, out_adv, x)
    manual = 0.5 * (0.5 * reconstruction_error(out, x) + 0.5 * reconstruction_error(out, out_adv)).mean()
    assert torch.allclose(l1, manual)
    total = float(reconstruction_error(out, x).sum().detach())
    assert float(half_sse(out, x).detach()) * 2 * x.shape[0] == pytest.approx(total, rel=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        HATLoss(-1)


def test_run_epoch_pair_loss_alpha_zero_equals_plain_training():
    x, y = _images(n=8)
    loader = [(y, x)]
    states = []
    for pair in (None, HATLoss(0.0)):
        net = _denoiser(seed=3)
        opt = torch.optim.SGD(net.parameters(), lr=0.05)
        kw = {"attack": ObsAtk(5 / 255, 1, rel_step=1.0), "pair_loss": pair} if pair is not None else {}
        run_epoch(net, loader, half_sse, opt=opt, progress=False, **kw)
        states.append([p.detach().clone() for p in net.parameters()])
    for a, b in zip(*states, strict=False):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="needs attack"):
        run_epoch(_denoiser(), loader, half_sse, opt=None, pair_loss=HATLoss(1.0), progress=False)


def test_hat_training_changes_weights_differently_from_nt():
    x, y = _images(n=8)
    loader = [(y, x)]
    states = []
    for pair in (None, HATLoss(1.0)):
        net = _denoiser(seed=3)
        opt = torch.optim.SGD(net.parameters(), lr=0.05)
        kw = {"attack": ObsAtk(5 / 255, 1, rel_step=1.0), "pair_loss": pair} if pair is not None else {}
        run_epoch(net, loader, half_sse, opt=opt, progress=False, **kw)
        states.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    assert not torch.allclose(states[0], states[1])


def test_denoising_data_is_disjoint_and_noise_levels_match():
    for c in (1, 3):
        train, test = D.photo_split(c)
        assert train and test and not set(train) & set(test)
    x = D.test_crops(1, 32, 2, seed=0)
    assert x.shape == (8, 1, 32, 32) and 0 <= x.min() and x.max() <= 1
    p = D.train_patches(3, 16, 10, seed=0)
    assert p.shape == (10, 3, 16, 16)
    assert torch.equal(p, D.train_patches(3, 16, 10, seed=0))
    flat = torch.full((64, 1, 32, 32), 0.5)

    def g():
        return torch.Generator().manual_seed(0)

    for fn in (D.gaussian, D.uniform):
        noise = fn(flat, 15 / 255, g()) - flat
        assert noise.std().item() == pytest.approx(15 / 255, rel=0.03)
        assert abs(noise.mean().item()) < 1e-3
    for kind in D.UNSEEN_NOISE:
        for c in (1, 3):
            xc = torch.full((8, c, 32, 32), 0.5)
            n = D.unseen_noise(xc, kind, g()) - xc
            assert 2 / 255 < n.std().item() < 30 / 255 and abs(n.mean().item()) < 3 / 255, (kind, c)
    ds = D.NoisyPairs(p, 25 / 255)
    torch.manual_seed(0)
    y0, x0 = ds[0]
    assert torch.equal(x0, p[0]) and y0.shape == x0.shape
    assert (y0 - x0).abs().max() < 25 / 255 * 6


def test_single_image_baselines_shapes_determinism_and_errors():
    from robustbook.models import deep_image_prior, noise2self

    g = torch.Generator().manual_seed(0)
    y = torch.rand(1, 3, 20, 20, generator=g)
    for fn in (deep_image_prior, noise2self):
        a, b = fn(y, 3, seed=1), fn(y, 3, seed=1)
        assert a.shape == y.shape and 0 <= a.min() and a.max() <= 1
        assert torch.equal(a, b)
        with pytest.raises(ValueError, match="one noisy image"):
            fn(torch.rand(2, 3, 8, 8), 3)
        with pytest.raises(ValueError, match="iters"):
            fn(y, 0)


def test_noise2self_prediction_of_a_pixel_ignores_that_pixel():
    """J-invariance of the masked input: the neighbour mean of a masked pixel never reads it."""
    from robustbook.models.single_image import _neighbour_mean

    y = torch.rand(1, 1, 9, 9)
    y2 = y.clone()
    y2[0, 0, 4, 4] += 0.5
    assert torch.allclose(_neighbour_mean(y)[0, 0, 4, 4], _neighbour_mean(y2)[0, 0, 4, 4])
    assert not torch.allclose(_neighbour_mean(y)[0, 0, 4, 5], _neighbour_mean(y2)[0, 0, 4, 5])
