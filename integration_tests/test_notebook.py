"""The quickstart notebook, examples/kustomer_quickstart.ipynb, runs top to bottom in a Jupyter kernel.

Pointed at a sandbox through its environment variables, as a reader points it at an org: no cell
errs, the connection check succeeds, the records it reads per stream are the sandbox's own counts,
its plot cell shows a PNG image, and no API key appears in any output. The committed notebook holds
no outputs, so it diffs cleanly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List

import nbformat
import pytest
from nbclient import NotebookClient

from integration_tests.conftest import REPO, TOKEN, assert_no_secret, ground_truth
from integration_tests.sandbox import FAST_KUSTOMER_LIMITS, Sandbox

NOTEBOOK = REPO / "examples" / "kustomer_quickstart.ipynb"
STREAMS = ["conversations", "messages", "customers", "users"]
KERNEL = "source-kustomer-venv"


def venv_kernel(folder: Path) -> Path:
    """A kernelspec running ipykernel on this interpreter (the venv's), whatever kernels Jupyter knows."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    return folder


def execute(sandbox: Sandbox, folder: Path, env: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """The notebook, executed in ``folder`` and pointed at ``sandbox`` as a reader points it at an org."""
    env.setenv("JUPYTER_PATH", str(venv_kernel(folder / "jupyter")))
    env.setenv("KUSTOMER_API_TOKEN", TOKEN)
    env.setenv("KUSTOMER_API_URL", sandbox.url)
    env.setenv("KUSTOMER_DUCKDB_PATH", str(folder / "quickstart.duckdb"))
    env.setenv("AIRBYTE_OFFLINE_MODE", "1")
    env.setenv("DO_NOT_TRACK", "1")
    for variable in ("KUSTOMER_REGION", "KUSTOMER_ORG", "KUSTOMER_START_DATE", "MPLBACKEND"):
        env.delenv(variable, raising=False)  # the reader's own settings; MPLBACKEND would hide the inline plot
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # Raises CellExecutionError, with the cell's traceback, at the first cell that errs.
    NotebookClient(notebook, kernel_name=KERNEL, timeout=180, resources={"metadata": {"path": str(folder)}}).execute()
    return notebook


def cell(notebook: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    tagged = [c for c in notebook.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"expected one cell tagged {tag!r}, found {len(tagged)}"
    return tagged[0]


def texts(outputs: List[Dict[str, Any]]) -> str:
    """The text of a cell's outputs: streams, plain-text displays, results and tracebacks."""
    parts = []
    for output in outputs:
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
        parts.extend(output.get("traceback", []))
    return "\n".join(parts)


# One test runs the notebook once (about 30 s): under pytest-xdist, split tests would each run it.
def test_the_notebook_runs_against_the_sandbox_and_reads_exactly_its_records(tmp_path, monkeypatch):
    with Sandbox(records=1500, seed=3, **FAST_KUSTOMER_LIMITS) as sandbox:
        notebook = execute(sandbox, tmp_path, monkeypatch)
        truth = {stream: len(ground_truth(sandbox, stream)) for stream in STREAMS}

    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code), "every code cell ran"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, texts(errors)

    assert "Connection check succeeded" in texts(cell(notebook, "check").outputs)

    printed = [line for line in texts(cell(notebook, "counts").outputs).splitlines() if line.startswith("{")]
    assert printed, "the last cell prints the records read per stream as JSON"
    assert json.loads(printed[-1]) == truth
    assert all(truth.values())

    images = [o for o in cell(notebook, "plot").outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1, "the plot cell shows one PNG image"
    assert len(images[0]["data"]["image/png"]) > 1000  # base64 of a drawn figure, not an empty canvas

    for output in (o for c in code for o in c.outputs):
        assert_no_secret(json.dumps(output))


def test_the_committed_notebook_holds_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
