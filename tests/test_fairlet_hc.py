"""Tests of fairhc_jax.algorithms.fairlet_hc against NumPy oracles written here.

The fairness checks, the leaf-set extraction and the average-linkage oracle
are Python loops that share no code with the library.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairhc_jax import fairlets as fl
from fairhc_jax.algorithms import fairlet_hc as fhc
from fairhc_jax.hierarchy import validate


# ---------------------------------------------------------------------------
# Oracles.


def clusters(parent):
  """{node: frozenset(leaves)} for every used internal node, by walking up."""
  parent = np.asarray(parent)
  m = len(parent)
  n = (m + 1) // 2
  out = {}
  for leaf in range(n):
    u = leaf
    seen = 0
    while parent[u] >= 0:
      u = parent[u]
      out.setdefault(u, set()).add(leaf)
      seen += 1
      assert seen < m, "cycle"
  return {u: frozenset(s) for u, s in out.items()}


def check_tree(parent, n):
  """Every leaf appears once under the root; returns the clusters."""
  parent = np.asarray(parent)
  roots = [u for u in range(len(parent)) if parent[u] == -1]
  assert len(roots) == 1
  cl = clusters(parent)
  if n > 1:
    assert cl[roots[0]] == frozenset(range(n))
  return cl


def is_fair(members, colors, balance=None, t=None):
  counts = {}
  for x in members:
    counts[colors[x]] = counts.get(colors[x], 0) + 1
  if balance is not None:
    b, r = balance
    c0, c1 = counts.get(0, 0), counts.get(1, 0)
    return min(c0, c1) * r >= max(c0, c1) * b
  return all(c * t <= len(members) for c in counts.values())


def average_linkage_oracle(D, weights):
  """Naive weighted average linkage (UPGMA): list of (cluster, height).

  Distance between clusters A, B: sum over points a in A, b in B of
  w_a w_b D[a, b] divided by w(A) w(B). Ties: the pair with the smallest
  (min A, min B) is merged first.
  """
  act = [frozenset([i]) for i in range(len(D))]
  merges = []
  while len(act) > 1:
    best = None
    for i in range(len(act)):
      for j in range(i + 1, len(act)):
        A, B = act[i], act[j]
        s = sum(weights[a] * weights[b] * D[a, b] for a in A for b in B)
        d = s / (sum(weights[a] for a in A) * sum(weights[b] for b in B))
        if best is None or d < best[0]:
          best = (d, i, j)
    d, i, j = best
    new = act[i] | act[j]
    merges.append((new, d))
    act = [c for k, c in enumerate(act) if k not in (i, j)] + [new]
  return merges


def fair_tree_oracle(D, f):
  """The paper's tree: average linkage in each fairlet, then over fairlets."""
  f = np.asarray(f)
  k = f.max() + 1
  out = {}
  for a in range(k):
    pts = np.flatnonzero(f == a)
    for c, h in average_linkage_oracle(D[np.ix_(pts, pts)], np.ones(len(pts))):
      out[frozenset(pts[list(c)].tolist())] = h
  members = [np.flatnonzero(f == a) for a in range(k)]
  mean = np.array([[D[np.ix_(members[a], members[b])].mean() for b in range(k)]
                   for a in range(k)])
  for c, h in average_linkage_oracle(mean, np.array([len(m) for m in members])):
    out[frozenset(np.concatenate([members[a] for a in c]).tolist())] = h
  return out


def instance(seed, n, minority):
  rng = np.random.default_rng(seed)
  X = rng.normal(size=(n, 3))
  colors = np.zeros(n, np.int32)
  colors[rng.permutation(n)[:minority]] = 1
  return X, colors


def euclid(X):
  return np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))


# ---------------------------------------------------------------------------
# The fair tree against the oracle.


@pytest.mark.parametrize("bal,n,minority", [((1, 2), 14, 5), ((1, 3), 13, 4), ((2, 3), 10, 4)])
def test_fairlet_tree_equals_numpy_transcription(bal, n, minority):
  with jax.enable_x64(True):
    X, colors = instance(n, n, minority)
    D = euclid(X)
    dec = fl.balance_decomposition(jax.random.key(n), colors, bal)
    h = fhc.fairlet_tree(D, dec)
    validate(h)
    cl = check_tree(h.parent, n)
    expect = fair_tree_oracle(D, np.asarray(dec.fairlet_of))
    got = {c: float(h.height[u]) for u, c in cl.items()}
    assert set(got) == set(expect)
    for c, hgt in expect.items():
      np.testing.assert_allclose(got[c], hgt, rtol=1e-10)


