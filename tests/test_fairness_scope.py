"""Cluster scopes, result objects, audits and compilation of fairhc_jax.fairness.

Oracles are independent of the library: leaf sets by walking parent pointers
(``test_fairness.oracle_leaves``), verdicts with ``fractions.Fraction``
(``test_fairness.oracle_status``), the union-of-blocks test by set
inclusion, probabilities by exact enumeration of all colourings, the Wilson
interval by its closed form in plain ``math``.
"""

import itertools
import math
import warnings
from fractions import Fraction
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairhc_jax import _checks
from fairhc_jax import fairness as F
from fairhc_jax.fairness import audit as _audit
from fairhc_jax.fairness import balance_stats as _bs
from fairhc_jax.fairness import checks as _chk
from fairhc_jax.fairness import costs as _costs
from fairhc_jax.fairness import counts as _counts
from fairhc_jax.fairness import scope as _scope
from fairhc_jax.hierarchy import Hierarchy, from_parent

from test_fairness import (internal_nodes, make_tree, oracle_counts, oracle_leaves,
                           oracle_status, random_params, to_constraint)


class Result(NamedTuple):
  """A stand-in for a fair pipeline's result."""
  hierarchy: Hierarchy
  scope: object
  constraint: Optional[object] = None


def oracle_checked(parent, min_size, blocks):
  """``bool[m]``: internal, ``|u| >= min_size`` and (blocks) a union of whole blocks."""
  parent = np.asarray(parent)
  n = (len(parent) + 1) // 2
  leaves = oracle_leaves(parent, n)
  out = np.zeros(len(parent), bool)
  for u in internal_nodes(parent):
    ls = set(leaves[u])
    ok = len(ls) >= min_size
    if ok and blocks is not None:
      for b in set(np.asarray(blocks)[list(ls)].tolist()):
        if not set(np.flatnonzero(np.asarray(blocks) == b).tolist()) <= ls:
          ok = False
          break
    out[u] = ok
  return out


def subtree_blocks(parent, rng, n):
  """Blocks that are leaf sets of random nodes (so many nodes are unions), relabelled."""
  leaves = oracle_leaves(parent, n)
  blocks = -np.ones(n, int)
  nodes = list(rng.permutation(len(parent)))
  for u in nodes:
    if parent[u] == -2 or rng.random() < 0.5:
      continue
    ls = leaves[u]
    if len(ls) and (blocks[ls] < 0).all():
      blocks[ls] = rng.integers(10**6)      # arbitrary labels
  free = blocks < 0
  blocks[free] = 10**7 + np.arange(free.sum())
  return blocks


# ---------------------------------------------------------------------------
# Prefix sums and counts: both forms against NumPy.


@pytest.mark.parametrize("form", [_counts.prefix_sum_sequential, _counts.prefix_sum_parallel,
                                  _counts.prefix_sum])
def test_prefix_sum_forms_match_numpy(form):
  rng = np.random.default_rng(0)
  for shape in ((1, 1, 1), (2, 3, 4), (37, 2, 5), (49, 1, 2), (50, 2, 3), (1000, 1, 3)):
    x = rng.integers(0, 2, shape).astype(np.int32)
    got = np.asarray(jax.jit(form)(jnp.asarray(x)))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.cumsum(x, axis=0))


@pytest.mark.parametrize("sequential", [True, False])
def test_counts_both_forms_match_oracle(sequential):
  rng = np.random.default_rng(1)
  for n, c in ((1, 2), (3, 3), (40, 4)):
    h = make_tree(n, rng, 3, shuffle=True)
    batch = rng.integers(0, c, (3, n)).astype(np.int32)
    got = np.asarray(_counts._counts_batch(h.parent, _counts.tree_ranges(h),
                                           jnp.asarray(batch), num_colors=c,
                                           sequential=sequential))
    for i in range(3):
      np.testing.assert_array_equal(got[i], oracle_counts(np.asarray(h.parent), batch[i], c))


