"""One pass over a loader: training, adversarial training or evaluation (clean or under attack).

:func:`run_epoch` is the body of the outer minimisation
``min_θ E max_δ ℓ(h_θ(x + δ), y)`` for one epoch; :func:`robustbook.train.fit`
repeats it.
"""
from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from robustbook.attacks.configured import AttackFn
from robustbook.device import model_device
from robustbook.modes import preserved_modes
from robustbook.train.distributed import (
    _collective_device,
    _distributed_active,
    _gather_in_dataset_order,
    _unwrap,
    is_main_process,
)
from robustbook.train.loaders import _distributed_sampler

__all__ = ["run_epoch"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``pair_loss(h(x), h(x_adv), y) -> batch mean``: a loss of the clean and the attacked outputs together
#: (HAT's eq. (2.3) for denoisers, :class:`robustbook.losses.HATLoss`; TRADES-like losses).
PairLossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


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


def _attacked(attack: AttackFn, model: nn.Module, x: torch.Tensor, y: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the inner maximisation with gradients enabled, on the unwrapped, frozen model.

    An attack may return ``(x_adv, y_adv)``: a label-adjusting attack (e.g. the label penalty of
    Chistyakova et al. 2024, BiRQA chapter) whose adversarial loss uses ``y_adv``.
    """
    with _frozen(model), torch.enable_grad():
        x_adv = attack(model, x, y)
    y_adv = y
    if isinstance(x_adv, tuple):
        if len(x_adv) != 2 or not isinstance(x_adv[1], torch.Tensor) or x_adv[1].shape != y.shape:
            raise ValueError(f"a label-adjusting attack must return (x_adv, y_adv) with y_adv shaped like y "
                             f"{tuple(y.shape)}")
        x_adv, y_adv = x_adv
    if not isinstance(x_adv, torch.Tensor) or x_adv.shape != x.shape:
        got = tuple(x_adv.shape) if isinstance(x_adv, torch.Tensor) else type(x_adv).__name__
        raise ValueError(f"attack(model, x, y) must return a tensor shaped like x {tuple(x.shape)}, got {got}")
    return x_adv.detach(), y_adv.detach()


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
    attack: AttackFn | None = None,
    mix_alpha: float | None = None,
    pair_loss: PairLossFn | None = None,
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

    * ``opt=None``: the whole model in eval mode; the loss forward runs under
      ``torch.no_grad``. The weights never change and get no ``.grad``.
    * ``opt`` given: the whole model in train mode and one optimiser step per batch
      (``scheduler``, if given, is stepped after every batch: pass it here only
      for per-batch schedules such as OneCycleLR).
    * Afterwards every submodule is back in its own mode (a BatchNorm left in
      eval mode inside a model in train mode stays so; see
      :func:`robustbook.modes.preserved_modes`).
    * ``attack(model, x, y) -> x_adv`` (the inner max) replaces the inputs by
      attacked ones. It runs with gradients enabled even in evaluation, on the
      unwrapped model (not the DDP wrapper) in the loop's mode, with the
      parameters temporarily frozen so only the input receives gradients, and
      in full precision even when ``amp`` is on. It may return ``(x_adv, y_adv)``: the
      adversarial loss then uses ``y_adv`` (label-adjusting adversarial training).
    * ``mix_alpha=α`` in (0, 1] (needs ``attack``): the loss is
      ``α·ℓ(h(x), y) + (1−α)·ℓ(h(x_adv), y)``, eq. (4) of the ST-Norm paper;
      α weights the *clean* loss (α=1 is plain training with wasted attacks,
      α→0 pure adversarial training). The two forwards are separate, so
      batch-norm statistics are never mixed across clean and attacked inputs.
    * ``pair_loss(h(x), h(x_adv), y)`` (needs ``attack``; not with ``mix_alpha``): the loss
      is this function of both outputs, with gradients through both (HAT, eq. (2.3) of the
      thesis' chapter 2: :class:`robustbook.losses.HATLoss`). Two separate forwards, clean
      first. ``loss_fn`` is then used only where no attack runs (``"loss"`` reports the pair loss).
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
    if pair_loss is not None:
        if not callable(pair_loss):
            raise TypeError("pair_loss must be callable pair_loss(out_clean, out_adv, y), "
                            f"got {type(pair_loss).__name__}")
        if attack is None:
            raise ValueError("pair_loss compares clean and attacked outputs, so it needs attack=")
        if mix_alpha is not None:
            raise ValueError("pass either mix_alpha or pair_loss, not both")
    raw = _unwrap(model)
    dev = torch.device(device) if device is not None else model_device(raw)
    use_amp = _resolve_amp(amp, dev)
    if use_amp and opt is not None and scaler is None:
        raise ValueError("training with amp needs a gradient scaler: pass scaler=torch.amp.GradScaler('cuda')")
    training = opt is not None
    dsampler = _distributed_sampler(loader)
    reduce = dsampler is not None and _distributed_active()
    acc_dtype = torch.float32 if dev.type == "mps" else torch.float64

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
        with preserved_modes(model, training=training), frozen:
            for i, batch in enumerate(bar):
                x, y = _split_batch(batch)
                x = x.to(dev, non_blocking=True)
                y = y.to(dev, non_blocking=True)
                bs = x.shape[0]
                x_in, y_in = _attacked(attack, raw, x, y) if attack is not None else (x, y)
                if training:
                    opt.zero_grad(set_to_none=True)
                grad_ctx = contextlib.nullcontext() if training else torch.no_grad()
                with grad_ctx, autocast():
                    if pair_loss is not None:
                        out_clean = model(x)
                        out = model(x_in)
                        loss = _scalar_loss(functools.partial(pair_loss, out_clean), out, y_in)
                    else:
                        out = model(x_in)
                        loss = _scalar_loss(loss_fn, out, y_in)
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