@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_fairlet_tree_singletons_and_one_fairlet():
  with jax.enable_x64(True):
    X, _ = instance(0, 5, 0)
    D = euclid(X)
    for f in ([0, 1, 2, 3, 4], [0, 0, 0, 0, 0], [0, 0, 1, 2, 1]):
      dec = fl.decomposition_from_assignment(np.array(f))
      for inner in fhc.INNER:
        h = fhc.fairlet_tree(D, dec, inner=inner)
        validate(h)
        cl = check_tree(h.parent, 5)
        fairlets = {frozenset(np.flatnonzero(np.array(f) == a).tolist())
                    for a in range(max(f) + 1)}
        unions = set(cl.values())
        # Every fairlet of size >= 2 is a node; every node is a union of
        # fairlets or (linkage) lies inside one.
        assert {s for s in fairlets if len(s) > 1} <= unions
        for c in unions:
          inside = any(c < s for s in fairlets)
          whole = all(s <= c or not (s & c) for s in fairlets)
          assert whole or (inner == "linkage" and inside)
    h1 = fhc.fairlet_tree(np.zeros((1, 1)), fl.decomposition_from_assignment(np.array([0])))
    assert np.asarray(h1.parent).tolist() == [-1]


# ---------------------------------------------------------------------------
# The pipeline.


def assert_fair(parent, colors, f, inner, **target):
  f = np.asarray(f)
  fairlets = [frozenset(np.flatnonzero(f == a).tolist()) for a in range(f.max() + 1)]
  for members in fairlets:
    assert is_fair(members, colors, **target)
  for c in check_tree(parent, len(colors)).values():
    if inner == "linkage" and any(c < s for s in fairlets):
      continue  # strictly inside one fairlet: below the fair layer
    assert is_fair(c, colors, **target), sorted(c)


@pytest.mark.parametrize("inner", ["linkage", "flat"])
@pytest.mark.parametrize("schedule", ["fast", "random", "none"])
def test_pipeline_two_colours_fair_and_complete(schedule, inner):
  X, colors = instance(1, 40, 12)
  r = fhc.fair_hierarchical_clustering(jax.random.key(0), X, colors, balance=(1, 3),
                                       schedule=schedule, inner=inner)
  validate(r.hierarchy)
  assert_fair(r.hierarchy.parent, colors, r.fairlets, inner, balance=(1, 3))
  s = r.stats
  assert s.phi_after <= s.phi_before * (1 + 1e-6)
  if schedule == "none":
    assert s.swaps == 0 and s.phi_after == s.phi_before
  else:
    assert s.swaps > 0 and s.phi_after < s.phi_before
  D = euclid(X)
  f = np.asarray(r.fairlets)
  phi = sum(D[a, b] for a in range(40) for b in range(a + 1, 40) if f[a] == f[b])
  np.testing.assert_allclose(s.phi_after, phi, rtol=1e-4)
  np.testing.assert_allclose(s.ratio_fairlets_after, phi / (D.sum() / 2), rtol=1e-4)


@pytest.mark.parametrize("inner", ["linkage", "flat"])
@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_pipeline_multi_colour_cap(inner):
  rng = np.random.default_rng(3)
  X = rng.normal(size=(40, 2))
  colors = rng.permutation(np.arange(40) % 4).astype(np.int32)  # 10 of each
  r = fhc.fair_hierarchical_clustering(jax.random.key(2), X, colors, alpha=0.25,
                                       inner=inner)
  validate(r.hierarchy)
  assert_fair(r.hierarchy.parent, colors, r.fairlets, inner, t=4)
  assert r.stats.max_fairlet_size <= 7


def test_pipeline_equals_numpy_tree_on_its_fairlets_and_is_locally_optimal():
  with jax.enable_x64(True):
    X, colors = instance(4, 16, 6)
    D = euclid(X)
    r = fhc.fair_hierarchical_clustering(jax.random.key(5), X, colors, balance=(1, 2))
    f = np.asarray(r.fairlets)
    cl = check_tree(r.hierarchy.parent, 16)
    expect = fair_tree_oracle(D, f)
    got = {c: float(r.hierarchy.height[u]) for u, c in cl.items()}
    assert set(got) == set(expect)
    for c, hgt in expect.items():
      np.testing.assert_allclose(got[c], hgt, rtol=1e-10)
    # No same-colour swap improves phi by more than the factor 1 + eps/n.
    def phi(g):
      return sum(D[a, b] for a in range(16) for b in range(a + 1, 16) if g[a] == g[b])
    base = phi(f)
    for u in range(16):
      for v in range(u + 1, 16):
        if colors[u] == colors[v] and f[u] != f[v]:
          g = f.copy()
          g[u], g[v] = f[v], f[u]
          assert phi(g) * (1 + 0.1 / 16) >= base * (1 - 1e-12)


def test_pipeline_precomputed_equals_points():
  X, colors = instance(6, 40, 12)
  a = fhc.fair_hierarchical_clustering(jax.random.key(1), X, colors, balance=(1, 3))
  b = fhc.fair_hierarchical_clustering(jax.random.key(1), euclid(X).astype(np.float32),
                                       colors, balance=(1, 3), metric="precomputed")
  np.testing.assert_array_equal(np.asarray(a.fairlets), np.asarray(b.fairlets))
  assert set(clusters(a.hierarchy.parent).values()) == set(clusters(b.hierarchy.parent).values())


