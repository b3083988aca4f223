"""Training plans and evaluation grids of the CIFS chapter (source 003, chapter 4).

The chapter's notebook shows what it teaches and calls these for the bookkeeping: the thesis'
settings per data set (:data:`DATASETS`), the models it compares (:data:`VARIANTS`), training one
model (adversarially, with the adaptive loss, per-epoch PGD-20 curve and best-epoch weights),
and evaluating a model under every attack × β_atk with per-sample worst cases.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from robustbook import attacks
from robustbook.attacks.losses import cross_entropy, margin
from robustbook.checks import PerturbationChecks
from robustbook.data import fashion_mnist, procedural10
from robustbook.device import model_device
from robustbook.losses.cifs import AdaptiveLoss
from robustbook.models import feed_labels, resnet_cifar
from robustbook.modes import preserved_modes
from robustbook.seeding import seed_everything
from robustbook.train import fit, make_loader

#: the thesis' settings per data set (appendix 4.6.2-4.6.4). Attacks: name -> (steps, step size; 0 steps = FGSM)
DATASETS: dict[str, dict[str, Any]] = {
    "fmnist": dict(title="Fashion-MNIST", arch="resnet10", channels=1, eps=0.3, train_steps=20, train_alpha=0.02,
                   lr=0.1, weight_decay=2e-4, milestones=(45, 75, 90), epochs=120,
                   attacks={"FGSM": (0, 0.3), "PGD-20": (20, 0.01), "PGD-100": (100, 0.02)}),
    "cifar10": dict(title="CIFAR-10", arch="resnet18", channels=3, eps=8 / 255, train_steps=10, train_alpha=2 / 255,
                    lr=0.1, weight_decay=2e-4, milestones=(75, 90), epochs=120,
                    attacks={"FGSM": (0, 8 / 255), "PGD-20": (20, 0.8 / 255), "C&W": (30, 0.8 / 255),
                             "PGD-100": (100, 0.8 / 255)}),
    "svhn": dict(title="SVHN", arch="resnet18", channels=3, eps=8 / 255, train_steps=10, train_alpha=2 / 255,
                 lr=0.01, weight_decay=5e-4, milestones=(75, 90), epochs=120,
                 attacks={"FGSM": (0, 8 / 255), "PGD-20": (20, 0.8 / 255), "C&W": (30, 0.8 / 255),
                          "PGD-100": (100, 0.8 / 255)}),
}
CLASS_NAMES = {
    "fmnist": ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    "svhn": tuple(str(d) for d in range(10)),
}

#: the models compared: channel module, CIFS options, training (β of ℓ_β; "normal" = clean training)
MAIN = ("normal", "vanilla", "cas", "cifs")
VARIANTS: dict[str, dict[str, Any]] = {
    "normal": dict(cm=None, train="normal"), "vanilla": dict(cm=None), "cas": dict(cm="cas"), "cifs": dict(cm="cifs"),
    "cifs_sigmoid": dict(cm="cifs", imgf="sigmoid"), "cifs_softplus": dict(cm="cifs", imgf="softplus"),
    "cifs_softmax_one": dict(cm="cifs", softmax_scale="one"), "cifs_softmax_k": dict(cm="cifs", softmax_scale="k"),
    "cifs_beta0.1": dict(cm="cifs", beta=0.1), "cifs_beta1": dict(cm="cifs", beta=1.0),
    "cifs_beta10": dict(cm="cifs", beta=10.0), "cifs_beta100": dict(cm="cifs", beta=100.0),
    "cifs_P1": dict(cm="cifs", positions=("P1",)), "cifs_P2": dict(cm="cifs", positions=("P2",)),
    "cifs_linear": dict(cm="cifs", p2_probe="linear"),
    "cifs_top1": dict(cm="cifs", k=1), "cifs_top3": dict(cm="cifs", k=3),
    "vanilla_fat": dict(cm=None, train="fat"), "cifs_fat": dict(cm="cifs", train="fat"),
}
#: ablation groups (parameter ``ablations``) -> the variants they add
ABLATIONS = {"imgf": ("cifs_sigmoid", "cifs_softplus", "cifs_softmax_one", "cifs_softmax_k"),
             "scale": ("cifs_softmax_one", "cifs_softmax_k"),
             "beta": ("cifs_beta0.1", "cifs_beta1", "cifs_beta10", "cifs_beta100"),
             "position": ("cifs_P1", "cifs_P2"), "probe": ("cifs_linear",), "topk": ("cifs_top1", "cifs_top3"),
             "fat": ("vanilla_fat", "cifs_fat")}
LABELS = {"normal": "Normal (clean training)", "vanilla": "Vanilla", "cas": "CAS", "cifs": "CIFS",
          "cifs_sigmoid": "CIFS-sigmoid", "cifs_softplus": "CIFS-softplus",
          "cifs_softmax_one": "CIFS-softmax (sums to 1)", "cifs_softmax_k": "CIFS-softmax×k",
          "cifs_beta0.1": "β = 0.1", "cifs_beta1": "β = 1", "cifs_beta10": "β = 10", "cifs_beta100": "β = 100",
          "cifs_P1": "P1", "cifs_P2": "P2", "cifs_linear": "Linear-Linear", "cifs_top1": "top-1",
          "cifs_top3": "top-3", "vanilla_fat": "Vanilla-FAT", "cifs_fat": "CIFS-FAT"}


def variants(ablations: list[str], softmax_scale: str | None = None) -> list[str]:
    """The main models plus every variant of the chosen ablation groups (without a softmax-total variant
    that repeats the chapter's ``softmax_scale``, which the main CIFS model already has)."""
    out = list(MAIN)
    for group in ablations:
        if group == "none":
            continue
        out += [v for v in ABLATIONS[group]
                if v not in out and VARIANTS[v].get("softmax_scale", "-") != softmax_scale]
    return out


def beta_key(beta: float, positions: tuple[str, ...] | None = None) -> str:
    b = "inf" if math.isinf(beta) else f"{beta:g}"
    return b + ("" if positions is None else "-" + "+".join(positions))


def parse_beta(key: str) -> tuple[float, tuple[str, ...] | None]:
    """``"2"`` -> (2, None); ``"inf-P1"`` -> (inf, ("P1",)) (attack one module's raw prediction only)."""
    head, _, pos = key.partition("-")
    return (math.inf if head == "inf" else float(head)), (tuple(pos.split("+")) if pos else None)


# ------------------------------------------------------------------------------------------------ data
def load_data(ds: str, cfg: Any) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_test, y_test) of data set ``ds`` at this profile's sizes.

    Fashion-MNIST is always real (the prepared copy, else Debian's package). CIFAR-10 and SVHN are
    the real sets with ``data=real`` and the procedural 10-class colour set at 32×32 otherwise.
    """
    seed = int(cfg.seed)
    if ds == "fmnist":
        return fashion_mnist(cfg.n_train, cfg.n_test, seed=seed)
    if cfg.data == "real":
        from robustbook.data.classification import load_classification

        xtr, ytr = load_classification(ds, "train", channels=3, limit=cfg.n_train or None, seed=seed)
        xte, yte = load_classification(ds, "test", channels=3, limit=cfg.n_test or None, seed=seed)
        return xtr, ytr, xte, yte
    n_tr = max(1, (cfg.n_train or 5000) // 10)
    return procedural10(n_tr, max(1, cfg.n_test // 10), size=32, seed=seed)


# ------------------------------------------------------------------------------------------------ models
def build(ds: str, name: str, cfg: Any) -> torch.nn.Module:
    """The network of variant ``name`` for data set ``ds`` (ResNet-10 / ResNet-18 / WRN-28-10 per ``cfg``).

    CIFS variants take the chapter's ``softmax_scale`` unless they set their own (the IMGF ablation's
    "sums to 1" and "×k" variants).
    """
    D, V = DATASETS[ds], VARIANTS[name]
    arch = cfg.cifar_arch if ds != "fmnist" else D["arch"]
    kw = {k: V[k] for k in ("k", "imgf", "softmax_scale") if k in V}
    if V["cm"] == "cifs":
        kw.setdefault("softmax_scale", cfg.softmax_scale)
    return resnet_cifar(arch, 10, D["channels"], width=cfg.width, channel_module=V["cm"],
                        positions=V.get("positions", ("P1", "P2")), p2_probe=V.get("p2_probe", "mlp"), **kw)


def beta_train(name: str, cfg: Any) -> float:
    """β of the training loss: the variant's, else the chapter's ``beta`` (thesis: 2 = |I|); 0 without modules."""
    V = VARIANTS[name]
    return 0.0 if V["cm"] is None else float(V.get("beta", cfg.beta))


def train_attack(ds: str, name: str, net: torch.nn.Module, cfg: Any) -> attacks.Attack | None:
    """The inner maximisation of eq. (4.4): PGD on ℓ_β (random start), in train mode so CIFS sees the labels.

    ``train_steps`` = 0 takes the thesis' PGD-10/PGD-20 and step size; fewer steps take the step
    ``max(thesis step, 2.5 ε / steps)`` (Madry et al.'s rule), so that the path still spans the ball.
    """
    V, D = VARIANTS[name], DATASETS[ds]
    if V.get("train") == "normal":
        return None
    steps = cfg.train_steps or D["train_steps"]
    alpha = D["train_alpha"] if steps >= D["train_steps"] else max(D["train_alpha"], 2.5 * D["eps"] / steps)
    loss = AdaptiveLoss(net, beta_train(name, cfg))
    if V.get("train") == "fat":
        return attacks.FAT(D["eps"], steps, alpha=alpha, tau=cfg.fat_tau, loss=loss, eval_mode=False)
    return attacks.PGD(D["eps"], steps, alpha=alpha, loss=loss, eval_mode=False)


def milestones(ds: str, epochs: int) -> list[int]:
    """The thesis' learning-rate drops (×0.1), at the same fractions of a shorter schedule."""
    D = DATASETS[ds]
    return sorted({max(1, round(m * epochs / D["epochs"])) for m in D["milestones"] if m < D["epochs"]})


def curve_attack(ds: str, max_steps: int = 0) -> attacks.Attack:
    """PGD-20 on the output's cross-entropy (the per-epoch curve of Fig. 4.4 and the activation figures);
    ``max_steps`` > 0 caps the steps (smoke only)."""
    steps, alpha = DATASETS[ds]["attacks"]["PGD-20"]
    steps = min(steps, max_steps) if max_steps else steps
    return attacks.PGD(DATASETS[ds]["eps"], steps, alpha=alpha, generator=torch.Generator().manual_seed(20))


def train_variant(ds: str, name: str, cfg: Any, data: tuple, progress: bool = False) -> dict:
    """Train one model; return its last and best-epoch weights (best = highest PGD-20 accuracy) and history."""
    xtr, ytr, xte, yte = data
    D = DATASETS[ds]
    seed_everything(int(cfg.seed))
    net = build(ds, name, cfg)
    loader = make_loader(TensorDataset(xtr, ytr), cfg.batch_size, shuffle=True, seed=int(cfg.seed))
    x_c, y_c = xte[: cfg.n_curve], yte[: cfg.n_curve]
    pgd20 = curve_attack(ds, cfg.max_attack_steps)
    best: dict[str, Any] = {"acc": -1.0, "state": None, "epoch": 0}

    def eval_fn(model, _loader):
        t0 = time.perf_counter()
        with preserved_modes(model, training=False):
            clean = _accuracy(model, x_c, y_c)
            adv = _accuracy(model, attack_in_batches(pgd20, model, x_c, y_c), y_c)
        return {"clean_acc": clean, "pgd20_acc": adv, "eval_seconds": time.perf_counter() - t0}

    def keep_best(record, model):
        if record["pgd20_acc"] > best["acc"]:
            best.update(acc=record["pgd20_acc"], epoch=record["epoch"],
                        state={k: v.detach().clone() for k, v in model.state_dict().items()})

    lr = D["lr"] if cfg.lr is None or cfg.lr == 0 else cfg.lr
    history = fit(net, feed_labels(loader, net), loss_fn=AdaptiveLoss(net, beta_train(name, cfg), reduction="mean"),
                  epochs=cfg.epochs, seed=int(cfg.seed), attack=train_attack(ds, name, net, cfg),
                  optimizer=lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=D["weight_decay"]),
                  scheduler=lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones(ds, cfg.epochs), 0.1),
                  eval_fn=eval_fn, progress=progress,
                  callbacks=[keep_best])
    return {"state": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "best_state": {k: v.cpu() for k, v in best["state"].items()}, "best_epoch": best["epoch"],
            "history": history.as_dict()}


