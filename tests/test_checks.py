"""The red-flag checks of robustbook.checks.

Each fires on a model built to trigger it, and stays quiet on a plain CNN.
"""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustbook.attacks import FGSM, PGD, RandomSign, Square, losses
from robustbook.checks import (
    ChecksReport,
    PerturbationChecks,
    check_black_box,
    check_probability_outputs,
    check_randomness,
    check_zero_gradients,
    run_checks,
)
from robustbook.metrics import robust_accuracy


def small_cnn(seed: int = 0, classes: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, classes)).eval()


class Quantise(nn.Module):
    """``round(4x)/4``: a non-differentiable input quantiser (zero gradient almost everywhere)."""

    def forward(self, x):
        return torch.round(x * 4) / 4


class Noise(nn.Module):
    """Gaussian noise on the input in train *and* eval mode (a randomised defence)."""

    def forward(self, x):
        return x + 0.1 * torch.randn_like(x)


class MCDropout(nn.Module):
    """Dropout kept on at test time."""

    def forward(self, x):
        return F.dropout(x, 0.5, training=True)


class Gate(nn.Module):
    """Multiplies image ``k`` by ``mask[k]``: a zero mask entry zeroes that image's whole gradient."""

    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, x):
        return x * self.mask.view(-1, *([1] * (x.dim() - 1)))


class Score(nn.Module):
    """A quality model: one score per image."""

    def __init__(self, seed: int = 0, keepdim: bool = False):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 1))
        self.keepdim = keepdim

    def forward(self, x):
        out = self.net(x)
        return out if self.keepdim else out[:, 0]


def data(n: int = 24, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g)


def own_labels(model, x):
    with torch.no_grad():
        return model(x).argmax(1)


# --------------------------------------------------------------------------- perturbation


def test_perturbation_checks_accumulate_and_flag_budget_nan_and_range():
    x = torch.full((4, 1, 2, 2), 0.5)
    ok = PerturbationChecks("linf", eps=0.1).update(x, x + 0.1)
    assert ok.ok and ok.count == 4 and ok.max_norm == pytest.approx(0.1)
    assert not ok.result().flagged and ok.result().value == pytest.approx(0.1)

    over = PerturbationChecks("linf", eps=0.1, label="A")
    over.update(x[:2], x[:2] + 0.05).update(x[2:], x[2:] + 0.2)  # batch by batch
    assert over.count == 4 and over.max_norm == pytest.approx(0.2)
    r = over.result()
    assert r.flagged and r.name == "perturbation [A]" and "exceeds eps" in r.message

    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    bad[1] = 1.7
    bad[2] = -0.2
    pc = PerturbationChecks("l2").update(x, bad)
    assert pc.nan == 1 and pc.hi == pytest.approx(1.7) and pc.lo == pytest.approx(-0.2)
    assert pc.max_norm == pytest.approx(1.2 * 2)  # l2 norm of a 1.2 shift over 4 pixels, NaN image left out
    text = " ".join(pc.problems)
    assert "NaN" in text and "above 1" in text and "below 0" in text
    assert pc.result().flagged
    json.dumps(pc.result().as_dict(), allow_nan=False)

    empty = PerturbationChecks().result()
    assert empty.value is None and not empty.flagged
    with pytest.raises(ValueError, match="norm must be one of"):
        PerturbationChecks("l1")
    with pytest.raises(ValueError, match="eps must be a non-negative number"):
        PerturbationChecks(eps=-1)
    with pytest.raises(ValueError, match="expected x's"):
        PerturbationChecks().update(x, x[:2])


def test_robust_accuracy_uses_the_same_accumulator_and_takes_a_list_of_attacks():
    model = small_cnn()
    x = data()
    y = own_labels(model, x)
    atks = [FGSM(0.1), RandomSign(0.1, torch.Generator().manual_seed(0))]
    report = robust_accuracy(model, x, y, atks, eps=0.1)
    assert list(report.per_attack) == [str(a) for a in atks]
    assert report.black_box == [str(atks[1])]
    assert report.ok and report.max_perturbation <= 0.1 + 1e-6
    pc = report.checks_inputs()["perturbation"][0]
    assert pc.max_norm == report.max_perturbation and pc.count == report.n_adversarial and not pc.result().flagged
    with pytest.raises(TypeError, match="hold Attack objects"):
        robust_accuracy(model, x, y, [lambda m, a, b: a])


# --------------------------------------------------------------------------- randomness