def test_pipeline_small_corner_cases():
  # n = 2 (one pair), n = 3 with a cap of 1/2 (one fairlet of 3), n = 1 with alpha = 1.
  r = fhc.fair_hierarchical_clustering(jax.random.key(0), [[0.0], [1.0]], [0, 1],
                                       balance=(1, 1))
  assert np.asarray(r.hierarchy.parent).tolist() == [2, 2, -1]
  r = fhc.fair_hierarchical_clustering(jax.random.key(0), [[0.0], [1.0], [3.0]],
                                       [0, 1, 2], alpha=0.5)
  validate(r.hierarchy)
  assert check_tree(r.hierarchy.parent, 3)
  r = fhc.fair_hierarchical_clustering(jax.random.key(0), [[0.0]], [0], alpha=1.0)
  assert np.asarray(r.hierarchy.parent).tolist() == [-1]
  # One colour with alpha = 1: singleton fairlets, plain average linkage.
  X, _ = instance(0, 6, 0)
  r = fhc.fair_hierarchical_clustering(jax.random.key(0), X, np.zeros(6, int), alpha=1)
  assert r.stats.num_fairlets == 6 and r.stats.swaps == 0
  validate(r.hierarchy)


@pytest.mark.parametrize("X,colors,kwargs,match", [
    (np.zeros((4, 2)), [0, 1, 0], dict(balance=(1, 1)),
     r"colors must have one colour per leaf \(length 4\), got length 3"),
    (np.zeros((4, 2)), [0, 1, 0, -1], dict(balance=(1, 1)), r"colors must hold colours"),
    (np.zeros((4, 2)), [0, 0, 2, 2], dict(balance=(1, 1)), r"no point of colour 1"),
    (np.zeros((4, 2)), [0, 1, 0, 1], dict(balance=(2, 1)), r"b <= r"),
    (np.zeros((8, 2)), [0, 1, 1, 1, 1, 1, 1, 1], dict(balance=(1, 3)),
     r"fair_hierarchical_clustering: colors must give the minority colour a share of at "
     r"least b/\(b\+r\) = 1/4.*colour 0 with 1 of 8 points"),
    (np.zeros((4, 2)), [0, 1, 0, 1], dict(balance=(1, 1), eps=0.0), r"eps must be a positive"),
    (np.zeros((4, 2)), [0, 1, 0, 1], dict(balance=(1, 1), eps=-0.5), r"eps must be a positive"),
    (np.zeros((3, 2)), [0, 1, 2], dict(alpha=0.25), r"one fairlet's worth of points"),
    (np.zeros((4, 2)), [0, 1, 0, 1], dict(), r"constraint must be given exactly once"),
    (np.zeros((4, 2)), [0, 1, 0, 1], dict(balance=(1, 1), alpha=0.5), r"exactly once"),
    (np.zeros((4, 2)), [0, 1, 0, 1], dict(balance=(1, 1), schedule="x"), r"schedule must be"),
    (np.zeros((4, 2)), [0, 1, 0, 1], dict(balance=(1, 1), metric="x"), r"metric must be"),
    (np.zeros((4, 2)), [0, 1, 0, 1], dict(balance=(1, 1), inner="x"), r"inner must be"),
    (np.zeros((4, 2)), [0, 1, 0, 1], dict(balance=(1, 1), metric="precomputed"),
     r"X must be a square distance matrix"),
    (np.array([[0.0], [np.nan]]), [0, 1], dict(balance=(1, 1)), r"X must be finite"),
])
def test_pipeline_bad_input(X, colors, kwargs, match):
  with pytest.raises((ValueError, TypeError), match=match):
    fhc.fair_hierarchical_clustering(jax.random.key(0), X, np.array(colors), **kwargs)


@pytest.mark.realdata
@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_census_sample_fair(uci_dir):
  from fairhc_jax import datasets
  data = datasets.load_census(color="gender", data_dir=uci_dir, download=False)
  idx = datasets.proportional_subsample(jax.random.key(0), data.colors, 200)
  X, colors = data.features[np.asarray(idx)], data.colors[np.asarray(idx)]
  r = fhc.fair_hierarchical_clustering(jax.random.key(1), X, colors, balance=(1, 3))
  validate(r.hierarchy)
  assert_fair(r.hierarchy.parent, colors, r.fairlets, "linkage", balance=(1, 3))
  assert r.stats.ratio_fairlets_after < r.stats.ratio_fairlets_before


# ---------------------------------------------------------------------------
# Constraint objects, the result's scope, kernels inside jit/vmap, determinism.


from fractions import Fraction  # noqa: E402

