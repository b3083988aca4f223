"""The adaptive loss ℓ_β of CIFS/CAS-modified networks (source 003, eq. 4.3; Bai et al. 2021).

    ℓ_β(x, y) = 1/(1+β) · ℓ(p, y) + β/((1+β)|I|) · Σ_{l∈I} ℓ(p^l, y)

``p`` is the final prediction and ``p^l`` the raw predictions of the channel modules at the
positions ``I``. It is the *training* loss (β = |I| = 2 in the thesis) and the loss of the
*adaptive attack* of section 4.4.1, whose β_atk the attacker picks from {0, 0.1, 1, 2, 10, 100, ∞}:
β = 0 is the plain loss of the final output, β = ∞ keeps only the second term (and, restricted to
one position, attacks that module's raw prediction alone: "∞-1", "∞-2" of Table 4.8).
``base`` may be the cross-entropy (training, FGSM, PGD) or the C&W margin (the C&W attack).

Introduced in the CIFS chapter.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from robustbook.attacks.losses import cross_entropy

__all__ = ["adaptive_loss", "AdaptiveLoss"]

PerSample = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_beta(beta: float) -> float:
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or math.isnan(beta) or beta < 0:
        raise ValueError(f"beta must be a number >= 0 (math.inf: raw predictions only), got {beta!r}")
    return float(beta)


def adaptive_loss(final: torch.Tensor, probes: Sequence[torch.Tensor], y: torch.Tensor, beta: float,
                  base: PerSample = cross_entropy) -> torch.Tensor:
    """Per-sample ℓ_β of eq. (4.3) from the final logits and the raw predictions ``probes``.

    Args:
        final: final logits (N, K).
        probes: raw logits of the channel modules (each (N, K)); may be empty only for β = 0.
        y: labels (N,).
        beta: β ≥ 0; ``math.inf`` keeps only the raw-prediction term.
        base: per-sample loss ``base(logits, y) -> (N,)`` (cross-entropy, or the C&W margin).
    """
    beta = _check_beta(beta)
    probes = list(probes)
    if beta > 0 and not probes:
        raise ValueError(f"beta = {beta:g} weights raw predictions, but the model recorded none "
                         "(is it a network with CIFS or CAS modules, and did it run forward?)")
    if beta == 0:
        return base(final, y)
    aux = torch.stack([base(p, y) for p in probes]).mean(0)
    if math.isinf(beta):
        return aux
    return base(final, y) / (1 + beta) + beta / (1 + beta) * aux


class AdaptiveLoss:
    """ℓ_β as a loss ``loss(output, y)`` for attacks and training, reading ``model.probe_logits``.

    The network records its raw predictions in ``model.probe_logits`` at every forward pass; this
    loss combines them with the output it is given, so it must be called right after
    ``output = model(x)`` (which is how attacks and :func:`robustbook.train.run_epoch` call a loss).

    Args:
        model: a network with a ``probe_logits`` mapping (see :mod:`robustbook.models.resnet_cifar`).
        beta: β ≥ 0 or ``math.inf``.
        positions: the raw predictions to use (default all, i.e. I); e.g. ``("P1",)`` for "∞-P1".
        base: per-sample base loss (cross-entropy or the C&W margin).
        reduction: ``"none"`` (per sample: attacks) or ``"mean"`` (training).
    """

    def __init__(self, model: nn.Module, beta: float, *, positions: Sequence[str] | None = None,
                 base: PerSample = cross_entropy, reduction: str = "none") -> None:
        if not hasattr(model, "probe_logits"):
            raise TypeError(f"{type(model).__name__} records no raw predictions (no `probe_logits`); "
                            "ℓ_β needs a network with CIFS or CAS modules")
        if reduction not in ("none", "mean"):
            raise ValueError(f"reduction must be 'none' or 'mean', got {reduction!r}")
        self.model, self.beta, self.base, self.reduction = model, _check_beta(beta), base, reduction
        self.positions = None if positions is None else tuple(positions)
        b = "∞" if math.isinf(self.beta) else f"{self.beta:g}"
        where = "" if self.positions is None else "-" + "+".join(self.positions)
        self.__name__ = f"l_beta(β={b}{where}, {getattr(base, '__name__', 'loss')})"

    def __repr__(self) -> str:
        return self.__name__

    def _probes(self) -> list[torch.Tensor]:
        rec: Mapping[str, torch.Tensor] = self.model.probe_logits
        if self.positions is None:
            return list(rec.values())
        missing = [p for p in self.positions if p not in rec]
        if missing:
            raise ValueError(f"the model recorded raw predictions at {list(rec)}, not at {missing}")
        return [rec[p] for p in self.positions]

    def __call__(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        probes = self._probes() if self.beta > 0 else []
        loss = adaptive_loss(output, probes, y, self.beta, self.base)
        return loss.mean() if self.reduction == "mean" else loss
