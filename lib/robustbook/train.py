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
"""
from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, RandomSampler, Sampler
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from robustbook.atomic import atomic_path, write_json
from robustbook.device import default_device, model_device
from robustbook.seeding import rng_state, seed_everything, set_rng_state

__all__ = [
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

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

CHECKPOINT_NAME = "last.pt"
HISTORY_NAME = "history.json"
_FORMAT = 1


# --------------------------------------------------------------------------- distributed helpers


def world_size() -> int:
    """Number of processes of this run: the process group's size, else ``$WORLD_SIZE``, else 1."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank: the process group's rank, else ``$RANK``, else 0."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """True on rank 0 (and in every ordinary, non-distributed run)."""
    return rank() == 0


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def _distributed_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


_groups_created = 0


def _init_process_group(backend: str) -> None:
    """``init_process_group`` from torchrun's environment, under a fresh key prefix every time.

    fit destroys the group it created, and PyTorch cannot re-create a default
    group on the same rendezvous store (its keys restart from the same names
    and the second init hangs: pytorch/pytorch#55967, #114585). A per-process
    counter, equal on every rank as long as every rank calls fit alike, gives
    each group its own keys, so a script may call fit several times.
    """
    global _groups_created
    _groups_created += 1
    store, r, n = next(dist.rendezvous("env://"))
    store = dist.PrefixStore(f"robustbook.train/{_groups_created}", store)
    dist.init_process_group(backend=backend, store=store, rank=r, world_size=n)


def _collective_device() -> torch.device:
    """Tensors given to collectives must live where the backend expects them."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside a DistributedDataParallel (or DataParallel) wrapper."""
    inner = getattr(model, "module", None)
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) and inner is not None:
        return inner
    return model


# --------------------------------------------------------------------------- loaders


def _mix_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit seed that is a function of ``(seed, epoch)`` only."""
    state = np.random.SeedSequence([seed % 2**64, epoch]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class EpochSampler(Sampler[int]):
    """Indices ``0..n-1``, shuffled (when ``shuffle``) by a permutation that is a function of ``(seed, epoch)``.

    Call :meth:`set_epoch` before iterating (``fit`` does). It never touches the
    global random generators, so the order of epoch 7 is the same whether the
    run started at epoch 0 or resumed at epoch 7.
    """

    def __init__(self, n: int, *, shuffle: bool, seed: int) -> None:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        self.n = n
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of epoch ``epoch``."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(_mix_seed(self.seed, self.epoch))
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    drop_last: bool = False,
    num_workers: int = 0,
    distributed: bool | None = None,
    collate_fn: Callable | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader whose order in epoch ``e`` is a function of ``(seed, e)``.

    ``distributed=None`` shards the data across processes exactly when the
    script runs under ``torchrun`` with more than one process (a
    :class:`~torch.utils.data.distributed.DistributedSampler` with ``seed``);
    otherwise it uses an :class:`EpochSampler`. Pass ``distributed=False`` for
    an evaluation loader that every process should read whole. The process
    group need not exist yet: rank and world size are read from the
    environment torchrun sets.
    """
    if isinstance(dataset, IterableDataset):
        raise TypeError("make_loader needs a map-style dataset (with __len__ and __getitem__), "
                        "not an IterableDataset")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if distributed is None:
        distributed = world_size() > 1
    sampler: Sampler[int]
    if distributed:
        sampler = DistributedSampler(dataset, num_replicas=world_size(), rank=rank(), shuffle=shuffle,
                                     seed=seed, drop_last=drop_last)
    else:
        sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                      num_workers=num_workers, collate_fn=collate_fn, pin_memory=pin_memory,
                      persistent_workers=False)


