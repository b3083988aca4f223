"""Orthogonal convolutions, spectral analysis, RobustBlock, NR-IQA models, pruning, UAP, stAdv,
R-Score / absolute gain and NT (chapter "Robustness as architecture", source 001)."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from robustbook.analysis import conv_singular_values, perturbation_growth, spectral_norm_power
from robustbook.attacks import UAP, StAdv, apply_uap, stadv, train_uap
from robustbook.attacks.stadv import flow_smoothness, warp
from robustbook.losses.norm_in_norm import norm_in_norm_loss
from robustbook.metrics import abs_gain, abs_gain_ci, auc_over_eps, r_score, r_score_ci
from robustbook.models import (
    AOLConv2d,
    CayleyConv2d,
    MaxMin,
    RobustBlock,
    StagedNet,
    nr_iqa_model,
    orthogonal_conv,
    prune_filters,
)
from robustbook.models.orthogonal import cayley
from robustbook.train.gradnorm import fit_gradient_norm, gradient_norm_penalty

CASES = [(4, 4, 1), (4, 4, 3), (3, 6, 3), (2, 5, 2), (4, 4, 5), (6, 3, 3), (5, 2, 4)]


@pytest.mark.parametrize("cin,cout,k", CASES)
def test_cayley_singular_values_are_one_float64(cin, cout, k):
    torch.manual_seed(cin * 10 + cout + k)
    layer = CayleyConv2d(cin, cout, k, input_size=8).double()
    sv = conv_singular_values(layer, 8)
    assert sv.numel() == 64 * min(cin, cout)
    assert torch.allclose(sv, torch.ones_like(sv), atol=1e-6), (sv.min(), sv.max())


@pytest.mark.parametrize("cin,cout,k", CASES)
def test_cayley_distances(cin, cout, k):
    torch.manual_seed(k)
    layer = CayleyConv2d(cin, cout, k).double()
    with torch.no_grad():
        layer.weight.normal_()  # not at the initial point: any weights must give an orthogonal layer
        layer.alpha.fill_(3.7)
    x, y = torch.randn(4, cin, 8, 8, dtype=torch.float64), torch.randn(4, cin, 8, 8, dtype=torch.float64)
    ratio = (layer(x) - layer(y)).flatten(1).norm(dim=1) / (x - y).flatten(1).norm(dim=1)
    if cout >= cin:
        assert torch.allclose(ratio, torch.ones_like(ratio), atol=1e-6), ratio
    else:
        assert (ratio <= 1 + 1e-6).all() and (ratio < 0.999).any(), ratio  # a projection: 1-Lipschitz, not isometric


def test_cayley_float32_and_dense_jacobian():
    torch.manual_seed(1)
    layer = CayleyConv2d(3, 4, 3, bias=False, input_size=6)
    x = torch.zeros(1, 3, 6, 6)
    jac = torch.autograd.functional.jacobian(lambda t: layer(t).flatten(), x).reshape(4 * 36, 3 * 36)
    sv = torch.linalg.svdvals(jac)
    assert torch.allclose(sv, torch.ones_like(sv), atol=1e-4), (sv.min(), sv.max())


def test_cayley_shift_equals_circular_conv_for_raw_spectrum():
    """The shifted spectrum (before the Cayley transform) is nn.Conv2d with circular padding k//2 (odd k)."""
    torch.manual_seed(2)
    layer = CayleyConv2d(2, 3, 3, bias=False, input_size=8).double()
    w = layer._spectrum(8).reshape(8, 5, 3, 2)
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    xf = torch.fft.rfft2(x).permute(2, 3, 1, 0)
    y = torch.fft.irfft2((w @ xf).permute(3, 2, 0, 1), s=(8, 8))
    ref = nn.functional.conv2d(nn.functional.pad(x, (1, 1, 1, 1), mode="circular"), layer.weight)
    assert torch.allclose(y, ref, atol=1e-10)


