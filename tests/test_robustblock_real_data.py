"""The `full` data path of the RobustBlock chapter (KonIQ-10k for training, the NIPS 2017 development
set for the robustness scores), run at `smoke` sizes on tiny archives in the official layouts."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.data_script_loading import load_script, no_download
from tests.test_data_scripts import make_koniq
from tests.test_data_scripts_nips2017 import make_archive as make_nips
from tests.test_real_data_paths import run_real

pytestmark = [pytest.mark.chapter, pytest.mark.xdist_group("real-data")]


def test_robustblock_reads_koniq_and_nips2017(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_koniq(root / "archives", with_sets=True, ids=[10_000_000 + 7 * i for i in range(40)])
    make_nips(root / "archives", ids=[f"{i:016x}" for i in range(12)])
    load_script("koniq10k").prepare(data_root=root, download_fn=no_download)
    load_script("nips2017_dev").prepare(data_root=root, download_fn=no_download)
    record = run_real("robustblock", root, tmp_path / "runs", "data_source", "real", "robust_set", "nips2017",
                      "batch_size", "8")
    m = record["metrics"]
    assert record["params"]["data_source"] == "real" and record["params"]["robust_set"] == "nips2017"
    assert m["data"]["n_train"] == 24 and m["data"]["n_test"] == 8
    # scores on the unlabelled NIPS images: robustness numbers, no attacked SROCC
    pgd = m["main"]["linearity"]["block"][f"pgd{record['params']['pgd_eps'][0]:g}".replace(".", "p")]
    assert pgd["srocc"] is None and isinstance(pgd["r_score"], float)
