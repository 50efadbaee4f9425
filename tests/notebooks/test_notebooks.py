"""The study notebooks run headless against a finished demo run, reading only through the catalog.

Each notebook is executed by nbclient in a kernel of this interpreter (a kernel spec written
here, so a fresh CI venv needs no ``ipykernel install`` step), from a ``notebooks/`` folder inside
a read-only view of the shared ``demo_run`` project, as a user opens it from the repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.viz.kedro_viz_data import read_only_view

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
STUDY_PARTS = ("error_distributions", "attribution_maps", "article_tables", "correction")
#: A literal path to project data in a notebook would bypass the catalog (and its versions).
HARD_CODED_DATA = re.compile(r"""["'][^"']*(data/0\d_|\.parquet|\.csv|\.pkl|\.keras|\.png)[^"']*["']""")
KERNEL_NAME = "dex_bias_notebook_test"


def test_there_is_one_notebook_per_study_part():
    names = [path.stem for path in NOTEBOOKS]
    for part in STUDY_PARTS:
        assert any(part in name for name in names), f"no notebook for '{part}' in {NOTEBOOK_DIR}: {names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_reads_through_the_catalog_only(path):
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    cells = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert cells and cells[0].lstrip().startswith("%load_ext kedro.ipython"), (
        f"{path.name}: the first code cell must be `%load_ext kedro.ipython`")
    assert any("catalog.load(" in source for source in cells), f"{path.name} loads nothing from the catalog"
    literal_paths = [match.group(0) for source in cells for match in HARD_CODED_DATA.finditer(source)]
    assert not literal_paths, f"{path.name}: load these through `catalog.load(<name>)`: {literal_paths}"
    # Outputs are made where the notebook runs, never committed (they may show real faces' data).
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        f"{path.name} has stored outputs: clear them before committing")


def test_hard_coded_path_pattern_catches_literal_data_paths():
    assert HARD_CODED_DATA.search('pd.read_parquet("data/07_model_output/predictions.parquet")')
    assert HARD_CODED_DATA.search("open('figures/x.png')")
    assert not HARD_CODED_DATA.search('catalog.load("predictions")')


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory) -> str:
    """A kernel spec for this interpreter, found through JUPYTER_PATH (no user-level install)."""
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "dex_bias (test)", "language": "python",
    }))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", os.pathsep.join(filter(None, [str(root), os.environ.get("JUPYTER_PATH")])))
        patch.setenv("KEDRO_DISABLE_TELEMETRY", "1")
        patch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
        yield KERNEL_NAME


@pytest.fixture(scope="module")
def notebook_folder(demo_run, tmp_path_factory) -> Path:
    view = read_only_view(demo_run, tmp_path_factory.mktemp("notebook_view"))
    shutil.copytree(NOTEBOOK_DIR, view / "notebooks", dirs_exist_ok=True)
    return view / "notebooks"


def _shown(outputs: list[dict]) -> set[str]:
    """What a cell displayed: 'table' (an HTML frame), 'figure' (a PNG) or nothing."""
    kinds = set()
    for output in outputs:
        data = output.get("data", {})
        if "image/png" in data:
            kinds.add("figure")
        if "<table" in "".join(data.get("text/html", "")):
            kinds.add("table")
    return kinds


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_headless_on_the_demo_run(path, notebook_folder, kernel_name, tmp_path):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(notebook_folder / path.name, as_version=4)
    client = NotebookClient(notebook, kernel_name=kernel_name, timeout=600,
                            resources={"metadata": {"path": str(notebook_folder)}})
    try:
        client.execute()
    except CellExecutionError as error:
        pytest.fail(f"{path.name} failed in {notebook_folder}:\n{error}")
    finally:
        nbformat.write(notebook, tmp_path / path.name)
        if os.environ.get("DEX_BIAS_ARTIFACTS"):
            artifacts = Path(os.environ["DEX_BIAS_ARTIFACTS"]) / "notebooks"
            artifacts.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, artifacts / path.name)

    shown = set().union(*(_shown(cell.get("outputs", [])) for cell in notebook.cells if cell.cell_type == "code"))
    assert shown, f"{path.name} ran but showed no table or figure"
    errors = [output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.get("name") == "stderr"
              and "Traceback" in output.get("text", "")]
    assert not errors, f"{path.name} printed tracebacks: {errors[:2]}"
