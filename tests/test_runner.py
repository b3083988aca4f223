"""The chapter runner: listing, bad input (exit 2, nothing written), failures (exit 1, nothing written)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from robustbook.run import main

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robustbook", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=300)


def test_list_shows_parameters_and_profiles(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "attacks:" in out and "epochs" in out and "list[float]" in out
    assert "smoke" in out and "quick" in out and "full" in out


@pytest.mark.parametrize("args,match", [
    (["run", "atacks"], "did you mean 'attacks'"),
    (["run", "attacks", "-p", "epcohs", "2"], "did you mean 'epochs'"),
    (["run", "attacks", "-p", "epochs", "two"], "of type str"),
    (["run", "attacks", "-p", "epochs", "0"], "below its minimum"),
    (["run", "attacks", "--profile", "fast"], "unknown profile 'fast'"),
    (["run", "attacks", "-p", "dataset", "live"], "valid: \\['bundled-iqa', 'koniq10k'\\]"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, monkeypatch, args, match):
    monkeypatch.setenv("ROBUSTBOOK_RUNS", str(tmp_path))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:")
    import re
    assert re.search(match, err), err
    assert not any(tmp_path.iterdir())


def test_existing_run_folder_needs_force(tmp_path, capsys):
    out = tmp_path / "existing"
    out.mkdir()
    assert main(["run", "attacks", "--profile", "smoke", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


def _tiny_book(tmp_path: Path, source: str, timeout: int = 60) -> Path:
    book = tmp_path / "book"
    (book / "boom").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("profile = 'quick'\nrun_dir = None\nn = None")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(
        "from robustbook.chapter import start\nrun = start('boom', globals())\n" + source + "\nrun.finish()")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, book / "boom" / "boom.ipynb")
    (book / "boom" / "chapter.yml").write_text(
        f"name: boom\ntitle: Boom\nnotebook: boom.ipynb\ntimeout: {timeout}\n"
        "params:\n  n: {type: int, min: 0, default: 1}\n")
    return book


@pytest.mark.parametrize("source,timeout,match", [
    ("raise RuntimeError('chapter exploded')", 60, "chapter exploded"),
    ("import time; time.sleep(30)", 3, "(?i)timed out|timeout"),
])
def test_failing_chapter_exits_1_and_leaves_no_run_folder(tmp_path, source, timeout, match):
    book = _tiny_book(tmp_path, source, timeout)
    runs = tmp_path / "runs"
    r = cli("run", "boom", "--profile", "smoke", env={"ROBUSTBOOK_BOOK_DIR": str(book), "ROBUSTBOOK_RUNS": str(runs),
                                                      "ROBUSTBOOK_TIMEOUT_SCALE": "1"})
    assert r.returncode == 1, r.stderr
    import re
    assert re.search(match, r.stderr), r.stderr
    folders = [p for p in (runs / "boom").iterdir()] if (runs / "boom").exists() else []
    assert all(p.name.endswith(".failed.ipynb") for p in folders), folders


def test_notebook_validates_parameters_injected_by_papermill(tmp_path):
    import papermill as pm

    book = _tiny_book(tmp_path, "run.log('n', run.cfg.n)")
    os.environ["ROBUSTBOOK_BOOK_DIR"] = str(book)
    try:
        with pytest.raises(pm.PapermillExecutionError, match="did you mean 'n'"):
            pm.execute_notebook(str(book / "boom" / "boom.ipynb"), str(tmp_path / "out.ipynb"),
                                parameters={"nn": 3, "run_dir": str(tmp_path / "r")}, progress_bar=False,
                                kernel_name="python3")
        pm.execute_notebook(str(book / "boom" / "boom.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={"n": 3, "profile": "smoke", "run_dir": str(tmp_path / "r")},
                            progress_bar=False, kernel_name="python3")
    finally:
        del os.environ["ROBUSTBOOK_BOOK_DIR"]
    record = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert record["metrics"]["n"] == 3 and record["profile"] == "smoke" and record["params"] == {"n": 3}
    for key in ("versions", "device", "wall_time_s", "seed"):
        assert key in record


def test_staged_notebook_folds_parameter_cells(tmp_path):
    from robustbook.run import stage_notebook

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("profile = 'quick'", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("profile = 'smoke'", metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_markdown_cell("# Title")]
    nbformat.write(nb, tmp_path / "run.ipynb")
    stage_notebook(tmp_path / "run.ipynb", tmp_path / "staged.ipynb")
    tags = [c.metadata.get("tags", []) for c in nbformat.read(tmp_path / "staged.ipynb", as_version=4).cells]
    assert tags == [["parameters", "hide-cell"], ["injected-parameters", "hide-cell"], [], []]


@pytest.mark.parametrize("cfg,text", [({"seed": 3}, "Seed 3. "), ({"seeds": [0, 1, 2]}, "Seeds 0, 1, 2. "),
                                      ({"width": 4}, "Data: d. Rerun")])
def test_banner_names_the_seeds(tmp_path, cfg, text):
    from robustbook.chapter import Config, Run

    note = Run("attacks", "quick", Config(cfg), tmp_path).banner("d").data
    assert text in note and "n/a" not in note
