"""Properties of the attacks and of the ε-ball projection, checked on generated inputs (hypothesis).

Every property here is a theorem about the algorithm, not an observation on one batch:

* every attack keeps its budget, the [0, 1] box and finite values, for any images
  (pixels exactly at 0 or 1 included), any ε ≥ 0, step size, step count and norm;
* the projection is idempotent, lands in the ball, is the identity inside it,
  keeps the direction of an L2 perturbation and is non-expansive;
* loss monotonicity only where it holds: for a loss that is *convex in the input*
  (a linear model with cross-entropy or squared error), a signed-gradient step
  projected coordinate-wise (FGSM, L∞ PGD: the box ∩ L∞-ball is a box) moves every
  pixel in the sign of its gradient, so ``ℓ(x') ≥ ℓ(x) + ∇ℓ·(x' − x) ≥ ℓ(x)``. The
  L2 step followed by the [0, 1] clamp is *not* the projection onto the intersection,
  and a nonlinear model's loss can fall after a step, so no such claim is made there;
* Square keeps the best iterate: its history never decreases and each sample's final
  loss is at least the loss of its stripe start; PGD with restarts returns, per
  sample, the best of its runs (each run reproduced alone from the same generator).

The runs are derandomised (``derandomize=True``: the examples are a function of the
test's source), so CI is deterministic; no example database is written.
"""
from __future__ import annotations

import functools
from itertools import pairwise

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from robustbook.attacks import fgsm, losses, pgd, square
from robustbook.attacks._core import flat_norm, project

N_CLASSES = 4
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- models (built once; pure functions of x)

@functools.cache
def cnn() -> nn.Module:
    """A small nonlinear classifier taking any (N, 3, H, W)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.Tanh(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, N_CLASSES)).eval()


@functools.cache
def linear(n_out: int) -> nn.Module:
    """Affine in x (average pooling is linear), float64 so the convexity inequalities are exact enough."""
    torch.manual_seed(1)
    return nn.Sequential(nn.AdaptiveAvgPool2d(3), nn.Flatten(), nn.Linear(27, n_out)).double().eval()


def per_sample_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss) -> torch.Tensor:
    with torch.no_grad():
        return loss(model(x), y).reshape(x.shape[0])


# ---------------------------------------------------------------- strategies

@st.composite
def images(draw, dtype=np.float32, max_n: int = 3, max_side: int = 6) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1], with the endpoints 0 and 1 among the values hypothesis tries."""
    n = draw(st.integers(1, max_n))
    h, w = draw(st.integers(2, max_side)), draw(st.integers(2, max_side))
    width = 32 if dtype == np.float32 else 64
    x = draw(arrays(dtype, (n, 3, h, w), elements=st.floats(0.0, 1.0, width=width)))
    return torch.from_numpy(x)


@st.composite
def labelled(draw, dtype=np.float32) -> tuple[torch.Tensor, torch.Tensor]:
    x = draw(images(dtype))
    y = torch.tensor(draw(st.lists(st.integers(0, N_CLASSES - 1), min_size=x.shape[0], max_size=x.shape[0])))
    return x, y


eps_linf = st.floats(0.0, 0.5)
eps_l2 = st.floats(0.0, 3.0)
alphas = st.floats(0.0, 0.5)
seeds = st.integers(0, 2**31 - 1)
norms = st.sampled_from(["linf", "l2"])


def perturbation_size(adv: torch.Tensor, x: torch.Tensor, norm: str) -> torch.Tensor:
    d = (adv - x).flatten(1)
    return d.abs().amax(1) if norm == "linf" else d.norm(dim=1)


