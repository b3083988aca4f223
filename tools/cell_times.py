"""Print the slowest cells of an executed chapter notebook (papermill's per-cell durations).

    python tools/cell_times.py runs/stnorm/quick-*/stnorm.ipynb [--top 10]

Used to keep every chapter's cells under the 3-minute target of CONTRIBUTING.md at `quick`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cell_times(path: Path) -> list[tuple[float, int, str]]:
    """(seconds, cell index, first source line) of every executed code cell, slowest first."""
    try:
        nb = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"error: cannot read {path} as a notebook: {err}") from None
    rows = []
    for i, cell in enumerate(nb.get("cells", [])):
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if cell.get("cell_type") == "code" and duration is not None:
            first = "".join(cell.get("source", "")).split("\n")[0][:80]
            rows.append((float(duration), i, first))
    if not rows:
        raise SystemExit(f"error: {path} has no papermill cell durations (was it executed by `robustbook run`?)")
    return sorted(rows, reverse=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebook", type=Path)
    ap.add_argument("--top", type=int, default=10, help="how many cells to list (default 10)")
    args = ap.parse_args(argv)
    rows = cell_times(args.notebook)
    print(f"total {sum(r[0] for r in rows):.0f} s over {len(rows)} code cells")
    for seconds, i, first in rows[: args.top]:
        print(f"{seconds:7.1f} s  cell {i:3d}  {first}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
