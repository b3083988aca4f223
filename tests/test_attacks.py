"""Attacks: differential tests against torchattacks and the properties of the maths."""
from __future__ import annotations

import pytest
import torch
import torchattacks
from torch import nn

from robustbook.attacks import EOT, FixedReference, fgsm, losses, pgd, straight_through

EPS = 8 / 255


def test_fgsm_equals_torchattacks(tiny_classifier, image_batch):
    x, y = image_batch
    ours = fgsm(tiny_classifier, x, y, EPS)
    theirs = torchattacks.FGSM(tiny_classifier, eps=EPS)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-6), (ours - theirs).abs().max()
    assert not torch.equal(ours, x)


@pytest.mark.parametrize("steps", [1, 7])
def test_pgd_linf_equals_torchattacks(tiny_classifier, image_batch, steps):
    x, y = image_batch
    ours = pgd(tiny_classifier, x, y, EPS, 2 / 255, steps)
    theirs = torchattacks.PGD(tiny_classifier, eps=EPS, alpha=2 / 255, steps=steps, random_start=False)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-6), (ours - theirs).abs().max()


def test_pgd_l2_equals_torchattacks(tiny_classifier, image_batch):
    x, y = image_batch
    ours = pgd(tiny_classifier, x, y, 0.5, 0.1, 5, norm="l2")
    theirs = torchattacks.PGDL2(tiny_classifier, eps=0.5, alpha=0.1, steps=5, random_start=False)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-6), (ours - theirs).abs().max()


@pytest.mark.parametrize("norm,eps,alpha", [("linf", 4 / 255, 1 / 255), ("l2", 0.3, 0.08)])
@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_properties(tiny_classifier, image_batch, norm, eps, alpha, random_start):
    x, y = image_batch
    adv = pgd(tiny_classifier, x, y, eps, alpha, 10, norm=norm, random_start=random_start,
              generator=torch.Generator().manual_seed(0))
    d = (adv - x).flatten(1)
    size = d.abs().max(1).values if norm == "linf" else d.norm(dim=1)
    assert (size <= eps + 1e-6).all()
    assert adv.min() >= 0 and adv.max() <= 1
    assert torch.isfinite(adv).all()
    with torch.no_grad():
        before = losses.cross_entropy(tiny_classifier(x), y).mean()
        after = losses.cross_entropy(tiny_classifier(adv), y).mean()
    assert after > before


def test_fgsm_raises_loss_and_stays_in_ball(tiny_classifier, image_batch):
    x, y = image_batch
    adv = fgsm(tiny_classifier, x, y, EPS)
    assert (adv - x).abs().max() <= EPS + 1e-7 and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        assert losses.cross_entropy(tiny_classifier(adv), y).mean() > losses.cross_entropy(tiny_classifier(x), y).mean()


def test_no_parameter_gradients_and_mode_restored(image_batch):
    from tests.conftest import TinyCNN

    model = TinyCNN().train()
    model.net[1].eval()  # a mixed-mode model: every submodule's mode must come back
    x, y = image_batch
    pgd(model, x, y, EPS, 2 / 255, 3)
    assert all(p.grad is None for p in model.parameters())
    assert model.training and not model.net[1].training and model.net[0].training


def test_eval_mode_false_runs_in_train_mode(image_batch):
    from tests.conftest import TinyCNN

    model = TinyCNN().train()
    seen = []
    model.register_forward_pre_hook(lambda m, a: seen.append(m.training))
    fgsm(model, *image_batch, EPS, eval_mode=False)
    fgsm(model, *image_batch, EPS)
    assert seen == [True, False]


class TinyIQA(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.f = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1))

    def forward(self, x):
        return self.f(x)[:, 0]


@pytest.mark.parametrize("loss,sign", [(losses.score_up, 1), (losses.score_down, -1)])
def test_regression_attacks_move_the_score(image_batch, loss, sign):
    model = TinyIQA()
    x, _ = image_batch
    y = torch.rand(len(x))
    adv = pgd(model, x, y, EPS, 2 / 255, 5, loss=loss)
    with torch.no_grad():
        assert (sign * (model(adv) - model(x)) > 0).all()


def test_default_regression_loss_moves_away_from_label(image_batch):
    model = TinyIQA()
    x, _ = image_batch
    with torch.no_grad():
        y = model(x)  + 0.01
    adv = pgd(model, x, y, EPS, 2 / 255, 5)
    with torch.no_grad():
        assert ((model(adv) - y).abs() > (model(x) - y).abs()).all()


def test_full_reference_only_dist_is_perturbed(image_batch):
    class FR(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor(1.0))

        def forward(self, ref, dist):
            return -self.w * ((ref - dist) ** 2).flatten(1).mean(1)

    ref, _ = image_batch
    dist = (ref + 0.05).clamp(0, 1)
    wrapped = FixedReference(FR(), ref)
    adv = pgd(wrapped, dist, torch.zeros(len(ref)), EPS, 2 / 255, 5, loss=losses.score_down)
    assert torch.equal(wrapped.ref, ref)
    with torch.no_grad():
        assert (wrapped(adv) < wrapped(dist)).all()


def test_straight_through_and_eot(image_batch):
    x, _ = image_batch
    x = x.clone().requires_grad_(True)
    out = straight_through(torch.round, x)
    assert torch.equal(out, torch.round(x))
    (g,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(g, torch.ones_like(x))

    calls = []

    def t(z):
        calls.append(1)
        return z * 2

    m = EOT(nn.Identity(), 4, transform=t)
    assert torch.allclose(m(x), 2 * x) and len(calls) == 4


@pytest.mark.parametrize("bad,match", [
    (dict(x=torch.rand(2, 3, 4, 4) * 2), "must lie in"),
    (dict(eps=-1.0), "eps must be"),
    (dict(norm="l1"), "norm must be one of"),
    (dict(steps=2.5), "steps must be"),
])
def test_bad_input_is_refused(tiny_classifier, image_batch, bad, match):
    x, y = image_batch
    kw = dict(x=x, eps=EPS, norm="linf", steps=2) | bad
    with pytest.raises((ValueError, TypeError), match=match):
        pgd(tiny_classifier, kw["x"], y, kw["eps"], 1 / 255, kw["steps"], norm=kw["norm"])