def test_randomness_flags_noise_and_test_time_dropout_and_is_quiet_on_a_plain_cnn():
    x = data()
    cnn = small_cnn()
    assert not check_randomness(cnn, x).flagged
    assert check_randomness(nn.Sequential(Noise(), small_cnn()), x).flagged
    r = check_randomness(nn.Sequential(small_cnn(), MCDropout()), x)
    assert r.flagged and "EOT" in r.message and "eot=" in r.message


def test_randomness_respects_eval_mode_and_restores_modes_and_random_state():
    x = data()
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).train()
    model[0].eval()  # a mixed state must survive
    assert not check_randomness(model, x).flagged  # eval mode switches dropout off
    assert model.training and model[1].training and not model[0].training  # every submodule's mode restored
    assert check_randomness(model, x, eval_mode=False).flagged  # dropout in train mode
    noisy = nn.Sequential(Noise(), small_cnn())
    state = torch.get_rng_state()
    check_randomness(noisy, x)
    run_checks(noisy, x, torch.zeros(len(x), dtype=torch.long))
    assert torch.equal(state, torch.get_rng_state())  # the chapter's later draws do not shift
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        check_randomness(model, x, n=1)


# --------------------------------------------------------------------------- zero gradients


def test_zero_gradients_flag_a_quantiser_and_stay_quiet_on_a_plain_cnn():
    x = data()
    cnn = small_cnn()
    y = own_labels(cnn, x)
    quiet = check_zero_gradients(cnn, x, y)
    assert not quiet.flagged and quiet.value < 0.1 and quiet.details["zero_samples"] == 0
    loud = check_zero_gradients(nn.Sequential(Quantise(), small_cnn()), x, y)
    assert loud.flagged and loud.value == 1.0 and loud.details["zero_sample_fraction"] == 1.0
    assert "FGSM" in loud.message and "BPDA" in loud.message and "unperturbed" in loud.message


def test_zero_gradients_flag_one_image_with_an_all_zero_gradient():
    x = data(20)
    mask = torch.ones(20)
    mask[3] = 0.0
    model = nn.Sequential(Gate(mask), small_cnn())
    r = check_zero_gradients(model, x, own_labels(small_cnn(), x), batch_size=32)
    assert r.value <= 1 / 20 + 1e-9  # few zero entries ...
    assert r.flagged and r.details["zero_samples"] == 1  # ... but one image the attack cannot start on


def test_zero_gradients_use_the_given_loss_and_handle_scores_and_images():
    x = data()
    y = torch.rand(len(x))
    assert not check_zero_gradients(Score(), x, y).flagged  # default: squared error for scores
    assert not check_zero_gradients(Score(), x, y, loss=losses.score_up).flagged
    relu_score = nn.Sequential(Score(), nn.ReLU())  # scores clipped at 0: the gradient dies where the score is < 0
    with torch.no_grad():
        negative = relu_score[0](x) < 0
    r = check_zero_gradients(relu_score, x, y, loss=losses.score_up)
    assert r.details["zero_samples"] == int(negative.sum()) and r.flagged == bool(negative.any())
    denoiser = nn.Conv2d(1, 1, 3, padding=1)
    assert not check_zero_gradients(denoiser, x, x.clone()).flagged  # image targets: per-image MSE


# --------------------------------------------------------------------------- probability outputs


def test_probability_outputs_flag_softmax_only_for_classifiers():
    x = data()
    assert check_probability_outputs(nn.Sequential(small_cnn(), nn.Softmax(dim=1)), x).flagged
    assert not check_probability_outputs(small_cnn(), x).flagged
    assert not check_probability_outputs(nn.Sequential(small_cnn(), nn.LogSoftmax(dim=1)), x).flagged
    na = check_probability_outputs(Score(), x)
    assert na.value is None and not na.flagged and not na.applicable
    sig = check_probability_outputs(None, output=torch.sigmoid(torch.randn(10, 3)))  # in [0, 1], rows not summing to 1
    assert not sig.flagged


# --------------------------------------------------------------------------- black box beats white box


