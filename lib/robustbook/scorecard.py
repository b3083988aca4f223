"""The reproduction scorecard: the source's claims against our numbers, computed.

A chapter declares each claim of its source next to the ``metrics.json`` key
that answers it::

    claims = [
        Claim("Table 1, PGD 4/255: SROCC collapses", "tab1.pgd4.srocc",
              paper=0.05, tol=0.1, direction=("<", "tab1.clean.srocc")),
        Claim("ST Norm beats AT at 2/255", "fig4.stnorm.srocc", direction=(">", "fig4.at.srocc")),
    ]
    scorecard(claims, run.metrics, run.profile)

Verdicts (never typed by hand):

* **reproduced** — our value is within ``tol`` of the paper's (judged only at the
  profiles in ``value_profiles``, by default ``full``: a quick run on bundled data
  cannot reproduce a number measured on LIVE), or, for a claim with only a
  direction, the direction holds;
* **direction only** — the value is not reproduced (or not judged at this profile)
  but the stated direction holds;
* **not reproduced** — neither;
* **not judged at this profile** — the run measured the value, but the claim is
  numeric only and this profile does not judge values (``value_profiles``);
* **not run at this profile** — the key (or the key a direction compares with, or
  its margin's key) is absent from the metrics: this profile did not measure it.

A direction may carry a noise ``margin`` (a number or a metrics key, e.g. the
seed-to-seed spread of the difference): ``>`` then needs ``ours > other + margin``,
``<`` needs ``ours < other − margin``, ``>=`` / ``<=`` allow a shortfall of up to
``margin`` (not worse beyond noise), and ``==`` (a tie) needs
``|ours − other| ≤ margin``.
"""
from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VERDICTS = ("reproduced", "direction only", "not reproduced", "not run at this profile", "not judged at this profile")
_NOT_RUN, _NOT_JUDGED = VERDICTS[3], VERDICTS[4]
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_ALL_OPS = (*_OPS, "==")


def _holds(op: str, ours: float, other: float, margin: float) -> bool:
    """The direction ``ours op other`` beyond (``>``, ``<``) or within (``>=``, ``<=``, ``==``) a noise margin."""
    if op == "==":
        return abs(ours - other) <= margin
    shift = {">": margin, "<": -margin, ">=": -margin, "<=": margin}[op]
    return bool(_OPS[op](ours, other + shift))


@dataclass(frozen=True)
class Claim:
    """One claim of a source: a table cell or a sentence.

    Args:
        claim: what the source says, with where (``"Table I, LIVE, ST Norm-A SROCC"``).
        key: dotted key of ``metrics.json`` holding our number.
        paper: the source's number (``None`` for a sentence without one).
        tol: absolute tolerance for "reproduced".
        direction: ``(op, other)`` with op in ``< <= > >= ==`` and other a number or a
            dotted metrics key: the claim's direction, e.g. ``(">", "resnet.srocc")``
            (``==``: a tie, within ``margin``).
        margin: noise margin of the direction (number >= 0 or dotted metrics key); 0 by default.
        value_profiles: profiles at which ``paper ± tol`` is judged.
    """

    claim: str
    key: str
    paper: float | str | None = None
    tol: float | None = None
    direction: tuple[str, float | str] | None = None
    value_profiles: tuple[str, ...] = ("full",)
    margin: float | str | None = None

    def __post_init__(self) -> None:
        if self.direction is not None and self.direction[0] not in _ALL_OPS:
            raise ValueError(f"direction operator {self.direction[0]!r} not in {list(_ALL_OPS)}")
        if self.margin is not None:
            if self.direction is None:
                raise ValueError(f"claim {self.claim!r}: a margin needs a direction")
            if not isinstance(self.margin, str) and not (isinstance(self.margin, (int, float))
                                                         and self.margin >= 0):
                raise ValueError(f"claim {self.claim!r}: margin must be a number >= 0 or a metrics key, "
                                 f"got {self.margin!r}")
        if self.direction is not None and self.direction[0] == "==" and self.margin is None:
            raise ValueError(f"claim {self.claim!r}: a tie (==) needs a margin")
        if self.tol is not None and not isinstance(self.paper, (int, float)):
            raise ValueError(f"claim {self.claim!r}: tol needs a numeric paper value")
        if self.tol is None and self.direction is None:
            raise ValueError(f"claim {self.claim!r} needs tol (a value to match) or direction (or both)")


def lookup(metrics: Mapping[str, Any], key: str) -> Any:
    node: Any = metrics
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def judge(claim: Claim, metrics: Mapping[str, Any], profile: str) -> tuple[Any, str]:
    """Return (our value, verdict) for one claim."""
    ours = lookup(metrics, claim.key)
    if ours is None or (isinstance(ours, float) and math.isnan(ours)):
        return None, _NOT_RUN
    value_ok = None
    if claim.tol is not None and profile in claim.value_profiles:
        value_ok = abs(float(ours) - float(claim.paper)) <= claim.tol
    direction_ok = None
    if claim.direction is not None:
        op, other = claim.direction
        other_v = lookup(metrics, other) if isinstance(other, str) else other
        if other_v is None:
            return ours, _NOT_RUN
        margin = claim.margin if claim.margin is not None else 0.0
        if isinstance(margin, str):
            margin = lookup(metrics, margin)
            if margin is None:
                return ours, _NOT_RUN
        direction_ok = _holds(op, float(ours), float(other_v), abs(float(margin)))
    if value_ok:
        return ours, VERDICTS[0]
    if direction_ok is True:
        return ours, VERDICTS[0] if claim.tol is None else VERDICTS[1]
    if value_ok is None and direction_ok is None:
        return ours, _NOT_JUDGED
    return ours, VERDICTS[2]


def scorecard(claims: Sequence[Claim], metrics: Mapping[str, Any], profile: str):
    """The scorecard as a pandas DataFrame (claim, paper, ours, profile, verdict)."""
    import pandas as pd

    rows = []
    for c in claims:
        ours, verdict = judge(c, metrics, profile)
        expect = ""
        if c.direction is not None:
            op, other = c.direction
            expect = f"{op} {other}"
            if c.margin is not None:
                expect += f" (margin {c.margin})"
        rows.append({"claim": c.claim, "paper": c.paper if c.paper is not None else "",
                     "expected": expect, "ours": _fmt(ours), "profile": profile, "verdict": verdict})
    return pd.DataFrame(rows)


def summary(table) -> dict[str, int]:
    """Counts of each verdict (for ``metrics.json``)."""
    return {v: int((table["verdict"] == v).sum()) for v in VERDICTS}


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)