def test_counts_vmap_over_trees_with_platform_dependent_prefix():
  rng = np.random.default_rng(2)
  trees = [make_tree(9, rng, 3) for _ in range(3)]
  parents = jnp.stack([t.parent for t in trees])
  cols = jnp.asarray(rng.integers(0, 3, 9), jnp.int32)
  got = jax.vmap(lambda p: F.color_counts_kernel(Hierarchy(parent=p), cols, 3))(parents)
  for i, t in enumerate(trees):
    np.testing.assert_array_equal(np.asarray(got[i]),
                                  oracle_counts(np.asarray(t.parent), np.asarray(cols), 3))


# ---------------------------------------------------------------------------
# The scope kernel.


@pytest.mark.parametrize("arity", [2, 4])
def test_checked_nodes_match_bruteforce(arity):
  rng = np.random.default_rng(10 + arity)
  for n in (1, 3, 8, 45):
    h = make_tree(n, rng, arity, shuffle=arity > 2)
    parent = np.asarray(h.parent)
    for trial in range(4):
      min_size = int(rng.integers(1, max(2, n) + 2))
      if trial == 0:
        blocks = None
      elif trial == 1:
        blocks = rng.integers(0, max(1, n // 3), n) * 7 + 3     # random labels
      else:
        blocks = subtree_blocks(parent, rng, n)
      scope = F.ClusterScope(min_size=min_size, blocks=blocks)
      got = np.asarray(F.checked_nodes(h, scope))
      want = oracle_checked(parent, min_size, blocks)
      np.testing.assert_array_equal(got, want, err_msg=f"n={n} {scope}")
      if trial == 2 and n == 45:    # the blocks leave some nodes in and some out
        assert want.any() and not want[internal_nodes(parent)].all()


def test_checked_nodes_int_scope_and_result_object():
  rng = np.random.default_rng(3)
  h = make_tree(20, rng, 2)
  parent = np.asarray(h.parent)
  np.testing.assert_array_equal(np.asarray(F.checked_nodes(h, 5)),
                                oracle_checked(parent, 5, None))
  blocks = subtree_blocks(parent, rng, 20)
  res = Result(h, F.ClusterScope(3, blocks))
  np.testing.assert_array_equal(np.asarray(F.checked_nodes(res)),
                                oracle_checked(parent, 3, blocks))
  np.testing.assert_array_equal(np.asarray(F.checked_nodes(res, 2)),    # explicit wins
                                oracle_checked(parent, 2, None))


def test_scope_errors():
  h = from_parent(np.array([3, 3, 4, 4, -1]))
  cols = np.array([0, 1, 0])
  cons = F.Balance(1, 1)
  with pytest.raises(TypeError, match=r"check_fairness: scope must be a ClusterScope or an int"):
    F.check_fairness(h, cols, cons, scope="big")
  with pytest.raises(ValueError, match=r"check_fairness: scope.min_size must be an integer >= 1, got 0"):
    F.check_fairness(h, cols, cons, scope=0)
  with pytest.raises(ValueError, match=r"is_fair: scope.blocks must be int\[3\]"):
    F.is_fair(h, cols, cons, scope=F.ClusterScope(2, np.zeros(4, int)))
  with pytest.raises(TypeError, match=r"cluster_balance: scope.blocks must hold integer block ids"):
    F.cluster_balance(h, cols, scope=F.ClusterScope(2, np.zeros(3)))
  with pytest.raises(TypeError, match=r"check_fairness: constraint must be given"):
    F.check_fairness(Result(h, None), cols)


# ---------------------------------------------------------------------------
# Checks with a scope.


@pytest.mark.parametrize("kind", ["bounded", "bounds", "balance", "proportional"])
def test_check_with_scope_matches_oracle(kind):
  rng = np.random.default_rng(20)
  for n, c, rule in ((2, 2, True), (5, 3, False), (41, 3, True)):
    h = make_tree(n, rng, 3, shuffle=True)
    parent = np.asarray(h.parent)
    c = 2 if kind == "balance" else c
    params = random_params(kind, c, rng)
    cons = to_constraint(kind, params)
    min_size = int(rng.integers(1, 8))
    blocks = subtree_blocks(parent, rng, n) if n > 5 else None
    scope = F.ClusterScope(min_size, blocks)
    checked = oracle_checked(parent, min_size, blocks)
    batch = rng.integers(0, c, (4, n))
    res = F.check_fairness(h, batch, cons, scope=scope, num_colors=c,
                           leaf_children_rule=rule)
    np.testing.assert_array_equal(np.asarray(res.checked), checked)
    fair = np.asarray(F.is_fair(h, batch, cons, scope=scope, num_colors=c,
                                leaf_children_rule=rule))
    for i in range(4):
      status, mixed = oracle_status(parent, batch[i], c, kind, params)
      status[~checked] = 0
      mixed = mixed & checked if rule else np.zeros_like(mixed)
      np.testing.assert_array_equal(np.asarray(res.status[i]), status)
      np.testing.assert_array_equal(np.asarray(res.mixed_children), mixed)
      viol = (status != 0).any(1) | mixed
      np.testing.assert_array_equal(np.asarray(res.violating[i]), viol)
      assert bool(res.is_fair[i]) == (not viol.any()) == bool(fair[i])
    # batched equals a loop of single calls
    loop = [bool(F.is_fair(h, batch[i], cons, scope=scope, num_colors=c,
                           leaf_children_rule=rule)) for i in range(4)]
    assert loop == fair.tolist()


def test_result_object_uses_its_scope_and_constraint():
  rng = np.random.default_rng(21)
  n = 30
  h = make_tree(n, rng, 2)
  parent = np.asarray(h.parent)
  blocks = subtree_blocks(parent, rng, n)
  cons = F.BoundedRepresentation(Fraction(2, 3))
  res = Result(h, F.ClusterScope(4, blocks), cons)
  colors = rng.integers(0, 2, (3, n))
  got = F.check_fairness(res, colors)
  want = F.check_fairness(h, colors, cons, scope=F.ClusterScope(4, blocks))
  np.testing.assert_array_equal(np.asarray(got.status), np.asarray(want.status))
  np.testing.assert_array_equal(np.asarray(got.checked), oracle_checked(parent, 4, blocks))
  np.testing.assert_array_equal(np.asarray(F.is_fair(res, colors)), np.asarray(want.is_fair))
  # an explicit constraint and scope win over the result's
  other = F.check_fairness(res, colors, F.BoundedRepresentation(1), scope=2)
  assert bool(np.all(np.asarray(other.is_fair)))
  np.testing.assert_array_equal(np.asarray(other.checked), oracle_checked(parent, 2, None))
  # results carrying scope=None mean the default scope
  d = F.check_fairness(Result(h, None, cons), colors)
  np.testing.assert_array_equal(np.asarray(d.status),
                                np.asarray(F.check_fairness(h, colors, cons).status))


def test_a_tree_fair_above_its_blocks_passes_with_its_scope_only():
  # fairlets {0,1}, {2,3}, {4,5}, each one point per colour; inside a fairlet
  # a node may be one-coloured only if it is below the fairlet (here leaves)
  # plus a node 6 = {0, 2} that cuts across fairlets and is one-coloured.
  parent = np.array([6, 7, 6, 9, 8, 8, 7, 9, 10, 10, -1])
  h = from_parent(parent, num_leaves=6)
  colors = np.array([0, 1, 0, 1, 0, 1])
  blocks = np.array([5, 5, 9, 9, 2, 2])
  cons = F.Balance(1, 1)
  assert not bool(F.is_fair(h, colors, cons))
  res = F.check_fairness(h, colors, cons, scope=F.ClusterScope(blocks=blocks))
  # node 6 = {0, 2} and 7 = {0, 1, 2} are not unions of fairlets; 8, 9, 10 are
  assert np.flatnonzero(np.asarray(res.checked)).tolist() == [8, 9, 10]
  assert bool(res.is_fair)


def test_report_states_the_scope():
  rng = np.random.default_rng(22)
  n = 40
  h = make_tree(n, rng, 2)
  parent = np.asarray(h.parent)
  colors = rng.integers(0, 2, n)
  cons = F.Balance(1, 3)
  text = F.fairness_report(h, colors, cons)
  assert f"{n - 1} internal nodes checked:" in text
  blocks = subtree_blocks(parent, rng, n)
  checked = oracle_checked(parent, 5, blocks)
  text = F.fairness_report(h, colors, cons, scope=F.ClusterScope(5, blocks))
  k = len(np.unique(blocks))
  assert (f"{int(checked.sum())} internal nodes with at least 5 points, at and above "
          f"the given blocks ({k} blocks) checked ({n - 1 - int(checked.sum())} exempt "
          "by the scope)") in text
  res = F.check_fairness(h, colors, cons, scope=F.ClusterScope(5, blocks))
  nbad = int(np.asarray(res.violating).sum())
  assert ("FAIR" in text) == (nbad == 0)
  if nbad:
    assert f"{nbad} violate" in text
  for u in np.flatnonzero(~checked):
    assert f"node {u} " not in text
  text = F.fairness_report(Result(h, 7, cons), colors)
  assert "with at least 7 points checked" in text


def test_cluster_balance_with_scope_matches_oracle():
  rng = np.random.default_rng(23)
  n, c = 35, 3
  h = make_tree(n, rng, 3)
  parent = np.asarray(h.parent)
  blocks = subtree_blocks(parent, rng, n)
  checked = oracle_checked(parent, 3, blocks)
  colors = rng.integers(0, c, n)
  stats = F.cluster_balance(h, colors, c, scope=F.ClusterScope(3, blocks))
  counts = oracle_counts(parent, colors, c)
  inner = np.flatnonzero(checked)
  bal = [counts[u].min() / counts[u].max() for u in inner]
  got = np.asarray(stats.balance)
  np.testing.assert_allclose(got[inner], bal, rtol=1e-6)
  assert np.isnan(np.delete(got, inner)).all()
  np.testing.assert_array_equal(np.asarray(stats.is_internal), checked)
  assert float(stats.min_balance) == pytest.approx(min(bal), rel=1e-6)
  s2 = F.cluster_balance(Result(h, F.ClusterScope(3, blocks)), colors, c)
  np.testing.assert_array_equal(np.asarray(s2.balance), got)


def test_check_feasible_with_scope():
  colors = np.array([0, 0, 0, 1])
  with pytest.raises(ValueError, match="colour 0 makes up 3/4"):
    F.check_feasible(colors, F.BoundedRepresentation(Fraction(2, 3)), scope=4)
  F.check_feasible(colors, F.BoundedRepresentation(Fraction(2, 3)), scope=5)   # nothing checked


# ---------------------------------------------------------------------------
# No recompilation: heights, scopes, sample counts.


def _heights(h):
  return Hierarchy(parent=h.parent, height=jnp.arange(h.parent.shape[0], dtype=jnp.float32))


def test_heights_do_not_recompile_kernels():
  rng = np.random.default_rng(30)
  h = make_tree(17, rng, 2)
  hh = _heights(h)
  cols = rng.integers(0, 2, 17)
  cons = F.Balance(1, 2)
  jitted = [_counts._counts_batch, _chk._check_batch, _bs._balance_batch,
            _costs._fc_batch, _costs._hfc_batch, _scope._checked_nodes]
  for f in jitted:
    f.clear_cache()
  for tree in (h, hh):
    F.color_counts_kernel(tree, jnp.asarray(cols, jnp.int32), 2)
    F.color_counts(tree, cols, 2)
    F.check_fairness(tree, cols, cons, scope=3)
    F.is_fair(tree, cols, cons, scope=F.ClusterScope(4))
    F.cluster_balance(tree, cols, 2)
    F.fairness_cost(tree, cols, 3, 2)
    F.hierarchical_fairness_cost(tree, cols, 2)
    F.checked_nodes_kernel(tree, 3)
  assert _counts._counts_batch._cache_size() == 1
  assert _chk._check_batch._cache_size() == 2        # details on and off
  for f in jitted[2:]:
    assert f._cache_size() == 1, f


def test_second_call_with_new_values_does_not_recompile():
  rng = np.random.default_rng(31)
  _chk._check_batch.clear_cache()
  _counts._counts_batch.clear_cache()
  h = make_tree(29, rng, 2)
  F.color_counts(h, rng.integers(0, 2, 29), 2)
  F.color_counts(make_tree(29, rng, 3), rng.integers(0, 2, 29), 2)
  assert _counts._counts_batch._cache_size() == 1
  for cons, scope in ((F.BoundedRepresentation(0.75), None),
                      (F.BoundedRepresentation(Fraction(2, 3)), 5),
                      (F.Balance(1, 3), F.ClusterScope(3)),
                      (F.Balance(1, 2), 2)):
    F.check_fairness(make_tree(29, rng, 3), rng.integers(0, 2, 29), cons, scope=scope)
  assert _chk._check_batch._cache_size() == 1
  blocks = rng.integers(0, 5, 29)
  F.check_fairness(h, rng.integers(0, 2, 29), F.Balance(1, 2), scope=F.ClusterScope(2, blocks))
  F.check_fairness(h, rng.integers(0, 2, 29), F.Balance(1, 2),
                   scope=F.ClusterScope(6, rng.integers(0, 9, 29)))
  assert _chk._check_batch._cache_size() == 2        # one more for "with blocks"


def test_num_samples_is_not_static():
  rng = np.random.default_rng(32)
  h = make_tree(15, rng, 2)
  probs = np.full((15, 2), 0.5)
  _audit._probability_batch.clear_cache()
  key = jax.random.key(0)
  a = F.fairness_probability(h, probs, F.Balance(1, 3), key=key, num_samples=40, chunk=16,
                             scope=4)
  b = F.fairness_probability(_heights(h), probs, F.Balance(1, 3), key=key, num_samples=45,
                             chunk=16, scope=5)
  assert _audit._probability_batch._cache_size() == 1    # 3 chunks both times
  assert a.num_samples == 40 and b.num_samples == 45
  assert 0 <= int(a.num_fair) <= 40 and 0 <= int(b.num_fair) <= 45
  F.fairness_probability(h, probs, F.Balance(1, 3), key=key, num_samples=80, chunk=16)
  assert _audit._probability_batch._cache_size() == 2    # 5 chunks


# ---------------------------------------------------------------------------
# Audits.


def exact_probability(parent, probs, kind, params, min_size=2, blocks=None):
  parent = np.asarray(parent)
  n, c = probs.shape
  checked = oracle_checked(parent, min_size, blocks)
  total = 0.0
  for cols in itertools.product(range(c), repeat=n):
    cols = np.array(cols)
    status, _ = oracle_status(parent, cols, c, kind, params)
    if not status[checked].any():
      total += float(np.prod(probs[np.arange(n), cols]))
  return total


def test_observed_shares_audit_with_scope_matches_enumeration():
  rng = np.random.default_rng(40)
  n = 9
  h = make_tree(n, rng, 2)
  colors = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1])
  shares = np.asarray(F.observed_shares(colors))
  np.testing.assert_allclose(shares, [6 / 9, 3 / 9], rtol=1e-6)
  probs = np.broadcast_to(np.array([6 / 9, 3 / 9]), (n, 2))
  params = (1, 3)
  exact_all = exact_probability(h.parent, probs, "balance", params)
  exact = exact_probability(h.parent, probs, "balance", params, min_size=4)
  assert 0.02 < exact < 0.98 and exact > exact_all      # informative, and the scope matters
  N = 20_000
  est = F.fairness_probability(h, F.observed_shares(colors), F.Balance(*params),
                               key=jax.random.key(3), num_samples=N, scope=4)
  se = math.sqrt(exact * (1 - exact) / N)
  assert abs(float(est.estimate) - exact) <= 4.5 * se
  assert int(est.num_fair) == round(float(est.estimate) * N)
  # the same audit with float[n, c] probabilities and a result object
  est2 = F.fairness_probability(Result(h, 4, F.Balance(*params)), probs,
                                key=jax.random.key(3), num_samples=N)
  assert int(est2.num_fair) == int(est.num_fair)


