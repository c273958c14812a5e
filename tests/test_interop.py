"""Tests for fairhc_jax.interop against SciPy and NumPy oracles written here."""

import subprocess
import sys

import jax
import numpy as np
import pytest

sch = pytest.importorskip("scipy.cluster.hierarchy")

from fairhc_jax.hierarchy import Hierarchy, from_parent  # noqa: E402
from fairhc_jax.interop import from_linkage, leaves_list, to_linkage  # noqa: E402

METHODS = ["single", "complete", "average", "weighted", "ward", "centroid", "median"]


# ---------------------------------------------------------------------------
# Oracles (plain Python walks over parent pointers).


def random_tree(rng, n, max_children=2, heights="monotone", shuffle=True):
  """A random tree as (parent int[L], height float[L] | None), L = n + #internal.

  Groups of 2..max_children active clusters are merged until one is left;
  internal labels are then shuffled (so children may come after parents).
  """
  parent = [-1] * n
  hgt = [0.0] * n
  active = list(range(n))
  while len(active) > 1:
    k = int(rng.integers(2, min(max_children, len(active)) + 1))
    pick = rng.choice(len(active), size=k, replace=False)
    kids = [active[i] for i in pick]
    new = len(parent)
    parent.append(-1)
    for c in kids:
      parent[c] = new
    if heights == "monotone":
      hgt.append(max(hgt[c] for c in kids) + float(rng.integers(0, 3)))
    else:
      hgt.append(float(rng.uniform(0, 5)))
    active = [a for i, a in enumerate(active) if i not in set(pick.tolist())] + [new]
  parent = np.array(parent)
  hgt = np.array(hgt)
  if shuffle and len(parent) > n + 1:
    perm = np.arange(len(parent))
    perm[n:] = n + rng.permutation(len(parent) - n)
    new_parent = np.empty_like(parent)
    new_parent[perm] = np.where(parent >= 0, perm[np.maximum(parent, 0)], -1)
    new_h = np.empty_like(hgt)
    new_h[perm] = hgt
    parent, hgt = new_parent, new_h
  return parent, (None if heights is None else hgt)


def oracle_children(parent):
  kids = {u: [] for u in range(len(parent))}
  for v, p in enumerate(parent):
    if p >= 0:
      kids[int(p)].append(v)
  return {u: sorted(c) for u, c in kids.items()}


def oracle_leaves(parent, n):
  """Sorted leaf tuple under each used node."""
  out = {}
  for leaf in range(n):
    u = leaf
    while u >= 0:
      out.setdefault(u, []).append(leaf)
      u = int(parent[u])
  return {u: tuple(sorted(v)) for u, v in out.items()}


def oracle_cophenet(parent, node_height, n):
  """Condensed cophenetic distances: the height of each pair's LCA."""
  def ancestors(i):
    path = []
    while i >= 0:
      path.append(i)
      i = int(parent[i])
    return path
  anc = [ancestors(i) for i in range(n)]
  out = []
  for i in range(n):
    seen = set(anc[i])
    for j in range(i + 1, n):
      lca = next(u for u in anc[j] if u in seen)
      out.append(node_height[lca])
  return np.array(out, dtype=np.float64)


def oracle_dfs_order(parent, n):
  kids = oracle_children(parent)
  r = int(np.flatnonzero(np.asarray(parent) == -1)[0])
  out, stack = [], [r]
  while stack:
    u = stack.pop()
    if u < n:
      out.append(u)
    stack.extend(reversed(kids[u]))
  return np.array(out)


def clusters(parent, n):
  return set(oracle_leaves(parent, n).values())


# ---------------------------------------------------------------------------
# from_linkage.


