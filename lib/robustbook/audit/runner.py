"""Run the audit: the suite (:mod:`robustbook.audit.suite`) against one quality model, as a report card.

:func:`run_audit` measures, on the test images of :class:`~robustbook.audit.loading.AuditData`:

1. **the model checks first** (:func:`robustbook.checks.run_checks`: randomness and zero gradients,
   through ``bpda`` when given). A randomised model is then attacked with EOT (``eot`` draws per
   step, the profile's ``eot_draws`` unless given);
2. **the clean agreement**: SROCC, PLCC and KROCC with 95 % percentile-bootstrap intervals;
3. **every attack of the suite**, each through :func:`robustbook.evaluate.attack_quality` (so its
   adversarial images pass the perturbation checks), saved atomically to ``out/attacks/<key>.pt``
   when ``out`` is given and skipped when a rerun finds it (resumable);
4. per attack: SROCC/PLCC/KROCC, **absolute gain** and **R-Score** (MSU benchmark,
   :mod:`robustbook.metrics.score_robustness`), **IR-Score** (:mod:`robustbook.metrics.ir_score`),
   wall time and cost (model evaluations per image);
5. per ε the **per-image worst case** over the suite's attacks, for three aims: raise the score
   (``up``), lower it (``down``) and **against the ranking** (``rank``: images labelled above the median
   get their lowest attacked score, the others their highest; the adversary of SROCC). Ties go to the
   clean image, as in :func:`~robustbook.evaluate.attack_quality`;
6. the **attack checks**: black-box (Square) beating the white-box attacks in the same direction and
   budget (on the mean score change in that direction, in units of the clean range), **PGD with twice
   the steps** at the largest ε (same step size, so a path twice as long: more search) still gaining,
   and the perturbation checks of every attack;
7. a **verdict**: ``"reliable"``, or ``"not reliable: "`` and the reasons.

A model whose gradient is exactly zero *and* whose scores no attack moved at all (Square and UAP
included) is constant within the budget: the zero-gradient flag is then lifted with that reason,
since nothing is being masked (the audit's rule; :mod:`robustbook.checks` alone cannot know it).

Scores are read in the "higher is better" orientation (``higher_is_better=False`` negates them
for the correlations), so SROCC 1 is perfect agreement with the labels whichever way the model counts.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import time
import zlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robustbook.attacks import FixedReference, losses
from robustbook.audit.loading import AuditData, check_model
from robustbook.audit.suite import EPS_255, SUITE_VERSION, AuditProfile, SuiteAttack, build_suite, get_profile
from robustbook.checks import CheckResult, ChecksReport, check_black_box, run_checks
from robustbook.evaluate import attack_quality, predict
from robustbook.metrics import ir_score, krocc, plcc, r_score_ci, srocc
from robustbook.metrics.bootstrap import _rowwise_pearson, resampled_ranks
from robustbook.metrics.score_robustness import normalise_on_clean

__all__ = ["run_audit", "AuditResult", "AIMS", "CHECK_MARGIN"]

#: The aims of the per-image worst case.
AIMS = ("up", "down", "rank")
#: Margin of the black-box and more-steps checks, in units of the clean scores' range (1 %).
CHECK_MARGIN = 0.01
#: Twice the PGD steps "still help" when they move the score further by more than CHECK_MARGIN and by more
#: than this share of what the suite's PGD reached (a longer path always gains a little on an unbounded score).
MORE_STEPS_SHARE = 0.05


@dataclasses.dataclass
class AuditResult:
    """A finished audit. ``record`` is the JSON-friendly report card (what ``metrics.json`` holds)."""

    record: dict
    checks: ChecksReport
    clean_pred: torch.Tensor = dataclasses.field(repr=False)
    preds: dict[str, torch.Tensor] = dataclasses.field(repr=False, default_factory=dict)

    @property
    def verdict(self) -> str:
        return self.record["verdict"]

    @property
    def reliable(self) -> bool:
        return self.record["verdict"] == "reliable"

    def as_dict(self) -> dict:
        return self.record

    def table(self) -> list[dict]:
        """One row per attack (family, direction, ε, SROCC, PLCC, gains, scores, time)."""
        return [{"attack": v["family"], "direction": v["direction"], "eps_255": v["eps_255"], "srocc": v["srocc"],
                 "plcc": v["plcc"], "abs_gain": v["abs_gain"], "r_score": v["r_score"], "ir_score": v["ir_score"],
                 "seconds": v["seconds"], "evals_per_image": v["evals_per_image"]}
                for v in self.record["attacks"].values()]

    def __str__(self) -> str:
        r = self.record
        c = r["clean"]
        lines = [f"audit of {r['model']['label']} (suite {r['suite_version']}, {r['profile']}, n={r['data']['n']}): "
                 f"{r['verdict']}",
                 f"clean SROCC {_f(c['srocc'])} [{_f(c['srocc_ci'][0])}, {_f(c['srocc_ci'][1])}]"]
        for e, w in r["worst_case"].items():
            lines.append(f"ε={e}/255: worst-case SROCC {_f(w['worst_srocc'])}")
        lines.append(str(self.checks))
        return "\n".join(lines)


def _f(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


# --------------------------------------------------------------------------- numbers
def _agreement(o: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    if not np.isfinite(o).all():
        return {"srocc": None, "plcc": None, "krocc": None}
    return {"srocc": srocc(o, y), "plcc": plcc(o, y), "krocc": krocc(o, y)}


def bootstrap_agreement(o: np.ndarray, y: np.ndarray, n_boot: int, seed: int, level: float = 0.95
                        ) -> dict[str, list[float] | None]:
    """Percentile-bootstrap intervals of SROCC, PLCC and KROCC (images resampled with replacement)."""
    if not np.isfinite(o).all() or n_boot < 10:
        return {"srocc_ci": None, "plcc_ci": None, "krocc_ci": None}
    from scipy import stats

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))
    q = [(1 - level) / 2, (1 + level) / 2]
    s = _rowwise_pearson(resampled_ranks(o, idx), resampled_ranks(y, idx))
    p = _rowwise_pearson(o[idx], y[idx])
    k = []
    for row in idx[: min(n_boot, 500)]:  # Kendall's tau row by row: 500 resamples are plenty for its interval
        a, b = o[row], y[row]
        k.append(0.0 if np.ptp(a) == 0 or np.ptp(b) == 0 else float(stats.kendalltau(a, b).statistic))
    return {"srocc_ci": [float(v) for v in np.quantile(s, q)], "plcc_ci": [float(v) for v in np.quantile(p, q)],
            "krocc_ci": [float(v) for v in np.nanquantile(np.asarray(k), q)]}


def _scores(clean: np.ndarray, adv: np.ndarray) -> dict[str, Any]:
    """Absolute gain (signed, raw score), R-Score (with its 95 % t interval) and IR-Score."""
    if not np.isfinite(adv).all():
        return {"abs_gain": None, "r_score": None, "r_score_ci": None, "ir_score": None}
    if np.ptp(clean) == 0:  # constant clean scores: the clean range is zero, min-max scaling undefined
        moved = bool(np.any(adv != clean))
        return {"abs_gain": None if moved else 0.0, "r_score": None, "r_score_ci": None,
                "ir_score": None if moved else 1.0}
    s, s2 = normalise_on_clean(clean, adv)
    ci = r_score_ci(clean, adv)
    return {"abs_gain": float((s2 - s).mean()), "r_score": ci.value, "r_score_ci": [ci.low, ci.high],
            "ir_score": ir_score(clean, adv)}


def _range(clean: np.ndarray) -> float:
    r = float(np.ptp(clean))
    return r if r > 0 else 1.0


def _worst(clean: np.ndarray, cands: list[np.ndarray], objective: Callable[[np.ndarray], np.ndarray]
           ) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the candidate with the largest objective (strictly above clean's; ties to the earlier)."""
    best_obj = objective(clean)
    best = clean.copy()
    winner = np.zeros(len(clean), dtype=int)
    for k, c in enumerate(cands, start=1):
        obj = objective(c)
        obj = np.where(np.isfinite(obj), obj, -np.inf)
        win = obj > best_obj
        best_obj = np.where(win, obj, best_obj)
        best = np.where(win, c, best)
        winner[win] = k
    return best, winner


