"""Helpers of the ST Norm chapter (``book/stnorm``): data, training plan, evaluation grid, derived numbers,
the scorecard's claims and the sentences that read a run's numbers.

Source 000: Yuan & Wang, "Towards Adversarial Robustness in Blind Image Quality Assessment with Soft
Thresholding Norm". Everything here is chapter logic (the library holds the reusable parts:
``robustbook.models.STNorm``, ``robustbook.attacks``, ``robustbook.checks``, ``robustbook.evaluate``).
"""
from __future__ import annotations

import copy
import time
from functools import partial

import numpy as np
import torch
from IPython.display import Markdown, display
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

from robustbook import attacks, metrics
from robustbook.attacks import losses
from robustbook.cache import cached_state, is_cached
from robustbook.data import FlipRotateDataset, normalise_score, prepare, read_dataset
from robustbook.evaluate import attack_all, attack_quality, predict
from robustbook.models import resnet_iqa, stnorm_modules, swap_batchnorm
from robustbook.parallel import detached_copy, parallel_map, worker_count
from robustbook.scorecard import Claim
from robustbook.seeding import seed_everything
from robustbook.train import fit, make_loader

GROUPS = {  # disjoint groups of the bundled photographs (robustbook.data.bundled.PHOTOS)
    "live": ["astronaut", "camera", "coffee", "rocket", "coins", "page", "hubble_deep_field", "retina", "brick",
             "gravel"],
    "livec": ["chelsea", "clock", "immunohistochemistry", "grass"],
    "koniq": ["moon", "text", "cell", "stereo_motorcycle"],
}
DS = list(GROUPS)
REAL = {"live": "live", "livec": "livec", "koniq": "koniq10k"}
METHODS = ["resnet", "lwta", "denoise", "at", "stnorm"]
LABEL = {"resnet": "ResNet", "lwta": "LWTA", "denoise": "Denoise", "at": "ResNet-AT (ours)", "stnorm": "ST Norm"}
E1, E2 = 1.0, 2.0  # the source's budgets, in units of 1/255


def names(bundled: bool) -> dict[str, str]:
    return ({"live": "LIVE-like", "livec": "LIVEC-like", "koniq": "KonIQ-like"} if bundled
            else {"live": "LIVE", "livec": "LIVEC", "koniq": "KonIQ-10k"})


def lam_key(v: float) -> str:
    return "lam" + f"{v:g}".replace(".", "p")


def eps_key(v: float) -> str:
    return "eps" + f"{v:g}".replace(".", "p")


# --------------------------------------------------------------------------- data

