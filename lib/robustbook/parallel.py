"""Independent jobs (models to train, models to attack) on several CPU cores at once.

A chapter trains tens of small models that do not depend on each other. One process with one
torch thread is the fastest way to train *one* such model on a small CPU (intra-op threads
barely help tiny convolutions, and thrash on a busy machine: :func:`robustbook.run.single_run_threads`),
so the cores are used by running *jobs* side by side, each in its own process with one thread.

``parallel_map(fn, jobs, workers=n)`` returns ``{key: fn(*args)}`` for ``jobs = {key: args}``:

* ``workers == 1`` (the default outside the runner) calls ``fn`` in this process, in order;
* ``workers > 1`` starts that many *spawned* processes (spawn, not fork: a forked torch with
  OpenMP threads can deadlock), each with one torch thread, and hands them the jobs in the
  given order (put the longest first).

Results are the same either way: every job seeds itself (:func:`robustbook.seeding.seed_everything`)
and runs single-threaded, so a worker computes bit for bit what the parent would have. ``fn``
must be importable by name (a function of a module, not one defined in a notebook cell) and
its arguments and result picklable (tensors, state dicts, numbers, plain containers).

How many workers: ``$ROBUSTBOOK_WORKERS`` when set, else 1. ``python -m robustbook run`` sets it
to the cores left over by its torch threads (2 on a 2-core laptop); ``book`` with several
chapters at once gives each chapter its share (1 on a 2-core laptop running two). A machine with
more than 3 cores gives its single run all cores as torch threads and so 1 worker (a GPU run
trains on the device, not on the cores).
"""
from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

WORKERS_ENV = "ROBUSTBOOK_WORKERS"


def worker_count() -> int:
    """Processes to run independent jobs in: ``$ROBUSTBOOK_WORKERS`` (a whole number >= 1), or 1."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return 1
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"${WORKERS_ENV} must be a whole number >= 1 (processes for independent jobs), got {raw!r}")
    return n


def _init_worker() -> None:
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    import torch  # here, not at the top: the runner's CLI imports this module and must start fast

    torch.set_num_threads(1)


def _timed(fn: Callable[..., Any], args: tuple) -> tuple[Any, float]:
    t0 = time.perf_counter()
    return fn(*args), time.perf_counter() - t0


class _DetachingPickler(pickle.Pickler):
    """Pickles a result as is, except that tensors inside an autograd graph (which cannot cross processes)
    travel detached: a worker's report may hold a loss or a score that still requires grad."""

    def reducer_override(self, obj: Any) -> Any:
        import torch

        if isinstance(obj, torch.Tensor) and obj.requires_grad and not obj.is_leaf:
            return _identity, (obj.detach(),)
        return NotImplemented


def _identity(x: Any) -> Any:
    return x


def _dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    _DetachingPickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def detached_copy(obj: Any) -> Any:
    """A deep copy of ``obj`` (a model, a report) whose tensors inside an autograd graph are detached, which
    ``copy.deepcopy`` refuses (a model that keeps its last forward pass's state for a loss, say)."""
    return pickle.loads(_dumps(obj))


def _timed_pickled(fn: Callable[..., Any], args: bytes) -> tuple[bytes, float]:
    """:func:`_timed` in a worker: arguments and result travel pickled by :class:`_DetachingPickler` (a
    model may keep the last forward pass's state, a report a loss, inside an autograd graph)."""
    result, seconds = _timed(fn, pickle.loads(args))
    return _dumps(result), seconds


def parallel_map(fn: Callable[..., Any], jobs: Mapping[Hashable, tuple], *, workers: int = 1,
                 on_done: Callable[[Hashable, Any, float], None] | None = None) -> dict[Hashable, Any]:
    """``{key: fn(*args)}`` for every ``key: args`` of ``jobs``, on ``workers`` processes.

    ``on_done(key, result, seconds)`` is called in this process as each job finishes (progress
    lines). A job that raises stops the rest (those not started are cancelled) and the error is
    re-raised with the job's key in its message.
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
    out: dict[Hashable, Any] = {}
    if workers == 1 or len(jobs) < 2:
        for key, args in jobs.items():
            result, seconds = _timed(fn, tuple(args))
            out[key] = result
            if on_done:
                on_done(key, result, seconds)
        return out
    ctx = multiprocessing.get_context("spawn")
    pending: Iterator = iter(jobs.items())
    running: dict[Future, Hashable] = {}
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx,
                             initializer=_init_worker) as pool:
        try:
            def submit_next() -> None:
                item = next(pending, None)
                if item is not None:
                    running[pool.submit(_timed_pickled, fn, _dumps(tuple(item[1])))] = item[0]

            for _ in range(min(workers, len(jobs))):   # never more queued than workers: the order holds
                submit_next()
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    key = running.pop(fut)
                    try:
                        payload, seconds = fut.result()
                    except Exception as exc:
                        raise RuntimeError(f"job {key!r} failed in a worker process: {exc!r}") from exc
                    result = pickle.loads(payload)
                    out[key] = result
                    if on_done:
                        on_done(key, result, seconds)
                    submit_next()
        except BaseException:
            for fut in running:
                fut.cancel()
            raise
    return {key: out[key] for key in jobs}
