"""Smoke-run checks of the BiRQA chapter: training learnt, attacks bite, Theorem 1 holds on every batch."""
import math


def check(m: dict) -> None:
    assert m["fig5"]["violations"] == 0, f"Theorem 1's bound was exceeded on {m['fig5']['violations']} batches"
    assert m["fig5"]["iterations"] >= 1 and m["fig5"]["max_ratio"] <= 1 + 1e-9
    assert math.isfinite(m["fig5"]["eta_max"]) and m["fig5"]["eta_max"] >= 0
    t3 = m["t3"]
    assert t3["base_birqa"]["clean"] > 0.3, f"base BiRQA did not learn (clean SROCC {t3['base_birqa']['clean']:.3f})"
    spread = t3["base_birqa"]["pred_std"] / m["data"]["test_label_std"]
    assert spread > 0.2, f"base BiRQA's predictions span {spread:.2f} of the labels' spread: not trained to scale"
    # the attacker raises scores: gradient ascent from the clean image (C&W-style PGD, no random start) must succeed
    assert t3["shift"]["base_birqa"]["cw"] > 0, "the C&W-style attack did not raise the base model's scores"
    assert t3["worst"]["base_birqa"] <= t3["base_birqa"]["clean"] + 1e-9
    for key in ("r_birqa", "at_birqa", "aat_birqa"):
        assert key in t3 and t3["minutes"][key] >= t3["minutes"]["base_birqa"]
    assert 0 < m["params"]["birqa"] < 5e6
    assert m["speed"]["birqa"] > 0 and m["speed"]["lpips"] > 0
    assert sum(m["scorecard"].values()) >= 55  # every claim of the source gets a row
    # FACPA (a trained generator) is a column of Table 3 and stays inside the L-infinity budget by construction
    assert "facpa" in t3["base_birqa"] and -1 <= t3["base_birqa"]["facpa"] <= 1
    assert m["speed"]["topiq_like"] > 0 and m["params"]["topiq_like"] > 0
    assert m["t9"]["defences_run"] == 0  # Table 9's purification defences are not run (a "not reproduced" row)