# ------------------------------------------------------------------------------------------------ evaluation
def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, bs: int = 256) -> float:
    dev = model_device(model)
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + bs].to(dev)).argmax(1).cpu() for i in range(0, len(x), bs)])
    return float((pred == y).float().mean())


def attack_in_batches(attack: Callable, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                      bs: int = 256) -> torch.Tensor:
    dev = model_device(model)
    with torch.enable_grad():
        return torch.cat([attack(model, x[i:i + bs].to(dev), y[i:i + bs].to(dev)).cpu()
                          for i in range(0, len(x), bs)])


def attack_grid(ds: str, model: torch.nn.Module, betas: list[str], attack_names: list[str] | None = None,
                seed: int = 0, long_betas: list[str] | None = None) -> dict[str, dict[str, attacks.Attack]]:
    """{attack: {β_atk key: Attack}}: the thesis' attacks on ℓ_β (C&W: the margin loss in ℓ_β) for every β_atk.

    ``long_betas`` (default ``betas``) are the β_atk tried with the long attack (PGD-100). A vanilla
    model has no raw predictions: it gets β_atk = 0 only. Keys naming a position the model lacks
    (``inf-P2`` for a P1-only model) are skipped.
    """
    D = DATASETS[ds]
    have = set(getattr(model, "select", {}) or {})
    grid: dict[str, dict[str, attacks.Attack]] = {}
    for name, (steps, alpha) in D["attacks"].items():
        if attack_names is not None and name not in attack_names:
            continue
        base = margin if name == "C&W" else cross_entropy
        row = {}
        tried = (long_betas or betas) if steps >= 100 else betas
        for key in (tried if have else ["0"]):
            beta, pos = parse_beta(key)
            if pos is not None and not set(pos) <= have:
                continue
            loss = AdaptiveLoss(model, beta, positions=pos, base=base)
            gen = torch.Generator().manual_seed(seed + 7919 * len(row))
            row[key] = (attacks.FGSM(D["eps"], loss=loss) if steps == 0 else
                        attacks.PGD(D["eps"], steps, alpha=alpha, loss=loss, generator=gen))
        grid[name] = row
    return grid


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
             grid: dict[str, dict[str, attacks.Attack]], eps: float, bs: int = 256,
             every_point: tuple[str, ...] = ("FGSM", "PGD-20")) -> dict[str, Any]:
    """Accuracies (%) of ``model`` under every attack and β_atk, with per-sample worst cases.

    Returns ``{"natural", "attacks": {name: {"beta": {key: acc}, "worst": acc, "worst_beta": key,
    "class": [acc per class of the worst case], "topk": {1, 2, 3} (β = 0), "probe": {key: {pos: acc}}}},
    "worst": acc over every attack}`` and the perturbation checks under ``"_checks"``.
    A point counts as robust only if it is clean-correct and survives. The attacks in ``every_point``
    (those of the top-k and probe tables, 4.4 and 4.5) attack every test point; the others attack
    only the clean-correct ones, the only points their accuracies count (same numbers, less work:
    "topk" and "probe" are then absent).
    """
    dev = model_device(model)
    checks = PerturbationChecks("linf", eps)
    out: dict[str, Any] = {"attacks": {}}
    with preserved_modes(model, training=False):
        with torch.no_grad():
            clean = torch.cat([model(x[i:i + bs].to(dev)).argmax(1).cpu() for i in range(0, len(x), bs)]) == y
        out["natural"] = 100 * float(clean.float().mean())
        everything = clean.clone()
        for name, row in grid.items():
            node: dict[str, Any] = {"beta": {}, "probe": {}}
            alive = clean.clone()
            idx = torch.arange(len(y)) if name in every_point else clean.nonzero().flatten()
            for key, attack in row.items():
                ok = torch.zeros_like(clean)
                if len(idx):
                    x_adv = attack_in_batches(attack, model, x[idx], y[idx], bs)
                    checks.update(x[idx], x_adv)
                    logits, probes = _logits(model, x_adv, bs)
                    ok[idx] = clean[idx] & (logits.argmax(1) == y[idx])
                    if name in every_point:
                        node["probe"][key] = {p: 100 * float((v.argmax(1) == y).float().mean())
                                              for p, v in probes.items()}
                        if key == "0":
                            top = logits.topk(3, dim=1).indices
                            node["topk"] = {str(k): 100 * float((top[:, :k] == y[:, None]).any(1).float().mean())
                                            for k in (1, 2, 3)}
                node["beta"][key] = 100 * float(ok.float().mean())
                alive &= ok
            if not node["probe"]:
                del node["probe"]
            node["worst"] = 100 * float(alive.float().mean())
            node["worst_beta"] = min(node["beta"], key=node["beta"].get)
            node["class"] = [100 * float(alive[y == c].float().mean()) if (y == c).any() else None
                             for c in range(int(y.max()) + 1)]
            everything &= alive
            out["attacks"][name] = node
        out["worst"] = 100 * float(everything.float().mean())
    out["_checks"] = checks
    return out