from fairhc_jax.fairness import Balance, BoundedRepresentation, ClusterScope  # noqa: E402


def fair_in_scope(parent, colors, scope, **target):
  """NumPy check of a scope: every used internal node with ``|u| >= min_size``
  that is a union of whole blocks (when blocks are given) is fair."""
  blocks = None if scope.blocks is None else np.asarray(scope.blocks)
  checked = 0
  for c in check_tree(parent, len(colors)).values():
    if len(c) < scope.min_size:
      continue
    if blocks is not None:
      ids = {blocks[x] for x in c}
      if sum(int((blocks == b).sum()) for b in ids) != len(c):
        continue  # not a union of whole blocks
    assert is_fair(c, colors, **target), sorted(c)
    checked += 1
  return checked


@pytest.mark.parametrize("inner", ["linkage", "flat"])
@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_result_carries_constraint_and_a_scope_that_passes(inner):
  X, colors = instance(21, 60, 16)
  r = fhc.fair_hierarchical_clustering(jax.random.key(3), X, colors,
                                       constraint=Balance(1, 3), inner=inner)
  assert r.constraint == Balance(1, 3)
  assert isinstance(r.scope, ClusterScope)
  cl = check_tree(r.hierarchy.parent, 60)
  if inner == "linkage":
    np.testing.assert_array_equal(np.asarray(r.scope.blocks), np.asarray(r.fairlets))
    # Every node is checked by the scope or lies strictly inside a fairlet.
    f = np.asarray(r.fairlets)
    unions = [c for c in cl.values()
              if sum(int((f == b).sum()) for b in {f[x] for x in c}) == len(c)]
    assert fair_in_scope(r.hierarchy.parent, colors, r.scope, balance=(1, 3)) == len(unions)
    # The min-size scope documented on FairHCResult passes too.
    fair_in_scope(r.hierarchy.parent, colors,
                  ClusterScope(min_size=r.stats.max_fairlet_size), balance=(1, 3))
    # And the default scope does not (clusters inside fairlets): not vacuous.
    with pytest.raises(AssertionError):
      fair_in_scope(r.hierarchy.parent, colors, ClusterScope(), balance=(1, 3))
  else:
    assert r.scope == ClusterScope()
    assert fair_in_scope(r.hierarchy.parent, colors, r.scope, balance=(1, 3)) == len(cl)


def test_constraint_forms_and_aliases_give_the_same_tree():
  X, colors = instance(22, 40, 12)
  key = jax.random.key(4)
  a = fhc.fair_hierarchical_clustering(key, X, colors, constraint=Balance(1, 3))
  b = fhc.fair_hierarchical_clustering(key, X, colors, balance=(1, 3))
  c = fhc.fair_hierarchical_clustering(key, X, colors, constraint=Balance(2, 6))
  for o in (b, c):
    np.testing.assert_array_equal(np.asarray(a.hierarchy.parent), np.asarray(o.hierarchy.parent))
  assert b.constraint == Balance(1, 3) and c.constraint == Balance(2, 6)
  rng = np.random.default_rng(3)
  X4 = rng.normal(size=(40, 2))
  col4 = rng.permutation(np.arange(40) % 4).astype(np.int32)
  a = fhc.fair_hierarchical_clustering(key, X4, col4, constraint=BoundedRepresentation(0.25))
  b = fhc.fair_hierarchical_clustering(key, X4, col4, alpha=1 / 4)
  np.testing.assert_array_equal(np.asarray(a.hierarchy.parent), np.asarray(b.hierarchy.parent))
  assert a.constraint == b.constraint == BoundedRepresentation(Fraction(1, 4))
  # schedule=None is "no local search" ("none" is its alias).
  n1 = fhc.fair_hierarchical_clustering(key, X, colors, balance=(1, 3), schedule=None)
  n2 = fhc.fair_hierarchical_clustering(key, X, colors, balance=(1, 3), schedule="none")
  assert n1.stats.swaps == 0
  np.testing.assert_array_equal(np.asarray(n1.hierarchy.parent), np.asarray(n2.hierarchy.parent))


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(constraint=Balance(0, 3)), ValueError,
     r"fair_hierarchical_clustering: constraint.b must be an integer >= 1 for a fairlet "
     r"decomposition \(b = 0 asks for no balance"),
    (dict(balance=(0, 3)), ValueError, r"balance\[0\] must be an integer >= 1"),
    (dict(alpha=0.3), ValueError, r"alpha must be 1/t for a positive integer t"),
    (dict(constraint=BoundedRepresentation(2 / 5)), ValueError, r"constraint.alpha must be 1/t"),
    (dict(constraint=(1, 3)), TypeError, r"constraint must be Balance\(b, r\) or "
     r"BoundedRepresentation"),
    (dict(constraint=Balance(1, 3), balance=(1, 3)), ValueError, r"exactly once.*"
     r"constraint=Balance\(b=1, r=3\), balance=\(1, 3\)"),
    (dict(constraint=Balance(1, 1), schedule="x"), ValueError, r"schedule must be one of"),
])
def test_pipeline_constraint_errors(kwargs, exc, match):
  with pytest.raises(exc, match=match):
    fhc.fair_hierarchical_clustering(jax.random.key(0), np.zeros((8, 2)),
                                     np.array([0, 1] * 4), **kwargs)


