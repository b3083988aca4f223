"""The code passes ``ruff check`` with the configuration of pyproject.toml ([tool.ruff])."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["lib", "tests", "benchmarks", "data_scripts", "tools"]


def ruff() -> list[str]:
    exe = Path(sys.executable).with_name("ruff")
    if exe.is_file():
        return [str(exe)]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.skip("ruff is not installed (pip install -e '.[test]' -c constraints.txt)")


def test_ruff_check_is_clean():
    r = subprocess.run([*ruff(), "check", "--no-cache", "--output-format", "concise", *PATHS],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, ("ruff check found violations (`ruff check --fix` fixes those marked [*]):\n"
                               + r.stdout[-6000:] + r.stderr[-2000:])
