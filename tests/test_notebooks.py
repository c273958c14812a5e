"""Every notebook has its own test file, so xdist spreads the notebooks over workers.

The notebooks themselves are run by `tests/test_notebook_<stem>.py`, each one
line calling the `run_notebook` fixture (conftest.py): a fresh kernel, the
small sizes of `NOTEBOOK_SMALL`, the notebook's own asserts as the test.
"""

import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_every_notebook_has_a_test_file():
  notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
  assert notebooks, "no notebooks found"
  missing = [p.name for p in notebooks
             if not (REPO / "tests" / f"test_notebook_{p.stem}.py").exists()]
  assert not missing, f"notebooks without tests/test_notebook_<stem>.py: {missing}"


def test_every_notebook_test_file_has_a_notebook():
  stale = [p.name for p in (REPO / "tests").glob("test_notebook_*.py")
           if not (REPO / "notebooks" / f"{p.stem[len('test_notebook_'):]}.ipynb").exists()]
  assert not stale, f"notebook test files without a notebook: {stale}"
