"""What an attack costs, as a ratio to the passes its mathematics needs, on the book's models.

A PGD step is one forward and one backward pass; an EOT-PGD step with ``k`` draws is
``k`` of them; a Square query is one forward pass. Everything else (sign, projection,
clamping, bookkeeping) should be noise. For each case the script times the attack and
the passes it needs on the same model and batch, and prints

    ratio = attack time / (passes needed x time of one pass)

Target: ratio <= 1.15. Timings are medians over repeats; ratios, unlike seconds, are
stable across machines.

    .venv/bin/python benchmarks/pgd_cost.py [--batch 64] [--size 64] [--repeats 5] [--steps 10]
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torchvision
from torch import nn

from robustbook.attacks import EOT, losses, pgd, square
from robustbook.models import SmallIQANet, odenet, resnet_iqa

TARGET = 1.15


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def forward_backward(model: Callable, x: torch.Tensor, y: torch.Tensor, loss) -> None:
    xr = x.detach().requires_grad_(True)
    value = loss(model(xr), y).sum()
    torch.autograd.grad(value, xr)


@torch.no_grad()
def forward(model: Callable, x: torch.Tensor) -> None:
    model(x)


@dataclass
class Case:
    name: str
    model: nn.Module
    shape: tuple[int, int, int]       # (C, H, W) of one image
    labels: bool                      # class labels (cross-entropy) or quality scores (squared error)
    attack: str                       # "pgd", "eot-pgd" or "square"
    draws: int = 1                    # EOT draws per step


def cases(size: int) -> list[Case]:
    stnorm = resnet_iqa("tiny", width=8, stem_stride=1, norm="stnorm")
    lwta = resnet_iqa("tiny", width=8, stem_stride=1, activation="lwta")
    return [
        Case("SmallIQANet(24), score", SmallIQANet(24), (3, size, size), False, "pgd"),
        Case("ResNet-18, 10 classes", torchvision.models.resnet18(num_classes=10), (3, size, size), True, "pgd"),
        Case("TinyResNet + ST Norm, score", stnorm, (3, 32, 32), False, "pgd"),
        Case("ODEnet (10 Euler steps), MNIST", odenet("mnist", "ode", width=32), (1, 28, 28), True, "pgd"),
        Case("TinyResNet + LWTA, EOT x4", lwta, (3, 32, 32), False, "eot-pgd", draws=4),
        Case("TinyResNet + ST Norm, Square", stnorm, (3, 32, 32), False, "square"),
    ]


def ratio(case: Case, batch: int, steps: int, repeats: int) -> float:
    model = case.model.eval()
    x = torch.rand(batch, *case.shape)
    y = torch.randint(0, 10, (batch,)) if case.labels else torch.rand(batch)
    loss = losses.cross_entropy if case.labels else losses.mse_away
    if case.attack == "square":
        one = timed(lambda: forward(model, x), repeats)
        run = timed(lambda: square(model, x, y, 8 / 255, queries=steps, loss=loss,
                                   generator=torch.Generator().manual_seed(0)), repeats)
        return run / (steps * one)
    target = EOT(model, case.draws) if case.attack == "eot-pgd" else model
    one = timed(lambda: forward_backward(model, x, y, loss), repeats)
    run = timed(lambda: pgd(target, x, y, 8 / 255, 2 / 255, steps, loss=loss, random_start=True), repeats)
    return run / (steps * case.draws * one)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=64, help="image side of the cases that take any size")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10, help="PGD steps, or Square queries")
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"attack cost / (passes needed x one pass), batch {args.batch}, {args.steps} steps or queries, "
          f"{torch.get_num_threads()} threads; target <= {TARGET}")
    for case in cases(args.size):
        r = ratio(case, args.batch, args.steps, args.repeats)
        passes = {"pgd": "fwd+bwd", "eot-pgd": f"{case.draws} fwd+bwd", "square": "fwd"}[case.attack]
        flag = "ok" if r <= TARGET else f"ABOVE TARGET {TARGET}"
        print(f"  {case.name:<32} {case.attack:<8} per step {passes:<10} ratio {r:.3f}  {flag}")


if __name__ == "__main__":
    main()
