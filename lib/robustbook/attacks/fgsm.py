"""Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy 2015)."""
from __future__ import annotations

from collections.abc import Callable

import torch

from robustbook.attacks._core import attack_mode, check_inputs, input_gradient, resolve_loss
from robustbook.attacks.losses import Loss


def fgsm(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, eps: float, *,
         loss: Loss | None = None, eval_mode: bool = True) -> torch.Tensor:
    """One signed-gradient step: ``x_adv = clip_[0,1](x + ε · sign ∇_x ℓ(h(x), y))``.

    This is eq. (3) of source 000 (ST Norm) and the one-step L∞ attack of every chapter.

    Args:
        model: a module or callable mapping images ``(N, C, H, W)`` in [0, 1] to outputs.
            Input normalisation belongs inside it. For a full-reference model
            ``model(ref, dist)``, attack ``dist`` with
            :class:`robustbook.attacks.FixedReference` (``FixedReference(model, ref)``).
        x: clean images in [0, 1].
        y: targets: class labels (int64) or scores (float).
        eps: L∞ budget in pixel units (e.g. ``4/255``).
        loss: ``loss(output, y)``, the quantity increased (per-sample or scalar).
            Default: cross-entropy for class labels, squared error for scores.
        eval_mode: run the model in eval mode during the attack (torchattacks' default).
            The model's mode is restored afterwards either way.

    Returns:
        Adversarial images, detached, same shape and device as ``x``, in [0, 1],
        with ``‖x_adv − x‖∞ ≤ eps``.
    """
    check_inputs(x, eps)
    loss_fn = resolve_loss(loss, y)
    with attack_mode(model, eval_mode):
        grad = input_gradient(model, x, y, loss_fn)
    return torch.clamp(x.detach() + eps * grad.sign(), 0.0, 1.0).detach()
