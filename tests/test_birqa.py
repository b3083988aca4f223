"""BiRQA (source 002): features against scikit-image / pytorch-msssim, gradients, model, losses, Theorem 1, sampler."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustbook import attacks
from robustbook.attacks import losses as atk_losses
from robustbook.data.aat_sampler import AATBatchSampler, PairScores
from robustbook.losses import AATLoss, anchored_ranking_loss, coverage_eta, regression_loss, theorem1_terms
from robustbook.models import BiRQA, BiRQAFeatures, LPIPSLike
from robustbook.models.birqa_features import color_difference, lbp, local_variance, rgb_to_ycbcr, ssim_map
from robustbook.train.aat import DistortedOnly, LabelPenalty, fit_aat, image_ssim


def _pair(n=2, s=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(n, 3, s, s, generator=g)
    dist = (ref + 0.1 * torch.randn(n, 3, s, s, generator=g)).clamp(0, 1)
    return ref, dist


# ---------------------------------------------------------------- features
def test_ssim_map_matches_pytorch_msssim_and_skimage():
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    from skimage.metrics import structural_similarity

    a, b = (t.double() for t in _pair(2, 40))
    ours = ssim_map(a, b, padding="valid").mean((1, 2, 3))
    ref = pytorch_msssim.ssim(a, b, data_range=1.0, size_average=False)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)  # its window is float32
    # scikit-image: same Gaussian window, population covariance; compare on the valid interior
    _, full = structural_similarity(a[0, 0].numpy(), b[0, 0].numpy(), data_range=1.0, gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False, full=True)
    ours_map = ssim_map(a[:1, :1], b[:1, :1], padding="valid")[0, 0].numpy()
    np.testing.assert_allclose(ours_map, full[5:-5, 5:-5], atol=1e-8)
    same = ssim_map(a, a)
    torch.testing.assert_close(same, torch.ones_like(same))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lbp_matches_skimage_ror(seed):
    from skimage.feature import local_binary_pattern

    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (19, 23)).astype(np.uint8)
    img[3:9, 4:12] = 77  # flat patches: ties of neighbour and centre
    ref = local_binary_pattern(img, 8, 1, method="ror")
    ours = lbp(torch.tensor(img, dtype=torch.float64)[None, None], grad="hard")[0, 0].numpy()
    np.testing.assert_array_equal(ours, ref)


def test_lbp_surrogate_keeps_forward_and_passes_gradient():
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64, requires_grad=True)
    hard, soft = lbp(x, grad="hard"), lbp(x, grad="sigmoid")
    torch.testing.assert_close(hard, soft.detach())
    soft.sum().backward()
    assert x.grad.abs().sum() > 0
    x2 = x.detach().clone().requires_grad_()
    out = lbp(x2, grad="hard")
    assert not out.requires_grad  # the true gradient of a step function: nothing


def test_ycbcr_and_variance_against_references():
    from scipy.ndimage import gaussian_filter
    from skimage.color import rgb2ycbcr

    x = torch.rand(1, 3, 12, 12, dtype=torch.float64)
    ours = rgb_to_ycbcr(x)[0].permute(1, 2, 0).numpy()
    sk = rgb2ycbcr(x[0].permute(1, 2, 0).numpy())  # [16, 235] studio range
    # same axes up to the studio-range affine map: correlation 1 per channel
    for c in range(3):
        assert np.corrcoef(ours[..., c].ravel(), sk[..., c].ravel())[0, 1] > 0.999
    img = torch.rand(1, 1, 30, 30, dtype=torch.float64)
    v = local_variance(img, padding="valid")[0, 0].numpy()
    a = img[0, 0].numpy()
    mu = gaussian_filter(a, 1.5, truncate=5 / 1.5, mode="reflect")
    ref = gaussian_filter(a * a, 1.5, truncate=5 / 1.5, mode="reflect") - mu ** 2
    np.testing.assert_allclose(v, ref[5:-5, 5:-5], rtol=1e-6, atol=1e-9)
    r, d = _pair(1, 8)
    assert color_difference(r, r).abs().max() == 0 and color_difference(r, d).min() >= 0


@pytest.mark.parametrize("pyramid", ["pool", "image"])
def test_feature_pyramid_shapes_and_gradients_reach_every_feature(pyramid):
    feats = BiRQAFeatures(4, pyramid=pyramid)
    ref, dist = _pair(2, 32)
    dist.requires_grad_()
    pyr = feats(ref, dist)
    assert [p.shape[-1] for p in pyr] == [32, 16, 8, 4] and all(p.shape[1] == 8 for p in pyr)
    maps = feats.maps(ref, dist)
    for name, m in maps.items():
        g, = torch.autograd.grad(m.sum(), dist, retain_graph=True)
        assert g.abs().sum() > 0, f"no gradient reaches the distorted image through {name}"
    hard = BiRQAFeatures(4, lbp_grad="hard")
    m = hard.maps(ref, dist)["lbp"]
    assert not m.requires_grad


# ---------------------------------------------------------------- model
@pytest.mark.parametrize("switches", [dict(), dict(csram=False), dict(csram=False, scgb=False, rah=False),
                                      dict(shared_head=True), dict(pyramid="image", lbp_grad="hard")])
def test_birqa_forward_backward(switches):
    model = BiRQA(width=8, feat_width=4, head_width=8, **switches)
    ref, dist = _pair(3, 32)
    dist.requires_grad_()
    y = model(ref, dist)
    assert y.shape == (3,)
    y.sum().backward()
    assert dist.grad.abs().sum() > 0
    torch.testing.assert_close(model(torch.stack([ref, dist.detach()], 1)), model(ref, dist.detach()))
    assert model.parameter_count() == sum(p.numel() for p in model.parameters())


def test_birqa_rejects_bad_input():
    with pytest.raises(ValueError, match="stacked pair"):
        BiRQA(width=8)(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="levels"):
        BiRQA(levels=1)
    with pytest.raises(ValueError, match="lbp_grad"):
        BiRQA(lbp_grad="soft")


def test_rah_weights_are_convex():
    model = BiRQA(width=8, feat_width=4, head_width=8)
    model(*_pair(2, 32))
    w = model.head.last_weights
    torch.testing.assert_close(w.sum(1), torch.ones(2))
    assert (w >= 0).all()


def test_lpips_like():
    model = LPIPSLike()
    ref, dist = _pair(2, 32)
    s_same, s_dist = model(ref, ref), model(ref, dist)
    assert s_same.shape == (2,) and (s_same >= s_dist).all()  # distance 0 gives the top score


# ---------------------------------------------------------------- losses and Theorem 1
def direct_eq3(pred, mos, anchors, r):
    """Eq. (3), literally: nearest anchors below/above by loops."""
    worst = 0.0
    for j in range(len(mos)):
        if anchors[j]:
            continue
        below = [i for i in range(len(mos)) if anchors[i] and mos[i] <= mos[j]]
        above = [i for i in range(len(mos)) if anchors[i] and mos[i] >= mos[j]]
        vp = vm = 0.0
        if above:
            ip = min(above, key=lambda i: (mos[i], i))
            vp = max(pred[j] - pred[ip], 0.0)
        if below:
            im = max(below, key=lambda i: (mos[i], -i))
            vm = max(pred[im] - pred[j], 0.0)
        worst = max(worst, max(vp, vm) / r)
    return worst


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(4, 20))
def test_anchored_loss_equals_direct_eq3_unsorted(seed, n):
    rng = np.random.default_rng(seed)
    mos = rng.uniform(0, 10, n).round(1)  # ties happen
    anchors = rng.random(n) < 0.4
    anchors[rng.integers(n)] = True
    pred = mos + rng.normal(0, 1, n)
    ours = anchored_ranking_loss(torch.tensor(pred), torch.tensor(mos), torch.tensor(anchors), k=1)
    r = mos.max() - mos.min() if mos.max() > mos.min() else 1.0
    if mos.max() == mos.min():
        ours = anchored_ranking_loss(torch.tensor(pred), torch.tensor(mos), torch.tensor(anchors), k=1, mos_range=1.0)
    assert float(ours) == pytest.approx(direct_eq3(pred, mos, anchors, r), abs=1e-12)


def test_topk_is_mean_of_k_largest_and_permutation_invariant():
    g = torch.Generator().manual_seed(3)
    mos, pred = torch.rand(16, generator=g), torch.rand(16, generator=g)
    mask = torch.zeros(16, dtype=torch.bool)
    mask[torch.stack([mos.argmin(), mos.argmax(), torch.tensor(3), torch.tensor(7)])] = True
    k1 = anchored_ranking_loss(pred, mos, mask, k=1)
    k4 = anchored_ranking_loss(pred, mos, mask, k=4)
    assert k4 <= k1 + 1e-12
    perm = torch.randperm(16, generator=g)
    torch.testing.assert_close(anchored_ranking_loss(pred[perm], mos[perm], mask[perm], k=4), k4)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 100_000))
def test_theorem1_bound_never_violated(seed):
    """Random MOS, anchors and predictions; (i)–(iii) hold with the measured ε, η, δ ⇒ eq. (4)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 24))
    mos = rng.uniform(0, 10, n)
    anchors = rng.random(n) < rng.uniform(0.2, 0.8)
    anchors[mos.argmin()] = anchors[mos.argmax()] = True  # two-sided coverage
    pred = mos + rng.normal(0, rng.uniform(0.01, 2), n)
    t = theorem1_terms(torch.tensor(pred), torch.tensor(mos), torch.tensor(anchors))
    assert t["E"] <= t["bound"] + 1e-9


