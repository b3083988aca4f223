"""The outer loop: :func:`fit` trains for a number of epochs, seeded, checkpointed and resumable."""
from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from robustbook.atomic import write_json
from robustbook.attacks.configured import AttackFn
from robustbook.device import default_device
from robustbook.seeding import seed_everything
from robustbook.train.checkpoint import (
    CHECKPOINT_NAME,
    HISTORY_NAME,
    _config_diff,
    _gather_rng,
    _load_checkpoint,
    _normalise_config,
    _restore_rng,
    _save_checkpoint,
)
from robustbook.train.distributed import (
    _distributed_active,
    _init_process_group,
    _local_rank,
    is_main_process,
    rank,
    world_size,
)
from robustbook.train.epoch import LossFn, PairLossFn, _resolve_amp, run_epoch
from robustbook.train.history import History
from robustbook.train.loaders import _distributed_sampler, _set_epoch, _shard_loader

__all__ = ["fit"]


def _build_optimizer(optimizer: Any, model: nn.Module) -> torch.optim.Optimizer:
    if isinstance(optimizer, torch.optim.Optimizer):
        own = {id(p) for p in model.parameters()}
        foreign = sum(1 for g in optimizer.param_groups for p in g["params"] if id(p) not in own)
        if foreign:
            raise ValueError(f"the optimizer holds {foreign} tensor(s) that are not parameters of the model; "
                             "build it from model.parameters(), or pass a factory such as "
                             "lambda params: torch.optim.SGD(params, lr=0.1)")
        return optimizer
    if callable(optimizer):
        opt = optimizer(model.parameters())
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"the optimizer factory must return a torch.optim.Optimizer, got {type(opt).__name__}")
        return opt
    raise TypeError("optimizer must be a torch.optim.Optimizer or a factory params -> Optimizer, "
                    f"got {type(optimizer).__name__}")


def _build_scheduler(scheduler: Any, opt: torch.optim.Optimizer) -> Any:
    if scheduler is None:
        return None
    if hasattr(scheduler, "step") and hasattr(scheduler, "state_dict"):
        if getattr(scheduler, "optimizer", opt) is not opt:
            raise ValueError("the scheduler drives another optimizer than fit's; pass a factory "
                             "opt -> scheduler, e.g. lambda opt: torch.optim.lr_scheduler.StepLR(opt, 10)")
        return scheduler
    if callable(scheduler):
        sched = scheduler(opt)
        if not (hasattr(sched, "step") and hasattr(sched, "state_dict")):
            raise TypeError(f"the scheduler factory must return an LR scheduler, got {type(sched).__name__}")
        return sched
    raise TypeError(f"scheduler must be None, an LR scheduler or a factory opt -> scheduler, "
                    f"got {type(scheduler).__name__}")


_RESERVED = {"epoch", "train_loss", "train_loss_clean", "train_loss_adv", "lr", "seconds"}