def _samplers(loader: Iterable) -> list[Any]:
    found: list[Any] = []
    for s in (getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        if s is not None and all(s is not f for f in found):
            found.append(s)
    return found


def _set_epoch(loader: Iterable, epoch: int) -> None:
    for s in _samplers(loader):
        if hasattr(s, "set_epoch"):
            s.set_epoch(epoch)


def _distributed_sampler(loader: Iterable) -> DistributedSampler | None:
    for s in _samplers(loader):
        if isinstance(s, DistributedSampler):
            return s
    return None


def _shard_loader(loader: Iterable, seed: int) -> DataLoader:
    """Rebuild an ordinary DataLoader so that each process reads its own shard."""
    if _distributed_sampler(loader) is not None:
        return loader  # type: ignore[return-value]
    if (not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset)
            or loader.batch_size is None):
        raise ValueError("under torchrun, train_loader must shard the data across processes; build it with "
                         "robustbook.train.make_loader(dataset, batch_size, shuffle=..., seed=...), which does "
                         "so automatically (got a loader fit cannot rebuild: "
                         f"{type(loader).__name__} with a custom batch_sampler or an IterableDataset)")
    sampler = loader.sampler
    shuffle = isinstance(sampler, RandomSampler) or bool(getattr(sampler, "shuffle", False))
    dsampler = DistributedSampler(loader.dataset, num_replicas=world_size(), rank=rank(), shuffle=shuffle,
                                  seed=seed, drop_last=loader.drop_last)
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=dsampler, drop_last=loader.drop_last,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
                      worker_init_fn=loader.worker_init_fn)


# --------------------------------------------------------------------------- one epoch


def _resolve_amp(amp: bool | str, device: torch.device) -> bool:
    if amp == "auto":
        return device.type == "cuda"
    if amp is True:
        if device.type != "cuda":
            raise ValueError(f"amp=True needs a CUDA device, but the model is on {device}; "
                             "use amp=False, or amp='auto' to enable mixed precision only on CUDA")
        return True
    if amp is False:
        return False
    raise ValueError(f"amp must be True, False or 'auto', got {amp!r}")


@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """Parameters stop requiring gradients, so an attack differentiates w.r.t. its input only.

    This saves the parameter gradients' work and guarantees an attack that calls
    ``loss.backward()`` leaves no ``.grad`` on the weights.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        got = f"a {type(batch).__name__}"
        if isinstance(batch, (tuple, list)):
            got += f" of length {len(batch)}"
        raise TypeError(f"the loader must yield (x, y) pairs; got {got}")
    x, y = batch
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"the loader must yield tensors (x, y); got ({type(x).__name__}, {type(y).__name__})")
    return x, y


def _attacked(attack: Attack, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Run the inner maximisation with gradients enabled, on the unwrapped, frozen model."""
    with _frozen(model), torch.enable_grad():
        x_adv = attack(model, x, y)
    if not isinstance(x_adv, torch.Tensor) or x_adv.shape != x.shape:
        got = tuple(x_adv.shape) if isinstance(x_adv, torch.Tensor) else type(x_adv).__name__
        raise ValueError(f"attack(model, x, y) must return a tensor shaped like x {tuple(x.shape)}, got {got}")
    return x_adv.detach()


