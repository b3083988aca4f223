"""The runner against hostile input and environments (issue 10) and the parallel book build (issue 9).

Every test uses small fake chapters in a temporary book folder (``ROBUSTBOOK_BOOK_DIR``), or
fails before any chapter runs.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from robustbook import run as runner
from robustbook.atomic import pid_alive
from robustbook.params import load_chapter
from robustbook.run import check_out, main

ROOT = Path(__file__).resolve().parents[1]


def fake_book(tmp_path: Path, chapters: dict[str, str], timeout: int = 120) -> Path:
    """A book folder with one chapter per ``name: source`` (the source runs between start() and finish())."""
    book = tmp_path / "book"
    for name, source in chapters.items():
        (book / name).mkdir(parents=True)
        nb = nbformat.v4.new_notebook()
        p = nbformat.v4.new_code_cell("profile = 'quick'\nrun_dir = None\nn = None")
        p.metadata["tags"] = ["parameters"]
        nb.cells = [p, nbformat.v4.new_code_cell(
            f"from robustbook.chapter import start\nrun = start({name!r}, globals())\n{source}\nrun.finish()")]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, book / name / f"{name}.ipynb")
        (book / name / "chapter.yml").write_text(
            f"name: {name}\ntitle: {name.title()}\nnotebook: {name}.ipynb\ntimeout: {timeout}\n"
            "params:\n  n: {type: int, min: 0, default: 1}\n")
    return book


def cli(*args: str, env: dict, cwd: Path = ROOT, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robustbook", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=cwd, timeout=600, **kw)


# -- 1. relative paths ------------------------------------------------------------------------
def test_relative_out_and_path_variables_are_taken_from_the_callers_folder(tmp_path):
    book = fake_book(tmp_path, {"where": "import os\nfrom robustbook.data.root import data_root\n"
                                         "run.log(data=str(data_root()), cwd=os.getcwd())"})
    work = tmp_path / "work"
    work.mkdir()
    r = cli("run", "where", "--profile", "smoke", "--out", "myrun",
            env={"ROBUSTBOOK_BOOK_DIR": str(book), "ROBUSTBOOK_DATA": "reldata", "ROBUSTBOOK_RUNS": "relruns"},
            cwd=work)
    assert r.returncode == 0, r.stderr
    record = json.loads((work / "myrun" / "metrics.json").read_text())
    assert record["metrics"]["data"] == str(work / "reldata")
    assert record["metrics"]["cwd"] == str(book / "where")   # the kernel does run in the chapter folder
    assert sorted(p.name for p in (book / "where").iterdir()) == ["chapter.yml", "where.ipynb"]


def test_path_variables_are_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    env = {"ROBUSTBOOK_DATA": "d", "ROBUSTBOOK_RUNS": "~/r", "ROBUSTBOOK_CACHE": "", "OTHER": "x"}
    runner.absolutize_path_env(env)
    assert env == {"ROBUSTBOOK_DATA": str(tmp_path / "d"), "ROBUSTBOOK_RUNS": str(Path.home() / "r"),
                   "ROBUSTBOOK_CACHE": "", "OTHER": "x"}


# -- 2. --force replaces only what the book wrote ------------------------------------------------
def test_force_refuses_a_folder_of_the_users_files(tmp_path, capsys):
    mine = tmp_path / "X" / "mine.txt"
    mine.parent.mkdir()
    mine.write_text("precious")
    assert main(["run", "attacks", "--profile", "smoke", "--out", str(mine.parent), "--force"]) == 2
    err = capsys.readouterr().err
    assert "not a run folder" in err and str(mine.parent) in err
    assert mine.read_text() == "precious"


@pytest.mark.parametrize("content,ok", [
    ({}, True),                                                        # empty
    ({".stamp": "abc"}, True),                                         # a run folder
    ({"metrics.json": '{"chapter": "a", "profile": "smoke"}'}, True),  # a run folder without stamp
    ({"metrics.json": '{"loss": 1}'}, False),                          # someone else's metrics
    ({"notes.txt": "x"}, False),
])
def test_force_accepts_only_empty_or_run_folders(tmp_path, content, ok):
    out = tmp_path / "out"
    out.mkdir()
    for name, text in content.items():
        (out / name).write_text(text)
    if ok:
        assert check_out(out, force=True) == out
    else:
        with pytest.raises(runner.ParameterError, match="not a run folder"):
            check_out(out, force=True)
    with pytest.raises(runner.ParameterError, match="--force"):
        check_out(out, force=False)


# -- 4. unwritable output ---------------------------------------------------------------------
def test_unwritable_out_exits_2_naming_the_path(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    for out, why in [(afile / "x", "is not a folder"), (afile, "is not a folder"),
                     # /proc refuses even root, so this case also covers a read-only parent folder
                     # (a chmod 0500 folder cannot: the suite runs as root, which writes into it anyway)
                     (Path("/proc/x/y"), "not writable")]:
        assert main(["run", "attacks", "--profile", "smoke", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and str(out) in err and why in err, err
        assert "Traceback" not in err


# -- timeouts -----------------------------------------------------------------------------------
def test_cell_timeout_scales_with_jobs_and_can_be_overridden(tmp_path, monkeypatch):
    spec = load_chapter(fake_book(tmp_path, {"t": "pass"}, timeout=100) / "t" / "chapter.yml")
    monkeypatch.delenv(runner.CELL_TIMEOUT_ENV, raising=False)
    monkeypatch.delenv(runner.TIMEOUT_SCALE_ENV, raising=False)
    assert runner.cell_timeout(spec, "quick") == 100 * runner.DEFAULT_TIMEOUT_SCALE
    assert runner.cell_timeout(spec, "quick", jobs=3) == 3 * 100 * runner.DEFAULT_TIMEOUT_SCALE
    monkeypatch.setenv(runner.TIMEOUT_SCALE_ENV, "1.5")
    assert runner.cell_timeout(spec, "quick", jobs=2) == 300
    monkeypatch.setenv(runner.CELL_TIMEOUT_ENV, "7")
    assert runner.cell_timeout(spec, "quick", jobs=2) == 7
    monkeypatch.setenv(runner.CELL_TIMEOUT_ENV, "0")
    assert runner.cell_timeout(spec, "quick") is None
    for var, bad in [(runner.CELL_TIMEOUT_ENV, "soon"), (runner.TIMEOUT_SCALE_ENV, "-1")]:
        monkeypatch.delenv(runner.CELL_TIMEOUT_ENV)
        monkeypatch.setenv(var, bad)
        with pytest.raises(runner.ParameterError, match=var):
            runner.cell_timeout(spec, "quick")


def test_plan_jobs_divides_the_cores():
    assert runner.plan_jobs(3, cores=2) == (2, 1)      # a 2-core laptop: two single-threaded chapters
    assert runner.plan_jobs(6, cores=8) == (4, 2)
    assert runner.plan_jobs(3, cores=16) == (3, 5)     # never more jobs than chapters
    assert runner.plan_jobs(3, jobs=2, cores=2) == (2, 1)
    assert runner.plan_jobs(1, cores=1) == (1, 1)
    with pytest.raises(runner.ParameterError, match="--jobs"):
        runner.plan_jobs(3, jobs=0)


def test_single_run_is_single_threaded_on_small_machines():
    assert runner.single_run_threads(cores=2) == 1      # 2 OpenMP threads on 2 busy cores spin (CIFS 18x slower)
    assert runner.single_run_threads(cores=8) == 8


def test_chapter_env_sets_threads_unless_the_user_did(tmp_path, monkeypatch):
    spec = load_chapter(fake_book(tmp_path, {"t": "pass"}, timeout=10) / "t" / "chapter.yml")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", runner.CELL_TIMEOUT_ENV, runner.TIMEOUT_SCALE_ENV):
        monkeypatch.delenv(var, raising=False)
    env = runner.chapter_env(spec, "quick", jobs=2, threads=3)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"
    assert env[runner.CELL_TIMEOUT_ENV] == str(round(10 * runner.DEFAULT_TIMEOUT_SCALE * 2))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert runner.chapter_env(spec, "quick", jobs=2, threads=3)["OMP_NUM_THREADS"] == "1"


# -- 3 and 9. concurrent runs, interrupts ---------------------------------------------------------
SLOW = ("import os, pathlib, time\n"
        "pathlib.Path(os.environ['MARKER']).write_text(str(os.getpid()))\n"
        "time.sleep(600)")


def _wait_for(path: Path, proc: subprocess.Popen, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended early:\n{proc.stderr.read()}")
        assert time.monotonic() < deadline, "the chapter never started"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_second_run_is_refused_and_an_interrupt_cleans_up(tmp_path, sig):
    book = fake_book(tmp_path, {"slow": SLOW})
    marker = tmp_path / "started"
    out = tmp_path / "runs" / "C"
    env = {**os.environ, "ROBUSTBOOK_BOOK_DIR": str(book), "MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, "-m", "robustbook", "run", "slow", "--profile", "smoke",
                             "--out", str(out)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(marker, proc)
        kernel = int(marker.read_text())
        partials = [p for p in out.parent.iterdir() if p.name.endswith(".partial")]
        assert len(partials) == 1
        second = cli("run", "slow", "--profile", "smoke", "--out", str(out), env=env)
        assert second.returncode == 2 and "another run is writing" in second.stderr, second.stderr
        assert partials[0].is_dir(), "the second run swept the first run's live folder"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    assert err.strip().splitlines() == ["interrupted; nothing written"], err
    assert not out.exists()
    assert list(out.parent.iterdir()) == []
    deadline = time.monotonic() + 30
    while pid_alive(kernel) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pid_alive(kernel), "the kernel outlived the interrupted run"


# -- A. the parallel book build -------------------------------------------------------------------
def rendezvous(me: str, other: str) -> str:
    """A chapter that finishes only once the other chapter has started: proof they overlap."""
    return ("import os, pathlib, time\n"
            "d = pathlib.Path(os.environ['RENDEZVOUS'])\n"
            f"(d / {me!r}).write_text('started')\n"
            "deadline = time.monotonic() + 300\n"
            f"while not (d / {other!r}).exists():\n"
            "    assert time.monotonic() < deadline, 'the other chapter never started: they ran one after the other'\n"
            "    time.sleep(0.2)\n"
            "run.log(threads=os.environ.get('OMP_NUM_THREADS'))")


@pytest.mark.slow
def test_chapters_run_concurrently_with_prefixed_output(tmp_path, monkeypatch, capsys):
    book = fake_book(tmp_path, {"one": rendezvous("one", "two"), "two": rendezvous("two", "one")})
    (tmp_path / "meet").mkdir()
    monkeypatch.setenv("ROBUSTBOOK_BOOK_DIR", str(book))
    monkeypatch.setenv("RENDEZVOUS", str(tmp_path / "meet"))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    specs = runner.discover(book)
    tasks = [(specs[n], tmp_path / "runs" / n) for n in ("one", "two")]
    results = runner.run_chapters(tasks, "smoke", jobs=2, threads=1)
    assert [(r.name, r.returncode) for r in results] == [("one", 0), ("two", 0)], [r.tail for r in results]
    for n in ("one", "two"):
        assert json.loads((tmp_path / "runs" / n / "metrics.json").read_text())["metrics"]["threads"] == "1"
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("[one] ") and "finished in" in line for line in out), out
    assert any(line.startswith("[two] [robustbook] running two") for line in out), out


@pytest.mark.slow
def test_book_runs_every_chapter_and_lists_failures(tmp_path, monkeypatch, capsys):
    root = tmp_path / "repo"
    book = fake_book(root, {"good": "run.log('n', 1)", "bad": "raise RuntimeError('chapter exploded')"})
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                   "- file: book/bad/bad\n- file: book/good/good\n")
    (root / "book" / "intro.md").write_text("# Intro\n")
    for name in ("_config.yml", "references.bib"):
        (root / name).write_text("")
    monkeypatch.setattr(runner, "project_root", lambda: root)
    monkeypatch.setenv("ROBUSTBOOK_BOOK_DIR", str(book))
    monkeypatch.setenv("ROBUSTBOOK_RUNS", str(tmp_path / "runs"))
    assert main(["book", "--profile", "smoke", "--jobs", "2", "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "1 of 2 chapter(s) failed" in err and "--- bad (exit 1)" in err and "chapter exploded" in err, err
    good = list((tmp_path / "runs" / "good").glob("smoke-*/metrics.json"))
    assert len(good) == 1, "the failure of one chapter stopped the other"
    assert not (tmp_path / "out" / "_build" / "html").exists()


@pytest.mark.slow
def test_interrupted_book_stops_every_chapter(tmp_path):
    root = tmp_path / "repo"
    slow = ("import os, pathlib, time\n"
            "pathlib.Path(os.environ['MARKERS'], run.chapter).write_text(str(os.getpid()))\n"
            "time.sleep(600)")
    book = fake_book(root, {"s1": slow, "s2": slow})
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n"
                                   "chapters:\n- file: book/s1/s1\n- file: book/s2/s2\n")
    (root / "book" / "intro.md").write_text("# Intro\n")
    for name in ("_config.yml", "references.bib"):
        (root / name).write_text("")
    markers = tmp_path / "markers"
    markers.mkdir()
    runs = tmp_path / "runs"
    code = ("import sys; from pathlib import Path; import robustbook.run as r\n"
            f"r.project_root = lambda: Path({str(root)!r})\n"
            f"sys.exit(r.main(['book', '--profile', 'smoke', '--jobs', '2', '--output', {str(tmp_path / 'out')!r}]))")
    env = {**os.environ, "ROBUSTBOOK_BOOK_DIR": str(book), "ROBUSTBOOK_RUNS": str(runs), "MARKERS": str(markers)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for name in ("s1", "s2"):
            _wait_for(markers / name, proc)
        kernels = [int((markers / n).read_text()) for n in ("s1", "s2")]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("interrupted;"), err
    assert "Traceback" not in out + err
    assert sorted(p.name for p in runs.rglob("*") if p.name.startswith(".")) == []   # no partial left
    deadline = time.monotonic() + 30
    while any(pid_alive(k) for k in kernels) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(pid_alive(k) for k in kernels), "a kernel outlived the interrupted book"
