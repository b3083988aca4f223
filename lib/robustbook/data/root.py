"""Where data sets live: one data root for every chapter and script.

Order of precedence: an explicit argument, the environment variable
``ROBUSTBOOK_DATA``, then ``data/`` at the repository root (an editable
install) or ``~/.cache/robustbook/data`` (a regular install).
"""
from __future__ import annotations

import os
from pathlib import Path

from robustbook.paths import repo_root

ENV_VAR = "ROBUSTBOOK_DATA"


def data_root(override: str | os.PathLike | None = None) -> Path:
    """Return the data root (not created here)."""
    if override not in (None, ""):
        return Path(override).expanduser().resolve()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    repo = repo_root()
    if repo is not None:
        return repo / "data"
    return Path.home() / ".cache" / "robustbook" / "data"
