"""Training plan and evaluation grid of the chapter "Robustness as architecture" (source 001).

The page shows what teaches something (the block, the attacks, the scores); this module holds the
plumbing: data, the chain base → RobustBlock → pruning, AT and NT baselines (all cached by
configuration), and one evaluation function that every table calls.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from robustbook import attacks, metrics
from robustbook.attacks import losses
from robustbook.cache import cached_state
from robustbook.data.nr_splits import nr_iqa_splits
from robustbook.data import FlipRotateDataset, load_split, prepare
from robustbook.evaluate import attack_all, predict
from robustbook.losses.norm_in_norm import norm_in_norm_loss
from robustbook.losses.tres import FlipConsistency, tres_loss
from robustbook.models import (
    RobustBlock,
    load_pretrained,
    make_permanent,
    nr_iqa_model,
    pls_filter_importance,
    prunable_convs,
    prune_filters,
)
from robustbook.seeding import seed_everything
from robustbook.train import fit, make_loader
from robustbook.train.gradnorm import fit_gradient_norm

MODELS = ("linearity", "dbcnn", "tres")
NAME = {"linearity": "Linearity", "dbcnn": "DBCNN", "tres": "TReS"}
DEFENCES = ("vanilla", "block", "at", "nt")
DEFENCE_NAME = {"vanilla": "unmodified", "block": "RobustBlock + pruning", "at": "AT", "nt": "NT"}


def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out, y)


#: each model's training loss: Linearity's norm-in-norm, DBCNN's MSE, TReS's objective (L1 + relative
#: ranking + flip self-consistency, trained through the FlipConsistency view: see ``trainable``)
LOSS = {"linearity": norm_in_norm_loss, "dbcnn": mse, "tres": tres_loss}


def trainable(name: str, model: nn.Module) -> nn.Module:
    """What ``fit`` trains: TReS through its flip-consistency view (its loss needs x and τ(x)), the others as they are."""
    return FlipConsistency(model) if name == "tres" else model


def scorer(m: nn.Module) -> nn.Module:
    """The score network inside a training view (attacks and penalties act on it)."""
    return m.model if isinstance(m, FlipConsistency) else m


# ---------------------------------------------------------------------------------------------- data
def load_data(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Train and test tensors (scores in [0, 1], 1 = best) and a sentence saying what they are."""
    out = nr_iqa_splits(cfg["data_source"], cfg["crop"], cfg["per_photo"], cfg["n_train"], cfg["n_test"],
                        cfg["seed"])
    out["robust"] = None
    lim = lambda n: n or None  # noqa: E731  (0 = all)
    if cfg["robust_set"] == "nips2017":  # the source's robustness set: 1,000 images, no quality labels needed
        xr, _, _ = load_split(prepare("nips2017_dev"), "test", size=cfg["crop"], limit=lim(cfg["n_test"]),
                              seed=cfg["seed"])
        out["robust"] = xr
        out["note"] += (f"; robustness scores on {len(xr)} images of the NIPS 2017 adversarial-competition "
                        f"development set, resized to {cfg['crop']} px")
    return out


