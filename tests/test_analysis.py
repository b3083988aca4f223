"""Feature-shift statistics (source 000, Fig. 2) and the Lipschitz tools of eqs. (9)–(12)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from robustbook.analysis import (
    bn_channel_means,
    capture,
    eds,
    input_gradient_norm,
    linf_normalize,
    local_lipschitz,
    soft_threshold,
    soft_threshold_grad,
)
from robustbook.models.resnet_iqa import resnet_iqa

# --------------------------------------------------------------------------- EDS


def test_eds_constant_shift_has_zero_std():
    g = torch.Generator().manual_seed(0)
    clean = torch.randn(3, 4, 5, 6, generator=g)
    c = torch.tensor([1.0, -2.0, 2.0, 4.0])  # ‖c‖ = 5
    mean, std = eds(clean, clean + c.view(1, 4, 1, 1))
    assert mean.shape == std.shape == (3,)
    assert torch.allclose(mean, torch.full((3,), 5.0), atol=1e-5)
    assert torch.allclose(std, torch.zeros(3), atol=1e-5)


def test_eds_two_distances_per_sample():
    clean = torch.zeros(2, 2, 1, 2)
    adv = torch.zeros(2, 2, 1, 2)
    adv[0, :, 0, 0] = torch.tensor([3.0, 0.0])   # distance 3
    adv[0, :, 0, 1] = torch.tensor([3.0, 4.0])   # distance 5
    adv[1, :, 0, 1] = torch.tensor([0.0, 2.0])   # distances 0 and 2
    mean, std = eds(clean, adv)
    assert torch.allclose(mean, torch.tensor([4.0, 1.0]))
    assert torch.allclose(std, torch.tensor([1.0, 1.0]))  # population std over positions


def test_eds_validation():
    with pytest.raises(ValueError, match="same shape"):
        eds(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4))
    with pytest.raises(TypeError):
        eds(torch.zeros(1, 2, 3, 3, dtype=torch.long), torch.zeros(1, 2, 3, 3, dtype=torch.long))


def test_bn_channel_means():
    feats = torch.zeros(2, 4, 2, 2)
    for ch in range(4):
        feats[:, ch] = ch
    feats[0, 3, 0, 0] = 11.0  # channel 3: (11 + 7·3) / 8 = 4
    assert torch.allclose(bn_channel_means(feats, [3, 0, 2]), torch.tensor([4.0, 0.0, 2.0]))
    assert bn_channel_means(feats, torch.tensor([1])).shape == (1,)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        bn_channel_means(feats, [4])


# --------------------------------------------------------------------------- capture


def test_capture_returns_stage_output_restores_mode_and_removes_hook():
    torch.manual_seed(0)
    model = resnet_iqa("tiny", width=8).train()
    x = torch.rand(2, 3, 32, 32)
    stats = model.trunk.bn1.running_mean.clone()
    feats = capture(model, model.trunk.layer3, x)
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(model.trunk.bn1.running_mean, stats)  # ran in eval mode
    assert not model.trunk.layer3._forward_hooks
    assert not feats.requires_grad
    model.eval()
    assert torch.allclose(feats, model.features(x, "layer3"), atol=1e-6)


def test_capture_sees_batchnorm_output_before_inplace_relu():
    torch.manual_seed(0)
    model = resnet_iqa("tiny", width=8).eval()
    x = torch.rand(2, 3, 32, 32)
    bn = capture(model, model.trunk.layer3[0].bn1, x)
    assert (bn < 0).any()  # torchvision applies ReLU(inplace=True) to it afterwards
    with pytest.raises(ValueError, match="2 times"):
        capture(model, model.trunk.layer3[0].relu, x)
    with pytest.raises(ValueError, match="submodule"):
        capture(model, nn.ReLU(), x)
    g = capture(model, model.trunk.layer3, x, grad=True)
    assert g.requires_grad


# --------------------------------------------------------------------------- Lipschitz


def linear_map(m: int = 8, shape=(3, 4, 4), seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(m, math.prod(shape), generator=g)
    return W, (lambda x: x.flatten(1) @ W.T)


@pytest.mark.parametrize("m", [1, 8])
def test_local_lipschitz_of_linear_map_is_top_singular_value(m):
    W, f = linear_map(m)
    sigma = torch.linalg.svdvals(W)[0]
    x = torch.rand(4, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    est = local_lipschitz(f, x, generator=torch.Generator().manual_seed(2))
    assert est.shape == (4,)
    assert (est >= 0.95 * sigma).all(), (est, sigma)
    assert (est <= sigma * (1 + 1e-4)).all(), (est, sigma)
    # the ascent matters: the random start alone is far below σ₁
    start = local_lipschitz(f, x, steps=0, generator=torch.Generator().manual_seed(2))
    assert (start < 0.8 * sigma).all()


def test_local_lipschitz_soft_threshold_does_not_increase_the_constant():
    # eq. (12): Lip(S ∘ f) ≤ Lip(f), because S is 1-Lipschitz
    W, f = linear_map(8)
    sigma = torch.linalg.svdvals(W)[0]
    x = torch.rand(4, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    est = local_lipschitz(lambda z: soft_threshold(f(z), 0.5), x, eps=0.05, norm="linf", n_restarts=2,
                          generator=torch.Generator().manual_seed(3))
    assert (est <= sigma * (1 + 1e-4)).all()


def test_local_lipschitz_keeps_the_best_iterate():
    # a wiggly 1-D map: ascent steps can land on lower ratios; the result must never fall
    # below the ratio at the (shared) random start, and restarts can only help
    f = lambda z: torch.cos(40 * z)  # noqa: E731
    x = torch.rand(64, 1, generator=torch.Generator().manual_seed(0))
    start = local_lipschitz(f, x, eps=0.1, steps=0, generator=torch.Generator().manual_seed(1))
    ascent = local_lipschitz(f, x, eps=0.1, steps=5, generator=torch.Generator().manual_seed(1))
    assert (ascent >= start).all() and (ascent > start).any()
    more = local_lipschitz(f, x, eps=0.1, steps=5, n_restarts=3, generator=torch.Generator().manual_seed(1))
    assert (more >= ascent).all()
    assert (more <= 40 * (1 + 1e-4)).all()  # |f'| ≤ 40


def test_lipschitz_tools_restore_mode_and_leave_parameter_grads():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 1)).train()
    x = torch.rand(3, 3, 6, 6)
    stats = model[1].running_mean.clone()
    est = local_lipschitz(model, x, steps=3, generator=torch.Generator().manual_seed(0))
    gn = input_gradient_norm(model, x)
    assert est.shape == gn.shape == (3,) and (est > 0).all() and (gn > 0).all()
    assert model.training and model[1].training
    assert torch.equal(model[1].running_mean, stats)
    assert all(p.grad is None for p in model.parameters())


def test_input_gradient_norm_linear():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(48, generator=g)
    x = torch.rand(5, 3, 4, 4, generator=g)
    assert torch.allclose(input_gradient_norm(lambda z: z.flatten(1) @ w, x), w.norm().expand(5), rtol=1e-5)
    W, f = linear_map(6)
    assert torch.allclose(input_gradient_norm(f, x), torch.linalg.matrix_norm(W).expand(5), rtol=1e-5)


def test_soft_threshold_values_and_derivative():
    u = torch.tensor([-1.0, -0.2, -0.1, 0.0, 0.15, 0.2, 0.7])
    assert torch.allclose(soft_threshold(u, 0.2), torch.tensor([-0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5]))
    assert torch.equal(soft_threshold_grad(u, 0.2), torch.tensor([1.0, 0, 0, 0, 0, 0, 1]))
    v = torch.tensor([-0.9, -0.31, 0.05, 0.4, 1.3], requires_grad=True)
    soft_threshold(v, 0.3).sum().backward()
    assert torch.equal(v.grad, soft_threshold_grad(v.detach(), 0.3))
    with pytest.raises(ValueError, match="must be a non-negative number, got -0.1"):
        soft_threshold(u, -0.1)


def test_soft_threshold_is_1_lipschitz_on_random_pairs():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 10000, 16, generator=g)
    for lam in (0.0, 0.2, 1.0):
        lhs = (soft_threshold(a, lam) - soft_threshold(b, lam)).norm(dim=1)
        assert (lhs <= (a - b).norm(dim=1) + 1e-6).all()
    # scalar version, and strictly contracting once both points are inside the band
    assert (soft_threshold(a, 0.2) - soft_threshold(b, 0.2)).abs().le((a - b).abs() + 1e-6).all()


def test_linf_normalize_is_not_1_lipschitz():
    a = torch.tensor([1e-3, 0.0])
    b = torch.tensor([0.0, 1e-3])
    na, nb = linf_normalize(a), linf_normalize(b)
    assert torch.allclose(na, torch.tensor([1.0, 0.0])) and torch.allclose(nb, torch.tensor([0.0, 1.0]))
    assert (na - nb).norm() > 100 * (a - b).norm()
    assert torch.allclose(linf_normalize(torch.tensor([[2.0, -4.0], [1.0, 0.5]]), dim=1),
                          torch.tensor([[0.5, -1.0], [1.0, 0.5]]))
