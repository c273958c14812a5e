"""Every notebook runs, in a fresh kernel, at small size (its asserts are the test)."""

import os
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
SMALL = {"FAIRHC_NOTEBOOK_N": "400", "FAIRHC_NOTEBOOK_STEPS": "40"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, uci_dir, monkeypatch):
  monkeypatch.setenv("FAIRHC_DATA_DIR", str(uci_dir))
  monkeypatch.setenv("MPLBACKEND", "Agg")
  for k, v in SMALL.items():
    monkeypatch.setenv(k, v)
  nb = nbformat.read(path, as_version=4)
  client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": str(path.parent)}})
  client.execute()   # raises CellExecutionError on any failing cell or assert
  errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]
  assert not errors