def test_pipeline_key_is_checked():
  with pytest.raises(TypeError, match=r"fair_hierarchical_clustering: key must be a JAX "
                     r"PRNG key \(make one from a seed with jax.random.key\(seed\)\), got the "
                     r"integer 3: pass jax.random.key\(3\)"):
    fhc.fair_hierarchical_clustering(3, np.zeros((4, 2)), [0, 1, 0, 1], balance=(1, 1))


@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_tree_kernel_calls_the_linkage_kernel_and_vmaps(monkeypatch):
  """Inside jit/vmap the tree uses ``linkage_kernel``, never the public
  ``linkage`` (whose value checks would be skipped on tracers)."""
  from fairhc_jax import agglomerative

  def boom(*args, **kwargs):
    raise AssertionError("the public linkage was called inside the tree kernel")

  monkeypatch.setattr(agglomerative, "linkage", boom)
  with jax.enable_x64(True):
    X, colors = instance(23, 14, 5)
    D = euclid(X)
    decs = [fl.balance_decomposition(jax.random.key(s), colors, (1, 2)) for s in range(3)]
    fhc._fairlet_tree_kernel.clear_cache()  # trace afresh under the patch
    stacked = jnp.stack([d.fairlet_of for d in decs])
    k, mf = decs[0].num_fairlets, decs[0].max_size
    assert all(d.num_fairlets == k and d.max_size == mf for d in decs)
    batch = jax.vmap(lambda f: fhc._fairlet_tree_kernel(jnp.asarray(D), f, k, mf))(stacked)
    for i, d in enumerate(decs):
      one = fhc.fairlet_tree(D, d)
      np.testing.assert_array_equal(np.asarray(batch.parent[i]), np.asarray(one.parent))
      np.testing.assert_array_equal(np.asarray(batch.height[i]), np.asarray(one.height))
      expect = fair_tree_oracle(D, np.asarray(d.fairlet_of))
      got = {c: float(one.height[u]) for u, c in check_tree(one.parent, 14).items()}
      assert set(got) == set(expect)


@pytest.mark.parametrize("schedule,inner", [("fast", "linkage"), ("random", "flat")])
@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_same_key_same_tree_bitwise(schedule, inner):
  X, colors = instance(24, 64, 22)
  key = jax.random.key(11)

  def once():
    r = fhc.fair_hierarchical_clustering(key, X, colors, constraint=Balance(1, 2),
                                         schedule=schedule, inner=inner, progress=False)
    return r.hierarchy.parent, r.hierarchy.height, r.fairlets

  a = once()
  fhc._fairlet_tree_kernel.clear_cache()
  fl._run_kernel.clear_cache()
  b = once()
  for x, y in zip(a, b):
    x, y = np.asarray(x), np.asarray(y)
    assert x.dtype == y.dtype and x.tobytes() == y.tobytes()


def test_flat_heights_are_mean_pairwise_distances():
  with jax.enable_x64(True):
    X, colors = instance(25, 12, 4)
    D = euclid(X)
    dec = fl.balance_decomposition(jax.random.key(2), colors, (1, 2))
    h = fhc.fairlet_tree(D, dec, inner="flat")
    f = np.asarray(dec.fairlet_of)
    cl = check_tree(h.parent, 12)
    for u, c in cl.items():
      pts = sorted(c)
      if len(set(f[pts])) == 1:  # a fairlet node
        pairs = [(a, b) for i, a in enumerate(pts) for b in pts[i + 1:]]
        np.testing.assert_allclose(float(h.height[u]),
                                   np.mean([D[a, b] for a, b in pairs]), rtol=1e-12)


@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_pipeline_compiles_each_kernel_once_per_shape():
  """Caches cleared first, so a second compile cannot hide behind an earlier test."""
  X, colors = instance(26, 36, 10)
  kernels = (fl._run_kernel, fl._fast_init, fhc._fairlet_tree_kernel)
  for k in kernels:
    k.clear_cache()
  for seed, eps in ((0, 0.1), (1, 0.2), (2, 0.05)):
    fhc.fair_hierarchical_clustering(jax.random.key(seed), X, colors,
                                     constraint=Balance(1, 3), eps=eps, progress=False)
  assert [k._cache_size() for k in kernels] == [1, 1, 1]