def fit(
    model: nn.Module,
    train_loader: Iterable,
    *,
    loss_fn: LossFn,
    epochs: int,
    optimizer: torch.optim.Optimizer | Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    seed: int,
    scheduler: Any = None,
    scheduler_interval: str = "epoch",
    attack: AttackFn | None = None,
    mix_alpha: float | None = None,
    pair_loss: PairLossFn | None = None,
    eval_loader: Iterable | None = None,
    eval_fn: Callable[[nn.Module, Iterable | None], Mapping[str, float]] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    config: Mapping[str, Any] | None = None,
    device: torch.device | str | None = None,
    amp: bool | str = False,
    progress: bool = True,
    callbacks: Sequence[Callable[[dict[str, Any], nn.Module], None]] = (),
) -> History:
    """Train ``model`` for ``epochs`` epochs (adversarially if ``attack`` is given); return the :class:`History`.

    The model is moved to ``device`` (default: :func:`default_device`, i.e.
    cuda > mps > cpu) and trained in place.

    * ``optimizer``: an optimiser *factory* ``params -> Optimizer`` (preferred:
      fit calls it after moving the model to its device), or an optimiser
      already built over ``model.parameters()``.
    * ``scheduler``: None, a factory ``opt -> scheduler`` (needed with an
      optimizer factory) or a scheduler instance; stepped once per epoch
      (``scheduler_interval="epoch"``; ReduceLROnPlateau gets ``eval_loss`` if
      there is one, else ``train_loss``) or after every batch (``"batch"``).
    * ``attack``, ``mix_alpha``, ``pair_loss``: the inner maximisation and how its
      outputs enter the loss, see :func:`run_epoch`.
    * ``eval_loader``: evaluated clean after every epoch into ``eval_loss``.
      ``eval_fn(model, eval_loader) -> {name: value}`` replaces that
      evaluation (e.g. robust accuracy under an attack); it gets the unwrapped
      model and runs on every process.
    * ``seed``: :func:`seed_everything` is called first; the shuffling of epoch
      ``e`` depends only on ``(seed, e)`` when the loader comes from
      :func:`make_loader`. The model's *initial* weights were drawn before fit
      was called: call ``seed_everything(seed)`` before building the model too.
    * ``checkpoint_dir``: after every epoch ``last.pt`` is written atomically
      (model, optimizer, scheduler, AMP scaler, epoch, history, every
      process's RNG state, ``seed`` and ``config``) plus ``history.json``. If
      ``last.pt`` exists, fit resumes after its last completed epoch (a run
      whose epochs are all done just loads the weights and returns the stored
      history). A checkpoint whose ``config`` or ``seed`` differs from the
      given ones raises ValueError rather than mixing two runs.
    * ``amp``: False, True (CUDA only, ValueError elsewhere) or ``"auto"``.
    * ``callbacks``: ``cb(record, model)`` after each epoch's checkpoint,
      on every process; the RNG state is restored after them so callbacks
      cannot change the training's random draws.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) fit joins or creates the process
    group (nccl on CUDA, gloo otherwise), wraps the model in
    DistributedDataParallel, shards ``train_loader`` (a plain DataLoader is
    rebuilt with a DistributedSampler), all-reduces the losses, and only rank 0
    writes files. Every process returns the same history (rank 0's). A process
    group fit created is destroyed when it returns.
    """
    # ---- validate everything before touching the model
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if scheduler_interval not in ("epoch", "batch"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}")
    if mix_alpha is not None and attack is None:
        raise ValueError("mix_alpha weights a clean and an adversarial loss, so it needs attack=")
    if mix_alpha is not None and not (isinstance(mix_alpha, (int, float)) and 0.0 < float(mix_alpha) <= 1.0):
        raise ValueError(f"mix_alpha must be a number in (0, 1], got {mix_alpha!r}")
    if pair_loss is not None and (attack is None or mix_alpha is not None or not callable(pair_loss)):
        raise ValueError("pair_loss(out_clean, out_adv, y) must be callable and needs attack= (and no mix_alpha)")
    if eval_fn is not None and not callable(eval_fn):
        raise TypeError(f"eval_fn must be callable eval_fn(model, eval_loader) -> dict, got {type(eval_fn).__name__}")
    callbacks = tuple(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"every callback must be callable cb(record, model), got {type(cb).__name__}")
    if amp not in (True, False, "auto"):
        raise ValueError(f"amp must be True, False or 'auto', got {amp!r}")
    cfg = _normalise_config(config)

    # ---- processes and device
    created_group = False
    ws = world_size()
    if ws > 1 and not dist.is_initialized():
        if not dist.is_available():
            raise RuntimeError(f"WORLD_SIZE={ws} but this PyTorch build has no torch.distributed")
        if torch.cuda.is_available():
            torch.cuda.set_device(_local_rank())
        _init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        created_group = True
    try:
        dev = default_device(device)
        if ws > 1 and dev.type == "cuda":
            dev = torch.device("cuda", _local_rank())
            torch.cuda.set_device(dev)
        use_amp = _resolve_amp(amp, dev)
        return _fit(model, train_loader, loss_fn=loss_fn, epochs=epochs, optimizer=optimizer, seed=seed,
                    scheduler=scheduler, scheduler_interval=scheduler_interval, attack=attack,
                    mix_alpha=mix_alpha, pair_loss=pair_loss, eval_loader=eval_loader, eval_fn=eval_fn,
                    checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir), config=cfg,
                    dev=dev, use_amp=use_amp, progress=progress, callbacks=callbacks, ws=ws)
    finally:
        if created_group and dist.is_initialized():
            dist.destroy_process_group()