# ---------------------------------------------------------------------------------------------- models
def block_for(cfg: Mapping[str, Any], model: nn.Module, pos: int, kind: str) -> RobustBlock:
    """The chapter's RobustBlock for stage ``pos`` of ``model``: pooled to ``min(map side, block_size)``."""
    width = model.backbone.widths[pos - 1]
    size = min(model.backbone.out_size(pos, cfg["crop"]), cfg["block_size"])
    return RobustBlock(width, size, reduced=max(2, width // 2), kernel_size=min(cfg["block_kernel"], size),
                       conv=kind, activation=cfg["block_activation"])


def build(cfg: Mapping[str, Any], spec: Mapping[str, Any]) -> nn.Module:
    """A fresh model of ``spec`` (``model``, optional ``pos`` and ``kind`` of a RobustBlock)."""
    m = nr_iqa_model(spec["model"], tuple(cfg["widths"]), tuple(cfg["strides"]), backbone=cfg["backbone"])
    if spec.get("pos"):
        m.backbone.insert(spec["pos"], block_for(cfg, m, spec["pos"], spec["kind"]))
    return m


def _freeze_prefix(model: nn.Module, pos: int) -> None:
    """Freeze the stages before the block ("pre-trained conv blocks frozen", source 001); their
    BatchNorm running statistics stay fixed too (momentum 0)."""
    for i, st in enumerate(list(model.backbone.stages)[:pos], start=1):
        first = st[0] if i in model.backbone.inserted else st  # the stage, without a block inserted after it
        for p in first.parameters():
            p.requires_grad_(False)
        for mod in first.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.momentum = 0.0


def _loader(cfg, data, seed):
    x, y = data["train"]
    ds = FlipRotateDataset(x, y) if cfg["augment"] else TensorDataset(x, y)
    return make_loader(ds, cfg["batch_size"], shuffle=True, seed=seed, drop_last=True)


def _adam(lr: float):
    return lambda params: torch.optim.Adam([p for p in params if p.requires_grad], lr=lr)


KEYS = ("data_source", "crop", "per_photo", "n_train", "widths", "strides", "backbone", "pretrained_weights", "epochs",
        "batch_size", "lr", "augment", "seed")


class Trainer:
    """Trains (or loads from the cache) every model of the chapter, and records training times."""

    def __init__(self, cfg: Mapping[str, Any], data: Mapping[str, Any], device: torch.device, quiet: bool) -> None:
        self.cfg, self.data, self.dev, self.quiet = cfg, data, device, quiet
        self.train_s: dict[str, float] = {}

    def _key(self, spec: Mapping[str, Any], extra: tuple[str, ...] = ()) -> dict:
        return {"chapter": "robustblock", "spec": dict(spec), **{k: self.cfg[k] for k in KEYS + extra}}

    def _cached(self, label: str, spec: Mapping[str, Any], extra: tuple[str, ...], train) -> nn.Module:
        def timed():
            t0 = time.perf_counter()
            state = train()
            return {"state": state, "seconds": time.perf_counter() - t0}
        out, _ = cached_state(f"robustblock-{label}", self._key(spec, extra), timed)
        model = build(self.cfg, spec)
        model.load_state_dict(out["state"])
        self.train_s[label] = float(out["seconds"])
        return model.to(self.dev).eval()

    def _fit(self, model, name, epochs, lr, **kw):
        fit(trainable(name, model), _loader(self.cfg, self.data, self.cfg["seed"]), loss_fn=LOSS[name], epochs=epochs,
            optimizer=_adam(lr), seed=self.cfg["seed"], device=self.dev, progress=False, **kw)
        return {k: v.detach().cpu() for k, v in make_permanent(model).state_dict().items()}

    def base(self, name: str) -> nn.Module:
        """The unmodified model: from scratch, or from user-provided ImageNet weights (``pretrained_weights``)."""
        spec = {"model": name}

        def train():
            seed_everything(self.cfg["seed"])
            model = build(self.cfg, spec)
            if self.cfg["pretrained_weights"]:
                load_pretrained(model, self.cfg["pretrained_weights"])
            return self._fit(model, name, self.cfg["epochs"], self.cfg["lr"])
        return self._cached(f"{name}-base", spec, (), train)

    def block(self, name: str, pos: int, kind: str) -> nn.Module:
        """Base weights, a RobustBlock after stage ``pos``, the stages before it frozen, fine-tuned."""
        spec = {"model": name, "pos": pos, "kind": kind}

        def train():
            seed_everything(self.cfg["seed"])
            model = build(self.cfg, spec)
            missing = model.load_state_dict(self._remap(self.base(name).state_dict(), pos), strict=False)
            assert all(".1." in k for k in missing.missing_keys), missing  # only the block is new
            _freeze_prefix(model, pos)
            return self._fit(model, name, self.cfg["ft_epochs"], self.cfg["ft_lr"])
        return self._cached(f"{name}-block{pos}-{kind}", spec, ("ft_epochs", "ft_lr", "block_size", "block_kernel",
                                                                 "block_activation"), train)

    @staticmethod
    def _remap(state: dict, pos: int) -> dict:
        """Base keys ``backbone.stages.{pos-1}.x`` → ``backbone.stages.{pos-1}.0.x`` (the stage is now a Sequential)."""
        pre = f"backbone.stages.{pos - 1}."
        return {(pre + "0." + k[len(pre):] if k.startswith(pre) else k): v for k, v in state.items()}

    def prune_method(self, name: str) -> str:
        """``"pls"`` for the models of ``pls_models`` (the source: PLS for complex architectures), else ``"l2"``."""
        return "pls" if name in self.cfg["pls_models"] else "l2"

    def pruned(self, name: str, pos: int, kind: str, share: float, method: str | None = None) -> nn.Module:
        """The RobustBlock model with ``share`` of its backbone filters pruned (L2 norm or PLS-VIP), then fine-tuned."""
        method = method or self.prune_method(name)
        spec = {"model": name, "pos": pos, "kind": kind}

        def train():
            seed_everything(self.cfg["seed"])
            model = self.block(name, pos, kind).cpu()
            for p in model.parameters():
                p.requires_grad_(True)
            imp = None
            if method == "pls":  # VIP w.r.t. the model's own predicted score on training images
                model.to(self.dev)
                imp = pls_filter_importance(model, self.data["train"][0][: self.cfg["pls_images"]].to(self.dev),
                                            layers=prunable_convs(model.backbone))
            report = prune_filters(model.backbone, share, importance=imp)
            assert report.removed == round(share * report.total)
            return self._fit(model, name, self.cfg["prune_epochs"], self.cfg["ft_lr"])
        label = f"{name}-block{pos}-{kind}-prune{share:g}" + ("-pls" if method == "pls" else "")
        return self._cached(label, {**spec, "prune": share, "method": method},
                            ("ft_epochs", "ft_lr", "block_size", "block_kernel", "block_activation", "prune_epochs")
                            + (("pls_images",) if method == "pls" else ()), train)

    def adversarial(self, name: str) -> nn.Module:
        """AT: the base model fine-tuned on PGD examples that raise the score (mixed 1:1 with clean ones)."""
        spec = {"model": name}

        def train():
            seed_everything(self.cfg["seed"])
            model = self.base(name).cpu()
            at = attacks.PGD(self.cfg["at_eps"] / 255, self.cfg["at_steps"], loss=losses.score_up)
            return self._fit(model, name, self.cfg["ft_epochs"], self.cfg["ft_lr"],
                             attack=lambda m, x, y: at(scorer(m), x, y), mix_alpha=0.5)
        return self._cached(f"{name}-at", {**spec, "defence": "at"}, ("ft_epochs", "ft_lr", "at_eps", "at_steps"), train)

    def gradient_norm(self, name: str) -> nn.Module:
        """NT: the base model fine-tuned with Liu et al.'s gradient-norm penalty."""
        spec = {"model": name}

        def train():
            seed_everything(self.cfg["seed"])
            model = self.base(name).cpu().to(self.dev)
            fit_gradient_norm(trainable(name, model), _loader(self.cfg, self.data, self.cfg["seed"]), loss_fn=LOSS[name],
                              epochs=self.cfg["ft_epochs"], optimizer=_adam(self.cfg["ft_lr"]),
                              lam=self.cfg["nt_lambda"], seed=self.cfg["seed"], device=self.dev, scorer=model)
            return {k: v.detach().cpu() for k, v in model.state_dict().items()}
        return self._cached(f"{name}-nt", {**spec, "defence": "nt"}, ("ft_epochs", "ft_lr", "nt_lambda"), train)

    def defended(self, name: str, defence: str) -> nn.Module:
        cfg = self.cfg
        return {"vanilla": lambda: self.base(name),
                "block": lambda: self.pruned(name, cfg["position"], cfg["conv"], cfg["prune_share"]),
                "at": lambda: self.adversarial(name), "nt": lambda: self.gradient_norm(name)}[defence]()


# ---------------------------------------------------------------------------------------------- evaluation
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack_set: Mapping[str, Any],
             x_robust: torch.Tensor | None = None, batch_size: int = 64) -> dict[str, Any]:
    """Clean SROCC/PLCC on (x, y) and, per attack, absolute gain and R-Score (95 % CIs) and SROCC/PLCC attacked.

    The attacks run on ``x`` or, if given, on ``x_robust`` (a set without quality labels, such as
    NIPS 2017's: attacked SROCC/PLCC are then ``None``). Abs gain and R-Score use the model's own
    clean predictions on the attacked set for the min-max scaling (MSU benchmark).
    """
    clean = predict(model, x, batch_size)
    out: dict[str, Any] = {"clean": {"srocc": metrics.srocc(clean, y), "plcc": metrics.plcc(clean, y)}}
    xr = x if x_robust is None else x_robust.to(x.device)
    yr = y if x_robust is None else torch.zeros(len(xr), device=x.device)  # score-raising attacks ignore labels
    clean_r = clean if x_robust is None else predict(model, xr, batch_size)
    for key, attack in attack_set.items():
        xa = attack_all(attack, model, xr, yr, batch_size)
        pred = predict(model, xa, batch_size)
        labelled = x_robust is None
        out[key] = {"srocc": metrics.srocc(pred, y) if labelled else None, "plcc": metrics.plcc(pred, y) if labelled else None,
                    **metrics.robustness_scores(clean_r, pred), "linf": float((xa - xr).abs().max()),
                    "nan": int(torch.isnan(xa).sum()), "out_of_box": int(((xa < 0) | (xa > 1)).sum())}
    return out


