"""The README's tour runs as written (so the front page cannot rot)."""

import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_tour_runs_and_its_claims_hold():
  text = README.read_text()
  blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
  assert blocks, "README.md has no python block"
  scope = {}
  exec(compile(blocks[0], str(README), "exec"), scope)  # noqa: S102 - our own README
  fh, data, tree, res = scope["fh"], scope["data"], scope["tree"], scope["res"]
  n = data.features.shape[0]
  # The tour's objects are what its comments say they are.
  assert tree.parent.shape == (2 * n - 1,)
  assert scope["fair"].parent.shape == (2 * n - 1,)
  assert scope["Z"].shape == (n - 1, 4)
  assert np.asarray(scope["fh"].is_fair(tree, scope["colourings"], fh.Balance(1, 3))).shape == (1000,)
  # The audit is informative: strictly between 0 and 1 with the size scope.
  assert 0.0 < float(scope["est"].estimate) < 1.0
  # The Knittel result's band is narrower than [0, 1] for some colour.
  band = scope["res2"].constraint
  assert any(lo > 0 or hi < 1 for lo, hi in zip(band.lower, band.upper))
  # The Knittel output exported to SciPy is a valid linkage over all n points.
  from scipy.cluster.hierarchy import is_valid_linkage, leaves_list
  assert is_valid_linkage(scope["Z"])
  assert sorted(leaves_list(scope["Z"]).tolist()) == list(range(n))
  # Every fairlet of the fair tree holds both colours at balance >= 1/3.
  for f in np.unique(np.asarray(res.fairlets)):
    counts = np.bincount(np.asarray(data.colors)[np.asarray(res.fairlets) == f], minlength=2)
    assert 3 * counts.min() >= counts.max(), (f, counts)
