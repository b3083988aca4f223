"""Smoke-run checks of the neural-ODE chapter (source 003, ch. 3): the flows behave as the theorems say,
the models learnt, and every robustness number is consistent with the others. Each assertion can fail:
none restates how a number was computed."""

TABLE_MODELS = {"t31": {"cnn", "ode"}, "t32": {"cnn", "ode", "tisode"},
                "t34": {"cnn", "cnn_fdn", "tis_fdn", "cnn_ird", "tis_ird"}, "t37": {"cnn", "ode", "tisode"},
                "t38": {"cnn", "ode", "tisode"}, "nfe": {"ode_nfe", "sres_nfe"}}


def _attack_cells(node: dict) -> dict:
    return {k: v for k, v in node.items() if not k.startswith(("checks", "clean"))}


#: the clean accuracy (%) every MNIST model of Tables 3.1-3.3 must beat, per profile: smoke (14 px, 600 images,
#: 3 epochs, 80 test images: 17.5 % = 14 correct, p ≈ 0.03 at the 10 % chance rate; a smoke run reaches 25-33 %),
#: quick (28 px, 4,000 images, 3+1 epochs at width 16) and full (the thesis: about 99.5 %)
LEARNT = {"smoke": 17.5, "quick": 75.0, "full": 98.0}


def check(m: dict, profile: str = "smoke") -> None:
    f = m["flows"]
    assert f["fan_crossings"] == 0 and f["sandwiched"] == 1, f             # Theorem 3.3.1, Fig. 3.2
    assert f["sandwich_deviation"] <= f["sandwich_bound"], f
    assert f["residual_crossings"] > 0 and f["linear_flow_crossings"] == 0, f
    assert f["euler_swaps_model_step"] == 0 < f["euler_swaps_large_step"], f   # the Euler map keeps order only
    assert f["euler_h_model"] * f["euler_C"] < 1 < f["euler_h_large"] * f["euler_C"], f  # while h·C < 1
    assert f["time_shift_error_autonomous"] < 1e-5 < 1e-3 < f["time_shift_error_time_dependent"], f   # eq. (3.3)
    for name in ("ode", "tisode"):
        g = m["gronwall"][name]
        assert g["max_ratio"] <= 1.0 + 1e-6, g                               # Theorem 3.7.1 with a certified C
        assert 0 < g["lipschitz_sampled"] <= g["lipschitz"] * (1 + 1e-9), g   # sampled Jacobians never exceed it
        t = m["toy"][name]
        assert t["min_det"] > 0 or t["h_times_C"] >= 1, t                    # h·C < 1 forces det(I + hJ) > 0
    assert m["toy"]["ode"]["test_acc"] > 0.85, m["toy"]
    assert m["toy"]["tisode"]["lss"] < m["toy"]["ode"]["lss"], m["toy"]     # the steady-state loss worked
    for arch, widths in m["params"].items():                                 # ODEnet and CNN sizes close
        assert widths["w64"]["rel_diff"] < 0.1 and widths["w64"]["tisode"] == widths["w64"]["cnn"], (arch, widths)
    assert m["data"]["mnist"]["side"] in (14, 28) and m["data"]["mnist"]["n_train"] > 0, m["data"]

    # the MNIST models learnt the task, to the level the profile's budget reaches (mean over seeds)
    for table, model in (("t31", "cnn"), ("t31", "ode"), ("t32", "cnn"), ("t32", "ode"), ("t32", "tisode")):
        acc = m[table]["mnist"][model]["clean"]["rob"]
        floor = LEARNT[profile]
        assert acc > floor, f"{table} mnist {model}: clean accuracy {acc:.1f} % ({profile}: must be > {floor})"

    # every table, every model: attacked accuracy never above clean accuracy, the worst case over every attack
    # never above the worst case over the thesis' attacks, which is never above any of them alone; the attacked
    # images passed the sanity checks (no NaN, in [0, 1], within the budget)
    for table, models in TABLE_MODELS.items():
        if table not in m:                                   # quick turns the matched-NFE comparison off
            assert profile != "smoke", f"{table} did not run at smoke"
            continue
        for ds, node in m[table].items():
            assert set(node) == models, (table, ds, sorted(node))
            for model, cells in node.items():
                clean = cells["clean"]["rob"]
                body = _attack_cells(cells)
                assert body, (table, ds, model)
                for name, c in body.items():
                    assert 0 <= c["rob"] <= clean + 1e-9 and 0 <= c["oc"] <= 100 + 1e-9, (table, ds, model, name, c)
                for name, c in body.items():
                    if name.startswith("worst_thesis_"):
                        budget = name[len("worst_thesis_"):]
                        alone = [v["rob"] for k, v in body.items() if k.endswith("_" + budget)
                                 and not k.startswith("worst")]
                        assert alone and c["rob"] <= min(alone) + 1e-9, (table, ds, model, name)
                        assert body[f"worst_{budget}"]["rob"] <= c["rob"] + 1e-9, (table, ds, model, name)
                for name, c in cells.items():
                    if name.startswith("checks"):
                        assert c["nan"] == 0 and c["min"] >= 0 and c["max"] <= 1, (table, ds, model, name, c)
                        assert c["linf"] <= c["eps"] + 1e-6, (table, ds, model, name, c)
            if table == "t34":
                assert any(k.startswith("pgd_eot") for k in node["cnn_ird"]), "IRd was not attacked with EOT"
    assert m["problems"] == 0, m["problems"]

    # red flags: the randomised models are detected (and only they); no deterministic model masks its gradients
    # (IRd's nearest-neighbour resize drops pixels from one draw's gradient: EOT's mean over draws reaches them)
    for per_model in m["checks"].values():
        for model, rep in per_model.items():
            checks = rep["checks"]
            assert checks["randomness"]["flagged"] == model.endswith("_ird"), (model, checks["randomness"])
            if not model.endswith("_ird"):
                assert not checks["zero gradients"]["flagged"], (model, checks["zero gradients"])

    # the mechanism numbers exist and are positive
    for ds, node in m["mechanism"].items():
        for model, v in node.items():
            assert v["amplification"] > 0, (ds, model, v)

    # attack strength: the sweep ran at a budget with accuracy left to lose, the worst case is below each attack
    for node in m["strength"].values():
        for s in node.values():
            attacks_ = {k: v for k, v in s.items() if k.startswith(("pgd", "apgd", "square"))}
            assert len([k for k in attacks_ if k[3:].isdigit()]) == 3 and 0 < s["eps"], s
            assert all(0 <= v <= 100 for v in attacks_.values()), s
            assert s["worst"] <= min(attacks_.values()) + 1e-9, s
            assert not s["checks"]["checks"]["perturbation"]["flagged"], s["checks"]

    # the ablation trained and measured both versions of eq. (3.5)
    ab = m["ablation"]
    assert {"finetune_spatial", "finetune_none", "scratch_spatial", "scratch_none"} <= set(ab), sorted(ab)
    assert all(0 <= ab[k]["clean_acc"] <= 100 and ab[k]["lss"] >= 0 for k in ab if k != "init"), ab
    assert ab["init"]["lss"] > 0 and ab["init"]["ce"] > 0, ab["init"]