def test_portable_sums_equal_the_cpu_sums_bitwise(monkeypatch):
  """The fairlet-to-fairlet sums GPUs get equal the CPU form, bitwise."""
  X, colors = instance(27, 40, 12)
  D = jnp.asarray(euclid(X), jnp.float32)
  dec = fl.balance_decomposition(jax.random.key(6), colors, (1, 3))

  def once():
    fhc._fairlet_tree_kernel.clear_cache()
    h = fhc._fairlet_tree_kernel(D, dec.fairlet_of, dec.num_fairlets, dec.max_size)
    return np.asarray(h.parent).tobytes(), np.asarray(h.height).tobytes()

  a = once()
  monkeypatch.setattr(fhc, "PORTABLE_SUMS_ON_CPU", True)
  b = once()
  assert a == b


def _lca_sizes(parent, n):
  """|leaves(lca(i, j))| for all pairs, by walking up (NumPy oracle)."""
  parent = np.asarray(parent)
  size = np.zeros(len(parent))
  anc = []
  for i in range(n):
    u, path = i, []
    while u >= 0:
      size[u] += 1
      path.append(u)
      u = parent[u]
    anc.append(path)
  out = np.zeros((n, n))
  for i in range(n):
    on = set(anc[i])
    for j in range(n):
      out[i, j] = size[next(u for u in anc[j] if u in on)]
  return out


def test_result_objectives_one_pass_match_the_definitions():
  X, colors = instance(1, 40, 12)
  r = fhc.fair_hierarchical_clustering(jax.random.key(0), X, colors, balance=(1, 3))
  o = r.objectives()
  D = euclid(X)
  S = 1 / (1 + D)
  L = _lca_sizes(r.hierarchy.parent, 40)
  iu = np.triu_indices(40, 1)
  np.testing.assert_allclose(float(o.value), np.sum(D[iu] * L[iu]), rtol=1e-5)
  np.testing.assert_allclose(float(o.cost), np.sum(S[iu] * L[iu]), rtol=1e-5)
  np.testing.assert_allclose(float(o.revenue), np.sum(S[iu] * (40 - L[iu])), rtol=1e-5)
  np.testing.assert_allclose(float(o.value_upper_bound), 40 * np.sum(D[iu]), rtol=1e-5)
  np.testing.assert_allclose(float(o.revenue_upper_bound), 38 * np.sum(S[iu]), rtol=1e-5)


def test_pipeline_memory_guard_names_the_fairlet_table(monkeypatch):
  from fairhc_jax import memory
  X, colors = instance(1, 40, 12)
  monkeypatch.setattr(memory, "free_bytes", lambda device=None: 1000)
  with pytest.raises(MemoryError, match=r"fair_hierarchical_clustering: n = 40 points need "
                     r"0.00 GB for the distance matrix, the 12 x 40 fairlet table"):
    fhc.fair_hierarchical_clustering(jax.random.key(0), X, colors, balance=(1, 3))
  assert fhc.pipeline_bytes(40, 12, np.float32) == 4 * (40 * 40 + 2 * 12 * 40 + 2 * 144)


# ---------------------------------------------------------------------------
# The colour-sorted run of unsorted points, mapped back to the caller's order.


@pytest.mark.parametrize("n", [1, 2, 33])
def test_permute_in_place_equals_the_numpy_gather(n):
  rng = np.random.default_rng(n)
  with jax.enable_x64(True):
    for order in (rng.permutation(n), np.arange(n), np.roll(np.arange(n), 1)):
      A = rng.normal(size=(n, n))
      M = jnp.asarray(A)
      out = np.asarray(fhc.permute_in_place(M, order))
      np.testing.assert_array_equal(out, A[order][:, order])  # data movement: exact
      assert M.is_deleted()  # donated: no second n x n buffer


def test_permute_in_place_rejects_a_non_permutation():
  D = jnp.zeros((3, 3))
  with pytest.raises(ValueError, match=r"permute_in_place: order must be a permutation "
                     r"of 0\.\.2"):
    fhc.permute_in_place(D, [0, 0, 1])
  with pytest.raises(ValueError, match=r"permute_in_place: D must be a square matrix"):
    fhc.permute_in_place(jnp.zeros((2, 3)), [0, 1])
  assert not D.is_deleted()  # rejected before anything ran


def _relabelled(parent, order):
  """{cluster over the caller's points: node} for a tree on sorted positions."""
  return {frozenset(order[list(c)].tolist()): u for u, c in clusters(parent).items()}


