"""The chapter runner: ``python -m robustbook list | run | book | audit``.

* ``list`` prints every chapter with its parameters, types and per-profile defaults.
* ``run CHAPTER [--profile P] [-p NAME VALUE]... [--out DIR] [--force]`` executes the
  chapter's notebook with papermill into ``runs/CHAPTER/<profile>-<hash>/``: the
  executed notebook, ``metrics.json`` and ``figures/``. The folder appears only
  when the run succeeded (it is built under a temporary name and renamed).
  ``--force`` replaces only an empty folder or a run folder this book wrote.
* ``book [--profile quick] [--jobs N]`` executes every chapter of ``_toc.yml``
  (reusing runs whose notebook, chapter.yml and library sources are unchanged),
  ``N`` chapters at a time, each in its own ``run`` process, and renders the book
  with Jupyter Book into ``_build/html``.
* ``audit --model SPEC [--profile P] [--out DIR]`` writes the robustness report card of a quality
  model (:mod:`robustbook.audit.cli`).

Bad input exits with status 2 and a message listing what is valid, before
anything runs or is written. A failing chapter exits with status 1 (the book
runs the other chapters first, then lists the failures). SIGINT/SIGTERM stop the
kernel, remove the unfinished run folder and exit with 130/143.

Cell timeouts detect hangs, not slow machines: a cell may run for its
``chapter.yml`` timeout times ``$ROBUSTBOOK_TIMEOUT_SCALE`` (default 4) times the
number of chapters running at once; ``$ROBUSTBOOK_CELL_TIMEOUT`` sets the limit in
seconds instead (0: none). See :func:`cell_timeout`.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from robustbook.atomic import atomic_dir, file_lock
from robustbook.parallel import WORKERS_ENV
from robustbook.params import PROFILES, ChapterSpec, ParameterError, discover, find_chapter, params_hash
from robustbook.paths import book_dir, project_root, runs_dir

STAMP = ".stamp"
#: environment variables holding paths: made absolute before any kernel starts (its cwd is the chapter folder)
PATH_ENV_VARS = ("ROBUSTBOOK_BOOK_DIR", "ROBUSTBOOK_RUNS", "ROBUSTBOOK_CACHE", "ROBUSTBOOK_DATA")
TIMEOUT_SCALE_ENV = "ROBUSTBOOK_TIMEOUT_SCALE"
CELL_TIMEOUT_ENV = "ROBUSTBOOK_CELL_TIMEOUT"
DEFAULT_TIMEOUT_SCALE = 4.0


class RunFailed(RuntimeError):
    """A chapter raised, or a cell ran past its timeout."""


def _parse_value(text: str) -> Any:
    """Command-line values are YAML scalars or lists: ``3``, ``0.5``, ``true``, ``[1, 2]``, ``adam``."""
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, ValueError):
        return text


def source_stamp(spec: ChapterSpec) -> str:
    """Hash of what determines a chapter's output: its notebook's code and text, its
    chapter.yml and the library's sources."""
    h = hashlib.sha256()
    nb = json.loads(spec.notebook.read_text())
    for cell in nb.get("cells", []):
        h.update(cell.get("cell_type", "").encode())
        h.update("".join(cell.get("source", "")).encode())
    h.update((spec.folder / "chapter.yml").read_bytes())
    for p in sorted(spec.folder.glob("*.py")):  # the chapter's helper module
        h.update(p.name.encode())
        h.update(p.read_bytes())
    lib = Path(__file__).resolve().parent
    for p in sorted(lib.rglob("*.py")):
        h.update(str(p.relative_to(lib)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def default_out(spec: ChapterSpec, profile: str, params: dict) -> Path:
    return runs_dir() / spec.name / f"{profile}-{params_hash(profile, params)}"


def absolutize_path_env(environ: dict[str, str] | None = None) -> None:
    """Make every ``ROBUSTBOOK_*`` path variable absolute (relative to the current folder).

    A kernel runs in its chapter's folder, so ``ROBUSTBOOK_DATA=reldata`` would
    otherwise mean ``book/<chapter>/reldata`` inside the kernel.
    """
    env = os.environ if environ is None else environ
    for var in PATH_ENV_VARS:
        value = env.get(var)
        if value:
            env[var] = os.path.abspath(os.path.expanduser(value))


def cell_timeout(spec: ChapterSpec, profile: str, jobs: int = 1) -> int | None:
    """Seconds one cell may run before it is taken for a hang; ``None``: no limit.

    ``chapter.yml``'s ``timeout`` is what a cell needs at most on two free cores.
    A slower or busier machine must not fail for being slow, so the limit is that
    times ``$ROBUSTBOOK_TIMEOUT_SCALE`` (default 4) times ``jobs``, the number of
    chapters sharing the machine. ``$ROBUSTBOOK_CELL_TIMEOUT`` (seconds; 0 = no
    limit) replaces the rule.
    """
    raw = os.environ.get(CELL_TIMEOUT_ENV, "").strip()
    if raw:
        try:
            seconds = float(raw)
        except ValueError:
            raise ParameterError(f"{CELL_TIMEOUT_ENV}={raw!r} is not a number of seconds (0 = no limit)") from None
        return None if seconds <= 0 else max(1, round(seconds))
    raw = os.environ.get(TIMEOUT_SCALE_ENV, "").strip()
    try:
        scale = float(raw) if raw else DEFAULT_TIMEOUT_SCALE
    except ValueError:
        scale = -1.0
    if not scale > 0:
        raise ParameterError(
            f"{TIMEOUT_SCALE_ENV}={raw!r} must be a positive number (default {DEFAULT_TIMEOUT_SCALE:g})")
    return max(1, round(spec.cell_timeout(profile) * scale * max(1, jobs)))


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` is a run folder this book wrote: it has a ``.stamp``, or a run's ``metrics.json``."""
    if (path / STAMP).is_file():
        return True
    try:
        record = json.loads((path / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "chapter" in record and "profile" in record


def check_out(out: str | os.PathLike, *, force: bool) -> Path:
    """The absolute run folder ``out``, or :class:`ParameterError` saying why it cannot be written.

    ``--force`` replaces an existing folder only when it is empty or a run folder
    (:func:`is_run_folder`): never a folder of the user's own files.
    """
    out = Path(os.path.abspath(os.path.expanduser(out)))
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise ParameterError(f"run folder {out} exists and is not a folder; choose another --out")
        if not force:
            raise ParameterError(f"run folder {out} exists; pass --force to overwrite it, or --out DIR")
        try:
            empty = next(out.iterdir(), None) is None
        except OSError as exc:
            raise ParameterError(f"cannot read run folder {out}: {exc.strerror}") from None
        if not empty and not is_run_folder(out):
            raise ParameterError(
                f"{out} is not a run folder this book wrote (no {STAMP}, no run's metrics.json) and is not "
                f"empty; --force replaces only those. Choose another --out, or empty it yourself")
    existing = out.parent
    while not (existing.exists() or existing.is_symlink()):
        existing = existing.parent
    if not existing.is_dir():
        raise ParameterError(f"cannot write run folder {out}: {existing} is not a folder")
    try:  # a probe file: os.access says yes to root on read-only mounts and /proc
        fd, probe = tempfile.mkstemp(prefix=".robustbook-probe.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ParameterError(f"cannot write run folder {out}: {existing} is not writable ({exc.strerror})") from None
    return out


# -- interrupts -------------------------------------------------------------------------
_received: list[int] = []


def _on_signal(signum: int, frame: Any) -> None:
    if _received:  # already stopping: let the cleanup finish
        return
    _received.append(signum)
    # the event loop papermill runs in logs the kernel's death (with a traceback) while it winds
    # down; the user asked to stop, so one line says what happened and nothing else is printed
    logging.disable(logging.CRITICAL)
    raise KeyboardInterrupt


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt once, so every ``finally`` runs: the
    kernel is shut down and the temporary run folder removed. Later signals are ignored
    while that cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        logging.disable(logging.NOTSET)


def _exit_status() -> int:
    return 128 + (_received[0] if _received else signal.SIGINT)


def _skip_sync_state(self: Any) -> None:
    """nbclient's Output-widget mimic, without echoing its outputs back to the kernel."""


def quiet_output_widgets() -> None:
    """Stop nbclient's Output-widget mimic from echoing its state to the kernel on the shell channel.

    While a cell runs, nbclient awaits the cell's reply on the shell socket; its mimic of an ipywidgets
    Output widget (what ``interact`` draws into) sends a ``comm_msg`` on that same socket for every
    output. On a busy machine the await then misses the reply and the cell hangs until its timeout
    (jupyter/nbclient#312; measured here: a one-cell ``interact`` notebook hung in 3 of 5 executions
    beside two busy loops, 0 of 10 with this). Nothing reads the echo in a batch run: the outputs
    still go into the notebook's widget state, which is what the rendered page shows.
    """
    from nbclient.output_widget import OutputWidget

    OutputWidget.sync_state = _skip_sync_state  # type: ignore[method-assign]


def execute(spec: ChapterSpec, profile: str, params: dict, out: Path, *, force: bool = False,
            quiet: bool = False) -> Path:
    """Execute ``spec``'s notebook into ``out`` (atomically). Returns ``out`` (absolute)."""
    import papermill as pm

    quiet_output_widgets()

    out = check_out(out, force=force)
    timeout = cell_timeout(spec, profile)
    with file_lock(out, blocking=False) as mine:
        if not mine:
            raise ParameterError(f"another run is writing {out} right now; wait for it, or choose another --out")
        t0 = time.perf_counter()
        if not quiet:
            print(f"[robustbook] running {spec.name} ({profile}) -> {_display(out)}", flush=True)
        with atomic_dir(out) as tmp, tempfile.TemporaryFile("w+", errors="replace") as kernel_log:
            executed = tmp / spec.notebook.name
            try:
                pm.execute_notebook(
                    str(spec.notebook), str(executed),
                    parameters={"profile": profile, "run_dir": str(tmp), **params},
                    kernel_name="python3", cwd=str(spec.folder), progress_bar=False,
                    execution_timeout=timeout, report_mode=False,
                    kernel_manager_class=_kernel_manager_class(kernel_log),
                )
            except Exception as exc:  # PapermillExecutionError, CellTimeoutError, DeadKernelError
                if _received:  # the kernel died of the same signal: this is an interrupt, not a failure
                    raise KeyboardInterrupt from exc
                failed = out.parent / f"{out.name}.failed.ipynb"
                if executed.exists():
                    shutil.copy(executed, failed)
                msg = str(exc).strip().splitlines()
                detail = "\n".join(msg[-12:])
                log = _log_tail(kernel_log)
                raise RunFailed(f"chapter {spec.name!r} failed at profile {profile!r}:\n{detail}\n"
                                + (f"the kernel's own output ended with:\n{log}\n" if log else "")
                                + f"(the executed notebook is kept at {failed})") from exc
            _rewrite_run_dir(executed, tmp, out)
            if not (tmp / "metrics.json").is_file():
                raise RunFailed(f"chapter {spec.name!r} finished but wrote no metrics.json (did it call run.finish()?)")
            _rewrite_metrics_paths(tmp / "metrics.json", tmp, out)
            (tmp / STAMP).write_text(source_stamp(spec))
    if not quiet:
        print(f"[robustbook] {spec.name} done in {time.perf_counter() - t0:.1f} s", flush=True)
    return out


def _kernel_manager_class(log: Any) -> type:
    """A kernel manager whose kernel writes its own stdout/stderr (ipykernel's warnings, the
    traceback of a kernel shut down mid-cell) to ``log`` instead of the terminal. Cell output
    is unaffected: it reaches the notebook through the kernel's messages."""
    from jupyter_client.manager import AsyncKernelManager

    class KernelWithLog(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            kw.setdefault("stdout", log)
            kw.setdefault("stderr", log)
            await super().start_kernel(**kw)

    return KernelWithLog


_KERNEL_NOISE = ("running over TCP without encryption",)


def _log_tail(log: Any, n: int = 10) -> str:
    """The last ``n`` lines the kernel process printed itself (noise left out)."""
    try:
        log.flush()
        log.seek(0)
        lines = [line.rstrip() for line in log if line.strip() and not any(x in line for x in _KERNEL_NOISE)]
    except (OSError, ValueError):
        return ""
    return "\n".join(lines[-n:])


def _rewrite_run_dir(nb_path: Path, tmp: Path, final: Path) -> None:
    """The notebook was run in a temporary folder; show the final folder in its text."""
    text = nb_path.read_text().replace(str(tmp), _display(final))
    nb_path.write_text(text)


def _rewrite_metrics_paths(path: Path, tmp: Path, final: Path) -> None:
    path.write_text(path.read_text().replace(str(tmp), _display(final)))


def _display(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(project_root()))
    except ValueError:
        return str(p)


# -- the book ---------------------------------------------------------------------------
def toc_notebooks(root: Path) -> list[Path]:
    """Files named in ``_toc.yml``, in order, relative to ``root``."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files: list[str] = [toc["root"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk({k: v for k, v in toc.items() if k != "root"})
    return [Path(f) for f in files]


#: Cells the rendered page folds away (a "show" toggle keeps them one click from the reader).
FOLDED_TAGS = ("parameters", "injected-parameters")


def stage_notebook(executed: Path, dest: Path) -> None:
    """Copy an executed chapter into the book's staging folder, folding its parameter cells.

    The parameters cell and papermill's injected cell matter to someone re-running the
    chapter, not to someone reading it: Jupyter Book's ``hide-cell`` tag folds them.
    """
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if any(t in tags for t in FOLDED_TAGS) and "hide-cell" not in tags:
            cell.setdefault("metadata", {})["tags"] = [*tags, "hide-cell"]
    nbformat.write(nb, dest)


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def plan_jobs(n_chapters: int, jobs: int | None = None, cores: int | None = None) -> tuple[int, int]:
    """``(chapters at once, torch threads each)`` for executing ``n_chapters``.

    Default: one single-threaded chapter per core on up to 3 cores (a 2-core laptop runs
    two chapters side by side), one chapter per two cores above that. The book's small
    models gain little from more than a few intra-op threads, so independent chapters
    side by side use the cores better than one chapter with all of them, and two torch
    threads on two cores that are also busy with something else thrash. The cores are
    divided among the chapters running at once, never oversubscribed unless ``jobs``
    asks for it.
    """
    cores = cores or available_cores()
    if jobs is None:
        # two torch threads on two busy cores thrash (a smoke chapter measured 8x slower beside
        # another process), so small machines run one single-threaded chapter per core
        jobs = cores if cores <= 3 else cores // 2
    if jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, got {jobs}")
    jobs = max(1, min(jobs, n_chapters))
    return jobs, max(1, cores // jobs)


def single_run_threads(cores: int | None = None) -> int:
    """Torch (OpenMP/MKL) threads of one ``python -m robustbook run`` unless the user set them: 1 on
    machines with up to 3 cores, else all of them. On a small machine that is also busy, two OpenMP
    threads spin at every barrier waiting for a core: a CIFS training step (double backward, many
    small ops) measured 18× slower with 2 threads than with 1 on 2 busy cores, a vanilla one 7.6×.
    """
    cores = cores or available_cores()
    return 1 if cores <= 3 else cores


def run_workers(threads: str | int, cores: int | None = None) -> int:
    """Processes for a chapter's independent jobs (:mod:`robustbook.parallel`) in one ``run``: the
    cores its torch threads leave (2 single-threaded workers on a 2-core laptop, 1 where the run
    already has every core as threads). A malformed thread count counts as 1 thread."""
    try:
        n = max(1, int(threads))
    except ValueError:
        n = 1
    return max(1, (cores or available_cores()) // n)


@dataclass
class ChapterResult:
    """How one chapter's ``run`` process ended (``returncode`` None: never started)."""

    name: str
    out: Path
    returncode: int | None
    seconds: float = 0.0
    tail: list[str] = field(default_factory=list)


def chapter_env(spec: ChapterSpec, profile: str, jobs: int, threads: int) -> dict[str, str]:
    """The environment of a chapter's ``run`` process (its kernel inherits it): ``threads``
    OpenMP/MKL threads (torch's default follows ``OMP_NUM_THREADS``) unless the user set
    them, and the cell timeout for ``jobs`` chapters at once unless the user set one."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, str(threads))
    if not env.get(CELL_TIMEOUT_ENV, "").strip():
        env[CELL_TIMEOUT_ENV] = str(cell_timeout(spec, profile, jobs) or 0)
    env.setdefault(WORKERS_ENV, str(run_workers(threads, max(1, available_cores() // jobs))))  # its share of cores
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_chapters(tasks: Sequence[tuple[ChapterSpec, Path]], profile: str, *, jobs: int | None = None,
                 threads: int | None = None) -> list[ChapterResult]:
    """Execute chapters ``jobs`` at a time, each as ``python -m robustbook run`` into its folder.

    Every line a chapter prints is echoed prefixed with its name, and a summary line
    follows when it ends. A failing chapter does not stop the others. On
    KeyboardInterrupt (SIGINT/SIGTERM) the running chapters get SIGTERM (each stops
    its kernel and removes its unfinished folder), pending ones never start, and the
    interrupt is re-raised once they have exited.
    """
    if not tasks:
        return []
    n_jobs, n_threads = plan_jobs(len(tasks), jobs)
    threads = threads or n_threads
    width = max(len(spec.name) for spec, _ in tasks)
    lock = threading.Lock()
    stopping = threading.Event()
    procs: set[subprocess.Popen] = set()

    def say(name: str, line: str) -> None:
        with lock:
            print(f"[{name:<{width}}] {line}", flush=True)

    def one(spec: ChapterSpec, out: Path) -> ChapterResult:
        cmd = [sys.executable, "-m", "robustbook", "run", spec.name, "--profile", profile, "--out", str(out), "--force"]
        env = chapter_env(spec, profile, n_jobs, threads)
        with lock:
            if stopping.is_set():
                return ChapterResult(spec.name, out, None)
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    text=True, errors="replace", env=env, bufsize=1)
            procs.add(proc)
        t0 = time.perf_counter()
        tail: deque[str] = deque(maxlen=15)
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            if not stopping.is_set():  # once the user interrupts, a dying chapter's output is noise
                say(spec.name, line)
        rc = proc.wait()
        with lock:
            procs.discard(proc)
        dt = time.perf_counter() - t0
        say(spec.name, f"finished in {dt:.0f} s" if rc == 0 else f"FAILED (exit {rc}) after {dt:.0f} s")
        return ChapterResult(spec.name, out, rc, dt, list(tail))

    pool = ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="chapter")
    futures = [pool.submit(one, spec, out) for spec, out in tasks]
    try:
        results = [f.result() for f in futures]
    except BaseException:
        stopping.set()
        with lock:
            live = [p for p in procs if p.poll() is None]
        for p in live:
            with contextlib.suppress(OSError):
                p.send_signal(signal.SIGTERM)
        for p in live:
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def build_book(profile: str = "quick", output: Path | None = None, *, strict: bool = True,
               jobs: int | None = None) -> Path:
    """Execute (or reuse) every chapter in ``_toc.yml`` at ``profile`` and render HTML.

    Chapters to execute run ``jobs`` at a time (:func:`plan_jobs`); when any fails
    the others still finish, and :class:`RunFailed` lists the failures (nothing is rendered).
    """
    root = project_root()
    chapters = {spec.notebook.resolve(): spec for spec in discover(book_dir()).values()}
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        if not (root / name).is_file():
            raise ParameterError(f"{root / name} is missing: the book cannot be built without it")
    stage = (output or root / "_build") / "stage"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(root / name, stage / name)
    shutil.copytree(root / "book", stage / "book",
                    ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__"))
    staged: list[tuple[Path, Path]] = []
    pending: list[tuple[ChapterSpec, Path]] = []
    for rel in toc_notebooks(root):
        candidates = [root / rel] if rel.suffix else [root / f"{rel}.ipynb", root / f"{rel}.md"]
        src = next((c for c in candidates if c.is_file()), None)
        if src is None:
            raise ParameterError(f"_toc.yml names {rel}, which does not exist")
        if src.suffix != ".ipynb":
            continue  # Markdown pages were staged with book/
        spec = chapters.get(src.resolve())
        if spec is None:
            raise ParameterError(f"{src} is in _toc.yml but no chapter.yml declares it")
        params = spec.resolve(profile)
        out = default_out(spec, profile, params)
        stamp = out / STAMP
        if stamp.is_file() and stamp.read_text() == source_stamp(spec):
            print(f"[robustbook] {spec.name}: reusing {_display(out)} (unchanged)", flush=True)
        else:
            pending.append((spec, out))
        staged.append((out / spec.notebook.name, stage / src.relative_to(root)))
    if pending:
        n_jobs, threads = plan_jobs(len(pending), jobs)
        print(f"[robustbook] executing {len(pending)} chapter(s), {n_jobs} at a time, {threads} thread(s) each",
              flush=True)
        results = run_chapters(pending, profile, jobs=n_jobs, threads=threads)
        failed = [r for r in results if r.returncode != 0]
        for r in results:
            print(f"[robustbook] {r.name}: " + ("ok" if r.returncode == 0 else f"FAILED (exit {r.returncode})")
                  + f", {r.seconds:.0f} s", flush=True)
        if failed:
            lines = [f"{len(failed)} of {len(results)} chapter(s) failed; the book was not rendered:"]
            for r in failed:
                lines.append(f"--- {r.name} (exit {r.returncode}); rerun: python -m robustbook run {r.name} "
                             f"--profile {profile}")
                lines += [f"    {t}" for t in r.tail[-8:]]
            raise RunFailed("\n".join(lines))
    for executed, dest in staged:
        stage_notebook(executed, dest)
    html_root = output or root
    jb = Path(sys.executable).parent / "jupyter-book"
    if not jb.is_file():
        raise RunFailed(f"jupyter-book is not installed beside {sys.executable}; run `make setup`")
    cmd = [str(jb), "build", str(stage), "--path-output", str(html_root)]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    print("[robustbook] " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=root)
    if proc.returncode != 0:
        raise RunFailed("jupyter-book build failed (warnings are errors); see its output above")
    index = html_root / "_build" / "html" / "index.html"
    print(f"[robustbook] the book is at {index}")
    return index


# -- command line -----------------------------------------------------------------------
def cmd_list(chapters: dict[str, ChapterSpec]) -> None:
    for spec in chapters.values():
        print(f"{spec.name}: {spec.title}  ({_display(spec.notebook)}){'  [draft]' if spec.draft else ''}")
        width = max((len(n) for n in spec.params), default=4)
        print(f"  {'parameter':<{width}}  {'type':<11}  " + "  ".join(f"{p:<14}" for p in PROFILES) + "  help")
        for p in spec.params.values():
            vals = "  ".join(f"{_short(p.profiles[pr]):<14}" for pr in PROFILES)
            rng = p.describe()[len(p.name) + 2 + len(p.type):].strip(", )")
            print(f"  {p.name:<{width}}  {p.type:<11}  {vals}  {p.help}{' [' + rng + ']' if rng else ''}")
        print()


def _short(v: Any) -> str:
    s = json.dumps(v)
    return s if len(s) <= 14 else s[:11] + "..."


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m robustbook", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list chapters and their parameters")
    r = sub.add_parser("run", help="execute one chapter")
    r.add_argument("chapter")
    r.add_argument("--profile", default="quick", help=f"one of {', '.join(PROFILES)} (default quick)")
    r.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override one parameter (repeatable); VALUE is YAML: 3, 0.5, true, [1, 2]")
    r.add_argument("--out", type=Path, default=None, help="run folder (default runs/CHAPTER/<profile>-<hash>)")
    r.add_argument("--force", action="store_true", help="overwrite an existing run folder")
    b = sub.add_parser("book", help="execute every chapter and render the book")
    b.add_argument("--profile", default="quick", help=f"one of {', '.join(PROFILES)} (default quick)")
    b.add_argument("--output", type=Path, default=None,
                   help="build root (default: the repository; HTML in _build/html)")
    b.add_argument("--jobs", "-j", type=int, default=None,
                   help=("chapters executed at once (default: one per core on up to 3 cores, one per two cores "
                         "above; at most the number of chapters)"))
    from robustbook.audit.cli import add_parser as add_audit_parser  # the report card of any quality model

    add_audit_parser(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    absolutize_path_env()
    with _interruptible():
        try:
            return _main(args)
        except ParameterError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except RunFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            what = ("finished chapters are kept, the book was not rendered" if args.command == "book"
                    else "finished attacks are kept; rerun to resume" if args.command == "audit"
                    else "nothing written")
            print(f"interrupted; {what}", file=sys.stderr, flush=True)
            # papermill's cell task dies with the kernel; asyncio would log that never-awaited task's
            # DeadKernelError at interpreter exit, after the line above (a race the tests caught)
            logging.getLogger("asyncio").disabled = True
            return _exit_status()


def _main(args: argparse.Namespace) -> int:
    if args.command == "audit":
        from robustbook.audit.cli import main_audit

        return main_audit(args)
    chapters = discover(book_dir())
    if args.command == "list":
        cmd_list(chapters)
        return 0
    if args.command == "book":
        if args.profile not in PROFILES:
            raise ParameterError(f"unknown profile {args.profile!r}; valid: {list(PROFILES)}")
        if args.jobs is not None and args.jobs < 1:
            raise ParameterError(f"--jobs must be at least 1, got {args.jobs}")
        output = Path(os.path.abspath(os.path.expanduser(args.output))) if args.output else None
        build_book(args.profile, output, jobs=args.jobs)
        return 0
    spec = find_chapter(chapters, args.chapter)
    overrides: dict[str, Any] = {}
    for name, value in args.param:
        if name in overrides:
            raise ParameterError(f"parameter {name!r} given twice")
        overrides[name] = _parse_value(value)
    params = spec.resolve(args.profile, overrides)
    out = check_out(args.out or default_out(spec, args.profile, params), force=args.force)
    cell_timeout(spec, args.profile)  # a malformed timeout variable is bad input: exit 2 before anything runs
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # the kernel inherits them (the book build sets its own)
        os.environ.setdefault(var, str(single_run_threads()))
    os.environ.setdefault(WORKERS_ENV, str(run_workers(os.environ["OMP_NUM_THREADS"])))
    out = execute(spec, args.profile, params, out, force=args.force)
    print(out / "metrics.json")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
