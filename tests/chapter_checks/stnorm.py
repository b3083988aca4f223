"""Smoke-run checks of the ST Norm chapter: every table's numbers are there, attacks stay in budget and hurt,
the defences are attacked as they must be (EOT on the random LWTA), and the Lipschitz facts hold."""
import math

METHODS = ("resnet", "lwta", "denoise", "at", "stnorm")
METRICS = ("srocc", "plcc", "mse")


def _num(v, where):
    assert isinstance(v, (int, float)) and math.isfinite(v), f"{where} is not a finite number: {v!r}"
    return v


def _cell(m, path):
    node = m
    for p in path.split("."):
        assert isinstance(node, dict) and p in node, f"metrics.json lacks {path}"
        node = node[p]
    for met in METRICS:
        _num(node[met], f"{path}.{met}")
    return node


def check(m: dict) -> None:
    # every table and figure of the source has its numbers
    for ds in ("live", "livec"):
        for k in METHODS:
            for cond in ("C", "A"):
                _cell(m, f"tab1.{ds}.{k}.{cond}")
        _cell(m, f"tab1.{ds}.lwta.A_noeot")
        for c in ("both", "norm_only", "thr_only", "none"):
            _cell(m, f"fig3.{ds}.{c}.C")
            _cell(m, f"fig3.{ds}.{c}.A")
    for lam in m["tab2"].values():
        for cond in ("clean", "eps1", "eps2"):
            _num(lam[cond]["srocc"], "tab2")
    assert {"lam0p1", "lam0p2", "lam0p3"} <= set(m["tab2"]), sorted(m["tab2"])
    for ds in ("live", "livec", "koniq"):
        _cell(m, f"tab3.{ds}.A")
        _cell(m, f"tab3.{ds}.A_STE")
    for k in METHODS:
        _cell(m, f"fig4.{k}")
        _cell(m, f"fig5.{k}.C")
        _cell(m, f"fig5.{k}.A")
        for ds in ("livec", "koniq"):
            _cell(m, f"tab4.{k}.{ds}.A")
    for k in ("resnet", "stnorm"):
        for c in ("clean", "fgsm", "square"):
            _cell(m, f"strength.{k}.{c}")
    assert "pgd" + str(min(int(c[3:]) for c in m["strength"]["stnorm"] if c[3:].isdigit())) + "_ste" in m["strength"]["stnorm"]

    # an FGSM step of the model's own loss raises that loss (first order): MSE grows for the deterministic models
    for ds in ("live", "livec"):
        for k in ("resnet", "denoise", "at", "stnorm"):
            c, a = m["tab1"][ds][k]["C"]["mse"], m["tab1"][ds][k]["A"]["mse"]
            assert a > c, f"FGSM did not raise the MSE of {k} on {ds}: clean {c:.4g}, attacked {a:.4g}"

    # the AutoAttack-style sanity checks of every attacked set
    chk = m["checks"]["attacks"]
    assert chk["nan"] == 0 and chk["out_of_box"] == 0, chk
    assert chk["max_excess_linf"] <= 1e-6, chk
    assert m["checks"]["lwta_random"] == 1, "LWTA must be random at test time (that is why its attacks use EOT)"

    # the Lipschitz facts of the page: the soft threshold is 1-Lipschitz, the L∞ normalisation is not
    maps = m["lipschitz"]["maps"]
    assert max(maps["threshold"]) <= 1 + 1e-3, maps["threshold"]
    small = maps["scales"].index(min(maps["scales"]))
    assert maps["linf"][small] > 1.5, f"the L∞ normalisation should amplify at small scale: {maps['linf']}"
    for k in ("resnet", "stnorm", "at"):
        assert all(v > 0 for v in m["lipschitz"][k]["local"]), k

    # feature shift: distances are positive and the three variants were measured on the same pairs
    for k in ("bn", "plugged", "trained"):
        assert _num(m["eds"][k]["mean"], f"eds.{k}") > 0
        assert len(m["eds"][k]["pairs_mean"]) == len(m["eds"]["bn"]["pairs_mean"])

    # the stand-ins hold disjoint photographs (cross-data-set tests see unseen content)
    photos = [set(m["data"][ds]["photos"]) for ds in ("live", "livec", "koniq")]
    if all(photos):
        assert not (photos[0] & photos[1] or photos[0] & photos[2] or photos[1] & photos[2]), photos

    # the scorecard judged every claim
    card = m["scorecard"]
    assert sum(card.values()) >= 150, card
    assert card["reproduced"] + card["direction only"] + card["not reproduced"] > 0, card
    for ds in ("live", "livec"):
        for k in METHODS:
            _num(m["train"][ds][k]["wall_s"], f"train.{ds}.{k}.wall_s")
