"""The chapter runner: ``python -m robustbook list | run | book``.

* ``list`` prints every chapter with its parameters, types and per-profile defaults.
* ``run CHAPTER [--profile P] [-p NAME VALUE]... [--out DIR] [--force]`` executes the
  chapter's notebook with papermill into ``runs/CHAPTER/<profile>-<hash>/``: the
  executed notebook, ``metrics.json`` and ``figures/``. The folder appears only
  when the run succeeded (it is built under a temporary name and renamed).
* ``book [--profile quick]`` executes every chapter of ``_toc.yml`` (reusing runs
  whose notebook, chapter.yml and library sources are unchanged) and renders
  the book with Jupyter Book into ``_build/html``.

Bad input exits with status 2 and a message listing what is valid, before
anything runs or is written. A failing chapter exits with status 1.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import yaml

from robustbook.atomic import atomic_dir
from robustbook.params import PROFILES, ChapterSpec, ParameterError, discover, find_chapter, params_hash
from robustbook.paths import book_dir, project_root, runs_dir

STAMP = ".stamp"


class RunFailed(RuntimeError):
    """A chapter raised, or a cell ran past its timeout."""


def _parse_value(text: str) -> Any:
    """Command-line values are YAML scalars or lists: ``3``, ``0.5``, ``true``, ``[1, 2]``, ``adam``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
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
    lib = Path(__file__).resolve().parent
    for p in sorted(lib.rglob("*.py")):
        h.update(str(p.relative_to(lib)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def default_out(spec: ChapterSpec, profile: str, params: dict) -> Path:
    return runs_dir() / spec.name / f"{profile}-{params_hash(profile, params)}"


def execute(spec: ChapterSpec, profile: str, params: dict, out: Path, *, force: bool = False,
            quiet: bool = False) -> Path:
    """Execute ``spec``'s notebook into ``out`` (atomically). Returns ``out``."""
    import papermill as pm

    out = Path(out)
    if out.exists() and not force:
        raise ParameterError(f"run folder {out} exists; pass --force to overwrite it, or --out DIR")
    t0 = time.perf_counter()
    if not quiet:
        print(f"[robustbook] running {spec.name} ({profile}) -> {out}", flush=True)
    with atomic_dir(out) as tmp:
        executed = tmp / spec.notebook.name
        try:
            pm.execute_notebook(
                str(spec.notebook), str(executed),
                parameters={"profile": profile, "run_dir": str(tmp), **params},
                kernel_name="python3", cwd=str(spec.folder), progress_bar=False,
                execution_timeout=spec.cell_timeout(profile), report_mode=False,
            )
        except Exception as exc:  # PapermillExecutionError, CellTimeoutError, DeadKernelError
            failed = out.parent / f"{out.name}.failed.ipynb"
            if executed.exists():
                shutil.copy(executed, failed)
            msg = str(exc).strip().splitlines()
            detail = "\n".join(msg[-12:])
            raise RunFailed(f"chapter {spec.name!r} failed at profile {profile!r}:\n{detail}\n"
                            f"(the executed notebook is kept at {failed})") from exc
        _rewrite_run_dir(executed, tmp, out)
        if not (tmp / "metrics.json").is_file():
            raise RunFailed(f"chapter {spec.name!r} finished but wrote no metrics.json (did it call run.finish()?)")
        _rewrite_metrics_paths(tmp / "metrics.json", tmp, out)
        (tmp / STAMP).write_text(source_stamp(spec))
    if not quiet:
        print(f"[robustbook] {spec.name} done in {time.perf_counter() - t0:.1f} s", flush=True)
    return out


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


def build_book(profile: str = "quick", output: Path | None = None, *, strict: bool = True) -> Path:
    """Execute (or reuse) every chapter in ``_toc.yml`` at ``profile`` and render HTML."""
    root = project_root()
    chapters = {spec.notebook.resolve(): spec for spec in discover(book_dir()).values()}
    stage = (output or root / "_build") / "stage"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(root / name, stage / name)
    shutil.copytree(root / "book", stage / "book",
                    ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__"))
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
            execute(spec, profile, params, out, force=True)
        stage_notebook(out / spec.notebook.name, stage / src.relative_to(root))
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
    b.add_argument("--output", type=Path, default=None, help="build root (default: the repository; HTML in _build/html)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        chapters = discover(book_dir())
        if args.command == "list":
            cmd_list(chapters)
            return 0
        if args.command == "book":
            if args.profile not in PROFILES:
                raise ParameterError(f"unknown profile {args.profile!r}; valid: {list(PROFILES)}")
            build_book(args.profile, args.output)
            return 0
        spec = find_chapter(chapters, args.chapter)
        overrides: dict[str, Any] = {}
        for name, value in args.param:
            if name in overrides:
                raise ParameterError(f"parameter {name!r} given twice")
            overrides[name] = _parse_value(value)
        params = spec.resolve(args.profile, overrides)
        out = args.out or default_out(spec, args.profile, params)
        if out.exists() and not args.force:
            raise ParameterError(f"run folder {out} exists; pass --force to overwrite it, or --out DIR")
        execute(spec, args.profile, params, out, force=args.force)
        print(out / "metrics.json")
        return 0
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
