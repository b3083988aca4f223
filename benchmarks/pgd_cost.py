"""Cost of PGD-10 as a ratio to 10 x (one forward + one backward pass) of the same model and batch.

A PGD step is one forward and one backward pass; everything else (sign, projection,
clamping) should be noise. Target: ratio <= 1.15. Timings are medians over repeats;
the script prints ratios, which are stable across machines, not seconds.

    .venv/bin/python benchmarks/pgd_cost.py [--batch 64] [--size 64] [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

from robustbook.attacks import losses, pgd
from robustbook.models import SmallIQANet


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def forward_backward(model, x, y, loss) -> None:
    xr = x.detach().requires_grad_(True)
    value = loss(model(xr), y).sum()
    torch.autograd.grad(value, xr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    torch.manual_seed(0)
    rows = []
    cases = {
        "SmallIQANet(24), score": (SmallIQANet(24), lambda n: torch.rand(n), losses.mse_away),
        "ResNet-18, 10 classes": (torchvision.models.resnet18(num_classes=10), lambda n: torch.randint(0, 10, (n,)),
                                  losses.cross_entropy),
    }
    for name, (model, make_y, loss) in cases.items():
        model.eval()
        x = torch.rand(args.batch, 3, args.size, args.size)
        y = make_y(args.batch)
        base = timed(lambda: forward_backward(model, x, y, loss), args.repeats)
        attack = timed(lambda: pgd(model, x, y, 8 / 255, 2 / 255, args.steps, loss=loss, random_start=True),
                       args.repeats)
        rows.append((name, attack / (args.steps * base)))
    print(f"PGD-{args.steps} cost / ({args.steps} x forward+backward), batch {args.batch}, "
          f"{args.size}x{args.size}, {torch.get_num_threads()} threads")
    for name, ratio in rows:
        flag = "ok" if ratio <= 1.15 else "ABOVE TARGET 1.15"
        print(f"  {name:<26} ratio {ratio:.3f}  {flag}")


if __name__ == "__main__":
    main()