# --------------------------------------------------------------------------- running attacks
def _fingerprint(model: nn.Module, data: AuditData, extra: dict) -> str:
    h = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}\n{model!r}".encode())
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    for t in (data.x, data.y, data.x_train, data.ref):
        if t is not None:
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    h.update(repr(sorted(extra.items())).encode())
    return h.hexdigest()[:16]


class _Counter:
    """Counts the images that pass through a model's forward (a forward hook)."""

    def __init__(self, model: nn.Module) -> None:
        self.images = 0
        self.handle = model.register_forward_hook(self._hook)

    def _hook(self, module, args, out) -> None:
        if args and isinstance(args[-1], torch.Tensor):
            self.images += int(args[-1].shape[0])

    def close(self) -> None:
        self.handle.remove()


def _target(model: nn.Module, ref: torch.Tensor | None) -> nn.Module:
    return model if ref is None else FixedReference(model, ref)


class _PairUAP(nn.Module):
    """Reference and distorted image stacked along channels for :func:`~robustbook.attacks.train_uap`: the
    gradient to the reference channels is cut, so their part of δ stays exactly 0 (Adam never moves it)."""

    def __init__(self, model: nn.Module, c: int) -> None:
        super().__init__()
        self.model, self.c = model, c

    def forward(self, xr: torch.Tensor) -> torch.Tensor:
        return self.model(xr[:, : self.c].detach(), xr[:, self.c:])