def test_black_box_check_on_numbers():
    r = check_black_box({"pgd": 0.40, "Square-100q": 0.30})
    assert r.flagged and r.value == pytest.approx(0.10) and r.details["best_black"] == "Square-100q"
    assert not check_black_box({"pgd": 0.30, "fgsm": 0.45, "Square-100q": 0.305}).flagged  # within the margin
    assert not check_black_box({"pgd": 0.30, "Square-100q": 0.35}).flagged
    # a worst-case objective: higher is stronger
    assert check_black_box({"pgd": 0.1, "sq": 0.3}, black_box=["sq"], lower_is_stronger=False).flagged
    assert not check_black_box({"pgd": 0.3, "sq": 0.1}, black_box=["sq"], lower_is_stronger=False).flagged
    # attacks that use no gradient are black-box, whatever their name
    atks = {"white": FGSM(0.1), "noise": RandomSign(0.1)}
    assert check_black_box({"white": 0.5, "noise": 0.2}, atks).flagged
    na = check_black_box({"pgd": 0.4, "fgsm": 0.5})
    assert na.value is None and not na.flagged
    with pytest.raises(ValueError, match="not in results"):
        check_black_box({"pgd": 0.4}, black_box=["sq"])


def test_black_box_flags_square_beating_pgd_on_a_gradient_masked_model():
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    x = data(32)
    attacks_ = [PGD(0.2, 10, random_start=False), Square(0.2, 100, generator=gen(), p_init=0.3)]

    masked = nn.Sequential(Quantise(), small_cnn()).eval()
    rep = robust_accuracy(masked, x, own_labels(masked, x), attacks_, eps=0.2)
    assert rep.per_attack[str(attacks_[0])] == 1.0  # PGD cannot move: the gradient is zero
    assert rep.black_box == [str(attacks_[1])]  # Square is known as black-box from its Attack
    checks = run_checks(masked, x, own_labels(masked, x), attacks_results=rep)
    assert checks["black-box beats white-box"].flagged and checks["zero gradients"].flagged
    assert {r.name for r in checks.flagged} == {"black-box beats white-box", "zero gradients"}

    plain = small_cnn()
    rep = robust_accuracy(plain, x, own_labels(plain, x), attacks_, eps=0.2)
    checks = run_checks(plain, x, own_labels(plain, x), attacks_results=rep)
    assert checks.ok, str(checks)


# --------------------------------------------------------------------------- run_checks


def test_run_checks_is_quiet_on_a_plain_cnn_and_reports_every_task():
    x = data()
    cnn = small_cnn().train()
    y = own_labels(cnn.eval(), x)
    cnn.train()
    report = run_checks(cnn, x, y)
    assert cnn.training  # mode restored
    assert isinstance(report, ChecksReport) and report.task == "classification" and report.ok
    assert [r.name for r in report] == ["probability outputs", "randomness", "zero gradients"]
    d = report.as_dict()
    json.dumps(d, allow_nan=False)
    assert d["ok"] and d["flagged"] == [] and set(d["checks"]) == {r.name for r in report}
    assert "no red flag" in str(report) and "| check |" in report._repr_markdown_()

    q = run_checks(Score(keepdim=True), x, torch.rand(len(x)))
    assert q.task == "quality" and "probability outputs" not in [r.name for r in q] and q.ok
    img = run_checks(nn.Conv2d(1, 1, 3, padding=1), x, x.clone())
    assert img.task == "image" and img.ok


def test_run_checks_prints_the_flags():
    x = data()
    model = nn.Sequential(Noise(), Quantise(), small_cnn(), nn.Softmax(dim=1))
    y = torch.zeros(len(x), dtype=torch.long)
    pc = PerturbationChecks("linf", 0.1, label="bad").update(x, (x + 0.3).clamp(0, 1))
    report = run_checks(model, x, y, perturbation=pc, attacks_results={"pgd": 0.9, "square": 0.5})
    names = {r.name for r in report.flagged}
    assert names == {"probability outputs", "randomness", "zero gradients", "black-box beats white-box",
                     "perturbation [bad]"}
    text = str(report)
    assert text.count("RED FLAG") >= 5 and "EOT" in text and "logits" in text
    json.dumps(report.as_dict(), allow_nan=False)
    assert report["randomness"].flagged
    with pytest.raises(KeyError, match="no check named"):
        report["nope"]


def test_run_checks_errors():
    x = data(4)
    with pytest.raises(ValueError, match="task must be one of"):
        run_checks(small_cnn(), x, torch.zeros(4, dtype=torch.long), task="detection")
    with pytest.raises(ValueError, match="one target per image"):
        run_checks(small_cnn(), x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="attacks_results must be"):
        run_checks(small_cnn(), x, torch.zeros(4, dtype=torch.long), attacks_results=[0.1])
