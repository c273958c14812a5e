"""notebooks/fair_hac.ipynb runs at small size; its asserts are the test."""


def test_notebook_fair_hac(run_notebook):
  run_notebook("fair_hac.ipynb")
