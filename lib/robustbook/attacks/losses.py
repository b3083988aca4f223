"""Losses that an attack *increases* (the inner maximisation of the min-max framing).

Every function here has the signature ``loss(output, y) -> per-sample tensor``.
An attack sums the per-sample values, so one sample's step does not depend on
the batch size. Any user function with the same signature (returning a scalar
or a per-sample tensor) works too: that is how the book attacks regression
models, multi-head models and a defence's own training loss.

For quality models the output is a score, shape ``(N,)`` or ``(N, 1)``:

* :func:`mse_away` pushes the score away from the label (the model's own
  training loss; the default for float targets),
* :func:`score_up` / :func:`score_down` raise or lower the score whatever the label,
* :func:`toward` pulls the score to a chosen target (e.g. the opposite end of
  the scale, which inverts the ranking: see chapter 0).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _score(output: torch.Tensor) -> torch.Tensor:
    if output.dim() == 2 and output.shape[1] == 1:
        return output[:, 0]
    if output.dim() != 1:
        raise ValueError(f"a quality score must have shape (N,) or (N, 1), got {tuple(output.shape)}")
    return output


def cross_entropy(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy of logits ``output`` (N, K) and class labels ``y`` (N,)."""
    return F.cross_entropy(output, y, reduction="none")


def margin(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Carlini–Wagner margin: best wrong logit minus the true logit (positive = misclassified)."""
    true = output.gather(1, y[:, None])[:, 0]
    other = output.clone()
    other.scatter_(1, y[:, None], float("-inf"))
    return other.max(1).values - true


def dlr(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Difference of Logits Ratio, Croce & Hein (ICML 2020), eq. (6).

    ``DLR(z, y) = −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3)``, with ``z_π1 ≥ z_π2 ≥ z_π3`` the
    three largest logits (``+1e-12`` in the denominator, as the authors' code). It is
    the :func:`margin` divided by a spread of the logits, so it does not change when
    the logits are shifted or rescaled: gradient masking by large logits
    (e.g. a temperature) does not hide a weak model from it. Positive = misclassified.
    Needs at least 3 classes.
    """
    if output.dim() != 2 or output.shape[1] < 3:
        raise ValueError(f"dlr needs logits of shape (N, K) with K >= 3 classes, got {tuple(output.shape)}")
    top = output.topk(3, dim=1).values
    return margin(output, y) / (top[:, 0] - top[:, 2] + 1e-12)


def mse_away(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared distance between the predicted score and the label: moves the score away from it."""
    return (_score(output) - y.to(output.dtype)) ** 2


def score_up(output: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """The score itself: an attack raises it (makes an image look better)."""
    return _score(output)


def score_down(output: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Minus the score: an attack lowers it."""
    return -_score(output)


def toward(target: torch.Tensor | float) -> Loss:
    """A loss pulling the score toward ``target`` (a number or a per-sample tensor).

    ``toward(lo + hi - y)`` with the score range ``[lo, hi]`` sends every image to
    the opposite end of the scale: the ranking attack used in chapter 0.
    """

    def loss(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(target, dtype=output.dtype, device=output.device)
        return -(_score(output) - t) ** 2

    loss.__name__ = f"toward({float(target):g})" if isinstance(target, (int, float)) else "toward"
    return loss


def invert_ranking(low: float, high: float) -> Loss:
    """Pull each score to the mirror image of its label, ``low + high - y``."""

    def loss(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -(_score(output) - (low + high - y.to(output.dtype))) ** 2

    loss.__name__ = f"invert_ranking({low:g}, {high:g})"
    return loss


def default_loss(y: torch.Tensor) -> Loss:
    """Cross-entropy for integer class labels, :func:`mse_away` for float targets."""
    if y.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        return cross_entropy
    if y.is_floating_point():
        return mse_away
    raise TypeError(f"cannot choose a default loss for targets of dtype {y.dtype}; pass loss=")
