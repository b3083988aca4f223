"""attack_quality: each attack alone and the per-image worst case over attacks for quality models."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from robustbook.attacks import FGSM, PGD, GaussianNoise, Square, losses
from robustbook.evaluate import QualityRobustReport, attack_quality


class MeanScore(nn.Module):
    """Score = mean pixel value: the score change of an attack is the mean pixel change."""

    def forward(self, x):
        return x.flatten(1).mean(1)


class Constant(nn.Module):
    def forward(self, x):
        return torch.full((x.shape[0], 1), 0.5)


CLEAN = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
Y = torch.tensor([0.2, 0.5, 0.4, 0.6, 0.3])


def images() -> torch.Tensor:
    """Five constant 1×2×2 images; image k's score is CLEAN[k]."""
    return torch.tensor(CLEAN, dtype=torch.float32).view(5, 1, 1, 1).expand(5, 1, 2, 2).clone()


class Shift:
    """A fake attack adding ``shift[k]`` to every pixel of image k; records the model's mode."""

    def __init__(self, shift):
        self.shift = torch.tensor(shift, dtype=torch.float32)
        self.modes = []

    def __call__(self, model, x, y):
        self.modes.append(model.training)
        k = (x.flatten(1).mean(1) * 10).round().long() // 2  # the image's index from its value (0.1 → 0, 0.3 → 1 ...)
        return x + self.shift[k].view(-1, 1, 1, 1)


# A raises image 0 most and lowers image 2; B raises image 1 most and image 3 a little; nobody moves image 4.
SHIFT_A = [0.5, 0.05, -0.3, 0.0, 0.0]
SHIFT_B = [0.02, 0.4, 0.0, 0.01, 0.0]


def by_hand(pick):
    """The worst-case predictions when image k takes the attacked version ``pick[k]`` (None = clean)."""
    shift = {"A": SHIFT_A, "B": SHIFT_B}
    return np.array([CLEAN[k] + (shift[p][k] if p else 0.0) for k, p in enumerate(pick)])


@pytest.mark.parametrize("batch_size", [256, 2])
def test_worst_case_picks_per_image_the_attack_that_moves_the_score_furthest(batch_size):
    a, b = Shift(SHIFT_A), Shift(SHIFT_B)
    rep = attack_quality(MeanScore(), images(), Y, {"A": a, "B": b}, direction="up", batch_size=batch_size,
                         model_checks=0)
    worst = by_hand(["A", "B", None, "B", None])  # image 2: A lowers it, so the clean image stays the worst case
    assert rep.worst_pred.numpy() == pytest.approx(worst)
    assert rep.winner.tolist() == [1, 2, 0, 2, 0]
    assert rep.wins == {"clean": 2, "A": 1, "B": 2}
    assert rep.worst_case["srocc"] == pytest.approx(stats.spearmanr(worst, Y.numpy()).statistic)
    assert rep.worst_case["plcc"] == pytest.approx(stats.pearsonr(worst, Y.numpy()).statistic)
    assert rep.worst_case["mean_change"] == pytest.approx(np.mean(worst - CLEAN))
    assert rep.clean["srocc"] == pytest.approx(stats.spearmanr(CLEAN, Y.numpy()).statistic)
    for name, shift in (("A", SHIFT_A), ("B", SHIFT_B)):
        alone = CLEAN + np.array(shift)
        assert rep.per_attack[name]["srocc"] == pytest.approx(stats.spearmanr(alone, Y.numpy()).statistic)
        assert rep.per_attack[name]["mean_change"] == pytest.approx(np.mean(shift), abs=1e-6)
        assert rep.per_attack[name]["mean_abs_change"] == pytest.approx(np.mean(np.abs(shift)), abs=1e-6)
        assert rep.worst_case["objective"] >= rep.per_attack[name]["objective"] - 1e-9

    away = attack_quality(MeanScore(), images(), Y, {"A": a, "B": b}, direction="away", model_checks=0)
    assert away.worst_pred.numpy() == pytest.approx(by_hand(["A", "B", "A", "B", None]))
    assert away.wins == {"clean": 1, "A": 2, "B": 2}
    down = attack_quality(MeanScore(), images(), Y, {"A": a, "B": b}, direction="down", model_checks=0)
    assert down.wins == {"clean": 4, "A": 1, "B": 0}
    # DMOS-like scores: "worse" means a higher score
    worse = attack_quality(MeanScore(), images(), Y, {"A": a, "B": b}, direction="worse", higher_is_better=False,
                           model_checks=0)
    assert worse.winner.tolist() == rep.winner.tolist() and worse.direction == "up"


def test_objective_callable_picks_the_version_closest_to_the_mirrored_label():
    objective = losses.invert_ranking(0.0, 1.0)  # -(pred - (1 - y))^2: pull every score to the mirror of its label
    rep = attack_quality(MeanScore(), images(), Y, {"A": Shift(SHIFT_A), "B": Shift(SHIFT_B)}, direction=objective,
                         model_checks=0)
    target = 1 - Y.numpy()
    versions = {None: CLEAN, "A": CLEAN + np.array(SHIFT_A), "B": CLEAN + np.array(SHIFT_B)}
    pick = [max(versions, key=lambda v: (-(versions[v][k] - target[k]) ** 2, v is None)) for k in range(5)]
    assert rep.worst_pred.numpy() == pytest.approx(by_hand(pick))
    assert rep.direction.startswith("invert_ranking")
    assert rep.worst_case["objective"] == pytest.approx(np.mean(-(by_hand(pick) - target) ** 2))