def _materialise(entry: SuiteAttack, model: nn.Module, data: AuditData, eot: int):
    if entry.attack is not None:
        return entry.attack
    if data.ref_train is None:
        return entry.materialise(model, data.x_train, eot=eot)
    c = data.x_train.shape[1]
    pair = SuiteAttack(entry.family, entry.direction, entry.eps_255, None, uap_epochs=entry.uap_epochs,
                       bpda=entry.bpda)
    attack = pair.materialise(_PairUAP(model, c), torch.cat([data.ref_train, data.x_train], 1), eot=eot)
    from robustbook.attacks import UAP

    return UAP(attack.params["perturbation"][c:], 1.0)


def _run_one(entry: SuiteAttack, model: nn.Module, data: AuditData, p: AuditProfile, eot: int,
             seed: int) -> dict:
    """One attack over the test set in chunks: raw predictions, perturbation check, time and cost."""
    torch.manual_seed(seed + zlib.crc32(entry.key.encode()))
    counter = _Counter(model)
    t0 = time.perf_counter()
    try:
        attack = _materialise(entry, model, data, eot)
        preds, pcs, nan = [], [], False
        for i in range(0, len(data.x), p.chunk):
            xs, ys = data.x[i:i + p.chunk], data.y[i:i + p.chunk]
            ref = None if data.ref is None else data.ref[i:i + p.chunk]
            rep = attack_quality(_target(model, ref), xs, ys, {entry.key: attack}, direction="away",
                                 batch_size=len(xs), model_checks=0)
            # one attack, aim "away": the worst case is the attack's own prediction wherever it moved the
            # score, and the clean one (the same number) where it did not; a NaN prediction never wins
            preds.append(rep.worst_pred)
            nan |= not math.isfinite(rep.per_attack[entry.key]["mean_change"])
            pcs.append(rep.perturbation[0])
    finally:
        counter.close()
    seconds = time.perf_counter() - t0
    pc = pcs[0]
    for other in pcs[1:]:
        pc.count += other.count
        pc.nan += other.nan
        for attr, fn in (("max_norm", max), ("lo", min), ("hi", max)):
            a, b = getattr(pc, attr), getattr(other, attr)
            setattr(pc, attr, b if a is None else a if b is None else fn(a, b))
    pred = torch.cat(preds).to(torch.float64)
    if nan:
        pred = torch.full_like(pred, float("nan"))
    n = len(data.x)
    return {"key": entry.key, "pred": pred, "seconds": seconds,
            "evals_per_image": max(counter.images - 2 * n, 0) / n,  # minus attack_quality's two prediction passes
            "perturbation": pc.result().as_dict(), "describe": entry.describe()}


