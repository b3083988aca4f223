"""Convert a percent-format script (``# %%`` cells) into a clean, output-free notebook.

The book's notebooks are edited as .ipynb; this converter is only a convenience
for writing a new chapter in a text editor:

    python tools/percent_to_ipynb.py chapter.py book/NAME/NAME.ipynb

``# %% [markdown]`` starts a Markdown cell (its lines lose a leading ``# ``);
``# %% tags=["parameters"]`` starts a tagged code cell.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat


def convert(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    cells = re.split(r"^# %%", text, flags=re.M)
    for raw in cells[1:]:
        header, _, body = raw.partition("\n")
        body = body.strip("\n")
        if "[markdown]" in header:
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in body.splitlines()]
            nb.cells.append(nbformat.v4.new_markdown_cell("\n".join(lines)))
        else:
            cell = nbformat.v4.new_code_cell(body)
            m = re.search(r"tags=(\[.*?\])", header)
            if m:
                cell.metadata["tags"] = json.loads(m.group(1))
            nb.cells.append(cell)
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:03d}"
    return nb


if __name__ == "__main__":
    src, dst = map(Path, sys.argv[1:3])
    nbformat.write(convert(src.read_text()), dst)
