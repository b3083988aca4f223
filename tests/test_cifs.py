"""CIFS, CAS, the adaptive loss ℓ_β and channel-wise activations (source 003, chapter 4)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robustbook import attacks
from robustbook.analysis.channels import channel_activations, channel_statistics
from robustbook.attacks.losses import cross_entropy, margin
from robustbook.losses.cifs import AdaptiveLoss, adaptive_loss
from robustbook.metrics import robust_accuracy
from robustbook.models.cifs import CAS, CIFS, feed_labels, importance_mask, topk_indices
from robustbook.models.resnet_cifar import resnet_cifar


def _fd_relevance(mod: CIFS, z: torch.Tensor, idx: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """Central differences of Σ_{i∈idx} A(z + δ·1)_i w.r.t. each channel's shared shift δ_c."""
    N, C = z.shape[:2]
    g = torch.zeros(N, C, dtype=z.dtype)
    for c in range(C):
        e = torch.zeros(1, C, 1, 1, dtype=z.dtype)
        e[0, c] = h
        up = mod.raw_prediction(z + e).gather(1, idx).sum(1)
        down = mod.raw_prediction(z - e).gather(1, idx).sum(1)
        g[:, c] = (up - down) / (2 * h)
    return g


@pytest.mark.parametrize("probe", ["linear", "mlp"])
def test_relevance_equals_finite_differences(probe: str) -> None:
    torch.manual_seed(0)
    mod = CIFS(6, 5, probe=probe, k=2, hidden=7).double()
    z = torch.randn(4, 6, 3, 3, dtype=torch.float64)
    g, p = mod.relevance(z)
    idx = p.topk(2, dim=1).indices
    assert torch.allclose(g, _fd_relevance(mod, z, idx), atol=1e-7)
    if probe == "linear":  # g = Σ_{top-k} W rows: GAP of a shift shared by a channel is the shift itself
        assert torch.allclose(g, mod.probe.weight[idx].sum(1), atol=1e-12)
    labels = torch.tensor([0, 1, 2, 3])
    g_lab, _ = mod.relevance(z, labels)
    idx_lab = topk_indices(p, 2, labels)
    assert (idx_lab[:, 0] == labels).all() and (idx_lab[:, 1] != labels).all()
    assert torch.allclose(g_lab, _fd_relevance(mod, z, idx_lab), atol=1e-7)


def test_topk_with_labels_never_counts_the_label_twice() -> None:
    logits = torch.tensor([[5.0, 4.0, 3.0, 0.0], [5.0, 4.0, 3.0, 0.0]])
    assert topk_indices(logits, 2).tolist() == [[0, 1], [0, 1]]
    assert topk_indices(logits, 2, torch.tensor([1, 3])).tolist() == [[1, 0], [3, 0]]
    assert topk_indices(logits, 3, torch.tensor([0, 3])).tolist() == [[0, 1, 2], [3, 0, 1]]


def test_masks() -> None:
    g = torch.tensor([[-2.0, -0.5, 0.0, 0.5, 2.0], [0.1, 0.2, 0.3, 0.4, 0.5]])
    m = importance_mask(g, "softmax")
    assert torch.allclose(m.sum(1), torch.ones(2)) and (m > 0).all()
    assert torch.allclose(importance_mask(g, "softmax", softmax_scale=2.0).sum(1), torch.full((2,), 2.0))
    s = importance_mask(g, "sigmoid")                      # α = 10: a switch
    assert (s[0, :2] < 0.01).all() and (s[0, 3:] > 0.99).all()
    sp = importance_mask(g, "softplus")                    # α = 5: ≈ max(g, 0)
    assert sp[0, 0] < 1e-4 and abs(sp[0, 4] - 2.0) < 1e-4
    assert torch.all(torch.diff(importance_mask(g, "softplus")[1]) > 0)   # monotone
    with pytest.raises(ValueError, match="imgf"):
        importance_mask(g, "relu")
    with pytest.raises(ValueError, match="> 0"):
        importance_mask(g, "sigmoid", 0.0)


