"""Write the tutorial notebooks in notebooks/ from the Python source in this file (outputs cleared).

    python scripts/build_notebooks.py            # rewrites notebooks/*.ipynb
    python scripts/build_notebooks.py --check    # exit 1 if a stored notebook differs from this source

Each notebook is a list of cells; a cell is ``md(text)`` or ``code(text)``. Keeping the source here makes
the notebooks reviewable as plain Python diffs; tests/test_notebooks.py executes the stored .ipynb files.
The cell bodies live in scripts/notebook_cells/NN_name.py, split at lines that read ``# %% [markdown]`` or
``# %%`` (the "percent" format of Jupytext / VS Code), so they can also be run as scripts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "scripts" / "notebook_cells"
NOTEBOOKS = ROOT / "notebooks"
MARKDOWN_MARK = "# %% [markdown]"
CODE_MARK = "# %%"
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def parse_cells(text: str) -> list[tuple[str, str]]:
    """Split a percent-format file into (kind, source) cells; markdown lines lose their leading '# '."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.strip() == MARKDOWN_MARK:
            cells.append(("markdown", []))
        elif line.strip() == CODE_MARK:
            cells.append(("code", []))
        elif cells:
            cells[-1][1].append(line)
        elif line.strip() and not line.startswith('"""') and not line.startswith("#"):
            raise ValueError(f"text before the first cell marker: {line!r}")
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
        source = "\n".join(lines).strip("\n")
        if source:
            out.append((kind, source))
    return out


def build(source: Path) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = KERNEL
    notebook.metadata["language_info"] = {"name": "python"}
    for kind, text in parse_cells(source.read_text()):
        cell = nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
        cell.pop("id", None)  # stable files: ids are added by nbformat on write anyway
        notebook.cells.append(cell)
    return notebook


def _stable_ids(notebook: nbformat.NotebookNode, stem: str) -> None:
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{stem[:2]}-{index:03d}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a notebook is stale")
    args = parser.parse_args(argv)
    NOTEBOOKS.mkdir(exist_ok=True)
    stale = []
    for source in sorted(SOURCES.glob("[0-9][0-9]_*.py")):
        notebook = build(source)
        _stable_ids(notebook, source.stem)
        target = NOTEBOOKS / f"{source.stem}.ipynb"
        text = nbformat.writes(notebook) + "\n"
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(target.name)
            continue
        target.write_text(text)
        print(f"wrote {target.relative_to(ROOT)} ({len(notebook.cells)} cells)")
    if stale:
        print("stale notebooks (run python scripts/build_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
