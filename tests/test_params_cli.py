"""Hostile parameter values on the command line (issue 10, item 5): refused with exit 2, nothing written."""
from __future__ import annotations

import re

import pytest

from robustbook.run import main


@pytest.mark.parametrize("args,match", [
    (["-p", "lr", ".nan"], r"lr \(float, > 0.0, <= 1.0\) got nan, which is not a finite number"),
    (["-p", "lr", "1e400"], "not a finite number"),
    (["-p", "seed", "99999999999999999999999"], "above its maximum 4294967295"),
    (["-p", "eps_list", "[0]"], "must be greater than 0.0"),
    (["-p", "eps_list", "[1, .nan]"], "not a finite number"),
    (["-p", "steps_sweep", "[10]"], "at least 2"),
    # lr is checked before n_test: reaching n_test shows that 1e-3 was accepted as 0.001
    (["-p", "lr", "1e-3", "-p", "n_test", "5"], r"n_test \(int, 0 or >= 10\) got 5, below its minimum 10"),
])
def test_hostile_values_exit_2_and_write_nothing(tmp_path, capsys, monkeypatch, args, match):
    monkeypatch.setenv("ROBUSTBOOK_RUNS", str(tmp_path))
    assert main(["run", "attacks", "--profile", "smoke", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and re.search(match, err), err
    assert not any(tmp_path.iterdir())
