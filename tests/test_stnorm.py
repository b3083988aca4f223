"""ST Norm (source 000, eq. (10)), its ResNet surgery, and the LWTA / feature-denoising baselines."""
from __future__ import annotations

import contextlib
import copy

import pytest
import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.models.resnet import BasicBlock

from robustbook.attacks import fgsm
from robustbook.models.feature_denoise import FeatureDenoise, add_feature_denoise
from robustbook.models.lwta import LWTA, lwta_mask, swap_relu_for_lwta
from robustbook.models.resnet_iqa import ResNetIQA, TinyResNet, resnet_iqa
from robustbook.models.stnorm import (
    STNorm,
    linf_normalize,
    soft_threshold,
    stnorm_modules,
    straight_through_stnorm,
    swap_batchnorm,
)

# A 1×2×1×2 input: channel 0 = (1, −4), channel 1 = (2, 0.5).
X_HAND = torch.tensor([[[[1.0, -4.0]], [[2.0, 0.5]]]])


def identity_stnorm(**kw) -> STNorm:
    """An STNorm whose BatchNorm is exactly the identity (eval mode, mean 0, var 1, eps 0)."""
    st = STNorm(2, **kw).eval()
    st.bn.eps = 0.0
    return st


def n_plain_bn(model: nn.Module) -> int:
    inner = {id(m.bn) for m in stnorm_modules(model)}
    return sum(type(m) is nn.BatchNorm2d and id(m) not in inner for m in model.modules())


# --------------------------------------------------------------------------- STNorm, eq. (10)


def test_stnorm_hand_computed_chw():
    # ‖x‖∞ over (C, H, W) = 4 → (0.25, −1 | 0.5, 0.125); soft threshold 0.2 → (0.05, −0.8 | 0.3, 0)
    out = identity_stnorm(lam=0.2)(X_HAND)
    expected = torch.tensor([[[[0.05, -0.8]], [[0.3, 0.0]]]])
    assert torch.allclose(out, expected, atol=1e-6), out


def test_stnorm_hand_computed_hw():
    # per channel: ‖ch0‖∞ = 4 → (0.25, −1); ‖ch1‖∞ = 2 → (1, 0.25); threshold 0.2
    out = identity_stnorm(lam=0.2, axes="hw")(X_HAND)
    expected = torch.tensor([[[[0.05, -0.8]], [[0.8, 0.05]]]])
    assert torch.allclose(out, expected, atol=1e-6), out


def test_stnorm_norm_is_per_sample():
    x = torch.cat([X_HAND, 10 * X_HAND])
    out = identity_stnorm(lam=0.2)(x)
    assert torch.allclose(out[0], out[1], atol=1e-6)  # scaling one sample does not affect it


def test_lambda_zero_is_normalisation_alone_and_ablation_switches():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 4, 5, generator=g)
    norm_only = x / x.abs().amax(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(identity_stnorm(lam=0.0)(x), norm_only, atol=1e-6)
    assert torch.allclose(identity_stnorm(lam=0.2, threshold=False)(x), norm_only, atol=1e-6)
    assert torch.allclose(identity_stnorm(lam=0.2, normalize=False)(x), soft_threshold(x, 0.2), atol=1e-6)
    assert torch.allclose(identity_stnorm(normalize=False, threshold=False)(x), x, atol=1e-6)
    assert not torch.allclose(identity_stnorm(lam=0.2)(x), norm_only, atol=1e-3)
    assert identity_stnorm(lam=0.2)(x).abs().max() <= 1 - 0.2 + 1e-6


def test_zero_input_gives_zeros_without_nan():
    st = identity_stnorm(lam=0.2)
    x = torch.zeros(2, 2, 3, 3, requires_grad=True)
    out = st(x)
    assert torch.equal(out, torch.zeros_like(out))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.equal(linf_normalize(torch.zeros(4)), torch.zeros(4))


def _grad_wrt_bn_output(st: STNorm, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    store = {}

    def hook(_m, _i, out):
        out.retain_grad()
        store["z"] = out

    h = st.bn.register_forward_hook(hook)
    out = st(x)
    h.remove()
    out.sum().backward()
    return out.detach(), store["z"].grad


def test_ste_backward_is_identity_and_forward_unchanged():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 2, 3, 3, generator=g)
    out_ste, grad_ste = _grad_wrt_bn_output(identity_stnorm(lam=0.2, ste=True), x)
    out, grad = _grad_wrt_bn_output(identity_stnorm(lam=0.2), x)
    assert torch.equal(out_ste, out)
    assert torch.equal(grad_ste, torch.ones_like(grad_ste))
    assert not torch.allclose(grad, torch.ones_like(grad))
    assert (grad == 0).any()  # inside the threshold band the true gradient vanishes


def test_straight_through_context_sets_and_restores():
    model = nn.Sequential(STNorm(2), nn.Conv2d(2, 2, 1), STNorm(2, ste=True))
    with straight_through_stnorm(model) as m:
        assert m is model and all(s.ste for s in stnorm_modules(model))
    assert [s.ste for s in stnorm_modules(model)] == [False, True]


def test_ste_attack_on_a_stnorm_resnet():
    # STE through ST Norm inside torchvision blocks (whose ReLU is in place) with the library's FGSM
    torch.manual_seed(0)
    model = resnet_iqa("tiny", norm="stnorm", width=8).eval()
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2)
    plain = fgsm(model, x, y, 1 / 255)
    with straight_through_stnorm(model):
        ste = fgsm(model, x, y, 1 / 255)
        with torch.no_grad():
            out_ste = model(x)
    assert not torch.equal(plain, ste)
    with torch.no_grad():
        assert torch.equal(out_ste, model(x))


