"""scikit-learn estimators (the ``sklearn`` extra): fair trees with ``fit(X, sensitive_features=...)``.

Three estimators, all following :class:`sklearn.cluster.AgglomerativeClustering`'s
conventions, with the protected attribute passed as fairlearn does
(``fit(X, y=None, *, sensitive_features=None)``, any labels: strings,
integers; the groups are the sorted distinct labels, ``groups_``):

* :class:`FairletClustering`: Ahmadian et al. (2020), fairlets + local
  search + average linkage (:func:`fairhc_jax.fair_hierarchical_clustering`);
* :class:`FairReductionClustering`: a Knittel et al. (2023) reduction
  (``fair_hc`` by default) of the average-linkage tree;
* :class:`LinkageClustering`: plain agglomerative clustering (average,
  single, complete, weighted, Ward).

Without ``sensitive_features`` the fair estimators fall back to plain
linkage (``average``), so they work in any scikit-learn pipeline.

Fitted attributes (``n`` samples):

* ``labels_``: ``int[n]``, the cut of the tree into ``n_clusters`` clusters
  (:func:`fairhc_jax.cut`; clusters numbered by their smallest sample);
* ``children_``: ``int[n - 1, 2]``, row ``i`` merges the two clusters
  ``children_[i]`` into cluster ``n + i`` (a value ``< n`` is a sample);
* ``distances_``: ``float[n - 1]``, the height of merge ``i`` (monotone; for
  trees without heights, the cluster size, see :func:`fairhc_jax.to_linkage`);
* ``linkage_``: ``float64[n - 1, 4]``, SciPy's ``Z`` (``children_``,
  ``distances_`` and the cluster sizes);
* ``hierarchy_``: the :class:`fairhc_jax.Hierarchy` itself;
* ``n_leaves_``, ``n_connected_components_`` (1), ``n_features_in_``,
  ``groups_`` (the sorted labels, ``None`` without sensitive features),
  ``result_`` (the algorithm's result object, with ``.scope`` and
  ``.constraint``; ``None`` for plain linkage).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional

import numpy as np

try:
  from sklearn.base import BaseEstimator, ClusterMixin
  from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as e:  # pragma: no cover - depends on the environment
  raise ImportError("fairhc_jax.sklearn needs scikit-learn: pip install "
                    "'fairhc_jax[sklearn]'") from e

__all__ = ["FairletClustering", "FairReductionClustering", "LinkageClustering"]

_METHODS = ("average", "single", "complete", "weighted", "ward")


def _encode_groups(est_name: str, sensitive_features, n: int):
  s = np.asarray(sensitive_features)
  if s.ndim == 2 and s.shape[1] == 1:
    s = s[:, 0]
  if s.ndim != 1 or s.shape[0] != n:
    raise ValueError(f"{est_name}.fit: sensitive_features must have one label per sample "
                     f"({n}), got shape {s.shape}")
  if s.dtype.kind == "f" and np.isnan(s).any():
    raise ValueError(f"{est_name}.fit: sensitive_features must not contain NaN, got "
                     f"{int(np.isnan(s).sum())} NaN labels")
  groups, colors = np.unique(s, return_inverse=True)
  if groups.size < 2:
    raise ValueError(f"{est_name}.fit: sensitive_features must hold at least two groups, "
                     f"got only {groups.tolist()}")
  return groups, colors.astype(np.int32)


class _TreeClustering(ClusterMixin, BaseEstimator):
  """Shared fit: validate, build the tree, expose AgglomerativeClustering's attributes."""

  def _build(self, D, colors):  # pragma: no cover - abstract
    raise NotImplementedError

  def fit(self, X, y=None, *, sensitive_features=None):
    """Builds the tree of ``X`` (``float[n, d]``), fair for ``sensitive_features`` (``[n]``).

    Returns:
      ``self``.
    """
    import jax

    from fairhc_jax import distances, flat, interop
    from fairhc_jax.agglomerative import linkage
    X = validate_data(self, X, ensure_min_samples=2, dtype=[np.float64, np.float32])
    name = type(self).__name__
    if not (isinstance(self.n_clusters, (int, np.integer)) and 1 <= self.n_clusters):
      raise ValueError(f"{name}: n_clusters must be a positive integer, got "
                       f"{self.n_clusters!r}")
    n = X.shape[0]
    if self.n_clusters > n:
      raise ValueError(f"{name}: n_clusters must be at most the number of samples ({n}), "
                       f"got {self.n_clusters}")
    D = distances.pairwise_distances(np.asarray(X, np.float32))
    if sensitive_features is None:
      self.groups_ = None
      self.result_ = None
      h = linkage(D, method=self._fallback_method())
    else:
      self.groups_, colors = _encode_groups(name, sensitive_features, n)
      self.result_ = self._build(D, colors)
      h = self.result_.hierarchy
    h = jax.block_until_ready(h)
    Z = interop.to_linkage(h)
    self.hierarchy_ = h
    self.linkage_ = Z
    self.children_ = Z[:, :2].astype(np.intp)
    self.distances_ = Z[:, 2].copy()
    self.labels_ = np.asarray(flat.cut(h, int(self.n_clusters)).labels).astype(np.intp)
    self.n_leaves_ = n
    self.n_connected_components_ = 1
    return self

  def fit_predict(self, X, y=None, *, sensitive_features=None):
    """``fit`` and return ``labels_``."""
    return self.fit(X, y, sensitive_features=sensitive_features).labels_

  def _fallback_method(self) -> str:
    return "average"

  def cut(self, n_clusters: int):
    """Labels of another cut of the fitted tree (``int[n]``), without refitting."""
    from fairhc_jax import flat
    check_is_fitted(self, "hierarchy_")
    return np.asarray(flat.cut(self.hierarchy_, int(n_clusters)).labels).astype(np.intp)


