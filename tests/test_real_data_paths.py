"""The `full` profile's data path, run on two CPU cores (all three chapters).

The `full` profile reads the real data sets that ``data_scripts/`` prepares. They
cannot be downloaded here, so this test builds small archives laid out like the
official ones (the builders of the data-script tests), prepares them with the real
scripts into a temporary data root, and runs each chapter at `smoke` sizes with
the real-data switch on. A user who downloads LIVE or MNIST then meets code that
has run, not code that has only been read.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data_script_loading import load_script, no_download
from tests.test_data_scripts import make_koniq
from tests.test_data_scripts_classification import make_cifar, make_imagenet, make_mnist, make_svhn
from tests.test_data_scripts_live import make_live, make_livec

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.chapter, pytest.mark.xdist_group("real-data")]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    archives = root / "archives"
    make_live(archives)
    make_livec(archives, n=60)
    make_koniq(archives, with_sets=True, ids=[10_000_000 + 7 * i for i in range(40)])
    make_mnist(archives, n_train=120, n_test=40)
    make_svhn(archives, n_train=120, n_test=40)
    make_cifar(archives, per_batch=24)
    for name in ("live", "livec", "koniq10k", "mnist", "svhn", "cifar10"):
        tiny = {"check_official": False, "expected_counts": None} if name in ("mnist", "svhn", "cifar10") else {}
        load_script(name).prepare(data_root=root, download_fn=no_download, **tiny)
    load_script("imgnet10").prepare(make_imagenet(root / "ilsvrc", per_wnid=5), data_root=root,
                                    n_train=4, n_test=1, size=32)
    return root


def run_real(name: str, data_root: Path, runs: Path, *params: str) -> dict:
    env = {**os.environ, "ROBUSTBOOK_RUNS": str(runs), "ROBUSTBOOK_DATA": str(data_root)}
    cmd = [sys.executable, "-m", "robustbook", "run", name, "--profile", "smoke"]
    for i in range(0, len(params), 2):
        cmd += ["-p", params[i], params[i + 1]]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0, f"{name} on real-layout data failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return json.loads(Path(r.stdout.strip().splitlines()[-1]).read_text())


def test_stnorm_reads_live_livec_and_koniq(data_root: Path, tmp_path: Path) -> None:
    record = run_real("stnorm", data_root, tmp_path, "data_source", "real")
    data = record["metrics"]["data"]
    assert {ds: d["name"] for ds, d in data.items()} == {"live": "LIVE", "livec": "LIVEC", "koniq": "KonIQ-10k"}
    from robustbook.data import read_dataset
    for ds, folder in (("live", "live"), ("livec", "livec"), ("koniq", "koniq10k")):
        rows, _ = read_dataset(data_root / folder, check_files=False)
        assert data[ds]["n_train"] == sum(r.split == "train" for r in rows)
    assert record["metrics"]["tab1"], "Table I is empty"


def test_neural_ode_reads_mnist_svhn_imgnet10_and_cifar10(data_root: Path, tmp_path: Path) -> None:
    record = run_real("neural_ode", data_root, tmp_path, "data", "real", "datasets", "[mnist, svhn, imgnet10]")
    data = record["metrics"]["data"]
    assert data["mnist"]["side"] == 28 and data["mnist"]["channels"] == 1
    assert data["svhn"]["side"] == 32 and data["imgnet10"]["side"] == 32 and data["imgnet10"]["n_test"] == 10
    assert "cifar10" in data, "Table 3.8 should run on the prepared CIFAR-10"
    assert record["metrics"]["t31"], "Table 3.1 is empty"


def test_attacks_chapter_reads_koniq(data_root: Path, tmp_path: Path) -> None:
    record = run_real("attacks", data_root, tmp_path, "dataset", "koniq10k")
    assert record["params"]["dataset"] == "koniq10k"
    assert record["metrics"], "chapter 0 recorded no numbers on KonIQ-10k"
