"""Smoke-run checks of chapter 0: the model learnt something, and PGD collapses it."""


def check(m: dict) -> None:
    clean = m["clean"]["srocc"]
    worst = min(m["pgd"][k]["srocc"] for k in m["pgd"])
    assert clean > 0.3, f"the smoke model did not learn (clean SROCC {clean:.3f})"
    assert worst < clean - 0.4, f"PGD did not collapse SROCC: clean {clean:.3f}, PGD {worst:.3f}"
    for attack in ("fgsm", "pgd"):
        for rep in m[attack].values():
            assert rep["nan"] == 0 and 0 <= rep["min"] and rep["max"] <= 1
    for name in ("fgsm", "pgd"):
        for e, rep in m[name].items():
            assert rep["linf"] <= float(e[3:]) / 255 + 1e-6, (name, e, rep["linf"])