def test_audit_with_blocks_matches_enumeration():
  rng = np.random.default_rng(41)
  n = 8
  h = make_tree(n, rng, 2)
  blocks = subtree_blocks(np.asarray(h.parent), rng, n)
  probs = rng.dirichlet([2.0, 2.0], n)
  params = (Fraction(1, 4), None)
  scope = F.ClusterScope(3, blocks)
  exact = min(1.0, exact_probability(h.parent, probs, "proportional", params, 3, blocks))
  assert 0 < exact < 1
  N = 20_000
  est = F.fairness_probability(h, probs, F.Proportional(Fraction(1, 4)),
                               key=jax.random.key(4), num_samples=N, scope=scope)
  se = math.sqrt(exact * (1 - exact) / N)
  assert abs(float(est.estimate) - exact) <= 4.5 * se + 1e-9


def test_old_argument_order_warns_and_agrees():
  rng = np.random.default_rng(42)
  h = make_tree(10, rng, 2)
  probs = np.full((10, 2), 0.5)
  cons = F.Balance(1, 4)
  new = F.fairness_probability(h, probs, cons, key=jax.random.key(5), num_samples=300,
                               scope=3)
  with pytest.warns(DeprecationWarning, match="fairness_probability"):
    old = F.fairness_probability(jax.random.key(5), h, probs, cons, 300, scope=3)
  assert int(old.num_fair) == int(new.num_fair)
  with pytest.raises(TypeError, match="keyword-only"):
    F.fairness_probability(h, probs, cons, jax.random.key(5))
  with pytest.raises(TypeError, match="fairness_probability: key must be a JAX PRNG key"):
    F.fairness_probability(h, probs, cons, key=0, num_samples=10)


