"""The configured-attack type, PGD restarts and fixed steps, and EOT's two estimators against hand loops."""
from __future__ import annotations

import contextlib
import json

import pytest
import torch
from torch import nn

from robustbook import attacks as A
from robustbook.attacks import losses
from robustbook.attacks._core import input_gradient, loss_values

EPS = 8 / 255


class NoisyLinear(nn.Module):
    """A randomised classifier: Gaussian noise on the input, then a fixed linear map."""

    def __init__(self, d: int, k: int = 5, sigma: float = 0.3) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.lin = nn.Linear(d, k)
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.flatten(1)
        return self.lin(z + self.sigma * torch.randn_like(z))


# --------------------------------------------------------------------------- the Attack type

def test_attack_equals_the_plain_function(tiny_classifier, image_batch):
    x, y = image_batch
    atk = A.PGD(EPS, 7, alpha=2 / 255, random_start=False)
    assert torch.equal(atk(tiny_classifier, x, y), A.pgd(tiny_classifier, x, y, EPS, 2 / 255, 7))
    assert torch.equal(A.FGSM(EPS)(tiny_classifier, x, y), A.fgsm(tiny_classifier, x, y, EPS))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    sq = A.Square(EPS, 20, generator=g1)(tiny_classifier, x, y)
    assert torch.equal(sq, A.square(tiny_classifier, x, y, EPS, queries=20, generator=g2))


def test_attack_knows_its_settings():
    atk = A.PGD(4 / 255, 20, restarts=3, loss=losses.margin)
    assert (atk.name, atk.norm, atk.eps, atk.steps, atk.restarts, atk.loss) == ("PGD", "linf", 4 / 255, 20, 3,
                                                                                 losses.margin)
    assert str(atk) == "PGD-20×3 (L∞, ε=4/255, α=2.5ε/20, loss margin)"
    assert "invert_ranking(0, 1)" in str(A.FGSM(1 / 255, loss=losses.invert_ranking(0, 1)))
    d = atk.describe()
    json.dumps(d)  # JSON-friendly
    assert d["steps"] == 20 and d["restarts"] == 3 and d["loss"] == "margin" and d["eps"] == 4 / 255
    assert A.GaussianNoise(0.1).norm == "none" and A.GaussianNoise(0.1).eps == 0.1
    assert A.Square(2 / 255, 300).steps == 300


def test_fixed_step_mode_walks_further():
    rel = A.PGD(EPS, 10)
    fixed = A.PGD(EPS, 10, alpha=EPS / 4)
    assert rel.params["alpha"] == pytest.approx(2.5 * EPS / 10)
    assert rel.replace(steps=50).params["alpha"] == rel.params["alpha"]  # replace keeps the step: more search
    assert A.PGD(EPS, 50).params["alpha"] == pytest.approx(2.5 * EPS / 50)
    assert fixed.replace(steps=40).params["alpha"] == pytest.approx(EPS / 4)


def test_replace_refuses_unknown_settings():
    with pytest.raises(TypeError, match="no setting.*valid"):
        A.PGD(EPS, 10).replace(stepz=3)


@pytest.mark.parametrize("factory,kw,match", [
    (A.PGD, dict(eps=-1.0, steps=3), "eps must be"),
    (A.PGD, dict(eps=float("nan"), steps=3), "eps must be"),
    (A.PGD, dict(eps=EPS, steps=0), "steps must be"),
    (A.PGD, dict(eps=EPS, steps=3, restarts=0), "restarts must be"),
    (A.PGD, dict(eps=EPS, steps=3, norm="l1"), "norm must be"),
    (A.FGSM, dict(eps=EPS, eot=0), "eot must be"),
    (A.FGSM, dict(eps=EPS, eot=2, eot_average="median"), "eot_average must be"),
    (A.Square, dict(eps=EPS, queries=0), "queries must be"),
])
def test_bad_settings_are_refused(factory, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        factory(**kw)


def test_noise_takes_no_eot():
    with pytest.raises(ValueError, match="uses no gradient"):
        A.Attack("GaussianNoise", lambda m, x, y, **k: x, {"sigma": 0.1}, "none", uses_gradient=False, eot=2)


def test_bpda_context_is_entered_around_the_attack(tiny_classifier, image_batch):
    x, y = image_batch
    seen = []

    @contextlib.contextmanager
    def surrogate(model):
        seen.append("enter")
        yield model
        seen.append("exit")

    A.PGD(EPS, 2, bpda=surrogate)(tiny_classifier, x, y)
    assert seen == ["enter", "exit"]
    assert "BPDA (surrogate)" in str(A.PGD(EPS, 2, bpda=surrogate))


def test_as_attacks_names_by_label():
    named = A.as_attacks([A.FGSM(EPS), A.PGD(EPS, 10)])
    assert list(named) == ["FGSM (L∞, ε=8/255)", "PGD-10 (L∞, ε=8/255, α=2.5ε/10)"]
    with pytest.raises(ValueError, match="both labelled"):
        A.as_attacks([A.FGSM(EPS), A.FGSM(EPS)])
    with pytest.raises(TypeError, match="Attack objects"):
        A.as_attacks([lambda m, x, y: x])


# --------------------------------------------------------------------------- PGD restarts

def test_pgd_restarts_keep_the_best_run_per_sample(tiny_classifier, image_batch):
    x, y = image_batch
    loss = losses.cross_entropy
    # three single runs consume one generator in the order a call with restarts=3 does
    g = torch.Generator().manual_seed(11)
    singles = [A.pgd(tiny_classifier, x, y, EPS, 1 / 255, 3, random_start=True, loss=loss, generator=g)
               for _ in range(3)]
    runs = torch.stack([loss_values(tiny_classifier, s, y, loss) for s in singles])
    best = A.pgd(tiny_classifier, x, y, EPS, 1 / 255, 3, random_start=True, restarts=3, loss=loss,
                 generator=torch.Generator().manual_seed(11))
    got = loss_values(tiny_classifier, best, y, loss)
    assert torch.allclose(got, runs.max(0).values, atol=1e-6)
    assert (got >= runs[0] - 1e-6).all()


def test_pgd_restarts_need_random_start(tiny_classifier, image_batch):
    x, y = image_batch
    with pytest.raises(ValueError, match="random_start"):
        A.pgd(tiny_classifier, x, y, EPS, 1 / 255, 3, restarts=2)


# --------------------------------------------------------------------------- EOT, both estimators

def _hand_gradient_mean(model, x, y, loss, n):
    """(1/n) Σ_k ∇_x Σ_i ℓ(h_k(x), y)_i, one draw at a time."""
    grads = []
    for _ in range(n):
        xr = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss(model(xr), y).sum(), xr)
        grads.append(g)
    return torch.stack(grads).mean(0)


