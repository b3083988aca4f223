"""Every chapter of _toc.yml executed at the smoke profile, then the book rendered from those runs.

The runs go to a temporary runs folder (weights cache included), so the tests never
depend on what a developer has cached. All tests of this module run on one xdist
worker, in order, so the book build reuses the chapter runs.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from robustbook.params import discover
from robustbook.run import toc_notebooks

ROOT = Path(__file__).resolve().parents[1]
SPECS = discover(ROOT / "book")
CHAPTERS = {spec.notebook.resolve(): name for name, spec in SPECS.items()}
TOC_CHAPTERS = [CHAPTERS[(ROOT / rel).with_suffix(".ipynb").resolve()] for rel in toc_notebooks(ROOT)
                if (ROOT / rel).with_suffix(".ipynb").resolve() in CHAPTERS]

pytestmark = [pytest.mark.chapter, pytest.mark.xdist_group("chapters")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


def run_chapter(name: str, runs: Path) -> dict:
    env = {**os.environ, "ROBUSTBOOK_RUNS": str(runs)}
    r = subprocess.run([sys.executable, "-m", "robustbook", "run", name, "--profile", "smoke"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0, f"chapter {name} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return json.loads(Path(r.stdout.strip().splitlines()[-1]).read_text())


def test_toc_lists_every_finished_chapter():
    finished = sorted(n for n, spec in SPECS.items() if not spec.draft)
    assert sorted(TOC_CHAPTERS) == finished, "_toc.yml must list every chapter whose chapter.yml is not a draft"


@pytest.mark.parametrize("name", TOC_CHAPTERS)
def test_chapter_runs_at_smoke(name, runs):
    record = run_chapter(name, runs)
    assert record["profile"] == "smoke" and record["chapter"] == name
    assert record["metrics"], "the chapter recorded no numbers"
    check = chapter_check(name)
    assert check is not None, f"tests/chapter_checks/{name}.py with check(metrics) is missing"
    check(record["metrics"])


def chapter_check(name: str):
    """``tests/chapter_checks/<name>.py`` defines ``check(metrics)``: assertions on a smoke run's numbers,
    so a chapter can fail on what it computes, not only on exceptions."""
    import importlib.util

    path = ROOT / "tests" / "chapter_checks" / f"{name}.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"chapter_check_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.check


def test_book_renders_from_the_smoke_runs(runs, tmp_path):
    env = {**os.environ, "ROBUSTBOOK_RUNS": str(runs)}
    r = subprocess.run([sys.executable, "-m", "robustbook", "book", "--profile", "smoke", "--output", str(tmp_path)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "reusing" in r.stdout, "the book build re-executed chapters the tests had just run"
    html = tmp_path / "_build" / "html"
    assert (html / "index.html").is_file()
    page = (html / "book" / "attacks" / "attacks.html").read_text()
    assert "Scorecard" in page and "smoke" in page
