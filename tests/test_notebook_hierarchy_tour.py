"""notebooks/hierarchy_tour.ipynb (the Hierarchy arrays and SciPy interop) runs at small size; its asserts are the test."""


def test_notebook_hierarchy_tour(run_notebook):
  run_notebook("hierarchy_tour.ipynb")