def test_theorem1_equality_is_reachable():
    # anchors at 0 and 1 predicted exactly (ε = 0), a non-anchor at y = 0 predicted at 1: η = 1, δ = 0, E = 1
    mos = torch.tensor([0.0, 1.0, 0.0])
    pred = torch.tensor([0.0, 1.0, 1.0])
    t = theorem1_terms(pred, mos, torch.tensor([True, True, False]))
    assert t["E"] == pytest.approx(t["bound"]) == pytest.approx(1.0)


def test_regression_loss_eq5():
    y = torch.tensor([0.1, 0.4, 0.9])
    p = torch.tensor([0.2, 0.3, 0.8])
    mse = ((p - y) ** 2).mean()
    r = np.corrcoef(p.numpy(), y.numpy())[0, 1]
    assert float(regression_loss(p, y)) == pytest.approx(0.7 * float(mse) - 0.3 * r, abs=1e-6)
    assert float(regression_loss(p, torch.stack([y, torch.ones(3)], 1))) == pytest.approx(float(regression_loss(p, y)))


def test_aat_loss_logs_terms():
    loss = AATLoss(k=4, mos_range=0.5)
    mos = torch.linspace(0, 0.5, 16)
    y = torch.stack([mos, (torch.arange(16) % 2 == 0).float()], 1)
    y[-1, 1] = 1
    pred = (mos + 0.01 * torch.randn(16)).requires_grad_()
    value = loss(pred, y)
    value.backward()
    assert len(loss.log) == 1 and loss.log[0]["E"] <= loss.log[0]["bound"] + 1e-9
    with pytest.raises(ValueError, match="anchor"):
        loss(pred, mos)