def _cached_run(entry: SuiteAttack, folder: Path | None, fingerprint: str, *args) -> tuple[dict, bool]:
    from robustbook.atomic import atomic_path

    path = None if folder is None else folder / "attacks" / f"{entry.key}.pt"
    if path is not None and path.is_file():
        try:
            saved = torch.load(path, weights_only=True)
            if saved.get("fingerprint") == fingerprint:
                return saved, True
        except Exception:  # a broken file is recomputed
            pass
    out = _run_one(entry, *args)
    if path is not None:
        out["fingerprint"] = fingerprint
        with atomic_path(path) as tmp:
            torch.save(out, tmp)
    return out, False


# --------------------------------------------------------------------------- the audit
def run_audit(model: nn.Module, data: AuditData | Sequence[torch.Tensor], *, profile: str | AuditProfile,
              higher_is_better: bool, full_reference: bool | None = None, progress: bool = True,
              out: str | Path | None = None, bpda: Callable[[nn.Module], ContextManager] | None = None,
              eot: int | None = None, seed: int = 0, model_label: str = "model",
              eps_255: tuple[int, ...] = EPS_255, families: tuple[str, ...] | None = None,
              model_info: dict | None = None) -> AuditResult:
    """Audit ``model`` on ``data`` with the suite at ``profile``'s sizes (see the module docstring).

    Args:
        model: images in [0, 1] → one score per image (full-reference: ``model(ref, dist)``).
        data: an :class:`~robustbook.audit.loading.AuditData` (see
            :func:`~robustbook.audit.loading.load_audit_data`) or ``(x, y[, x_train])`` tensors.
        profile: ``"smoke"``, ``"quick"``, ``"full"`` (sizes in :data:`robustbook.audit.suite.PROFILES`).
        higher_is_better: whether a higher score means a better image.
        full_reference: ``None`` = whether ``data`` has references; must agree with it.
        progress: a tqdm bar over the attacks.
        out: a folder for the per-attack results (``out/attacks/<key>.pt``); a rerun skips those it finds
            made for the same model, data and settings.
        bpda: a ``model -> context manager`` that gives the non-differentiable parts a surrogate gradient.
        eot: EOT draws per step; ``None``: 1, or the profile's ``eot_draws`` when the randomness check fires.
        seed: seeds every attack (each from ``seed`` and its key, so a resumed run equals a fresh one).
        eps_255, families: a subset of the suite (tests, exercises); the card records it.
    """
    p = get_profile(profile)
    data = AuditData.coerce(data)
    if full_reference is None:
        full_reference = data.full_reference
    if bool(full_reference) != data.full_reference:
        raise ValueError("full_reference=True needs data with references (AuditData(ref=..., ref_train=...)), and "
                         "a no-reference audit takes data without them")
    if eot is not None and (isinstance(eot, bool) or not isinstance(eot, int) or eot < 1):
        raise ValueError(f"eot must be a positive int or None (automatic), got {eot!r}")
    check_model(model, data)
    t_start = time.perf_counter()
    model.eval()
    sign = 1.0 if higher_is_better else -1.0
    y = data.y.double().numpy()
    ctx = (lambda: bpda(model)) if bpda is not None else contextlib.nullcontext

    # 1. the model checks, before any attack: they decide EOT
    m = min(p.model_checks, len(data.x))
    score_loss = losses.score_up
    with ctx():
        model_report = run_checks(_target(model, None if data.ref is None else data.ref[:m]), data.x[:m],
                                  data.y[:m], task="quality", loss=score_loss)
    randomised = model_report["randomness"].flagged
    eot_used = eot if eot is not None else (p.eot_draws if randomised else 1)

    # 2. clean agreement
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        clean_pred = torch.cat([predict(_target(model, None if data.ref is None else data.ref[i:i + p.chunk]),
                                        data.x[i:i + p.chunk], batch_size=p.chunk).reshape(-1)
                                for i in range(0, len(data.x), p.chunk)]).double()
    clean = clean_pred.numpy()
    clean_o = sign * clean
    clean_rec = {**_agreement(clean_o, y), **bootstrap_agreement(clean_o, y, p.n_boot, seed)}

    # 3. the suite, attack by attack (resumable)
    suite = build_suite(p, bool(full_reference), eot=eot_used, bpda=bpda, eps_255=tuple(eps_255), families=families)
    fingerprint = _fingerprint(model, data, {"suite": SUITE_VERSION, "profile": dataclasses.asdict(p),
                                             "eot": eot_used, "seed": seed, "eps": tuple(eps_255),
                                             "families": families, "bpda": getattr(bpda, "__name__", str(bpda))})
    folder = Path(out) if out is not None else None
    largest = max(eps_255)
    pgd_more = [dataclasses.replace(e, family="PGDx2", attack=e.attack.replace(steps=2 * e.attack.steps))
                for e in suite if e.family == "PGD" and e.eps_255 == largest]
    from tqdm.auto import tqdm

    runs: dict[str, dict] = {}
    reused: list[str] = []
    todo = suite + pgd_more
    bar = tqdm(todo, desc="audit", disable=not progress, dynamic_ncols=True, leave=True)
    for entry in bar:
        bar.set_postfix_str(entry.key)
        res, hit = _cached_run(entry, folder, fingerprint, model, data, p, eot_used, seed)
        runs[entry.key] = res
        if hit:
            reused.append(entry.key)
    bar.close()

    # 4. per attack
    attacks_rec: dict[str, dict] = {}
    for entry in suite:
        r = runs[entry.key]
        adv = r["pred"].numpy()
        attacks_rec[entry.key] = {
            "family": entry.family, "direction": entry.direction, "eps_255": entry.eps_255,
            "black_box": entry.black_box, "label": r["describe"]["attack"].get("label"),
            **_agreement(sign * adv, y), **_scores(clean, adv),
            "toward": _toward(clean, adv, entry.direction),
            "seconds": r["seconds"], "evals_per_image": r["evals_per_image"], "perturbation": r["perturbation"],
            "attack": r["describe"]["attack"]}

    # 5. worst case per ε
    high = y >= np.median(y)
    worst_rec: dict[str, dict] = {}
    for e in eps_255:
        at_e = [k for k, v in attacks_rec.items() if v["eps_255"] == e]
        rec: dict[str, Any] = {}
        for aim in AIMS:
            keys = [k for k in at_e if aim == "rank" or attacks_rec[k]["direction"] == aim]
            cands = [runs[k]["pred"].numpy() for k in keys]
            if aim == "up":
                def obj(c):
                    return c - clean
            elif aim == "down":
                def obj(c):
                    return clean - c
            else:
                def obj(c):
                    return np.where(high, clean_o - sign * c, sign * c - clean_o)
            best, winner = _worst(clean, cands, obj)
            wins = np.bincount(winner, minlength=len(keys) + 1)
            rec[aim] = {**_agreement(sign * best, y), **_scores(clean, best),
                        "wins": {"clean": int(wins[0]), **{keys[i]: int(wins[i + 1]) for i in range(len(keys))}}}
            if aim == "rank":
                rec[aim].update(bootstrap_agreement(sign * best, y, p.n_boot, seed))
        single = [attacks_rec[k]["srocc"] for k in at_e if attacks_rec[k]["srocc"] is not None]
        vals = [rec[a]["srocc"] for a in AIMS if rec[a]["srocc"] is not None] + single
        rec["worst_srocc"] = min(vals) if vals else None
        worst_rec[str(e)] = rec

    # 6. the checks
    moved_any = any(bool(np.any(runs[k]["pred"].numpy() != clean)) for k in attacks_rec)
    results = [_lift_constant(r, moved_any) for r in model_report.results]
    results.append(_black_box_check(attacks_rec))
    results.append(_more_steps_check(runs, pgd_more, clean))
    results.append(_perturbation_check(attacks_rec))
    checks = ChecksReport(results, "quality")
    verdict, notes = _verdict(checks, randomised, eot_used, bpda)

    record = {
        "suite_version": SUITE_VERSION, "profile": p.name, "sizes": dataclasses.asdict(p),
        "model": {"label": model_label, **(model_info or {})},
        "data": {"name": data.name, "n": len(data.x), "n_train": len(data.x_train), "note": data.note,
                 "image_shape": list(data.x.shape[1:])},
        "higher_is_better": bool(higher_is_better), "full_reference": bool(full_reference),
        "eps_255": list(eps_255), "families": sorted({e.family for e in suite}, key=[s.family for s in suite].index),
        "eot": eot_used, "bpda": getattr(bpda, "__name__", None) if bpda else None, "seed": seed,
        "clean": clean_rec, "attacks": attacks_rec, "worst_case": worst_rec,
        "convergence": {e.key: _toward(clean, runs[e.key]["pred"].numpy(), e.direction) for e in pgd_more},
        "summary": _summary(attacks_rec, worst_rec, clean, runs, eps_255),
        "checks": checks.as_dict(), "verdict": verdict, "notes": notes,
        "cost": {"attack_seconds": sum(v["seconds"] for v in runs.values()),
                 "evals_per_image": sum(v["evals_per_image"] for v in runs.values()),
                 "reused": reused, "attacks_run": len(runs) - len(reused)},
        "wall_time_s": time.perf_counter() - t_start,
    }
    return AuditResult(record=_json(record), checks=checks, clean_pred=clean_pred,
                       preds={k: v["pred"] for k, v in runs.items()})


