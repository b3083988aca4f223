"""Smoke-run checks of the CIFS chapter (source 003, ch. 4): eq. (4.1) holds, every model and attack produced
consistent accuracies, the worst case lies below every β_atk, and the analyses are well formed."""


def _pct(v):
    return v is not None and 0.0 <= v <= 100.0


def check(m: dict) -> None:
    assert m["demo"]["relevance_fd_max_error"] < 1e-6, m["demo"]            # relevance = finite differences
    for key, models in m["eval"].items():
        assert {"vanilla", "cas", "cifs"} <= set(models), (key, sorted(models))
        for name, whiches in models.items():
            for which, ev in whiches.items():
                assert _pct(ev["natural"]) and _pct(ev["worst"]), (key, name, which, ev["natural"], ev["worst"])
                for attack, node in ev["attacks"].items():
                    betas = node["beta"]
                    assert betas and all(_pct(v) for v in betas.values()), (key, name, attack, betas)
                    # a point robust in the worst case survived every beta_atk and was clean-correct
                    assert node["worst"] <= min(betas.values()) + 1e-9, (key, name, attack, node)
                    assert max(betas.values()) <= ev["natural"] + 1e-9, (key, name, attack, node)
                    assert ev["worst"] <= node["worst"] + 1e-9
                    every_point = attack in ("FGSM", "PGD-20")                # the top-k / probe tables' attacks
                    assert ("probe" in node) == every_point, (attack, node)      # the others skip wrong points
                    if name == "vanilla":
                        assert list(betas) == ["0"], betas                   # no raw prediction to attack
                        top = node["topk"] if every_point else {"1": 0, "2": 0, "3": 0}
                        assert top["1"] <= top["2"] <= top["3"], top
                    elif which == "last":
                        assert len(betas) > 1, (name, betas)                 # the adaptive attack ran
                        if every_point:
                            assert set(node["probe"]["0"]) == {"P1", "P2"}, node["probe"]
    for key, node in m["aa"].items():
        for name, rep in node.items():
            assert _pct(rep["robust"]) and rep["robust"] <= min(rep["per_attack"].values()) + 1e-9, (key, name, rep)
    for key, node in m["checks"].items():
        for name, rep in node.items():                                      # the attacked images were sane
            assert not any(f.startswith("perturbation") for f in rep["flagged"]), (key, name, rep)
    for node in m["act"].values():
        for name, a in node.items():
            assert 0.0 <= a["nr_freq_adv"] <= 1.0 and 0.0 <= a["frac_active_adv"] <= 1.0, (name, a)
    for node in m["train"].values():
        for name, t in node.items():
            assert 1 <= t["best_epoch"] <= len(t["epochs"]), (name, t["best_epoch"])
            assert all(e["train_loss"] == e["train_loss"] for e in t["epochs"]), name          # no NaN
    normal = m["train"]["fmnist"]["normal"]["epochs"][-1]
    assert normal["clean_acc"] > 0.2, normal                              # clean training learnt (chance: 0.1)
    sc = m["scorecard"]
    assert sum(sc.values()) > 40 and sc["not reproduced"] + sc["direction only"] + sc["reproduced"] > 0, sc