# ---------------------------------------------------------------- sampler
@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_sampler_coverage(seed):
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0, 100, 400)
    s = AATBatchSampler(scores, 16, 8, batches=5, seed=seed)
    for batch in s:
        idx = [i for i, _ in batch]
        is_anchor = np.array([a for _, a in batch])
        assert len(set(idx)) == 16 and is_anchor.sum() == 8
        ys = scores[idx]
        assert ys[is_anchor].min() == ys.min() and ys[is_anchor].max() == ys.max()
        eta = coverage_eta(torch.tensor(ys), torch.tensor(is_anchor))
        assert eta <= ys.max() - ys.min() <= s.band * 2 ** s.widened + 1e-12
    assert len(s.etas) == 5 and max(s.etas) < float("inf")


def test_sampler_is_seeded_by_epoch():
    scores = np.linspace(0, 1, 200)
    a, b = AATBatchSampler(scores, batches=3, seed=1), AATBatchSampler(scores, batches=3, seed=1)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    with pytest.raises(ValueError, match="n_anchors"):
        AATBatchSampler(scores, 16, 1)


# ---------------------------------------------------------------- training modes
def test_distorted_only_leaves_anchors_and_reference_clean():
    torch.manual_seed(0)
    model = BiRQA(width=8, feat_width=4, head_width=8).eval()
    ref, dist = _pair(4, 16)
    pair = torch.stack([ref, dist], 1)
    y = torch.tensor([[0.5, 1.0], [0.4, 0.0], [0.3, 1.0], [0.2, 0.0]])
    adv = DistortedOnly(attacks.FGSM(8 / 255, loss=atk_losses.score_up))(model, pair, y)
    torch.testing.assert_close(adv[:, 0], ref)
    torch.testing.assert_close(adv[[0, 2], 1], dist[[0, 2]])
    assert (adv[[1, 3], 1] - dist[[1, 3]]).abs().amax() > 0
    assert (adv - pair).abs().max() <= 8 / 255 + 1e-6
    x_adv, y_adv = LabelPenalty(attacks.FGSM(8 / 255, loss=atk_losses.score_up))(model, pair, y)
    s = image_ssim(x_adv[:, 1], dist)
    torch.testing.assert_close(y_adv[:, 0], (y[:, 0] - (1 - s)).clamp(0, 1))