def _toward(clean: np.ndarray, adv: np.ndarray, direction: str) -> float | None:
    """The mean change of the score in the attack's direction, in units of the clean range."""
    if not np.isfinite(adv).all():
        return None
    d = (adv - clean) / _range(clean)
    return float(d.mean() if direction == "up" else -d.mean())


def _summary(attacks_rec: dict, worst_rec: dict, clean: np.ndarray, runs: dict, eps_255) -> dict:
    rs = [v["r_score"] for v in attacks_rec.values() if v["r_score"] is not None]
    by_eps = {e: worst_rec[str(e)]["rank"]["ir_score"] for e in eps_255}
    irs = [v for v in by_eps.values() if v is not None]
    fams: dict[str, list] = {}
    for v in attacks_rec.values():
        if v["srocc"] is not None:
            fams.setdefault(v["family"], []).append(v["srocc"])
    return {"worst_srocc_by_eps": {str(e): worst_rec[str(e)]["worst_srocc"] for e in eps_255},
            "worst_srocc_ci_by_eps": {str(e): worst_rec[str(e)]["rank"].get("srocc_ci") for e in eps_255},
            "r_score_mean": float(np.mean(rs)) if rs else None,
            "r_score_worst_by_eps": {str(e): worst_rec[str(e)]["rank"]["r_score"] for e in eps_255},
            "ir_score": float(np.mean(irs)) if irs else None,
            "max_abs_gain": max((abs(v["abs_gain"]) for v in attacks_rec.values() if v["abs_gain"] is not None),
                                default=None),
            "strongest_family": min(fams, key=lambda f: min(fams[f])) if fams else None}


