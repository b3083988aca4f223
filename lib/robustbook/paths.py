"""Where the book's folders are: the book sources, run folders and the weight cache."""
from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path | None:
    """The repository root when robustbook is used from a checkout, else ``None``."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "lib" / "robustbook").is_dir():
            return parent
    return None


def project_root() -> Path:
    """The repository root, or the working directory for a non-editable install."""
    return repo_root() or Path.cwd()


def book_dir() -> Path:
    """``book/`` of the repository (override: ``ROBUSTBOOK_BOOK_DIR``)."""
    env = os.environ.get("ROBUSTBOOK_BOOK_DIR")
    return Path(env).resolve() if env else project_root() / "book"


def runs_dir() -> Path:
    """Where run folders go by default (override: ``ROBUSTBOOK_RUNS``)."""
    env = os.environ.get("ROBUSTBOOK_RUNS")
    return Path(env).resolve() if env else project_root() / "runs"


def cache_dir() -> Path:
    """Cached trained weights, keyed by their parameters (override: ``ROBUSTBOOK_CACHE``)."""
    env = os.environ.get("ROBUSTBOOK_CACHE")
    return Path(env).resolve() if env else runs_dir() / ".cache"
