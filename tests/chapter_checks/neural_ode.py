"""Smoke-run checks of the neural-ODE chapter (source 003, ch. 3): the flows behave as the theorems say,
the models learnt, and every robustness number is internally consistent."""

TABLE_MODELS = {"t31": {"cnn", "ode"}, "t32": {"cnn", "ode", "tisode"},
                "t34": {"cnn_fdn", "tis_fdn", "cnn_ird", "tis_ird"}, "t37": {"cnn", "ode", "tisode"},
                "t38": {"cnn", "ode", "tisode"}, "nfe": {"ode_nfe", "sres_nfe"}}


def _cells(node: dict) -> dict:
    return {k: v for k, v in node.items() if not k.startswith(("checks", "clean"))}


def check(m: dict) -> None:
    f = m["flows"]
    assert f["fan_crossings"] == 0 and f["sandwiched"] == 1, f             # Theorem 3.3.1, Fig. 3.2
    assert f["sandwich_deviation"] <= f["sandwich_bound"], f
    assert f["residual_crossings"] > 0 and f["linear_flow_crossings"] == 0, f
    assert f["time_shift_error_autonomous"] < 1e-5 < 1e-3 < f["time_shift_error_time_dependent"], f   # eq. (3.3)
    for name in ("ode", "tisode"):
        g = m["gronwall"][name]
        assert g["lipschitz"] > 0 and g["max_ratio"] <= 1.0 + 1e-6, g        # Theorem 3.7.1 holds
    assert m["toy"]["ode"]["test_acc"] > 0.85, m["toy"]
    assert m["toy"]["tisode"]["lss"] < m["toy"]["ode"]["lss"], m["toy"]     # the steady-state loss worked
    for arch, widths in m["params"].items():                                 # ODEnet and CNN sizes close
        assert widths["w64"]["rel_diff"] < 0.1 and widths["w64"]["tisode"] == widths["w64"]["cnn"], (arch, widths)

    # the models learnt something (10 classes: chance is 10 %)
    for model in ("cnn", "ode"):
        assert m["t31"]["mnist"][model]["clean"]["rob"] > 25, (model, m["t31"]["mnist"][model]["clean"])

    # every table, every model: accuracies are percentages, the worst case is below every attack alone,
    # and the attacked images passed the sanity checks (no NaN, in [0, 1], within the budget)
    for table, models in TABLE_MODELS.items():
        for ds, node in m[table].items():
            assert set(node) == models, (table, ds, sorted(node))
            for model, cells in node.items():
                assert cells["clean"]["oc"] == 100.0 and 0 <= cells["clean"]["rob"] <= 100
                body = _cells(cells)
                assert body, (table, ds, model)
                for name, c in body.items():
                    assert 0 <= c["rob"] <= c["oc"] + 1e-9 <= 100 + 1e-9, (table, ds, model, name, c)
                for name, c in body.items():
                    if name.startswith("worst_"):
                        budget = name[len("worst_"):]
                        alone = [v["rob"] for k, v in body.items() if k.endswith("_" + budget) and k != name]
                        assert alone and c["rob"] <= min(alone) + 1e-9, (table, ds, model, name)
                for name, c in cells.items():
                    if name.startswith("checks"):
                        assert c["nan"] == 0 and c["min"] >= 0 and c["max"] <= 1, (table, ds, model, name, c)
                        assert c["linf"] <= c["eps"] + 1e-6, (table, ds, model, name, c)
            if table == "t34":
                assert any(k.startswith("pgd_eot") for k in node["cnn_ird"]), "IRd was not attacked with EOT"
    assert m["checks"]["problems"] == 0

    # red flags: randomised models are detected (and only they), no model masks its gradients
    ds = next(iter(k for k in m["checks"] if isinstance(m["checks"][k], dict)))
    for model, c in m["checks"][ds].items():
        if isinstance(c, dict) and "random_forward" in c:
            assert c["random_forward"] == int(model.endswith("_ird")), (model, c)
            assert c["zero_grad_frac"] == 0.0, (model, c)

    # the mechanism numbers exist and are finite
    for ds, node in m["mechanism"].items():
        for model, v in node.items():
            assert v["amplification"] > 0, (ds, model, v)

    # attack strength: the step sweep and the black-box check ran at a budget with accuracy left to lose
    for name in ("ode", "tisode"):
        s = m["checks"][ds]["strength"][name]
        steps = sorted((k for k in s if k.startswith("pgd")), key=lambda k: int(k[3:]))
        assert len(steps) == 3 and 0 < s["eps"], s
        assert all(0 <= s[k] <= 100 for k in steps + ["square"]), s
        assert s["more_steps_gain"] == s[steps[1]] - s[steps[2]], s
