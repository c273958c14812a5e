"""The newcomer path of issue 13 on real data: 2,000 credit-card clients by sex.

linkage -> to_linkage -> SciPy (is_monotonic, cut_tree, fcluster) gives k = 5
clusters whose group shares equal ``cut(h, 5, colors)``'s table, for three
kinds of tree a user meets: an average-linkage tree (heights), a Knittel et
al. reduction (no heights, from the tree operators) and the Ahmadian et al.
fair tree (fairlets; non-monotone heights inside). The group shares are
recomputed here from SciPy's labels with NumPy, independently of ``cut``.

Two steps need the cluster scope of the fairness checks (``ClusterScope``,
``check_fairness(..., scope=...)``); they are skipped, with the reason, until
the checks take ``scope=``.
"""

import inspect

import jax
import numpy as np
import pytest

import fairhc_jax as fh

sch = pytest.importorskip("scipy.cluster.hierarchy")

pytestmark = pytest.mark.realdata

N = 2000
K = 5


def _scope_aware() -> bool:
  return (hasattr(fh, "ClusterScope")
          and "scope" in inspect.signature(fh.check_fairness).parameters)


needs_scope = pytest.mark.skipif(
    not _scope_aware(),
    reason="needs check_fairness(..., scope=ClusterScope(...)) (the fairness "
           "helper's work, issue 13 item 1); enable after merging")


@pytest.fixture(scope="module")
def sample(uci_dir):
  if not (uci_dir / "UCI_Credit_Card.csv").exists():
    pytest.skip(f"UCI_Credit_Card.csv not found in {uci_dir}")
  data = fh.datasets.load_credit_card("sex", data_dir=uci_dir)
  idx = fh.datasets.proportional_subsample(jax.random.key(0), data.colors, N)
  X = np.asarray(data.features[idx], np.float64)
  X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
  colors = np.asarray(data.colors[idx])
  D = fh.pairwise_distances(X)
  tree = fh.linkage(D, method="average")
  return data, X, colors, D, tree


@pytest.fixture(scope="module")
def fair_result(sample):
  _, _, colors, D, _ = sample
  kwargs = {"metric": "precomputed"}
  params = inspect.signature(fh.fair_hierarchical_clustering).parameters
  if "constraint" in params:
    kwargs["constraint"] = fh.Balance(1, 2)
  else:
    kwargs["balance"] = (1, 2)
  return fh.fair_hierarchical_clustering(jax.random.key(1), D, colors, **kwargs)


def shares_by_group(labels, colors, num_colors):
  """{sorted member tuple: group shares} from flat labels (NumPy only)."""
  out = {}
  for c in np.unique(labels):
    members = np.flatnonzero(labels == c)
    out[tuple(members)] = np.bincount(colors[members], minlength=num_colors) / len(members)
  return out


def check_newcomer_path(h, colors, color_names):
  Z = fh.to_linkage(h)
  assert sch.is_valid_linkage(Z) and sch.is_monotonic(Z)
  res = fh.cut(h, K, colors, color_names=color_names)
  assert res.num_clusters == K and res.color_names == tuple(color_names)
  ours = shares_by_group(res.labels, colors, len(color_names))
  table = {tuple(np.flatnonzero(res.labels == c)): res.shares[c] for c in range(K)}
  for key, val in ours.items():
    np.testing.assert_array_equal(table[key], val)
  tree_labels = sch.cut_tree(Z, n_clusters=K)[:, 0]
  flat_labels = sch.fcluster(Z, K, "maxclust")
  for labels in (tree_labels, flat_labels):
    theirs = shares_by_group(labels, colors, len(color_names))
    assert len(theirs) == K  # exactly k clusters, not one of 2,000 points
    assert theirs.keys() == ours.keys()
    for key in theirs:
      np.testing.assert_array_equal(theirs[key], table[key])
  np.testing.assert_array_equal(res.labels, tree_labels)  # label for label
  # The printed table names the groups.
  text = str(res)
  assert all(nm in text for nm in color_names) and f"{K} clusters of {N} points" in text
  return res


def test_linkage_tree(sample):
  data, _, colors, _, tree = sample
  res = check_newcomer_path(tree, colors, data.color_names)
  assert res.sizes.sum() == N


def test_tree_without_heights(sample):
  data, _, colors, _, tree = sample
  reduced = fh.rebalance_tree(tree).hierarchy
  assert reduced.height is None
  check_newcomer_path(reduced, colors, data.color_names)


@pytest.mark.slow  # the fair pipeline at n = 2,000: about a minute on 2 busy cores
def test_fair_tree(sample, fair_result):
  data, _, colors, _, _ = sample
  h = fair_result.hierarchy
  # The fair tree's raw heights are not monotone (fairlet subtrees below the
  # tree of fairlets): the default export still is.
  assert not sch.is_monotonic(fh.to_linkage(h, heights="raw"))
  check_newcomer_path(h, colors, data.color_names)


@pytest.mark.slow
@needs_scope
def test_fair_tree_passes_its_own_check(sample, fair_result):
  _, _, colors, _, _ = sample
  res = fair_result
  check = fh.check_fairness(res.hierarchy, colors, fh.Balance(1, 2), scope=res.scope)
  assert not np.any(np.asarray(check.violating))
  # The result itself: its own scope and constraint are used.
  assert bool(fh.check_fairness(res, colors).is_fair)
  assert bool(fh.is_fair(res, colors))


@needs_scope
def test_audit_with_a_size_scope_is_informative(sample):
  # Random groups with the observed proportions (40% male): on this tree, a
  # cluster scope of at least 100 points gives a probability near 1/2
  # (measured with a NumPy simulation: 0.48 over 300 colourings), while the
  # default scope (every cluster of two or more points) gives 0.
  _, _, colors, _, tree = sample
  probs = fh.fairness.observed_shares(colors)
  out = fh.fairness_probability(tree, probs, fh.Balance(1, 2), key=jax.random.key(2),
                                num_samples=2000, scope=fh.ClusterScope(min_size=100))
  p = float(out.estimate)
  # Every cluster of two or more points: practically never fair.
  low = fh.fairness_probability(tree, probs, fh.Balance(1, 2), key=jax.random.key(2),
                                num_samples=200)
  assert float(low.estimate) < 0.05
  assert 0.0 < p < 1.0, p
