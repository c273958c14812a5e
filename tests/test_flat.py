"""Tests for fairhc_jax.cut (flat clusterings) against SciPy and NumPy oracles."""

import numpy as np
import pytest

import fairhc_jax as fh
from fairhc_jax.hierarchy import from_parent

sch = pytest.importorskip("scipy.cluster.hierarchy")


def oracle_top_down(parent, key, n, k):
  """k clusters of a binary tree: split the cluster of largest key k - 1 times.

  ``key[u]`` orders the merges; returns sorted tuples of leaves.
  """
  kids = {}
  for v, p in enumerate(parent):
    if p >= 0:
      kids.setdefault(int(p), []).append(v)

  def leaves(u):
    return (u,) if u < n else sum((leaves(c) for c in kids[u]), ())

  root = int(np.flatnonzero(np.asarray(parent) == -1)[0])
  cur = [root]
  while len(cur) < k:
    u = max((x for x in cur if x >= n), key=lambda x: key[x])
    cur.remove(u)
    cur.extend(kids[u])
  return sorted(tuple(sorted(leaves(u))) for u in cur)


def groups(labels):
  return sorted(tuple(np.flatnonzero(labels == c)) for c in np.unique(labels))


def test_cut_matches_scipy_on_linkage_trees():
  rng = np.random.default_rng(0)
  X = rng.normal(size=(40, 3))
  for method in ("average", "complete", "ward"):
    Z = sch.linkage(X, method)
    h = fh.from_linkage(Z)
    Zh = fh.to_linkage(h)
    for k in (1, 2, 5, 17, 40):
      res = fh.cut(h, k)
      assert res.labels.dtype == np.int32 and res.labels.shape == (40,)
      np.testing.assert_array_equal(res.labels, sch.cut_tree(Zh, n_clusters=k)[:, 0])
      # SciPy's own Z (float64 heights) gives the same clusters.
      assert groups(res.labels) == groups(sch.cut_tree(Z, n_clusters=k)[:, 0])
      assert groups(res.labels) == groups(sch.fcluster(Z, k, "maxclust"))


def test_cut_oracle_non_monotone_and_without_heights():
  rng = np.random.default_rng(1)
  n = 30
  for trial in range(6):
    # A random binary tree with random (non-monotone) heights.
    parent = list(range(0))
    parent = [-1] * n
    active = list(range(n))
    raw = [0.0] * n
    while len(active) > 1:
      a, b = rng.choice(len(active), 2, replace=False)
      new = len(parent)
      parent.append(-1)
      parent[active[a]] = parent[active[b]] = new
      raw.append(float(rng.uniform(0, 10)))
      active = [x for i, x in enumerate(active) if i not in (a, b)] + [new]
    parent, raw = np.array(parent), np.array(raw)
    with_h = trial % 2 == 0
    h = from_parent(parent, height=raw if with_h else None)
    p = np.asarray(h.parent)
    hh = None if h.height is None else np.asarray(h.height, np.float64)
    # Key: the largest height in the subtree (leaf count without heights),
    # then the node index.
    size = np.zeros(len(p))
    size[:n] = 1
    top = np.zeros(len(p)) if hh is None else hh.copy()
    for u in range(len(p)):
      if p[u] >= 0:
        size[p[u]] += size[u]
    for u in range(len(p)):
      if p[u] >= 0:
        top[p[u]] = max(top[p[u]], top[u])
    key = {u: ((size[u] if hh is None else top[u]), u) for u in range(n, len(p))}
    Z = fh.to_linkage(h)
    for k in range(1, n + 1):
      labels = fh.cut(h, k).labels
      assert groups(labels) == oracle_top_down(p, key, n, k)
      np.testing.assert_array_equal(labels, sch.cut_tree(Z, n_clusters=k)[:, 0])
      assert groups(labels) == groups(sch.fcluster(Z, k, "maxclust"))


def test_cut_non_binary_splits_last_child_first():
  # Root 5 over leaves 0, 1 and node ... : a star of four leaves.
  h = from_parent(np.array([4, 4, 4, 4, -1]), num_leaves=4)
  np.testing.assert_array_equal(fh.cut(h, 1).labels, [0, 0, 0, 0])
  np.testing.assert_array_equal(fh.cut(h, 2).labels, [0, 0, 0, 1])
  np.testing.assert_array_equal(fh.cut(h, 3).labels, [0, 0, 1, 2])
  np.testing.assert_array_equal(fh.cut(h, 4).labels, [0, 1, 2, 3])


