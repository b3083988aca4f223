"""Train the toy model with checkpoints; optionally die (os._exit) right after epoch --kill-after.

usage: fit_run.py OUTDIR CKPTDIR --epochs N [--kill-after K] [--seed S]
Writes OUTDIR/final.pt (the final state dict) and appends each trained epoch to OUTDIR/epochs.txt.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toy  # noqa: E402

from robustbook.seeding import seed_everything  # noqa: E402
from robustbook.train import fit, make_loader  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("ckptdir")
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--kill-after", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out = Path(a.outdir)
    out.mkdir(parents=True, exist_ok=True)

    def log_epoch(record, model):
        with open(out / "epochs.txt", "a") as f:
            f.write(f"{record['epoch']}\n")
        torch.rand(3)  # a callback that draws random numbers must not shift the training's draws
        if record["epoch"] == a.kill_after:
            os._exit(17)

    seed_everything(a.seed)  # the initial weights are drawn before fit, so seed them here
    model = toy.make_model()
    loader = make_loader(toy.Blobs(), 16, shuffle=True, seed=a.seed)
    fit(model, loader, loss_fn=torch.nn.functional.cross_entropy, epochs=a.epochs, seed=a.seed,
        optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        scheduler=lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1.0 / (1 + e)),
        attack=toy.fgsm_rs(), mix_alpha=0.5, checkpoint_dir=a.ckptdir, config={"lr": 0.1},
        device="cpu", progress=False, callbacks=[log_epoch])
    torch.save(model.state_dict(), out / "final.pt")


if __name__ == "__main__":
    main()