def _scalar_loss(loss_fn: LossFn, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loss = loss_fn(out, y)
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return the batch mean as a 0-dim tensor (reduction='mean'), got {shape}")
    return loss


def run_epoch(
    model: nn.Module,
    loader: Iterable,
    loss_fn: LossFn,
    *,
    opt: torch.optim.Optimizer | None = None,
    attack: Attack | None = None,
    mix_alpha: float | None = None,
    device: torch.device | str | None = None,
    amp: bool | str = False,
    scaler: torch.amp.GradScaler | None = None,
    scheduler: Any = None,
    collect: bool = False,
    progress: bool = True,
    desc: str = "",
) -> dict[str, Any]:
    """One pass over ``loader``: training if ``opt`` is given, evaluation otherwise.

    ``loader`` yields ``(x, y)`` tensor pairs; ``y`` may hold class labels or
    float regression targets, whatever ``loss_fn(output, y)`` expects.
    ``loss_fn`` must return the *batch mean* (``reduction='mean'``).

    * ``opt=None``: ``model.eval()``; the loss forward runs under
      ``torch.no_grad``. The weights never change and get no ``.grad``.
    * ``opt`` given: ``model.train()`` and one optimiser step per batch
      (``scheduler``, if given, is stepped after every batch: pass it here only
      for per-batch schedules such as OneCycleLR).
    * ``attack(model, x, y) -> x_adv`` (the inner max) replaces the inputs by
      attacked ones. It runs with gradients enabled even in evaluation, on the
      unwrapped model (not the DDP wrapper) in the loop's mode, with the
      parameters temporarily frozen so only the input receives gradients, and
      in full precision even when ``amp`` is on.
    * ``mix_alpha=α`` in (0, 1] (needs ``attack``): the loss is
      ``α·ℓ(h(x), y) + (1−α)·ℓ(h(x_adv), y)``, eq. (4) of the ST-Norm paper;
      α weights the *clean* loss (α=1 is plain training with wasted attacks,
      α→0 pure adversarial training). The two forwards are separate, so
      batch-norm statistics are never mixed across clean and attacked inputs.
    * ``amp``: ``True`` (CUDA only, else ValueError), ``False``, or ``'auto'``
      (on for CUDA). Training with amp needs ``scaler`` (a ``torch.amp.GradScaler``).

    Returns ``{"loss": mean loss per sample, "n": samples, "seconds": wall time}``,
    plus ``"loss_clean"``/``"loss_adv"`` with ``mix_alpha``, plus with
    ``collect=True`` ``"pred"`` and ``"target"``: the outputs (on the attacked
    inputs when there is an attack) and targets, concatenated on the CPU in
    loader order. With a :class:`DistributedSampler` the sums are all-reduced
    over processes (the sampler pads with up to ``world_size-1`` repeated
    samples, which the loss mean then includes) and collected predictions are
    gathered and put back in dataset order, without the repeats.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if opt is not None and not isinstance(opt, torch.optim.Optimizer):
        raise TypeError(f"opt must be a torch.optim.Optimizer or None, got {type(opt).__name__}")
    if attack is not None and not callable(attack):
        raise TypeError(f"attack must be a callable attack(model, x, y) -> x_adv, got {type(attack).__name__}")
    if mix_alpha is not None:
        if attack is None:
            raise ValueError("mix_alpha weights a clean and an adversarial loss, so it needs attack=")
        if not (isinstance(mix_alpha, (int, float)) and 0.0 < float(mix_alpha) <= 1.0):
            raise ValueError(f"mix_alpha must be a number in (0, 1], got {mix_alpha!r}")
        mix_alpha = float(mix_alpha)
    raw = _unwrap(model)
    dev = torch.device(device) if device is not None else model_device(raw)
    use_amp = _resolve_amp(amp, dev)
    if use_amp and opt is not None and scaler is None:
        raise ValueError("training with amp needs a gradient scaler: pass scaler=torch.amp.GradScaler('cuda')")
    training = opt is not None
    dsampler = _distributed_sampler(loader)
    reduce = dsampler is not None and _distributed_active()
    acc_dtype = torch.float32 if dev.type == "mps" else torch.float64

    was_training = raw.training
    model.train(training)
    loss_sum = torch.zeros((), dtype=acc_dtype, device=dev)
    clean_sum = torch.zeros((), dtype=acc_dtype, device=dev)
    adv_sum = torch.zeros((), dtype=acc_dtype, device=dev)
    n = 0
    preds: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if use_amp else contextlib.nullcontext
    t0 = time.perf_counter()
    bar = tqdm(loader, desc=desc or ("train" if training else "eval"), leave=False, dynamic_ncols=True,
               disable=not progress or not is_main_process())
    frozen = contextlib.nullcontext() if training else _frozen(raw)
    try:
        with frozen:
            for i, batch in enumerate(bar):
                x, y = _split_batch(batch)
                x = x.to(dev, non_blocking=True)
                y = y.to(dev, non_blocking=True)
                bs = x.shape[0]
                x_in = _attacked(attack, raw, x, y) if attack is not None else x
                if training:
                    opt.zero_grad(set_to_none=True)
                grad_ctx = contextlib.nullcontext() if training else torch.no_grad()
                with grad_ctx, autocast():
                    out = model(x_in)
                    loss = _scalar_loss(loss_fn, out, y)
                    if mix_alpha is not None:
                        loss_adv = loss
                        loss_clean = _scalar_loss(loss_fn, model(x), y)
                        loss = mix_alpha * loss_clean + (1.0 - mix_alpha) * loss_adv
                        clean_sum += loss_clean.detach().to(acc_dtype) * bs
                        adv_sum += loss_adv.detach().to(acc_dtype) * bs
                if training:
                    if scaler is not None and use_amp:
                        scaler.scale(loss).backward()
                        scaler.step(opt)
                        scaler.update()
                    else:
                        loss.backward()
                        opt.step()
                    if scheduler is not None:
                        scheduler.step()
                loss_sum += loss.detach().to(acc_dtype) * bs
                n += bs
                if collect:
                    p = out.detach()
                    preds.append((p.float() if p.dtype in (torch.float16, torch.bfloat16) else p).cpu())
                    targets.append(y.detach().cpu())
                if not bar.disable and i % 10 == 0:
                    bar.set_postfix(loss=f"{loss_sum.item() / n:.4g}")
    finally:
        bar.close()
        raw.train(was_training)
    if n == 0 and not reduce:
        raise ValueError("the loader yielded no batches; check the dataset size, batch_size and drop_last")

    n_local = n
    if reduce:
        sums = torch.stack([loss_sum, clean_sum, adv_sum, torch.tensor(float(n), dtype=acc_dtype, device=dev)])
        sums = sums.to(_collective_device())
        dist.all_reduce(sums)
        loss_sum, clean_sum, adv_sum, n_t = sums.cpu().unbind()
        n = int(n_t.item())
        if n == 0:
            raise ValueError("the loader yielded no batches on any process")
    result: dict[str, Any] = {"loss": float(loss_sum.item()) / n, "n": n,
                              "seconds": time.perf_counter() - t0}
    if mix_alpha is not None:
        result["loss_clean"] = float(clean_sum.item()) / n
        result["loss_adv"] = float(adv_sum.item()) / n
    if collect:
        pred = torch.cat(preds) if preds else torch.empty(0)
        target = torch.cat(targets) if targets else torch.empty(0)
        if reduce:
            assert dsampler is not None
            pred, target = _gather_in_dataset_order(dsampler, pred, target, n_local)
        result["pred"], result["target"] = pred, target
    return result


def _gather_in_dataset_order(sampler: DistributedSampler, pred: torch.Tensor, target: torch.Tensor,
                             n_local: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All processes' predictions, sorted by dataset index, with the sampler's padding removed."""
    idx = torch.tensor(list(iter(sampler))[:n_local], dtype=torch.int64)
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (idx, pred, target))
    idx = torch.cat([p[0] for p in parts])
    pred = torch.cat([p[1] for p in parts])
    target = torch.cat([p[2] for p in parts])
    order = torch.argsort(idx, stable=True)
    idx, pred, target = idx[order], pred[order], target[order]
    keep = torch.ones(len(idx), dtype=torch.bool)
    keep[1:] = idx[1:] != idx[:-1]
    return pred[keep], target[keep]