def _fit(model: nn.Module, train_loader: Iterable, *, loss_fn: LossFn, epochs: int, optimizer: Any, seed: int,
         scheduler: Any, scheduler_interval: str, attack: AttackFn | None, mix_alpha: float | None,
         pair_loss: PairLossFn | None,
         eval_loader: Iterable | None, eval_fn: Any, checkpoint_dir: Path | None, config: dict[str, Any],
         dev: torch.device, use_amp: bool, progress: bool, callbacks: tuple, ws: int) -> History:
    main = is_main_process()
    seed_everything(seed)
    model.to(dev)
    opt = _build_optimizer(optimizer, model)
    sched = _build_scheduler(scheduler, opt)
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    history = History()
    start = 0

    ckpt_path = checkpoint_dir / CHECKPOINT_NAME if checkpoint_dir is not None else None
    if ckpt_path is not None and ckpt_path.exists():
        ckpt = _load_checkpoint(ckpt_path)
        diff = _config_diff(ckpt.get("config", {}), config)
        if ckpt.get("seed") != seed:
            diff.insert(0, f"  seed: checkpoint {ckpt.get('seed')!r} vs given {seed!r}")
        if diff:
            raise ValueError(f"{ckpt_path} belongs to a different run; refusing to mix them. Differences:\n"
                             + "\n".join(diff)
                             + f"\nUse another checkpoint_dir, or delete {ckpt_path} to start afresh.")
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise RuntimeError(f"{ckpt_path} does not fit this model: {exc}") from None
        opt.load_state_dict(ckpt["optimizer"])
        if sched is not None and ckpt.get("scheduler") is not None:
            sched.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler") is not None:
            scaler.load_state_dict(ckpt["scaler"])
        history = History([dict(r) for r in ckpt["history"]])
        start = int(ckpt["epoch"])
        stored_rng = ckpt["rng"]
        if int(ckpt.get("world_size", 1)) != ws:
            warnings.warn(f"{ckpt_path} was written by a run with {ckpt.get('world_size')} process(es), this one "
                          f"has {ws}: the continuation will not be bit-identical to an uninterrupted run",
                          stacklevel=3)
        _restore_rng(stored_rng[rank() % len(stored_rng)])
        if start >= epochs:
            if start > epochs:
                warnings.warn(f"{ckpt_path} holds {start} epochs, more than the {epochs} asked for; "
                              "returning its (longer) history and weights", stacklevel=3)
            return history

    net: nn.Module = model
    if ws > 1:
        train_loader = _shard_loader(train_loader, seed)
        net = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)

    batch_sched = sched if scheduler_interval == "batch" else None
    epoch_sched = sched if scheduler_interval == "epoch" else None
    eval_everywhere = eval_fn is not None or (eval_loader is not None and _distributed_sampler(eval_loader))
    bar = tqdm(range(start, epochs), initial=start, total=epochs, desc="epochs", dynamic_ncols=True,
               disable=not progress or not main)
    try:
        for epoch in bar:
            t0 = time.perf_counter()
            _set_epoch(train_loader, epoch)
            lr = float(opt.param_groups[0]["lr"])
            tr = run_epoch(net, train_loader, loss_fn, opt=opt, attack=attack, mix_alpha=mix_alpha,
                           pair_loss=pair_loss, device=dev,
                           amp=use_amp, scaler=scaler, scheduler=batch_sched, progress=progress,
                           desc=f"epoch {epoch + 1}/{epochs}")
            record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": tr["loss"]}
            if mix_alpha is not None:
                record["train_loss_clean"], record["train_loss_adv"] = tr["loss_clean"], tr["loss_adv"]
            record["lr"] = lr
            if eval_everywhere or (eval_loader is not None and main):
                record.update(_evaluate(model, eval_loader, eval_fn, loss_fn, dev, use_amp, progress, epoch))
            if epoch_sched is not None:
                if isinstance(epoch_sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    metric = record.get("eval_loss", record["train_loss"])
                    if _distributed_active():  # rank 0's metric decides, so every process steps alike
                        box = [metric]
                        dist.broadcast_object_list(box, src=0)
                        metric = box[0]
                    epoch_sched.step(metric)
                else:
                    epoch_sched.step()
            record["seconds"] = time.perf_counter() - t0
            if _distributed_active():
                box = [record]
                dist.broadcast_object_list(box, src=0)
                record = box[0]
            history.epochs.append(record)
            rngs = _gather_rng()
            if ckpt_path is not None and main:
                _save_checkpoint(ckpt_path, model=model, opt=opt, sched=sched, scaler=scaler, epoch=epoch + 1,
                                 history=history, rngs=rngs, seed=seed, config=config, ws=ws)
                write_json(ckpt_path.parent / HISTORY_NAME, {"seed": seed, "config": config, **history.as_dict()})
            bar.set_postfix(train_loss=f"{record['train_loss']:.4g}")
            if callbacks:
                for cb in callbacks:
                    cb(record, model)
                _restore_rng(rngs[rank() % len(rngs)])
    finally:
        bar.close()
    return history


def _evaluate(model: nn.Module, eval_loader: Iterable | None, eval_fn: Any, loss_fn: LossFn, dev: torch.device,
              use_amp: bool, progress: bool, epoch: int) -> dict[str, Any]:
    if eval_loader is not None:
        _set_epoch(eval_loader, epoch)
    if eval_fn is None:
        assert eval_loader is not None
        res = run_epoch(model, eval_loader, loss_fn, device=dev, amp=use_amp, progress=progress,
                        desc=f"eval {epoch + 1}")
        return {"eval_loss": res["loss"]}
    out = eval_fn(model, eval_loader)
    if not isinstance(out, Mapping):
        raise TypeError(f"eval_fn must return a dict of metric name -> number, got {type(out).__name__}")
    clash = sorted(set(out) & _RESERVED)
    if clash:
        raise ValueError(f"eval_fn returned reserved key(s) {clash}; rename them (reserved: {sorted(_RESERVED)})")
    metrics: dict[str, Any] = {}
    for k, v in out.items():
        if (isinstance(v, torch.Tensor) and v.numel() == 1) or (isinstance(v, (np.ndarray, np.generic))
                                                               and v.size == 1):
            v = v.item()
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"eval_fn must return str -> number; got {k!r}: {type(v).__name__}")
        metrics[k] = float(v)
    return metrics
