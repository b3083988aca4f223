"""Square Attack (robustbook.attacks.square): budget, monotone random search, losses, reproducibility."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from robustbook.attacks import losses
from robustbook.attacks.square import p_schedule, square


class Linear(nn.Module):
    """score = <w, x>: the worst L∞ perturbation is ε·sign(w) (where the box allows)."""

    def __init__(self, shape=(3, 8, 8), seed=0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(shape, generator=g))

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def _data(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 8, 8, generator=g) * 0.8 + 0.1, torch.rand(n, generator=g)


def test_stays_in_budget_and_box():
    model = Linear()
    x, y = _data()
    x[0] = 0.0  # a black image: every negative step is clipped
    eps = 4 / 255
    adv = square(model, x, y, eps, queries=60, generator=torch.Generator().manual_seed(0))
    assert adv.shape == x.shape and adv.dtype == x.dtype and not adv.requires_grad
    assert (adv - x).abs().max() <= eps + 1e-7
    assert adv.min() >= 0 and adv.max() <= 1


def test_loss_never_decreases_and_increases_overall():
    model = Linear()
    x, y = _data()
    y = model(x).detach()  # start at zero loss: every increase is the attack's doing
    adv, hist = square(model, x, y, 8 / 255, queries=200, loss=losses.mse_away, return_history=True,
                       generator=torch.Generator().manual_seed(0))
    assert len(hist) == 200
    assert all(b >= a - 1e-12 for a, b in zip(hist, hist[1:], strict=False))
    final = losses.mse_away(model(adv), y).mean().item()
    assert final == pytest.approx(hist[-1], rel=1e-5)
    assert hist[-1] > hist[0]


def test_approaches_the_optimum_of_a_linear_score():
    """For score_up on <w, x> the optimum is ε‖w‖₁; random search gets most of the way."""
    model = Linear()
    x, y = _data(n=4)
    eps = 2 / 255
    adv = square(model, x, y, eps, queries=500, loss=losses.score_up, p_init=0.3,
                 generator=torch.Generator().manual_seed(0))
    gain = (model(adv) - model(x)).detach()
    optimum = eps * model.w.detach().abs().sum()
    assert (gain > 0.5 * optimum).all(), (gain, optimum)
    assert (gain <= optimum + 1e-5).all()


def test_reproducible_with_generator_and_mode_restored():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(1))
    model(torch.rand(2, 3, 8, 8))
    model.train()
    x, y = _data()
    a = square(model, x, y, 2 / 255, queries=20, generator=torch.Generator().manual_seed(5))
    b = square(model, x, y, 2 / 255, queries=20, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


def test_classifier_default_loss():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5))
    x, _ = _data(n=8)
    labels = model(x).argmax(1)
    adv = square(model, x, labels, 16 / 255, queries=150, generator=torch.Generator().manual_seed(0))
    ce = nn.functional.cross_entropy
    assert ce(model(adv), labels).item() > ce(model(x), labels).item()


def test_one_query_is_the_stripe_start():
    model = Linear()
    x, y = _data(n=2)
    adv = square(model, x, y, 1 / 255, queries=1, generator=torch.Generator().manual_seed(0))
    d = (adv - x)[:, :, :, :]
    # vertical stripes: constant along each column of each channel (where not clipped)
    assert torch.allclose(d, d[:, :, :1, :].expand_as(d), atol=1e-7)


def test_p_schedule_halves():
    assert p_schedule(0.8, 0, 10000) == 0.8
    assert p_schedule(0.8, 11, 10000) == 0.4
    assert p_schedule(0.8, 100, 1000) == p_schedule(0.8, 1000, 10000)
    assert p_schedule(0.8, 9999, 10000) == pytest.approx(0.8 / 2 ** 9)


@pytest.mark.parametrize("kw,match", [({"queries": 0}, "queries"), ({"p_init": 0.0}, "p_init"),
                                      ({"loss": lambda o, y: o.mean()}, "per-sample")])
def test_bad_arguments(kw, match):
    x, y = _data(n=2)
    with pytest.raises(ValueError, match=match):
        square(Linear(), x, y, 1 / 255, **kw)
