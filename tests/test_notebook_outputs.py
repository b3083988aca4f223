"""Chapter 0 executed twice at the smoke profile prints the same outputs (nbval).

The runner executes ``attacks`` once (papermill) into a temporary run folder with its
own weight cache; nbval then re-executes that executed notebook in a fresh kernel,
with a *second, empty* weight cache (so the model is trained again, not loaded), and
compares every cell's text outputs with the first run's. A difference is a real
nondeterminism of the seeded chapter (training, data preparation, an attack's random
draws), which is what this test exists to catch.

What is masked and why (``nbval_sanitize.cfg`` is written here, next to the run):

* run-folder and temporary paths, hashes (cache keys), memory addresses, wall-clock
  durations: they legitimately differ between two executions (at present the
  chapter prints none of them; the masks keep the test from breaking when it does);
* output of cells that use ``ipywidgets``: nbval's kernel client does not implement
  the widget ``Output`` protocol (``clear_output`` is "unhandled"), so the widget's
  inner figure lands in the cell's outputs, which papermill routes into the widget
  state; the cell is tagged ``nbval-ignore-output`` in the copy that nbval checks
  (the cell still runs; its numbers reach ``metrics.json`` and other cells' outputs).

Images (``image/png``) are not compared by nbval: a figure's pixels depend on the
matplotlib/freetype build, and the numbers they plot are compared via the tables.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "attacks"

pytestmark = [pytest.mark.chapter, pytest.mark.xdist_group("chapters")]

SANITIZE = textwrap.dedent(r"""
    [paths]
    regex: (/[\w.+-]+)*/(tmp|pytest-of-[\w-]+|runs)(/[\w.+-]+)*
    replace: PATH

    [hashes]
    regex: \b[0-9a-f]{12,64}\b
    replace: HASH

    [addresses]
    regex: \bat 0x[0-9a-fA-F]+
    replace: at 0xADDRESS

    [durations]
    regex: \d+(\.\d+)?\s?(s|ms|sec|seconds|min)\b
    replace: DURATION
""")


def tag_widget_cells(path: Path) -> int:
    """Tag every code cell that builds an ipywidget ``nbval-ignore-output``; return how many."""
    nb = nbformat.read(path, as_version=4)
    n = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and ("ipywidgets" in cell.source or "widgets." in cell.source):
            tags = cell.metadata.setdefault("tags", [])
            if "nbval-ignore-output" not in tags:
                tags.append("nbval-ignore-output")
                n += 1
    nbformat.write(nb, path)
    return n


def test_smoke_run_reexecutes_to_the_same_outputs(tmp_path):
    env = {**os.environ, "ROBUSTBOOK_RUNS": str(tmp_path / "runs"), "ROBUSTBOOK_CACHE": str(tmp_path / "cache1")}
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "robustbook", "run", CHAPTER, "--profile", "smoke", "--out", str(out)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0, f"chapter {CHAPTER} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    notebook = out / f"{CHAPTER}.ipynb"
    assert notebook.is_file()
    tag_widget_cells(notebook)
    sanitize = tmp_path / "nbval_sanitize.cfg"
    sanitize.write_text(SANITIZE)

    env["ROBUSTBOOK_CACHE"] = str(tmp_path / "cache2")  # train again: the weights must come out the same
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
                        "--nbval", "--nbval-current-env", "--nbval-cell-timeout", "600",
                        "--sanitize-with", str(sanitize), str(notebook)],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert r.returncode == 0, ("re-executing the smoke run of chapter 0 changed some outputs "
                               f"(nbval):\n{r.stdout[-6000:]}\n{r.stderr[-2000:]}")
    assert (tmp_path / "cache2").is_dir() and any((tmp_path / "cache2").glob("*.pt")), \
        "the re-execution did not train its own model"