@pytest.mark.parametrize("method", METHODS)
def test_from_linkage_matches_rows_and_round_trips_exactly(method):
  rng = np.random.default_rng(hash(method) % 2**32)
  n = int(rng.integers(5, 60))
  X = rng.normal(size=(n, 3))
  Z = sch.linkage(X, method)
  with jax.enable_x64(True):
    h = from_linkage(Z)
    parent = np.asarray(h.parent)
    height = np.asarray(h.height)
    assert parent.shape == (2 * n - 1,) and parent.dtype == np.int32
    assert height.dtype == np.float64
    # Oracle: row i is node n + i.
    for i in range(n - 1):
      assert parent[int(Z[i, 0])] == n + i and parent[int(Z[i, 1])] == n + i
      assert height[n + i] == Z[i, 2]
    assert parent[-1] == -1 and np.all(height[:n] == 0)
    Z2 = to_linkage(h, heights="raw")
    Z_mono = to_linkage(h)
  np.testing.assert_array_equal(Z2, Z)
  assert sch.is_valid_linkage(Z2)
  assert sch.is_monotonic(Z_mono)
  if sch.is_monotonic(Z):
    np.testing.assert_array_equal(Z_mono, Z)  # monotone heights kept exactly
  else:
    # Same rows and merges; only the inverted heights are raised.
    np.testing.assert_array_equal(Z_mono[:, [0, 1, 3]], Z[:, [0, 1, 3]])
    assert np.all(Z_mono[:, 2] >= Z[:, 2])


def test_from_linkage_float32_default():
  rng = np.random.default_rng(1)
  X = rng.normal(size=(30, 2))
  Z = sch.linkage(X, "average")
  h = from_linkage(Z)
  assert np.asarray(h.height).dtype == np.float32
  Z2 = to_linkage(h)
  assert sch.is_valid_linkage(Z2)
  np.testing.assert_array_equal(Z2[:, [0, 1, 3]], Z[:, [0, 1, 3]])
  np.testing.assert_allclose(Z2[:, 2], Z[:, 2], rtol=1e-6)
  np.testing.assert_allclose(sch.cophenet(Z2), sch.cophenet(Z), rtol=1e-6)


def test_from_linkage_with_ties_integer_data():
  rng = np.random.default_rng(2)
  X = rng.integers(0, 3, size=(40, 2)).astype(float)  # many equal distances
  for method in ("single", "average", "complete"):
    Z = sch.linkage(X, method)
    with jax.enable_x64(True):
      Z2 = to_linkage(from_linkage(Z))
    np.testing.assert_array_equal(Z2, Z)


def test_from_linkage_small_n():
  h1 = from_linkage(np.zeros((0, 4)))
  np.testing.assert_array_equal(np.asarray(h1.parent), [-1])
  assert to_linkage(h1).shape == (0, 4)
  h2 = from_linkage(np.array([[0.0, 1.0, 0.5, 2.0]]))
  np.testing.assert_array_equal(np.asarray(h2.parent), [2, 2, -1])
  np.testing.assert_allclose(np.asarray(h2.height), [0, 0, 0.5])
  np.testing.assert_array_equal(to_linkage(h2), [[0, 1, 0.5, 2]])
  # Swapped columns: the tree is the same, the column order is canonical.
  h2b = from_linkage([[1, 0, 0.5, 2]])
  np.testing.assert_array_equal(np.asarray(h2b.parent), [2, 2, -1])
  np.testing.assert_array_equal(to_linkage(h2b), [[0, 1, 0.5, 2]])
  Z3 = np.array([[0, 2, 1.0, 2], [1, 3, 2.0, 3]], float)
  h3 = from_linkage(Z3)
  np.testing.assert_array_equal(np.asarray(h3.parent), [3, 4, 3, 4, -1])
  np.testing.assert_array_equal(to_linkage(h3), Z3)


def test_from_linkage_accepts_lists_and_int_arrays():
  Z = [[0, 1, 1, 2], [2, 3, 4, 3]]
  for z in (Z, np.array(Z, np.int64), np.array(Z, np.float32)):
    h = from_linkage(z)
    np.testing.assert_array_equal(np.asarray(h.parent), [3, 3, 4, 4, -1])


def _valid_z():
  return np.array([[0, 1, 1.0, 2], [2, 3, 1.5, 2], [4, 5, 3.0, 4]], float)


def _mutate(i, j, v):
  z = _valid_z()
  z[i, j] = v
  return z


