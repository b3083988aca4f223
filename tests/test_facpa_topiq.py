"""FACPA (a trained perturbation generator) and the TOPIQ-FR-structured baseline of the BiRQA chapter."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from robustbook.attacks import FACPA, FixedReference, PerturbationGenerator, train_facpa
from robustbook.models import TOPIQLike


class Brightness(nn.Module):
    """A full-reference 'metric' whose score is the distorted image's mean: the best attack adds +ε everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        return self.w * dist.mean((1, 2, 3))


def _pairs(n: int = 24, side: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(n, 3, side, side, generator=g) * 0.8 + 0.1
    return ref, (ref + 0.05 * torch.randn(n, 3, side, side, generator=g)).clamp(0.05, 0.95)


def test_facpa_learns_to_raise_the_score_within_the_budget() -> None:
    ref, dist = _pairs()
    model, eps = Brightness(), 8 / 255
    untrained = FACPA(PerturbationGenerator(4), eps)
    trained = FACPA(train_facpa(model, dist, eps, ref=ref, epochs=30, batch_size=8, lr=1e-2, width=4,
                                generator=torch.Generator().manual_seed(1)), eps)
    wrapped = FixedReference(model, ref)
    gains = {}
    for name, atk in (("untrained", untrained), ("trained", trained)):
        adv = atk(wrapped, dist, torch.zeros(len(dist)))
        assert (adv - dist).abs().max() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
        with torch.no_grad():
            gains[name] = float((wrapped(adv) - wrapped(dist)).mean())
    assert gains["trained"] > 0.8 * eps, f"the trained generator raises the mean by {gains['trained']:.4f} < 0.8 ε"
    assert gains["trained"] > gains["untrained"] + 0.3 * eps
    assert model.w.requires_grad and model.w.grad is None  # frozen while the generator trained, restored after


def test_facpa_attack_is_configured_and_validated() -> None:
    atk = FACPA(PerturbationGenerator(2), 4 / 255)
    assert atk.name == "FACPA" and not atk.uses_gradient and atk.eps == pytest.approx(4 / 255)
    assert "FACPA" in str(atk) and atk.describe()["norm"] == "linf"
    with pytest.raises(TypeError, match="PerturbationGenerator"):
        FACPA("not a net", 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eps"):
        FACPA(PerturbationGenerator(2), -1.0)
    with pytest.raises(ValueError, match="shape of x"):
        train_facpa(Brightness(), torch.rand(4, 3, 8, 8), 0.1, ref=torch.rand(3, 3, 8, 8))


@pytest.mark.parametrize("hw", [(16, 16), (37, 53)])
def test_topiq_like_scores_and_gradients_reach_every_level(hw: tuple[int, int]) -> None:
    torch.manual_seed(0)
    m = TOPIQLike(width=4, dim=8, tokens=4)
    ref = torch.rand(3, 3, *hw)
    dist = (ref + 0.1 * torch.randn_like(ref)).clamp(0, 1).requires_grad_(True)
    out = m(ref, dist)
    assert out.shape == (3,)
    out.sum().backward()
    assert dist.grad is not None and dist.grad.abs().sum() > 0
    for i, (cross, red) in enumerate(zip(m.cross, m.reduce, strict=False)):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in cross.parameters()), f"cross-attn {i}"
        assert red.conv.weight.grad.abs().sum() > 0, f"gated conv {i}"
    assert torch.allclose(m(torch.stack([ref, dist.detach()], 1)), m(ref, dist.detach()))


def test_topiq_like_validates_widths() -> None:
    with pytest.raises(ValueError, match="width"):
        TOPIQLike(width=0)