@pytest.mark.parametrize("case", [
    "balance", "precomputed",
    pytest.param("cap", marks=pytest.mark.slow),  # its own compiles: with --runslow
])
def test_unsorted_points_give_the_sorted_run_relabelled(monkeypatch, case):
  """Unsorted colours: the run sorts internally; every output equals the run
  on X[order], colors[order] with the points relabelled, checked with the
  leaf-set oracle, the brute-force objectives and the fairness oracle
  (two colours with the paper's tree; four colours, a cap and flat
  fairlets; a precomputed matrix)."""
  monkeypatch.setattr(fhc, "SORT_MIN_POINTS", 0)
  if case == "cap":
    rng = np.random.default_rng(8)
    X = rng.normal(size=(40, 3))
    colors = rng.permutation(np.arange(40) % 4).astype(np.int32)
    kw, target = dict(alpha=1 / 4, inner="flat"), dict(t=4)
  else:
    X, colors = instance(11, 40, 12)
    kw, target = dict(balance=(1, 3)), dict(balance=(1, 3))
  order = np.argsort(colors, kind="stable")
  assert not np.all(np.diff(colors) >= 0)
  D = euclid(X)
  if case == "precomputed":
    arg, arg_sorted = D.astype(np.float32), D[order][:, order].astype(np.float32)
    kw["metric"] = "precomputed"
  else:
    arg, arg_sorted = X, X[order]
  key = jax.random.key(4)
  a = fhc.fair_hierarchical_clustering(key, arg, colors, **kw)
  b = fhc.fair_hierarchical_clustering(key, arg_sorted, colors[order], **kw)
  assert b.stats.swaps > 0
  # Fairlets and the tree: the same up to the relabelling p -> order[p].
  np.testing.assert_array_equal(np.asarray(a.fairlets)[order], np.asarray(b.fairlets))
  ca = {c: u for u, c in check_tree(a.hierarchy.parent, 40).items()}
  cb = _relabelled(b.hierarchy.parent, order)
  assert set(ca) == set(cb)
  for c, u in ca.items():
    assert float(a.hierarchy.height[u]) == float(b.hierarchy.height[cb[c]])
  validate(a.hierarchy)
  sa, sb = a.stats._asdict(), b.stats._asdict()
  for name in sa:
    if not name.startswith("time_"):
      assert sa[name] == sb[name], name
  # Distances in the caller's order, bitwise the matrix the tree was built from.
  Da = np.asarray(a.distances)
  np.testing.assert_allclose(Da, D, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(Da[order][:, order], np.asarray(b.distances))
  # Objectives of the caller-order tree: brute force on the caller's D.
  L = _lca_sizes(a.hierarchy.parent, 40)
  iu = np.triu_indices(40, 1)
  oa, ob = a.objectives(), b.objectives()
  np.testing.assert_allclose(float(oa.value), np.sum(D[iu] * L[iu]), rtol=1e-5)
  np.testing.assert_allclose(float(oa.cost), np.sum(L[iu] / (1 + D[iu])), rtol=1e-5)
  np.testing.assert_allclose(float(oa.value), float(ob.value), rtol=1e-6)
  # Fair at and above the fairlets (flat: every internal node), in the
  # caller's colours; the scope's blocks are the caller-order fairlets.
  inner = kw.get("inner", "linkage")
  assert_fair(a.hierarchy.parent, colors, a.fairlets, inner, **target)
  if inner == "linkage":
    assert np.array_equal(np.asarray(a.scope.blocks), np.asarray(a.fairlets))
  else:
    assert a.scope.blocks is None


def test_precomputed_without_room_for_a_sorted_copy_stays_in_caller_order(monkeypatch):
  """No room for a second n x n matrix: the run keeps the caller's order
  (the same random decomposition as the sorted run) and is still fair."""
  from fairhc_jax import memory
  monkeypatch.setattr(fhc, "SORT_MIN_POINTS", 0)
  X, colors = instance(12, 40, 12)
  order = np.argsort(colors, kind="stable")
  D = euclid(X).astype(np.float32)
  k = 12  # balance_slots(12, 28, 1, 3): eight (1, 3) fairlets, four pairs
  plain = fhc.pipeline_bytes(40, k, np.float32, precomputed=True)
  copy = fhc.pipeline_bytes(40, k, np.float32, precomputed=True, sorted_copy=True)
  free = (plain + copy) / 2 / memory.HEADROOM  # the plain run fits, the copy does not
  monkeypatch.setattr(memory, "free_bytes", lambda device=None: free)
  key = jax.random.key(2)
  for schedule in (None, "fast"):
    a = fhc.fair_hierarchical_clustering(key, D, colors, balance=(1, 3),
                                         metric="precomputed", schedule=schedule)
    assert a.stats.num_fairlets == k and a.stats.time_order == 0.0
    assert a.distances is not None and np.array_equal(np.asarray(a.distances), D)
    validate(a.hierarchy)
    assert_fair(a.hierarchy.parent, colors, a.fairlets, "linkage", balance=(1, 3))
    if schedule is None:  # the decomposition: the sorted run's, relabelled
      monkeypatch.setattr(memory, "free_bytes", lambda device=None: None)
      b = fhc.fair_hierarchical_clustering(key, D[order][:, order], colors[order],
                                           balance=(1, 3), metric="precomputed",
                                           schedule=None)
      monkeypatch.setattr(memory, "free_bytes", lambda device=None: free)
      np.testing.assert_array_equal(np.asarray(a.fairlets)[order], np.asarray(b.fairlets))


# --------------------------------------------------------------------------- start="projection"


def test_spread_by_score_matches_a_literal_reassignment():
  rng = np.random.default_rng(7)
  n = 50
  colors = np.r_[np.zeros(14, int), np.ones(36, int)]
  rng.shuffle(colors)
  dec = fl.fairlet_decomposition(jax.random.key(3), colors, Balance(1, 3))
  scores = rng.integers(0, 12, n).astype(np.float32)      # many ties
  key = jax.random.key(5)
  out = fl.spread_by_score(key, dec, colors, scores)
  assert (out.num_fairlets, out.max_size) == (dec.num_fairlets, dec.max_size)
  perm = np.asarray(jax.random.permutation(key, dec.num_fairlets))
  f = np.asarray(dec.fairlet_of)
  want = np.empty(n, int)
  for c in (0, 1):
    members = [i for i in range(n) if colors[i] == c]
    ranked = sorted(members, key=lambda i: (scores[i], i))
    slots = sorted(int(perm[f[i]]) for i in members)
    for i, s in zip(ranked, slots):
      want[i] = s
  np.testing.assert_array_equal(np.asarray(out.fairlet_of), want)
  # every fairlet keeps its number of points of each colour
  k = dec.num_fairlets
  before = np.zeros((k, 2), int)
  after = np.zeros((k, 2), int)
  for i in range(n):
    before[perm[f[i]], colors[i]] += 1
    after[want[i], colors[i]] += 1
  np.testing.assert_array_equal(after, before)


def test_principal_scores_match_the_svd():
  rng = np.random.default_rng(8)
  X = rng.normal(size=(80, 4)) * np.array([5.0, 1.0, 0.5, 0.2]) + 3
  with jax.enable_x64(True):
    got = np.asarray(fl.principal_scores(jnp.asarray(X)))
  Xc = X - X.mean(0)
  v = np.linalg.svd(Xc, full_matrices=False)[2][0]
  want = Xc @ v
  want = want if want @ got >= 0 else -want
  np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8)
  assert not np.any(np.asarray(fl.principal_scores(jnp.ones((5, 2), jnp.float32))))


