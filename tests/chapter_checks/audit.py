"""Smoke-run checks of the audit chapter: every card is complete, and the suite breaks chapter 0's model."""


def check(m: dict) -> None:
    c0 = m["chapter0"]
    assert c0["clean"]["srocc"] > 0.3, f"chapter 0's model did not learn (clean SROCC {c0['clean']['srocc']:.3f})"
    e = str(max(c0["eps_255"]))
    assert c0["worst_case"][e]["worst_srocc"] < c0["clean"]["srocc"] - 0.3, "the suite did not hurt chapter 0's model"
    for name in ("chapter0", "own", *[k for k in ("stnorm", "linearity", "birqa") if k in m]):
        card = m[name]
        assert card["suite_version"] and card["verdict"], name
        fams = {v["family"] for v in card["attacks"].values()}
        assert len(card["attacks"]) == len(fams) * 2 * len(card["eps_255"]), name
        for v in card["attacks"].values():
            assert not v["perturbation"]["flagged"], (name, v["family"], v["perturbation"]["message"])
        clean = card["clean"]["srocc"]
        for w in card["worst_case"].values():  # an objective the attacks pursue, so the clean image rarely wins all
            assert w["up"]["abs_gain"] is None or w["up"]["abs_gain"] >= 0, name
            assert w["down"]["abs_gain"] is None or w["down"]["abs_gain"] <= 0, name
        assert clean is not None, name
        assert set(card["checks"]["checks"]) >= {"randomness", "zero gradients", "black-box beats white-box",
                                                 "more PGD steps help", "perturbation"}, name
    assert m["own"]["model"]["label"].endswith("make")
    rank = c0["worst_case"][e]["rank"]["srocc"]
    assert rank < c0["clean"]["srocc"], f"the worst case against the ranking did not lower SROCC ({rank:.3f})"
    if "stnorm" in m:  # BPDA through ST Norm's threshold (and the ReLU reading its zeros) reaches the pixels
        z = m["stnorm_zero_gradients"]
        assert z["bpda"] < z["true"] and z["bpda"] < 0.1, z
        assert not m["stnorm"]["checks"]["checks"]["zero gradients"]["flagged"], m["stnorm"]["checks"]["flagged"]
    assert m["scorecard"] and sum(m["scorecard"].values()) == 3, m.get("scorecard")
