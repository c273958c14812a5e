"""The batched FHAC parameter search (CORS-style cubic RBF) and its random baseline."""

import numpy as np
import pytest
import jax

from fairhc_jax.algorithms.fair_hac import FHACParams, fhac_costs
from fairhc_jax.algorithms.fhac_search import VANILLA, default_bounds, tune_fhac


def _data(seed=0, n=36):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 2))
  D = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)).astype(np.float32)
  colors = (x[:, 0] + 0.3 * rng.normal(size=n) > 0.2).astype(int)  # correlated with space
  return D, colors


def test_search_never_worse_than_vanilla_and_history_is_true():
  D, col = _data()
  for cost in ("fc", "hfc"):
    for search in ("cors", "random"):
      r = tune_fhac(jax.random.key(1), D, col, k=3, budget=31, batch=10,
                    cost=cost, rule="literal", search=search)
      params, costs = r.history
      assert params.shape == (31, 4) and costs.shape == (31,)
      np.testing.assert_array_equal(params[0], np.array(VANILLA))
      assert r.vanilla_cost == costs[0]
      assert r.cost == costs.min() <= r.vanilla_cost
      lo, hi = r.bounds[:, 0], r.bounds[:, 1]
      assert np.all((params[1:] >= lo - 1e-12) & (params[1:] <= hi + 1e-12))
      # The reported cost is the cost of the reported parameters.
      out = fhac_costs(D, col, r.params, k=3, rule="literal")
      got = float(out.fc if cost == "fc" else out.hfc)
      assert got == pytest.approx(r.cost, rel=1e-5, abs=1e-6)


def test_search_improves_on_spatially_unfair_data():
  # The shapes of the test above (n = 36, batch 10): one compiled program.
  D, col = _data(2)
  r = tune_fhac(jax.random.key(0), D, col, k=4, budget=41, batch=10, rule="literal")
  assert r.cost < r.vanilla_cost


def test_bounds_and_bad_input():
  D, col = _data()
  b = default_bounds(D, 3)
  assert b.shape == (4, 2) and b[0, 1] == 1.0
  assert b[1, 1] == pytest.approx(2 / 33)
  med = np.median(D[~np.eye(36, dtype=bool)])
  assert b[2, 1] == pytest.approx(1.5 * med, rel=1e-6)
  with pytest.raises(ValueError, match=r"tune_fhac: budget must be at least the initial design"):
    tune_fhac(jax.random.key(0), D, col, k=3, budget=10)
  with pytest.raises(ValueError, match="tune_fhac: cost must be one of"):
    tune_fhac(jax.random.key(0), D, col, k=3, cost="dasgupta")
  with pytest.raises(ValueError, match=r"tune_fhac: k must be in \[1, n\]"):
    tune_fhac(jax.random.key(0), D, col, k=0)
  with pytest.raises(ValueError, match="tune_fhac: bounds must be"):
    tune_fhac(jax.random.key(0), D, col, k=3, bounds=np.ones((3, 2)))
  with pytest.raises(TypeError, match="tune_fhac: key must be a JAX PRNG key"):
    tune_fhac(0, D, col, k=3)
