"""Flat clusterings from a hierarchy: ``cut(h, k)`` and its group table.

(The module is ``flat``, not ``cut``, so that the package-level function
``fairhc_jax.cut`` does not shadow it.)

``cut(h, k)`` undoes the last ``k - 1`` merges of the tree, in the row order
of :func:`fairhc_jax.to_linkage` (merges sorted by height, children before
parents), and labels the ``k`` clusters left. So it is the cut SciPy's
``cut_tree(to_linkage(h), n_clusters=k)`` makes, with the same labels
(clusters numbered in order of their smallest point), wherever the heights
differ; ``fcluster(to_linkage(h), k, "maxclust")`` finds the same clusters
under other names wherever it can make ``k`` of them.

* Trees with heights: the ``k`` clusters are those below the height at which
  the tree has ``k`` clusters, the highest merges undone first (with the
  monotone heights of ``to_linkage``: a node is never undone before an
  ancestor).
* Trees without heights (``h.height is None``, e.g. the output of the tree
  operators and the Knittel et al. reductions): merges are ordered by the
  number of points they join, so the cut splits the largest clusters first
  (ties: the node with the larger index first).
* Non-binary trees: a node with children ``c1 < ... < cj`` (by index) is cut
  as its binarisation in ``to_linkage`` (``c1`` joined with ``c2``, then
  ``c3``, ...): undoing its merges one at a time splits off its last child
  first, so every ``k`` from 1 to ``n`` is reachable.

With colours, :class:`Cut` also carries the per-cluster group counts and
shares (and the groups' names, e.g. a loader's ``Dataset.color_names``), and
prints them as a table.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from fairhc_jax import _checks
from fairhc_jax import interop as _interop
from fairhc_jax.hierarchy import Hierarchy

__all__ = ["Cut", "cut"]


@dataclasses.dataclass(frozen=True)
class Cut:
  """The ``k`` flat clusters of a tree and, with colours, their group make-up.

  Attributes:
    labels: ``int32[n]``, the cluster of each point, ``0..k-1`` numbered in
      order of each cluster's smallest point (``labels[0] == 0``).
    sizes: ``int64[k]``, points per cluster.
    counts: ``int64[k, c]`` points of each group in each cluster, or ``None``
      without colours.
    shares: ``float64[k, c]``, ``counts / sizes[:, None]``, or ``None``.
    color_names: ``c`` group names (``"color 0"``, ... when none were given),
      or ``None`` without colours.
  """

  labels: np.ndarray
  sizes: np.ndarray
  counts: Optional[np.ndarray] = None
  shares: Optional[np.ndarray] = None
  color_names: Optional[tuple] = None

  @property
  def num_clusters(self) -> int:
    """``k``."""
    return int(self.sizes.shape[0])

  @property
  def overall_shares(self) -> Optional[np.ndarray]:
    """``float64[c]``, each group's share of all points (``None`` without colours)."""
    if self.counts is None:
      return None
    total = self.counts.sum(axis=0)
    return total / max(int(total.sum()), 1)

  def __str__(self) -> str:
    k = self.num_clusters
    head = f"{k} cluster{'s' if k != 1 else ''} of {int(self.sizes.sum())} points"
    if self.counts is None:
      rows = [head, f"{'cluster':>7} {'size':>7}"]
      rows += [f"{i:>7} {int(s):>7}" for i, s in enumerate(self.sizes)]
      return "\n".join(rows)
    names = [str(c) for c in self.color_names]
    width = [max(len(nm), 13) for nm in names]
    rows = [head + " (group counts and shares)",
            f"{'cluster':>7} {'size':>7}  " + "  ".join(
                f"{nm:>{w}}" for nm, w in zip(names, width))]
    for i in range(k):
      cells = [f"{int(self.counts[i, j]):>6} ({100 * self.shares[i, j]:5.1f}%)"
               for j in range(len(names))]
      rows.append(f"{i:>7} {int(self.sizes[i]):>7}  " + "  ".join(
          f"{c:>{w}}" for c, w in zip(cells, width)))
    total = self.counts.sum(axis=0)
    cells = [f"{int(total[j]):>6} ({100 * self.overall_shares[j]:5.1f}%)"
             for j in range(len(names))]
    rows.append(f"{'all':>7} {int(self.sizes.sum()):>7}  " + "  ".join(
        f"{c:>{w}}" for c, w in zip(cells, width)))
    return "\n".join(rows)