def test_fit_aat_runs_and_respects_bound_on_every_batch():
    torch.manual_seed(0)
    n = 64
    ref = torch.rand(n, 3, 16, 16)
    lvl = torch.rand(n)
    dist = (ref + 0.3 * lvl[:, None, None, None] * torch.randn_like(ref)).clamp(0, 1)
    model = BiRQA(width=8, feat_width=4, head_width=8)
    out = fit_aat(model, ref, dist, 1 - lvl, attack=attacks.PGD(8 / 255, 1, alpha=2 / 255, loss=atk_losses.score_up),
                  epochs=1, lr=1e-3, seed=0, batches=2)
    assert len(out["batches"]) == 2
    for b in out["batches"]:
        assert b["E"] <= b["bound"] + 1e-9
    ds = PairScores(ref, dist, 1 - lvl)
    assert ds[(0, True)][1].tolist() == [pytest.approx(float(1 - lvl[0])), 1.0]


# ---------------------------------------------------------------- loop extension and bundled FR data
def test_run_epoch_uses_labels_returned_by_a_label_adjusting_attack():
    from robustbook.train import run_epoch

    model = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    x, y = torch.ones(4, 2), torch.ones(4)
    seen = []

    def loss_fn(out, t):
        seen.append(t.clone())
        return ((out[:, 0] - t) ** 2).mean()

    def attack(m, xb, yb):
        return xb, torch.zeros_like(yb)

    run_epoch(model, [(x, y)], loss_fn, attack=attack, mix_alpha=0.5, opt=None, progress=False)
    assert torch.equal(seen[0], torch.zeros(4)) and torch.equal(seen[1], y)  # adversarial first, then clean
    with pytest.raises(ValueError, match="y_adv"):
        run_epoch(model, [(x, y)], loss_fn, attack=lambda m, a, b: (a, torch.zeros(3)), progress=False)


def test_bundled_fr_set(tmp_path):
    from PIL import Image

    from robustbook.data import ManifestDataset, prepare, read_dataset
    from robustbook.data.bundled_fr import fr_proxy_score

    folder = prepare("bundled-fr-iqa", crop=16, per_photo=1, seed=0, root=tmp_path)
    rows, meta = read_dataset(folder)
    assert meta.task == "fr-iqa" and "prox" in meta.notes.lower() and len(rows) == 18 * 25
    assert all(r.reference for r in rows)
    by_split = {s: {r.ref_id for r in rows if r.split == s} for s in ("train", "val", "test")}
    assert not (by_split["train"] & by_split["test"]) and not (by_split["train"] & by_split["val"])
    r = next(r for r in rows if r.distortion == "gaussian_noise" and r.level == 5)
    d = np.asarray(Image.open(folder / r.image), dtype=np.float64) / 255
    ref = np.asarray(Image.open(folder / r.reference), dtype=np.float64) / 255
    assert r.score == pytest.approx(fr_proxy_score(d, ref), abs=1e-3)
    assert fr_proxy_score(ref, ref) == pytest.approx(100.0)
    (pair_ref, pair_dist), y = ManifestDataset(folder, "test")[0]
    assert pair_ref.shape == pair_dist.shape == (3, 16, 16) and 0 <= float(y) <= 1
