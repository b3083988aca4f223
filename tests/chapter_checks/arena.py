"""Smoke-run checks of the arena chapter: every defence trained and judged, intervals that contain their point,
a worst case no better than clean, costs measured, LWTA's randomness seen, and a complete scorecard."""
import math

DEFENCES = ("plain", "at", "stnorm", "lwta", "denoise", "robustblock", "aat", "r", "at_label")


def _num(v, where):
    assert isinstance(v, (int, float)) and math.isfinite(v), f"{where} is not a finite number: {v!r}"
    return v


def check(m: dict) -> None:
    a = m["arena"]
    assert set(a) == set(DEFENCES), sorted(a)
    for n in DEFENCES:
        r = a[n]
        c = r["clean"]
        assert _num(c["low"], n) <= _num(c["srocc"], n) <= _num(c["high"], n), (n, c)
        assert r["worst"], n
        for e, w in r["worst"].items():
            assert w["low"] <= w["srocc"] <= w["high"], (n, e, w)
            assert w["r_low"] <= _num(w["r_score"], f"{n}.{e}.r_score") <= w["r_high"], (n, e, w)
            # the audit's worst SROCC is the minimum over its aims and single attacks, the ranking aim included
            assert w["worst_srocc"] <= w["srocc"] + 1e-9, (n, e, w)
            assert sum(w["wins"].values()) == m["data"]["n_test"], (n, e, w["wins"])
        # every defence met FGSM, PGD, APGD and Square in both directions at every budget
        for e, atk in r["attacks"].items():
            assert {f"{f} {d}" for f in ("FGSM", "PGD", "APGD", "Square") for d in ("up", "down")} <= set(atk), (n, e)
        assert r["verdict"], n
        assert _num(r["cost_ratio"], f"{n}.cost_ratio") > 0
        assert m["train"][n]["cpu_s"] > 0
    assert a["plain"]["cost_ratio"] == 1.0
    # the adaptive options were used: EOT for LWTA (and only for it)
    assert a["lwta"]["eot"] > 1 and a["plain"]["eot"] == 1, (a["lwta"]["eot"], a["plain"]["eot"])
    # LWTA samples at test time: the randomness check must see it (that is why it is attacked with EOT)
    assert "randomness" in a["lwta"]["flags"], a["lwta"]["flags"]
    assert "randomness" not in a["plain"]["flags"], a["plain"]["flags"]
    # adversarial training costs more than plain training: a PGD attack on every batch means more forward passes per
    # training image (counted, so this cannot flip by timing noise; the CPU-time ratio is only required to be > 0)
    b = m["budget"]
    assert a["plain"]["pass_ratio"] == 1.0 and 0 < m["train"]["plain"]["passes"] <= b["epochs"] + 1e-9
    for n in ("at", "r", "at_label"):  # the attack's steps on every training image plus the training step, at least
        assert a[n]["pass_ratio"] >= 1.0 + b["train_steps"] - 1e-9, (n, a[n]["pass_ratio"])
    assert a["aat"]["pass_ratio"] > 1.0, a["aat"]["pass_ratio"]  # AAT attacks the images that are not anchors
    # the architecture defences train like plain training: same passes
    for n in ("stnorm", "lwta", "denoise", "robustblock"):
        assert a[n]["pass_ratio"] == 1.0, (n, a[n]["pass_ratio"])
    # BPDA through ST Norm's threshold reaches the pixels (robustbook.models.bpda_soft_threshold): no zero-gradient flag
    assert "zero gradients" not in a["stnorm"]["flags"], a["stnorm"]["flags"]
    # the suite hurts the undefended model: its worst case is below its clean SROCC
    for e, w in a["plain"]["worst"].items():
        assert w["worst_srocc"] < a["plain"]["clean"]["srocc"], (e, w["worst_srocc"], a["plain"]["clean"])
    sc = m["scorecard"]
    assert sum(sc.values()) == 14, sc
    assert m["scorecard_by_source"]["000"]["of"] == 6