def assert_valid(adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> None:
    assert adv.shape == x.shape and adv.dtype == x.dtype
    assert torch.isfinite(adv).all()
    assert adv.min() >= 0 and adv.max() <= 1, (adv.min(), adv.max())
    size = perturbation_size(adv, x, norm)
    assert (size <= eps * (1 + 1e-5) + 1e-6).all(), (size.max().item(), eps)


# ---------------------------------------------------------------- budget, box and finiteness

@SETTINGS
@given(data=labelled(), eps=eps_linf)
def test_fgsm_keeps_budget_and_box(data, eps):
    x, y = data
    assert_valid(fgsm(cnn(), x, y, eps), x, eps, "linf")


@SETTINGS
@given(data=labelled(), norm=norms, eps_i=eps_linf, eps_2=eps_l2, alpha=alphas, steps=st.integers(0, 4),
       random_start=st.booleans(), restarts=st.integers(1, 3), seed=seeds)
def test_pgd_keeps_budget_and_box(data, norm, eps_i, eps_2, alpha, steps, random_start, restarts, seed):
    x, y = data
    eps = eps_i if norm == "linf" else eps_2
    restarts = restarts if random_start else 1
    adv = pgd(cnn(), x, y, eps, alpha, steps, norm=norm, random_start=random_start, restarts=restarts,
              generator=torch.Generator().manual_seed(seed))
    assert_valid(adv, x, eps, norm)
    if steps == 0 and not random_start:
        assert torch.equal(adv, x)


@SETTINGS
@given(data=labelled(), eps=eps_linf, queries=st.integers(1, 12), p_init=st.floats(0.01, 1.0), seed=seeds)
def test_square_keeps_budget_and_box(data, eps, queries, p_init, seed):
    x, y = data
    adv = square(cnn(), x, y, eps, queries=queries, p_init=p_init, generator=torch.Generator().manual_seed(seed))
    assert_valid(adv, x, eps, "linf")


# ---------------------------------------------------------------- the loss, where a theorem says it rises

@SETTINGS
@given(data=labelled(np.float64), eps=eps_linf, scores=st.booleans())
def test_fgsm_never_lowers_a_loss_convex_in_the_input(data, eps, scores):
    x, y = data
    if scores:  # a linear quality score pushed away from its label: (w·x + b − y)² is convex in x
        model, y, loss = linear(1), y.double() / N_CLASSES, losses.mse_away
    else:  # cross-entropy of affine logits is convex in x
        model, loss = linear(N_CLASSES), losses.cross_entropy
    before = per_sample_loss(model, x, y, loss)
    after = per_sample_loss(model, fgsm(model, x, y, eps, loss=loss), y, loss)
    assert (after >= before - 1e-9 * (1 + before.abs())).all(), (before, after)


@SETTINGS
@given(data=labelled(np.float64), eps=eps_linf, alpha=alphas, steps=st.integers(1, 4), random_start=st.booleans(),
       seed=seeds)
def test_linf_pgd_never_lowers_a_convex_loss_below_its_start(data, eps, alpha, steps, random_start, seed):
    x, y = data
    model, loss = linear(N_CLASSES), losses.cross_entropy
    start = pgd(model, x, y, eps, alpha, 0, random_start=random_start, generator=torch.Generator().manual_seed(seed))
    adv = pgd(model, x, y, eps, alpha, steps, random_start=random_start,
              generator=torch.Generator().manual_seed(seed))
    before, after = per_sample_loss(model, start, y, loss), per_sample_loss(model, adv, y, loss)
    assert (after >= before - 1e-9 * (1 + before.abs())).all(), (before, after)


@SETTINGS
@given(data=labelled(), eps=eps_linf)
def test_fgsm_is_one_pgd_step_of_size_eps(data, eps):
    x, y = data
    assert torch.allclose(fgsm(cnn(), x, y, eps), pgd(cnn(), x, y, eps, eps, 1), atol=1e-6)


@SETTINGS
@given(data=labelled(), norm=norms, eps_i=eps_linf, eps_2=eps_l2, alpha=alphas, steps=st.integers(0, 3),
       restarts=st.integers(2, 3), seed=seeds)
def test_pgd_restarts_return_the_best_run_per_sample(data, norm, eps_i, eps_2, alpha, steps, restarts, seed):
    x, y = data
    eps = eps_i if norm == "linf" else eps_2
    kw = dict(norm=norm, random_start=True)
    best = pgd(cnn(), x, y, eps, alpha, steps, restarts=restarts, generator=torch.Generator().manual_seed(seed), **kw)
    g = torch.Generator().manual_seed(seed)  # the runs draw their starts one after the other from it
    runs = [pgd(cnn(), x, y, eps, alpha, steps, generator=g, **kw) for _ in range(restarts)]
    run_losses = torch.stack([per_sample_loss(cnn(), r, y, losses.cross_entropy) for r in runs])
    best_loss = per_sample_loss(cnn(), best, y, losses.cross_entropy)
    assert (best_loss >= run_losses.max(0).values - 1e-6).all()
    for i in range(x.shape[0]):
        assert any(torch.equal(best[i], r[i]) for r in runs), f"sample {i} is none of the runs' end points"


@SETTINGS
@given(data=labelled(), eps=eps_linf, queries=st.integers(2, 15), seed=seeds)
def test_square_history_rises_and_ends_above_the_stripe_start(data, eps, queries, seed):
    x, y = data
    adv, history = square(cnn(), x, y, eps, queries=queries, generator=torch.Generator().manual_seed(seed),
                          return_history=True)
    assert len(history) == queries
    assert all(b >= a for a, b in pairwise(history)), history
    stripes = square(cnn(), x, y, eps, queries=1, generator=torch.Generator().manual_seed(seed))
    start = per_sample_loss(cnn(), stripes, y, losses.cross_entropy)
    final = per_sample_loss(cnn(), adv, y, losses.cross_entropy)
    assert (final >= start).all(), (start, final)
    assert abs(float(final.mean()) - history[-1]) <= 1e-5 * (1 + abs(history[-1]))


# ---------------------------------------------------------------- the projection Π onto the ε-ball

@st.composite
def perturbations(draw) -> torch.Tensor:
    shape = draw(st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 4)))
    return torch.from_numpy(draw(arrays(np.float64, shape, elements=st.floats(-3.0, 3.0))))