def test_constant_model_gives_zero_change_and_the_clean_images_win():
    rep = attack_quality(Constant(), images(), Y, {"A": Shift(SHIFT_A), "B": Shift(SHIFT_B)})
    assert rep.wins == {"clean": 5, "A": 0, "B": 0}
    for v in (*rep.per_attack.values(), rep.worst_case):
        assert v["mean_change"] == 0.0 and v["mean_abs_change"] == 0.0 and v["srocc"] == 0.0
    assert torch.equal(rep.worst_pred, rep.clean_pred)
    assert rep.checks["zero gradients"].flagged  # the output ignores the image: gradient attacks cannot move it


def test_configured_attacks_checks_report_and_modes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 1),
                          nn.Dropout(0.0))
    model.train()
    model[0].eval()
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(12, 3, 8, 8, generator=g), torch.rand(12, generator=g)
    atks = [FGSM(4 / 255, loss=losses.score_up), PGD(4 / 255, 5, loss=losses.score_up),
            Square(4 / 255, 20, loss=losses.score_up, generator=torch.Generator().manual_seed(1)),
            GaussianNoise(0.02, torch.Generator().manual_seed(2))]
    rep = attack_quality(model, x, y, atks, direction="up", batch_size=5, return_images=True)
    assert isinstance(rep, QualityRobustReport)
    assert model.training and not model[0].training  # modes restored
    assert list(rep.per_attack) == [str(a) for a in atks]
    assert rep.black_box == [str(atks[2]), str(atks[3])]
    for v in rep.per_attack.values():
        assert rep.worst_case["mean_change"] >= v["mean_change"] - 1e-9  # per image, the largest raise
    assert rep.per_attack[str(atks[1])]["mean_change"] > 0  # PGD on score_up raises the scores
    # the worst-case images hold each image's winning version
    assert (rep.x_worst - x).abs().max() <= 0.02 * 6  # noise is not budgeted; the rest within ε
    with torch.no_grad():
        assert model.eval()(rep.x_worst)[:, 0].double().numpy() == pytest.approx(rep.worst_pred.numpy(), abs=1e-5)
    model.train()
    names = [r.name for r in rep.checks]
    assert names[:3] == ["randomness", "zero gradients", "black-box beats white-box"]
    assert sum(n.startswith("perturbation") for n in names) == 4
    assert rep.checks.ok and rep.ok, str(rep.checks)
    d = rep.as_dict()
    json.dumps(d, allow_nan=False)
    assert d["wins"] == rep.wins and d["checks"]["ok"] and set(d["per_attack"]) == set(rep.per_attack)
    text = str(rep)
    assert "worst case" in text and "clean" in text and "checks" in text


def test_over_budget_attack_and_black_box_are_flagged_in_the_report():
    rep = attack_quality(MeanScore(), images(), Y, {"A": Shift(SHIFT_A), "square": Shift(SHIFT_B)}, eps=0.3,
                         direction="up", black_box_by="objective", black_box_margin=0.0)
    flagged = {r.name for r in rep.checks.flagged}
    assert "perturbation [A]" in flagged and "perturbation [square]" in flagged  # 0.5 and 0.4 > 0.3
    # "square" (a black-box name) raises the scores more on average than A: objective 0.092 > 0.05
    assert rep.per_attack["square"]["objective"] > rep.per_attack["A"]["objective"]
    assert "black-box beats white-box" in flagged
    assert not attack_quality(MeanScore(), images(), Y, {"A": Shift(SHIFT_A), "square": Shift(SHIFT_B)}, eps=0.5,
                              direction="up", model_checks=0).checks.flagged


def test_nan_images_never_win_and_are_flagged():
    def nan_attack(model, x, y):
        out = x + 0.6
        out[:, :, 0, 0] = float("nan")
        return out

    rep = attack_quality(MeanScore(), images(), Y, {"nan": nan_attack, "A": Shift(SHIFT_A)}, direction="up",
                         model_checks=0)
    assert rep.per_attack["nan"]["srocc"] is None and rep.wins["nan"] == 0
    assert rep.wins == {"clean": 3, "nan": 0, "A": 2}  # A raises images 0 and 1 only
    assert rep.checks["perturbation [nan]"].flagged and "NaN" in rep.checks["perturbation [nan]"].message
    json.dumps(rep.as_dict(), allow_nan=False)


def test_attack_quality_errors():
    x = images()
    a = {"A": Shift(SHIFT_A)}
    with pytest.raises(ValueError, match="direction must be one of"):
        attack_quality(MeanScore(), x, Y, a, direction="sideways")
    with pytest.raises(ValueError, match="float scores"):
        attack_quality(MeanScore(), x, torch.arange(5), a)
    with pytest.raises(ValueError, match="names the unattacked images"):
        attack_quality(MeanScore(), x, Y, {"clean": Shift(SHIFT_A)})
    with pytest.raises(ValueError, match="non-empty"):
        attack_quality(MeanScore(), x, Y, {})
    with pytest.raises(ValueError, match="expected the input's shape"):
        attack_quality(MeanScore(), x, Y, {"crop": lambda m, xb, yb: xb[..., :1]})
    with pytest.raises(ValueError, match="one score per image"):
        attack_quality(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), x, Y, a)
    with pytest.raises(ValueError, match="black_box_by"):
        attack_quality(MeanScore(), x, Y, a, black_box_by="psnr")
