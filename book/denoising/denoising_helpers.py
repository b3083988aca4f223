"""Training plans and evaluation grids of the denoising chapter (the page shows what it teaches).

Everything here is bookkeeping around the library: :class:`robustbook.models.DnCNN`,
:func:`robustbook.attacks.ObsAtk`, :class:`robustbook.losses.HATLoss`, the training loop
:func:`robustbook.train.fit` and :func:`robustbook.metrics.denoising_psnr`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from robustbook.attacks import ObsAtk
from robustbook.cache import cached_state
from robustbook.data import denoising as D
from robustbook.losses import HATLoss, half_sse
from robustbook.metrics import denoise, denoising_psnr, psnr
from robustbook.models import DnCNN
from robustbook.seeding import seed_everything
from robustbook.train import fit, make_loader

U = 1 / 255        # every budget and noise level of the chapter is given in 1/255
METHODS = {"nt": "NT", "vat": "vAT", "hat": "HAT"}


def tag(v: float) -> str:
    """``3.0 -> '3'``, ``0.5 -> '0.5'``: a key-safe label of a value in 1/255 (no dots in metrics keys)."""
    return f"{v:g}".replace(".", "p")


def train_denoiser(kind: str, channels: int, seed: int, cfg: Mapping[str, Any], patches: torch.Tensor, *,
                   alpha: float = 0.0, eps: float = 0.0, progress: bool = False) -> tuple[DnCNN, bool]:
    """A γ-denoiser trained by normal training (``nt``), vanilla AT (``vat``) or HAT (``hat``); cached.

    ``nt``: ½‖f(y) − x‖². ``vat``: ½‖f(y′) − x‖² on ObsAtk data only (Choi et al. 2021).
    ``hat``: eq. (2.3) with ``alpha``. The training attack is one ObsAtk step of length ε·√m
    (the authors' code), with batch statistics (the network is in train mode, frozen).
    Returns ``(model in eval mode, cache hit)``.
    """
    if kind not in METHODS:
        raise ValueError(f"kind must be one of {sorted(METHODS)}, got {kind!r}")
    key = {"kind": kind, "channels": channels, "seed": seed, "alpha": float(alpha) if kind == "hat" else None,
           "eps": float(eps) if kind != "nt" else None,
           **{k: cfg[k] for k in ("depth", "features", "patch", "n_patches", "epochs", "batch_size", "lr",
                                  "gamma_train", "data")}}

    def train() -> dict:
        seed_everything(seed)
        model = DnCNN(channels, cfg["depth"], cfg["features"])
        loader = make_loader(D.NoisyPairs(patches, cfg["gamma_train"] * U), cfg["batch_size"], shuffle=True,
                             seed=seed, drop_last=True)
        steps = cfg["epochs"] * len(loader)
        attack = ObsAtk(eps * U, 1, rel_step=1.0, eval_mode=False) if kind != "nt" and eps > 0 else None
        fit(model, loader, loss_fn=half_sse, epochs=cfg["epochs"], seed=seed,
            optimizer=lambda p: torch.optim.Adam(p, lr=cfg["lr"]),
            scheduler=lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [int(0.6 * steps), int(0.8 * steps)], 0.5),
            scheduler_interval="batch", attack=attack,
            pair_loss=HATLoss(alpha) if kind == "hat" and attack is not None else None,
            device="cpu", progress=progress)
        return model.state_dict()

    state, hit = cached_state(f"denoising-{kind}-c{channels}", key, train)
    model = DnCNN(channels, cfg["depth"], cfg["features"])
    model.load_state_dict(state)
    return model.eval(), hit


def summarise(per_seed: Sequence[Mapping[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    """Per column: mean and std over seeds of the per-seed mean PSNR (the thesis' mean/std), and the seeds."""
    out = {}
    for col in per_seed[0]:
        vals = [float(np.mean(r[col])) for r in per_seed]
        out[col] = {"mean": float(np.mean(vals)), "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                    "seeds": vals}
    return out


def table(models: Mapping[str, Sequence[torch.nn.Module]], x: torch.Tensor, gammas: Sequence[float],
          eps_list: Sequence[float], steps: int, checks: dict | None = None) -> dict[str, Any]:
    """``{method: {g<γ̂>: {column: {mean, std, seeds}}}}`` for Tables 2.1–2.3/2.5/2.6."""
    out: dict[str, Any] = {}
    for name, seeds in models.items():
        out[name] = {}
        for g in gammas:
            runs = [denoising_psnr(m, x, g * U, [e * U for e in eps_list if e <= g], steps=steps,
                                   seed=1000 + int(g), checks=checks if j == 0 else None)
                    for j, m in enumerate(seeds)]
            out[name][f"g{tag(g)}"] = summarise(runs)
    return out


def unseen_psnr(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, seed: int = 7) -> dict[str, float]:
    """Mean PSNR of ``model`` on each offline stand-in for real noise (and the noisy input's own PSNR)."""
    out = {}
    for j, kind in enumerate(D.UNSEEN_NOISE):
        y = D.unseen_noise(x, kind, torch.Generator().manual_seed(seed + j))
        out[kind] = float(psnr(model(y).clamp(0, 1) if not isinstance(model, torch.nn.Module) else denoise(model, y),
                               x))
    return out


def noisy_inputs_psnr(x: torch.Tensor, seed: int = 7) -> dict[str, float]:
    """PSNR of the unseen-noise observations themselves (how strong each noise is)."""
    return {kind: float(psnr(D.unseen_noise(x, kind, torch.Generator().manual_seed(seed + j)), x))
            for j, kind in enumerate(D.UNSEEN_NOISE)}


def bm3d_denoiser(sigma: float) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """BM3D (Dabov et al. 2007, the `bm3d` package) at noise level ``sigma`` as a batch function, or None."""
    try:
        import bm3d
    except ImportError:
        return None

    def run(y: torch.Tensor) -> torch.Tensor:
        out = []
        for img in y.numpy():
            if img.shape[0] == 1:
                out.append(bm3d.bm3d(img[0], sigma_psd=sigma)[None])
            else:
                out.append(bm3d.bm3d_rgb(img.transpose(1, 2, 0), sigma).transpose(2, 0, 1))
        return torch.tensor(np.stack(out), dtype=torch.float32)

    return run
