"""The bundled offline tier: distortions, the proxy-labelled IQA set, splits by photograph."""
from __future__ import annotations

import numpy as np
import pytest

from robustbook.data import ManifestError, load_split, prepare, read_dataset
from robustbook.data.bundled import PHOTOS, load_photo, proxy_score
from robustbook.data.distortions import DISTORTIONS, LEVELS, distort


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return prepare("bundled-iqa", root=root, crop=24, per_photo=2, seed=3)


def test_photos_are_offline_rgb():
    for name in PHOTOS:
        img = load_photo(name)
        assert img.ndim == 3 and img.shape[2] == 3 and 0 <= img.min() and img.max() <= 1


@pytest.mark.parametrize("kind", sorted(DISTORTIONS))
def test_distortion_levels_get_worse(kind):
    ref = load_photo("astronaut")[100:164, 100:164]
    scores = [proxy_score(distort(ref, kind, lvl, np.random.default_rng(0)), ref) for lvl in LEVELS]
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False)), scores
    assert scores[0] < 100.0


def test_set_is_split_by_reference_crop(small_set):
    rows, meta = read_dataset(small_set)
    assert meta.task == "nr-iqa" and "proxies" in meta.notes
    assert len(rows) == 2 * len(PHOTOS) * (1 + len(DISTORTIONS) * len(LEVELS))
    splits = {}
    for r in rows:
        splits.setdefault(r.ref_id, set()).add(r.split)
    assert len(splits) == 2 * len(PHOTOS)
    assert all(len(s) == 1 for s in splits.values())
    assert {s for v in splits.values() for s in v} == {"train", "val", "test"}
    assert max(r.score for r in rows if r.level == 0) == pytest.approx(100.0)


def test_photo_split_keeps_photographs_apart(tmp_path):
    folder = prepare("bundled-iqa", root=tmp_path, crop=16, per_photo=2, seed=1, split_by="photo")
    rows, _ = read_dataset(folder)
    by_photo = {}
    for r in rows:
        assert r.image.startswith(f"images/{r.ref_id}_")
        by_photo.setdefault(r.ref_id, set()).add(r.split)
    assert set(by_photo) == set(PHOTOS) and all(len(s) == 1 for s in by_photo.values())


def test_crops_do_not_overlap():
    from robustbook.data.bundled import reference_crops

    crops = reference_crops(16, 16, seed=0, photos=("astronaut",))
    flat = {c.tobytes() for _, _, c in crops}
    assert len(flat) == 16
    with pytest.raises(ValueError, match="per_photo must be in 1..16"):
        reference_crops(16, 17, seed=0)


def test_load_split_tensors(small_set):
    x, y, rows = load_split(small_set, "test")
    assert x.shape[1:] == (3, 24, 24) and len(x) == len(y) == len(rows)
    assert 0 <= float(y.min()) and float(y.max()) <= 1


def test_rebuild_is_reused_and_corruption_is_reported(small_set):
    assert prepare("bundled-iqa", root=small_set.parent, crop=24, per_photo=2, seed=3) == small_set
    (small_set / "dataset.json").write_text("{not json")
    with pytest.raises(ManifestError, match="corrupt"):
        read_dataset(small_set)


def test_unknown_and_unprepared_sets(tmp_path):
    with pytest.raises(ValueError, match="valid:"):
        prepare("imagenet")
    with pytest.raises(FileNotFoundError, match="data_scripts/koniq10k.py"):
        prepare("koniq10k", root=tmp_path)