def size(d: torch.Tensor, norm: str) -> torch.Tensor:
    return d.flatten(1).abs().amax(1) if norm == "linf" else d.flatten(1).norm(dim=1)


@SETTINGS
@given(d=perturbations(), eps=st.floats(0.0, 4.0), norm=norms)
def test_projection_lands_in_the_ball_and_is_idempotent(d, eps, norm):
    p = project(d, eps, norm)
    assert (size(p, norm) <= eps * (1 + 1e-12)).all()
    assert torch.allclose(project(p, eps, norm), p, rtol=1e-12, atol=1e-15)


@SETTINGS
@given(d=perturbations(), slack=st.floats(1.0, 10.0), norm=norms)
def test_projection_is_the_identity_inside_the_ball(d, slack, norm):
    eps = float(size(d, norm).max()) * slack
    assert torch.equal(project(d, eps, norm), d)


@SETTINGS
@given(d=perturbations(), eps=st.floats(0.0, 4.0))
def test_l2_projection_keeps_the_direction(d, eps):
    p = project(d, eps, "l2")
    scale = size(p, "l2") / size(d, "l2").clamp_min(1e-300)
    assert (scale <= 1 + 1e-12).all()
    assert torch.allclose(p, d * scale.view(-1, *([1] * (d.dim() - 1))), rtol=1e-9, atol=1e-12)
    assert torch.allclose(flat_norm(p).flatten(), torch.minimum(size(d, "l2"), torch.tensor(eps, dtype=d.dtype)),
                          rtol=1e-9, atol=1e-12)


@SETTINGS
@given(a=perturbations(), data=st.data(), eps=st.floats(0.0, 4.0), norm=norms)
def test_projection_is_non_expansive(a, data, eps, norm):
    """‖Π(a) − Π(b)‖₂ ≤ ‖a − b‖₂ per sample: true of the Euclidean projection onto any convex set."""
    b = torch.from_numpy(data.draw(arrays(np.float64, tuple(a.shape), elements=st.floats(-3.0, 3.0))))
    lhs = size(project(a, eps, norm) - project(b, eps, norm), "l2")
    assert (lhs <= size(a - b, "l2") * (1 + 1e-9) + 1e-12).all()