def _hand_output_mean(model, x, y, loss, n):
    xr = x.clone().requires_grad_(True)
    out = torch.stack([model(xr) for _ in range(n)]).mean(0)
    (g,) = torch.autograd.grad(loss(out, y).sum(), xr)
    return g


@pytest.mark.parametrize("average,hand", [("gradient", _hand_gradient_mean), ("output", _hand_output_mean)])
def test_eot_estimators_match_hand_loops(image_batch, average, hand):
    x, y = image_batch
    y = y % 5
    model = NoisyLinear(x[0].numel())
    loss = losses.cross_entropy
    torch.manual_seed(42)
    expected = hand(model, x, y, loss, 6)
    m, loss_eot = A.eot(model, loss, 6, average=average)
    torch.manual_seed(42)
    got = input_gradient(m, x, y, loss_eot)
    assert torch.allclose(got, expected, atol=1e-6)


def test_the_two_estimators_differ_for_a_nonlinear_loss(image_batch):
    x, y = image_batch
    y = y % 5
    model = NoisyLinear(x[0].numel(), sigma=1.0)
    torch.manual_seed(0)
    g_grad = _hand_gradient_mean(model, x, y, losses.cross_entropy, 4)
    torch.manual_seed(0)
    g_out = _hand_output_mean(model, x, y, losses.cross_entropy, 4)
    assert not torch.allclose(g_grad, g_out, atol=1e-4)


def test_eot_loss_keeps_per_sample_shape_and_scalar_losses():
    out = torch.randn(3 * 4, 5)
    y = torch.randint(0, 5, (4,))
    per = A.eot_loss(losses.cross_entropy, 3)(out, y)
    assert per.shape == (4,)
    manual = losses.cross_entropy(out, y.repeat(3)).view(3, 4).mean(0)
    assert torch.allclose(per, manual)
    scalar = A.eot_loss(lambda o, t: nn.functional.cross_entropy(o, t, reduction="sum"), 3)(out, y)
    assert scalar.dim() == 0 and torch.allclose(scalar, manual.sum(), atol=1e-5)


def test_eot_attack_option_uses_the_gradient_estimator(image_batch):
    x, y = image_batch
    y = y % 5
    model = NoisyLinear(x[0].numel())
    torch.manual_seed(7)
    by_option = A.FGSM(EPS, eot=5)(model, x, y)
    torch.manual_seed(7)
    m, loss_eot = A.eot(model, losses.cross_entropy, 5)
    by_hand = A.fgsm(m, x, y, EPS, loss=loss_eot)
    assert torch.equal(by_option, by_hand)
    assert "EOT×5" in str(A.FGSM(EPS, eot=5))


def test_eot_with_image_targets_repeats_them():
    """A denoiser's target is an image: EOT repeats it per draw."""
    model = nn.Identity()
    x = torch.rand(2, 1, 4, 4)
    m, loss_eot = A.eot(model, lambda out, y: ((out - y) ** 2).flatten(1).sum(1), 3)
    assert loss_eot(m(x), x).shape == (2,)


def test_configured_apgd_equals_the_function_and_takes_eot(tiny_classifier, image_batch):
    x, y = image_batch
    atk = A.APGD(EPS, 10, loss=losses.dlr, generator=torch.Generator().manual_seed(4))
    ours = atk(tiny_classifier, x, y)
    plain = A.apgd(tiny_classifier, x, y, EPS, 10, loss=losses.dlr, generator=torch.Generator().manual_seed(4))
    assert torch.equal(ours, plain)
    assert str(atk) == "APGD-10 (L∞, ε=8/255, loss dlr)"
    noisy = NoisyLinear(x[0].numel())
    adv = A.APGD(EPS, 5, eot=3)(noisy, x, y % 5)
    assert (adv - x).abs().max() <= EPS + 1e-6 and adv.min() >= 0 and adv.max() <= 1