# --------------------------------------------------------------------------- checks of the attacks
def _lift_constant(r: CheckResult, moved_any: bool) -> CheckResult:
    if r.name != "zero gradients" or not r.flagged or moved_any:
        return r
    return CheckResult(r.name, r.value, False,
                       r.message.split(". ")[0] + ", but no attack of the suite (Square and UAP included) moved a "
                       "single score: the model is constant within the budget, so there is no gradient to mask. "
                       "Nothing to attack, and nothing to learn from its clean correlations either.",
                       {**r.details, "lifted": "constant within the budget"})


def _black_box_check(attacks_rec: dict) -> CheckResult:
    groups: dict[tuple, dict] = {}
    for k, v in attacks_rec.items():
        if v["toward"] is not None:
            groups.setdefault((v["eps_255"], v["direction"]), {})[k] = v["toward"]
    per_group, worst = {}, None
    for (e, d), res in groups.items():
        bb = [k for k in res if attacks_rec[k]["black_box"]]
        r = check_black_box(res, black_box=bb, lower_is_stronger=False, margin=CHECK_MARGIN)
        per_group[f"{d} eps{e}"] = {"gap": r.value, "flagged": r.flagged}
        if r.value is not None and (worst is None or r.value > worst.value):
            worst = r
    if worst is None:
        return CheckResult("black-box beats white-box", None, False, "not applicable: no black-box attack ran",
                           {"groups": per_group})
    flagged = [g for g, v in per_group.items() if v["flagged"]]
    msg = (f"compared per budget and direction on the mean score change in the attack's direction (units of the "
           f"clean range, margin {CHECK_MARGIN:g}); largest gap {worst.value:.4g}. ")
    if flagged:
        msg += (f"Square moved the score further than every gradient attack in {len(flagged)} of {len(per_group)} "
                f"cases ({', '.join(flagged[:4])}{' ...' if len(flagged) > 4 else ''}): the gradients mislead the "
                "white-box attacks (gradient masking: quantisation, thresholds, a non-differentiable part), so their "
                "numbers overstate robustness. Give the audit a BPDA surrogate (bpda=) and trust the worst case.")
    else:
        msg += "No black-box attack beats the gradient attacks."
    return CheckResult("black-box beats white-box", worst.value, bool(flagged), msg,
                       {"groups": per_group, "margin": CHECK_MARGIN})