def to_tensor(path, crop: int) -> torch.Tensor:
    img = Image.open(path).convert("RGB")
    if img.size != (crop, crop):
        img = img.resize((crop, crop), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


def load_data(cfg) -> tuple[dict, dict]:
    """The three train/test sets: ``{ds: {"train": (x, y), "test": (x, y), "test_rows", "n_train"}}`` and,
    for bundled data, ``{"folder", "rows"}`` of the bundled set (to recompute proxy labels)."""
    bundled = cfg.data_source == "bundled"
    extra = {}
    if bundled:
        from robustbook.data.bundled import PHOTOS

        assert sorted(sum(GROUPS.values(), [])) == sorted(PHOTOS), "the groups must partition the bundled photographs"
        folder = prepare("bundled-iqa", crop=cfg.crop, per_photo=cfg.per_photo, seed=cfg.seed, split_by="crop")
        all_rows, meta = read_dataset(folder, check_files=False)
        extra = {"folder": folder, "rows": all_rows}
    data = {}
    for ds in DS:
        if bundled:
            rows = [r for r in all_rows if r.ref_id.rsplit("_", 1)[0] in GROUPS[ds]
                    and (r.distortion == "" or r.distortion in cfg.distortions)]
        else:
            folder = prepare(REAL[ds])
            rows, meta = read_dataset(folder, check_files=False)
        train_rows = [r for r in rows if r.split == "train"]
        test_rows = [r for r in rows if r.split == "test"]
        if cfg.n_test and cfg.n_test < len(test_rows):
            keep = np.sort(np.random.default_rng(cfg.seed).choice(len(test_rows), cfg.n_test, replace=False))
            test_rows = [test_rows[i] for i in keep]

        def load(rs, folder=folder, meta=meta):
            x = torch.stack([to_tensor(folder / r.image, cfg.crop) for r in rs])
            return x, torch.tensor([normalise_score(r.score, meta) for r in rs], dtype=torch.float32)

        data[ds] = {"train": load(train_rows), "test": load(test_rows), "test_rows": test_rows,
                    "n_train": len(train_rows)}
    return data, extra


def pristine_of(extra: dict, ref_id: str) -> np.ndarray:
    """The pristine crop of a bundled reference, float64 in [0, 1] (to recompute its proxy label)."""
    row = next(r for r in extra["rows"] if r.ref_id == ref_id and r.distortion == "")
    return np.asarray(Image.open(extra["folder"] / row.image).convert("RGB"), dtype=np.float64) / 255.0


# --------------------------------------------------------------------------- models

def spec(cfg, kind: str, lam=None, stages=None, normalize=True, threshold=True) -> dict:
    """What determines one model: its kind and, for ST Norm, λ, stages, axes and which halves of eq. (10)."""
    s = {"kind": kind}
    if kind == "stnorm":
        s.update(lam=float(cfg.lam if lam is None else lam), stages=list(stages or cfg.stages),
                 axes=cfg.stnorm_axes, normalize=normalize, threshold=threshold)
    return s


def build(cfg, s: dict) -> nn.Module:
    kw = {"width": cfg.width, "stem_stride": cfg.stem_stride} if cfg.arch == "tiny" else {}
    model = resnet_iqa(cfg.arch, activation="lwta" if s["kind"] == "lwta" else "relu",
                       denoise=list(cfg.denoise_stages) if s["kind"] == "denoise" else False, **kw)
    if s["kind"] == "stnorm":
        swap_batchnorm(model, s["lam"], s["stages"], axes=s["axes"], normalize=s["normalize"],
                       threshold=s["threshold"])
    return model


def make_plan(cfg) -> dict:
    """(train set, model name) -> (spec, seed, what needs it). The page trains a model when a section first asks."""
    sp = partial(spec, cfg)
    plan = {}
    for ds in ("live", "livec"):
        for k in METHODS:
            plan[(ds, k)] = (sp(k), cfg.seed, "Table I" + (", Figs. 1-4, Table IV" if ds == "live" else ", Fig. 5"))
        plan[(ds, "norm_only")] = (sp("stnorm", lam=0.0), cfg.seed, "Fig. 3")
        plan[(ds, "thr_only")] = (sp("stnorm", normalize=False), cfg.seed, "Fig. 3")
    plan[("koniq", "stnorm")] = (sp("stnorm"), cfg.seed, "Table III")
    for v in cfg.lam_list:
        if v != cfg.lam:
            plan[("live", lam_key(v))] = (sp("stnorm", lam=v), cfg.seed, "Table II")
    plan[("live", "stnorm_layer3")] = (sp("stnorm", stages=["layer3"]), cfg.seed, "sensitivity")
    for k in range(1, cfg.n_seeds):
        for base in ("resnet", "stnorm"):
            plan[(cfg.seeds_on, f"{base}_seed{k}")] = (sp(base), cfg.seed + k, "training stability")
    return plan


def train_key(cfg, ds: str, s: dict, seed: int, n_train: int) -> dict:
    """The cache key: every parameter that determines the weights (the library code is hashed by the cache)."""
    key = {"chapter": "stnorm", "train_set": ds, "groups": GROUPS[ds] if cfg.data_source == "bundled" else REAL[ds],
           "spec": s, "seed": seed, "n_train": n_train, "augment": cfg.augment,
           **{k: cfg[k] for k in ("data_source", "crop", "per_photo", "distortions", "arch", "width", "stem_stride",
                                  "epochs", "batch_size", "lr", "weight_decay")}}
    if s["kind"] == "at":
        key.update(at_alpha=cfg.at_alpha, at_eps=cfg.at_eps)
    if s["kind"] == "denoise":
        key.update(denoise_stages=cfg.denoise_stages)
    if s["kind"] == "stnorm":
        key.update(lam_warmup=cfg.lam_warmup)
    return key


def _train(cfg, s: dict, x: torch.Tensor, y: torch.Tensor, seed: int) -> dict:
    seed_everything(seed)
    model = build(cfg, s)
    data = FlipRotateDataset(x, y) if cfg.augment else TensorDataset(x, y)
    loader = make_loader(data, cfg.batch_size, shuffle=True, seed=seed)
    attack, mix, callbacks = None, None, ()
    if s["kind"] == "stnorm" and cfg.lam_warmup > 0:  # eq. (13), as the book reads it: raise λ from 0 step by step
        ramp = max(1.0, cfg.lam_warmup * cfg.epochs)

        def set_lam(done):
            for mod in stnorm_modules(model):
                mod.lam = s["lam"] * min(1.0, done / ramp)

        set_lam(0)
        callbacks = (lambda record, _m: set_lam(record["epoch"]),)
    if s["kind"] == "at":  # eq. (4): FGSM through the model being trained, with its own loss
        attack = attacks.FGSM(cfg.at_eps / 255, loss=losses.mse_away, eval_mode=False)
        mix = cfg.at_alpha
    t0, c0 = time.perf_counter(), time.process_time()
    history = fit(model, loader, loss_fn=nn.MSELoss(), epochs=cfg.epochs, seed=seed, attack=attack, mix_alpha=mix,
                  optimizer=partial(torch.optim.Adam, lr=cfg.lr, weight_decay=cfg.weight_decay),
                  callbacks=callbacks, progress=False)
    assert all(mod.lam == s["lam"] for mod in stnorm_modules(model)), "λ warm-up did not end at λ"
    return {"state": model.state_dict(), "history": history.as_dict(),
            "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}


def train_cached(cfg, ds: str, name: str, s: dict, x: torch.Tensor, y: torch.Tensor, seed: int) -> dict:
    """Train one planned model into the cache (a job of :func:`robustbook.parallel.parallel_map`)."""
    state, hit = cached_state(f"stnorm-{ds}-{name}", train_key(cfg, ds, s, seed, len(x)),
                              lambda: _train(cfg, s, x, y, seed))
    return {"hit": hit, "wall_s": state["wall_s"], "cpu_s": state["cpu_s"]}


#: relative cost of one training epoch by kind (FGSM training doubles the passes; the Denoise blocks add
#: non-local means), to hand the longest jobs out first
COST = {"at": 2.0, "denoise": 1.6, "lwta": 1.2, "stnorm": 1.3, "resnet": 1.0}


class Models(dict):
    """The chapter's trained models, trained (or loaded from the cache) the first time a section asks for one;
    one progress line per model."""

    def __init__(self, cfg, run, data, plan, device):
        super().__init__()
        self.cfg, self.run, self.data, self.plan, self.device = cfg, run, data, plan, device
        self.trained_here: set = set()     # trained by prefetch in this run (then loaded from the cache)

    def __missing__(self, key):
        ds, name = key
        s, seed, _ = self.plan[key]
        x, y = self.data[ds]["train"]
        t0 = time.perf_counter()
        state, hit = cached_state(f"stnorm-{ds}-{name}", train_key(self.cfg, ds, s, seed, len(x)),
                                  lambda: _train(self.cfg, s, x, y, seed))
        model = build(self.cfg, s)
        model.load_state_dict(state["state"])
        model.to(self.device).eval()
        loss = [r["train_loss"] for r in state["history"]["epochs"]]
        hit = hit and key not in self.trained_here
        self.run.log(f"train.{ds}.{name}", {"wall_s": state["wall_s"], "cpu_s": state["cpu_s"], "loss": loss,
                                            "cached": int(hit)})
        done = sum(1 for k in self.plan if k in self) + 1
        print(f"[model {done}/{len(self.plan)}] {ds}/{name}: "
              + (f"loaded from the cache ({time.perf_counter() - t0:.1f} s)" if hit else
                 f"trained {self.cfg.epochs} epochs in {state['wall_s']:.0f} s ({state['cpu_s']:.0f} s CPU)")
              + f", training loss {loss[0]:.4f} -> {loss[-1]:.4f}", flush=True)
        self[key] = model
        return model

    def train(self, keys) -> None:
        for k in keys:
            self[k]

    def prefetch(self, keys=None) -> int:
        """Train the planned models that are not yet in the cache, :func:`robustbook.parallel.worker_count`
        at a time, each in its own single-threaded process (the same weights as training them here, one by
        one). With one worker it does nothing: each model is then trained where a section first asks for it.
        Returns the number of models trained."""
        workers = worker_count()
        todo = {}
        for key in keys or self.plan:
            ds, name = key
            s, seed, _ = self.plan[key]
            x, y = self.data[ds]["train"]
            if key not in self and not is_cached(f"stnorm-{ds}-{name}", train_key(self.cfg, ds, s, seed, len(x))):
                todo[key] = (self.cfg, ds, name, s, x, y, seed)
        if workers < 2 or len(todo) < 2:
            return 0
        order = sorted(todo, key=lambda k: -len(self.data[k[0]]["train"][0]) * COST[self.plan[k][0]["kind"]])
        print(f"training {len(todo)} models, {workers} at a time (one process and one thread each)", flush=True)
        done = []

        def report(key, res, seconds):
            done.append(key)
            print(f"[trained {len(done)}/{len(todo)}] {key[0]}/{key[1]}: {self.cfg.epochs} epochs in "
                  f"{res['wall_s']:.0f} s", flush=True)

        parallel_map(train_cached, {k: todo[k] for k in order}, workers=workers, on_done=report)
        self.trained_here = set(todo)
        return len(todo)


def plugged(model: nn.Module, lam: float, stages) -> nn.Module:
    """A copy of a trained ResNet with its BatchNorms turned into ST Norm (λ), no retraining (Sec. III-C)."""
    m = swap_batchnorm(copy.deepcopy(model), lam, stages)
    return m.eval()


# --------------------------------------------------------------------------- evaluation

class Evaluator:
    """IQA numbers of a model on (x, y), clean or attacked, logged under a key; checks every attacked set."""

    def __init__(self, run, seed: int):
        self.run, self.seed = run, seed
        self.checks = {"max_excess_linf": 0.0, "nan": 0, "out_of_box": 0}

    def predict(self, model, x):
        torch.manual_seed(self.seed)  # LWTA samples its winners: one seeded draw, as deployed
        return predict(model, x, batch_size=128)

    def __call__(self, model, x, y, attack=None, key=None):
        x_in = x
        if attack is not None:
            x_in = attack_all(attack, model, x, y, batch_size=128)
            excess = float((x_in - x).abs().max()) - attack.eps
            self.checks["max_excess_linf"] = max(self.checks["max_excess_linf"], excess)
            self.checks["nan"] += int(torch.isnan(x_in).sum())
            self.checks["out_of_box"] += int((x_in < 0).sum() + (x_in > 1).sum())
            assert excess <= 1e-6 and not torch.isnan(x_in).any() and x_in.min() >= 0 and x_in.max() <= 1
        r = metrics.iqa_report(self.predict(model, x_in), y)
        rep = {"srocc": r["srocc"], "plcc": r["plcc"], "mse": r["rmse"] ** 2, "krocc": r["krocc"],
               "plcc_logistic": r["plcc_logistic"]}
        if key:
            self.run.log(key, rep)
        return rep

    def many(self, jobs: dict) -> dict:
        """``{key: (model, x, y, attack or None)}`` evaluated side by side (:func:`evaluate_job`), logged under
        their keys; the same numbers with any number of workers (each job copies its attack and seeds itself)."""
        out = parallel_map(evaluate_job, {k: (self.seed, *job) for k, job in jobs.items()}, workers=worker_count())
        for key, (rep, checks) in out.items():
            self.checks["max_excess_linf"] = max(self.checks["max_excess_linf"], checks["max_excess_linf"])
            self.checks["nan"] += checks["nan"]
            self.checks["out_of_box"] += checks["out_of_box"]
            self.run.log(key, rep)
        return {k: rep for k, (rep, _) in out.items()}


def evaluate_job(seed: int, model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack) -> tuple[dict, dict]:
    """One cell of a table (a job of :meth:`Evaluator.many`): its numbers and the checks of its attacked set.
    The attack is a copy (its random starts do not depend on the jobs before it) and the global generator
    is seeded (LWTA's winners under EOT)."""
    ev = Evaluator(None, seed)
    torch.manual_seed(seed)
    return ev(model, x, y, detached_copy(attack) if attack is not None else None), ev.checks


def attack_loss(cfg):
    """What every attack of the chapter increases (``attack_loss``: each model's own training loss by default)."""
    return losses.mse_away if cfg.attack_loss == "mse_away" else losses.invert_ranking(0.0, 1.0)


def strength_attacks(cfg, stnorm: bool, generator: torch.Generator) -> dict:
    """The attacks of the strength check (name -> Attack), at ε = 1/255; BPDA/STE variants only for ST Norm."""
    from robustbook.models import bpda_soft_threshold, straight_through_stnorm

    loss, e, last = attack_loss(cfg), E1 / 255, cfg.steps_sweep[-1]
    PGD = partial(attacks.PGD, loss=loss, generator=generator)
    APGD = partial(attacks.APGD, loss=loss, generator=generator)
    out = {"fgsm": attacks.FGSM(e, loss=loss)}
    out.update({f"pgd{s}": PGD(e, s) for s in cfg.steps_sweep})
    out[f"pgd{last}x{cfg.restarts}"] = PGD(e, last, restarts=cfg.restarts)
    out[f"apgd{cfg.apgd_steps}x{cfg.restarts}"] = APGD(e, cfg.apgd_steps, restarts=cfg.restarts)
    if stnorm:
        out[f"pgd{last}_ste"] = PGD(e, last, bpda=straight_through_stnorm)
        out[f"pgd{last}_bpda"] = PGD(e, last, bpda=bpda_soft_threshold)
        out[f"apgd{cfg.apgd_steps}x{cfg.restarts}_bpda"] = APGD(e, cfg.apgd_steps, restarts=cfg.restarts,
                                                                bpda=bpda_soft_threshold)
    out["square"] = attacks.Square(e, cfg.square_queries, loss=loss, generator=generator)
    return out


def strength_report(cfg, kind: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """One model's strength check: every attack alone and the per-image worst case (``attack_quality``), with
    the checks; the random starts come from a generator of this model's own (the same in a worker or not)."""
    gen = torch.Generator().manual_seed(cfg.seed + 7919 * (1 + METHODS.index(kind)))
    atks = strength_attacks(cfg, kind == "stnorm", gen)
    report = attack_quality(model, x, y, atks, direction=attack_loss(cfg), model_checks=len(x))
    return report, {n: a.describe()["label"] for n, a in atks.items()}


def strength_reports(cfg, models: dict, x: torch.Tensor, y: torch.Tensor) -> dict:
    """:func:`strength_report` of every ``kind: model``, side by side with more than one worker."""
    return parallel_map(strength_report, {k: (cfg, k, m, x, y) for k, m in models.items()}, workers=worker_count())


def strength_row(report) -> dict:
    """metrics.json entry of one model's attack_quality report (mse = the mean objective, the squared error)."""
    row = {"clean": {"srocc": report.clean["srocc"], "plcc": report.clean["plcc"], "mse": report.clean["objective"]}}
    for k, v in report.per_attack.items():
        row[k] = {"srocc": v["srocc"], "plcc": v["plcc"], "mse": v["objective"]}
    row["worst"] = {"srocc": report.worst_case["srocc"], "plcc": report.worst_case["plcc"],
                    "mse": report.worst_case["objective"]}
    white = [v["srocc"] for k, v in report.per_attack.items() if k not in report.black_box and v["srocc"] is not None]
    row["best_white_srocc"] = min(white)
    row["square_gap"] = report.per_attack["square"]["srocc"] - min(white)  # > 0: the white-box attacks are stronger
    row["wins"] = dict(report.wins)
    return row


# --------------------------------------------------------------------------- sentences

def say(lines) -> None:
    """A short reading of this run's numbers (generated from metrics.json, so it fits every profile)."""
    display(Markdown("**What this run shows.**\n\n" + "\n".join(f"* {line}" for line in lines if line)))


def vs(a: float, b: float, margin: float = 0.02, higher="higher", lower="lower", same="about the same as") -> str:
    """'higher than' / 'lower than' / 'about the same as' (within ``margin``)."""
    return same if abs(a - b) <= margin else (higher + " than" if a > b else lower + " than")


# --------------------------------------------------------------------------- derived numbers and claims

def derive(m: dict, cfg, plan: dict) -> dict:
    """The comparisons the scorecard judges, computed from metrics.json."""
    d = {}
    for ds in ("live", "livec"):
        t1 = m["tab1"][ds]
        d[f"{ds}_clean_drop"] = t1["resnet"]["C"]["srocc"] - t1["stnorm"]["C"]["srocc"]
        d[f"{ds}_stnorm_gap"] = t1["stnorm"]["C"]["srocc"] - t1["stnorm"]["A"]["srocc"]
        d[f"{ds}_stnorm_minus_at"] = t1["stnorm"]["A"]["srocc"] - t1["at"]["A"]["srocc"]
    for ds in DS:
        d[f"{ds}_ste_minus_plain"] = m["tab3"][ds]["A_STE"]["srocc"] - m["tab3"][ds]["A"]["srocc"]
    if 0.2 in cfg.lam_list and len(cfg.lam_list) > 1:
        others = [v for v in cfg.lam_list if v != 0.2]
        for e in (E1, E2):
            d[f"lam02_margin_{eps_key(e)}"] = (m["tab2"][lam_key(0.2)][eps_key(e)]["srocc"]
                                               - max(m["tab2"][lam_key(v)][eps_key(e)]["srocc"] for v in others))
    st, rs = m["strength"]["stnorm"], m["strength"]["resnet"]
    last, prev = cfg.steps_sweep[-1], cfg.steps_sweep[-2] if len(cfg.steps_sweep) > 1 else None
    d["steps_last_gain_stnorm"] = st[f"pgd{prev}"]["srocc"] - st[f"pgd{last}"]["srocc"] if prev else None
    d["square_minus_whitebox_stnorm"] = st["square_gap"]
    d["square_gap_stnorm_minus_resnet"] = st["square_gap"] - rs["square_gap"]
    d["stnorm_ste_pgd_minus_pgd"] = st[f"pgd{last}_ste"]["srocc"] - st[f"pgd{last}"]["srocc"]
    d["stnorm_bpda_pgd_minus_pgd"] = st[f"pgd{last}_bpda"]["srocc"] - st[f"pgd{last}"]["srocc"]
    d["stnorm_bpda_minus_ste"] = st[f"pgd{last}_bpda"]["srocc"] - st[f"pgd{last}_ste"]["srocc"]
    d["stnorm_worst_minus_fgsm"] = st["worst"]["srocc"] - st["fgsm"]["srocc"]
    d["time_at_over_stnorm"] = m["train"]["live"]["at"]["cpu_s"] / m["train"]["live"]["stnorm"]["cpu_s"]
    d["time_stnorm_over_resnet"] = m["train"]["live"]["stnorm"]["cpu_s"] / m["train"]["live"]["resnet"]["cpu_s"]
    d["stnorm_loss_ratio_max"] = max(m["train"][ds][n]["loss"][-1] / m["train"][ds][n]["loss"][0]
                                     for (ds, n), (s, _, _) in plan.items() if s["kind"] == "stnorm"
                                     and n in m["train"].get(ds, {}))
    d["stnorm_seed_range_minus_resnet"] = (m["stability"]["stnorm"]["clean_range"]
                                           - m["stability"]["resnet"]["clean_range"] if cfg.n_seeds > 1 else None)
    d["threshold_lip_max"] = max(m["lipschitz"]["maps"]["threshold"])
    d["st_lip_max"] = max(m["lipschitz"]["maps"]["st"])
    for e in cfg.fig1_eps:
        d[f"fig1_label_shift_{eps_key(e)}"] = m.get("fig1", {}).get("label_shift", {}).get(eps_key(e))
    for v in cfg.plug_lams:
        p = m["plugged"][lam_key(v)]
        d[f"plugged_clean_drop_{lam_key(v)}"] = m["tab1"]["live"]["resnet"]["C"]["srocc"] - p["C"]["srocc"]
    return d


def _cells(table, where, key, srocc=None, plcc=None, mse=None, direction_srocc=None, direction_plcc=None):
    """The claims of one table row: each given number of the source against our metric at ``key``."""
    out = []
    for met, paper, tol, d in (("srocc", srocc, 0.05, direction_srocc), ("plcc", plcc, 0.05, direction_plcc),
                               ("mse", mse, 0.01, None)):
        if paper is not None:
            out.append(Claim(f"{table}, {where} {met.upper()}", f"{key}.{met}", paper=paper, tol=tol, direction=d))
    return out


def claims(cfg, bundled: bool) -> list[Claim]:
    """Every claim of the source (table cells and sentences) and the book's checks of it (marked "(book)")."""
    NAME = names(bundled)
    T1, c = "Table I", _cells
    out = [
        *c(T1, "LIVE ResNet-C", "tab1.live.resnet.C", srocc=0.9382, plcc=0.8712, mse=0.0272),
        *c(T1, "LIVE ResNet-A", "tab1.live.resnet.A", srocc=0.1597, plcc=0.2141, mse=0.0888,
           direction_srocc=("<", "tab1.live.resnet.C.srocc")),
        *c(T1, "LIVE LWTA-C", "tab1.live.lwta.C", srocc=0.3735, plcc=0.2268, mse=0.1736),
        *c(T1, "LIVE LWTA-A (EOT)", "tab1.live.lwta.A", srocc=0.3878, plcc=0.2300, mse=0.1733),
        *c(T1, "LIVE Denoise-C", "tab1.live.denoise.C", srocc=0.9071, plcc=0.8797, mse=0.0320),
        *c(T1, "LIVE Denoise-A", "tab1.live.denoise.A", srocc=0.1141, plcc=0.1460, mse=0.0900,
           direction_srocc=("<", "tab1.live.denoise.C.srocc")),
        *c(T1, "LIVE ST Norm-C", "tab1.live.stnorm.C", srocc=0.8547, plcc=0.7105, mse=0.0401),
        *c(T1, "LIVE ST Norm-A", "tab1.live.stnorm.A", srocc=0.7904, plcc=0.6346, mse=0.0462,
           direction_srocc=(">", "tab1.live.resnet.A.srocc")),
        *c(T1, "LIVEC ResNet-C", "tab1.livec.resnet.C", srocc=0.8237, plcc=0.8609, mse=0.0118),
        *c(T1, "LIVEC ResNet-A", "tab1.livec.resnet.A", srocc=-0.0010, plcc=-0.0200, mse=0.0611,
           direction_srocc=("<", "tab1.livec.resnet.C.srocc")),
        *c(T1, "LIVEC LWTA-C", "tab1.livec.lwta.C", srocc=0.4776, plcc=0.4965, mse=0.0816),
        *c(T1, "LIVEC LWTA-A (EOT)", "tab1.livec.lwta.A", srocc=0.4948, plcc=0.5227, mse=0.0814),
        *c(T1, "LIVEC Denoise-C", "tab1.livec.denoise.C", srocc=0.8194, plcc=0.8550, mse=0.0126),
        *c(T1, "LIVEC Denoise-A", "tab1.livec.denoise.A", srocc=-0.0395, plcc=-0.0633, mse=0.0639,
           direction_srocc=("<", "tab1.livec.denoise.C.srocc")),
        *c(T1, "LIVEC ST Norm-C", "tab1.livec.stnorm.C", srocc=0.6867, plcc=0.7018, mse=0.0218),
        *c(T1, "LIVEC ST Norm-A", "tab1.livec.stnorm.A", srocc=0.6435, plcc=0.6607, mse=0.0242,
           direction_srocc=(">", "tab1.livec.resnet.A.srocc")),
        Claim("Introduction: ResNet-AT under attack, LIVE SROCC", "tab1.live.at.A.srocc", paper=0.7279, tol=0.05,
              direction=(">", "tab1.live.resnet.A.srocc")),
    ]
    tab2 = {0.1: ((0.8225, 0.7533, 0.0484), (0.5914, 0.5355, 0.0677), (0.6019, 0.5713, 0.0613)),
            0.2: ((0.8547, 0.7105, 0.0401), (0.7904, 0.6346, 0.0462), (0.6956, 0.6531, 0.0415)),
            0.3: ((0.5164, 0.4930, 0.0458), (0.5035, 0.4872, 0.0448), (0.5244, 0.5047, 0.0424))}
    for lam, rows in tab2.items():
        for cond, label, (s_, p_, m_) in zip(("clean", eps_key(E1), eps_key(E2)), ("clean", "1/255", "2/255"), rows):
            out += c("Table II", f"λ = {lam:g} {label}", f"tab2.{lam_key(lam)}.{cond}", srocc=s_, plcc=p_, mse=m_)
    tab3 = {"live": ((0.7904, 0.6346, 0.0462), (0.8009, 0.6504, 0.0428)),
            "livec": ((0.6435, 0.6607, 0.0242), (0.6758, 0.6917, 0.0228)),
            "koniq": ((0.6661, 0.6925, 0.0101), (0.6888, 0.7135, 0.0095))}
    for ds, (a, ste) in tab3.items():
        src = {"live": "LIVE", "livec": "LIVEC", "koniq": "KonIQ"}[ds]
        out += c("Table III", f"{src} ST Norm-A", f"tab3.{ds}.A", srocc=a[0], plcc=a[1], mse=a[2])
        out += c("Table III", f"{src} ST Norm-A-STE", f"tab3.{ds}.A_STE", srocc=ste[0], plcc=ste[1], mse=ste[2])
    tab4 = {"resnet": (-0.5582, -0.5004, -0.3597, -0.3318), "lwta": (0.0161, -0.0053, 0.0417, 0.0146),
            "denoise": (-0.5582, -0.5004, -0.3874, -0.3684), "at": (-0.2553, -0.2161, 0.0373, 0.0279),
            "stnorm": (0.2210, 0.2338, 0.3487, 0.3352)}
    for k, (s1, p1, s2, p2) in tab4.items():
        lab = LABEL[k].replace(" (ours)", "")
        extra = " (identical to ResNet-A in the source)" if k == "denoise" else ""
        out += c("Table IV", f"{lab}-A on LIVEC{extra}", f"tab4.{k}.livec.A", srocc=s1, plcc=p1)
        out += c("Table IV", f"{lab}-A on KonIQ", f"tab4.{k}.koniq.A", srocc=s2, plcc=p2)
    # sentences of the text (directions; no number of the source to match)
    for ds in ("live", "livec"):
        for other in ("lwta", "denoise"):
            out.append(Claim(f"Sec. IV-B: ST Norm-A beats {LABEL[other]}-A ({NAME[ds]} SROCC)",
                             f"tab1.{ds}.stnorm.A.srocc", direction=(">", f"tab1.{ds}.{other}.A.srocc")))
        out += [
            Claim(f"Sec. IV-B: ST Norm-A is comparable to AT ({NAME[ds]}: SROCC within 0.05 of ResNet-AT-A or above)",
                  f"derived.{ds}_stnorm_minus_at", direction=(">=", -0.05)),
            Claim(f"Sec. IV-B: clean accuracy drops only slightly ({NAME[ds]}: ResNet-C − ST Norm-C SROCC < 0.1)",
                  f"derived.{ds}_clean_drop", direction=("<", 0.1)),
            Claim(f"Sec. IV-B: the clean/attacked gap of ST Norm is minimal ({NAME[ds]}: < 0.1 SROCC)",
                  f"derived.{ds}_stnorm_gap", direction=("<", 0.1)),
            Claim(f"Fig. 3: both parts of eq. (10) matter ({NAME[ds]}: ST Norm-A > norm only-A)",
                  f"fig3.{ds}.both.A.srocc", direction=(">", f"fig3.{ds}.norm_only.A.srocc")),
            Claim(f"Fig. 3: both parts of eq. (10) matter ({NAME[ds]}: ST Norm-A > threshold only-A)",
                  f"fig3.{ds}.both.A.srocc", direction=(">", f"fig3.{ds}.thr_only.A.srocc")),
        ]
    if 0.2 in cfg.lam_list and len(cfg.lam_list) > 1:
        out += [Claim(f"Table II: λ = 0.2 is the most robust ({e:g}/255: margin over the other λ)",
                      f"derived.lam02_margin_{eps_key(e)}", direction=(">", 0.0)) for e in (E1, E2)]
    out += [Claim(f"Table III: STE does not break ST Norm ({NAME[ds]}: STE-A SROCC − A SROCC > −0.02)",
                  f"derived.{ds}_ste_minus_plain", direction=(">", -0.02)) for ds in DS]
    out += [Claim(f"Fig. 4: ST Norm beats {LABEL[k]} at 2/255 (SROCC)", "fig4.stnorm.srocc",
                  direction=(">", f"fig4.{k}.srocc")) for k in ("resnet", "lwta", "denoise", "at")]
    out += [Claim("Fig. 4: ST Norm beats ResNet-AT at 2/255 (PLCC)", "fig4.stnorm.plcc", direction=(">", "fig4.at.plcc")),
            Claim("Fig. 4: ST Norm has a lower MSE than ResNet-AT at 2/255", "fig4.stnorm.mse",
                  direction=("<", "fig4.at.mse"))]
    out += [Claim(f"Table IV: ST Norm-A is best across data sets ({NAME[ds]} {met.upper()} vs {LABEL[k]}-A)",
                  f"tab4.stnorm.{ds}.A.{met}", direction=(">", f"tab4.{k}.{ds}.A.{met}"))
            for met in ("srocc", "plcc") for ds in ("livec", "koniq") for k in ("resnet", "lwta", "denoise", "at")]
    out += [Claim(f"Fig. 5: ST Norm is best under PGD across data sets ({met.upper()} vs {LABEL[k]})",
                  f"fig5.stnorm.A.{met}", direction=(">", f"fig5.{k}.A.{met}"))
            for met in ("srocc", "plcc") for k in ("resnet", "lwta", "denoise", "at")]
    last, r = cfg.steps_sweep[-1], cfg.restarts
    out += [
        Claim("Fig. 1: 'no significant change' of the (proxy) quality at 1/255 (book: mean |Δ label| < 0.02)",
              f"derived.fig1_label_shift_{eps_key(E1)}", direction=("<", 0.02)),
        Claim("Fig. 1: 'no significant change' of the (proxy) quality at 2/255 (book: mean |Δ label| < 0.02)",
              f"derived.fig1_label_shift_{eps_key(E2)}", direction=("<", 0.02)),
        Claim("Fig. 1: at 4/255 the quality itself starts to change (book: |Δ label| larger than at 1/255)",
              f"derived.fig1_label_shift_{eps_key(4.0)}", direction=(">", f"derived.fig1_label_shift_{eps_key(E1)}")),
        Claim("Fig. 2(a): clean and adversarial images induce different BatchNorm statistics (relative shift of "
              "the channel means above the clean half-vs-half floor)", "fig2a.bn.rel_shift",
              direction=(">", "fig2a.bn.rel_shift_floor")),
        Claim("Fig. 2(a): the statistics differ less after ST Norm (trained, relative shift)",
              "fig2a.trained.rel_shift", direction=("<", "fig2a.bn.rel_shift")),
        Claim("Fig. 2(b): ST Norm lowers EDS, plugged into the clean-trained ResNet (raw EDS; holds by construction "
              "when ‖x‖∞ > 1: eq. (10) divides by ‖x‖∞ and the threshold is 1-Lipschitz)", "eds.plugged.mean",
              direction=("<", "eds.bn.mean")),
        Claim("Fig. 2(b): ST Norm lowers EDS (trained ST Norm model, raw EDS)", "eds.trained.mean",
              direction=("<", "eds.bn.mean")),
        Claim("(book) Fig. 2(b) without the scale of ‖x‖∞: scale-free EDS lower with ST Norm (plugged)",
              "eds.plugged.rel_mean", direction=("<", "eds.bn.rel_mean")),
        Claim("(book) Fig. 2(b) without the scale of ‖x‖∞: scale-free EDS lower with ST Norm (trained)",
              "eds.trained.rel_mean", direction=("<", "eds.bn.rel_mean")),
        Claim("Eq. (12): the soft threshold is 1-Lipschitz (largest local estimate ≤ 1)", "derived.threshold_lip_max",
              direction=("<=", 1.0 + 1e-3)),
        Claim("(book) eq. (12) extended to all of eq. (10): ST Norm is 1-Lipschitz (largest local estimate ≤ 1)",
              "derived.st_lip_max", direction=("<=", 1.0 + 1e-3)),
        Claim("(book) Sec. III-C: ST Norm makes the model smoother (median local Lipschitz below ResNet's)",
              "lipschitz.stnorm.local_median", direction=("<", "lipschitz.resnet.local_median")),
        Claim("Sec. III-C: training with ST Norm is stable (book: last-epoch loss below the first for every ST Norm model)",
              "derived.stnorm_loss_ratio_max", direction=("<", 1.0)),
        Claim("(book) Sec. III-C: ST Norm varies no more across training seeds than ResNet (clean SROCC range, within 0.05)",
              "derived.stnorm_seed_range_minus_resnet", direction=("<=", 0.05)),
        Claim("Abstract: ST Norm costs far less training than adversarial training (book: CPU time of ResNet-AT / ST Norm)",
              "derived.time_at_over_stnorm", direction=(">", 1.0)),
        Claim("(book) no gradient masking: more PGD steps no longer help on ST Norm (last step doubling < 0.02 SROCC)",
              "derived.steps_last_gain_stnorm", direction=("<", 0.02)),
        Claim("(book) no gradient masking: Square is not stronger than the white-box attacks on ST Norm",
              "derived.square_minus_whitebox_stnorm", direction=(">=", -0.02)),
        Claim("(book) no gradient masking: Square's gap to the white-box attacks is not smaller on ST Norm than on "
              "ResNet (within 0.02)", "derived.square_gap_stnorm_minus_resnet", direction=(">=", -0.02)),
        Claim("(book) no gradient masking: under 10 % of ST Norm's input-gradient entries are exactly zero",
              "checks.zero_grad_frac.stnorm", direction=("<=", 0.1)),
        Claim(f"(book) STE-PGD-{last} is not stronger than PGD-{last} on ST Norm (SROCC difference > −0.02)",
              "derived.stnorm_ste_pgd_minus_pgd", direction=(">", -0.02)),
        Claim(f"(book) BPDA through the threshold only (PGD-{last}) is not stronger than PGD-{last} on ST Norm "
              "(SROCC difference > −0.02)", "derived.stnorm_bpda_pgd_minus_pgd", direction=(">", -0.02)),
        Claim(f"(book) ST Norm is more robust than ResNet under the worst case of every attack at 1/255 "
              f"(restarts ×{r}, APGD, BPDA, Square; SROCC)", "strength.stnorm.worst.srocc",
              direction=(">", "strength.resnet.worst.srocc")),
        Claim(f"(book) ST Norm in layer3 only is also more robust than ResNet (FGSM {E1:g}/255 SROCC)",
              f"sensitivity.layer3.{eps_key(E1)}.srocc", direction=(">", "tab1.live.resnet.A.srocc")),
    ]
    for v in cfg.plug_lams:
        out += [Claim(f"Sec. III-C: ST Norm plugged into the trained ResNet without retraining loses little "
                      f"(λ = {v:g}: clean SROCC drop < 0.1)", f"derived.plugged_clean_drop_{lam_key(v)}",
                      direction=("<", 0.1)),
                Claim(f"(book) plugged-in ST Norm (λ = {v:g}, no retraining) is more robust than the ResNet it came "
                      f"from (FGSM {E1:g}/255 SROCC)", f"plugged.{lam_key(v)}.A.srocc",
                      direction=(">", "tab1.live.resnet.A.srocc"))]
    return out


def choices(params: dict, bundled: bool) -> dict:
    """Every choice that is the book's, not the paper's: (what the book does, whether it is also on at ``full``)."""
    p = params
    tiny = p["arch"] == "tiny"
    return {
        "λ warm-up (our reading of eq. (13))": (f"λ rises linearly from 0 over the first {p['lam_warmup']:.0%} of the "
                                               "epochs", "yes (the paper gives no schedule; -p lam_warmup 0 = off)"),
        "augmentation": ("random flips and 90° turns" if p["augment"] else "none",
                         "yes, same default (-p augment false = off)"),
        "stem stride": (f"{p['stem_stride']}" + (" (tiny ResNet)" if tiny else " (ignored by torchvision ResNets)"),
                        "no: full uses ResNet-50's own stride-2 stem"),
        "stages followed by a Denoise block": (", ".join(p["denoise_stages"]),
                                               "full: all four stages, as Xie et al."),
        "stages with ST Norm": (", ".join(p["stages"]) + " (every BatchNorm of them, shortcuts included)",
                                "yes (the paper does not say; a layer3-only model is reported beside)"),
        "axes of ‖x‖∞ in eq. (10)": ({"chw": "per sample, over channels and positions",
                                      "hw": "per sample and channel"}[p["stnorm_axes"]], "yes"),
        "backbone": (f"{p['arch']}" + (f", width {p['width']}" if tiny else ""),
                     "full: ResNet-50, as the paper"),
        "epochs": (f"{p['epochs']}", "the paper gives none; full uses 30"),
        "optimiser": (f"Adam, lr {p['lr']}, weight decay {p['weight_decay']}, batch {p['batch_size']}",
                      "full: the paper's lr 1e-4, weight decay 0.01, batch 16"),
        "ResNet-AT": (f"eq. (4), α = {p['at_alpha']}, FGSM {p['at_eps']:g}/255 through the model in training mode",
                      "yes (the paper gives no α)"),
        "attack loss": (f"{p['attack_loss']} (each model's own training loss)", "yes"),
        "PGD of Fig. 5": (f"{p['pgd_steps']} steps, step 2.5ε/{p['pgd_steps']}, random start",
                          "yes (the paper gives no PGD settings)"),
        "LWTA": (f"EOT over {p['eot_samples']} draws for attacks; one draw for predictions", "yes"),
        "feature layer of Fig. 2": ("the last normalisation layer of layer3 (res4)", "yes"),
        "training-stability seeds": (f"{p['n_seeds']} seeds on the {p['seeds_on']} set", "full: 3 seeds on LIVE"),
        "data": ("bundled stand-ins with proxy labels (100 × SSIM)" if bundled else "LIVE, LIVEC, KonIQ-10k",
                 "no: full uses the real data sets"),
    }


def proxy_label(x_chw: torch.Tensor, pristine: np.ndarray) -> float:
    """The proxy label (SSIM to the pristine crop, in [0, 1]) of one image ``(C, H, W)`` in [0, 1]."""
    from robustbook.data.bundled import proxy_score

    return proxy_score(x_chw.permute(1, 2, 0).double().numpy(), pristine) / 100
