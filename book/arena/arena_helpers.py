"""Helpers of the arena chapter (``book/arena``): data, the training plan, the ONE evaluation function, the table,
the claims of the sources and the sentences that read a run's numbers.

Everything reusable lives in the library: the defences in :mod:`robustbook.defences`, the attacks in
:mod:`robustbook.attacks`, the worst case and the checks in :func:`robustbook.evaluate.attack_quality`, the
intervals in :mod:`robustbook.metrics`. This module only wires them together for the page.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch
from IPython.display import Markdown, display

from robustbook import defences
from robustbook.audit import run_audit
from robustbook.audit.suite import AuditProfile
from robustbook.cache import cached_state
from robustbook.data.nr_splits import nr_iqa_splits
from robustbook.models import resnet_iqa
from robustbook.scorecard import Claim
from robustbook.seeding import seed_everything

ORDER = defences.names()
LABEL = {n: d.label for n, d in defences.DEFENCES.items()}
#: the audit suite's families the arena runs (UAP and stAdv are left to the audit chapter: time)
FAMILIES = ("FGSM", "PGD", "APGD", "Square")


def ekey(e: float) -> str:
    return "eps" + f"{e:g}".replace(".", "p")


# ---------------------------------------------------------------------------------------------- data
def load_data(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Train and test tensors (scores in [0, 1], 1 = best) and a sentence saying what they are."""
    return nr_iqa_splits(cfg["data_source"], cfg["crop"], cfg["per_photo"], cfg["n_train"], cfg["n_test"],
                         cfg["seed"])


# ---------------------------------------------------------------------------------------------- training
def setup(cfg: Mapping[str, Any]) -> defences.TrainSetup:
    """The budget every defence shares (epochs, optimiser, base loss, training attack)."""
    return defences.TrainSetup(epochs=cfg["epochs"], lr=cfg["lr"], batch_size=cfg["batch_size"], seed=cfg["seed"],
                               loss_alpha=cfg["loss_alpha"], eps=cfg["train_eps"], steps=cfg["train_steps"],
                               lam=cfg["lam"], denoise_stages=tuple(cfg["denoise_stages"]))


def backbone(cfg: Mapping[str, Any]):
    """The one no-reference backbone of every defence: a ResNet IQA regressor of ``robustbook.models``."""
    kw = {"width": cfg["width"], "stem_stride": cfg["stem_stride"]} if cfg["arch"] == "tiny" else {}
    return lambda: resnet_iqa(cfg["arch"], **kw)


def trained(cfg: Mapping[str, Any], name: str, data: dict) -> tuple[torch.nn.Module, dict, bool]:
    """Defence ``name`` on the shared backbone, trained (or loaded from the cache) on the shared data."""
    s = setup(cfg)
    x, y = data["train"]

    def build():
        seed_everything(cfg["seed"])
        return defences.build(name, backbone(cfg), input_size=cfg["crop"], setup=s)

    def train() -> dict:
        model = build()
        out = defences.train(name, model, x, y, s)
        return {**out, "state": model.state_dict()}

    key = {"chapter": "arena", "defence": name, "setup": s.key(), "n_train": len(y),
           **{k: cfg[k] for k in ("data_source", "crop", "per_photo", "arch", "width", "stem_stride")}}
    state, hit = cached_state(f"arena-{name}", key, train)
    model = build()
    model.load_state_dict(state["state"])
    return model.eval(), state, hit


# ---------------------------------------------------------------------------------------------- evaluation
def audit_profile(cfg: Mapping[str, Any], n_train: int) -> AuditProfile:
    """The audit suite's sizes at this chapter's parameters (the suite itself is fixed and versioned)."""
    return AuditProfile("arena-" + str(cfg["attack_steps"]), n_images=0, n_train=n_train, crop=cfg["crop"],
                        per_photo=cfg["per_photo"], pgd_steps=cfg["attack_steps"], pgd_restarts=cfg["restarts"],
                        apgd_steps=cfg["attack_steps"], square_queries=cfg["square_queries"], stadv_steps=1,
                        uap_epochs=1, cw_steps=1, eot_draws=cfg["eot"], n_boot=cfg["bootstrap"],
                        model_checks=cfg["model_checks"], chunk=256)