# (bad Z, regex of the message); SciPy rejects each one too (checked below)
# unless marked stricter.
BAD_Z = [
    (np.zeros((3, 3)), r"from_linkage: Z must be 2-D with 4 columns.*got shape \(3, 3\)"),
    (np.zeros(4), r"from_linkage: Z must be 2-D with 4 columns.*got shape \(4,\)"),
    (_mutate(0, 0, -1), r"non-negative cluster labels, got Z\[0, 0\] = -1"),
    (_mutate(1, 2, -0.5), r"non-negative merge heights.*got Z\[1, 2\] = -0.5"),
    (_mutate(1, 3, -2), r"non-negative cluster sizes.*got Z\[1, 3\] = -2"),
    (_mutate(2, 3, 7), r"cluster sizes at most n = 4.*got Z\[2, 3\] = 7"),
    (_mutate(1, 1, 5), r"join only clusters formed before.*row 1 joining cluster 5"),
    (_mutate(0, 1, 6), r"join only clusters formed before.*row 0 joining cluster 6"),
    (_mutate(1, 0, 0), r"use each cluster at most once, got cluster 0 in rows 0 and 1"),
    (_mutate(0, 1, 0), r"use each cluster at most once, got cluster 0 in row 0 \(twice\)"),
]
BAD_Z_STRICTER = [  # SciPy's is_valid_linkage accepts these; we do not.
    (_mutate(1, 2, np.nan), r"Z must be finite, got Z\[1, 2\] = nan"),
    (_mutate(2, 2, np.inf), r"Z must be finite, got Z\[2, 2\] = inf"),
    (_mutate(0, 1, 1.5), r"integer cluster labels.*got Z\[0, 1\] = 1.5"),
    (_mutate(2, 3, 3), r"number of points under each row, got Z\[2, 3\] = 3 where row 2 holds 4"),
    (np.array([[0, 1, -1.0, 2]]), r"non-negative merge heights"),  # SciPy skips 1-row checks
    (np.array([[0, 5, 1.0, 2]]), r"row 0 joining cluster 5"),
]


@pytest.mark.parametrize("z,msg", BAD_Z)
def test_from_linkage_rejects_what_scipy_rejects(z, msg):
  if z.ndim == 2:
    assert not sch.is_valid_linkage(z)
  with pytest.raises(ValueError, match=msg):
    from_linkage(z)


@pytest.mark.parametrize("z,msg", BAD_Z_STRICTER)
def test_from_linkage_stricter_than_scipy(z, msg):
  with pytest.raises(ValueError, match=msg):
    from_linkage(z)


@pytest.mark.parametrize("z", [None, np.array([["a"] * 4]), np.ones((1, 4), complex),
                               np.ones((1, 4), bool)])
def test_from_linkage_rejects_non_numeric(z):
  with pytest.raises(TypeError, match="from_linkage: Z must"):
    from_linkage(z)


def test_from_linkage_random_corruptions_never_pass_when_scipy_rejects():
  rng = np.random.default_rng(3)
  rejected = 0
  for _ in range(300):
    n = int(rng.integers(3, 12))
    Z = sch.linkage(rng.normal(size=(n, 2)), "average")
    i, j = int(rng.integers(0, n - 1)), int(rng.integers(0, 4))
    Z[i, j] = float(rng.integers(-2, 2 * n)) if j != 2 else float(rng.normal())
    if not sch.is_valid_linkage(Z):
      rejected += 1
      with pytest.raises(ValueError, match="from_linkage: Z must"):
        from_linkage(Z)
  assert rejected > 50


# ---------------------------------------------------------------------------
# to_linkage.


TREE_SIZES = (2, 3, 11, 24)  # few shapes: each new n compiles the jitted views