def wilson_math(k, n, z=1.959963984540054):
  p = k / n
  denom = 1 + z * z / n
  center = (p + z * z / (2 * n)) / denom
  half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
  return max(0.0, center - half), min(1.0, center + half)


def test_wilson_interval_matches_closed_form():
  for k, n in ((0, 10), (10, 10), (3, 10), (50, 100), (1, 20_000), (19_999, 20_000)):
    lo, hi = F.wilson_interval(k, n)
    wlo, whi = wilson_math(k, n)
    assert float(lo) == pytest.approx(wlo, abs=2e-6)
    assert float(hi) == pytest.approx(whi, abs=2e-6)
  # k = 0: the upper end is z^2 / (n + z^2) (a second closed form)
  z2 = 1.959963984540054 ** 2
  assert float(F.wilson_interval(0, 10)[1]) == pytest.approx(z2 / (10 + z2), rel=1e-5)
  # the audit reports the interval of its own count
  rng = np.random.default_rng(43)
  h = make_tree(12, rng, 2)
  est = F.fairness_probability(h, np.full((12, 2), 0.5), F.Balance(1, 3),
                               key=jax.random.key(6), num_samples=500, scope=4)
  k = int(est.num_fair)
  assert 0 < k < 500
  wlo, whi = wilson_math(k, 500)
  assert float(est.wilson_low) == pytest.approx(wlo, abs=2e-6)
  assert float(est.wilson_high) == pytest.approx(whi, abs=2e-6)
  assert float(est.stderr) == pytest.approx(math.sqrt(k / 500 * (1 - k / 500) / 500), rel=1e-5)