def evaluate(model: torch.nn.Module, name: str, x: torch.Tensor, y: torch.Tensor, cfg: Mapping[str, Any],
             x_train: torch.Tensor | None = None) -> dict:
    """THE evaluation of one defence: the audit suite (``robustbook.audit.run_audit``, families FGSM, PGD, APGD and
    Square in both directions at every ε) told about the defence (EOT, BPDA). Returns clean SROCC, the per-image
    worst case by ranking at each ε with its interval and R-Score, the checks, the verdict and the attack time."""
    d = defences.DEFENCES[name]
    res = run_audit(model, (x, y, x if x_train is None else x_train), profile=audit_profile(cfg, len(x)),
                    higher_is_better=True, progress=False, bpda=d.bpda, eot=cfg["eot"] if d.randomised else None,
                    seed=cfg["seed"], model_label=LABEL[name], eps_255=tuple(cfg["eps"]), families=FAMILIES)
    r = res.record
    c = r["clean"]
    out: dict[str, Any] = {"clean": {"srocc": c["srocc"], "low": c["srocc_ci"][0], "high": c["srocc_ci"][1],
                                     "plcc": c["plcc"]}, "worst": {}, "attacks": {}}
    for e in cfg["eps"]:
        w = r["worst_case"][str(e)]["rank"]
        out["worst"][ekey(e)] = {"srocc": w["srocc"], "low": w["srocc_ci"][0], "high": w["srocc_ci"][1],
                                 "r_score": w["r_score"], "r_low": w["r_score_ci"][0], "r_high": w["r_score_ci"][1],
                                 "wins": w["wins"], "worst_srocc": r["worst_case"][str(e)]["worst_srocc"]}
        out["attacks"][ekey(e)] = {f"{v['family']} {v['direction']}": v["srocc"] for v in r["attacks"].values()
                                   if v["eps_255"] == e}
    out["flags"] = sorted(r["checks"]["flagged"])
    out["verdict"], out["eot"] = r["verdict"], r["eot"]
    out["checks_text"] = str(res.checks)
    out["eval_s"] = r["wall_time_s"]
    return out


# ---------------------------------------------------------------------------------------------- table and text
def table(m: Mapping[str, Any], eps: list[float]) -> pd.DataFrame:
    """The arena table from metrics.json: clean and worst-case SROCC [95 % CI], R-Score, training cost (CPU time
    and forward passes, each as a ratio to plain training)."""
    def ci(d):
        return f"{d['srocc']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"

    rows = []
    for n in ORDER:
        r = m["arena"][n]
        row = {"defence": LABEL[n], "clean SROCC": ci(r["clean"])}
        for e in eps:
            row[f"worst SROCC {e:g}/255"] = ci(r["worst"][ekey(e)])
        w = r["worst"][ekey(max(eps))]
        row[f"R-Score {max(eps):g}/255"] = f"{w['r_score']:.2f} [{w['r_low']:.2f}, {w['r_high']:.2f}]"
        row["training cost (× plain)"] = f"{r['cost_ratio']:.2f}"
        row["forward passes (× plain)"] = f"{r['pass_ratio']:.1f}"
        row["flags"] = ", ".join(r["flags"]) or "none"
        rows.append(row)
    return pd.DataFrame(rows).set_index("defence")


def holds_up(m: Mapping[str, Any], eps: list[float], at: float | None = None) -> dict[str, list[str]]:
    """Defences whose worst-case SROCC at budget ``at`` (default the largest ε) is above plain training's beyond both
    intervals ("clearly"), above it but with overlapping intervals ("within noise"), or not above it ("no")."""
    k = ekey(max(eps) if at is None else at)
    p = m["arena"]["plain"]["worst"][k]
    out: dict[str, list[str]] = {"clearly": [], "within noise": [], "no": []}
    for n in ORDER[1:]:
        w = m["arena"][n]["worst"][k]
        out["clearly" if w["low"] > p["high"] else "within noise" if w["srocc"] > p["srocc"] else "no"].append(n)
    return out


def say(lines) -> None:
    display(Markdown("**What this run shows.**\n\n" + "\n".join(f"* {line}" for line in lines if line)))


def names_of(ns) -> str:
    ns = [LABEL[n] for n in ns]
    return "none" if not ns else ns[0] if len(ns) == 1 else ", ".join(ns[:-1]) + " and " + ns[-1]


# ---------------------------------------------------------------------------------------------- claims
def claim_eps(eps: list[float]) -> float:
    """The budget the claims are judged at: the smallest. At the largest the suite inverts every model's ranking
    (worst-case SROCC near its floor for all), so differences there are noise, not robustness."""
    return min(eps)


def derive(m: Mapping[str, Any], eps: list[float]) -> dict[str, float]:
    """The comparisons the scorecard judges (at :func:`claim_eps`), from metrics.json."""
    a, k = m["arena"], ekey(claim_eps(eps))
    w = {n: a[n]["worst"][k]["srocc"] for n in ORDER}
    return {
        "stnorm_minus_plain": w["stnorm"] - w["plain"], "stnorm_minus_at": w["stnorm"] - w["at"],
        "stnorm_clean_drop": a["plain"]["clean"]["srocc"] - a["stnorm"]["clean"]["srocc"],
        "at_over_stnorm_cost": a["at"]["cost_ratio"] / a["stnorm"]["cost_ratio"],
        "stnorm_minus_lwta": w["stnorm"] - w["lwta"], "stnorm_minus_denoise": w["stnorm"] - w["denoise"],
        "rb_r_minus_plain": a["robustblock"]["worst"][k]["r_score"] - a["plain"]["worst"][k]["r_score"],
        "rb_minus_plain": w["robustblock"] - w["plain"],
        "rb_clean_drop": a["plain"]["clean"]["srocc"] - a["robustblock"]["clean"]["srocc"],
        "at_over_rb_cost": a["at"]["cost_ratio"] / a["robustblock"]["cost_ratio"],
        "aat_minus_r": w["aat"] - w["r"], "aat_minus_at_label": w["aat"] - w["at_label"],
        "aat_minus_plain": w["aat"] - w["plain"],
        "aat_clean_minus_r": a["aat"]["clean"]["srocc"] - a["r"]["clean"]["srocc"],
    }