# --------------------------------------------------------------------------- history and checkpoints


@dataclass
class History:
    """Per-epoch records of a :func:`fit`.

    Each record is a dict with ``epoch`` (1-based), ``train_loss`` (plus
    ``train_loss_clean``/``train_loss_adv`` with ``mix_alpha``), ``lr`` (the
    first parameter group's learning rate during the epoch), ``eval_loss``
    and/or the keys ``eval_fn`` returned, and ``seconds``.
    """

    epochs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def last(self) -> dict[str, Any]:
        """The most recent epoch's record."""
        if not self.epochs:
            raise IndexError("the history is empty: no epoch has finished")
        return self.epochs[-1]

    def series(self, key: str) -> list[Any]:
        """One metric across epochs, e.g. ``history.series("train_loss")``."""
        missing = [r["epoch"] for r in self.epochs if key not in r]
        if missing:
            known = sorted({k for r in self.epochs for k in r})
            raise KeyError(f"{key!r} is missing in epochs {missing}; known keys: {known}")
        return [r[key] for r in self.epochs]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy: ``{"epochs": [record, ...]}``."""
        return {"epochs": [dict(r) for r in self.epochs]}

    def __len__(self) -> int:
        return len(self.epochs)


def _storable_rng(state: dict) -> dict[str, Any]:
    """:func:`rng_state` as tensors and primitives, loadable with ``torch.load(weights_only=True)``."""
    version, internal, gauss = state["python"]
    name, keys, pos, has_gauss, cached = state["numpy"]
    out: dict[str, Any] = {
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss": None if gauss is None else float(gauss)},
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": state["torch"].clone(),
    }
    if "cuda" in state:
        out["cuda"] = [s.clone() for s in state["cuda"]]
    return out


def _restore_rng(stored: dict[str, Any]) -> None:
    """Inverse of :func:`_storable_rng`, then :func:`set_rng_state`."""
    py, npy = stored["python"], stored["numpy"]
    state: dict[str, Any] = {
        "python": (py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]),
        "numpy": (npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                  npy["cached"]),
        "torch": stored["torch"],
    }
    if "cuda" in stored:
        state["cuda"] = stored["cuda"]
    set_rng_state(state)


def _normalise_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict of JSON-like values, got {type(config).__name__}")
    try:
        return json.loads(json.dumps(dict(config), sort_keys=True))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"config must hold only JSON-like values (str, int, float, bool, None, lists, dicts): {exc}"
                        ) from None


def _config_diff(stored: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    lines = []
    for key in sorted(set(stored) | set(given)):
        a, b = stored.get(key, "<absent>"), given.get(key, "<absent>")
        if a != b:
            lines.append(f"  {key}: checkpoint {a!r} vs given {b!r}")
    return lines


def _load_checkpoint(path: Path) -> dict[str, Any]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != _FORMAT or "model" not in ckpt:
        raise ValueError(f"{path} is not a robustbook.train checkpoint (format {_FORMAT})")
    return ckpt


def load_weights(path: str | os.PathLike, model: nn.Module, *, strict: bool = True) -> nn.Module:
    """Load the model weights of a :func:`fit` checkpoint (or a bare state dict) into ``model``.

    Uses ``torch.load(weights_only=True)``, so no code in the file is executed.
    Returns ``model``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and obj.get("format") == _FORMAT and "model" in obj:
        obj = obj["model"]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} holds neither a robustbook checkpoint nor a state dict "
                         f"(got {type(obj).__name__})")
    _unwrap(model).load_state_dict(obj, strict=strict)
    return model