class LinkageClustering(_TreeClustering):
  """Plain agglomerative clustering (:func:`fairhc_jax.linkage`), JAX-compiled.

  Args:
    n_clusters: clusters of ``labels_``.
    linkage: ``"average"``, ``"single"``, ``"complete"``, ``"weighted"`` or ``"ward"``.

  ``sensitive_features`` is accepted and ignored (the tree is the same), so
  this estimator is the baseline of the fair ones in one pipeline.
  """

  def __init__(self, n_clusters: int = 2, *, linkage: str = "average"):
    self.n_clusters = n_clusters
    self.linkage = linkage

  def _fallback_method(self) -> str:
    if self.linkage not in _METHODS:
      raise ValueError(f"LinkageClustering: linkage must be one of {_METHODS}, got "
                       f"{self.linkage!r}")
    return self.linkage

  def _build(self, D, colors):
    from fairhc_jax.agglomerative import linkage

    class _Plain:  # a result without a fairness guarantee
      scope = None
      constraint = None

    r = _Plain()
    r.hierarchy = linkage(D, method=self._fallback_method())
    return r


class FairletClustering(_TreeClustering):
  """The Ahmadian et al. (NeurIPS 2020) fair tree: fairlets, local search, average linkage.

  Args:
    n_clusters: clusters of ``labels_``.
    constraint: a :class:`fairhc_jax.Balance` (two groups) or
      :class:`fairhc_jax.BoundedRepresentation`; ``None``: ``Balance(1, 3)``
      for two groups, ``BoundedRepresentation(1 / (c - 1))`` for ``c > 2``.
    schedule: the local search, ``"fast"`` or ``"random"``.
    eps: a swap is kept when it lowers the objective by ``(1 + eps / n)``.
    max_steps: cap on the local search steps (``None``: until a local optimum).
    random_state: the seed of ``jax.random.key``.
  """

  def __init__(self, n_clusters: int = 2, *, constraint=None, schedule: str = "fast",
               eps: float = 0.1, max_steps: Optional[int] = None, random_state: int = 0):
    self.n_clusters = n_clusters
    self.constraint = constraint
    self.schedule = schedule
    self.eps = eps
    self.max_steps = max_steps
    self.random_state = random_state

  def _build(self, D, colors):
    import jax

    from fairhc_jax import fairness
    from fairhc_jax.algorithms import fairlet_hc
    c = int(colors.max()) + 1
    constraint = self.constraint
    if constraint is None:
      constraint = (fairness.Balance(1, 3) if c == 2
                    else fairness.BoundedRepresentation(Fraction(1, c - 1)))
    return fairlet_hc.fair_hierarchical_clustering(
        jax.random.key(int(self.random_state)), D, colors, constraint=constraint,
        schedule=self.schedule, eps=self.eps, metric="precomputed",
        max_steps=self.max_steps, progress=False)


class FairReductionClustering(_TreeClustering):
  """A Knittel et al. (ICML 2023) reduction of the average-linkage tree.

  Args:
    n_clusters: clusters of ``labels_``.
    reduction: ``"fair_hc"`` (Algorithm 3), ``"stochastic"``
      (:func:`fairhc_jax.stochastically_fair_hc`), ``"rebalance"`` or ``"refine"``.
    eps: the reduction's epsilon (a float or a ``Fraction``; ``None``: each function's default; required
      by ``"stochastic"`` and ``"refine"``).
    num_sorted, num_folds: ``fair_hc``'s parameters (powers of two).
    min_cluster_size: ``fair_hc`` / ``stochastic`` minimum cluster size.
  """

  def __init__(self, n_clusters: int = 2, *, reduction: str = "fair_hc", eps=0.125,
               num_sorted: Optional[int] = None, num_folds: Optional[int] = None,
               min_cluster_size: Optional[int] = None):
    self.n_clusters = n_clusters
    self.reduction = reduction
    self.eps = eps
    self.num_sorted = num_sorted
    self.num_folds = num_folds
    self.min_cluster_size = min_cluster_size

  def _build(self, D, colors):
    from fairhc_jax.agglomerative import linkage
    from fairhc_jax.algorithms import reductions
    base = linkage(D, method="average")
    r = self.reduction
    if r == "fair_hc":
      return reductions.fair_hc(base, colors, self.eps, num_sorted=self.num_sorted,
                                num_folds=self.num_folds,
                                min_cluster_size=self.min_cluster_size)
    if r == "stochastic":
      return reductions.stochastically_fair_hc(base, self.eps,
                                               min_cluster_size=self.min_cluster_size)
    if r == "rebalance":
      return reductions.rebalance_tree(base, Fraction(1, 6) if self.eps is None else self.eps)
    if r == "refine":
      return reductions.refine_rebalance_tree(base, self.eps)
    raise ValueError(f"FairReductionClustering: reduction must be one of 'fair_hc', "
                     f"'stochastic', 'rebalance', 'refine', got {r!r}")
