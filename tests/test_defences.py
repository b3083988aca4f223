"""The defence registry (robustbook.defences): every defence builds, runs forward/backward and trains one step."""
import pytest
import torch

from robustbook import defences
from robustbook.models import LWTA, FeatureDenoise, RobustBlock, STNorm, resnet_iqa


def backbone():
    return resnet_iqa("tiny", width=8, stem_stride=1)


SETUP = defences.TrainSetup(epochs=1, batch_size=8, steps=1, n_anchors=4, topk=2)
EXPECT = {"stnorm": STNorm, "lwta": LWTA, "denoise": FeatureDenoise, "robustblock": RobustBlock}


def test_registry_lists_every_iqa_defence_of_the_book():
    assert set(defences.names()) == {"plain", "at", "stnorm", "lwta", "denoise", "robustblock", "aat", "r", "at_label"}


@pytest.mark.parametrize("name", defences.names())
def test_build_forward_backward_and_one_training_epoch(name):
    torch.manual_seed(0)
    model = defences.build(name, backbone, input_size=16, setup=SETUP)
    kinds = {type(m) for m in model.modules()}
    for other, cls in EXPECT.items():
        assert (cls in kinds) == (other == name), f"{name}: {cls.__name__} present={cls in kinds}"
    x, y = torch.rand(16, 3, 16, 16, requires_grad=True), torch.rand(16)
    out = model(x)
    assert out.shape == (16,) and torch.isfinite(out).all()
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    before = [p.detach().clone() for p in model.parameters()]
    res = defences.train(name, model, x.detach(), y, SETUP)
    assert len(res["history"]["epochs"]) == 1 and res["cpu_s"] > 0
    # forward passes per training image: one epoch of plain training is 1; a training attack adds its steps (AAT's
    # on the images that are not anchors)
    training = defences.DEFENCES[name].training
    if training == "plain":
        assert res["passes"] == 1.0, res["passes"]
    else:
        share = 1 - SETUP.n_anchors / SETUP.batch_size if training == "aat" else 1
        assert res["passes"] >= 1 + share * SETUP.steps, res["passes"]
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)), "no weight changed"


def test_adaptive_options_know_the_defence():
    assert defences.DEFENCES["lwta"].adaptive(eot=5) == {"eot": 5}
    assert "bpda" in defences.DEFENCES["stnorm"].adaptive(eot=5)
    assert defences.DEFENCES["plain"].adaptive(eot=5) == {}


def test_bad_names_and_models_are_clear_errors():
    with pytest.raises(KeyError, match="the registry has"):
        defences.build("nope", backbone, input_size=16)
    with pytest.raises(ValueError, match="RobustBlock"):
        defences.build("robustblock", lambda: torch.nn.Linear(2, 2), input_size=16)
    with pytest.raises(ValueError, match="training must be one of"):
        defences.Defence("x", "x", "x", training="magic")
