"""The per-epoch records of a fit."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["History"]


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