def _more_steps_check(runs: dict, pgd_more: list[SuiteAttack], clean: np.ndarray) -> CheckResult:
    gains, bases = {}, {}
    for e in pgd_more:
        base = e.key.replace("PGDx2-", "PGD-")
        a = _toward(clean, runs[base]["pred"].numpy(), e.direction)
        b = _toward(clean, runs[e.key]["pred"].numpy(), e.direction)
        if a is not None and b is not None:
            gains[e.direction], bases[e.direction] = b - a, a
    if not gains:
        return CheckResult("more PGD steps help", None, False, "not applicable: no PGD result to compare")
    gain = max(gains.values())
    limit = max(CHECK_MARGIN, MORE_STEPS_SHARE * max(abs(v) for v in bases.values()))
    steps = pgd_more[0].attack.steps
    seen = (f"PGD with {steps} instead of {steps // 2} steps (same step size: a path twice as long) at "
            f"ε={pgd_more[0].eps_255}/255 moved the score further by {gain:.4g} of the clean range")
    if gain > limit:
        return CheckResult("more PGD steps help", gain, True,
                           seen + f" (> {limit:.3g}): the suite's PGD has not converged, so its numbers "
                           "overstate robustness. Rerun at a larger profile (more steps and restarts).",
                           {"by_direction": gains, "limit": limit})
    return CheckResult("more PGD steps help", gain, False, seen + f" (≤ {limit:.3g}): more steps no longer help.",
                       {"by_direction": gains, "limit": limit})


def _perturbation_check(attacks_rec: dict) -> CheckResult:
    bad = {k: v["perturbation"]["message"] for k, v in attacks_rec.items() if v["perturbation"]["flagged"]}
    worst = max((v["perturbation"]["value"] or 0.0 for v in attacks_rec.values()
                 if v["attack"].get("norm") == "linf"), default=None)
    if bad:
        return CheckResult("perturbation", worst, True,
                           f"{len(bad)} attack(s) left the threat model (NaN, pixels outside [0, 1] or over "
                           f"budget): {', '.join(bad)}. Their numbers are not robustness numbers.", {"flagged": bad})
    return CheckResult("perturbation", worst, False,
                       f"every attack's images are finite, in [0, 1] and inside the budget (largest L∞ "
                       f"perturbation {_f(worst, '.4g')}).", {})


_REASONS = {
    "zero gradients": "zero gradients (gradient masking: give a BPDA surrogate)",
    "black-box beats white-box": "a black-box attack beats the gradient attacks (gradient masking)",
    "more PGD steps help": "more PGD steps still help (the attacks have not converged)",
    "perturbation": "an attack left its threat model",
    "randomness": "the model is randomised",
}


def _verdict(checks: ChecksReport, randomised: bool, eot: int, bpda) -> tuple[str, list[str]]:
    notes = []
    reasons = []
    for r in checks.flagged:
        if r.name == "randomness" and eot > 1:
            notes.append(f"the model is randomised: every gradient attack and Square used EOT with {eot} draws")
            continue
        reasons.append(_REASONS.get(r.name, r.name))
    if bpda is not None:
        notes.append(f"gradient attacks ran through the BPDA surrogate {getattr(bpda, '__name__', 'given')}")
    return ("reliable" if not reasons else "not reliable: " + "; ".join(reasons)), notes


def _json(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _json(u) for k, u in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json(u) for u in v]
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, torch.Tensor):
        return _json(v.tolist())
    return v
