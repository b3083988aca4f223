"""Feature shift: Euclidean Distance Statistics (EDS) and BatchNorm channel statistics.

Source 000 (ST Norm), section I and Fig. 2: adversarial images shift the features
after BatchNorm. The paper measures the shift by "the Euclidean distance in the
channel domain, and then … the mean and standard deviation of the values obtained
in the spatial domain as the final EDS" (Fig. 2(b), 16 clean/adversarial pairs at
ResNet-50's res4 = torchvision ``layer3``), and compares per-channel means of the
BatchNorm / ST Norm outputs for 20 random channels (Fig. 2(a)).

Choices where the paper is silent: EDS is computed per sample (one mean and one
standard deviation per image pair) and the standard deviation is the population
one (divide by the number of positions), so a 1×1 map gives 0, not NaN.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from robustbook.attacks._core import attack_mode

__all__ = ["bn_channel_means", "capture", "eds"]


def _check_feats(t: torch.Tensor, name: str) -> None:
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {type(t).__name__}")
    if t.dim() < 2:
        raise ValueError(f"{name} must have shape (N, C, ...) (e.g. (N, C, H, W)), got {tuple(t.shape)}")


def eds(clean_feats: torch.Tensor, adv_feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean Distance Statistics between clean and adversarial features.

    For features ``(N, C, H, W)`` the distance at each position is
    ``d[n, h, w] = ‖adv[n, :, h, w] − clean[n, :, h, w]‖₂`` (over channels); EDS is its
    mean and (population) standard deviation over the positions of each sample.
    Any number of trailing position axes works (``(N, C)`` has one position).

    Returns:
        ``(mean, std)``, each of shape ``(N,)``, detached.
    """
    _check_feats(clean_feats, "clean_feats")
    _check_feats(adv_feats, "adv_feats")
    if clean_feats.shape != adv_feats.shape:
        raise ValueError(f"clean_feats and adv_feats must have the same shape, got "
                         f"{tuple(clean_feats.shape)} and {tuple(adv_feats.shape)}")
    d = (adv_feats.detach() - clean_feats.detach()).norm(p=2, dim=1).flatten(1)  # (N, positions)
    return d.mean(dim=1), d.std(dim=1, correction=0)


def bn_channel_means(feats: torch.Tensor, channels: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """Per-channel means over the batch and positions of the chosen channels (Fig. 2(a)).

    Args:
        feats: ``(N, C, ...)`` features, e.g. a BatchNorm or ST Norm output captured
            with :func:`capture`.
        channels: channel indices in ``[0, C)`` (e.g. 20 drawn at random).

    Returns:
        ``(len(channels),)`` means, detached, in the order given.
    """
    _check_feats(feats, "feats")
    idx = torch.as_tensor(channels, dtype=torch.long, device=feats.device).reshape(-1)
    c = feats.shape[1]
    if idx.numel() and (idx.min() < 0 or idx.max() >= c):
        raise ValueError(f"channels must be indices in [0, {c}), got {idx.tolist()}")
    sel = feats.detach().index_select(1, idx)
    return sel.transpose(0, 1).reshape(idx.numel(), -1).mean(dim=1)


def capture(model: nn.Module, module: nn.Module, x: torch.Tensor, *, eval_mode: bool = True,
            grad: bool = False) -> torch.Tensor:
    """Run ``model(x)`` and return what ``module`` (a submodule of it) output, via a forward hook.

    Args:
        model: the whole network.
        module: the submodule to read, e.g. ``model.trunk.layer3`` or an STNorm's ``.bn``.
        x: the input batch.
        eval_mode: run in eval mode (BatchNorm running statistics, no dropout);
            every submodule's mode is restored afterwards.
        grad: keep the autograd graph (default: run under ``torch.no_grad`` and return
            a detached tensor).

    The output is cloned inside the hook, so later in-place operations (torchvision's
    ``ReLU(inplace=True)`` after each BatchNorm) do not alter it. The hook is removed
    afterwards, even on error. Raises ``ValueError`` if
    ``module`` did not run exactly once (it is not on the forward path, or it is
    reused — capture a module that runs once instead).
    """
    if not isinstance(module, nn.Module) or not any(m is module for m in model.modules()):
        raise ValueError("module must be a submodule of model")
    outs: list = []

    def hook(_mod: nn.Module, _inp: tuple, out) -> None:
        # clone: torchvision blocks apply ReLU(inplace=True) to BatchNorm outputs afterwards
        outs.append(out.clone() if isinstance(out, torch.Tensor) else out)

    handle = module.register_forward_hook(hook)
    try:
        with attack_mode(model, eval_mode), torch.set_grad_enabled(grad):
            model(x)
    finally:
        handle.remove()
    if len(outs) != 1:
        raise ValueError(f"module ran {len(outs)} times in one forward pass; capture a module that runs once")
    out = outs[0]
    return out if grad or not isinstance(out, torch.Tensor) else out.detach()
