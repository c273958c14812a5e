"""fairhc_jax.sklearn: scikit-learn's own estimator checks, and the AgglomerativeClustering conventions.

`check_estimator` runs every check that applies to a clusterer on each
estimator. scikit-learn's checks call ``fit(X)`` / ``fit(X, y)`` without
``sensitive_features``, so they exercise the documented fallback (plain
average linkage); the fair paths are checked below against the library
calls they wrap. None of scikit-learn's checks is excluded; the only one
skipped is ``check_array_api_input``, which scikit-learn itself skips unless
``SCIPY_ARRAY_API`` is set (it is reported as skipped, not failed).
"""

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

import jax  # noqa: E402
from sklearn.cluster import AgglomerativeClustering  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import fairhc_jax as fh  # noqa: E402
from fairhc_jax.sklearn import (FairletClustering, FairReductionClustering,  # noqa: E402
                                LinkageClustering)


@pytest.mark.parametrize("est", [LinkageClustering(), FairletClustering(),
                                 FairReductionClustering()], ids=lambda e: type(e).__name__)
def test_check_estimator(est):
  results = check_estimator(est, on_fail=None, on_skip=None)
  bad = [(r["check_name"], r["status"], str(r["exception"])[:200]) for r in results
         if r["status"] != "passed"
         and not (r["check_name"] == "check_array_api_input" and r["status"] == "skipped")]
  assert not bad, bad
  assert len(results) > 30


@pytest.fixture(scope="module")
def blobs():
  rng = np.random.default_rng(0)
  X = np.r_[rng.normal(0, 1, (15, 2)), rng.normal(5, 1, (15, 2))]
  groups = np.array(["b", "a", "a"] * 10)       # 'a' 20, 'b' 10: sorted groups ['a', 'b']
  return X, groups


def test_linkage_matches_agglomerative_clustering(blobs):
  X, _ = blobs
  ours = LinkageClustering(n_clusters=3).fit(X)
  ref = AgglomerativeClustering(n_clusters=3, linkage="average", compute_distances=True).fit(X)
  np.testing.assert_allclose(ours.distances_, ref.distances_, rtol=1e-4)
  assert [set(r) for r in ours.children_.tolist()] == [set(r) for r in ref.children_.tolist()]
  # Same partition (labels may be numbered differently).
  pairs = {(a, b) for a, b in zip(ours.labels_, ref.labels_)}
  assert len(pairs) == 3
  assert ours.n_leaves_ == 30 and ours.n_connected_components_ == 1
  assert ours.linkage_.shape == (29, 4)


def test_fair_estimators_wrap_the_library(blobs):
  X, groups = blobs
  colors = np.array([["a", "b"].index(g) for g in groups])
  D = fh.pairwise_distances(np.asarray(X, np.float32))
  est = FairletClustering(n_clusters=2, constraint=fh.Balance(1, 2)).fit(
      X, sensitive_features=groups)
  assert est.groups_.tolist() == ["a", "b"]
  res = fh.fair_hierarchical_clustering(jax.random.key(0), D, colors,
                                        constraint=fh.Balance(1, 2), metric="precomputed")
  np.testing.assert_array_equal(np.asarray(est.hierarchy_.parent), np.asarray(res.hierarchy.parent))
  assert bool(fh.is_fair(est.result_, colors))
  np.testing.assert_array_equal(est.labels_, np.asarray(fh.cut(res.hierarchy, 2).labels))
  np.testing.assert_array_equal(est.linkage_, fh.to_linkage(res.hierarchy))
  # labels_ is the cut of children_: undo the last n_clusters - 1 merges by hand.
  n = X.shape[0]
  lab = np.arange(n)
  for t, (a, b) in enumerate(est.children_[: n - 2]):
    for i in (a, b):
      lab[np.isin(lab, [i])] = n + t
  _, canon = np.unique(lab, return_inverse=True)
  assert len(set(zip(canon, est.labels_))) == 2
  # Without sensitive features: the plain average-linkage tree.
  plain = FairletClustering().fit(X)
  assert plain.groups_ is None and plain.result_ is None
  np.testing.assert_array_equal(np.asarray(plain.hierarchy_.parent),
                                np.asarray(fh.linkage(D).parent))


@pytest.mark.slow
def test_reduction_estimator_wraps_fair_hc(blobs):
  X, groups = blobs
  colors = np.array([["a", "b"].index(g) for g in groups])
  n = X.shape[0]
  red = FairReductionClustering(n_clusters=2, num_sorted=4, num_folds=2).fit(
      X, sensitive_features=groups)
  assert bool(fh.is_fair(red.result_, colors))
  assert red.children_.shape == (n - 1, 2)
  D = fh.pairwise_distances(np.asarray(X, np.float32))
  ref = fh.fair_hc(fh.linkage(D), colors, 0.125, num_sorted=4, num_folds=2)
  np.testing.assert_array_equal(np.asarray(red.hierarchy_.parent),
                                np.asarray(ref.hierarchy.parent))


def test_bad_sensitive_features(blobs):
  X, groups = blobs
  with pytest.raises(ValueError, match=r"FairletClustering.fit: sensitive_features must have "
                                       r"one label per sample \(30\), got shape \(29,\)"):
    FairletClustering().fit(X, sensitive_features=groups[:-1])
  with pytest.raises(ValueError, match="at least two groups, got only"):
    FairletClustering().fit(X, sensitive_features=np.zeros(30))
  with pytest.raises(ValueError, match="n_clusters must be at most the number of samples"):
    LinkageClustering(n_clusters=31).fit(X)
