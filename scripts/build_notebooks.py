"""Write the tutorial notebooks in notebooks/ from the Python source in scripts/notebook_cells/, and execute them.

    python scripts/build_notebooks.py --execute                # build + run every notebook in full mode, store outputs
    python scripts/build_notebooks.py --execute 02 03          # only these (by number or file stem)
    python scripts/build_notebooks.py --check                  # exit 1 if a stored notebook is not its current source

Each notebook is a list of cells; the cell bodies live in scripts/notebook_cells/NN_name.py, split at lines that read
``# %% [markdown]`` or ``# %%`` (the "percent" format of Jupytext / VS Code), so they can also be run as scripts and
reviewed as plain Python diffs.

The stored notebooks are committed *executed* (plots, audio and video players embedded) so they read on the web
without running. ``--execute`` runs each one top to bottom with nbclient in a fresh temporary folder (what it
writes stays out of the repo) in full mode (OMNITALKER_QUICK unset) on the bundled weights, and records in the
notebook's metadata the SHA-256 of the source file it was built from, the mode and the run time. ``--check``
(run by tests/test_notebooks.py) rebuilds every notebook from its source and compares the cells (kind and text,
outputs aside) and the recorded hash, so a notebook whose source changed since it was executed fails until it is
executed again. Executed notebooks must stay under MAX_STORED_BYTES (the videos are short and small).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "scripts" / "notebook_cells"
NOTEBOOKS = ROOT / "notebooks"
BUNDLED_PIPELINE = ROOT / "weights" / "omnitalker-demo"
MARKDOWN_MARK = "# %% [markdown]"
CODE_MARK = "# %%"
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}
METADATA_KEY = "omnitalker"  # notebook.metadata[METADATA_KEY] = {"source_sha256", "mode", "seconds", ...}
MAX_STORED_BYTES = 4_000_000  # an executed notebook with its embedded media
CELL_TIMEOUT_S = 1800  # full mode on a shared 2-core CPU: notebook 04 trains for minutes in one cell


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


def source_hash(source: Path) -> str:
    return hashlib.sha256(source.read_bytes()).hexdigest()


def build(source: Path) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = KERNEL
    notebook.metadata["language_info"] = {"name": "python"}
    for index, (kind, text) in enumerate(parse_cells(source.read_text())):
        cell = nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
        cell["id"] = f"{source.stem[:2]}-{index:03d}"  # stable ids: stable files
        notebook.cells.append(cell)
    return notebook


def execute(notebook: nbformat.NotebookNode, source: Path, pipeline: Path) -> float:
    """Run `notebook` in place in full mode in a temporary folder; record its provenance in the metadata."""
    import nbclient

    env = {"OMNITALKER_PIPELINE": str(pipeline), "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    saved = {name: os.environ.get(name) for name in (*env, "OMNITALKER_QUICK")}
    os.environ.update(env)
    os.environ.pop("OMNITALKER_QUICK", None)  # full mode
    try:
        with tempfile.TemporaryDirectory() as folder:
            client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                             resources={"metadata": {"path": folder}})
            start = time.perf_counter()
            client.execute()  # raises CellExecutionError (with the traceback) on the first failing cell
            seconds = time.perf_counter() - start
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    notebook.metadata[METADATA_KEY] = {
        "source": str(source.relative_to(ROOT)), "source_sha256": source_hash(source), "mode": "full",
        "pipeline": os.path.relpath(pipeline, ROOT), "seconds": round(seconds, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
    }
    return seconds


def stale_reason(source: Path, target: Path) -> str | None:
    """Why the stored notebook is not the executed current source (None when it is)."""
    if not target.exists():
        return "missing"
    stored = nbformat.read(target, as_version=4)
    built = build(source)
    if [(c.cell_type, c.source) for c in stored.cells] != [(c.cell_type, c.source) for c in built.cells]:
        return "cells differ from the source"
    provenance = stored.metadata.get(METADATA_KEY, {})
    if provenance.get("source_sha256") != source_hash(source):
        return "not executed from the current source"
    code = [cell for cell in stored.cells if cell.cell_type == "code"]
    if any(cell.execution_count is None for cell in code):
        return "not fully executed"
    if any(output.output_type == "error" for cell in code for output in cell.outputs):
        return "stores an error"
    if target.stat().st_size > MAX_STORED_BYTES:
        return f"{target.stat().st_size} bytes > {MAX_STORED_BYTES}"
    return None


def select(sources: list[Path], names: list[str]) -> list[Path]:
    if not names:
        return sources
    chosen = [s for s in sources if any(s.stem == n or s.stem.startswith(f"{n}_") for n in names)]
    unknown = [n for n in names if not any(s.stem == n or s.stem.startswith(f"{n}_") for s in sources)]
    if unknown:
        raise SystemExit(f"unknown notebooks {unknown}: choose from {[s.stem for s in sources]}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a notebook is stale")
    parser.add_argument("--execute", nargs="*", metavar="NOTEBOOK", default=None,
                        help="build and execute these notebooks (all when none is named) in full mode")
    parser.add_argument("--pipeline", type=Path, default=BUNDLED_PIPELINE, help="pipeline the notebooks load")
    args = parser.parse_args(argv)
    sources = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if args.check:
        stale = [(s.stem, reason) for s in sources if (reason := stale_reason(s, NOTEBOOKS / f"{s.stem}.ipynb"))]
        for name, reason in stale:
            print(f"stale: {name}.ipynb ({reason}); run python scripts/build_notebooks.py --execute {name[:2]}")
        return 1 if stale else 0
    if args.execute is None:
        parser.error("give --execute [NOTEBOOK ...] (notebooks are stored executed) or --check")
    NOTEBOOKS.mkdir(exist_ok=True)
    for source in select(sources, args.execute):
        notebook = build(source)
        print(f"executing {source.stem} (full mode) ...", flush=True)
        seconds = execute(notebook, source, args.pipeline.resolve())
        target = NOTEBOOKS / f"{source.stem}.ipynb"
        target.write_text(nbformat.writes(notebook) + "\n")
        size = target.stat().st_size
        print(f"wrote {target.relative_to(ROOT)}: {len(notebook.cells)} cells, {seconds:.0f} s, {size / 1e3:.0f} kB")
        if size > MAX_STORED_BYTES:
            print(f"error: {target.name} is {size} bytes > {MAX_STORED_BYTES}: embed smaller media")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
