"""Stochastic Local Winner-Takes-All (LWTA) activation (Panousis et al., AISTATS 2021).

"Local Competition and Stochasticity for Adversarial Robustness in Deep Learning",
the LWTA baseline of source 000 (ST Norm), Tables I and IV. Channels are grouped
into consecutive blocks of ``U`` competing units (channel ``c`` belongs to block
``c // U``). In each block, at each position, one winner is *sampled* from the
softmax of the block's activations; the winner passes its activation, the losers
output zero::

    ξ ~ Categorical(softmax(h_block)),      y = h ⊙ ξ

Training uses the Gumbel-softmax (Concrete) relaxation of that categorical with
temperature τ (default 0.67, Panousis et al.), so ``ξ`` is a soft mask and
gradients flow through the sampling. Panousis et al. keep sampling at test time
(a hard, one-hot draw), which is why attacks on LWTA need EOT
(:class:`robustbook.attacks.EOT`); pass ``deterministic=True`` to use the argmax
winner in eval mode instead.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["LWTA", "lwta_mask", "swap_relu_for_lwta"]


def _gumbel(shape: torch.Size, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard Gumbel noise ``−log(−log U)``, U ~ Uniform(0, 1), clamped away from 0 and 1."""
    u = torch.rand(shape, generator=generator, device="cpu" if generator is not None else like.device,
                   dtype=like.dtype if like.is_floating_point() else torch.float32).to(like.device)
    tiny = torch.finfo(u.dtype).tiny
    return -torch.log(-torch.log(u.clamp(tiny, 1.0 - 1e-7)))


def _blocks(x: torch.Tensor, U: int) -> torch.Tensor:
    if x.dim() < 2:
        raise ValueError(f"LWTA expects (N, C, ...) input, got shape {tuple(x.shape)}")
    if x.shape[1] % U:
        raise ValueError(f"the channel count {x.shape[1]} must be divisible by the block size U={U}")
    return x.reshape(x.shape[0], x.shape[1] // U, U, *x.shape[2:])


def lwta_mask(x: torch.Tensor, U: int = 2, *, tau: float = 0.67, hard: bool = True,
              deterministic: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """The winner mask ``ξ`` of shape ``x.shape`` (blocks of ``U`` consecutive channels).

    Args:
        x: activations ``(N, C, ...)``; the softmax logits of each block are the
            activations themselves.
        U: competitors per block (``C % U == 0``).
        tau: Gumbel-softmax temperature (> 0).
        hard: one-hot winners. With sampling, the forward value is the one-hot
            Gumbel-max draw and the backward pass uses the relaxed softmax
            (straight-through Gumbel-softmax); ``hard=False`` returns the relaxed mask.
        deterministic: the winner is ``argmax`` of the block (no noise; one-hot,
            constant, so no gradient flows through the mask).
        generator: optional CPU generator for the Gumbel noise.
    """
    if isinstance(U, bool) or not isinstance(U, int) or U < 1:
        raise ValueError(f"U must be a positive int, got {U!r}")
    if not (isinstance(tau, (int, float)) and tau > 0):
        raise ValueError(f"tau must be a positive number, got {tau!r}")
    logits = _blocks(x, U)
    if deterministic:
        idx = logits.argmax(dim=2, keepdim=True)
        mask = torch.zeros_like(logits).scatter_(2, idx, 1.0)
        return mask.reshape(x.shape)
    soft = torch.softmax((logits + _gumbel(logits.shape, logits, generator)) / tau, dim=2)
    if hard:
        idx = soft.argmax(dim=2, keepdim=True)
        one_hot = torch.zeros_like(soft).scatter_(2, idx, 1.0)
        soft = one_hot + (soft - soft.detach())  # exactly one-hot forward, relaxed backward
    return soft.reshape(x.shape)


class LWTA(nn.Module):
    """Stochastic LWTA activation: ``y = x ⊙ ξ``, one winner per block of ``U`` channels.

    Args:
        U: competitors per block (default 2, as Panousis et al.); ``C`` must be divisible by it.
        tau: Gumbel-softmax temperature (default 0.67).
        hard_train: in training mode, use straight-through one-hot samples instead of
            the relaxed mask (default ``False``: the relaxed Concrete mask, as Panousis et al.).
        deterministic: in eval mode, take the argmax winner (no sampling). Default
            ``False``: eval mode also samples (a hard one-hot draw), like the paper,
            so the model's output is random at test time.

    Gradients: in training the relaxed mask is differentiable; the hard eval-mode draw
    is one-hot forward and uses the relaxed softmax backward (straight-through
    Gumbel-softmax), so white-box attacks see a gradient through the competition;
    the ``deterministic`` argmax mask is constant (gradient through ``x`` only).

    The module holds no state, so one instance can be used at several places of a
    network (torchvision's blocks call their ``relu`` twice or three times).
    """

    def __init__(self, U: int = 2, *, tau: float = 0.67, hard_train: bool = False,
                 deterministic: bool = False) -> None:
        super().__init__()
        if isinstance(U, bool) or not isinstance(U, int) or U < 1:
            raise ValueError(f"U must be a positive int, got {U!r}")
        if not (isinstance(tau, (int, float)) and tau > 0):
            raise ValueError(f"tau must be a positive number, got {tau!r}")
        self.U, self.tau, self.hard_train, self.deterministic = U, float(tau), bool(hard_train), bool(deterministic)

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """The winner mask this module would use on ``x`` in its current mode (a fresh draw)."""
        if self.training:
            return lwta_mask(x, self.U, tau=self.tau, hard=self.hard_train)
        return lwta_mask(x, self.U, tau=self.tau, hard=True, deterministic=self.deterministic)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask(x)

    def extra_repr(self) -> str:
        return f"U={self.U}, tau={self.tau}, hard_train={self.hard_train}, deterministic={self.deterministic}"


def swap_relu_for_lwta(model: nn.Module, U: int = 2, **kw: Any) -> nn.Module:
    """Replace every :class:`torch.nn.ReLU` module of ``model`` by :class:`LWTA`, in place.

    Every attribute that refers to a ReLU is rewritten, including modules that are
    registered under several names; one ReLU object becomes one LWTA object, so a
    module that was shared stays shared. torchvision's BasicBlock/Bottleneck call
    their single ``relu`` after each BatchNorm and after the residual sum: every one
    of those calls becomes an LWTA (all see ``planes`` or ``4·planes`` channels, so
    ``U`` must divide them). ``torch.nn.functional.relu`` calls inside ``forward``
    methods cannot be replaced. ``**kw`` goes to :class:`LWTA` (``tau``, ``hard_train``,
    ``deterministic``).

    Returns:
        ``model`` itself, modified.
    """
    replacement: dict[int, LWTA] = {}
    for _, parent in list(model.named_modules(remove_duplicate=False)):
        for name, child in list(parent._modules.items()):  # named_children() skips repeated references
            if isinstance(child, nn.ReLU):
                new = replacement.setdefault(id(child), LWTA(U, **kw))
                new.train(child.training)
                setattr(parent, name, new)
    return model