@pytest.mark.parametrize("kw,exc", [({"lam": -0.1}, ValueError), ({"axes": "c"}, ValueError),
                                    ({"eps": 0.0}, ValueError), ({"ste": 1}, TypeError)])
def test_stnorm_rejects_bad_arguments(kw, exc):
    with pytest.raises(exc):
        STNorm(4, **kw)


# --------------------------------------------------------------------------- swap_batchnorm


@pytest.mark.parametrize("stages,n_st", [(None, 20), (["stem"], 1), (["layer1"], 4), (["layer3"], 5),
                                         (["res4"], 5), (["layer2", "layer4"], 10)])
def test_swap_batchnorm_counts_resnet18(stages, n_st):
    model = resnet18(weights=None)
    assert n_plain_bn(model) == 20
    swap_batchnorm(model, 0.2, stages)
    assert len(stnorm_modules(model)) == n_st
    assert n_plain_bn(model) == 20 - n_st


def test_swap_batchnorm_targets_exactly_the_stage():
    model = resnet18(weights=None)
    swap_batchnorm(model, 0.3, ["layer3"], axes="hw")
    for name, m in model.named_modules():
        if isinstance(m, STNorm):
            assert name.startswith("layer3.") and m.lam == 0.3 and m.axes == "hw"
    assert isinstance(model.layer3[0].downsample[1], STNorm)
    m2 = swap_batchnorm(resnet18(weights=None), 0.2, ["layer3"], include_downsample=False)
    assert len(stnorm_modules(m2)) == 4


def test_swap_batchnorm_copies_weights_and_is_exact_without_post():
    torch.manual_seed(0)
    model = TinyResNet(8)
    model.train()
    model(torch.rand(4, 3, 16, 16))  # non-trivial running statistics
    model.bn1.weight.data.uniform_(0.5, 1.5)
    model.eval()
    before = copy.deepcopy(model)
    swap_batchnorm(model, 0.0, normalize=False)
    assert n_plain_bn(model) == 0 and len(stnorm_modules(model)) == 12
    assert torch.equal(model.bn1.bn.weight, before.bn1.weight)
    assert torch.equal(model.layer2[0].bn1.bn.running_var, before.layer2[0].bn1.running_var)
    assert not model.bn1.training
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(model(x), before(x), atol=1e-6)
    swap_batchnorm(model, 0.2)  # swapping twice does not nest STNorms
    assert len(stnorm_modules(model)) == 12


