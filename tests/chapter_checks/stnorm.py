"""Smoke-run checks of the ST Norm chapter: numbers that can fail if the chapter or the library it uses breaks.

Every table's numbers are finite; attacks stay in budget and raise the loss they maximise; the per-image
worst case is at least as bad as every single attack; the defences are attacked as they must be (EOT on the
random LWTA, BPDA because ST Norm's gradient has exact zeros); the Lipschitz facts of the page hold.
"""
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
    # every table and figure of the source has finite numbers (a NaN prediction or a dropped key fails here)
    for ds in ("live", "livec"):
        for k in METHODS:
            for cond in ("C", "A"):
                _cell(m, f"tab1.{ds}.{k}.{cond}")
        _cell(m, f"tab1.{ds}.lwta.A_noeot")
        for c in ("both", "norm_only", "thr_only", "none"):
            _cell(m, f"fig3.{ds}.{c}.A")
    for lam in ("lam0p1", "lam0p2", "lam0p3"):
        for cond in ("clean", "eps1", "eps2"):
            _cell(m, f"tab2.{lam}.{cond}")
    for ds in ("live", "livec", "koniq"):
        _cell(m, f"tab3.{ds}.A_STE")
    for k in METHODS:
        _cell(m, f"fig4.{k}")
        _cell(m, f"fig5.{k}.A")
        for ds in ("livec", "koniq"):
            _cell(m, f"tab4.{k}.{ds}.A")
    for lam in ("lam0", "lam0p1", "lam0p2"):
        _cell(m, f"plugged.{lam}.C")
        _cell(m, f"plugged.{lam}.A")

    # an FGSM step of the model's own loss raises that loss (first order): MSE grows for the deterministic models
    for ds in ("live", "livec"):
        for k in ("resnet", "denoise", "at", "stnorm"):
            c, a = m["tab1"][ds][k]["C"]["mse"], m["tab1"][ds][k]["A"]["mse"]
            assert a > c, f"FGSM did not raise the MSE of {k} on {ds}: clean {c:.4g}, attacked {a:.4g}"

    # the AutoAttack-style sanity checks of every attacked set
    chk = m["checks"]["attacks"]
    assert chk["nan"] == 0 and chk["out_of_box"] == 0, chk
    assert chk["max_excess_linf"] <= 1e-6, chk
    assert m["checks"]["random"]["lwta"] == 1, "LWTA must be random at test time (that is why its attacks use EOT)"
    assert m["checks"]["random"]["stnorm"] == 0 and m["checks"]["random"]["resnet"] == 0
    # the soft threshold's flat band zeroes input-gradient entries that the plain ResNet keeps
    z = m["checks"]["zero_grad_frac"]
    assert z["stnorm"] > z["resnet"], f"ST Norm should have more exactly-zero input gradients than ResNet: {z}"

    # strength check: every attack stays in budget, and the per-image worst case (largest squared error to the
    # label) has a mean squared error at least that of every single attack (it picks the max per image)
    for k in ("resnet", "stnorm"):
        row = m["strength"][k]
        attacks_ = [c for c, v in row.items() if isinstance(v, dict) and "mse" in v and c not in ("clean", "worst")]
        assert "square" in attacks_ and any(c.startswith("apgd") for c in attacks_), attacks_
        for c in attacks_:
            assert row["worst"]["mse"] >= row[c]["mse"] - 1e-9, (k, c, row["worst"]["mse"], row[c]["mse"])
        assert row["worst"]["mse"] >= row["clean"]["mse"] - 1e-9
        flagged = m["strength_checks"][k]["flagged"]
        assert not [f for f in flagged if f.startswith("perturbation")], flagged
    assert any(c.endswith("_bpda") for c in m["strength"]["stnorm"]), "the BPDA attack on ST Norm is missing"

    # the Lipschitz facts of the page: the soft threshold is 1-Lipschitz, the L∞ normalisation is not
    maps = m["lipschitz"]["maps"]
    assert max(maps["threshold"]) <= 1 + 1e-3, maps["threshold"]
    small = maps["scales"].index(min(maps["scales"]))
    assert maps["linf"][small] > 1.5, f"the L∞ normalisation should amplify at small scale: {maps['linf']}"

    # feature shift: distances are positive
    for k in ("bn", "plugged", "trained"):
        assert _num(m["eds"][k]["mean"], f"eds.{k}") > 0
        _num(m["fig2a"][k]["rel_shift_floor"], f"fig2a.{k}.rel_shift_floor")

    # the scorecard judged claims, and numeric-only claims read "not judged" (not "not run") below full
    card = m["scorecard"]
    assert card["reproduced"] + card["direction only"] + card["not reproduced"] > 0, card
    assert card["not judged at this profile"] > 0, card
    for ds in ("live", "livec"):
        for k in METHODS:
            _num(m["train"][ds][k]["cpu_s"], f"train.{ds}.{k}.cpu_s")
