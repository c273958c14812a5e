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
# several processes.
#
# LLVM -O0 for the test run (`--xla_backend_optimization_level=0`): it cuts
# XLA:CPU compile time by about a third, which keeps the default run inside its
# 10-minute budget on 2 cores. Results do not depend on it: every comparison
# that decides a discrete outcome at a rounding boundary is exact by
# construction (FHAC's schedules are rounded on the host, the reductions'
# products are wide integers), and float comparisons carry tolerances; the
# whole suite passes at both levels.
#
# XLA:CPU's older (non-MLIR) fusion emitters (`--xla_cpu_use_fusion_emitters=false`)
# for the test run: the same HLO and the same semantics, emitted by the
# elemental IR emitter, which compiles faster; measured on this 2-core machine
# it cut a fairness oracle test's CPU time from 18.7 to 12.9 s and the CLI's
# CSV test from 31.4 to 20.4 s. `FAIRHC_TEST_XLA_OPT=default` (or XLA_FLAGS that
# already set either flag) runs the suite with XLA's defaults.
TEST_FLAGS = {"--xla_backend_optimization_level": "0",
              "--xla_cpu_use_fusion_emitters": "false"}


def pytest_configure(config):
  if hasattr(config, "workerinput"):
    return   # an xdist worker: inherits the controller's environment
  flags = os.environ.get("XLA_FLAGS", "")
  if os.environ.get("FAIRHC_TEST_XLA_OPT", "0") != "default":
    extra = [f"{k}={v}" for k, v in TEST_FLAGS.items() if k not in flags]
    os.environ["XLA_FLAGS"] = " ".join([flags] + extra).strip()
  if "JAX_COMPILATION_CACHE_DIR" in os.environ:
    return   # a user's own cache
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