def test_swapped_model_runs_forward_backward():
    model = swap_batchnorm(resnet_iqa("tiny", width=8), 0.2, ["layer3"])
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    model(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert model.trunk.layer3[0].bn1.bn.weight.grad is not None


def test_swap_batchnorm_unknown_stage_lists_valid_names():
    with pytest.raises(ValueError, match=r"layer5.*layer1.*layer4.*stem"):
        swap_batchnorm(resnet18(weights=None), 0.2, ["layer5"])
    with pytest.raises(TypeError, match="ResNet"):
        swap_batchnorm(nn.Sequential(nn.BatchNorm2d(3)), 0.2)


# --------------------------------------------------------------------------- LWTA


def _blocks(t: torch.Tensor, U: int) -> torch.Tensor:
    return t.reshape(t.shape[0], t.shape[1] // U, U, *t.shape[2:])


@pytest.mark.parametrize("U", [2, 4])
def test_lwta_hard_mode_has_one_winner_per_block(U):
    torch.manual_seed(0)
    act = LWTA(U).eval()
    x = torch.rand(3, 8, 5, 5) + 0.1  # strictly positive, so winners are non-zero
    mask = act.mask(x)
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(_blocks(mask, U).sum(2), torch.ones(3, 8 // U, 5, 5))
    out = act(x)
    assert torch.equal((_blocks(out, U) != 0).sum(2), torch.ones(3, 8 // U, 5, 5, dtype=torch.long))
    assert torch.equal(out[out != 0], x[out != 0])


def test_lwta_training_mask_is_relaxed():
    torch.manual_seed(0)
    mask = LWTA(2).train().mask(torch.randn(2, 4, 3, 3))
    assert torch.allclose(_blocks(mask, 2).sum(2), torch.ones(2, 2, 3, 3), atol=1e-6)
    assert ((mask > 0) & (mask < 1)).any()
    hard = LWTA(2, hard_train=True).train().mask(torch.randn(2, 4, 3, 3))
    assert set(hard.detach().unique().tolist()) <= {0.0, 1.0}


def test_lwta_deterministic_eval_is_argmax():
    x = torch.randn(2, 6, 4, 4)
    act = LWTA(3, deterministic=True).eval()
    a, b = act(x), act(x)
    assert torch.equal(a, b)
    xb = _blocks(x, 3)
    expected = torch.zeros_like(xb).scatter_(2, xb.argmax(2, keepdim=True), 1.0).reshape(x.shape)
    assert torch.equal(a, x * expected)


def test_lwta_stochastic_eval_differs_and_samples_the_softmax():
    torch.manual_seed(0)
    act = LWTA(2).eval()
    x = torch.randn(2, 8, 6, 6)
    assert not torch.equal(act(x), act(x))
    # winner frequencies follow softmax(h): logits (0, log 3) → unit 1 wins 3/4 of the time
    logits = torch.tensor([0.0, torch.log(torch.tensor(3.0)).item()]).view(1, 2, 1).expand(20000, 2, 1)
    freq = lwta_mask(logits.contiguous(), 2, generator=torch.Generator().manual_seed(0))[:, 1].mean()
    assert abs(freq.item() - 0.75) < 0.015


def test_lwta_forward_backward_and_validation():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    LWTA(2).train()(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="divisible"):
        LWTA(2)(torch.randn(1, 3, 2, 2))
    with pytest.raises(ValueError, match="U must be a positive int, got 0"):
        LWTA(0)


def test_swap_relu_for_lwta_in_resnet18():
    torch.manual_seed(0)
    model = swap_relu_for_lwta(resnet18(weights=None))
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 8 and all(isinstance(b.relu, LWTA) for b in blocks)
    assert isinstance(model.relu, LWTA)
    assert len({id(m) for m in model.modules() if isinstance(m, LWTA)}) == 9
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    model.train()(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    model.eval()
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))  # the paper's LWTA stays random at test time


def test_swap_relu_for_lwta_keeps_shared_modules_shared():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Conv2d(2, 4, 1), relu, nn.Conv2d(4, 4, 1), relu, nn.Sequential(nn.ReLU()))
    swap_relu_for_lwta(model, U=4, deterministic=True)
    assert isinstance(model[1], LWTA) and model[1] is model[3] and model[1].U == 4
    assert isinstance(model[4][0], LWTA) and model[4][0] is not model[1]
    assert model[1].deterministic


# --------------------------------------------------------------------------- feature denoising


@pytest.mark.parametrize("mode,embed", [("gaussian", True), ("gaussian", False), ("dot", False)])
def test_feature_denoise_identity_at_init_then_not(mode, embed):
    torch.manual_seed(0)
    block = FeatureDenoise(6, mode, embed=embed)
    x = torch.randn(2, 6, 4, 5)
    assert torch.equal(block(x), x)
    with torch.no_grad():
        block.conv.weight.normal_(0, 0.1)
    assert not torch.allclose(block(x), x, atol=1e-4)
    xg = x.clone().requires_grad_(True)
    block(xg).square().sum().backward()
    assert torch.isfinite(xg.grad).all() and block.conv.weight.grad.abs().sum() > 0
    if embed:
        assert block.theta.weight.grad.abs().sum() > 0


def test_feature_denoise_bn_variant_is_identity_at_init():
    block = FeatureDenoise(4, bn=True).eval()
    x = torch.randn(1, 4, 3, 3)
    assert torch.equal(block(x), x)


def test_nonlocal_means_formulas():
    # dot product: out_i = Σ_j (x_i x_j / N) x_j = x_i (a² + b²) / 2 for one channel and N = 2
    x = torch.tensor([[[[1.0, 2.0]]]])
    dot = FeatureDenoise(1, "dot").nonlocal_means(x)
    assert torch.allclose(dot, x * 5 / 2)
    # plain softmax: weights softmax_j(x_i x_j) (C = 1) → out_i = Σ_j w_ij x_j
    gauss = FeatureDenoise(1, "gaussian", embed=False).nonlocal_means(x)
    w = torch.softmax(torch.tensor([[1.0, 2.0], [2.0, 4.0]]), dim=1)
    assert torch.allclose(gauss.flatten(), w @ torch.tensor([1.0, 2.0]))
    # softmax rows sum to one: a map constant over positions is a fixed point
    c = torch.randn(1, 6, 1, 1).expand(1, 6, 3, 3).contiguous()
    assert torch.allclose(FeatureDenoise(6).nonlocal_means(c), c, atol=1e-6)


def test_add_feature_denoise_keeps_the_function_at_init():
    torch.manual_seed(0)
    model = resnet_iqa("tiny", width=8).eval()
    x = torch.rand(2, 3, 32, 32)
    before = model(x)
    add_feature_denoise(model, ("layer2", "res5"))
    blocks = [m for m in model.modules() if isinstance(m, FeatureDenoise)]
    assert [b.channels for b in blocks] == [16, 64]
    assert isinstance(model.trunk.layer2[-1], FeatureDenoise)
    assert torch.allclose(model(x), before, atol=1e-6)
    with pytest.raises(ValueError, match="layer1"):
        add_feature_denoise(model, ["stem"])


# --------------------------------------------------------------------------- resnet_iqa


@pytest.mark.parametrize("arch,kw", [
    ("tiny", {}),
    ("tiny", {"norm": "stnorm"}),
    ("tiny", {"norm": "stnorm", "stages": ["layer3"], "lam": 0.1}),
    ("tiny", {"activation": "lwta"}),
    ("tiny", {"denoise": True, "width": 8}),
    ("tiny", {"norm": "stnorm", "activation": "lwta", "denoise": ["layer4"]}),
    ("resnet18", {"norm": "stnorm"}),
    ("resnet50", {}),
])
def test_resnet_iqa_configurations(arch, kw):
    torch.manual_seed(0)
    model = resnet_iqa(arch, **kw)
    assert isinstance(model, ResNetIQA)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    out = model.train()(x)
    assert out.shape == (2,)
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert model.head.weight.grad is not None
    n_st = len(stnorm_modules(model))
    if kw.get("norm") == "stnorm":
        assert n_st == (3 if kw.get("stages") else (12 if arch == "tiny" else 20))
        assert all(m.lam == kw.get("lam", 0.2) for m in stnorm_modules(model))
    else:
        assert n_st == 0
    assert any(isinstance(m, LWTA) for m in model.modules()) == (kw.get("activation") == "lwta")
    assert any(isinstance(m, FeatureDenoise) for m in model.modules()) == bool(kw.get("denoise"))


def test_resnet_iqa_features_and_validation():
    model = resnet_iqa("tiny", width=8).eval()
    x = torch.rand(2, 3, 32, 32)
    shapes = {s: tuple(model.features(x, s).shape) for s in ("stem", "layer1", "layer2", "res4", "layer4")}
    assert shapes == {"stem": (2, 8, 16, 16), "layer1": (2, 8, 16, 16), "layer2": (2, 16, 8, 8),
                      "res4": (2, 32, 4, 4), "layer4": (2, 64, 2, 2)}
    t = model.trunk
    assert torch.allclose(model.head(t.layer4(model.features(x, "layer3")).mean((2, 3)))[:, 0], model(x),
                          atol=1e-6)
    for bad, match in (({"arch": "vgg"}, "arch must be one of"), ({"norm": "ln"}, "norm must be one of"),
                       ({"activation": "gelu"}, "activation must be one of"),
                       ({"arch": "resnet18", "width": 8}, "width applies to arch='tiny' only"),
                       ({"stages": ["layer3"]}, "stages selects where ST Norm goes")):
        with pytest.raises(ValueError, match=match):
            resnet_iqa(**bad)


def test_tiny_resnet_stem_stride_sets_the_map_sizes():
    x = torch.rand(1, 3, 32, 32)
    for stride, side in ((2, 16), (1, 32)):
        model = resnet_iqa("tiny", width=4, stem_stride=stride)
        assert model.features(x, "layer1").shape[-1] == side
    with pytest.raises(ValueError, match="stem_stride must be 1 or 2"):
        TinyResNet(4, stem_stride=3)
    with pytest.raises(ValueError, match="applies to arch='tiny' only"):
        resnet_iqa("resnet18", stem_stride=1)


def test_threshold_only_bpda_keeps_the_normalisation_jacobian():
    """ste="threshold": gradient = Jacobian of u ↦ u/‖u‖∞ applied to ones (the threshold passes it through)."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 2, 3, 3, generator=g)
    out_bpda, grad_bpda = _grad_wrt_bn_output(identity_stnorm(lam=0.2, ste="threshold"), x)
    out, grad_true = _grad_wrt_bn_output(identity_stnorm(lam=0.2), x)
    assert torch.equal(out_bpda, out)
    z = x.clone().requires_grad_(True)
    linf_normalize(z, dim=(1, 2, 3)).sum().backward()
    assert torch.allclose(grad_bpda, z.grad, atol=1e-6)
    assert (grad_true == 0).any() and not (grad_bpda == 0).any()
    _, grad_all = _grad_wrt_bn_output(identity_stnorm(lam=0.2, ste="all"), x)
    assert not torch.allclose(grad_bpda, grad_all)


def test_bpda_soft_threshold_is_an_attack_option():
    from robustbook import attacks
    from robustbook.models import bpda_soft_threshold

    torch.manual_seed(0)
    model = resnet_iqa("tiny", norm="stnorm", width=8).eval()
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2)
    atk = attacks.FGSM(1 / 255, bpda=bpda_soft_threshold)
    adv = atk(model, x, y)
    assert "BPDA (bpda_soft_threshold)" in str(atk)
    assert not torch.equal(adv, attacks.fgsm(model, x, y, 1 / 255))
    assert all(s.ste is False for s in stnorm_modules(model))
    with pytest.raises(ValueError, match="ste must be"):
        STNorm(2, ste="threshhold")


def test_bpda_soft_threshold_reaches_every_pixel_through_the_relus():
    # The band's outputs are exactly 0 and the ReLU after an STNorm has PyTorch's derivative 0 there, which stopped
    # the surrogate's gradient one layer later (the audit's zero-gradient flag on ST Norm). Piecewise-flat images put
    # whole stem neighbourhoods in the band.
    from robustbook.models import bpda_soft_threshold

    torch.manual_seed(0)
    model = resnet_iqa("tiny", norm="stnorm", width=8).eval()
    x = torch.rand(4, 3, 4, 4).repeat_interleave(8, 2).repeat_interleave(8, 3)
    relus = [m for m in model.modules() if type(m) is nn.ReLU]
    flags = [m.inplace for m in relus]

    def zero_fraction(ctx=None):
        xb = x.clone().requires_grad_(True)
        with ctx(model) if ctx else contextlib.nullcontext():
            out = model(xb)
            (g,) = torch.autograd.grad(out.sum(), xb)
        return out.detach(), (g == 0).float().mean().item()

    out_true, zero_true = zero_fraction()
    _, zero_ste = zero_fraction(straight_through_stnorm)  # the paper's STE keeps PyTorch's ReLU
    out_bpda, zero_bpda = zero_fraction(bpda_soft_threshold)
    assert zero_true > 0.1 and zero_ste > 0.1, (zero_true, zero_ste)
    assert zero_bpda == 0.0
    assert torch.equal(out_bpda, out_true)  # forward unchanged
    assert [m.inplace for m in relus] == flags and all(not m._forward_hooks for m in relus)
    assert zero_fraction()[1] == zero_true  # restored after the block


@pytest.mark.parametrize("lam", [0.0, 0.2, 0.7])
def test_soft_threshold_matches_eq9_values_and_gradients(lam):
    """The fused kernel computes eq. (9), sign(u)·max(|u| − λ, 0), and its (sub)gradient, at the band edges too."""
    u = torch.cat([torch.randn(500, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 0.5,
                   torch.tensor([lam, -lam, 0.0], dtype=torch.float64)])
    a, b = u.clone().requires_grad_(), u.clone().requires_grad_()
    ya, yb = soft_threshold(a, lam), torch.sign(b) * torch.clamp(b.abs() - lam, min=0.0)
    assert torch.equal(ya, yb)
    ya.sum().backward()
    yb.sum().backward()
    assert torch.equal(a.grad, b.grad)
