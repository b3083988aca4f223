"""Switch a model between train and eval mode and put every submodule back as it was.

``model.train(was_training)`` is not a restore: it sets *every* submodule to
the outer module's flag, so a submodule that was deliberately left in eval mode
(a frozen BatchNorm, a pretrained feature extractor) silently starts updating
its running statistics again after the first prediction. :func:`preserved_modes`
records each submodule's own ``.training`` flag and restores exactly those
flags, whatever happens in between. Every place in the library that changes
modes goes through it (prediction, the training loop, attacks, metrics).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from torch import nn

__all__ = ["preserved_modes"]


@contextlib.contextmanager
def preserved_modes(model: Any, training: bool | None = None) -> Iterator[None]:
    """Record every submodule's mode, optionally set the whole model's, restore each one's on exit.

    Args:
        model: an :class:`torch.nn.Module`; any other callable (a plain
            function used as a model) has no modes and is left alone.
        training: ``False`` puts the whole model in eval mode, ``True`` in
            train mode, ``None`` changes nothing (the block may switch modes
            itself; they are restored all the same).

    On exit, normally or by an exception, each submodule gets back its own
    ``.training`` flag, so a model in train mode with one BatchNorm frozen in
    eval mode comes back exactly so.
    """
    if training is not None and not isinstance(training, bool):
        raise TypeError(f"training must be True, False or None, got {training!r}")
    if not isinstance(model, nn.Module):
        yield
        return
    modes = [(m, m.training) for m in model.modules()]
    if training is not None:
        model.train(training)
    try:
        yield
    finally:
        for m, flag in modes:
            m.training = flag
