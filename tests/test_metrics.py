"""Tests of robustbook.metrics: differential (scipy, skimage), exact (hand-made models), statistical (coverage)."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from skimage.metrics import peak_signal_noise_ratio
from torch import nn

from robustbook import metrics
from robustbook.metrics import (
    accuracy_on_correct,
    iqa_report,
    krocc,
    logistic4,
    logistic_fit,
    paired_bootstrap_srocc,
    plcc,
    psnr,
    rmse,
    robust_accuracy,
    srocc,
)
from robustbook.metrics import bootstrap as bootstrap_mod

# ---------------------------------------------------------------- correlation

REFERENCES = {
    srocc: lambda a, b: stats.spearmanr(a, b).statistic,
    plcc: lambda a, b: stats.pearsonr(a, b).statistic,
    krocc: lambda a, b: stats.kendalltau(a, b).statistic,
}


def _data(kind: str, seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    target = rng.normal(size=n)
    pred = 0.7 * target + 0.5 * rng.normal(size=n)
    if kind == "ties":  # few distinct values in both vectors
        pred, target = np.round(pred * 2), np.round(target * 2)
    return pred, target


@pytest.mark.parametrize("metric", list(REFERENCES), ids=lambda f: f.__name__)
@pytest.mark.parametrize("kind", ["continuous", "ties"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlations_equal_scipy_on_numpy(metric, kind, seed):
    pred, target = _data(kind, seed)
    if kind == "ties":
        assert len(np.unique(pred)) < len(pred) and len(np.unique(target)) < len(target)
    assert metric(pred, target) == pytest.approx(REFERENCES[metric](pred, target), abs=1e-12)


@pytest.mark.parametrize("metric", list(REFERENCES), ids=lambda f: f.__name__)
@pytest.mark.parametrize("kind", ["continuous", "ties"])
def test_correlations_equal_scipy_on_torch(metric, kind):
    pred, target = _data(kind, 7)
    tp = torch.tensor(pred, dtype=torch.float32, requires_grad=True)
    tt = torch.tensor(target, dtype=torch.float32)
    value = metric(tp, tt)
    assert isinstance(value, float)
    ref = REFERENCES[metric](tp.detach().double().numpy(), tt.double().numpy())
    assert value == pytest.approx(ref, abs=1e-12)


def test_mixed_inputs_and_python_float():
    pred, target = _data("continuous", 3)
    for f in (srocc, plcc, krocc, rmse):
        v = f(torch.tensor(pred), list(target))
        assert type(v) is float
        assert v == pytest.approx(f(pred, target), abs=1e-12)


def test_rmse_equals_definition():
    pred, target = _data("continuous", 4)
    from sklearn.metrics import mean_squared_error

    assert rmse(pred, target) == pytest.approx(np.sqrt(mean_squared_error(target, pred)), rel=1e-12)
    assert rmse(target, target) == 0.0


def test_rank_metrics_invariant_to_monotone_maps():
    pred, target = _data("continuous", 5)
    assert srocc(np.exp(3 * pred), target) == pytest.approx(srocc(pred, target), abs=1e-12)
    assert krocc(pred**3, target) == pytest.approx(krocc(pred, target), abs=1e-12)
    assert plcc(np.exp(3 * pred), target) != pytest.approx(plcc(pred, target), abs=1e-3)
    assert srocc(-pred, target) == pytest.approx(-srocc(pred, target), abs=1e-12)


def test_logistic_recovers_known_parameters():
    x = np.linspace(-2, 2, 80)
    true = (5.0, 1.0, 0.3, 0.4)
    fit = logistic_fit(x, logistic4(x, *true))
    assert fit.method == "logistic"
    np.testing.assert_allclose(fit.params, true, rtol=1e-4, atol=1e-4)
    assert plcc(x, logistic4(x, *true), logistic=True) == pytest.approx(1.0, abs=1e-9)
    assert rmse(x, logistic4(x, *true), logistic=True) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logistic_improves_plcc_and_rmse_on_monotone_nonlinear_relation(seed):
    rng = np.random.default_rng(seed)
    quality = rng.uniform(0, 10, size=300)
    pred = np.exp(quality / 2.0) + rng.normal(scale=3.0, size=300)  # monotone, very non-linear
    raw, fitted = plcc(pred, quality), plcc(pred, quality, logistic=True)
    assert fitted >= raw - 1e-12
    assert fitted > raw + 0.02
    # RMSE after the logistic beats the best straight line (whose PLCC equals the raw one).
    slope, intercept = np.polyfit(pred, quality, 1)
    assert rmse(pred, quality, logistic=True) < rmse(slope * pred + intercept, quality)
    # Ranks are untouched by the (monotone) fitted map.
    mapped = logistic_fit(pred, quality)(pred)
    assert srocc(mapped, quality) == pytest.approx(srocc(pred, quality), abs=1e-9)


def test_logistic_fit_handles_extreme_scales_without_overflow():
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 1e4, size=100)
    target = (pred > 5e3).astype(float) + 0.01 * rng.normal(size=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plcc(pred, target, logistic=True) > plcc(pred, target)


def test_constant_prediction_gives_zero_not_nan():
    target = np.arange(10.0)
    const = np.full(10, 3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f in (srocc, plcc, krocc):
            assert f(const, target) == 0.0
        assert plcc(const, target, logistic=True) == 0.0
        assert rmse(const, target, logistic=True) == pytest.approx(np.std(target))
        report = iqa_report(const, target)
    assert all(np.isfinite(v) for v in report.values())


def test_iqa_report_matches_individual_metrics():
    pred, target = _data("continuous", 8)
    report = iqa_report(pred, target)
    assert list(report) == ["srocc", "plcc", "krocc", "rmse", "plcc_logistic", "rmse_logistic"]
    assert all(type(v) is float for v in report.values())
    assert report["srocc"] == srocc(pred, target)
    assert report["plcc"] == pytest.approx(plcc(pred, target), abs=1e-12)
    assert report["krocc"] == krocc(pred, target)
    assert report["rmse"] == rmse(pred, target)
    assert report["plcc_logistic"] == pytest.approx(plcc(pred, target, logistic=True), abs=1e-12)
    assert report["rmse_logistic"] == pytest.approx(rmse(pred, target, logistic=True), abs=1e-12)
    json.dumps(report)


@pytest.mark.parametrize("f", [srocc, plcc, krocc, rmse], ids=lambda f: f.__name__)
def test_correlation_errors(f):
    ok = np.arange(5.0)
    with pytest.raises(ValueError, match="same length, got 5 and 4"):
        f(ok, ok[:4])
    with pytest.raises(ValueError, match="at least 3 points, got 2"):
        f(ok[:2], ok[:2])
    with pytest.raises(ValueError, match="pred contains 1 NaN"):
        f(np.array([1.0, np.nan, 2, 3, 4]), ok)
    with pytest.raises(ValueError, match="target contains 0 NaN and 1 infinite"):
        f(ok, np.array([1.0, np.inf, 2, 3, 4]))
    with pytest.raises(ValueError, match=r"must be 1-D .* shape \(5, 1\)"):
        f(ok[:, None], ok)
    with pytest.raises(ValueError, match="target is constant"):
        f(ok, np.ones(5))
    with pytest.raises(TypeError, match="real numbers"):
        f(np.array(list("abcde")), ok)
    with pytest.raises(TypeError, match="real numbers"):
        f(ok > 2, ok)


def test_rank_metrics_take_no_logistic_option():
    with pytest.raises(TypeError):
        srocc(np.arange(5.0), np.arange(5.0), logistic=True)
    with pytest.raises(TypeError):
        krocc(np.arange(5.0), np.arange(5.0), logistic=True)


# ---------------------------------------------------------------- psnr


def test_psnr_equals_skimage_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 16, 12, generator=g)
    y = (x + 0.05 * torch.randn(4, 3, 16, 12, generator=g) * torch.arange(1, 5).view(4, 1, 1, 1)).clamp(0, 1)
    per = psnr(x, y, reduction="none")
    assert per.shape == (4,)
    ref = [peak_signal_noise_ratio(x[i].numpy(), y[i].numpy(), data_range=1.0) for i in range(4)]
    np.testing.assert_allclose(per.numpy(), ref, rtol=1e-6)
    assert psnr(x, y).item() == pytest.approx(float(np.mean(ref)), rel=1e-6)
    assert len(set(np.round(ref, 3))) == 4  # different noise levels, different values


def test_psnr_uint8_scale_and_unbatched():
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (3, 8, 8), generator=g).to(torch.uint8)
    y = torch.randint(0, 256, (3, 8, 8), generator=g).to(torch.uint8)
    v = psnr(x, y, data_range=255)
    assert v.dim() == 0
    assert v.item() == pytest.approx(peak_signal_noise_ratio(x.numpy(), y.numpy(), data_range=255), rel=1e-9)
    assert psnr(x, y, data_range=255, reduction="none").dim() == 0


def test_psnr_identical_images_are_inf_and_gradients_flow():
    x = torch.rand(2, 1, 4, 4)
    assert torch.isinf(psnr(x, x, reduction="none")).all()
    y = x.clone()
    y[1] += 0.1
    per = psnr(x, y, reduction="none")
    assert torch.isinf(per[0]) and torch.isfinite(per[1])
    assert torch.isinf(psnr(x, y))
    z = (x + 0.1).requires_grad_(True)
    psnr(x, z).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_psnr_errors():
    x = torch.rand(2, 3, 4, 4)
    with pytest.raises(ValueError, match="same shape"):
        psnr(x, x[:1])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(C, H, W\), got 2-D"):
        psnr(x[0, 0], x[0, 0])
    with pytest.raises(ValueError, match="reduction must be one of"):
        psnr(x, x, reduction="sum")
    with pytest.raises(ValueError, match="data_range must be a positive number"):
        psnr(x, x, data_range=0)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        psnr(x, bad)
    with pytest.raises(TypeError, match="torch tensors"):
        psnr(x.numpy(), x.numpy())


# ---------------------------------------------------------------- robust accuracy


class SliceModel(nn.Module):
    """Logits = the first two features; the third feature carries the sample id (id / 100).

    Holds a Dropout so that mode handling is observable.
    """

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
        self.drop = nn.Dropout(0.0)

    def forward(self, x):
        return self.drop(self.lin(x))


def ids_of(x: torch.Tensor) -> list[int]:
    return [int(round(v)) for v in (x[:, 2] * 100).tolist()]


class FlipAttack:
    """A fake attack: swaps the two class features of the samples whose id is in ``targets``."""

    def __init__(self, targets: set[int]) -> None:
        self.targets = set(targets)
        self.seen: list[list[int]] = []
        self.modes: list[bool] = []

    def __call__(self, model, x, y):
        self.seen.append(ids_of(x))
        self.modes.append(model.training)
        x_adv = x.clone()
        hit = torch.tensor([i in self.targets for i in ids_of(x)])
        x_adv[hit, 0], x_adv[hit, 1] = x[hit, 1], x[hit, 0]
        return x_adv


def toy_data(n: int = 10, wrong: frozenset = frozenset({0, 1})):
    """One-hot class features; the samples in ``wrong`` are misclassified on clean input."""
    y = torch.tensor([i % 2 for i in range(n)])
    pred = torch.tensor([(1 - c) if i in wrong else c for i, c in enumerate(y.tolist())])
    x = torch.zeros(n, 3)
    x[torch.arange(n), pred] = 1.0
    x[:, 2] = torch.arange(n) / 100
    return x, y


@pytest.mark.parametrize("batch_size", [256, 3])
def test_robust_accuracy_exact_numbers(batch_size):
    n, wrong = 10, {0, 1}
    x, y = toy_data(n, frozenset(wrong))
    breaks = {"a": {0, 2, 3}, "b": {3, 4, 5}, "c": set()}
    attacks = {k: FlipAttack(v) for k, v in breaks.items()}
    report = robust_accuracy(SliceModel(), x, y, attacks, batch_size=batch_size)

    correct = set(range(n)) - wrong
    assert report.n == n
    assert report.clean_accuracy == len(correct) / n == 0.8
    survivors = set(correct)
    for name, broken in breaks.items():
        survivors -= broken
        assert report.cumulative[name] == len(survivors) / n
        assert report.per_attack[name] == len(correct - broken) / n
    assert report.robust_accuracy == len(survivors) / n == 0.4
    assert report.per_attack == {"a": 0.6, "b": 0.5, "c": 0.8}
    assert report.cumulative == {"a": 0.6, "b": 0.4, "c": 0.4}
    # sanity checks: a flip of one-hot features moves two coordinates by 1
    assert report.max_perturbation == 1.0
    assert report.nan_count == 0 and report.min_pixel == 0.0 and report.max_pixel == 1.0
    assert report.ok
    assert accuracy_on_correct(SliceModel(), x, y, FlipAttack(breaks["a"])) == 6 / 8


def test_attacks_run_only_on_points_still_robust():
    x, y = toy_data(10)
    a, b, c = FlipAttack({0, 2, 3}), FlipAttack({3, 4, 5}), FlipAttack({9})
    robust_accuracy(SliceModel(), x, y, {"a": a, "b": b, "c": c}, batch_size=4, per_attack=False)
    flat = lambda seen: sorted(i for call in seen for i in call)  # noqa: E731
    assert flat(a.seen) == [2, 3, 4, 5, 6, 7, 8, 9]  # clean-correct only
    assert flat(b.seen) == [4, 5, 6, 7, 8, 9]  # a broke 2 and 3
    assert flat(c.seen) == [6, 7, 8, 9]
    assert all(len(call) <= 4 for call in a.seen + b.seen + c.seen)


def test_per_attack_adds_only_the_points_broken_earlier():
    x, y = toy_data(10)
    a, b = FlipAttack({0, 2, 3}), FlipAttack({3, 4, 5})
    robust_accuracy(SliceModel(), x, y, {"a": a, "b": b})
    assert a.seen == [[2, 3, 4, 5, 6, 7, 8, 9]]
    # first the still-robust points, then the clean-correct ones broken by "a"; never the clean-wrong 0, 1
    assert b.seen == [[4, 5, 6, 7, 8, 9], [2, 3]]


def test_model_mode_is_eval_during_attacks_and_restored_after():
    x, y = toy_data(10)
    model = SliceModel().train()
    model.drop.eval()  # a mixed state must survive too
    attack = FlipAttack({2})
    robust_accuracy(model, x, y, {"a": attack})
    assert attack.modes == [False]
    assert model.training and model.lin.training and not model.drop.training
    accuracy_on_correct(model, x, y, attack)
    assert model.training and not model.drop.training


def test_sanity_checks_flag_nan_range_and_budget():
    x, y = toy_data(10)

    def nan_attack(model, xb, yb):
        out = xb.clone()
        out[0, 0] = float("nan")
        return out

    def shift_attack(model, xb, yb):
        return xb + 0.5

    report = robust_accuracy(SliceModel(), x, y, {"nan": nan_attack, "shift": shift_attack}, eps=0.1, norm="l2")
    assert report.nan_count == 1
    assert report.max_pixel == pytest.approx(1.5)
    assert report.max_perturbation == pytest.approx(0.5 * np.sqrt(3))  # the l2 norm of a 0.5 shift in 3-D
    assert not report.ok
    text = " ".join(report.problems)
    assert "NaN" in text and "above 1" in text and "exceeds eps" in text
    d = report.as_dict()
    json.dumps(d, allow_nan=False)
    assert d["nan_count"] == 1 and d["problems"] == report.problems
    s = str(report)
    assert "worst case" in s and "nan" in s and "shift" in s and "RED FLAGS" in s


def test_no_clean_correct_point():
    x, y = toy_data(4, frozenset(range(4)))
    attack = FlipAttack(set())
    report = robust_accuracy(SliceModel(), x, y, {"a": attack})
    assert report.clean_accuracy == report.robust_accuracy == 0.0
    assert attack.seen == [] and report.n_adversarial == 0 and report.max_perturbation is None
    json.dumps(report.as_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="no sample is classified correctly"):
        accuracy_on_correct(SliceModel(), x, y, attack)


def test_robust_accuracy_errors():
    x, y = toy_data(6)
    model = SliceModel()
    with pytest.raises(ValueError, match="non-empty dict"):
        robust_accuracy(model, x, y, {})
    with pytest.raises(ValueError, match="norm must be one of"):
        robust_accuracy(model, x, y, {"a": FlipAttack(set())}, norm="l1")
    with pytest.raises(ValueError, match="one label per image"):
        robust_accuracy(model, x, y[:3], {"a": FlipAttack(set())})
    with pytest.raises(TypeError, match="integer class labels"):
        robust_accuracy(model, x, y.float(), {"a": FlipAttack(set())})
    with pytest.raises(TypeError, match="not callable"):
        robust_accuracy(model, x, y, {"a": 3})
    with pytest.raises(ValueError, match="returned shape"):
        robust_accuracy(model, x, y, {"crop": lambda m, xb, yb: xb[:, :2]})
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        robust_accuracy(model, x, y, {"a": FlipAttack(set())}, batch_size=0)

    class Flat(nn.Module):
        def forward(self, xb):
            return xb[:, 0]

    with pytest.raises(ValueError, match=r"logits of shape \(N, classes\)"):
        robust_accuracy(Flat(), x, y, {"a": FlipAttack(set())})


def fgsm(eps: float):
    """Goodfellow et al. 2015: x + eps * sign(grad_x CE), clipped to [0, 1]."""

    def attack(model, x, y):
        x = x.clone().requires_grad_(True)
        loss = nn.functional.cross_entropy(model(x), y)
        (grad,) = torch.autograd.grad(loss, x)
        return (x + eps * grad.sign()).clamp(0, 1).detach()

    return attack


def test_fgsm_on_linear_model_lowers_accuracy():
    g = torch.Generator().manual_seed(0)
    d, n = 20, 400
    w = torch.randn(d, generator=g)
    x = torch.rand(n, d, generator=g)
    score = x @ w - (0.5 * w.sum())
    y = (score > 0).long()
    model = nn.Linear(d, 2)
    with torch.no_grad():
        model.weight.copy_(torch.stack([-w / 2, w / 2]))
        model.bias.copy_(torch.tensor([0.25 * w.sum(), -0.25 * w.sum()]))
        model.weight.add_(0.05 * torch.randn(2, d, generator=g))  # a little error: clean acc < 1

    reports = {eps: robust_accuracy(model, x, y, {"fgsm": fgsm(eps)}, eps=eps) for eps in (0.0, 0.02, 0.1)}
    clean = reports[0.0].clean_accuracy
    assert 0.8 < clean < 1.0
    assert reports[0.0].robust_accuracy == clean
    assert reports[0.02].robust_accuracy < clean
    assert reports[0.1].robust_accuracy < reports[0.02].robust_accuracy
    for eps, r in reports.items():
        assert r.ok, r.problems
        assert r.max_perturbation <= eps + 1e-6
        assert 0.0 <= r.min_pixel and r.max_pixel <= 1.0
    r = reports[0.1]
    assert accuracy_on_correct(model, x, y, fgsm(0.1)) == pytest.approx(r.robust_accuracy / r.clean_accuracy)


# ---------------------------------------------------------------- paired bootstrap


def test_resampled_ranks_equal_rankdata():
    rng = np.random.default_rng(0)
    values = np.round(rng.normal(size=50), 1)  # ties in the data and, by resampling, in every row
    idx = rng.integers(0, 50, size=(40, 50))
    np.testing.assert_array_equal(bootstrap_mod.resampled_ranks(values, idx), stats.rankdata(values[idx], axis=1))


def _slow_bootstrap(target, a, b, n_resamples, seed, ci=0.95):
    n = len(target)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    deltas = np.array(
        [stats.spearmanr(target[i], a[i]).statistic - stats.spearmanr(target[i], b[i]).statistic for i in idx]
    )
    tail = (1 - ci) / 2 * 100
    return deltas, np.median(deltas), np.percentile(deltas, [tail, 100 - tail])


@pytest.mark.parametrize("ties", [False, True])
def test_bootstrap_equals_slow_loop(ties):
    rng = np.random.default_rng(1)
    t = rng.normal(size=40)
    a = t + 0.5 * rng.normal(size=40)
    b = t + 1.0 * rng.normal(size=40)
    if ties:
        t, a, b = np.round(t), np.round(a), np.round(b)
    res = paired_bootstrap_srocc(t, a, b, n_resamples=200, seed=3, ci=0.9)
    deltas, median, (lo, hi) = _slow_bootstrap(t, a, b, 200, 3, ci=0.9)
    np.testing.assert_allclose(res.deltas, deltas, atol=1e-12)
    assert res.effect == pytest.approx(median, abs=1e-12)
    assert (res.ci_low, res.ci_high) == pytest.approx((lo, hi), abs=1e-12)
    assert res.point == pytest.approx(srocc(a, t) - srocc(b, t), abs=1e-12)
    assert res.n == 40 and res.n_resamples == 200 and res.seed == 3


def test_bootstrap_blocks_do_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(2)
    t, a, b = rng.normal(size=(3, 100))
    whole = paired_bootstrap_srocc(t, a, b, n_resamples=50, seed=5)
    monkeypatch.setattr(bootstrap_mod, "_BLOCK", 700)  # 7 resamples per block
    np.testing.assert_array_equal(paired_bootstrap_srocc(t, a, b, n_resamples=50, seed=5).deltas, whole.deltas)


def test_bootstrap_properties_and_significance_rule():
    rng = np.random.default_rng(3)
    t = rng.normal(size=300)
    good = t + 0.3 * rng.normal(size=300)
    bad = t + 1.5 * rng.normal(size=300)
    res = paired_bootstrap_srocc(t, good, bad, n_resamples=300, seed=0)
    assert res.ci_low > 0 and res.effect > 0.01 and res.significant
    assert res.ci_low <= res.effect <= res.ci_high
    swapped = paired_bootstrap_srocc(t, bad, good, n_resamples=300, seed=0)
    np.testing.assert_allclose(swapped.deltas, -res.deltas, atol=1e-12)  # paired: same indices
    assert not swapped.significant
    # the 0.01 rule: a positive CI is not enough if the effect is below the threshold
    assert not paired_bootstrap_srocc(t, good, bad, n_resamples=300, seed=0, min_effect=1.0).significant
    same = paired_bootstrap_srocc(t, good, good.copy(), n_resamples=100, seed=0)
    assert same.effect == same.ci_low == same.ci_high == 0.0 and not same.significant
    # seeding
    np.testing.assert_array_equal(paired_bootstrap_srocc(t, good, bad, n_resamples=300, seed=0).deltas, res.deltas)
    assert not np.array_equal(paired_bootstrap_srocc(t, good, bad, n_resamples=300, seed=1).deltas, res.deltas)
    d = res.as_dict()
    json.dumps(d)
    assert d["significant"] is True and "deltas" not in d
    assert "significant" in str(res)


def test_bootstrap_interval_covers_population_difference():
    """Coverage of the 95 % percentile interval for a known population Δρ."""
    rng = np.random.default_rng(2024)
    m = 50_000
    t = rng.normal(size=m)
    a = t + 0.6 * rng.normal(size=m)
    b = np.exp(t + 1.0 * rng.normal(size=m))  # monotone transform: only ranks matter
    true_delta = srocc(a, t) - srocc(b, t)
    assert 0.05 < true_delta < 0.3
    reps, covered, effects = 150, 0, []
    for r in range(reps):
        s = rng.choice(m, size=200, replace=False)
        res = paired_bootstrap_srocc(t[s], a[s], b[s], n_resamples=300, seed=r)
        covered += res.ci_low <= true_delta <= res.ci_high
        effects.append(res.effect)
    assert 0.85 <= covered / reps <= 0.99, covered / reps
    assert abs(np.mean(effects) - true_delta) < 0.02


def test_bootstrap_errors():
    t = np.arange(10.0)
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap_srocc(t, t, t[:9])
    with pytest.raises(ValueError, match="at least 3 points"):
        paired_bootstrap_srocc(t[:2], t[:2], t[:2])
    with pytest.raises(ValueError, match="pred_b contains 1 NaN"):
        paired_bootstrap_srocc(t, t, np.where(t == 3, np.nan, t))
    with pytest.raises(ValueError, match="ci must be a confidence level"):
        paired_bootstrap_srocc(t, t, t, ci=95)
    with pytest.raises(ValueError, match="n_resamples must be an int >= 2"):
        paired_bootstrap_srocc(t, t, t, n_resamples=1)
    with pytest.raises(TypeError, match="seed must be an int"):
        paired_bootstrap_srocc(t, t, t, seed=0.5)


def test_public_api():
    for name in metrics.__all__:
        assert hasattr(metrics, name), name


def test_logistic_fit_is_quiet_and_converges_on_badly_scaled_scores():
    """Weakly trained models give predictions of any scale and sign; the fit must neither spill
    overflow warnings nor fall back to a line (the old unstandardised fit did both in this battery)."""
    rng = np.random.default_rng(0)
    for _ in range(150):
        n = int(rng.integers(8, 300))
        target = rng.uniform(0, 100, n)
        pred = (rng.normal(size=n) * 10 ** rng.uniform(-6, 4)
                + rng.choice([-1, 0, 1]) * target * 10 ** rng.uniform(-6, 2))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fit = logistic_fit(pred, target)
        assert fit.method == "logistic"
        assert rmse(pred, target, logistic=True) <= np.std(target) + 1e-9


def test_per_attack_can_name_the_attacks_reported_alone():
    x, y = toy_data(10)
    a, b, c = FlipAttack({0, 2, 3}), FlipAttack({3, 4, 5}), FlipAttack({6})
    report = robust_accuracy(SliceModel(), x, y, {"a": a, "b": b, "c": c}, per_attack=["a", "b"])
    assert report.per_attack == {"a": 0.6, "b": 0.5}                 # "c" only ran for the worst case
    assert flat_seen(c) == [6, 7, 8, 9] and report.robust_accuracy == 0.3
    with pytest.raises(ValueError, match="not among the attacks"):
        robust_accuracy(SliceModel(), x, y, {"a": a}, per_attack=["z"])


def flat_seen(attack):
    return sorted(i for call in attack.seen for i in call)
