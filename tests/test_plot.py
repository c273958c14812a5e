"""fairhc_jax.plot draws what it says: link colours, layout and histogram counts checked independently."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from scipy.cluster import hierarchy as sch  # noqa: E402

import fairhc_jax as fh  # noqa: E402
from fairhc_jax import plot  # noqa: E402

N = 40


@pytest.fixture(scope="module")
def tree():
  rng = np.random.default_rng(0)
  X = np.r_[rng.normal(0, 1, (20, 2)), rng.normal(4, 1, (20, 2))]
  colors = rng.integers(0, 3, N)
  colors[:3] = [0, 1, 2]
  h = fh.linkage(fh.pairwise_distances(X.astype(np.float32)))
  return X, colors, h


def _members(Z):
  """Leaf sets of each Z cluster id, from Z alone."""
  n = Z.shape[0] + 1
  mem = {i: [i] for i in range(n)}
  for t, (a, b) in enumerate(Z[:, :2].astype(int)):
    mem[n + t] = mem[a] + mem[b]
  return mem


def _node_xy(Z, leaf_positions):
  """(x, height) of each Z cluster's link top, SciPy's layout rebuilt: leaves at 5 + 10 i."""
  n = Z.shape[0] + 1
  x = dict(leaf_positions)
  for t, (a, b, hgt, _) in enumerate(Z):
    if int(a) in x and int(b) in x:
      x[n + t] = (x[int(a)] + x[int(b)]) / 2
  return {k: (v, (Z[k - n, 2] if k >= n else 0.0)) for k, v in x.items()}


@pytest.mark.parametrize("max_leaves", [None, 12])
def test_each_link_has_its_clusters_group_colour(tree, max_leaves):
  _, colors, h = tree
  fig, ax = plt.subplots()
  out = plot.dendrogram(h, colors, ax=ax, max_leaves=max_leaves)
  assert out is ax
  Z = fh.to_linkage(h)
  R = sch.dendrogram(Z, no_plot=True, **({} if max_leaves is None else
                                          dict(truncate_mode="lastp", p=max_leaves)))
  # The drawn segments are SciPy's layout, one polyline per link.
  (lc,) = ax.collections
  drawn = [np.asarray(p) for p in lc.get_segments()]
  assert len(drawn) == len(R["icoord"]) == (N - 1 if max_leaves is None else max_leaves - 1)
  for seg, xs, ys in zip(drawn, R["icoord"], R["dcoord"]):
    np.testing.assert_allclose(seg, np.column_stack([xs, ys]))
  # Each link's colour is its cluster's group shares times the palette, the
  # cluster found from the link's position (SciPy's leaf order) and Z alone.
  mem = _members(Z)
  pos = {leaf: 5 + 10 * i for i, leaf in enumerate(R["leaves"])}
  xy = _node_xy(Z, pos)
  top = {(round(x, 6), round(float(y), 6)): k for k, (x, y) in xy.items() if k >= N}
  pal = np.array([to_rgb(c) for c in plot.PALETTE[:3]])
  rgba = lc.get_colors()
  assert rgba.shape[0] == len(drawn)
  for seg, color in zip(drawn, rgba):
    x_mid, y_top = (seg[1, 0] + seg[2, 0]) / 2, seg[1, 1]
    k = top[(round(x_mid, 6), round(float(y_top), 6))]
    share = np.bincount(colors[mem[k]], minlength=3) / len(mem[k])
    np.testing.assert_allclose(color[:3], share @ pal, atol=1e-6)
  # The legend names the groups in palette colours.
  labels = [t.get_text() for t in ax.get_legend().get_texts()]
  assert labels == ["group 0", "group 1", "group 2"]
  plt.close(fig)


def test_pure_clusters_have_their_groups_colour():
  X = np.array([[0.0], [0.1], [5.0], [5.1]], np.float32)
  h = fh.linkage(fh.pairwise_distances(X))
  ax = plot.dendrogram(h, np.array([0, 0, 1, 1]))
  rgb = {tuple(np.round(c[:3], 6)) for c in ax.collections[0].get_colors()}
  blue, red = to_rgb(plot.PALETTE[0]), to_rgb(plot.PALETTE[1])
  mix = tuple(np.round((np.array(blue) + np.array(red)) / 2, 6))
  assert rgb == {tuple(np.round(blue, 6)), tuple(np.round(red, 6)), mix}
  plt.close(ax.figure)


def test_balance_histogram_counts_each_clusters_share(tree):
  _, colors, h = tree
  ax = plot.balance_histogram({"a": h, "b": h}, colors, group=1, scope=4, bins=10)
  # Independent shares: every internal node with >= 4 points, from the parent array.
  parent = np.asarray(h.parent)
  mem = {i: [i] for i in range(N)}
  for v in range(N, parent.shape[0]):
    mem[v] = []
  for i in range(parent.shape[0]):
    if parent[i] >= 0:
      mem[parent[i]] += mem[i] if i < N else []
  for v in range(N, parent.shape[0]):     # propagate leaves up (children before parents)
    if parent[v] >= 0:
      mem[parent[v]] += mem[v]
  shares = np.array(sorted(np.mean(colors[m] == 1) for v, m in mem.items()
                           if v >= N and len(m) >= 4))
  for lab in ("a", "b"):
    np.testing.assert_allclose(np.sort(ax.fairhc_shares[lab]), shares)
  expected, _ = np.histogram(shares, bins=np.linspace(0, 1, 11))
  drawn = [p for p in ax.patches]
  assert len(drawn) == 2      # step histograms, one per tree
  line = ax.lines[0]
  assert line.get_xdata()[0] == pytest.approx(np.mean(colors == 1))
  ax2 = plot.balance_histogram(h, colors, group=1, scope=4, bins=10)
  np.testing.assert_array_equal([p.get_height() for p in ax2.patches], expected)
  plt.close("all")


def test_trace_and_scatter_draw_their_data():
  ax = plot.local_search_trace({"fast": ([0, 3, 7], [1.0, 0.5, 0.2])})
  np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0, 3, 7])
  np.testing.assert_array_equal(ax.lines[0].get_ydata(), [1.0, 0.5, 0.2])
  assert ax.get_yscale() == "log"
  ax = plot.fairness_quality({"avg": (1.0, 0.9), "fair": ([0.2, 0.3], [0.8, 0.85])})
  np.testing.assert_allclose(ax.collections[0].get_offsets(), [[1.0, 0.9]])
  np.testing.assert_allclose(ax.collections[1].get_offsets(), [[0.2, 0.8], [0.3, 0.85]])
  with pytest.raises(ValueError, match="run 'x' must have as many swaps as values"):
    plot.local_search_trace({"x": ([0, 1], [1.0])})
  plt.close("all")