@pytest.mark.parametrize("max_children", [2, 3, 5])
@pytest.mark.parametrize("heights", ["monotone", "random", None])
def test_to_linkage_random_trees(max_children, heights):
  rng = np.random.default_rng(10 * max_children + len(str(heights)))
  inversions = 0
  for n in TREE_SIZES * 2:
    parent, hgt = random_tree(rng, n, max_children, heights)
    h = from_parent(parent, num_leaves=n, height=hgt)
    p = np.asarray(h.parent)
    Z = to_linkage(h, heights="raw")
    check_scipy_usable(h, p, n, heights == "random" and max_children == 2)
    order = leaves_list(h)
    assert Z.shape == (n - 1, 4) and Z.dtype == np.float64
    assert sch.is_valid_linkage(Z, throw=True)
    leaves = oracle_leaves(p, n)
    if heights is None:
      node_height = {u: float(len(v)) for u, v in leaves.items()}
    else:
      node_height = dict(enumerate(np.asarray(h.height).astype(np.float64).tolist()))
    # Cophenetic distances are preserved exactly.
    np.testing.assert_array_equal(sch.cophenet(Z), oracle_cophenet(p, node_height, n))
    if heights == "monotone":
      assert sch.is_monotonic(Z)  # raw heights are the stored ones
    inversions += not sch.is_monotonic(Z)
    # Column 3: sizes of the merged clusters; every cluster of h is formed.
    Zc = sch.to_tree(Z, rd=True)[1]
    z_clusters = {tuple(sorted(node.pre_order())) for node in Zc}
    assert clusters(p, n) <= z_clusters
    for i in range(n - 1):
      assert Z[i, 3] == len(Zc[n + i].pre_order())
    assert len(z_clusters) == 2 * n - 1
    # Dendrogram order = our DFS leaf order = SciPy's leaves_list.
    np.testing.assert_array_equal(order, oracle_dfs_order(p, n))
    np.testing.assert_array_equal(sch.leaves_list(Z), order)
    # Back again: the binarised tree, same rows, smaller label first.
    h2 = from_linkage(Z)
    Z_back = to_linkage(h2, heights="raw")
    np.testing.assert_array_equal(Z_back[:, :2], np.sort(Z[:, :2], axis=1))
    np.testing.assert_array_equal(Z_back[:, 2:], Z[:, 2:])
    # The default (monotone) Z reads back to itself too (float32 heights).
    Zm = to_linkage(h)
    Zm_back = to_linkage(from_linkage(Zm))
    np.testing.assert_array_equal(Zm_back[:, :2], np.sort(Zm[:, :2], axis=1))
    np.testing.assert_array_equal(Zm_back[:, 3], Zm[:, 3])
    np.testing.assert_allclose(Zm_back[:, 2], Zm[:, 2], rtol=1e-6)
    p2 = np.asarray(h2.parent)
    assert clusters(p, n) <= clusters(p2, n)
    if max_children == 2:
      assert clusters(p, n) == clusters(p2, n)
  if heights == "random":
    assert inversions >= 4  # the monotone default was tested on inversions


def oracle_monotone_heights(parent, raw, n):
  """Monotone node heights: the largest raw height in each subtree (no nudges)."""
  out = np.array(raw, dtype=np.float64)
  for u in range(len(parent)):  # children before parents
    if parent[u] >= 0:
      out[parent[u]] = max(out[parent[u]], out[u])
  return out


def oracle_cut(parent, raw, n, k):
  """The k clusters as sorted leaf tuples: undo the last k - 1 merges.

  A literal transcription of the rule: node u with children c1 < ... < cj is
  the chain of merges (u, 2), ..., (u, j), (u, t) joining c1..ct; merges are
  done in the order of the key (highest height in u's subtree, u, t) (leaf
  counts as heights without them); undoing a merge (u, t) splits off ct.
  """
  p = np.asarray(parent)
  kids = oracle_children(p)
  leaves = oracle_leaves(p, n)
  if raw is None:
    own = {u: float(len(v)) for u, v in leaves.items()}
  else:
    own = {u: float(raw[u]) if u >= n else 0.0 for u in leaves}
  top = dict(own)
  for u in range(len(p)):
    if u in top and p[u] >= 0:
      top[int(p[u])] = max(top[int(p[u])], top[u])

  def key(u, t):
    return (top[u], u, t)

  def members(c):
    if isinstance(c, tuple):
      u, t = c
      return tuple(sorted(sum((leaves[x] for x in kids[u][:t]), ())))
    return leaves[c]

  r = int(np.flatnonzero(p == -1)[0])
  current = [(r, len(kids[r]))] if r >= n else [r]
  while len(current) < k:
    splittable = [c for c in current if isinstance(c, tuple)]
    c = max(splittable, key=lambda c: key(*c))
    current.remove(c)
    u, t = c
    current.append(kids[u][t - 1])
    rest = kids[u][0] if t == 2 else (u, t - 1)
    if not isinstance(rest, tuple) and rest >= n:
      rest = (rest, len(kids[rest]))
    current.append(rest)
    current = [(x, len(kids[x])) if not isinstance(x, tuple) and x >= n else x
               for x in current]
  return sorted(members(c) for c in current)


