"""The scorecard's verdicts are computed from the metrics, by the documented rules."""
from __future__ import annotations

import pytest

from robustbook.scorecard import Claim, judge, scorecard, summary

M = {"a": {"srocc": 0.80}, "b": {"srocc": 0.60}}


def test_value_claims_are_judged_only_at_full():
    c = Claim("value", "a.srocc", paper=0.82, tol=0.05)
    assert judge(c, M, "full")[1] == "reproduced"
    assert judge(c, M, "quick") == (0.80, "not judged at this profile")   # it ran; values are judged at full
    assert judge(Claim("value", "z.srocc", paper=0.82, tol=0.05), M, "quick")[1] == "not run at this profile"
    assert judge(Claim("value", "a.srocc", paper=0.95, tol=0.05), M, "full")[1] == "not reproduced"


def test_direction_claims():
    assert judge(Claim("a > b", "a.srocc", direction=(">", "b.srocc")), M, "quick")[1] == "reproduced"
    assert judge(Claim("a < b", "a.srocc", direction=("<", "b.srocc")), M, "quick")[1] == "not reproduced"
    assert judge(Claim("a > 0.9", "a.srocc", direction=(">", 0.9)), M, "quick")[1] == "not reproduced"


def test_value_with_direction_gives_direction_only():
    c = Claim("both", "a.srocc", paper=0.95, tol=0.05, direction=(">", "b.srocc"))
    assert judge(c, M, "full")[1] == "direction only"
    assert judge(c, M, "quick")[1] == "direction only"


def test_missing_key_is_not_run():
    assert judge(Claim("x", "c.srocc", direction=(">", 0)), M, "full") == (None, "not run at this profile")
    assert judge(Claim("x", "a.srocc", direction=(">", "c.srocc")), M, "full")[1] == "not run at this profile"


def test_table_and_summary():
    t = scorecard([Claim("a > b", "a.srocc", direction=(">", "b.srocc")),
                   Claim("v", "a.srocc", paper=0.5, tol=0.01)], M, "full")
    assert list(t.columns) == ["claim", "paper", "expected", "ours", "profile", "verdict"]
    assert summary(t) == {"reproduced": 1, "direction only": 0, "not reproduced": 1, "not run at this profile": 0,
                          "not judged at this profile": 0}


def test_claim_needs_something_to_judge():
    with pytest.raises(ValueError, match="needs tol"):
        Claim("nothing", "a.srocc")
    with pytest.raises(ValueError, match="direction operator"):
        Claim("bad", "a.srocc", direction=("!=", 1))


def test_direction_with_a_noise_margin_and_ties():
    m = {**M, "noise": {"sd": 0.1}}
    above = Claim("a > b beyond noise", "a.srocc", direction=(">", "b.srocc"), margin="noise.sd")
    assert judge(above, m, "quick")[1] == "reproduced"                              # 0.80 > 0.60 + 0.1
    assert judge(Claim("x", "a.srocc", direction=(">", "b.srocc"), margin=0.3), m, "quick")[1] == "not reproduced"
    assert judge(Claim("x", "b.srocc", direction=(">=", "a.srocc"), margin=0.25), m, "quick")[1] == "reproduced"
    assert judge(Claim("x", "b.srocc", direction=(">=", "a.srocc"), margin=0.1), m, "quick")[1] == "not reproduced"
    assert judge(Claim("x", "b.srocc", direction=("<", "a.srocc"), margin="noise.sd"), m, "quick")[1] == "reproduced"
    assert judge(Claim("tie", "a.srocc", direction=("==", "b.srocc"), margin=0.25), m, "quick")[1] == "reproduced"
    assert judge(Claim("tie", "a.srocc", direction=("==", "b.srocc"), margin=0.1), m, "quick")[1] == "not reproduced"
    assert judge(Claim("x", "a.srocc", direction=(">", "b.srocc"), margin="noise.none"), m, "quick")[1] == \
        "not run at this profile"
    with pytest.raises(ValueError, match="needs a margin"):
        Claim("tie", "a.srocc", direction=("==", "b.srocc"))
    with pytest.raises(ValueError, match="margin must be"):
        Claim("x", "a.srocc", direction=(">", 0), margin=-1)
    with pytest.raises(ValueError, match="needs a direction"):
        Claim("x", "a.srocc", paper=1.0, tol=0.1, margin=0.1)
