"""The same user script under `python` or `torchrun --nproc_per_node 2`; test hooks write per-rank files.

usage: ddp_fit.py OUTDIR   (checkpoints go to OUTDIR/ckpt)
Writes OUTDIR/rank{r}.pt (final weights), OUTDIR/history_rank{r}.json and, for each torch.save fit made
on that rank, a line in OUTDIR/saves_rank{r}.log.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toy  # noqa: E402

from robustbook import train  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    r = int(os.environ.get("RANK", "0"))

    real_save = torch.save

    def logging_save(obj, f, *args, **kwargs):  # test hook: who writes files (collectives save to BytesIO)
        if isinstance(f, (str, os.PathLike)):
            with open(out / f"saves_rank{r}.log", "a") as log:
                log.write(f"{f}\n")
        return real_save(obj, f, *args, **kwargs)

    torch.manual_seed(3)  # DDP would broadcast rank 0's initial weights anyway
    model = toy.make_model()
    loader = train.make_loader(toy.Blobs(), 8, shuffle=True, seed=3)
    torch.save = logging_save
    try:
        history = train.fit(model, loader, loss_fn=torch.nn.functional.cross_entropy, epochs=4, seed=3,
                            optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                            attack=toy.fgsm_rs(), mix_alpha=0.5,
                            eval_loader=train.make_loader(toy.Blobs(48, seed=1), 16, shuffle=False, seed=3),
                            checkpoint_dir=out / "ckpt", device="cpu", progress=False)
    finally:
        torch.save = real_save
    assert not torch.distributed.is_initialized(), "fit must destroy the process group it created"
    torch.save(model.state_dict(), out / f"rank{r}.pt")
    (out / f"history_rank{r}.json").write_text(json.dumps(history.as_dict()))
    (out / f"main_rank{r}.txt").write_text(str(train.is_main_process()) + " " + str(train.world_size()))


if __name__ == "__main__":
    main()