def test_cut_group_table_against_numpy():
  rng = np.random.default_rng(2)
  n = 60
  X = rng.normal(size=(n, 2))
  colors = rng.integers(0, 3, n)
  h = fh.linkage_from_points(X)
  res = fh.cut(h, 4, colors, color_names=("a", "b", "c"))
  labels = res.labels
  for c in range(4):
    members = labels == c
    assert res.sizes[c] == members.sum()
    for g in range(3):
      assert res.counts[c, g] == np.sum(members & (colors == g))
      assert res.shares[c, g] == np.sum(members & (colors == g)) / members.sum()
  assert res.color_names == ("a", "b", "c")
  np.testing.assert_allclose(res.overall_shares, np.bincount(colors, minlength=3) / n)
  text = str(res)
  assert text.splitlines()[0] == "4 clusters of 60 points (group counts and shares)"
  assert "a" in text.splitlines()[1] and len(text.splitlines()) == 4 + 3
  # Default names; an unused last colour gets a column when named.
  res2 = fh.cut(h, 2, colors)
  assert res2.color_names == ("color 0", "color 1", "color 2")
  res3 = fh.cut(h, 2, colors, color_names=["x", "y", "z", "w"])
  assert res3.counts.shape == (2, 4) and res3.counts[:, 3].sum() == 0
  assert str(fh.cut(h, 3)).splitlines()[0] == "3 clusters of 60 points"


def test_cut_one_point_and_errors():
  h1 = fh.from_parent(np.array([-1]))
  np.testing.assert_array_equal(fh.cut(h1, 1).labels, [0])
  h = fh.from_parent(np.array([3, 3, 4, 4, -1]))
  with pytest.raises(ValueError, match=r"cut: k must be at most the number of points n = 3, got 4"):
    fh.cut(h, 4)
  with pytest.raises(ValueError, match=r"cut: k must be an integer >= 1, got 0"):
    fh.cut(h, 0)
  with pytest.raises(TypeError, match=r"cut: k must be an integer >= 1, got 2.0"):
    fh.cut(h, 2.0)
  with pytest.raises(ValueError, match=r"cut: colors must have one colour per leaf \(length 3\)"):
    fh.cut(h, 2, [0, 1])
  with pytest.raises(ValueError, match=r"cut: color_names must name every colour"):
    fh.cut(h, 2, [0, 1, 2], color_names=["a", "b"])
  with pytest.raises(ValueError, match=r"cut: color_names must come with colors"):
    fh.cut(h, 2, color_names=["a"])
  with pytest.raises(TypeError, match=r"cut: h must be a Hierarchy"):
    fh.cut(np.array([2, 2, -1]), 1)


def test_truncated_dendrogram_shows_the_cut():
  # The truncated dendrogram's p leaves are the p clusters of cut(h, p), on a
  # tree with non-monotone heights and on one without heights. (SciPy's
  # cut_tree on raw non-monotone heights collapses to one cluster: tested in
  # test_interop.)
  rng = np.random.default_rng(3)
  n = 80
  parent, raw, active = [-1] * n, [0.0] * n, list(range(n))
  while len(active) > 1:
    a, b = rng.choice(len(active), 2, replace=False)
    parent.append(-1)
    parent[active[a]] = parent[active[b]] = len(parent) - 1
    raw.append(float(rng.uniform(0, 10)))
    active = [x for i, x in enumerate(active) if i not in (a, b)] + [len(parent) - 1]
  for h in (from_parent(np.array(parent), height=np.array(raw)),
            from_parent(np.array(parent))):
    Z = fh.to_linkage(h)
    for p in (3, 5, 8):
      d = sch.dendrogram(Z, truncate_mode="lastp", p=p, no_plot=True)
      shown = sorted(int(s.strip("()")) if s.startswith("(") else 1 for s in d["ivl"])
      assert shown == sorted(fh.cut(h, p).sizes.tolist())
