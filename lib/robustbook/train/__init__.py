"""The outer minimisation: one training/evaluation loop for every chapter.

The book frames learning as (Kolter & Madry)::

    min_θ  E_(x,y)  max_{δ ∈ Δ}  ℓ(h_θ(x + δ), y)

An *attack* is any callable ``attack(model, x, y) -> x_adv`` that solves (or
approximates) the inner maximisation. :func:`run_epoch` makes one pass over a
loader: with an optimiser it trains (plain training without an attack,
adversarial training with one), without one it evaluates (clean or under
attack). :func:`fit` repeats it for a number of epochs, seeded, checkpointed
after every epoch, resumable bit-for-bit, and unchanged under
``torchrun --nproc_per_node N`` (DistributedDataParallel).

Reproducibility contract: on the same machine and software, the same
``seed`` gives the same losses and the same weights, and a run that was killed
and restarted from its checkpoint ends with exactly the weights of one that
was never interrupted. The shuffling order of epoch ``e`` depends only on
``(seed, e)`` (see :func:`make_loader`); every other random draw comes from the
global generators, which are seeded once by :func:`fit` and saved in every
checkpoint.

One idea per module: :mod:`~robustbook.train.epoch` (:func:`run_epoch`),
:mod:`~robustbook.train.loop` (:func:`fit`), :mod:`~robustbook.train.loaders`
(:func:`make_loader`, :class:`EpochSampler`), :mod:`~robustbook.train.checkpoint`
(``last.pt``, its RNG state, :func:`load_weights`), :mod:`~robustbook.train.history`
(:class:`History`) and :mod:`~robustbook.train.distributed` (torchrun/DDP plumbing).
"""
from __future__ import annotations

from robustbook.safeload import CorruptCheckpointError
from robustbook.train.checkpoint import CHECKPOINT_NAME, HISTORY_NAME, load_weights

# private helpers re-exported (redundant alias = deliberate) for tests/test_train.py; not in __all__
from robustbook.train.checkpoint import _restore_rng as _restore_rng
from robustbook.train.checkpoint import _storable_rng as _storable_rng
from robustbook.train.distributed import is_main_process, rank, world_size
from robustbook.train.epoch import run_epoch
from robustbook.train.history import History
from robustbook.train.loaders import EpochSampler, make_loader
from robustbook.train.loop import fit

__all__ = [
    "CHECKPOINT_NAME",
    "HISTORY_NAME",
    "CorruptCheckpointError",
    "EpochSampler",
    "History",
    "fit",
    "is_main_process",
    "load_weights",
    "make_loader",
    "rank",
    "run_epoch",
    "world_size",
]