def check_scipy_usable(h, p, n, distinct):
  """The default Z works with SciPy's cut_tree, fcluster and cophenet."""
  from fairhc_jax.flat import cut
  Z = to_linkage(h)
  assert sch.is_valid_linkage(Z, throw=True)
  assert sch.is_monotonic(Z)
  # Children before parents: each row joins clusters formed by earlier rows.
  assert np.all(Z[:, :2] < n + np.arange(n - 1)[:, None])
  raw = None if h.height is None else np.asarray(h.height).astype(np.float64)
  if raw is None:
    mono = np.array([float(len(v)) for v in
                     (lambda L: [L.get(u, ()) for u in range(len(p))])(oracle_leaves(p, n))])
  else:
    mono = oracle_monotone_heights(p, raw, n)
  # Cophenetic distances: the monotone heights, up to the float64 steps.
  np.testing.assert_allclose(sch.cophenet(Z), oracle_cophenet(p, mono, n),
                             rtol=1e-12, atol=1e-300)
  if h.height is None or distinct:
    assert len(np.unique(Z[:, 2])) == n - 1  # every row its own height
  for k in range(1, n + 1):
    ours = cut(h, k).labels
    theirs = sch.cut_tree(Z, n_clusters=k)[:, 0]
    assert len(np.unique(theirs)) == k
    assert len(np.unique(ours)) == k
    groups = sorted(tuple(np.flatnonzero(ours == c)) for c in range(k))
    assert groups == oracle_cut(p, raw, n, k)
    if len(np.unique(Z[:, 2])) == n - 1:
      np.testing.assert_array_equal(ours, theirs)  # label for label
      f = sch.fcluster(Z, k, "maxclust")
      assert len(np.unique(f)) == k
      # Same clusters under other names.
      assert len(set(zip(f.tolist(), ours.tolist()))) == k


def test_round_trip_exact_for_non_monotone_scipy_linkage():
  rng = np.random.default_rng(5)
  for _ in range(40):
    n = int(rng.integers(3, 60))
    X = rng.normal(size=(n, 2))
    for method in ("centroid", "median"):
      Z = sch.linkage(X, method)
      with jax.enable_x64(True):
        np.testing.assert_array_equal(to_linkage(from_linkage(Z), heights="raw"), Z)


def test_to_linkage_star_tree_zero_length_merges():
  h = from_parent(np.array([4, 4, 4, 4, -1]), num_leaves=4,
                  height=np.array([0, 0, 0, 0, 2.5]))
  expected = [[0, 1, 2.5, 2], [4, 2, 2.5, 3], [5, 3, 2.5, 4]]
  np.testing.assert_array_equal(to_linkage(h), expected)
  # Without heights the raw fallback is the leaf count; the default lowers
  # it by float64 steps so that the heights strictly increase.
  h0 = from_parent(np.array([4, 4, 4, 4, -1]), num_leaves=4)
  np.testing.assert_array_equal(to_linkage(h0, heights="raw")[:, 2], [4, 4, 4])
  below = np.nextafter(4.0, 0.0)
  np.testing.assert_array_equal(to_linkage(h0)[:, 2],
                                [np.nextafter(below, 0.0), below, 4.0])


def test_to_linkage_orders_rows_by_height_not_by_label():
  # Node 4 (height 3) covers leaves 0, 1; node 5 (height 1) covers 2, 3: the
  # lower merge gets the first row although its node index is larger.
  parent = np.array([4, 4, 5, 5, 6, 6, -1])
  height = np.array([0, 0, 0, 0, 3.0, 1.0, 4.0])
  h = from_parent(parent, height=height)
  Z = to_linkage(h)
  np.testing.assert_array_equal(Z, [[2, 3, 1, 2], [0, 1, 3, 2], [5, 4, 4, 4]])
  assert sch.is_monotonic(Z)
  # Z[2, 0] = 5 (the node over leaves 0, 1) comes first, as in h's leaf order.
  np.testing.assert_array_equal(sch.leaves_list(Z), [0, 1, 2, 3])
  np.testing.assert_array_equal(leaves_list(h), [0, 1, 2, 3])


def test_to_linkage_float32_heights_are_exact_in_float64_output():
  h = from_parent(np.array([3, 3, 4, 4, -1]), height=np.array([0, 0, 0, 0.1, 0.7]))
  Z = to_linkage(h)
  np.testing.assert_array_equal(Z[:, 2], np.array([0.1, 0.7], np.float32).astype(np.float64))


