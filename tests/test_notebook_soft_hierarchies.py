"""notebooks/soft_hierarchies.ipynb runs at small size; its asserts are the test."""


def test_notebook_soft_hierarchies(run_notebook):
  run_notebook("soft_hierarchies.ipynb")