@pytest.mark.parametrize("metric", ["euclidean", "precomputed"])
def test_projection_start_is_fair_and_locally_searched(metric):
  X, colors = instance(1, 40, 12)
  D = euclid(X)
  arg = X if metric == "euclidean" else D.astype(np.float32)
  r = fhc.fair_hierarchical_clustering(jax.random.key(0), arg, colors, balance=(1, 3),
                                       start="projection", metric=metric)
  validate(r.hierarchy)
  assert_fair(r.hierarchy.parent, colors, r.fairlets, "linkage", balance=(1, 3))
  f = np.asarray(r.fairlets)
  phi = sum(D[a, b] for a in range(40) for b in range(a + 1, 40) if f[a] == f[b])
  np.testing.assert_allclose(r.stats.phi_after, phi, rtol=1e-4)
  assert r.stats.phi_after <= r.stats.phi_before * (1 + 1e-6)
  with pytest.raises(ValueError, match=r"fair_hierarchical_clustering: start must be one of "
                                       r"'random', 'projection', got 'pca'"):
    fhc.fair_hierarchical_clustering(jax.random.key(0), X, colors, balance=(1, 3),
                                     start="pca")


def test_spread_and_scores_reject_bad_input():
  colors = np.array([0, 1, 1, 0, 1, 1])
  dec = fl.fairlet_decomposition(jax.random.key(0), colors, Balance(1, 2))
  key = jax.random.key(1)
  with pytest.raises(ValueError, match=r"spread_by_score: scores must be float\[6\] \(one "
                                       r"score per point\), got array of shape \(5,\)"):
    fl.spread_by_score(key, dec, colors, np.zeros(5))
  with pytest.raises(ValueError, match=r"spread_by_score: scores must be finite, got a NaN "
                                       r"or infinite value at index 2"):
    fl.spread_by_score(key, dec, colors, np.array([0, 1, np.nan, 3, 4, 5.0]))
  with pytest.raises(ValueError, match=r"spread_by_score: colors must"):
    fl.spread_by_score(key, dec, colors[:5], np.zeros(6))
  with pytest.raises(TypeError, match=r"spread_by_score: decomposition must be a "
                                      r"Decomposition, got array"):
    fl.spread_by_score(key, np.zeros(6, int), colors, np.zeros(6))
  with pytest.raises(ValueError, match=r"principal_scores: X must be a 2-D point matrix"):
    fl.principal_scores(np.zeros(4))
  with pytest.raises(ValueError, match=r"principal_scores: X must be finite, got a NaN or "
                                       r"infinite value at row 1, column 0"):
    fl.principal_scores(np.array([[0.0, 1.0], [np.inf, 2.0]]))