def test_cayley_wrong_size_raises_and_scale_init():
    layer = CayleyConv2d(3, 3, 3)
    assert layer.input_size is None
    layer(torch.rand(1, 3, 8, 8))
    assert layer.input_size == 8
    assert math.isclose(float(layer.alpha.detach()), float(layer._spectrum(8).detach().norm()), rel_tol=1e-5)
    with pytest.raises(ValueError, match="built for 8"):
        layer(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="square"):
        layer(torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        CayleyConv2d(2, 2, 5, input_size=3)


def test_cayley_of_square_matrix_is_unitary():
    w = torch.randn(5, 4, 4, dtype=torch.complex128)
    q = cayley(w)
    eye = torch.eye(4, dtype=torch.complex128)
    assert torch.allclose(q.conj().transpose(1, 2) @ q, eye.expand(5, 4, 4), atol=1e-10)


def test_conv_singular_values_match_dense_and_power_iteration():
    torch.manual_seed(3)
    conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular", bias=False).double()
    jac = torch.autograd.functional.jacobian(lambda t: conv(t).flatten(),
                                             torch.zeros(1, 2, 6, 6, dtype=torch.float64)).reshape(3 * 36, 2 * 36)
    dense = torch.linalg.svdvals(jac).sort().values
    assert torch.allclose(conv_singular_values(conv, 6).sort().values, dense, atol=1e-9)
    est = spectral_norm_power(conv, (1, 2, 6, 6), iters=300, at=torch.zeros(1, 2, 6, 6, dtype=torch.float64),
                              generator=torch.Generator().manual_seed(0))
    assert abs(est - float(dense[-1])) < 1e-2 * float(dense[-1])
    with pytest.raises(TypeError):
        conv_singular_values(nn.Linear(2, 2), 6)


@pytest.mark.parametrize("cin,cout", [(4, 4), (3, 7), (8, 2)])
def test_aol_bound(cin, cout):
    torch.manual_seed(cin + cout)
    for mode in ("zeros", "circular"):
        layer = AOLConv2d(cin, cout, 3, bias=False, padding_mode=mode).double()
        with torch.no_grad():
            layer.weight.normal_()
        est = spectral_norm_power(layer, (1, cin, 8, 8), iters=200, at=torch.zeros(1, cin, 8, 8, dtype=torch.float64))
        assert est <= 1 + 1e-6
    assert float(conv_singular_values(layer, 8).max()) <= 1 + 1e-9
    # without the rescaling the same kernel is far from 1-Lipschitz: the bound does the work
    plain = nn.Conv2d(cin, cout, 3, padding=1, padding_mode="circular", bias=False).double()
    plain.weight.data.copy_(layer.weight.data)
    assert float(conv_singular_values(plain, 8).max()) > 1.5


def test_orthogonal_conv_kinds():
    x = torch.rand(2, 4, 8, 8)
    for kind in ("cayley", "aol", "plain", "aoc"):
        if kind == "aoc":
            pytest.importorskip("orthogonium")
        layer = orthogonal_conv(kind, 4, 6, 3, input_size=8)
        assert layer(x).shape == (2, 6, 8, 8)
    with pytest.raises(ValueError, match="kind"):
        orthogonal_conv("bjorck", 4, 4, 3)


def test_aoc_is_orthogonal():
    pytest.importorskip("orthogonium")
    torch.manual_seed(0)
    layer = orthogonal_conv("aoc", 4, 4, 3)  # orthogonium works in float32
    x, y = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    ratio = (layer(x) - layer(y)).flatten(1).norm(dim=1) / (x - y).flatten(1).norm(dim=1)
    assert torch.allclose(ratio, torch.ones_like(ratio), atol=1e-4), ratio


def test_maxmin_and_robust_block_are_one_lipschitz():
    torch.manual_seed(4)
    x = torch.randn(5, 6, 4, 4)
    assert torch.allclose(MaxMin()(x).flatten(1).norm(dim=1), x.flatten(1).norm(dim=1))
    with pytest.raises(ValueError, match="even"):
        MaxMin()(torch.randn(1, 3, 2, 2))
    block = RobustBlock(8, 4, reduced=4).double()
    a, b = torch.randn(6, 8, 8, 8, dtype=torch.float64), torch.randn(6, 8, 8, 8, dtype=torch.float64)
    ratio = (block(a) - block(b)).flatten(1).norm(dim=1) / (a - b).flatten(1).norm(dim=1)
    assert (ratio <= 1 + 1e-6).all(), ratio
    assert block(a).shape == (6, 8, 4, 4)
    assert math.isclose(block.compression(8), 4 * 16 / (8 * 64))
    with pytest.raises(ValueError, match="conv must be"):
        RobustBlock(8, 4, conv="nope")


def test_staged_net_insertion_positions():
    net = StagedNet()
    assert len(net) == 6 and net.out_size(6, 32) == 4 and net.out_size(1, 32) == 32
    x = torch.rand(2, 3, 32, 32)
    for pos in (1, 2, 4, 6):
        m = nr_iqa_model("linearity")
        size = m.backbone.out_size(pos, 32)
        m.backbone.insert(pos, RobustBlock(m.backbone.widths[pos - 1], min(size, 8)))
        assert m(x).shape == (2,)
        with pytest.raises(ValueError, match="already"):
            m.backbone.insert(pos, nn.Identity())
    with pytest.raises(ValueError, match="position"):
        net.insert(7, nn.Identity())


@pytest.mark.parametrize("name", ["linearity", "dbcnn", "tres"])
def test_nr_models_shapes_and_gradients(name):
    torch.manual_seed(0)
    m = nr_iqa_model(name)
    x = torch.rand(3, 3, 32, 32, requires_grad=True)
    out = m(x)
    assert out.shape == (3,)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert m.head_modules()


def test_norm_in_norm_loss():
    y = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert float(norm_in_norm_loss(2 * y + 7, y)) < 1e-6  # invariant to a positive affine map
    assert float(norm_in_norm_loss(-y, y)) > 0.4
    with pytest.raises(ValueError, match="2 scores"):
        norm_in_norm_loss(torch.ones(1), torch.ones(1))


def test_prune_exact_share_and_fixed_by_mask():
    torch.manual_seed(5)
    m = nr_iqa_model("linearity")
    m.backbone.insert(5, RobustBlock(32, 4))
    for share in (0.05, 0.1, 0.2):
        mm = nr_iqa_model("linearity")
        mm.load_state_dict(nr_iqa_model("linearity").state_dict())
        rep = prune_filters(mm, share)
        assert rep.removed == round(share * rep.total)
        zero = sum(int((c.weight.flatten(1).norm(dim=1) == 0).sum()) for c in mm.modules() if type(c) is nn.Conv2d)
        assert zero == rep.removed
    rep = prune_filters(m, 0.1)
    assert not any("reduce" in n or n.endswith(".conv") and "1.conv" in n for n in rep.per_layer)
    cay = [c for c in m.modules() if isinstance(c, CayleyConv2d)]
    assert cay and all(c.weight.abs().sum() > 0 for c in cay)
    # fine-tuning cannot revive pruned filters
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    m(torch.rand(4, 3, 32, 32)).sum().backward()
    opt.step()
    zero = sum(int((c.weight.flatten(1).norm(dim=1) == 0).sum()) for c in m.modules() if type(c) is nn.Conv2d)
    assert zero == rep.removed
    with pytest.raises(ValueError, match="share"):
        prune_filters(m, 1.0)


def test_scores_on_hand_made_examples():
    clean = np.array([0.0, 1.0, 2.0, 4.0])          # s = 0, .25, .5, 1
    attacked = np.array([1.0, 1.0, 3.0, 4.0])       # s' = .25, .25, .75, 1
    assert math.isclose(abs_gain(clean, attacked), (0.25 + 0 + 0.25 + 0) / 4)
    room = np.array([1.0, 0.75, 0.5, 1.0])
    moved = np.array([0.25, 0.0, 0.25, 0.0]) + 1e-6
    assert math.isclose(r_score(clean, attacked), float(np.mean(np.log10(room / moved))), rel_tol=1e-12)
    ci = abs_gain_ci(clean, attacked)
    assert ci.low < ci.value < ci.high
    b = r_score_ci(clean, attacked, method="bootstrap", n_boot=500)
    assert b.low <= b.value <= b.high
    # a model that does not move has abs gain 0 and R-Score log10(room / 1e-6) >= 5.7
    assert abs_gain(clean, clean) == 0 and r_score(clean, clean) > 5.6
    with pytest.raises(ValueError, match="all equal"):
        abs_gain(np.ones(3), np.ones(3))
    assert math.isclose(auc_over_eps([0, 1, 3], [0, 2, 2]), (1 + 4) / 3)
    with pytest.raises(ValueError, match="increasing"):
        auc_over_eps([0, 0], [1, 2])


class _Brightness(nn.Module):
    """score = mean pixel value: a score-raising attack must brighten the image."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.w * x.mean((1, 2, 3))


def test_uap_budget_and_effect():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 8, 8, generator=g) * 0.8 + 0.1
    model = _Brightness()
    eps = 0.05
    delta = train_uap(model, x, eps, epochs=3, batch_size=8, lr=0.02, generator=g)
    assert delta.shape == (3, 8, 8) and float(delta.abs().max()) <= eps + 1e-7
    assert float(delta.mean()) > 0.8 * eps  # brightening everywhere
    assert model.w.grad is None and model.w.requires_grad
    for amp in (0.2, 0.4, 0.8):
        attack = UAP(delta, amp)
        xa = attack(model, x, torch.zeros(16))
        assert float((xa - x).abs().max()) <= amp * eps + 1e-7
        assert attack.eps == pytest.approx(amp * float(delta.abs().max()))
        assert (model(xa) > model(x)).all()
    big = apply_uap(torch.rand(2, 3, 16, 16), delta, 1.0)
    assert big.shape == (2, 3, 16, 16)
    with pytest.raises(TypeError):
        UAP(torch.zeros(3, 3))


def test_stadv_budget_and_warp():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 12, 12, generator=g)
    assert torch.allclose(warp(x, torch.zeros(4, 2, 12, 12)), x, atol=1e-6)
    shift = torch.zeros(4, 2, 12, 12)
    shift[:, 0] = 1.0  # sample one pixel to the right
    assert torch.allclose(warp(x, shift)[..., :-1], x[..., 1:], atol=1e-6)
    assert torch.allclose(flow_smoothness(shift), torch.full((4,), 4 * 144 * 1e-4), rtol=1e-3)

    class Edges(nn.Module):
        def forward(self, t):
            return (t[..., 1:] - t[..., :-1]).abs().mean((1, 2, 3))

    adv, flow = stadv(Edges(), x, torch.zeros(4), max_flow=0.5, steps=10, lr=0.2, tau=0.0, return_flow=True)
    assert float(flow.abs().max()) <= 0.5 + 1e-6
    assert torch.allclose(adv, warp(x, flow).clamp(0, 1), atol=1e-6)
    assert (Edges()(adv) != Edges()(x)).any()
    attack = StAdv(0.5, 5)
    assert attack.norm == "none" and attack(Edges(), x, torch.zeros(4)).shape == x.shape
    with pytest.raises(ValueError, match="max_flow"):
        StAdv(-1.0)


def test_gradient_norm_penalty_matches_l1_gradient_for_linear_model():
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(12, 1))
    x = torch.rand(5, 3, 2, 2) * 0.5 + 0.25
    expected = lin[1].weight.abs().sum()
    assert torch.allclose(gradient_norm_penalty(lin, x, h=0.01), expected, rtol=1e-4)
    loader = [(x, torch.rand(5))]
    hist = fit_gradient_norm(lin, loader, loss_fn=lambda o, y: ((o[:, 0] - y) ** 2).mean(), epochs=3,
                             optimizer=lambda p: torch.optim.SGD(p, lr=0.1), lam=1.0)
    assert len(hist) == 3 and lin[1].weight.abs().sum() < expected  # the penalty shrinks the gradient


def test_perturbation_growth():
    stages = [nn.Identity(), nn.Conv2d(1, 1, 1, bias=False)]
    stages[1].weight.data.fill_(3.0)
    x, d = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    assert perturbation_growth(stages, x, d) == pytest.approx([1.0, 3.0])


def test_cayley_inference_cache_follows_the_weights():
    torch.manual_seed(6)
    layer = CayleyConv2d(3, 4, 3, input_size=8)
    x = torch.rand(2, 3, 8, 8)
    with_grad = layer(x)
    with torch.no_grad():
        assert torch.allclose(layer(x), with_grad, atol=1e-6)
        layer.weight.mul_(-1.3)  # an in-place change must invalidate the cached spectrum
        changed = layer(x)
    assert torch.allclose(changed, layer(x), atol=1e-6) and not torch.allclose(changed, with_grad, atol=1e-3)