@torch.no_grad()
def inference_ms(model: nn.Module, x1: torch.Tensor, repeats: int) -> float:
    """Median wall time of one forward pass at batch 1 (after two warm-up passes), in milliseconds."""
    model.eval()
    for _ in range(2):
        model(x1)
    times = []
    for _ in range(repeats):
        if x1.is_cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(x1)
        if x1.is_cuda:
            torch.cuda.synchronize()
        times.append(1000 * (time.perf_counter() - t0))
    return float(statistics.median(times))


def pgd(eps255: float, steps: int, generator: torch.Generator) -> attacks.Attack:
    """The chapter's PGD: raise the predicted score (the benchmark's objective), random start, 2.5ε/steps."""
    return attacks.PGD(eps255 / 255, steps, loss=losses.score_up, generator=generator)


def eps_key(e: float) -> str:
    return f"{e:g}".replace(".", "p")


def layer_spectral_norms(model: nn.Module, crop: int, iters: int) -> list[dict[str, Any]]:
    """Spectral norm (power iteration at the layer's input size) of every convolution of the backbone, in order."""
    from robustbook.analysis import conv_singular_values, spectral_norm_power
    from robustbook.models import CayleyConv2d

    shapes: dict[str, tuple] = {}
    def hook(name):
        def record(mod, inp):
            shapes.setdefault(name, tuple(inp[0].shape[1:]))  # returns None: the input is unchanged
        return record

    hooks = [m.register_forward_pre_hook(hook(n)) for n, m in model.backbone.named_modules() if isinstance(m, (nn.Conv2d, CayleyConv2d))]
    with torch.no_grad():
        model.eval()(torch.rand(1, 3, crop, crop, device=next(model.parameters()).device))
    for h in hooks:
        h.remove()
    rows = []
    mods = dict(model.backbone.named_modules())
    for n, shape in shapes.items():
        layer = mods[n]
        dev = next(layer.parameters()).device
        if isinstance(layer, CayleyConv2d):
            sigma = float(conv_singular_values(layer, shape[-1]).max())
        else:
            lin = (lambda t, m=layer: F.conv2d(t, m.weight, None, m.stride, m.padding)) if type(layer) is nn.Conv2d else layer
            sigma = spectral_norm_power(lin, (1,) + shape, iters=iters, at=torch.zeros((1,) + shape, device=dev),
                                        generator=torch.Generator().manual_seed(0))
        rows.append({"layer": n, "sigma": sigma, "orthogonal": isinstance(layer, CayleyConv2d)})
    return rows