# ---------------------------------------------------------------------------
# Messages.


def test_raw_group_codes_get_a_recode_hint():
  h = from_parent(np.array([3, 3, 4, 4, -1]))
  with pytest.raises(ValueError, match=r"check_fairness: colors must hold colours in \[0, 2\), "
                     r"got colour 2 \(the values present are 1, 2: .*np.unique\(groups, "
                     r"return_inverse=True\)\[1\]\)"):
    F.check_fairness(h, np.array([1, 2, 1]), F.Balance(1, 2))
  with pytest.raises(ValueError, match=r"f: colors must give every colour in \[0, 3\) at least "
                     r"one point, got no point of colour 0 \(the values present are 1, 2"):
    _checks.check_every_color_present("f", "colors", np.array([1, 2, 2]), 3)
  assert _checks.check_every_color_present("f", "colors", np.array([0, 2, 1]), 3).tolist() == [1, 1, 1]
  with pytest.raises(ValueError, match=r"got colour 2$"):     # codes 0..2, no gap: no hint
    F.check_fairness(h, np.array([0, 2, 1]), F.BoundedRepresentation(1), num_colors=2)


def test_scope_under_x64_and_tiny_trees():
  rng = np.random.default_rng(50)
  with jax.enable_x64(True):
    h = make_tree(13, rng, 3)
    parent = np.asarray(h.parent)
    blocks = subtree_blocks(parent, rng, 13)
    np.testing.assert_array_equal(np.asarray(F.checked_nodes(h, F.ClusterScope(3, blocks))),
                                  oracle_checked(parent, 3, blocks))
    colors = rng.integers(0, 2, 13)
    res = F.check_fairness(h, colors, F.Proportional(Fraction(1, 5)),
                           scope=F.ClusterScope(3, blocks))
    status, _ = oracle_status(parent, colors, 2, "proportional", (Fraction(1, 5), None))
    status[~oracle_checked(parent, 3, blocks)] = 0
    np.testing.assert_array_equal(np.asarray(res.status), status)
  one = from_parent(np.array([-1]))
  assert bool(F.is_fair(one, np.array([0]), F.Balance(1, 1), scope=F.ClusterScope(1, [7])))
  two = from_parent(np.array([2, 2, -1]))
  assert not bool(F.is_fair(two, np.array([0, 0]), F.Balance(1, 1), scope=1))
  assert bool(F.is_fair(two, np.array([0, 0]), F.Balance(1, 1), scope=3))
  assert not bool(F.is_fair(two, np.array([0, 0]), F.Balance(1, 1),
                            scope=F.ClusterScope(2, [0, 1])))   # the root is a union


@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_is_fair_kernel_under_jit_and_vmap_matches_oracle():
  rng = np.random.default_rng(51)
  n = 21
  trees = [make_tree(n, rng, 2) for _ in range(3)]
  colors = jnp.asarray(rng.integers(0, 2, n), jnp.int32)
  blocks = rng.integers(0, 6, n)
  for cons in (F.Balance(1, 3), F.Proportional(Fraction(1, 5))):
    p = F.constraints.plan("t", cons, n, 2)
    f = jax.jit(jax.vmap(lambda par: F.is_fair_kernel(
        Hierarchy(parent=par), colors, p, num_colors=2, min_size=4,
        blocks=jnp.asarray(np.unique(blocks, return_inverse=True)[1], jnp.int32))))
    got = np.asarray(f(jnp.stack([t.parent for t in trees])))
    kind, params = (("balance", (1, 3)) if isinstance(cons, F.Balance)
                    else ("proportional", (Fraction(1, 5), None)))
    want = []
    for t in trees:
      status, _ = oracle_status(np.asarray(t.parent), np.asarray(colors), 2, kind, params)
      want.append(not status[oracle_checked(t.parent, 4, blocks)].any())
    assert got.tolist() == want
