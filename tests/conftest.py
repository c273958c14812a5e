"""Shared pytest configuration: the opt-in slow marker and the UCI data folder."""

import os
import pathlib
import shutil
import tempfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# One variable for the data folder, the library's own (fairhc_jax.datasets).
UCI_DIR = pathlib.Path(os.environ.get("FAIRHC_DATA_DIR") or REPO.parent / "shared" / "data" / "uci")


# One persistent compilation cache for the run, shared by the xdist workers and
# the subprocesses (CLI, notebooks, multi-device), removed at the end: the
# suite is dominated by XLA:CPU compile time, and the same programs compile in
# several processes. (LLVM -O0, `--xla_backend_optimization_level=0`, was tried
# and dropped: it cut compile CPU time by a third but changed a tie outcome of
# FHAC on grid data, test_fair_hac.py::test_ties_follow_scan_order; most likely
# a threshold at a rounding boundary, rounded differently with and without FMA
# contraction; not yet traced.)


def pytest_configure(config):
  if hasattr(config, "workerinput") or "JAX_COMPILATION_CACHE_DIR" in os.environ:
    return   # an xdist worker (inherits the controller's cache) or a user's own cache
  config._fairhc_cache = tempfile.mkdtemp(prefix="fairhc_jax_test_jit_cache_")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = config._fairhc_cache


def pytest_unconfigure(config):
  cache = getattr(config, "_fairhc_cache", None)
  if cache:
    shutil.rmtree(cache, ignore_errors=True)


def pytest_addoption(parser):
  parser.addoption("--runslow", action="store_true", default=False,
                   help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
  if config.getoption("--runslow"):
    return
  skip = pytest.mark.skip(reason="slow: run with --runslow")
  for item in items:
    if "slow" in item.keywords:
      item.add_marker(skip)


@pytest.fixture(scope="session")
def uci_dir() -> pathlib.Path:
  """The folder with the UCI files ($FAIRHC_DATA_DIR, else ../shared/data/uci); skips when absent."""
  if not (UCI_DIR / "adult.data").exists():
    pytest.skip(f"UCI data not found at {UCI_DIR} (set FAIRHC_DATA_DIR)")
  return UCI_DIR


# The small sizes every notebook reads from the environment when CI runs it.
NOTEBOOK_SMALL = {"FAIRHC_NOTEBOOK_N": "400", "FAIRHC_NOTEBOOK_STEPS": "40"}


@pytest.fixture
def run_notebook(uci_dir, monkeypatch):
  """Execute ``notebooks/<name>`` in a fresh kernel at small size; fails on any error or assert."""
  nbformat = pytest.importorskip("nbformat")
  nbclient = pytest.importorskip("nbclient")

  def run(name: str):
    path = REPO / "notebooks" / name
    monkeypatch.setenv("FAIRHC_DATA_DIR", str(uci_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # The kernel imports this checkout's package, installed or not.
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for k, v in NOTEBOOK_SMALL.items():
      monkeypatch.setenv(k, v)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()   # raises CellExecutionError on any failing cell or assert
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    return nb

  return run
