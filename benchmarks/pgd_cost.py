"""What an attack costs, against the passes its mathematics needs and against torchattacks, on the book's models.

A PGD step is one forward and one backward pass; an EOT-PGD step with ``k`` draws is
``k`` of them; a Square query is one forward pass; an APGD run of ``N`` steps is
``N + 1`` forward-backward passes (the gradient at the start and at every new
iterate; the loss comes out of the same pass). Everything else (sign, projection,
clamping, bookkeeping) should be noise. For each case the script times, on the same
model and batch, *interleaved* (one repetition of each in turn, the order rotating)
and reports medians:

* ``passes``: the attack's passes alone (``steps`` x forward+backward, or forward);
* ``ours``: our attack;
* ``torchattacks``: the same attack in torchattacks, where it has one.

and prints ``ours / passes`` and ``ours / torchattacks``. Targets: PGD (and EOT-PGD)
<= 1.02 against the passes and <= 1.0 against torchattacks; APGD and Square <= 1.15
against the passes (their bookkeeping is per-sample state, not free). On a shared
machine a ratio moves by a few per cent between runs: read a miss by 0.01 as noise and
rerun with more ``--repeats``. Ratios, unlike seconds, are comparable across machines.

Fair protocol against torchattacks
----------------------------------
* torchattacks' PGD, EOTPGD and APGD take class labels and cross-entropy only. On the
  quality models both libraries attack the same wrapper, ``ScoreAsLogits`` (score
  ``s`` -> logits ``(s, -s)``, cross-entropy on labels 0/1), so the comparison measures
  the attack loops on the same passes; ``ours / passes`` is measured with the book's
  own setting (the score model, squared error).
* EOT: ours is ``eot(model, loss, k)`` (the mean of the loss gradients over ``k``
  draws, what ``Attack(eot=k)`` runs: the ``k`` draws are one forward call each,
  concatenated along the batch), torchattacks' is ``EOTPGD(eot_iter=k)`` (the same
  estimator, ``k`` forward-backward calls per step).
* APGD: torchattacks' ``APGD`` first classifies the clean batch (one extra forward)
  and attacks only the correctly classified points; a run then attacks them all for
  every step (points fooled mid-run are not dropped; only further restarts skip
  them). With random labels it would attack ~10% of the batch and look 10x faster.
  So the labels given to both are the model's own clean predictions: every point is
  attacked for all ``N + 1`` passes by both, ``n_restarts=1``, ``loss="ce"``. Its extra
  clean forward pass is part of its cost. Quality models: ours against the passes only.
* Square: torchattacks' ``Square`` is a different attack in detail (margin loss,
  classifiers only, stops on fooled points): ours against the passes only.
* APGD is ours only if ``robustbook.attacks.apgd`` exists (the script runs without it).

Run it on one thread (``OMP_NUM_THREADS=1``; ``make bench`` does) so the passes are not
timed with a thread pool that the bookkeeping does not use. The clock is this process's
CPU time by default (``--clock cpu``): on a shared machine, wall time also counts the
time other processes held the core, which no number of repetitions averages away;
with one thread CPU time is the work done. ``--clock wall`` for an idle machine or
several threads.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pgd_cost.py [--batch 64] [--size 64] [--repeats 5]
        [--steps 10] [--only resnet,odenet]
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchattacks
import torchvision
from torch import nn

from robustbook.attacks import eot, losses, pgd, square
from robustbook.models import SmallIQANet, odenet, resnet_iqa

try:
    from robustbook.attacks.apgd import apgd
except ImportError:  # the APGD module has not landed yet
    apgd = None

TARGET_PASSES = {"pgd": 1.02, "eot-pgd": 1.02, "apgd": 1.15, "square": 1.15}
TARGET_TORCHATTACKS = 1.0
EPS, ALPHA = 8 / 255, 2 / 255


class ScoreAsLogits(nn.Module):
    """A quality model as a two-class classifier, logits ``(s, -s)``: lets torchattacks attack it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.model(x).reshape(x.shape[0])
        return torch.stack([s, -s], 1)


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, clock: Callable[[], float]) -> dict[str, float]:
    """Median seconds of each function, timed in turn (the order rotating) after one warm-up each."""
    for fn in fns.values():
        fn()
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = clock()
            fns[name]()
            times[name].append(clock() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def forward_backward(model: Callable, x: torch.Tensor, y: torch.Tensor, loss, n: int) -> None:
    for _ in range(n):
        xr = x.detach().requires_grad_(True)
        torch.autograd.grad(loss(model(xr), y).sum(), xr)


@torch.no_grad()
def forward(model: Callable, x: torch.Tensor, n: int) -> None:
    for _ in range(n):
        model(x)


@dataclass
class Case:
    key: str                          # for --only
    name: str
    model: nn.Module
    shape: tuple[int, int, int]       # (C, H, W) of one image
    labels: bool                      # class labels (cross-entropy) or quality scores (squared error)
    attack: str                       # "pgd", "eot-pgd", "apgd" or "square"
    draws: int = 1                    # EOT draws per step


def cases(size: int) -> list[Case]:
    torch.manual_seed(0)
    small = SmallIQANet(24)
    resnet = torchvision.models.resnet18(num_classes=10)
    stnorm = resnet_iqa("tiny", width=8, stem_stride=1, norm="stnorm")
    ode = odenet("mnist", "ode", width=32)
    lwta = resnet_iqa("tiny", width=8, stem_stride=1, activation="lwta")
    out = [
        Case("smalliqa", "SmallIQANet(24), score", small, (3, size, size), False, "pgd"),
        Case("resnet", "ResNet-18, 10 classes", resnet, (3, size, size), True, "pgd"),
        Case("stnorm", "TinyResNet + ST Norm, score", stnorm, (3, 32, 32), False, "pgd"),
        Case("odenet", "ODEnet (10 Euler steps), MNIST", ode, (1, 28, 28), True, "pgd"),
        Case("lwta", "TinyResNet + LWTA, EOT x4", lwta, (3, 32, 32), False, "eot-pgd", draws=4),
        Case("square", "TinyResNet + ST Norm, Square", stnorm, (3, 32, 32), False, "square"),
    ]
    if apgd is not None:
        out += [
            Case("apgd-smalliqa", "SmallIQANet(24), score", small, (3, size, size), False, "apgd"),
            Case("apgd-resnet", "ResNet-18, 10 classes", resnet, (3, size, size), True, "apgd"),
            Case("apgd-odenet", "ODEnet (10 Euler steps), MNIST", ode, (1, 28, 28), True, "apgd"),
        ]
    return out


def measure(case: Case, batch: int, steps: int, repeats: int,
            clock: Callable[[], float] = time.process_time) -> tuple[float, float | None]:
    """``(ours / passes, ours / torchattacks or None)`` for one case."""
    model = case.model.eval()
    x = torch.rand(batch, *case.shape)
    y = torch.randint(0, 10, (batch,)) if case.labels else torch.rand(batch)
    loss = losses.cross_entropy if case.labels else losses.mse_away
    if case.attack == "square":
        t = interleaved({
            "passes": lambda: forward(model, x, steps),
            "ours": lambda: square(model, x, y, EPS, queries=steps, loss=loss,
                                   generator=torch.Generator().manual_seed(0)),
        }, repeats, clock)
        return t["ours"] / t["passes"], None

    # torchattacks needs class labels: a quality model is attacked through ScoreAsLogits by both libraries
    clf = model if case.labels else ScoreAsLogits(model).eval()
    with torch.no_grad():
        y_clf = clf(x).argmax(1)  # the model's own predictions: every point counts as correctly classified
    if case.labels:
        y = y_clf
    if case.attack == "apgd":
        fns = {
            "passes": lambda: forward_backward(model, x, y, loss, steps + 1),
            "ours": lambda: apgd(model, x, y, EPS, steps, loss=loss, n_restarts=1),
        }
        if case.labels:
            ta = torchattacks.APGD(model, norm="Linf", eps=EPS, steps=steps, n_restarts=1, loss="ce", seed=0)
            fns["torchattacks"] = lambda: ta(x, y)
        t = interleaved(fns, repeats, clock)
        return t["ours"] / t["passes"], (t["ours"] / t["torchattacks"] if case.labels else None)

    if case.attack == "eot-pgd":
        k = case.draws
        m_ours, l_ours = eot(model, loss, k)
        m_clf, l_clf = eot(clf, losses.cross_entropy, k)
        ta = torchattacks.EOTPGD(clf, eps=EPS, alpha=ALPHA, steps=steps, eot_iter=k, random_start=True)
        fns = {
            "passes": lambda: forward_backward(model, x, y, loss, steps * k),
            "ours": lambda: pgd(m_ours, x, y, EPS, ALPHA, steps, loss=l_ours, random_start=True),
            "torchattacks": lambda: ta(x, y_clf),
            "ours-clf": lambda: pgd(m_clf, x, y_clf, EPS, ALPHA, steps, loss=l_clf, random_start=True),
        }
    else:
        ta = torchattacks.PGD(clf, eps=EPS, alpha=ALPHA, steps=steps, random_start=True)
        fns = {
            "passes": lambda: forward_backward(model, x, y, loss, steps),
            "ours": lambda: pgd(model, x, y, EPS, ALPHA, steps, loss=loss, random_start=True),
            "torchattacks": lambda: ta(x, y_clf),
        }
        if not case.labels:
            fns["ours-clf"] = lambda: pgd(clf, x, y_clf, EPS, ALPHA, steps, loss=losses.cross_entropy,
                                          random_start=True)
    t = interleaved(fns, repeats, clock)
    return t["ours"] / t["passes"], t.get("ours-clf", t["ours"]) / t["torchattacks"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=64, help="image side of the cases that take any size")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10, help="PGD/APGD steps, or Square queries")
    ap.add_argument("--only", default="", help="comma-separated case keys (e.g. resnet,apgd-resnet); default all")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                    help="cpu: this process's CPU time (default; robust to other processes on a shared machine, "
                         "meaningful with one thread); wall: elapsed time")
    args = ap.parse_args()
    torch.manual_seed(0)
    only = {k for k in args.only.split(",") if k}
    print(f"batch {args.batch}, {args.steps} steps or queries, {torch.get_num_threads()} threads, {args.clock} time, "
          f"medians of {args.repeats} interleaved repeats; APGD: {'yes' if apgd else 'not installed'}")
    print(f"  {'model':<32} {'attack':<8} {'passes per step':<16} {'ours/passes':>11} {'ours/torchattacks':>18}")
    for case in cases(args.size):
        if only and case.key not in only:
            continue
        r_passes, r_ta = measure(case, args.batch, args.steps, args.repeats, CLOCKS[args.clock])
        passes = {"pgd": "fwd+bwd", "eot-pgd": f"{case.draws} fwd+bwd", "square": "fwd",
                  "apgd": "fwd+bwd (+1)"}[case.attack]
        flags = []
        if r_passes > TARGET_PASSES[case.attack]:
            flags.append(f"passes above {TARGET_PASSES[case.attack]}")
        if r_ta is not None and r_ta > TARGET_TORCHATTACKS:
            flags.append(f"torchattacks above {TARGET_TORCHATTACKS}")
        ta = f"{r_ta:.3f}" if r_ta is not None else "-"
        print(f"  {case.name:<32} {case.attack:<8} {passes:<16} {r_passes:>11.3f} {ta:>18}  "
              f"{'; '.join(flags) or 'ok'}", flush=True)


if __name__ == "__main__":
    main()
