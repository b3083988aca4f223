"""The same user script under `python` or `torchrun --nproc_per_node 2`; test hooks write per-rank files.

usage: ddp_fit.py OUTDIR   (checkpoints go to OUTDIR/ckpt)
Writes, per rank r: OUTDIR/rank{r}.pt (weights after the first fit), history_rank{r}.json, main_rank{r}.txt,
collect_rank{r}.pt (what run_epoch(collect=True) over a sharded loader returned in the last evaluation),
finetuned_rank{r}.pt (weights after a second fit in the same process) and, for each file torch.save wrote
on that rank during the first fit, a line in saves_rank{r}.log.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from torch.nn.functional import cross_entropy
from torch.utils.data import TensorDataset

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

    def eval_fn(model, loader):  # runs on every rank; the loader is sharded, collect gathers
        res = train.run_epoch(model, loader, cross_entropy, collect=True, progress=False)
        real_save({"pred": res["pred"], "target": res["target"], "n": res["n"]}, out / f"collect_rank{r}.pt")
        return {"accuracy": (res["pred"].argmax(1) == res["target"]).float().mean().item()}

    blobs = toy.Blobs(21, seed=2)  # 21 samples: 2 processes cannot split them evenly
    eval_loader = train.make_loader(TensorDataset(blobs.x, blobs.y), 4, shuffle=True, seed=0)

    torch.manual_seed(3)  # DDP would broadcast rank 0's initial weights anyway
    model = toy.make_model()
    loader = train.make_loader(toy.Blobs(), 8, shuffle=True, seed=3)
    torch.save = logging_save
    try:
        history = train.fit(model, loader, loss_fn=cross_entropy, epochs=4, seed=3,
                            optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                            attack=toy.fgsm_rs(), mix_alpha=0.5, eval_loader=eval_loader, eval_fn=eval_fn,
                            checkpoint_dir=out / "ckpt", device="cpu", progress=False)
    finally:
        torch.save = real_save
    assert not torch.distributed.is_initialized(), "fit must destroy the process group it created"
    torch.save(model.state_dict(), out / f"rank{r}.pt")
    (out / f"history_rank{r}.json").write_text(json.dumps(history.as_dict()))
    (out / f"main_rank{r}.txt").write_text(str(train.is_main_process()) + " " + str(train.world_size()))

    # a second fit in the same process must be able to create a process group again
    train.fit(model, loader, loss_fn=cross_entropy, epochs=1, seed=4,
              optimizer=lambda p: torch.optim.SGD(p, lr=0.05), device="cpu", progress=False)
    torch.save(model.state_dict(), out / f"finetuned_rank{r}.pt")


if __name__ == "__main__":
    main()