def test_cifs_rescales_channels_by_the_mask() -> None:
    torch.manual_seed(1)
    mod = CIFS(4, 3, probe="mlp", imgf="sigmoid")
    z = torch.rand(2, 4, 5, 5)
    out, p = mod(z)
    g, _ = mod.relevance(z)
    assert torch.allclose(out, z * mod.mask(g)[:, :, None, None], atol=1e-6)
    assert p.shape == (2, 3)
    with pytest.raises(ValueError, match="expects features"):
        mod(torch.rand(2, 5, 3, 3))
    with pytest.raises(ValueError, match="k must be at most"):
        CIFS(4, 3, k=4)


@pytest.mark.parametrize("scale, total", [("one", 1.0), ("k", 2.0), ("channels", 6.0)])
def test_softmax_scale_sets_the_masks_total(scale: str, total: float) -> None:
    mod = CIFS(6, 3, k=2, softmax_scale=scale)
    g = torch.randn(4, 6)
    assert torch.allclose(mod.mask(g).sum(1), torch.full((4,), total))
    if scale == "channels":                                # a uniform mask leaves the block unchanged
        assert torch.allclose(mod.mask(torch.zeros(2, 6)), torch.ones(2, 6))
    with pytest.raises(ValueError, match="softmax_scale"):
        CIFS(6, 3, softmax_scale="two")


def test_cas_masks_with_the_class_weights() -> None:
    torch.manual_seed(2)
    mod = CAS(4, 3)
    z = torch.rand(2, 4, 3, 3)
    out, p = mod(z, torch.tensor([2, 0]))
    assert torch.allclose(out[0], z[0] * mod.fc.weight[2][:, None, None])
    out2, p2 = mod(z)
    pred = p2.argmax(1)
    assert torch.allclose(out2[1], z[1] * mod.fc.weight[pred[1]][:, None, None])


def test_adaptive_loss() -> None:
    torch.manual_seed(3)
    final, p1, p2 = torch.randn(5, 4), torch.randn(5, 4), torch.randn(5, 4)
    y = torch.randint(0, 4, (5,))
    ce = lambda o: F.cross_entropy(o, y, reduction="none")  # noqa: E731
    assert torch.allclose(adaptive_loss(final, [p1, p2], y, 0.0), ce(final))
    assert torch.allclose(adaptive_loss(final, [p1, p2], y, math.inf), (ce(p1) + ce(p2)) / 2)
    assert torch.allclose(adaptive_loss(final, [p1, p2], y, 2.0), ce(final) / 3 + 2 / 3 * (ce(p1) + ce(p2)) / 2)
    assert torch.allclose(adaptive_loss(final, [p1], y, 1.0, base=margin), (margin(final, y) + margin(p1, y)) / 2)
    with pytest.raises(ValueError, match="beta"):
        adaptive_loss(final, [p1], y, -1.0)
    with pytest.raises(ValueError, match="recorded none"):
        adaptive_loss(final, [], y, 2.0)


def test_adaptive_loss_reads_the_model() -> None:
    torch.manual_seed(4)
    net = resnet_cifar("resnet10", 4, 1, width=4, channel_module="cifs").eval()
    x, y = torch.rand(3, 1, 12, 12), torch.tensor([0, 1, 2])
    out = net(x)
    assert list(net.probe_logits) == ["P2", "P1"]
    p2, p1 = net.probe_logits["P2"], net.probe_logits["P1"]
    assert torch.allclose(AdaptiveLoss(net, 0)(out, y), cross_entropy(out, y))
    assert torch.allclose(AdaptiveLoss(net, math.inf, positions=["P1"])(out, y), cross_entropy(p1, y))
    full = AdaptiveLoss(net, 2, reduction="mean")(out, y)
    assert torch.allclose(full, (cross_entropy(out, y) / 3 + (cross_entropy(p1, y) + cross_entropy(p2, y)) / 3).mean())
    with pytest.raises(ValueError, match="not at"):
        AdaptiveLoss(net, math.inf, positions=["P3"])(out, y)


