"""The audit chapter's training plan: one model per IQA chapter, trained (or loaded from the cache) once.

Chapter 0's model is trained with chapter 0's own recipe and cache key, so a book build that ran
chapter 0 first reuses its weights. The later chapters' architectures (ST Norm's TinyResNet with
ST Norm, RobustBlock's Linearity structure, BiRQA) are trained here with one plain recipe (MSE,
Adam, cosine schedule, flips and quarter turns) for ``other_epochs``, not with each chapter's own
plan: the audit needs a trained model of each kind, not a reproduction (the page's choices list).
"""
from __future__ import annotations

import dataclasses
from functools import partial

import torch
from torch import nn
from torch.utils.data import TensorDataset

from robustbook import metrics
from robustbook.attacks import FixedReference
from robustbook.audit.suite import AuditProfile
from robustbook.cache import cached_state
from robustbook.data import FlipRotateDataset, load_split, prepare
from robustbook.evaluate import predict
from robustbook.models import BiRQA, SmallIQANet, bpda_soft_threshold, nr_iqa_model, resnet_iqa
from robustbook.models.birqa import lbp_surrogate
from robustbook.seeding import seed_everything
from robustbook.train import fit, make_loader

#: name -> (label, chapter, full-reference, BPDA surrogate for the audit)
KINDS = {
    "smalliqa": ("SmallIQANet", "chapter 0", False, None),
    "stnorm": ("TinyResNet + ST Norm", "ST Norm", False, bpda_soft_threshold),
    "linearity": ("Linearity (StagedNet)", "RobustBlock", False, None),
    "birqa": ("BiRQA", "BiRQA", True, lbp_surrogate),
}


def chapter0_model(cfg) -> tuple[nn.Module, bool]:
    """Chapter 0's SmallIQANet with chapter 0's recipe and cache key (bundled-iqa, split by crop)."""
    folder = prepare("bundled-iqa", crop=cfg.crop, per_photo=cfg.per_photo, seed=cfg.seed, split_by="crop")
    x_train, y_train, _ = load_split(folder, "train", size=cfg.crop)
    x_val, y_val, _ = load_split(folder, "val", size=cfg.crop)
    batch_size, lr = 64, 0.001  # chapter 0's defaults

    def train_model() -> dict:
        seed_everything(cfg.seed)
        model = SmallIQANet(width=cfg.width)
        loader = make_loader(FlipRotateDataset(x_train, y_train), batch_size, shuffle=True, seed=cfg.seed)
        val_loader = make_loader(TensorDataset(x_val, y_val), 256, shuffle=False, seed=cfg.seed)

        def val_srocc(m, _loader):
            return {"val_srocc": metrics.srocc(predict(m, x_val), y_val)}

        history = fit(model, loader, loss_fn=nn.MSELoss(), epochs=cfg.epochs, seed=cfg.seed,
                      optimizer=partial(torch.optim.Adam, lr=lr),
                      scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs),
                      eval_loader=val_loader, eval_fn=val_srocc, progress=False)
        return {"state": model.state_dict(), "history": history.as_dict()}

    key = {"seed": cfg.seed, "dataset": "bundled-iqa", "crop": cfg.crop, "per_photo": cfg.per_photo,
           "split_by": "crop", "width": cfg.width, "epochs": cfg.epochs, "batch_size": batch_size, "lr": lr}
    state, hit = cached_state("attacks-smalliqa", key, train_model)
    model = SmallIQANet(width=cfg.width)
    model.load_state_dict(state["state"])
    return model.eval(), hit


def _build(kind: str, cfg) -> nn.Module:
    if kind == "stnorm":
        return resnet_iqa("tiny", norm="stnorm", width=8, stem_stride=1 if cfg.crop <= 32 else 2)
    if kind == "linearity":
        return nr_iqa_model("linearity")
    if kind == "birqa":
        return BiRQA(width=8, feat_width=4, head_width=8)
    raise ValueError(f"unknown model kind {kind!r}; valid: {list(KINDS)}")


class _Pairs(torch.utils.data.Dataset):
    def __init__(self, ref, dist, y):
        self.ref, self.dist, self.y = ref, dist, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return torch.stack([self.ref[i], self.dist[i]]), self.y[i]


def other_model(kind: str, cfg) -> tuple[nn.Module, bool]:
    """A later chapter's architecture trained with the plain recipe for ``cfg.other_epochs`` (cached)."""
    fr = KINDS[kind][2]
    name = "bundled-fr-iqa" if fr else "bundled-iqa"
    kw = {"crop": cfg.crop, "per_photo": cfg.per_photo, "seed": cfg.seed}
    folder = prepare(name, **kw)

    def train_model() -> dict:
        seed_everything(cfg.seed)
        model = _build(kind, cfg)
        if fr:
            from robustbook.audit.loading import _load_rows

            dist, y, ref = _load_rows(folder, "train", cfg.crop, 0, cfg.seed)
            data = _Pairs(ref, dist, y)
        else:
            x, y, _ = load_split(folder, "train", size=cfg.crop)
            data = FlipRotateDataset(x, y)
        loader = make_loader(data, 32, shuffle=True, seed=cfg.seed)
        history = fit(model, loader, loss_fn=nn.MSELoss(), epochs=cfg.other_epochs, seed=cfg.seed,
                      optimizer=partial(torch.optim.Adam, lr=1e-3 if not fr else 1e-2),
                      scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.other_epochs),
                      progress=False)
        return {"state": model.state_dict(), "history": history.as_dict()}

    key = {"kind": kind, "data": name, **kw, "epochs": cfg.other_epochs, "recipe": "mse-adam-cosine"}
    state, hit = cached_state(f"audit-{kind}", key, train_model)
    model = _build(kind, cfg)
    model.load_state_dict(state["state"])
    return model.eval(), hit


def sized(profile: AuditProfile, n_images: int) -> AuditProfile:
    """``profile`` with ``n_images`` test images (0 keeps the profile's own); the card's profile name says so."""
    if not n_images or n_images == profile.n_images:
        return profile
    return dataclasses.replace(profile, name=f"{profile.name}-n{n_images}", n_images=n_images)


def own_model_file() -> str:
    """The reader's own model, as the page writes it to a file (three lines to audit it follow)."""
    return '''import torch
from torch import nn


def make() -> nn.Module:
    """A tiny untrained quality model: conv -> ReLU -> mean and std pooling -> linear score."""
    torch.manual_seed(0)

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.head = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(16, 1)

        def forward(self, x):
            f = torch.relu(self.conv(x)).flatten(2)
            return self.head(torch.cat([f.mean(2), f.std(2)], 1))[:, 0]

    return Tiny()
'''


def card_row(label: str, chapter: str, rec: dict) -> dict:
    """One row of the comparison table from a card's record."""
    e = str(max(rec["eps_255"]))
    return {"model": label, "chapter": chapter, "clean SROCC": rec["clean"]["srocc"],
            f"worst SROCC ε={e}/255": rec["worst_case"][e]["worst_srocc"],
            "worst SROCC ε=1/255": rec["worst_case"][str(min(rec["eps_255"]))]["worst_srocc"],
            "R-Score (mean)": rec["summary"]["r_score_mean"], "IR-Score": rec["summary"]["ir_score"],
            "verdict": rec["verdict"], "attack s": rec["cost"]["attack_seconds"]}


def fr_target(model, ref):
    return FixedReference(model, ref)
