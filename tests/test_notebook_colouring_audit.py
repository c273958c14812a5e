"""notebooks/colouring_audit.ipynb (one tree under many random colourings) runs at small size; its asserts are the test."""


def test_notebook_colouring_audit(run_notebook):
  run_notebook("colouring_audit.ipynb")