def stage_modules(model: nn.Module) -> list[nn.Module]:
    """The model's normalisation + stage 1, then each later stage: the steps of the perturbation-growth plot."""
    stages = list(model.backbone.stages)
    return [nn.Sequential(model.normalize, stages[0])] + stages[1:]


def mean(xs) -> float:
    """Mean of the numbers in ``xs`` (``None`` entries, e.g. attacked SROCC on an unlabelled set, skipped)."""
    xs = [float(v) for v in xs if v is not None]
    return float(np.mean(xs)) if xs else float("nan")


def say(lines) -> None:
    """Show generated sentences as a bullet list (a list) or one paragraph (a string)."""
    from IPython.display import Markdown, display

    display(Markdown("\n".join(f"* {s}" for s in lines) if isinstance(lines, list) else lines))


def plot_lipschitz(spec_v: list[dict], spec_r: list[dict], growth: Mapping[str, list[float]], position: int,
                   eps255: float):
    """Left: per-layer spectral norms, unmodified vs RobustBlock (aligned by layer name); right: perturbation growth."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    names_r = [r["layer"] for r in spec_r]  # the block model has more layers: align the others by name
    pre = f"stages.{position - 1}."
    xv = [names_r.index(pre + "0." + r["layer"][len(pre):] if r["layer"].startswith(pre) else r["layer"]) for r in spec_v]
    axes[0].plot(xv, [r["sigma"] for r in spec_v], marker="o", label="unmodified")
    axes[0].plot([r["sigma"] for r in spec_r], marker="s", label="RobustBlock")
    for i, r in enumerate(spec_r):
        if r["orthogonal"]:
            axes[0].axvline(i, color="C1", ls=":", lw=0.8)
    axes[0].set(yscale="log", xlabel="convolution (in order; dotted: orthogonal)", ylabel="spectral norm",
                title="per-layer ‖W‖₂")
    for key, lab in (("vanilla", "unmodified"), ("block", "RobustBlock")):
        axes[1].plot(range(1, len(growth[key]) + 1), growth[key], marker="o", label=lab)
    axes[1].axvline(position + 0.5, color="grey", ls=":", lw=0.8)
    axes[1].set(yscale="log", xlabel="after stage", ylabel="‖Δh‖ / ‖δ‖", title=f"PGD δ (ε={eps255:g}/255) through the network")
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


def tradeoff_side(srocc_drop: float, r_gain: float, tol: float = 0.05) -> str:
    """Which side of the source's trade-off a block position lands on: disrupts (SROCC drop over ``tol``,
    the source's failure signature), protects (R-Score up, SROCC kept) or neither."""
    if srocc_drop > tol:
        return "disrupts (SROCC drop > 0.05)" + ("; protects" if r_gain > 0 else "")
    return "protects, SROCC kept" if r_gain > 0 else "no protection (R-Score not up)"


def show_source(*objs) -> None:
    """Display the source of functions/classes with their docstrings folded to ``\"\"\"...\"\"\"``."""
    import inspect
    import re

    from IPython.display import Markdown, display

    text = "\n".join(re.sub(r'"""(.|\n)*?"""', '"""..."""', inspect.getsource(o), count=1) for o in objs)
    display(Markdown("```python\n" + text + "```"))


def overhead_verdict(ratio: float) -> str:
    """Which of the source's contradicting overhead statements a measured time ratio supports."""
    text, table = 1.3 <= ratio <= 1.7, 2.0 <= ratio <= 3.3
    where = "its text (+30-70 %)" if text else "its Table 1 (+102-227 %)" if table else "neither"
    return f"the ratio {ratio:.2f} ({100 * (ratio - 1):+.0f} %) supports {where}"