def _labels_from_rows(z: np.ndarray, n: int, k: int) -> np.ndarray:
  """Cluster of each point after the first ``n - k`` merges of ``z``."""
  done = n - k
  up = np.arange(2 * n - 1, dtype=np.int64)  # roots point at themselves
  if done:
    new = n + np.arange(done)
    up[z[:done, 0].astype(np.int64)] = new
    up[z[:done, 1].astype(np.int64)] = new
  # Pointer jumping: after r rounds each node points 2^r levels up (or to
  # its root); log2(n) + 1 rounds reach every root.
  for _ in range(max(1, int(np.ceil(np.log2(max(n, 2))))) + 1):
    up = up[up]
  top = up[:n]
  # Number the clusters by their smallest point (SciPy's cut_tree labels).
  _, first, inverse = np.unique(top, return_index=True, return_inverse=True)
  rank = np.empty(len(first), np.int64)
  rank[np.argsort(first, kind="stable")] = np.arange(len(first))
  return rank[inverse.reshape(-1)].astype(np.int32)


def cut(h: Hierarchy, k: int, colors=None, *,
        color_names: Optional[Sequence[str]] = None) -> Cut:
  """The ``k`` clusters of a tree (the last ``k - 1`` merges undone).

  See the module docstring for the order of the merges (heights, trees
  without heights, non-binary trees). Equals SciPy's
  ``cut_tree(to_linkage(h), n_clusters=k)[:, 0]`` label for label wherever
  the tree's heights differ.

  Args:
    h: a valid ``Hierarchy`` over ``n`` points (concrete, one tree).
    k: the number of clusters, ``1 <= k <= n``.
    colors: optional ``int[n]`` group of each point in ``0..c-1``.
    color_names: optional ``c`` names of the groups (for example
      ``Dataset.color_names`` from :mod:`fairhc_jax.datasets`); only with
      ``colors``.

  Returns:
    A :class:`Cut`: ``labels int32[n]``, ``sizes``, and with colours the
    table ``counts int64[k, c]`` / ``shares float64[k, c]``; ``print`` it for
    the table.

  Raises:
    ValueError / TypeError: a bad tree, ``k`` outside ``[1, n]``, colours of
      the wrong length or values, or ``color_names`` of the wrong length.
  """
  fn = "cut"
  z, _ = _interop._merge_rows(h, fn, "monotone")
  n = z.shape[0] + 1
  k = _checks.check_positive_int(fn, "k", k)
  if k > n:
    _checks.fail(fn, "k", f"be at most the number of points n = {n}", repr(k))
  labels = _labels_from_rows(z, n, k)
  sizes = np.bincount(labels, minlength=k).astype(np.int64)
  if colors is None:
    if color_names is not None:
      _checks.fail(fn, "color_names", "come with colors", "color_names without colors")
    return Cut(labels=labels, sizes=sizes)
  c_arr, num_colors = _checks.check_colors(fn, "colors", colors, n, batched=False)
  c_np = np.asarray(c_arr).astype(np.int64)
  if color_names is None:
    names = tuple(f"color {j}" for j in range(num_colors))
  else:
    if isinstance(color_names, str):
      _checks.fail(fn, "color_names", "be a sequence of names", repr(color_names),
                   TypeError)
    names = tuple(str(nm) for nm in color_names)
    if len(names) < num_colors:
      _checks.fail(fn, "color_names", f"name every colour in colors (at least "
                   f"{num_colors} names)", f"{len(names)} names")
    num_colors = len(names)
  counts = np.zeros((k, num_colors), np.int64)
  np.add.at(counts, (labels.astype(np.int64), c_np), 1)
  shares = counts / sizes[:, None]
  return Cut(labels=labels, sizes=sizes, counts=counts, shares=shares,
             color_names=names)
