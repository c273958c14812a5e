"""Tests for fairhc_jax.objectives against independent NumPy oracles.

Two oracles, neither sharing code with the library's kernels:
* ``literal_*``: for every pair i < j, find the LCA by walking parent
  pointers, and sum ``s(i, j) * w(leaves(lca))`` (the definitions verbatim).
* ``lca_weight_matrix``: an O(n^2) float64 NumPy matrix of ``w(leaves(lca))``
  filled node by node (pairs split between two children of ``u`` get
  ``w(u)``), for larger ``n``.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.cluster.hierarchy as sch
from scipy.spatial.distance import pdist, squareform

from fairhc_jax import objectives as obj
from fairhc_jax.hierarchy import Hierarchy, from_parent


# ---------------------------------------------------------------------------
# Oracles (NumPy, literal).


def node_weights(parent, w):
  """w(leaves(T[u])) for every node, by walking up from each leaf."""
  out = np.zeros(len(parent))
  for i in range(len(w)):
    u = i
    while u >= 0:
      out[u] += w[i]
      u = parent[u]
  return out


def literal_lca_sum(parent, m, w, complement=False):
  """sum_{i<j} m[i, j] * f(lca), f = w(lca) or w(V) - w(lca); LCA by walking."""
  parent = np.asarray(parent)
  n = m.shape[0]
  wn = node_weights(parent, w)
  total = float(np.sum(w))
  tot = 0.0
  for i in range(n):
    anc = set()
    u = i
    while u >= 0:
      anc.add(u)
      u = parent[u]
    for j in range(i + 1, n):
      u = j
      while u not in anc:
        u = parent[u]
      f = total - wn[u] if complement else wn[u]
      tot += float(m[i, j]) * f
  return tot


def lca_weight_matrix(parent, w):
  """float64[n, n] of w(leaves(lca(i, j))), built node by node."""
  parent = np.asarray(parent)
  n = len(w)
  m = len(parent)
  leaves = [[i] for i in range(n)] + [[] for _ in range(m - n)]
  kids = [[] for _ in range(m)]
  for c in range(m):
    if parent[c] >= 0:
      kids[parent[c]].append(c)
  g = np.zeros((n, n))
  for u in range(n, m):  # children have smaller indices than parents
    if not kids[u]:
      continue
    wu = sum(w[i] for c in kids[u] for i in leaves[c])
    for a in range(len(kids[u])):
      for b in range(a + 1, len(kids[u])):
        ia, ib = leaves[kids[u][a]], leaves[kids[u][b]]
        g[np.ix_(ia, ib)] = wu
        g[np.ix_(ib, ia)] = wu
    leaves[u] = [i for c in kids[u] for i in leaves[c]]
  return g


def pair_total(m):
  m = np.asarray(m, dtype=np.float64)
  return float(np.sum(np.triu(m, 1)))


# ---------------------------------------------------------------------------
# Random trees and matrices.


def linkage_parent(z):
  n = z.shape[0] + 1
  parent = np.full(2 * n - 1, -1)
  for t, (a, b) in enumerate(z[:, :2].astype(int)):
    parent[a] = parent[b] = n + t
  return parent


def random_binary_parent(n, rng):
  """Random merge order (not a linkage), children before parents."""
  parent = np.full(2 * n - 1, -1)
  active = list(range(n))
  nxt = n
  while len(active) > 1:
    a, b = rng.choice(len(active), 2, replace=False)
    x, y = active[a], active[b]
    parent[x] = parent[y] = nxt
    active = [v for k, v in enumerate(active) if k not in (a, b)] + [nxt]
    nxt += 1
  return parent


def contract(parent, n, rng, frac=0.5):
  """Non-binary tree: contract a random fraction of non-root internal nodes."""
  parent = np.array(parent)
  m = len(parent)
  for u in range(n, m):
    if parent[u] >= 0 and rng.random() < frac:
      kids = np.flatnonzero(parent == u)
      parent[kids] = parent[u]
      parent[u] = -2
  keep = np.flatnonzero(parent != -2)
  relabel = -np.ones(m, int)
  relabel[keep] = np.arange(len(keep))
  newp = np.where(parent[keep] >= 0, relabel[np.maximum(parent[keep], 0)], -1)
  return newp


def caterpillar_parent(n):
  """Each spine node joins one leaf with the subtree below it."""
  parent = np.full(2 * n - 1, -1)
  if n == 1:
    return parent
  parent[0] = parent[1] = n
  for k in range(2, n):
    parent[k] = n + k - 1
    parent[n + k - 2] = n + k - 1
  return parent


def points(n, rng, d=3):
  return rng.normal(size=(n, d))


def dist_sim(x, dtype=np.float64):
  d = squareform(pdist(x)) if len(x) > 1 else np.zeros((1, 1))
  s = 1.0 / (1.0 + d)
  np.fill_diagonal(s, 0.0)
  return d.astype(dtype), s.astype(dtype)


def tree_cases(n, rng):
  x = points(n, rng)
  out = {"random_binary": from_parent(random_binary_parent(n, rng))}
  if n >= 2:
    out["average_linkage"] = from_parent(linkage_parent(sch.linkage(x, "average")))
  out["non_binary"] = from_parent(contract(random_binary_parent(n, rng), n, rng),
                                  num_leaves=n)
  out["caterpillar"] = from_parent(caterpillar_parent(n))
  out["star"] = from_parent(np.concatenate([np.full(n, n), [-1]]) if n > 1
                            else np.array([-1]), num_leaves=n)
  return x, out


ALL_OBJECTIVES = [
    ("cost", obj.dasgupta_cost, "S", False),
    ("revenue", obj.moseley_wang_revenue, "S", True),
    ("value", obj.cohen_addad_value, "D", False),
]


def oracle_for(name, parent, d, s, w):
  m = d if name == "value" else s
  return literal_lca_sum(parent, m, w, complement=(name == "revenue"))


def rel_err(a, b):
  return abs(float(a) - float(b)) / max(abs(float(b)), 1e-300)


# ---------------------------------------------------------------------------
# Hand-worked examples.


def test_hand_worked_three_points():
  # Tree ((0, 1), 2); s(0,1)=a, s(0,2)=b, s(1,2)=c.
  a, b, c = 0.5, 0.25, 0.125
  s = np.array([[0, a, b], [a, 0, c], [b, c, 0]], np.float32)
  h = from_parent(np.array([3, 3, 4, 4, -1]))
  assert float(obj.dasgupta_cost(h, s)) == pytest.approx(2 * a + 3 * b + 3 * c)
  assert float(obj.moseley_wang_revenue(h, s)) == pytest.approx(a * (3 - 2))
  assert float(obj.cohen_addad_value(h, s)) == pytest.approx(2 * a + 3 * b + 3 * c)
  assert float(obj.revenue_upper_bound(s)) == pytest.approx((3 - 2) * (a + b + c))
  assert float(obj.value_upper_bound(s)) == pytest.approx(3 * (a + b + c))
  # Weighted: w = (1, 2, 3): w({0,1}) = 3, w(V) = 6, min pair weight = 3.
  w = np.array([1, 2, 3])
  assert float(obj.dasgupta_cost(h, s, weights=w)) == pytest.approx(3 * a + 6 * b + 6 * c)
  assert float(obj.moseley_wang_revenue(h, s, weights=w)) == pytest.approx(a * (6 - 3))
  assert float(obj.revenue_upper_bound(s, weights=w)) == pytest.approx((6 - 3) * (a + b + c))
  assert float(obj.value_upper_bound(s, weights=w)) == pytest.approx(6 * (a + b + c))
  # The star on three leaves: every pair splits at the root.
  star = from_parent(np.array([3, 3, 3, -1]), num_leaves=3)
  assert float(obj.dasgupta_cost(star, s)) == pytest.approx(3 * (a + b + c))
  assert float(obj.moseley_wang_revenue(star, s)) == 0.0


def test_hand_worked_four_points_non_binary():
  # Root 5 has children {leaf 3, node 4}; node 4 has children {0, 1, 2}.
  h = from_parent(np.array([4, 4, 4, 5, 5, -1]), num_leaves=4)
  s = np.ones((4, 4), np.float32) - np.eye(4, dtype=np.float32)
  # Pairs inside {0,1,2}: 3 pairs * 3; pairs with 3: 3 pairs * 4.
  assert float(obj.dasgupta_cost(h, s)) == pytest.approx(9 + 12)
  assert float(obj.moseley_wang_revenue(h, s)) == pytest.approx(3 * (4 - 3))
  w = np.array([1, 1, 2, 5])  # w({0,1,2}) = 4, w(V) = 9
  assert float(obj.dasgupta_cost(h, s, weights=w)) == pytest.approx(3 * 4 + 3 * 9)
  assert float(obj.moseley_wang_revenue(h, s, weights=w)) == pytest.approx(3 * 5)


# ---------------------------------------------------------------------------
# Against the literal oracle.


@pytest.mark.parametrize("n", [1, 2, 3, 7, 37])
def test_matches_literal_oracle(n):
  rng = np.random.default_rng(100 + n)
  x, trees = tree_cases(n, rng)
  d, s = dist_sim(x, np.float32)
  w = rng.integers(1, 6, size=n)
  for tname, h in trees.items():
    parent = np.asarray(h.parent)
    for weights in (None, w):
      wo = np.ones(n) if weights is None else weights
      for name, fn, arg, _ in ALL_OBJECTIVES:
        m = d if arg == "D" else s
        got = fn(h, m, weights=weights)
        want = oracle_for(name, parent, d, s, wo)
        assert got.dtype == jnp.float32
        assert rel_err(got, want) <= 2e-5 or abs(float(got) - want) <= 1e-5, (
            tname, name, weights is not None, float(got), want)


@pytest.mark.parametrize("block_size", [1, 5, 16])
def test_block_sizes_agree_with_oracle(block_size):
  # n = 37 is not a multiple of the block sizes; the last block is padded.
  n = 37
  rng = np.random.default_rng(7)
  x, trees = tree_cases(n, rng)
  d, s = dist_sim(x)
  w = rng.integers(1, 4, size=n)
  with jax.enable_x64(True):
    for tname, h in trees.items():
      parent = np.asarray(h.parent)
      for kernel, name, m in [(obj.dasgupta_cost_kernel, "cost", s),
                              (obj.moseley_wang_revenue_kernel, "revenue", s),
                              (obj.cohen_addad_value_kernel, "value", d)]:
        got = kernel(h, jnp.asarray(m), jnp.asarray(w), block_size=block_size)
        want = oracle_for(name, parent, d, s, w)
        assert rel_err(got, want) <= 1e-12, (tname, name, float(got), want)


def test_float64_matches_oracle_tightly():
  n = 37
  rng = np.random.default_rng(3)
  x, trees = tree_cases(n, rng)
  d, s = dist_sim(x)
  w = rng.integers(1, 9, size=n)
  with jax.enable_x64(True):
    for tname, h in trees.items():
      for name, fn, arg, _ in ALL_OBJECTIVES:
        m = d if arg == "D" else s
        got = fn(h, m, weights=w)
        assert got.dtype == jnp.float64
        want = oracle_for(name, np.asarray(h.parent), d, s, w)
        assert rel_err(got, want) <= 1e-12, (tname, name)
      assert rel_err(obj.value_upper_bound(d, weights=w), np.sum(w) * pair_total(d)) <= 1e-13
      two = np.sort(w)[:2].sum()
      assert rel_err(obj.revenue_upper_bound(s, weights=w),
                     (np.sum(w) - two) * pair_total(s)) <= 1e-13


def test_ties_and_equal_distances():
  # Integer grid points: many equal distances and many tied linkage merges.
  rng = np.random.default_rng(5)
  x = rng.integers(0, 3, size=(37, 2)).astype(float)
  d, s = dist_sim(x)
  h = from_parent(linkage_parent(sch.linkage(x, "single")))
  with jax.enable_x64(True):
    for name, fn, arg, _ in ALL_OBJECTIVES:
      m = d if arg == "D" else s
      want = oracle_for(name, np.asarray(h.parent), d, s, np.ones(37))
      assert rel_err(fn(h, m), want) <= 1e-12
  # A constant similarity: cost depends only on the tree shape.
  const = np.ones((6, 6)) - np.eye(6)
  cat = from_parent(caterpillar_parent(6))
  want = sum(max(i, j) + 1 for i in range(6) for j in range(i + 1, 6))
  assert float(obj.dasgupta_cost(cat, const)) == pytest.approx(want)


def test_mirrored_caterpillar():
  # Leaves visited deepest-last: the DFS gaps decrease along the order.
  n = 37
  parent = np.full(2 * n - 1, -1)
  # Spine nodes n..2n-2; node n+k joins leaf k with node n+k+1 (root = n).
  for k in range(n - 2):
    parent[k] = n + k
    parent[n + k + 1] = n + k
  parent[n - 2] = parent[n - 1] = 2 * n - 2
  parent[n] = -1
  h = from_parent(parent)  # relabelled so children come first
  rng = np.random.default_rng(11)
  d, s = dist_sim(points(n, rng))
  w = rng.integers(1, 4, size=n)
  with jax.enable_x64(True):
    for name, fn, arg, _ in ALL_OBJECTIVES:
      m = d if arg == "D" else s
      want = oracle_for(name, np.asarray(h.parent), d, s, w)
      assert rel_err(fn(h, m, weights=w), want) <= 1e-12


# ---------------------------------------------------------------------------
# Bounds, identities, larger n.


@pytest.mark.parametrize("seed", range(4))
def test_upper_bounds_hold(seed):
  rng = np.random.default_rng(seed)
  n = 37
  x, trees = tree_cases(n, rng)
  d, s = dist_sim(x)
  for weights in (None, rng.integers(1, 7, size=n)):
    rb = float(obj.revenue_upper_bound(s, weights=weights))
    vb = float(obj.value_upper_bound(d, weights=weights))
    for h in trees.values():
      assert float(obj.moseley_wang_revenue(h, s, weights=weights)) <= rb * (1 + 1e-5)
      assert float(obj.cohen_addad_value(h, d, weights=weights)) <= vb * (1 + 1e-5)


def test_one_point():
  h = from_parent(np.array([-1]))
  z = np.zeros((1, 1), np.float32)
  for fn in (obj.dasgupta_cost, obj.moseley_wang_revenue, obj.cohen_addad_value):
    assert float(fn(h, z)) == 0.0
    assert float(fn(h, z, weights=[3])) == 0.0
  assert float(obj.revenue_upper_bound(z)) == 0.0
  assert float(obj.value_upper_bound(z, weights=[2])) == 0.0


@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_medium_n_against_matrix_oracle():
  n = 300
  rng = np.random.default_rng(21)
  x = points(n, rng, d=4)
  d, s = dist_sim(x)
  w = rng.integers(1, 5, size=n)
  trees = {"avg": from_parent(linkage_parent(sch.linkage(x, "average"))),
           "nonbin": from_parent(contract(random_binary_parent(n, rng), n, rng, 0.7),
                                 num_leaves=n)}
  for h in trees.values():
    g = lca_weight_matrix(np.asarray(h.parent), w)
    iu = np.triu_indices(n, 1)
    want_cost = float(np.sum(s[iu] * g[iu]))
    want_rev = float(np.sum(s[iu] * (np.sum(w) - g[iu])))
    want_val = float(np.sum(d[iu] * g[iu]))
    got32 = [obj.dasgupta_cost(h, s.astype(np.float32), weights=w),
             obj.moseley_wang_revenue(h, s.astype(np.float32), weights=w),
             obj.cohen_addad_value(h, d.astype(np.float32), weights=w)]
    for got, want in zip(got32, [want_cost, want_rev, want_val]):
      assert rel_err(got, want) <= 1e-5
    with jax.enable_x64(True):
      got64 = [obj.dasgupta_cost(h, s, weights=w),
               obj.moseley_wang_revenue(h, s, weights=w),
               obj.cohen_addad_value(h, d, weights=w)]
      for got, want in zip(got64, [want_cost, want_rev, want_val]):
        assert rel_err(got, want) <= 1e-11


@pytest.mark.slow
def test_accuracy_at_ten_thousand():
  """Relative error <= 1e-4 in float32 and <= 1e-9 in float64 at n = 10,000."""
  n = 10_000
  rng = np.random.default_rng(0)
  x = points(n, rng, d=5)
  d, s = dist_sim(x)
  h = from_parent(linkage_parent(sch.linkage(x, "average")))
  g = lca_weight_matrix(np.asarray(h.parent), np.ones(n))
  iu = np.triu_indices(n, 1)
  sv, dv, gv = s[iu], d[iu], g[iu]
  del g
  want = {"cost": float(np.sum(sv * gv)), "revenue": float(np.sum(sv * (n - gv))),
          "value": float(np.sum(dv * gv))}
  del sv, dv, gv
  for name, fn, arg, _ in ALL_OBJECTIVES:
    m = d if arg == "D" else s
    assert rel_err(fn(h, m.astype(np.float32)), want[name]) <= 1e-4, name
  with jax.enable_x64(True):
    for name, fn, arg, _ in ALL_OBJECTIVES:
      m = d if arg == "D" else s
      assert rel_err(fn(h, m), want[name]) <= 1e-9, name


# ---------------------------------------------------------------------------
# Kernels: vmap, tracing, recompilation.


@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_vmap_over_trees_and_weights_equals_loop():
  n = 12
  rng = np.random.default_rng(9)
  _, s = dist_sim(points(n, rng))
  s = jnp.asarray(s, jnp.float32)
  trees = [from_parent(random_binary_parent(n, rng)) for _ in range(3)]
  trees.append(from_parent(contract(random_binary_parent(n, rng), n, rng), num_leaves=n))
  batch = Hierarchy(parent=jnp.stack([t.parent for t in trees]))
  ones = jnp.ones(n, jnp.int32)
  got = jax.vmap(obj.dasgupta_cost_kernel, in_axes=(0, None, None))(batch, s, ones)
  want = jnp.stack([obj.dasgupta_cost_kernel(t, s, ones) for t in trees])
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)
  ws = jnp.asarray(rng.integers(1, 5, size=(5, n)), jnp.int32)
  got = jax.vmap(obj.moseley_wang_revenue_kernel, in_axes=(None, None, 0))(trees[0], s, ws)
  want = [literal_lca_sum(np.asarray(trees[0].parent), np.asarray(s), np.asarray(wk), True)
          for wk in ws]
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)


def test_public_function_under_jit():
  n = 7
  rng = np.random.default_rng(1)
  d, s = dist_sim(points(n, rng), np.float32)
  h = from_parent(random_binary_parent(n, rng))
  f = jax.jit(lambda hh, m: obj.cohen_addad_value(hh, m))
  assert rel_err(f(h, d), literal_lca_sum(np.asarray(h.parent), d, np.ones(n))) <= 1e-5


def test_no_recompilation_for_same_shapes():
  n = 7
  rng = np.random.default_rng(2)
  def raw(h, s, w):
    return obj._lca_weight_sum.__wrapped__(
        h.parent, s, w, complement=False, block_size=obj.DEFAULT_BLOCK_SIZE)
  counted = jax.jit(chex.assert_max_traces(raw, n=1))
  s1 = jnp.asarray(dist_sim(points(n, rng), np.float32)[1])
  s2 = jnp.asarray(dist_sim(points(n, rng), np.float32)[1])
  h1 = from_parent(random_binary_parent(n, rng))
  h2 = from_parent(contract(random_binary_parent(n, rng), n, rng), num_leaves=n)
  w = jnp.ones(n, jnp.int32)
  counted(h1, s1, w)
  counted(h2, s2, w + 1)  # new values, same shapes: no new trace
  h3 = from_parent(random_binary_parent(3, rng))
  with pytest.raises(AssertionError):
    counted(h3, s1[:3, :3], w[:3])  # a new shape would retrace
  # The public entry points reuse their compiled kernels too.
  for fn in (obj.dasgupta_cost, obj.moseley_wang_revenue, obj.cohen_addad_value):
    fn(h1, s1)
    size = obj._lca_weight_sum._cache_size()
    fn(h2, s2, weights=np.arange(1, n + 1))
    assert obj._lca_weight_sum._cache_size() == size


# ---------------------------------------------------------------------------
# Bad input.


def _h3():
  return from_parent(np.array([3, 3, 4, 4, -1]))


S3 = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0]], np.float32)


@pytest.mark.parametrize("fn,arg", [(obj.dasgupta_cost, "S"),
                                    (obj.moseley_wang_revenue, "S"),
                                    (obj.cohen_addad_value, "D")])
def test_rejects_bad_input(fn, arg):
  name = fn.__name__
  h = _h3()
  with pytest.raises(TypeError, match=f"{name}: h must be a Hierarchy"):
    fn(np.array([3, 3, 4, 4, -1]), S3)
  with pytest.raises(ValueError, match=f"{name}: h must have capacity 2n - 1 = 3"):
    fn(h, S3[:2, :2])
  with pytest.raises(ValueError, match=f"{name}: {arg} must be a square"):
    fn(h, S3[:2])
  bad = S3.copy()
  bad[0, 1] = np.nan
  with pytest.raises(ValueError, match=f"{name}: {arg} must be finite"):
    fn(h, bad)
  with pytest.raises(ValueError, match=f"{name}: {arg} must be non-negative"):
    fn(h, -S3)
  asym = S3.copy()
  asym[0, 1] = 5
  with pytest.raises(ValueError, match=f"{name}: {arg} must be symmetric"):
    fn(h, asym)
  cyc = Hierarchy(parent=jnp.array([3, 3, 4, 4, 3], jnp.int32))
  with pytest.raises(ValueError, match=f"{name}: h must be a valid hierarchy"):
    fn(cyc, S3)
  with pytest.raises(ValueError, match=f"{name}: weights must hold positive integers"):
    fn(h, S3, weights=[1, 0, 2])
  with pytest.raises(ValueError, match=f"{name}: weights must hold positive integers"):
    fn(h, S3, weights=[1, 1.5, 2])
  with pytest.raises(ValueError, match=r"weights must be int\[3\]"):
    fn(h, S3, weights=[1, 2])


def test_bounds_reject_bad_input():
  with pytest.raises(ValueError, match="revenue_upper_bound: S must be a square"):
    obj.revenue_upper_bound(np.ones((2, 3)))
  with pytest.raises(ValueError, match="value_upper_bound: D must be non-negative"):
    obj.value_upper_bound(-S3)
  with pytest.raises(ValueError, match=r"value_upper_bound: weights must be int\[3\]"):
    obj.value_upper_bound(S3, weights=[1, 1])


@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_heights_present_or_none_compile_once():
  # The same tree with and without heights: one compile per objective kernel,
  # whatever compiled before (the caches are cleared first).
  n = 9
  rng = np.random.default_rng(4)
  d, s = dist_sim(points(n, rng), np.float32)
  from fairhc_jax.agglomerative import linkage
  h = linkage(d)
  bare = Hierarchy(parent=h.parent)
  assert h.height is not None
  obj._lca_weight_sum.clear_cache()
  obj._leaf_order_gaps.clear_cache()
  vals = []
  for tree in (h, bare, h):
    vals.append([float(obj.dasgupta_cost(tree, s)), float(obj.cohen_addad_value(tree, d)),
                 float(obj.moseley_wang_revenue(tree, s))])
    jax.block_until_ready(obj.leaf_order_gaps(tree, jnp.ones(n, jnp.int32)))
  assert vals[0] == vals[1] == vals[2]
  # Two kernels of one jitted function: cost/value share one, revenue the other.
  assert obj._lca_weight_sum._cache_size() == 2
  assert obj._leaf_order_gaps._cache_size() == 1


# ---------------------------------------------------------------------------
# tree_objectives: all five from D in one pass.


def _bounds_oracle(d, s, w):
  """Literal upper bounds: (w(V) - two smallest weights) * s(V), w(V) * d(V)."""
  n = d.shape[0]
  iu = np.triu_indices(n, 1)
  sv, dv = float(np.sum(s[iu])), float(np.sum(d[iu]))
  ws = np.sort(np.asarray(w, np.float64))
  rfac = float(ws.sum() - ws[:2].sum()) if n >= 2 else 0.0
  return rfac * sv, float(ws.sum()) * dv


@pytest.mark.parametrize("n", [1, 2, 3, 37])
def test_tree_objectives_matches_literal_oracles(n):
  rng = np.random.default_rng(300 + n)
  x, trees = tree_cases(n, rng)
  d, s = dist_sim(x)  # float64 oracle inputs; s = 1 / (1 + d), zero diagonal
  w = rng.integers(1, 6, size=n)
  d32 = d.astype(np.float32)
  for tname, h in trees.items():
    parent = np.asarray(h.parent)
    for weights in (None, w):
      wo = np.ones(n) if weights is None else weights
      got = obj.tree_objectives(h, d32, weights=weights)
      rub, vub = _bounds_oracle(d, s, wo)
      want = {"cost": literal_lca_sum(parent, s, wo),
              "revenue": literal_lca_sum(parent, s, wo, complement=True),
              "value": literal_lca_sum(parent, d, wo),
              "revenue_upper_bound": rub, "value_upper_bound": vub}
      for field, v in want.items():
        g = getattr(got, field)
        assert g.dtype == jnp.float32
        assert rel_err(g, v) <= 3e-5 or abs(float(g) - v) <= 1e-5, (tname, field, float(g), v)


def _neg_exp(d):
  return jnp.exp(-d)


def test_tree_objectives_float64_custom_similarity_and_blocks():
  n = 37
  rng = np.random.default_rng(8)
  x, trees = tree_cases(n, rng)
  d, _ = dist_sim(x)
  s = np.exp(-d)
  np.fill_diagonal(s, 0.0)
  w = rng.integers(1, 4, size=n)
  with jax.enable_x64(True):
    for tname, h in trees.items():
      parent = np.asarray(h.parent)
      for bs in (1, 5, 64):
        got = obj.tree_objectives_kernel(h, jnp.asarray(d), jnp.asarray(w),
                                         similarity=_neg_exp, block_size=bs)
        assert got.cost.dtype == jnp.float64
        rub, vub = _bounds_oracle(d, s, w)
        assert rel_err(got.cost, literal_lca_sum(parent, s, w)) <= 1e-12
        assert rel_err(got.revenue, literal_lca_sum(parent, s, w, complement=True)) <= 1e-12
        assert rel_err(got.value, literal_lca_sum(parent, d, w)) <= 1e-12
        assert rel_err(got.revenue_upper_bound, rub) <= 1e-12
        assert rel_err(got.value_upper_bound, vub) <= 1e-12, tname


def test_tree_objectives_rejects_and_validate_false():
  h = _h3()
  with pytest.raises(TypeError, match="tree_objectives: similarity must be None or an elementwise"):
    obj.tree_objectives(h, S3, similarity=3)
  bad = S3.copy()
  bad[0, 1] = 5
  with pytest.raises(ValueError, match="tree_objectives: D must be symmetric"):
    obj.tree_objectives(h, bad)
  with pytest.raises(ValueError, match="tree_objectives: h must have capacity"):
    obj.tree_objectives(h, S3[:2, :2], validate=False)
  # validate=False: same numbers for a valid matrix, no value checks.
  a = obj.tree_objectives(h, S3)
  b = obj.tree_objectives(h, S3, validate=False)
  assert float(a.value) == float(b.value) and float(a.cost) == float(b.cost)
  assert float(obj.dasgupta_cost(h, S3, validate=False)) == float(obj.dasgupta_cost(h, S3))


# Steps of several blocks with a padded (empty) block in the last step, and
# the smallest steps (two blocks, the kernel's minimum): (block_size,
# step_elements) for n = 37 (B x n entries per block): nb = 8, K = 3 -> 9
# blocks (one padded); nb = 10, K = 2; nb = 13, K = 2 -> 14 (one padded).
_STEP_CASES = [(5, 3 * 5 * 37), (4, 1), (3, 1)]


def test_blocked_sums_multi_step_and_padded_blocks_float64():
  n = 37
  rng = np.random.default_rng(11)
  x, trees = tree_cases(n, rng)
  d, s = dist_sim(x)
  w = rng.integers(1, 4, size=n)
  wants = {}
  for tname, h in trees.items():
    parent = np.asarray(h.parent)
    wants[tname] = ([literal_lca_sum(parent, d, w), literal_lca_sum(parent, s, w),
                     literal_lca_sum(parent, s, w, complement=True), pair_total(d),
                     pair_total(s)], literal_lca_sum(parent, d, w, complement=True))
  with jax.enable_x64(True):
    dj, wj = jnp.asarray(d), jnp.asarray(w)
    for bs, step in _STEP_CASES:
      def both(p, m, ww, bs=bs, step=step):
        lay = obj._leaf_order_gaps(p, ww)
        return (obj._blocked_sums(m, *lay, obj._TREE_TERMS, obj.default_similarity,
                                  bs, step),
                obj._blocked_sums(m, *lay, (("m", "complement"),), None, bs, step))
      f = jax.jit(both)
      for tname, h in trees.items():
        want, want_comp = wants[tname]
        got, comp = f(h.parent, dj, wj)
        for a, b in zip(got, want):
          assert rel_err(a, b) <= 1e-12, (bs, step, tname, float(a), b)
        comp = comp[0]
        assert rel_err(comp, want_comp) <= 1e-12, (bs, step, tname)