def test_resnet_positions_probes_and_shapes() -> None:
    for arch, n_blocks in (("resnet18", 8), ("resnet10", 4)):
        net = resnet_cifar(arch, 10, 3, width=8, channel_module="cifs")
        assert len(net.blocks) == n_blocks
        assert net.select["P1"].probe_kind == "linear" and net.select["P2"].probe_kind == "mlp"
        assert net.select["P1"].channels == 64 and net.select["P2"].channels == (64 if arch == "resnet18" else 32)
        assert net(torch.rand(2, 3, 16, 16)).shape == (2, 10)
    wrn = resnet_cifar("wrn28", 10, 3, width=8, widen=2, channel_module="cas", positions=("P1",))
    assert list(wrn.select) == ["P1"] and wrn(torch.rand(2, 3, 8, 8)).shape == (2, 10)
    assert list(resnet_cifar("resnet10", 10, 1, width=4).select) == []
    with pytest.raises(ValueError, match="positions"):
        resnet_cifar("resnet10", channel_module="cifs", positions=("P3",))
    with pytest.raises(ValueError, match="without channel_module"):
        resnet_cifar("resnet10", k=3)


def test_train_labels_used_only_in_train_mode() -> None:
    torch.manual_seed(5)
    net = resnet_cifar("resnet10", 3, 1, width=4, channel_module="cifs", k=1)
    x, y = torch.rand(6, 1, 10, 10), torch.tensor([0, 1, 2, 0, 1, 2])
    batches = [(x, y)]
    seen = []
    for xb, yb in feed_labels(batches, net):
        seen.append(net.train_labels)
        net.train()
        g_lab, _ = net.select["P1"].relevance(torch.rand(6, 32, 2, 2), net._labels(xb))
        # top-1 replaced by the label: with k = 1 the relevance is the label's weight row
        assert torch.allclose(g_lab, net.select["P1"].probe.weight[yb], atol=1e-6)
        net.eval()
        assert net._labels(xb) is None
    assert seen[0] is y and net.train_labels is None
    net.train()
    net.train_labels = y[:2]
    with pytest.raises(ValueError, match="train_labels hold 2"):
        net(x)


def test_input_gradient_flows_through_the_mask() -> None:
    """White-box attacks differentiate through eq. (4.1): the input gradient matches finite differences."""
    torch.manual_seed(6)
    net = resnet_cifar("resnet10", 3, 1, width=4, channel_module="cifs", imgf="softplus").double().eval()
    x = torch.rand(1, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1])
    (g,) = torch.autograd.grad(net(x)[0, 1], x)
    idx = [(0, 0, 1, 2), (0, 0, 4, 4), (0, 0, 3, 0)]
    for i in idx:
        e = torch.zeros_like(x)
        e[i] = 1e-6
        with torch.no_grad():
            fd = (net(x + e)[0, y[0]] - net(x - e)[0, y[0]]) / 2e-6
        assert abs(float(fd) - float(g[i])) < 1e-6 * max(1.0, abs(float(fd)))


def test_adaptive_attack_at_least_as_strong_as_plain() -> None:
    torch.manual_seed(7)
    net = resnet_cifar("resnet10", 3, 1, width=4, channel_module="cifs").eval()
    x = torch.rand(24, 1, 8, 8)
    with torch.no_grad():
        y = net(x).argmax(1)              # every point clean-correct
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    plain = attacks.PGD(0.05, 5, generator=gen())
    adaptive = {f"β={b}": attacks.PGD(0.05, 5, loss=AdaptiveLoss(net, b), generator=gen())
                for b in (0.0, 2.0, math.inf)}
    rep_plain = robust_accuracy(net, x, y, {"plain": plain}, batch_size=8)
    rep = robust_accuracy(net, x, y, adaptive, batch_size=8)
    assert rep.robust_accuracy <= rep_plain.robust_accuracy
    assert rep.robust_accuracy <= min(rep.per_attack.values())
    assert rep.per_attack["β=0.0"] == rep_plain.robust_accuracy   # β = 0 is the plain attack