def claims(eps: list[float]) -> list[Claim]:
    """The sources' headline claims, re-asked in the arena (directions: same backbone, same data, same budget,
    adaptive attacks). Their numbers are in each chapter's scorecard; here only directions are judged."""
    e = f"{claim_eps(eps):g}/255"
    return [
        Claim(f"000 (ST Norm): ST Norm is more robust than the undefended ResNet (worst-case SROCC, {e})",
              "derived.stnorm_minus_plain", direction=(">", 0.0)),
        Claim(f"000: ST Norm is comparable to adversarial training (worst-case SROCC within 0.05 of AT or above, {e})",
              "derived.stnorm_minus_at", direction=(">=", -0.05)),
        Claim(f"000: ST Norm beats LWTA (with EOT) under attack ({e})", "derived.stnorm_minus_lwta",
              direction=(">", 0.0)),
        Claim(f"000: ST Norm beats feature denoising under attack ({e})", "derived.stnorm_minus_denoise",
              direction=(">", 0.0)),
        Claim("000: clean accuracy drops only slightly with ST Norm (clean SROCC drop < 0.1)",
              "derived.stnorm_clean_drop", direction=("<", 0.1)),
        Claim("000: ST Norm costs far less training than adversarial training (cost of AT / cost of ST Norm > 1)",
              "derived.at_over_stnorm_cost", direction=(">", 1.0)),
        Claim(f"001 (RobustBlock): RobustBlock raises the R-Score over the unmodified model ({e})",
              "derived.rb_r_minus_plain", direction=(">", 0.0)),
        Claim(f"001: RobustBlock raises the worst-case SROCC over the unmodified model ({e})",
              "derived.rb_minus_plain", direction=(">", 0.0)),
        Claim("001: RobustBlock keeps clean accuracy (clean SROCC drop < 0.05)", "derived.rb_clean_drop",
              direction=("<", 0.05)),
        Claim("001: robustness by architecture is cheaper than AT (cost of AT / cost of RobustBlock > 1)",
              "derived.at_over_rb_cost", direction=(">", 1.0)),
        Claim(f"002 (AAT): AAT is more robust than R- (worst-case SROCC, {e})", "derived.aat_minus_r",
              direction=(">", 0.0)),
        Claim(f"002: AAT is more robust than AT- (worst-case SROCC, {e})", "derived.aat_minus_at_label",
              direction=(">", 0.0)),
        Claim(f"002: AAT is more robust than the undefended model ({e})", "derived.aat_minus_plain",
              direction=(">", 0.0)),
        Claim("002: AAT keeps clean accuracy at least as well as R- (clean SROCC, within 0.02)",
              "derived.aat_clean_minus_r", direction=(">=", -0.02)),
    ]


def choices(cfg: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Every choice that is the book's, not a source's: (what the book does, whether full does it too)."""
    return {
        "one backbone for every defence": (f"ResNet IQA, {cfg['arch']}" + (f" width {cfg['width']}" if cfg["arch"] ==
                                           "tiny" else ""), "full: ResNet-18 (the sources use ResNet-50, Linearity/"
                                           "DBCNN/TReS and BiRQA; one backbone is the point of the arena)"),
        "one base loss": (f"eq. (5) of source 002, α = {cfg['loss_alpha']}", "yes"),
        "training from scratch, same epochs": (f"{cfg['epochs']} epochs for every defence; AAT, R- and AT- are trained "
                                               "from scratch, not fine-tuned", "yes (source 002 fine-tunes)"),
        "training attack": (f"PGD-{cfg['train_steps']}, ε = {cfg['train_eps']:g}/255, batch statistics", "yes"),
        "AT": ("PGD AT mixed with the clean loss, α = 0.5 (eq. (4) of 000 with PGD)", "yes"),
        "RobustBlock position": ("after layer3 (between the last two blocks), no pruning", "yes"),
        "evaluation attacks": (f"the audit suite's FGSM, PGD-{cfg['attack_steps']}×{cfg['restarts']}, "
                               f"APGD-{cfg['attack_steps']}, Square-{cfg['square_queries']}, both directions (UAP and "
                               f"stAdv left out for time); EOT {cfg['eot']} for LWTA; BPDA through ST Norm's threshold",
                               "full: the sizes of the full profile"),
        "worst case": ("per image, over all attacks at one ε, by the audit's ranking aim", "yes"),
        "intervals": (f"percentile bootstrap ({cfg['bootstrap']} resamples) for SROCC, t interval for R-Score", "yes"),
        "data": ("bundled proxy labels" if cfg["data_source"] == "bundled" else "KonIQ-10k",
                 "full: KonIQ-10k"),
    }
