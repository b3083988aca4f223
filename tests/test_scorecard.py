"""The scorecard's verdicts are computed from the metrics, by the documented rules."""
from __future__ import annotations

import pytest

from robustbook.scorecard import Claim, judge, scorecard, summary

M = {"a": {"srocc": 0.80}, "b": {"srocc": 0.60}}


def test_value_claims_are_judged_only_at_full():
    c = Claim("value", "a.srocc", paper=0.82, tol=0.05)
    assert judge(c, M, "full")[1] == "reproduced"
    assert judge(c, M, "quick") == (0.80, "not judged at this profile")
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
