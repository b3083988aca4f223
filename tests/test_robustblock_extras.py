"""RobustBlock chapter, second part: PLS pruning, TReS's ranking and consistency losses, the original
backbones and their user-provided weights."""
import numpy as np
import pytest
import torch
from torch import nn

from robustbook.losses.tres import FlipConsistency, hflip, relative_ranking_loss, symmetric_l1, tres_loss
from robustbook.models import (
    CayleyConv2d,
    RobustBlock,
    WeightsMismatchError,
    load_pretrained,
    nr_iqa_model,
    pls_filter_importance,
    prunable_convs,
    prune_filters,
)
from robustbook.models.nr_backbones import _SCNN, find_weights, load_backbone_weights, scnn_features
from robustbook.safeload import CorruptCheckpointError


# ---------------------------------------------------------------------------------------------- PLS pruning
def _block_model():
    torch.manual_seed(0)
    m = nr_iqa_model("linearity", (4, 8, 8, 8, 8, 16))
    m.backbone.insert(5, RobustBlock(8, 4, conv="cayley"))
    return m.eval()


@pytest.mark.parametrize("share", [0.05, 0.1, 0.2])
def test_pls_pruning_removes_exact_share_and_spares_cayley(share):
    m = _block_model()
    x = torch.rand(24, 3, 32, 32)
    cayley = {k: v.clone() for k, v in m.backbone.inserted[5].state_dict().items()}
    layers = prunable_convs(m.backbone)
    assert not any(isinstance(c, CayleyConv2d) for c in layers.values())
    imp = pls_filter_importance(m, x, layers=layers)
    assert set(imp) == set(layers) and all(v.shape == (layers[n].out_channels,) for n, v in imp.items())
    rep = prune_filters(m.backbone, share, importance=imp)
    total = sum(c.out_channels for c in layers.values())
    assert rep.total == total and rep.removed == round(share * total)
    zero = sum(int((c.weight.flatten(1).norm(dim=1) == 0).sum()) for c in layers.values())
    assert zero == round(share * total)
    after = m.backbone.inserted[5].state_dict()
    assert all(torch.equal(after[k], v) for k, v in cayley.items())  # the Cayley block is untouched
    # the PLS ranking, not the L2 one, chose them: the removed filters are the lowest-VIP ones
    flat = sorted((float(v), n, i) for n, vs in imp.items() for i, v in enumerate(vs))
    chosen = {(n, i) for _, n, i in flat[: rep.removed]}
    removed = {(n, i) for n, c in layers.items() for i in range(c.out_channels) if c.weight[i].norm() == 0}
    assert len(chosen & removed) >= rep.removed - 1  # ties / the keep-one-per-layer rule may swap one


def test_pls_vip_identity_and_relevant_filter_ranks_first():
    """Σ VIP² equals the number of (non-constant) features; the filter that drives the target ranks top."""
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 6, 1, bias=False)
    model = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 1))
    with torch.no_grad():
        conv.weight.copy_(torch.eye(6, 3)[:, :, None, None] + 0.01 * torch.randn(6, 3, 1, 1))
        conv.weight[3:] = torch.randn(3, 3, 1, 1)
    x = torch.rand(40, 3, 4, 4)
    target = x[:, 1].mean((1, 2)) * 5  # only channel 1 (filter 1's response) matters
    imp = pls_filter_importance(model, x, layers={"0": conv}, target=target, n_components=2)["0"]
    assert int(imp.argmax()) == 1
    np.testing.assert_allclose(float((imp ** 2).sum()), 6.0, rtol=1e-6)


def test_pls_errors():
    m = _block_model()
    with pytest.raises(ValueError, match="at least 3"):
        pls_filter_importance(m, torch.rand(2, 3, 32, 32))
    layers = prunable_convs(m.backbone)
    imp = {n: torch.ones(c.out_channels) for n, c in layers.items()}
    imp.pop(next(iter(imp)))
    with pytest.raises(ValueError, match="exactly the prunable layers"):
        prune_filters(m.backbone, 0.1, importance=imp)


