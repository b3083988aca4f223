"""The audit (``robustbook.audit``): its checks on models built to trip them, bad input, the CLI, resuming."""
from __future__ import annotations

import json
import textwrap

import pytest
import torch
from torch import nn

from robustbook.audit import AuditData, AuditProfile, build_suite, run_audit
from robustbook.audit.suite import FAMILIES, SUITE_VERSION
from robustbook.run import main

TINY = AuditProfile("tiny", n_images=12, n_train=8, crop=16, per_photo=1, pgd_steps=4, pgd_restarts=2, apgd_steps=4,
                    square_queries=60, stadv_steps=3, uap_epochs=1, cw_steps=3, eot_draws=3, n_boot=50,
                    model_checks=8, chunk=64)


def _data(n: int = 12, side: int = 16) -> AuditData:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, side, side, generator=g)
    y = torch.linspace(0.1, 0.9, n)[torch.randperm(n, generator=g)]
    return AuditData(x=x, y=y, x_train=torch.rand(8, 3, side, side, generator=g), name="random")


class Linear(nn.Module):
    """A fixed random linear score of the (optionally quantised / noisy) image."""

    def __init__(self, side: int = 16, levels: int = 0, noise: float = 0.0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.w = nn.Parameter(torch.randn(3 * side * side, generator=g) / side)
        self.levels, self.noise = levels, noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.levels:
            x = torch.round(x * self.levels) / self.levels  # a quantiser in front: zero gradient almost everywhere
        if self.noise:
            x = x + self.noise * torch.randn_like(x)       # a randomised defence, active in eval mode too
        return x.flatten(1) @ self.w


class Constant(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.tensor(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c + 0.0 * x.flatten(1).sum(1)  # in the graph (the attacks differentiate it), gradient 0


def test_suite_is_every_family_direction_and_budget():
    nr, fr = build_suite("smoke", False), build_suite("smoke", True)
    assert {a.family for a in nr} == set(FAMILIES) - {"C&W"} and {a.family for a in fr} == set(FAMILIES)
    assert len(fr) == len(FAMILIES) * 2 * 4 and len({a.key for a in fr}) == len(fr)
    assert {a.eps_255 for a in nr} == {1, 2, 4, 8} and {a.direction for a in nr} == {"up", "down"}
    pgd = next(a for a in nr if a.family == "PGD")
    assert pgd.attack.restarts == 2 and pgd.attack.eps == pytest.approx(pgd.eps_255 / 255)
    assert all(a.attack.eot == 5 for a in build_suite("smoke", False, eot=5) if a.attack is not None)
    assert SUITE_VERSION


def test_constant_model_moves_nothing_and_flags_nothing():
    res = run_audit(Constant(), _data(), profile=TINY, higher_is_better=True, progress=False)
    rec = res.record
    assert all(v["abs_gain"] == 0.0 and v["ir_score"] == 1.0 for v in rec["attacks"].values())
    assert all(w[a]["abs_gain"] == 0.0 for w in rec["worst_case"].values() for a in ("up", "down", "rank"))
    assert res.checks.ok, str(res.checks)
    assert res.verdict == "reliable"
    assert rec["checks"]["checks"]["zero gradients"]["lifted"] == "constant within the budget"


def test_randomised_model_is_attacked_with_eot():
    res = run_audit(Linear(noise=0.05), _data(), profile=TINY, higher_is_better=True, progress=False,
                    families=("FGSM", "PGD", "Square"), eps_255=(8,))
    rec = res.record
    assert rec["checks"]["checks"]["randomness"]["flagged"]
    assert rec["eot"] == TINY.eot_draws > 1
    assert all(v["attack"]["eot"] == TINY.eot_draws for v in rec["attacks"].values())
    assert any("EOT" in n for n in rec["notes"])


def test_gradient_masking_quantiser_is_flagged():
    res = run_audit(Linear(levels=4), _data(), profile=TINY, higher_is_better=True, progress=False,
                    families=("FGSM", "PGD", "Square"), eps_255=(8,))
    flagged = {r.name for r in res.checks.flagged}
    assert {"zero gradients", "black-box beats white-box"} <= flagged, str(res.checks)
    assert res.verdict.startswith("not reliable")


def test_smooth_model_attacks_move_scores_and_are_checked():
    res = run_audit(Linear(), _data(), profile=TINY, higher_is_better=True, progress=False,
                    families=("FGSM", "PGD", "Square"), eps_255=(2, 8))
    rec = res.record
    up, down = rec["attacks"]["PGD-up-eps8"], rec["attacks"]["PGD-down-eps8"]
    assert up["abs_gain"] > 0 > down["abs_gain"]
    assert rec["worst_case"]["8"]["worst_srocc"] < rec["clean"]["srocc"]
    assert not res.checks["black-box beats white-box"].flagged and not res.checks["zero gradients"].flagged
    lo, hi = rec["clean"]["srocc_ci"]
    assert lo <= rec["clean"]["srocc"] <= hi


def test_resume_skips_finished_attacks(tmp_path):
    kw = dict(profile=TINY, higher_is_better=True, progress=False, families=("FGSM", "PGD"), eps_255=(4,),
              out=tmp_path)
    first = run_audit(Linear(), _data(), **kw)
    files = sorted((tmp_path / "attacks").glob("*.pt"))
    assert len(files) == first.record["cost"]["attacks_run"] == 6  # 2 families x 2 directions + PGD x2 steps
    files[0].unlink()
    second = run_audit(Linear(), _data(), **kw)
    assert second.record["cost"]["attacks_run"] == 1 and len(second.record["cost"]["reused"]) == 5
    assert second.record["attacks"] == first.record["attacks"] | {
        k: {**v, "seconds": second.record["attacks"][k]["seconds"]} for k, v in first.record["attacks"].items()
        if k == files[0].stem}
    changed = Linear()
    with torch.no_grad():
        changed.w.mul_(2)
    other = run_audit(changed, _data(), **kw)  # other weights: nothing reused
    assert other.record["cost"]["reused"] == []


# ------------------------------------------------------------------ the command line
MODEL_FILE = textwrap.dedent("""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, out=1, nan=False):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.head = nn.Linear(4, out)
            self.nan = nan

        def forward(self, x):
            s = self.head(torch.relu(self.conv(x)).mean((2, 3)))
            return s * float("nan") if self.nan else s

    def make():
        torch.manual_seed(0)
        return Net()

    def two_scores():
        return Net(out=2)

    def nan_scores():
        return Net(nan=True)

    def not_a_model():
        return 3
""")


@pytest.fixture
def model_file(tmp_path):
    p = tmp_path / "user_model.py"
    p.write_text(MODEL_FILE)
    return p


@pytest.mark.parametrize("spec, extra, says", [
    ("no_such_module_xyz:make", [], "cannot import module"),
    ("{f}:missing", [], "callables defined there"),
    ("{f}:two_scores", [], "one score per image"),
    ("{f}:nan_scores", [], "NaN"),
    ("{f}:not_a_model", [], "not a torch.nn.Module"),
    ("{dir}/absent.py:make", [], "does not exist"),
    ("{f}:make", ["--weights", "{dir}/absent.pt"], "no such file"),
    ("{f}:make", ["--weights", "{dir}/wrong.pt"], "do not fit the model"),
    ("{f}:make", ["--weights", "{dir}/junk.pt"], "not a checkpoint"),
    ("{f}:make", ["--data", "mnist"], "not an IQA data set"),
    ("{f}:make", ["--profile", "huge"], "unknown profile"),
    ("small-iqa", ["--full-reference"], "contradicts"),
    ("nonsense", [], "neither a book model"),
])
def test_bad_input_exits_2_before_any_attack(model_file, tmp_path, capsys, spec, extra, says):
    torch.save({"conv.weight": torch.zeros(2, 3, 3, 3)}, tmp_path / "wrong.pt")
    (tmp_path / "junk.pt").write_text("<html>not a checkpoint</html>")
    fill = {"f": str(model_file), "dir": str(tmp_path)}
    out = tmp_path / "out"
    rc = main(["audit", "--model", spec.format(**fill), "--profile", "smoke", "--out", str(out), "--no-progress",
               *[e.format(**fill) for e in extra]])  # extra last: a second --profile overrides the first
    err = capsys.readouterr().err
    assert rc == 2, err
    assert says in err, err
    assert not (out / "attacks").exists()


def test_cli_end_to_end_at_smoke_and_resume(model_file, tmp_path, capsys):
    out = tmp_path / "card"
    args = ["audit", "--model", f"{model_file}:make", "--profile", "smoke", "--out", str(out), "--no-progress"]
    assert main(args) == 0, capsys.readouterr().err
    record = json.loads((out / "metrics.json").read_text())
    assert record["chapter"] == "audit" and record["profile"] == "smoke"
    m = record["metrics"]
    assert m["suite_version"] == SUITE_VERSION and len(m["attacks"]) == 6 * 2 * 4
    assert (out / "report.md").read_text().startswith("# Robustness report card")
    assert "<table>" in (out / "report.html").read_text()
    assert {p.name for p in (out / "figures").iterdir()} >= {"srocc_vs_eps.png", "worst_case.png"}
    capsys.readouterr()
    assert main(args) == 0  # the same settings: every attack is reused
    assert f"{len(m['attacks']) + 2} attack(s) reused, 0 run" in capsys.readouterr().out
    assert main([*args[:-3], "--seed", "1", "--out", str(out), "--no-progress"]) == 2  # other settings need --force