def _gather_rng() -> list[dict[str, Any]]:
    """Every process's RNG state, indexed by rank."""
    mine = _storable_rng(rng_state())
    if not _distributed_active():
        return [mine]
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, mine)
    return parts


# --------------------------------------------------------------------------- fit


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
    attack: Attack | None = None,
    mix_alpha: float | None = None,
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
    * ``attack``, ``mix_alpha``: the inner maximisation, see :func:`run_epoch`.
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
                    mix_alpha=mix_alpha, eval_loader=eval_loader, eval_fn=eval_fn,
                    checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir), config=cfg,
                    dev=dev, use_amp=use_amp, progress=progress, callbacks=callbacks, ws=ws)
    finally:
        if created_group and dist.is_initialized():
            dist.destroy_process_group()


def _fit(model: nn.Module, train_loader: Iterable, *, loss_fn: LossFn, epochs: int, optimizer: Any, seed: int,
         scheduler: Any, scheduler_interval: str, attack: Attack | None, mix_alpha: float | None,
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
            tr = run_epoch(net, train_loader, loss_fn, opt=opt, attack=attack, mix_alpha=mix_alpha, device=dev,
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


def _save_checkpoint(path: Path, *, model: nn.Module, opt: torch.optim.Optimizer, sched: Any,
                     scaler: torch.amp.GradScaler | None, epoch: int, history: History, rngs: list,
                     seed: int, config: dict[str, Any], ws: int) -> None:
    state = {
        "format": _FORMAT,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict() if sched is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "history": [dict(r) for r in history.epochs],
        "rng": rngs,
        "seed": seed,
        "config": config,
        "world_size": ws,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
