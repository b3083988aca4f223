"""Smoke-run checks of the RobustBlock chapter: the orthogonality facts, every table's numbers,
budgets of every attack, exact pruning shares and the scorecard's completeness."""
import math

MODELS = ("linearity", "dbcnn", "tres")
DEFENCES = ("vanilla", "block", "at", "nt")


def _num(v, where):
    assert isinstance(v, (int, float)) and math.isfinite(v), f"{where} is not a finite number: {v!r}"
    return v


def check(m: dict) -> None:
    # the Cayley layers are orthogonal, fresh (float64) and trained (float32); a 1-Lipschitz projection stays below 1
    assert m["ortho"]["fresh_max_dev"] < 1e-6, m["ortho"]
    assert m["ortho"]["isometry_max_dev"] < 1e-6, m["ortho"]
    assert m["ortho"]["projection_max_ratio"] <= 1 + 1e-6, m["ortho"]
    assert m["ortho"]["trained_max_dev"] < 1e-4, m["ortho"]
    assert m["ortho"]["plain_range"][1] - m["ortho"]["plain_range"][0] > 1e-2, "the plain conv is orthogonal too?"
    assert all(abs(s - 1) < 1e-4 for s in m["lipschitz"]["block_orthogonal_sigma"]), m["lipschitz"]
    # the main comparison: every model, defence and attack setting, within budget
    for n in MODELS:
        for d in DEFENCES:
            r = m["main"][n][d]
            _num(r["clean"]["srocc"], f"main.{n}.{d}.clean.srocc")
            for key, rep in r.items():
                if key == "clean" or key.endswith("_mean"):
                    continue
                for k in ("abs_gain", "r_score", "r_score_low", "r_score_high", "srocc"):
                    _num(rep[k], f"main.{n}.{d}.{key}.{k}")
                assert rep["r_score_low"] <= rep["r_score"] <= rep["r_score_high"], (n, d, key)
                assert rep["nan"] == 0 and rep["out_of_box"] == 0, (n, d, key, rep)
                if key.startswith("pgd"):
                    assert rep["linf"] <= float(key[3:].replace("p", ".")) / 255 + 1e-6, (n, d, key, rep["linf"])
                if key.startswith("uap"):
                    assert rep["linf"] <= float(key[3:].replace("p", ".")) * m["budgets"]["uap_eps"] + 1e-6, (n, d, key)
        # a score-raising PGD attack raises the score on average on the unmodified models
        assert m["main"][n]["vanilla"]["pgd_mean"]["abs_gain"] > 0, (n, m["main"][n]["vanilla"]["pgd_mean"])
    # pruning removes exactly the requested share of filters
    for k, row in m["pruning"].items():
        share = float(k[1:].replace("p", "."))
        assert abs(row["zero_filters"] - share) < 0.03, (k, row["zero_filters"])
    for k, row in m["positions"].items():
        _num(row["ms"], f"positions.{k}.ms")
        assert 0 < row["compression"] <= 1, (k, row)
    for k in m["kinds"].values():
        _num(k["abs_gain_auc"], "kinds.abs_gain_auc")
        _num(k["r_score_auc"], "kinds.r_score_auc")
    assert all(v["ratio"] > 0 for v in m["overhead"].values())
    assert set(m["checks"]) == set(MODELS) and all(set(m["checks"][n]) == set(DEFENCES) for n in MODELS)
    sc = m["scorecard"]
    assert sum(sc.values()) >= 30, sc
    # the other pruning criterion (PLS or L2) removes exactly the same share
    alt = m["pruning_alt"]
    assert alt["method"] in ("l2", "pls") and abs(alt["zero_filters"] - alt["share"]) < 0.03, alt
    _num(alt["srocc"], "pruning_alt.srocc")
    for k in ("main_best_tradeoff", "prune_max_minus_main_srocc_drop"):
        _num(m["derived"][k], f"derived.{k}")
