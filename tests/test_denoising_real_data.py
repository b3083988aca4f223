"""The denoising chapter's `full` data path (`-p data real`) at `smoke` sizes, on tiny sets in the official layouts.

Like tests/test_real_data_paths.py: small archives laid out like DnCNN's repository, Kodak24, BSDS500 +
CBSD68, PolyU, CC, SIDD-small and SIDD-val are prepared by the real `data_scripts/` into a temporary data
root, and the chapter runs on them: training on Train400/BSD432/SIDD-small, Tables 2.1-2.6 on
Set68/Set12/CBSD68/Kodak24, Table 2.4 on PolyU, CC and SIDD-val with N2C. Only the scale is left for a GPU.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.data_script_loading import load_script, no_download
from tests.test_data_scripts_denoising import make_archive as make_dncnn
from tests.test_data_scripts_denoising_real import make_bsd500, make_cc, make_polyu, make_sidd_small, make_sidd_val
from tests.test_real_data_paths import run_real

pytestmark = [pytest.mark.chapter, pytest.mark.xdist_group("real-data")]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    archives = root / "archives"
    make_dncnn(archives, counts=(3, 2, 3), size=40)
    rng = np.random.default_rng(1)
    for i in range(1, 25):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(buf, format="PNG")
        (archives / f"kodim{i:02d}.png").write_bytes(buf.getvalue())
    make_bsd500(archives)
    make_polyu(archives, n=2)
    make_cc(archives, n=2)
    make_sidd_small(archives, n=2)
    make_sidd_val(archives, images=2, blocks=1, side=32)
    for name, kw in (("dncnn_sets", {"check_counts": False}), ("kodak24", {"check_sizes": False}),
                     ("bsd500", {"check_counts": False}), ("polyu", {"check_counts": False}),
                     ("cc", {"check_counts": False}), ("sidd_small", {"check_counts": False}),
                     ("sidd_val", {"check_counts": False})):
        load_script(name).prepare(data_root=root, download_fn=no_download, **kw)
    return root


def test_denoising_reads_the_thesis_sets(data_root: Path, tmp_path: Path) -> None:
    record = run_real("denoising", data_root, tmp_path, "data", "real", "alphas", "[0.0, 1.0]",
                      "dip_iters", "2", "n2s_iters", "0", "single_image_crops", "1")
    m = record["metrics"]
    assert record["params"]["data"] == "real"
    assert m["data"]["test_gray"] == 3 and m["data"]["test_colour"] == 2        # Set68, CBSD68 (two shapes)
    for part in ("gray", "gray_b", "colour", "colour_b"):                       # + Set12, Kodak24
        assert m[part]["nt"]["g15"]["N"]["mean"] > 0, part
    real = m["real"]
    assert set(real) == {"polyu", "cc", "sidd"}
    assert {"nt", "vat", "hat"} <= set(real["polyu"]) and {"nt", "vat", "hat", "n2c"} <= set(real["sidd"])
    assert "dip" in real["polyu"]
    assert set(m["unseen"]["HAT"]) == {"PolyU", "CC", "SIDD"}
