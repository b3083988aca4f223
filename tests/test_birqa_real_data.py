"""The BiRQA chapter's `full` data path (Tables 2 and 7), run at `smoke` sizes on tiny prepared sets.

As in test_real_data_paths.py: small archives laid out like the official PIPAL, LIVE, CSIQ,
TID2013 and BAPPS releases are prepared with the real scripts into a temporary data root, and
the chapter trains on PIPAL, tests across LIVE/CSIQ/TID2013 and evaluates BAPPS 2AFC under attack.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.data_script_loading import load_script, no_download
from tests.test_data_scripts_fr import make_bapps, make_csiq, make_pipal, make_tid2013
from tests.test_data_scripts_live import make_live
from tests.test_real_data_paths import run_real

pytestmark = [pytest.mark.chapter, pytest.mark.xdist_group("real-data")]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fr-data")
    archives = root / "archives"
    make_pipal(archives, n_refs=10, per_ref=12)
    make_live(archives)
    make_csiq(archives)
    make_tid2013(archives)
    make_bapps(archives, parts=("val",), per_cat=12)
    for name in ("pipal", "live", "csiq", "tid2013"):
        load_script(name).prepare(data_root=root, download_fn=no_download)
    load_script("bapps").prepare(data_root=root, parts=("val",), download_fn=no_download)
    return root


def test_birqa_trains_on_pipal_and_tests_on_live_csiq_tid2013_and_bapps(data_root: Path, tmp_path: Path) -> None:
    record = run_real("birqa", data_root, tmp_path, "dataset", "pipal", "cross_sets", "[live, csiq, tid2013]",
                      "bapps", "true", "n_test", "16")
    m = record["metrics"]
    assert m["data"]["proxy_labels"] is False
    assert set(m["t2"]["PIPAL"]) == {"LIVE", "CSIQ", "TID2013"}
    for row in m["t2"]["PIPAL"].values():
        assert -1 <= row["srocc"] <= 1 and -1 <= row["plcc"] <= 1
    t7 = m["t7"]
    assert {"base_birqa", "aat_birqa", "base_lpips_like", "base_topiq_like"} <= set(t7)
    for row in t7.values():
        assert {"clean", "fgsm", "square", "facpa"} <= set(row) and all(0 <= v <= 1 for v in row.values())
    assert m["t9"]["defences_run"] == 0
