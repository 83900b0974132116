"""Execute the tutorial notebooks (notebooks/*.ipynb) top to bottom with nbclient, in quick mode.

    python -m pytest tests/test_notebooks.py -q -s      # -s shows the seconds each notebook took

Each notebook runs in a fresh temporary working folder (so what it writes stays out of the repo) with
OMNITALKER_QUICK=1, which shrinks its training runs and sizes. Notebooks 02/03 load the pipeline named by
OMNITALKER_PIPELINE: the bundled weights/omnitalker-demo when present, else a tiny random pipeline saved from
tests/pipeline_fixtures.get_dummy_components(). Any cell error fails the test. The stored notebooks are committed
executed in full mode from their current source (scripts/build_notebooks.py --execute; checked with --check).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = [
    "01_flow_matching_basics.ipynb",
    "02_omnitalker_quickstart.ipynb",
    "03_style_in_context.ipynb",
    "04_train_a_tiny_omnitalker.ipynb",
]
BUNDLED_WEIGHTS = ROOT / "weights" / "omnitalker-demo"
CELL_TIMEOUT_S = 300  # generous per cell: the CI machine is shared


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory) -> Path:
    """The bundled demo pipeline, or a tiny random one saved in diffusers layout."""
    if (BUNDLED_WEIGHTS / "model_index.json").exists():
        return BUNDLED_WEIGHTS
    from omnitalker import OmniTalkerPipeline
    from tests.pipeline_fixtures import get_dummy_components

    folder = tmp_path_factory.mktemp("random-pipeline")
    OmniTalkerPipeline(**get_dummy_components(render_size=128)).save_pretrained(folder)
    return folder


def test_stored_notebooks_are_executed_from_their_current_source():
    """Committed executed (full mode) so they read on the web: the cells are the current source, the recorded
    source hash matches, no cell failed, size bounded (scripts/build_notebooks.py --check), and the outputs
    a reader expects are there: plots everywhere, the audio and video players in the quickstart."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_notebooks.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in NOTEBOOKS:
        notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
        assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")
        assert notebook.metadata["omnitalker"]["mode"] == "full"
        outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
        assert any("image/png" in output.get("data", {}) for output in outputs), f"{name} stores no plot"
        if name.startswith("02_"):
            html = " ".join(str(output.get("data", {}).get("text/html", "")) for output in outputs)
            assert html.count("<video") >= 2 and "data:video/mp4;base64," in html, "quickstart videos not embedded"
            assert "<audio" in html, "quickstart audio player missing"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_quick_mode(name, pipeline_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMNITALKER_QUICK", "1")
    monkeypatch.setenv("OMNITALKER_PIPELINE", str(pipeline_dir))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # one BLAS/OpenMP thread per kernel: on a shared 2-core machine more threads spin against each other
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError (with the traceback) on the first failing cell
    seconds = time.perf_counter() - start
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert not errors
    with capsys.disabled():
        print(f"\n{name}: {seconds:.1f} s (quick mode, pipeline {pipeline_dir.name})")
    timings = tmp_path.parent / "notebook_timings.json"
    previous = json.loads(timings.read_text()) if timings.exists() else {}
    timings.write_text(json.dumps({**previous, name: round(seconds, 1)}, indent=1))