# ---------------------------------------------------------------------------------------------- TReS losses
def _authors_ranking(pred, label):
    """The relative ranking loss as TReS's public training code writes it (nn.TripletMarginLoss, p=1)."""
    idx = torch.argsort(label)
    t1 = nn.TripletMarginLoss(margin=float(label[idx[-1]] - label[idx[1]]), p=1)
    t2 = nn.TripletMarginLoss(margin=float(label[idx[-2]] - label[idx[0]]), p=1)
    u = lambda i: pred[i].reshape(1, 1)  # noqa: E731
    return t1(u(idx[0]), u(idx[1]), u(idx[-1])) + t2(u(idx[-1]), u(idx[-2]), u(idx[0]))


@pytest.mark.parametrize("seed", range(6))
def test_relative_ranking_matches_the_authors_triplets(seed):
    g = torch.Generator().manual_seed(seed)
    n = 3 + seed  # the authors' margins are 0 (rejected by TripletMarginLoss) with two images
    pred, label = torch.randn(n, generator=g), torch.rand(n, generator=g)
    ours, theirs = relative_ranking_loss(pred, label), _authors_ranking(pred, label)
    torch.testing.assert_close(ours, theirs.reshape(()), atol=1e-5, rtol=1e-5)  # theirs adds eps=1e-6 to distances