def test_channel_statistics_on_a_hand_made_tensor() -> None:
    acts = torch.tensor([[2.0, 1.0, 0.0, 0.015],
                         [4.0, 0.0, 1.0, 0.05],
                         [0.0, 3.0, 0.01, 0.0]])
    labels = torch.tensor([0, 0, 1])
    w = torch.tensor([[0.1, 0.5, -0.2, 0.0], [1.0, -1.0, 0.3, 0.2]])
    st = channel_statistics(acts, labels, 2, weights=w)
    assert st.magnitude[0].tolist() == pytest.approx([1.0, 1 / 6, 1 / 6, 0.0325 / 3])
    assert st.magnitude[1].tolist() == pytest.approx([0.0, 1.0, 0.01 / 3, 0.0])
    # thresholds: 1 % of each image's largest channel (0.02, 0.04, 0.03)
    assert st.frequency[0].tolist() == [1.0, 0.5, 0.5, 0.5]
    assert st.frequency[1].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert st.order[0].tolist() == [1, 0, 3, 2] and st.order[1].tolist() == [0, 2, 3, 1]
    s = st.sorted_by_weight(0)
    assert s["weights"].tolist() == pytest.approx([0.5, 0.1, 0.0, -0.2])
    assert s["magnitude"][0] == pytest.approx(1 / 6)
    assert st.counts.tolist() == [2, 1]


def test_channel_activations_of_a_model() -> None:
    torch.manual_seed(8)
    net = resnet_cifar("resnet10", 3, 1, width=4, channel_module="cifs")
    x, y = torch.rand(12, 1, 8, 8), torch.tensor([0, 1, 2] * 4)
    st = channel_activations(net, [(x[:6], y[:6]), (x[6:], y[6:])], "penultimate")
    assert st.magnitude.shape == (3, 32) and st.weights.shape == (3, 32)
    assert st.magnitude.max(1).tolist() == pytest.approx([1.0, 1.0, 1.0])
    adv = channel_activations(net, [(x, y)], "penultimate", attack=attacks.FGSM(0.1))
    assert not torch.allclose(torch.tensor(adv.magnitude), torch.tensor(st.magnitude))
    assert net.training                                   # modes restored
    both = channel_activations(net, [(x, y)], ["blocks.3", "penultimate"])
    assert both[0].weights is not None and np.allclose(both[1].magnitude, st.magnitude)
    with pytest.raises(ValueError, match="no submodule"):
        channel_activations(net, [(x, y)], "nope")


def test_fat_early_stopping() -> None:
    torch.manual_seed(9)
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    x = torch.rand(6, 1, 4, 4)
    with torch.no_grad():
        pred = lin(x).argmax(1)
    wrong = (pred + 1) % 3
    # already misclassified, tau = 0: no step at all
    assert torch.equal(attacks.early_stopped_pgd(lin, x, wrong, 0.1, 0.02, 5, random_start=False), x)
    # tau large: every step taken, as plain PGD
    fat = attacks.FAT(0.1, 5, alpha=0.02, tau=10)
    ref = attacks.pgd(lin, x, pred, 0.1, 0.02, 5)
    gen_free = fat.replace(generator=torch.Generator().manual_seed(0))
    out = attacks.early_stopped_pgd(lin, x, pred, 0.1, 0.02, 5, tau=10, random_start=False)
    assert torch.allclose(out, ref) and str(fat).startswith("FAT")
    assert (gen_free(lin, x, pred) - x).abs().max() <= 0.1 + 1e-6
    with pytest.raises(ValueError, match="tau"):
        attacks.early_stopped_pgd(lin, x, pred, 0.1, 0.02, 5, tau=-1)
