"""notebooks/fairlet_local_search.ipynb runs at small size; its asserts are the test."""


def test_notebook_fairlet_local_search(run_notebook):
  run_notebook("fairlet_local_search.ipynb")