def _logits(model: torch.nn.Module, x: torch.Tensor, bs: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    dev = model_device(model)
    outs, probes = [], {}
    with torch.no_grad():
        for i in range(0, len(x), bs):
            outs.append(model(x[i:i + bs].to(dev)).cpu())
            for p, v in getattr(model, "probe_logits", {}).items():
                probes.setdefault(p, []).append(v.detach().cpu())
    return torch.cat(outs), {p: torch.cat(v) for p, v in probes.items()}


def balanced_subset(y: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``per_class`` test images of every class (the thesis' 200 per class for AutoAttack)."""
    g = np.random.default_rng(seed)
    idx = [g.permutation(np.flatnonzero(y.numpy() == c))[:per_class] for c in range(int(y.max()) + 1)]
    return torch.from_numpy(np.sort(np.concatenate(idx)))


def strip_checks(ev: dict) -> dict:
    """``evaluate``'s result without its perturbation accumulator (for ``run.log``)."""
    return {k: copy.deepcopy(v) for k, v in ev.items() if not k.startswith("_")}


# ------------------------------------------------------------------------------------------------ coverage
def coverage(cfg: Any, get: Callable[[str], Any], key: dict[str, str]) -> list[dict[str, str]]:
    """What this profile computed of the issue's tables and figures, and, for what it did not, the
    parameter that left it out (rows: item, status)."""
    ds, abl, betas = list(cfg.datasets), set(cfg.ablations), list(cfg.betas_atk)
    first = ds[0]

    def need(ok: bool, why: str) -> str:
        return "computed" if ok else f"not run at this profile: {why}"

    cifar = "cifar10" in ds
    rows = [
        ("Figs. 4.1/4.3/4.5 channel activations", need(True, ""), f"on {DATASETS[first]['title']}"),
        (
            "Table 4.1 CIFAR-10 ResNet-18",
            need(
                cifar and cfg.cifar_arch == "resnet18",
                f"datasets = {ds}" if not cifar else f"cifar_arch = {cfg.cifar_arch}",
            ),
            "",
        ),
        (
            "Table 4.1 CIFAR-10 WRN-28-10",
            need(
                cifar and cfg.cifar_arch == "wrn28",
                f"datasets = {ds}" if not cifar else f"cifar_arch = {cfg.cifar_arch}",
            ),
            "",
        ),
        ("Table 4.2 SVHN", need("svhn" in ds, f"datasets = {ds}"), ""),
        ("Table 4.3 FAT", need("fat" in abl, f"ablations = {sorted(abl)} (needs fat)"), ""),
        ("Table 4.4 top-k under attack", need(True, ""), "vanilla, FGSM and PGD-20"),
        (
            "Table 4.5 top-2 row (attack point CIFS / Final)",
            need("inf-P1" in betas, f"betas_atk = {betas} (needs inf-P1)"),
            "",
        ),
        ("Table 4.5 top-1 / top-3 rows", need("topk" in abl, f"ablations = {sorted(abl)} (needs topk)"), ""),
        (
            "Table 4.6 AutoAttack (APGD-CE + Square)",
            need(True, ""),
            f"{10 * cfg.n_aa_per_class} images, APGD {cfg.apgd_steps} steps, Square {cfg.square_queries} queries "
            "(thesis 2,000 / 100 / 5,000)",
        ),
        ("Table 4.7 best epoch", need(True, ""), f"β_atk {list(cfg.best_betas)}"),
        (
            "Table 4.8 every β_atk, worst case",
            need(True, ""),
            f"β_atk {betas}; PGD-100 with {list(cfg.betas_pgd100)} (thesis 0, 0.1, 1, 2, 10, 100, ∞, ∞-1, ∞-2)",
        ),
        ("Table 4.12 Fashion-MNIST (last and best epoch)", need("fmnist" in ds, f"datasets = {ds}"), ""),
        (
            "Tables 4.13 β / 4.14 position / 4.15 probe",
            need({"beta", "position", "probe"} <= abl, f"ablations = {sorted(abl)} (needs beta, position, probe)"),
            "",
        ),
        ("Fig. 4.3 IMGF comparison", need("imgf" in abl, f"ablations = {sorted(abl)} (needs imgf)"), ""),
        ("Softmax total: thesis (1) and authors' code (×k) beside the chapter's",
         need(bool({"imgf", "scale"} & abl), f"ablations = {sorted(abl)} (needs scale or imgf)"),
         f"chapter: softmax_scale = {cfg.softmax_scale}"),
        (
            "Fig. 4.4 training curves",
            need(True, ""),
            f"{cfg.epochs} epochs (thesis 120), PGD-20 on {cfg.n_curve} images",
        ),
        ("Fig. 4.6 class-wise robust accuracy", need(True, ""), "PGD-20, worst β_atk"),
        (
            "Training overhead per epoch",
            need(get(f"timing.{key[first]}") is not None, "the weights came from the cache (no time measured)"),
            "",
        ),
        (
            "C&W (margin loss by PGD-30)",
            need(any(d != "fmnist" for d in ds), "the thesis runs no C&W on Fashion-MNIST (appendix 4.6.4)"),
            "",
        ),
    ]
    return [{"item": a, "status": b, "setting": c} for a, b, c in rows]


# ------------------------------------------------------------------------------------------------ scorecard
C10, W28, SV, FM = "cifar10_resnet18", "cifar10_wrn28", "svhn_resnet18", "fmnist"


def ev_key(key: str, model: str, attack: str | None = None, which: str = "last") -> str:
    """metrics.json key of a model's natural accuracy or worst-case accuracy under ``attack``."""
    tail = "natural" if attack is None else f"attacks.{attack}.worst"
    return f"eval.{key}.{model}.{which}.{tail}"


def best_of(
    get: Callable[[str], Any], key: str, model: str, rivals: list[str], attack: str = "PGD-100"
) -> float | None:
    """1 if ``model`` is at least as robust as every rival that ran, 0 if not, None if none ran."""
    mine = get(ev_key(key, model, attack))
    others = [o for o in (get(ev_key(key, r, attack)) for r in rivals) if o is not None]
    return None if mine is None or not others else float(mine >= max(others))


def _cells(key: str, where: str, values: dict, attacks_=("Natural", "PGD-20", "PGD-100"), which: str = "last"):
    from robustbook.scorecard import Claim

    return [
        Claim(
            f"{where}, {LABELS[model]} {a}",
            ev_key(key, model, None if a == "Natural" else a, which),
            paper=paper,
            tol=2.0,
        )
        for model, nums in values.items()
        for a, paper in zip(attacks_, nums, strict=False)
    ]


def scorecard_claims(get: Callable[[str], Any], ds_key: str) -> list:
    """Every claim of the issue's scorecard list (thesis chapter 4 and appendix 4.6), as
    :class:`robustbook.scorecard.Claim` over this run's metrics; ``ds_key`` = the figures' data set."""
    from robustbook.scorecard import Claim

    claims = _cells(
        C10,
        "Table 4.1 ResNet-18",
        {"vanilla": (84.56, 46.62, 44.72), "cas": (86.73, 45.29, 43.22), "cifs": (83.86, 51.23, 48.70)},
    )
    claims += [
        Claim(
            "Table 4.1 ResNet-18: CIFS beats vanilla under PGD-100",
            ev_key(C10, "cifs", "PGD-100"),
            direction=(">", ev_key(C10, "vanilla", "PGD-100")),
        ),
        Claim(
            "Table 4.1 ResNet-18: CAS does not improve on vanilla under PGD-100 (adaptive attack)",
            ev_key(C10, "cas", "PGD-100"),
            direction=("<=", ev_key(C10, "vanilla", "PGD-100")),
        ),
    ]
    claims += _cells(W28, "Table 4.1 WRN-28-10", {"vanilla": (47.08,), "cas": (47.25,), "cifs": (51.51,)}, ("PGD-100",))
    claims += _cells(SV, "Table 4.2 SVHN", {"vanilla": (45.81,), "cas": (43.75,), "cifs": (47.49,)}, ("PGD-100",))
    claims += [
        Claim(
            "Table 4.2 SVHN: CIFS beats vanilla under PGD-100",
            ev_key(SV, "cifs", "PGD-100"),
            direction=(">", ev_key(SV, "vanilla", "PGD-100")),
        )
    ]
    claims += _cells(C10, "Table 4.3 FAT", {"vanilla_fat": (45.35,), "cifs_fat": (49.52,)}, ("PGD-100",))
    claims += [
        Claim(
            "Table 4.3: CIFS-FAT beats Vanilla-FAT under PGD-100",
            ev_key(C10, "cifs_fat", "PGD-100"),
            direction=(">", ev_key(C10, "vanilla_fat", "PGD-100")),
        )
    ]
    claims += [
        Claim(f"Table 4.4 vanilla PGD-20 top-{k}", f"eval.{C10}.vanilla.last.attacks.PGD-20.topk.{k}", paper=p, tol=2.0)
        for k, p in ((1, 46.62), (2, 71.71), (3, 81.60))
    ]
    for key in dict.fromkeys([C10, ds_key]):
        claims += [
            Claim(
                f"Table 4.4 ({key}): top-2 accuracy under PGD-20 exceeds top-1 by > 10 points",
                f"eval.{key}.vanilla.last.attacks.PGD-20.topk.2",
                direction=(">", (get(f"eval.{key}.vanilla.last.attacks.PGD-20.topk.1") or 0) + 10),
            )
        ]
    claims += [
        Claim("Table 4.5 top-2 CIFS/CIFS", f"t45.{C10}.top2.CIFS/CIFS", paper=48.72, tol=2.0),
        Claim("Table 4.5 top-2 CIFS/Final", f"t45.{C10}.top2.CIFS/Final", paper=54.96, tol=2.0),
        Claim("Table 4.5 top-1 Adap/Final", f"t45.{C10}.top1.Adap/Final", paper=47.24, tol=2.0),
        Claim("Table 4.5 top-3 CIFS/Final", f"t45.{C10}.top3.CIFS/Final", paper=55.39, tol=2.0),
        Claim(
            "Table 4.5: top-2 beats top-1 under the adaptive attack",
            f"t45.{C10}.top2.Adap/Final",
            direction=(">", f"t45.{C10}.top1.Adap/Final"),
        ),
    ]
    for key in dict.fromkeys([C10, ds_key]):
        claims += [
            Claim(
                f"Table 4.5 ({key}): the final prediction survives the attack on CIFS's probe more often "
                "than the probe",
                f"t45.{key}.top2.CIFS/Final",
                direction=(">", f"t45.{key}.top2.CIFS/CIFS"),
            )
        ]
    claims += [
        Claim(f"Table 4.6 AutoAttack {LABELS[n]}", f"aa.{C10}.{n}.robust", paper=p, tol=2.0)
        for n, p in (("vanilla", 44.00), ("cas", 42.70), ("cifs", 46.20))
    ]
    claims += [
        Claim(
            f"Table 4.6 ({key}): CIFS beats vanilla under AutoAttack",
            f"aa.{key}.cifs.robust",
            direction=(">", f"aa.{key}.vanilla.robust"),
        )
        for key in dict.fromkeys([C10, ds_key])
    ]
    claims += _cells(C10, "Table 4.7 best epoch", {"vanilla": (49.47,), "cifs": (49.76,)}, ("PGD-100",), "best")
    claims += [
        Claim(
            "Fig. 4.3 IMGF: vanilla PGD-20 (46.64 in the text)", ev_key(C10, "vanilla", "PGD-20"), paper=46.64, tol=2.0
        ),
        Claim(
            "Fig. 4.3 IMGF: CIFS-sigmoid PGD-20",
            ev_key(C10, "cifs_sigmoid", "PGD-20"),
            paper=49.87,
            tol=2.0,
            direction=(">", ev_key(C10, "vanilla", "PGD-20")),
        ),
        Claim(
            "Fig. 4.3 IMGF: CIFS-softplus PGD-20",
            ev_key(C10, "cifs_softplus", "PGD-20"),
            paper=50.38,
            tol=2.0,
            direction=(">", ev_key(C10, "cifs_sigmoid", "PGD-20")),
        ),
        Claim(
            "Fig. 4.3 IMGF: CIFS-softmax PGD-20 is the best IMGF",
            ev_key(C10, "cifs", "PGD-20"),
            paper=51.23,
            tol=2.0,
            direction=(">", ev_key(C10, "cifs_softplus", "PGD-20")),
        ),
        Claim(
            "Fig. 4.4: vanilla's best PGD-20 accuracy during training",
            f"curve.{C10}.vanilla.best_pgd20",
            paper=50.64,
            tol=2.0,
        ),
        Claim("Fig. 4.4: vanilla peaks near epoch 75 (of 120)", f"curve.{C10}.vanilla.best_epoch", paper=75, tol=10),
    ]
    for key in dict.fromkeys([C10, ds_key]):
        claims += [
            Claim(
                f"Fig. 4.4 ({key}): vanilla overfits after its peak (PGD-20 drop > 1 point)",
                f"curve.{key}.vanilla.drop",
                direction=(">", 1.0),
            ),
            Claim(
                f"Fig. 4.4 ({key}): CIFS overfits less (smaller drop after its peak)",
                f"curve.{key}.cifs.drop",
                direction=("<", f"curve.{key}.vanilla.drop"),
            ),
        ]
    claims += [
        Claim("Fig. 4.6: vanilla cat PGD-20", f"eval.{C10}.vanilla.last.attacks.PGD-20.class.cat", paper=16.7, tol=2.0),
        Claim(
            "Fig. 4.6: CIFS cat PGD-20 (higher than vanilla)",
            f"eval.{C10}.cifs.last.attacks.PGD-20.class.cat",
            paper=22.3,
            tol=2.0,
            direction=(">", f"eval.{C10}.vanilla.last.attacks.PGD-20.class.cat"),
        ),
        Claim(
            "Fig. 4.6: vanilla deer PGD-20", f"eval.{C10}.vanilla.last.attacks.PGD-20.class.deer", paper=25.5, tol=2.0
        ),
        Claim(
            "Fig. 4.6: CIFS deer PGD-20 (higher than vanilla)",
            f"eval.{C10}.cifs.last.attacks.PGD-20.class.deer",
            paper=28.8,
            tol=2.0,
            direction=(">", f"eval.{C10}.vanilla.last.attacks.PGD-20.class.deer"),
        ),
        Claim(
            f"Fig. 4.6 ({ds_key}): CIFS raises the vanilla network's two weakest classes",
            f"classwise.{ds_key}.gain_weakest",
            direction=(">", 0.0),
        ),
        Claim("Table 4.13: β = 2 is the best β (PGD-100)", "derived.beta2_best", direction=(">=", 1.0)),
        Claim("Table 4.14: P1-P2 is the best position (PGD-100)", "derived.p1p2_best", direction=(">=", 1.0)),
        Claim(
            "Table 4.15: MLP-Linear natural accuracy (above Linear-Linear's 81.52)",
            ev_key(C10, "cifs"),
            paper=83.86,
            tol=2.0,
            direction=(">", ev_key(C10, "cifs_linear")),
        ),
        Claim(
            f"Overhead: CIFS / vanilla training time per epoch (172/166 s) on {ds_key}",
            f"timing.{ds_key}.ratio",
            paper=round(172 / 166, 3),
            tol=0.1,
            direction=("<", 1.5),
        ),
    ]
    claims += _cells(
        FM,
        "Table 4.12 FMNIST last",
        {"vanilla": (85.19, 80.52, 60.99), "cas": (86.59, 82.45, 59.51), "cifs": (83.35, 77.48, 65.50)},
        ("Natural", "FGSM", "PGD-100"),
    )
    claims += _cells(
        FM, "Table 4.12 FMNIST best", {"vanilla": (63.36,), "cas": (62.65,), "cifs": (67.21,)}, ("PGD-100",), "best"
    )
    claims += [
        Claim(
            "Table 4.12: CIFS beats vanilla under PGD-100 (last epoch)",
            ev_key(FM, "cifs", "PGD-100"),
            direction=(">", ev_key(FM, "vanilla", "PGD-100")),
        ),
        Claim(
            "Table 4.12: CIFS beats CAS under PGD-100 (last epoch)",
            ev_key(FM, "cifs", "PGD-100"),
            direction=(">", ev_key(FM, "cas", "PGD-100")),
        ),
        Claim(
            "Table 4.12: CIFS costs natural accuracy (below vanilla)",
            ev_key(FM, "cifs"),
            direction=("<", ev_key(FM, "vanilla")),
        ),
        Claim(
            "Table 4.12: CAS has the best natural accuracy (above vanilla)",
            ev_key(FM, "cas"),
            direction=(">", ev_key(FM, "vanilla")),
        ),
        Claim(
            "Table 4.12: CIFS beats vanilla under PGD-100 (best epoch)",
            ev_key(FM, "cifs", "PGD-100", "best"),
            direction=(">", ev_key(FM, "vanilla", "PGD-100", "best")),
        ),
        Claim(
            f"Fig. 4.1 ({ds_key}): AT brings adversarial NR-channel activations closer to natural ones than "
            "normal training",
            f"act.{ds_key}.vanilla.nr_excess",
            direction=("<", f"act.{ds_key}.normal.nr_excess"),
        ),
        Claim(
            f"Fig. 4.3 ({ds_key}): CIFS activates NR channels less often on adversarial data than vanilla AT",
            f"act.{ds_key}.cifs.nr_freq_adv",
            direction=("<", f"act.{ds_key}.vanilla.nr_freq_adv"),
        ),
    ]
    return claims
