"""Smoke-run checks of the denoising chapter: the projection is exact, the denoisers learn, ObsAtk hurts
more than random noise of the same norm, the checks pass, the bookkeeping is whole."""
import math


def noisy_psnr(gamma: float) -> float:
    """PSNR (dB) of an image with Gaussian noise of standard deviation ``gamma``/255, before clipping."""
    return 20 * math.log10(255 / gamma)


def check(m: dict) -> None:
    th = m["theorem"]
    assert th["max_error_outside"] < 1e-5 and th["max_error_inside"] < 1e-5, th
    for part in ("gray", "colour"):
        for kind in ("nt", "vat", "hat"):
            for g, node in m[part][kind].items():
                for col in ("N", "U", "Atk-3", "Atk-5", "Atk-7"):
                    assert col in node, (part, kind, g, col)
                # every denoiser removes noise: at least 1.5 dB above the noisy observation on Gaussian noise
                gamma = float(g[1:].replace("p", "."))
                assert node["N"]["mean"] > noisy_psnr(gamma) + 1.5, (part, kind, g, node["N"]["mean"])
                # the attack's search beats random zero-mean noise of the same norm at every budget
                for e in ("3", "5", "7"):
                    assert node[f"Atk-{e}"]["mean"] < node[f"rand-{e}"]["mean"] - 0.5, (part, kind, g, e)
        nt = m[part]["nt"]["g15"]
        assert nt["Atk-7"]["mean"] < nt["N"]["mean"] - 0.5, f"ObsAtk-7/255 should cost the NT denoiser dB ({part})"
    for kind in ("nt", "hat"):
        assert m["checks"][f"{kind}_ok"] == 1, m["checks"][kind]
        conv = m["convergence"][kind]
        assert all(v < m["gray"][kind]["g15"]["N"]["mean"] for v in conv.values()), conv
    assert set(m["unseen"]) >= {"NT", "vAT", "HAT", "noisy input"}
    # the Gaussian-trained denoisers still clean the strongest stand-in for sensor noise
    pg = "poisson-gaussian"
    assert m["unseen"]["NT"][pg] > m["unseen"]["noisy input"][pg] + 1.0, m["unseen"]
    assert set(m["figure"]) >= {"nt_gauss", "nt_attacked", "hat_attacked"}
    assert sum(m["scorecard"].values()) >= 30