def test_relative_ranking_hand_made():
    label = torch.tensor([0.0, 0.1, 0.9, 1.0])
    # ranked and spread: s_min near s_min', far from s_max -> both hinges inactive
    assert float(relative_ranking_loss(torch.tensor([0.0, 0.1, 0.9, 1.0]), label)) == pytest.approx(0.0, abs=1e-7)
    # all predictions equal: each hinge is its margin, (1.0 - 0.1) + (0.9 - 0.0)
    assert float(relative_ranking_loss(torch.zeros(4), label)) == pytest.approx(1.8, abs=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        relative_ranking_loss(torch.zeros(1), torch.zeros(1))


class _Toy(nn.Module):
    """A model with TReS's features() interface: conv map and pooled token-like features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 1)

    def features(self, x):
        f = torch.tanh(self.conv(x))
        t = f.flatten(2).transpose(1, 2)
        return self.fc(f.mean((2, 3)))[:, 0], [t, f]

    def forward(self, x):
        return self.features(x)[0]


def test_tres_loss_matches_direct_implementation_value_and_gradient():
    x, y = torch.rand(6, 3, 5, 5), torch.rand(6)
    model = _Toy()
    loss = tres_loss(FlipConsistency(model)(x), y)
    g_ours = torch.autograd.grad(loss, list(model.parameters()))
    # direct: the authors' training step (two calls of a net that itself compares x with its flip)
    l1 = nn.L1Loss()

    def net(z):
        s, (t, f) = model.features(z)
        _, (tf, ff) = model.features(hflip(z))
        return s, l1(t, tf.detach()) + l1(f, ff.detach())

    p, closs = net(x)
    p2, closs2 = net(hflip(x))
    tr, ftr = _authors_ranking(p, y), _authors_ranking(p2, y)
    direct = (l1(p, y) + closs + l1(p2, y) + closs2 + 0.5 * (l1(tr, ftr.detach()) + l1(ftr, tr.detach()))
              + 0.05 * (tr + ftr))
    g_direct = torch.autograd.grad(direct.reshape(()), list(model.parameters()))
    torch.testing.assert_close(loss, direct.reshape(()), atol=2e-5, rtol=1e-5)
    for a, b in zip(g_ours, g_direct, strict=True):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)


def test_symmetric_l1_and_view_errors():
    a, b = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    v = symmetric_l1(a, b)
    assert float(v.detach()) == pytest.approx(2 * float((a - b).abs().mean().detach()), rel=1e-6)
    torch.testing.assert_close(symmetric_l1(a, b, per_sample=True).mean(), v)
    with pytest.raises(TypeError, match="features"):
        FlipConsistency(nn.Linear(2, 1))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        tres_loss(torch.zeros(4), torch.zeros(4))


def test_tres_model_features_are_its_forward():
    m = nr_iqa_model("tres").eval()
    x = torch.rand(3, 3, 32, 32)
    s, (enc, f) = m.features(x)
    torch.testing.assert_close(s, m(x))
    assert enc.shape[0] == 3 and f.shape[:2] == (3, 64)


# ---------------------------------------------------------------------------------------------- original backbones
def test_original_backbones_have_six_stages_and_position_5_between_the_last_two_blocks():
    lin = nr_iqa_model("linearity", backbone="original")
    db = nr_iqa_model("dbcnn", backbone="original")
    assert lin.backbone.widths == (64, 256, 512, 1024, 1024, 2048)
    assert db.backbone.widths == (64, 128, 256, 512, 512, 512)
    assert [db.backbone.out_size(p, 64) for p in range(1, 7)] == [64, 32, 16, 8, 8, 4]
    assert [lin.backbone.out_size(p, 64) for p in range(1, 7)] == [16, 16, 8, 4, 4, 2]
    y = db.eval()(torch.rand(2, 3, 64, 64))
    assert y.shape == (2,)
    with pytest.raises(ValueError, match="backbone must be one of"):
        nr_iqa_model("tres", backbone="vit")


def test_scnn_weights_tiny_fake_state_dict(tmp_path):
    src = _SCNN()
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    state = {"module." + k: v for k, v in src.state_dict().items()}  # DBCNN saves through DataParallel
    state["module.classifier.weight"] = torch.zeros(39, 256)  # ignored
    torch.save(state, tmp_path / "scnn.pkl")
    feats = scnn_features(tmp_path / "scnn.pkl")
    torch.testing.assert_close(feats[0].weight, src.features[0].weight)
    # through load_pretrained, into DBCNN's S-CNN stream (its VGG file is required)
    db = nr_iqa_model("dbcnn", backbone="original")
    with pytest.raises(FileNotFoundError, match="vgg16"):
        load_pretrained(db, tmp_path)
    # mismatches: a missing tensor, a wrong shape, something that is not a state dict
    bad = dict(state)
    bad.pop("module.features.0.weight")
    torch.save(bad, tmp_path / "missing.pkl")
    with pytest.raises(WeightsMismatchError, match="1 missing"):
        load_backbone_weights(_SCNN(), tmp_path / "missing.pkl", "scnn")
    bad = dict(state, **{"module.features.0.weight": torch.zeros(48, 3, 5, 5)})
    torch.save(bad, tmp_path / "shape.pkl")
    with pytest.raises(WeightsMismatchError, match="another shape"):
        load_backbone_weights(_SCNN(), tmp_path / "shape.pkl", "scnn")
    torch.save([1, 2], tmp_path / "list.pkl")
    with pytest.raises(WeightsMismatchError, match="state dict"):
        load_backbone_weights(_SCNN(), tmp_path / "list.pkl", "scnn")
    (tmp_path / "junk.pkl").write_text("<html>404</html>")
    with pytest.raises(CorruptCheckpointError):
        load_backbone_weights(_SCNN(), tmp_path / "junk.pkl", "scnn")
    with pytest.raises(FileNotFoundError, match="cannot be downloaded"):
        load_backbone_weights(_SCNN(), tmp_path / "absent.pkl", "scnn")


def test_resnet50_weights_load_into_the_staged_backbone(tmp_path):
    from torchvision.models import resnet50

    with pytest.raises(FileNotFoundError, match="folder"):
        find_weights(tmp_path / "nowhere", "resnet50")
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / "resnet50.pth")  # tiny and incomplete
    lin = nr_iqa_model("linearity", backbone="original")
    with pytest.raises(WeightsMismatchError, match="missing"):
        load_pretrained(lin, tmp_path)
    torch.manual_seed(5)
    ref = resnet50(weights=None)
    (tmp_path / "resnet50.pth").unlink()
    torch.save(ref.state_dict(), tmp_path / "resnet50-0676ba61.pth")  # torchvision's cache name
    used = load_pretrained(lin, tmp_path)
    assert used == [str(tmp_path / "resnet50-0676ba61.pth")]
    torch.testing.assert_close(lin.backbone.stages[0][0].weight, ref.conv1.weight)
    torch.testing.assert_close(lin.backbone.stages[4][0].conv1.weight, ref.layer3[3].conv1.weight)
    torch.testing.assert_close(lin.backbone.stages[5][2].bn3.running_var, ref.layer4[2].bn3.running_var)
    small = nr_iqa_model("linearity")
    with pytest.raises(ValueError, match="not resnet50"):
        load_pretrained(small, tmp_path)
    lin.backbone.insert(5, RobustBlock(1024, 4))
    with pytest.raises(ValueError, match="before inserting"):
        load_pretrained(lin, tmp_path)
