"""robustbook.modes: every caller that switches train/eval puts each submodule back in its own mode.

The model of these tests is in train mode except one BatchNorm deliberately
frozen in eval mode; ``model.train(was_training)`` would unfreeze it.
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.functional import cross_entropy
from torch.utils.data import DataLoader, TensorDataset

from robustbook.attacks import fgsm
from robustbook.evaluate import predict
from robustbook.metrics import accuracy_on_correct, robust_accuracy
from robustbook.modes import preserved_modes
from robustbook.train import run_epoch


class _Net(nn.Module):
    """Conv, BatchNorm, dropout and a linear head: train and eval mode compute different outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2),
                                 nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


@pytest.fixture
def mixed() -> tuple[nn.Module, list[list[bool]]]:
    """A model in train mode with its BatchNorm frozen in eval mode; records the modes seen by each forward."""
    torch.manual_seed(0)
    model = _Net().train()
    model.net[1].eval()
    seen: list[list[bool]] = []
    model.register_forward_pre_hook(lambda m, args: seen.append(_modes(m)))
    assert model.training and not model.net[1].training
    return model, seen


def _data(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, 16, 16, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_preserved_modes_sets_and_restores_each_flag(mixed):
    model, _ = mixed
    before = _modes(model)
    for training in (False, True):
        with preserved_modes(model, training=training):
            assert _modes(model) == [training] * len(before)
        assert _modes(model) == before
    with preserved_modes(model):  # training=None: changes nothing itself, restores all the same
        assert _modes(model) == before
        model.eval()
    assert _modes(model) == before


def test_preserved_modes_restores_after_an_exception(mixed):
    model, _ = mixed
    before = _modes(model)
    with pytest.raises(RuntimeError, match="boom"), preserved_modes(model, training=False):
        raise RuntimeError("boom")
    assert _modes(model) == before


def test_preserved_modes_accepts_plain_callables_and_rejects_bad_flags():
    with preserved_modes(torch.sigmoid, training=False):
        pass
    with pytest.raises(TypeError, match="training must be True, False or None"):
        with preserved_modes(nn.Linear(1, 1), training="eval"):  # type: ignore[arg-type]
            pass


def test_predict_restores_each_submodule_mode(mixed):
    """Fails with the former ``model.train(was_training)``, which unfroze the BatchNorm."""
    model, seen = mixed
    before = _modes(model)
    x, _ = _data()
    predict(model, x, batch_size=4)
    assert seen and all(not any(s) for s in seen)  # every forward ran in eval mode
    assert _modes(model) == before


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_run_epoch_restores_each_submodule_mode(mixed, training):
    model, seen = mixed
    before = _modes(model)
    x, y = _data()
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.01) if training else None
    run_epoch(model, loader, cross_entropy, opt=opt, progress=False)
    assert len(seen) == 2 and all(s == [training] * len(before) for s in seen)
    assert _modes(model) == before


def test_run_epoch_with_an_attack_restores_each_submodule_mode(mixed):
    model, _ = mixed
    before = _modes(model)
    x, y = _data()
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    run_epoch(model, loader, cross_entropy, opt=torch.optim.SGD(model.parameters(), lr=0.01),
              attack=lambda m, xb, yb: fgsm(m, xb, yb, eps=2 / 255), progress=False)
    assert _modes(model) == before


@pytest.mark.parametrize("eval_mode", [True, False])
def test_fgsm_restores_each_submodule_mode(mixed, eval_mode):
    model, seen = mixed
    before = _modes(model)
    x, y = _data()
    fgsm(model, x, y, eps=2 / 255, eval_mode=eval_mode)
    assert seen == [[False] * len(before)] if eval_mode else seen == [before]
    assert _modes(model) == before


def test_robust_accuracy_and_accuracy_on_correct_restore_each_submodule_mode(mixed):
    model, seen = mixed
    before = _modes(model)
    x, _ = _data()
    y = predict(copy.deepcopy(model), x).argmax(1)  # every sample correct, so the attack runs on all of them
    seen.clear()
    attack = lambda m, xb, yb: fgsm(m, xb, yb, eps=2 / 255)  # noqa: E731
    robust_accuracy(model, x, y, {"fgsm": attack}, batch_size=4)
    assert _modes(model) == before
    accuracy_on_correct(model, x, y, attack, batch_size=4)
    assert _modes(model) == before
    assert seen and all(not any(s) for s in seen)
