"""Shared by the data-script tests: import a script of data_scripts/ by name, and a download that must not happen."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[1] / "data_scripts"


def load_script(name: str) -> ModuleType:
    """Import ``data_scripts/<name>.py`` (which imports its sibling ``_common``)."""
    spec = importlib.util.spec_from_file_location(f"data_script_{name}", SCRIPTS / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def no_download(url: str, dest: Path, **kw: object) -> Path:
    """A ``download_fn`` for tests whose archives are already in place."""
    raise AssertionError(f"download must not be called (asked for {url})")
