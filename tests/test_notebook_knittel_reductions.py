"""notebooks/knittel_reductions.ipynb (cost ratios and Figure 5 of Knittel et al.) runs at small size; its asserts are the test."""


def test_notebook_knittel_reductions(run_notebook):
  run_notebook("knittel_reductions.ipynb")
