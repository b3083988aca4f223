"""The norm-in-norm loss of Li, Jiang & Jiang, "Norm-in-Norm Loss with Faster Convergence and Better
Performance for Image Quality Assessment", ACM MM 2020 (the "Linearity" IQA model).

Predictions ``ŝ`` and labels ``s`` of a batch are each centred and divided by their ``L_q`` norm,
``ŝ' = (ŝ − mean ŝ) / ‖ŝ − mean ŝ‖_q``; the loss is
``ℓ = ‖ŝ' − s'‖_p^p / c`` with ``c = (2^{max(1, 1/q)} · N^{max(0, 1/p − 1/q)})^p``,
optionally plus the same distance after the best linear rescaling ``ρ ŝ' − s'`` with ``ρ`` their
cosine similarity; ``alpha`` weighs the two. Defaults ``p = 1, q = 2, alpha = (1, 0)``:
the norm-in-norm term alone (our reading of the authors' default; ``alpha=(1, 1)`` adds the second term).
The loss only sees the batch's *linear* agreement: it fixes neither offset nor scale of the
scores, so a model trained with it predicts on its own scale (PLCC and SROCC are unaffected).
"""
from __future__ import annotations

import torch

__all__ = ["norm_in_norm_loss"]


def norm_in_norm_loss(pred: torch.Tensor, y: torch.Tensor, *, p: float = 1.0, q: float = 2.0,
                      alpha: tuple[float, float] = (1.0, 0.0), eps: float = 1e-8) -> torch.Tensor:
    """The batch's norm-in-norm loss (a 0-dim tensor); needs at least 2 samples."""
    pred = pred.reshape(-1)
    y = y.reshape(-1).to(pred.dtype)
    n = pred.numel()
    if n < 2 or y.numel() != n:
        raise ValueError(f"norm-in-norm needs matching batches of >= 2 scores, got {n} predictions and "
                         f"{y.numel()} labels")
    if p <= 0 or q <= 0 or sum(alpha) <= 0 or min(alpha) < 0:
        raise ValueError(f"p and q must be > 0 and alpha non-negative with a positive sum; got p={p}, q={q}, "
                         f"alpha={alpha}")
    sp = pred - pred.mean()
    sp = sp / (eps + torch.linalg.vector_norm(sp, ord=q))
    sy = y - y.mean()
    sy = sy / (eps + torch.linalg.vector_norm(sy, ord=q))
    scale = 2 ** max(1.0, 1.0 / q) * n ** max(0.0, 1.0 / p - 1.0 / q)
    loss = pred.new_zeros(())
    if alpha[0] > 0:
        loss = loss + alpha[0] * (torch.linalg.vector_norm(sp - sy, ord=p) / scale) ** p
    if alpha[1] > 0:
        rho = torch.dot(sp, sy) / (sp.norm() * sy.norm() + eps)
        loss = loss + alpha[1] * (torch.linalg.vector_norm(rho * sp - sy, ord=p) / scale) ** p
    return loss / (alpha[0] + alpha[1])
