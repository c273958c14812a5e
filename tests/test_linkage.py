"""Tests for fairhc_jax.agglomerative (linkage) against SciPy and NumPy oracles written here."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.cluster.hierarchy as sch
import scipy.spatial.distance as ssd

# The package re-exports the function ``linkage``, shadowing the submodule name.
import fairhc_jax.agglomerative as lk
from fairhc_jax.hierarchy import NO_PARENT, validate

METHODS = ("average", "single", "complete", "weighted", "ward")


def to_scipy_z(h):
  """Test-local conversion of a binary Hierarchy (node n+t = t-th merge) to Z."""
  parent = np.asarray(h.parent)
  height = np.asarray(h.height, np.float64)
  n = (parent.shape[0] + 1) // 2
  z = np.zeros((n - 1, 4))
  count = np.ones(2 * n - 1)
  for t in range(n - 1):
    kids = np.flatnonzero(parent == n + t)
    assert len(kids) == 2, f"node {n + t} has children {kids}"
    count[n + t] = count[kids].sum()
    z[t] = [kids[0], kids[1], height[n + t], count[n + t]]
  return z


def oracle_cophenetic(h):
  """Cophenetic matrix by walking parent pointers: height of the lowest common ancestor."""
  parent = np.asarray(h.parent)
  height = np.asarray(h.height, np.float64)
  n = (parent.shape[0] + 1) // 2
  ancestors = []
  for i in range(n):
    path, u = [], i
    while u != NO_PARENT:
      path.append(u)
      u = parent[u]
    ancestors.append(path)
  c = np.zeros((n, n))
  for i in range(n):
    on_path = set(ancestors[i])
    for j in range(n):
      if i != j:
        lca = next(u for u in ancestors[j] if u in on_path)
        c[i, j] = height[lca]
  return c


def minimax_distances(d):
  """Single-linkage cophenetic distances = minimax path distances (Floyd-Warshall)."""
  m = d.copy()
  for k in range(d.shape[0]):
    m = np.minimum(m, np.maximum(m[:, k:k + 1], m[k:k + 1, :]))
  np.fill_diagonal(m, 0)
  return m


def random_points(n, dim=3, seed=0):
  return np.random.default_rng(seed).normal(size=(n, dim))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [2, 3, 5, 17, 60])
def test_matches_scipy_float64(method, n):
  x = random_points(n, seed=n)
  y = ssd.pdist(x)
  with jax.enable_x64(True):
    h = lk.linkage(ssd.squareform(y), method)
    assert h.height.dtype == jnp.float64
    validate(h)
    z = to_scipy_z(h)
  zs = sch.linkage(y, method)
  np.testing.assert_allclose(z[:, 2], zs[:, 2], rtol=1e-10, atol=0)
  np.testing.assert_allclose(z[:, 3], zs[:, 3])
  np.testing.assert_allclose(oracle_cophenetic(h), ssd.squareform(sch.cophenet(zs)),
                             rtol=1e-10, atol=0)


@pytest.mark.parametrize("method", METHODS)
def test_from_points_matches_scipy(method):
  x = random_points(40, dim=5, seed=7)
  with jax.enable_x64(True):
    h = lk.linkage_from_points(x, method)
    z = to_scipy_z(h)
  zs = sch.linkage(x, method)
  np.testing.assert_allclose(z[:, 2], zs[:, 2], rtol=1e-10)
  np.testing.assert_allclose(sch.cophenet(z), sch.cophenet(zs), rtol=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_float32_default(method):
  x = random_points(50, seed=3)
  h = lk.linkage(ssd.squareform(ssd.pdist(x)).astype(np.float32), method)
  assert h.height.dtype == jnp.float32
  assert h.parent.dtype == jnp.int32
  validate(h)
  zs = sch.linkage(ssd.pdist(x), method)
  np.testing.assert_allclose(to_scipy_z(h)[:, 2], zs[:, 2], rtol=2e-5)


@pytest.mark.parametrize("method", METHODS)
def test_shrinking_phases_match_scipy(method, monkeypatch):
  # Compaction into smaller matrices normally starts at n >= 2048; force it
  # at n = 37 (37 -> 18 -> 9 -> 4 -> 2 slots). n = 37 is not used elsewhere,
  # so the kernel is traced afresh with the patched constant.
  monkeypatch.setattr(lk, "_MIN_CAPACITY", 2)
  x = random_points(37, seed=21)
  y = ssd.pdist(x)
  with jax.enable_x64(True):
    h = lk.linkage(ssd.squareform(y), method)
  validate(h)
  zs = sch.linkage(y, method)
  np.testing.assert_allclose(to_scipy_z(h)[:, 2], zs[:, 2], rtol=1e-10)
  np.testing.assert_allclose(sch.cophenet(to_scipy_z(h)), sch.cophenet(zs), rtol=1e-10)


def test_single_point():
  h = lk.linkage(np.zeros((1, 1)), "average")
  np.testing.assert_array_equal(np.asarray(h.parent), [NO_PARENT])
  np.testing.assert_array_equal(np.asarray(h.height), [0.0])


@pytest.mark.parametrize("method", METHODS)
def test_ties_valid_tree_and_single_cophenetic(method):
  # Points on a small integer grid: many equal distances.
  rng = np.random.default_rng(11)
  x = rng.integers(0, 3, size=(30, 2)).astype(np.float64)
  x += np.repeat(np.arange(30)[:, None] * 0, 2, axis=1)
  d = ssd.squareform(ssd.pdist(x))
  with jax.enable_x64(True):
    h = lk.linkage(d, method)
  validate(h)
  hts = np.asarray(h.height)[30:]
  assert np.all(np.diff(hts) >= -1e-12)  # reducible methods: monotone heights
  if method == "single":
    np.testing.assert_allclose(oracle_cophenetic(h), minimax_distances(d), atol=1e-12)
    zs = sch.linkage(ssd.pdist(x), "single")
    np.testing.assert_allclose(sch.cophenet(to_scipy_z(h)), sch.cophenet(zs), atol=1e-12)


def test_tie_breaking_all_equal():
  # All distances equal: smallest slot pair first, so slot 0 absorbs 1, 2, 3, ...
  n = 6
  d = np.ones((n, n)) - np.eye(n)
  for method in METHODS:
    h = lk.linkage(d, method)
    parent = np.asarray(h.parent)
    expected = [n, n, n + 1, n + 2, n + 3, n + 4] + [n + 1, n + 2, n + 3, n + 4, NO_PARENT]
    np.testing.assert_array_equal(parent, expected, err_msg=method)


def test_tie_breaking_pair_order():
  # Two tied closest pairs (2,3) and (0,4): the pair with the smaller slot first.
  d = np.full((5, 5), 10.0)
  np.fill_diagonal(d, 0)
  d[2, 3] = d[3, 2] = 1.0
  d[0, 4] = d[4, 0] = 1.0
  h = lk.linkage(d, "single")
  parent = np.asarray(h.parent)
  assert parent[0] == parent[4] == 5
  assert parent[2] == parent[3] == 6


@pytest.mark.parametrize("method", ["average", "ward"])
def test_weights_equal_expanded_point_set(method):
  rng = np.random.default_rng(5)
  n = 12
  x = rng.normal(size=(n, 2))
  w = rng.integers(1, 4, size=n)
  xe = np.repeat(x, w, axis=0)
  owner = np.repeat(np.arange(n), w)
  with jax.enable_x64(True):
    h = lk.linkage(ssd.squareform(ssd.pdist(x)), method, weights=w)
  validate(h)
  ze = sch.linkage(ssd.pdist(xe), method)
  num_copies = int(w.sum() - n)
  # The merges among copies come first, at height 0; the rest must agree.
  assert np.all(ze[:num_copies, 2] == 0) and np.all(ze[num_copies:, 2] > 0)
  np.testing.assert_allclose(to_scipy_z(h)[:, 2], ze[num_copies:, 2], rtol=1e-10)
  ce = ssd.squareform(sch.cophenet(ze))
  first = np.searchsorted(owner, np.arange(n))
  np.testing.assert_allclose(oracle_cophenetic(h), ce[np.ix_(first, first)],
                             rtol=1e-10, atol=1e-12)


def test_weights_ignored_by_single_complete_weighted():
  x = random_points(20, seed=9)
  d = ssd.squareform(ssd.pdist(x))
  w = np.arange(1, 21)
  for method in ("single", "complete", "weighted"):
    a = lk.linkage(d, method, weights=w)
    b = lk.linkage(d, method)
    np.testing.assert_array_equal(np.asarray(a.parent), np.asarray(b.parent))
    np.testing.assert_array_equal(np.asarray(a.height), np.asarray(b.height))


def test_compiles_once_per_n():
  # Cleared first, so earlier compiles of these sizes cannot hide a retrace.
  kernel = lk._linkage_kernel
  kernel.clear_cache()
  for n in (9, 13):
    for seed in range(3):
      d = ssd.squareform(ssd.pdist(random_points(n, seed=seed))).astype(np.float32)
      lk.linkage(d, "complete").parent.block_until_ready()
      # With vertex weights: same shapes, same compiled kernel.
      lk.linkage(d, "complete", weights=np.arange(1, n + 1)).parent.block_until_ready()
  assert kernel._cache_size() == 2


def test_under_jit_and_vmap_agglomerate():
  # The reusable loop: jit + vmap over a batch equals single calls and SciPy.
  xs = [random_points(15, seed=s) for s in range(3)]
  ds = np.stack([ssd.squareform(ssd.pdist(x)) for x in xs])

  @jax.jit
  def run(d):
    st = lk.init_state(d, None, "average")
    return lk.to_hierarchy(lk.agglomerate(st, lk.closest_pair, "average"))

  with jax.enable_x64(True):
    batch = jax.vmap(run)(jnp.asarray(ds))
    for b, x in enumerate(xs):
      single = run(jnp.asarray(ds[b]))
      np.testing.assert_array_equal(np.asarray(batch.parent[b]), np.asarray(single.parent))
      zs = sch.linkage(ssd.pdist(x), "average")
      np.testing.assert_allclose(to_scipy_z(single)[:, 2], zs[:, 2], rtol=1e-10)


def test_agglomerate_custom_rule_and_early_stop():
  # A custom rule: always merge the two active slots with the largest indices.
  n, k = 8, 3
  d = ssd.squareform(ssd.pdist(random_points(n, seed=1)))

  def last_two(st):
    idx = jnp.where(st.alive, jnp.arange(n), -1)
    b = jnp.max(idx)
    a = jnp.max(jnp.where(idx == b, -1, idx))
    return a, b

  st = lk.agglomerate(lk.init_state(jnp.asarray(d), None, "single"), last_two,
                      "single", num_merges=n - k)
  parent = np.asarray(st.parent)
  assert int(st.num_merges) == n - k
  assert np.asarray(st.alive).sum() == k
  # Roots: leaves 0..k-2 untouched and the chain node over leaves k-1..n-1.
  roots = np.flatnonzero(parent == NO_PARENT)
  np.testing.assert_array_equal(roots[roots < n], np.arange(k - 1))
  assert parent[n - 1] == n and parent[n - 2] == n
  # Single-linkage heights of this chain: minimax within the merged groups.
  hts = np.asarray(st.height)[n:2 * n - k]
  expect = [d[n - 2, n - 1]]
  for t in range(1, n - k):
    lo = n - 2 - t
    expect.append(d[lo, lo + 1:].min())
  np.testing.assert_allclose(hts, expect)


def test_lance_williams_formulas():
  dki, dkj, dij = np.array([2.0, 5.0]), np.array([4.0, 1.0]), 3.0
  ni, nj, nk = 2.0, 1.0, np.array([1.0, 3.0])
  got = {m: np.asarray(lk.lance_williams(m, dki, dkj, dij, ni, nj, nk)) for m in METHODS}
  np.testing.assert_allclose(got["single"], [2, 1])
  np.testing.assert_allclose(got["complete"], [4, 5])
  np.testing.assert_allclose(got["average"], [(4 + 4) / 3, (10 + 1) / 3])
  np.testing.assert_allclose(got["weighted"], [3, 3])
  np.testing.assert_allclose(got["ward"], [(3 * 2 + 2 * 4 - 3) / 4, (5 * 5 + 4 - 9) / 6])


@pytest.mark.parametrize("bad,match", [
    (np.ones((3, 4)), "square"),
    (np.array([[0, 1, 2], [1, 0, 1], [3, 1, 0.]]), "symmetric"),
    (np.array([[0, -1.], [-1, 0]]), "non-negative"),
    (np.array([[0, np.nan], [np.nan, 0]]), "finite"),
    (np.array([[0, np.inf], [np.inf, 0]]), "finite"),
])
def test_bad_distances(bad, match):
  with pytest.raises(ValueError, match=f"linkage: D must .*{match}"):
    lk.linkage(bad)


def test_bad_method_lists_options():
  with pytest.raises(ValueError, match="linkage: method must be one of 'average', "
                     "'single', 'complete', 'weighted', 'ward', got 'centroid'"):
    lk.linkage(np.zeros((2, 2)), "centroid")


@pytest.mark.parametrize("w,match", [
    ([1, 2], "int\\[3\\]"),
    ([1, 0, 2], "positive integers"),
    ([1, 1.5, 2], "positive integers"),
])
def test_bad_weights(w, match):
  d = ssd.squareform(ssd.pdist(random_points(3)))
  with pytest.raises(ValueError, match=f"linkage: weights must .*{match}"):
    lk.linkage(d, "average", weights=np.array(w))


def test_ward_rejects_non_euclidean():
  d = np.array([[0, 1, 10.], [1, 0, 1], [10, 1, 0]])  # violates the triangle inequality
  with pytest.raises(ValueError, match="linkage: D must be a Euclidean distance matrix"):
    lk.linkage(d, "ward")
  lk.linkage(d, "average")  # fine for the other methods


def test_bad_points():
  with pytest.raises(ValueError, match="linkage_from_points: X must be finite"):
    lk.linkage_from_points(np.array([[0.0, np.nan], [1.0, 2.0]]))


def test_overwrite_donates():
  d = jnp.asarray(ssd.squareform(ssd.pdist(random_points(10))), jnp.float32)
  expect = lk.linkage(d, "average")
  got = lk.linkage(d + 0, "average", overwrite=True)
  np.testing.assert_array_equal(np.asarray(got.parent), np.asarray(expect.parent))


@pytest.mark.parametrize("method", METHODS)
def test_compiled_kernel_has_no_matrix_copy(method):
  # Whole-matrix copies inside the merge loop would cost O(n^2) per merge.
  # The kernel with its input donated (as linkage_from_points and
  # overwrite=True run it) must have none at all; the non-donated one
  # differs only by the working copy of the caller's matrix at the entry.
  n = 64
  d = jnp.ones((n, n), jnp.float32)
  hlo = lk._linkage_kernel_donating.lower(d, jnp.ones(n, jnp.float32),
                                          method=method).compile().as_text()
  copies = [line for line in hlo.splitlines()
            if " copy(" in line and f"f32[{n},{n}]" in line]
  assert not copies, copies
  assert f"f32[{n},{n}]" in hlo  # the check looks at the right buffers


@pytest.mark.parametrize("method", METHODS)
def test_vmap_of_public_linkage_equals_single_calls(method):
  # The fairlet method vmaps linkage over blocks of small matrices.
  xs = [random_points(7, dim=2, seed=s) for s in range(3)]
  ds = np.stack([ssd.squareform(ssd.pdist(x)) for x in xs])
  with jax.enable_x64(True):
    batch = jax.vmap(lambda d: lk.linkage(d, method))(jnp.asarray(ds))
    for b, x in enumerate(xs):
      zs = sch.linkage(ssd.pdist(x), method)
      one = jax.tree_util.tree_map(lambda a, b=b: a[b], batch)
      np.testing.assert_allclose(to_scipy_z(one)[:, 2], zs[:, 2], rtol=1e-10)
      np.testing.assert_allclose(sch.cophenet(to_scipy_z(one)), sch.cophenet(zs), rtol=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_one_point_gives_the_one_leaf_tree(method):
  # Single linkage used to raise an IndexError here (issue 10 item 7).
  for h in (lk.linkage(np.zeros((1, 1)), method),
            lk.linkage_from_points(np.zeros((1, 3)), method)):
    np.testing.assert_array_equal(np.asarray(h.parent), [-1])
    np.testing.assert_array_equal(np.asarray(h.height), [0.0])


def test_weights_are_keyword_only():
  d = ssd.squareform(ssd.pdist(random_points(5)))
  with pytest.raises(TypeError, match="positional"):
    lk.linkage(d, "average", np.ones(5))
  with pytest.raises(TypeError, match="positional"):
    lk.linkage_from_points(random_points(5), "average", np.ones(5))


def test_merge_with_known_distance_equals_reading_it():
  # merge(..., d_ab=...) is what the fast kernel uses; the same pair and
  # distance give the same state as reading d(a, b) from the matrix.
  d = jnp.asarray(ssd.squareform(ssd.pdist(random_points(9))), jnp.float32)
  for method in METHODS:
    st = lk.init_state(d, None, method)
    a, b = lk.closest_pair(st)
    s1, r1 = lk.merge(st, a, b, method)
    s2, r2 = lk.merge(st, a, b, method, d_ab=st.dist[a, b])
    for x, y in zip(jax.tree_util.tree_leaves((s1, r1)), jax.tree_util.tree_leaves((s2, r2))):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_initial_minima_equal_numpy_first_index_with_ties():
  # Row blocks of 256 with a clamped partial last block (n = 300) on a
  # matrix with many exact ties (small integers) and the diagonal at inf:
  # the minimum and the FIRST index attaining it, as NumPy's argmin.
  n = 300
  rng = np.random.default_rng(0)
  a = rng.integers(1, 6, size=(n, n)).astype(np.float32)
  a = np.minimum(a, a.T)
  np.fill_diagonal(a, np.inf)
  m, first = lk.initial_minima(jnp.asarray(a))
  np.testing.assert_array_equal(np.asarray(m), a.min(1))
  np.testing.assert_array_equal(np.asarray(first), a.argmin(1))
  assert (a == a.min(1)[:, None]).sum(1).max() > 1  # ties are present


def test_agglomerate_closest_pair_loop_has_no_matrix_copy():
  # agglomerate() with the closest-pair rule used to copy the n x n matrix
  # twice per merge (the row reads fused into both in-place writes). Only
  # the entry's copy of the caller's matrix (a jit parameter, read-only) may
  # remain: no copy of any other n x n value.
  n = 64

  def run(d):
    st = lk.init_state(d, None, "average")
    return lk.agglomerate(st, lk.closest_pair, "average").parent

  hlo = jax.jit(run).lower(jnp.ones((n, n), jnp.float32)).compile().as_text()
  lines = hlo.splitlines()
  entry = lines[next(k for k, l in enumerate(lines) if l.startswith("ENTRY")):]
  params = {l.split("=")[0].strip().lstrip("%") for l in entry
            if " parameter(" in l}
  copies = [l for l in lines if " copy(" in l and f"f32[{n},{n}]" in l]
  inner = [l for l in copies
           if l.split("copy(")[1].split(")")[0].lstrip("%") not in params]
  assert not inner, inner
  assert len(copies) - len(inner) <= 1
