"""Smoke-run checks of the denoising chapter: the projection is exact, ObsAtk hurts, the bookkeeping is whole."""


def check(m: dict) -> None:
    th = m["theorem"]
    assert th["max_error_outside"] < 1e-5 and th["max_error_inside"] < 1e-5, th
    for part in ("gray", "colour"):
        for kind in ("nt", "vat", "hat"):
            for g, node in m[part][kind].items():
                for col in ("N", "Atk-3", "Atk-5", "Atk-7"):
                    assert col in node, (part, kind, g, col)
                # the attack's search beats random zero-mean noise of the same norm at every budget
                for e in ("3", "5", "7"):
                    assert node[f"Atk-{e}"]["mean"] < node[f"rand-{e}"]["mean"], (part, kind, g, e)
    nt = m["gray"]["nt"]["g15"]
    assert nt["N"]["mean"] > 20.0, f"the smoke NT denoiser did not learn (N: {nt['N']['mean']:.2f} dB)"
    assert nt["Atk-7"]["mean"] < nt["N"]["mean"] - 0.5, "ObsAtk-7/255 should cost the NT denoiser dB"
    for kind in ("nt", "hat"):
        assert m["checks"][f"{kind}_ok"] == 1, m["checks"][kind]
    assert set(m["unseen"]) >= {"NT", "vAT", "HAT", "noisy input"}
    assert sum(m["scorecard"].values()) >= 30