def test_to_linkage_rejects_bad_input():
  with pytest.raises(TypeError, match="to_linkage: h must be a Hierarchy, got ndarray"):
    to_linkage(np.array([2, 2, -1]))
  cyc = Hierarchy(parent=np.array([4, 4, 5, 5, 5, 4, -1], np.int32))
  with pytest.raises(ValueError, match="to_linkage: h must be a valid hierarchy, got .*cycle"):
    to_linkage(cyc)
  two_roots = Hierarchy(parent=np.array([3, 3, -1, -1, -2], np.int32))
  with pytest.raises(ValueError, match="to_linkage: h must be a valid hierarchy.*one root"):
    to_linkage(two_roots)
  neg = Hierarchy(parent=np.array([3, 3, 4, 4, -1], np.int32),
                  height=np.array([0, 0, 0, -1.0, 2.0]))
  with pytest.raises(ValueError, match=r"to_linkage: h.height must be non-negative.*height\[3\] = -1"):
    to_linkage(neg)
  batch = Hierarchy(parent=np.array([[2, 2, -1], [2, 2, -1]], np.int32))
  with pytest.raises(ValueError, match=r"to_linkage: h.parent must be int\[2n - 1\] \(one tree"):
    to_linkage(batch)
  with pytest.raises(TypeError, match="to_linkage: h must be concrete"):
    jax.jit(lambda p: to_linkage(Hierarchy(parent=p)))(np.array([2, 2, -1], np.int32))


def test_to_linkage_caterpillar_large():
  n = 2000
  parent = np.full(2 * n - 1, -1)
  parent[0] = n
  for i in range(1, n):
    parent[i] = n + i - 1
  for u in range(n, 2 * n - 2):
    parent[u] = u + 1
  h = from_parent(parent, height=np.concatenate([np.zeros(n), np.arange(1, n, dtype=float)]))
  Z = to_linkage(h)
  assert sch.is_valid_linkage(Z) and sch.is_monotonic(Z)
  np.testing.assert_array_equal(Z[:, 3], np.arange(2, n + 1))
  np.testing.assert_array_equal(Z[1:, 0], np.arange(2, n))  # leaf i < node index
  np.testing.assert_array_equal(Z[1:, 1], n + np.arange(n - 2))


def test_library_does_not_import_scipy():
  code = ("import sys, fairhc_jax, fairhc_jax.interop, fairhc_jax.hierarchy\n"
          "bad = [m for m in sys.modules if m == 'scipy' or m.startswith('scipy.')]\n"
          "assert not bad, bad\n")
  subprocess.run([sys.executable, "-c", code], check=True)


def test_to_linkage_heights_modes_and_message():
  # An inversion: node 5 (raw 1.0) sits under node 6 (raw 0.5).
  h = from_parent(np.array([4, 4, 5, 5, 6, 6, -1]),
                  height=np.array([0, 0, 0, 0, 3.0, 1.0, 0.5]))
  raw = to_linkage(h, heights="raw")
  mono = to_linkage(h)
  np.testing.assert_array_equal(raw[:, 2], [1.0, 3.0, 0.5])
  assert not sch.is_monotonic(raw) and sch.is_monotonic(mono)
  np.testing.assert_array_equal(mono[:, 2], [1.0, 3.0, np.nextafter(3.0, 4.0)])
  for k in (1, 2, 3, 4):
    assert len(np.unique(sch.fcluster(mono, k, "maxclust"))) == k
    assert len(np.unique(sch.cut_tree(mono, n_clusters=k))) == k
  with pytest.raises(ValueError, match="to_linkage: heights must be one of 'monotone', 'raw', got 'sorted'"):
    to_linkage(h, heights="sorted")
  with pytest.raises(TypeError):
    to_linkage(h, "raw")  # keyword-only


def test_monotone_linkage_reads_back_exactly_under_x64():
  rng = np.random.default_rng(7)
  with jax.enable_x64(True):
    for n in (2, 5, 17):
      parent, hgt = random_tree(rng, n, 2, "random")
      Z = to_linkage(from_parent(parent, num_leaves=n, height=hgt))
      back = to_linkage(from_linkage(Z))
      # Same rows and heights (columns in index order: see the module doc).
      np.testing.assert_array_equal(back[:, :2], np.sort(Z[:, :2], axis=1))
      np.testing.assert_array_equal(back[:, 2:], Z[:, 2:])
