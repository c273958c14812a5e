"""SciPy linkage matrices in and out of ``Hierarchy``, and dendrogram order.

A SciPy linkage matrix ``Z: float64[n - 1, 4]`` lists the merges of a binary
tree over ``n`` points: row ``i`` joins the clusters labelled ``Z[i, 0]`` and
``Z[i, 1]`` at height ``Z[i, 2]`` into a new cluster of ``Z[i, 3]`` points,
labelled ``n + i``. Labels ``0..n-1`` are the points. This module converts
between that contract and :class:`~fairhc_jax.hierarchy.Hierarchy`, so users
keep ``scipy.cluster.hierarchy.dendrogram``, ``fcluster``, ``cophenet`` and
``cut_tree`` for trees built here.

Conventions (stable; tests hold them):

* :func:`from_linkage` maps row ``i`` to node ``n + i``, so node labels are
  SciPy's cluster labels and the heights are ``Z[:, 2]``.
* :func:`to_linkage` gives monotone heights by default (``heights="raw"``
  for the stored ones) and rows in an order SciPy's ``cut_tree`` and
  ``fcluster`` can use (see its docstring). It writes ``Z[i, 0]`` = the child whose leaves come first in
  the hierarchy's DFS leaf order (children by node index, see
  :func:`fairhc_jax.hierarchy.leaf_ranges`), ``Z[i, 1]`` = the other one. So
  ``scipy.cluster.hierarchy.leaves_list(to_linkage(h))`` equals
  :func:`leaves_list(h) <leaves_list>`, and for trees that came from SciPy's
  ``linkage`` (which writes the smaller label first, in increasing height) the
  round trip ``to_linkage(from_linkage(Z))`` returns ``Z`` exactly (with
  ``heights="raw"`` for SciPy's non-monotone centroid and median output).
* A ``Hierarchy`` orders children by index, so the column order of a row with
  ``Z[i, 0] > Z[i, 1]`` is not kept by :func:`from_linkage` (the clusters and
  heights are).

SciPy is not imported here: the core library does not depend on it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax.hierarchy import Hierarchy, UNUSED, check_hierarchy, leaf_ranges


# ---------------------------------------------------------------------------
# Bottom-up aggregation over a parent array (NumPy, no sequential node loop).


def _subtree_reduce(parent: np.ndarray, values: np.ndarray,
                    ufunc: np.ufunc) -> np.ndarray:
  """``ufunc``-reduction of ``values`` over each node's subtree.

  Pointer jumping: after round ``k`` each node holds the reduction over its
  descendants at distance ``< 2**k``; a round folds in, for every node ``w``,
  its value into its ``2**k``-th ancestor. O(m log depth) work.

  Args:
    parent: ``int[m]`` parent array (negative entries have no parent).
    values: ``[m]`` per-node values.
    ufunc: ``np.add`` or ``np.maximum``.

  Returns:
    ``[m]`` reduced values (unchanged on nodes without descendants).
  """
  acc = np.array(values, copy=True)
  anc = np.where(parent >= 0, parent, -1).astype(np.int64)
  while True:
    has = anc >= 0
    if not has.any():
      return acc
    nxt = acc.copy()
    ufunc.at(nxt, anc[has], acc[has])
    acc = nxt
    anc = np.where(has, anc[np.maximum(anc, 0)], -1)


# ---------------------------------------------------------------------------
# Linkage matrix -> Hierarchy.


def _linkage_array(fn: str, z: Any) -> np.ndarray:
  """``Z`` as a float64 NumPy array of shape ``(r, 4)`` (or raises)."""
  if z is None:
    _checks.fail(fn, "Z", "be a linkage matrix float[n - 1, 4]", "None", TypeError)
  if isinstance(z, jax.core.Tracer):
    _checks.fail(fn, "Z", "be a concrete array (from_linkage runs outside jit)",
                 "a traced value", TypeError)
  try:
    arr = np.asarray(z)
  except Exception:  # pragma: no cover - exotic inputs
    _checks.fail(fn, "Z", "be array-like", type(z).__name__, TypeError)
  if arr.dtype == object or arr.dtype.kind not in "iuf":
    _checks.fail(fn, "Z", "be a real numeric linkage matrix float[n - 1, 4]",
                 _checks.describe(arr), TypeError)
  if arr.ndim != 2 or arr.shape[1] != 4:
    _checks.fail(fn, "Z", "be 2-D with 4 columns (a linkage matrix float[n - 1, 4])",
                 f"shape {arr.shape}")
  return arr.astype(np.float64)


def _check_linkage(fn: str, z: np.ndarray) -> np.ndarray:
  """Validates a linkage matrix; returns the child labels ``int64[n - 1, 2]``.

  Checks everything ``scipy.cluster.hierarchy.is_valid_linkage`` checks, on
  every size (SciPy skips the value checks when ``Z`` has one row), and
  more: finite entries, integer labels, cluster sizes that match the merges.
  """
  r = z.shape[0]
  n = r + 1
  if not np.all(np.isfinite(z)):
    i, j = np.argwhere(~np.isfinite(z))[0]
    _checks.fail(fn, "Z", "be finite", f"Z[{i}, {j}] = {float(z[i, j])}")
  labels = z[:, :2]
  if np.any(labels != np.round(labels)):
    i, j = np.argwhere(labels != np.round(labels))[0]
    _checks.fail(fn, "Z", "hold integer cluster labels in columns 0 and 1",
                 f"Z[{i}, {j}] = {float(z[i, j])!r}")
  if np.any(labels < 0):
    i, j = np.argwhere(labels < 0)[0]
    _checks.fail(fn, "Z", "hold non-negative cluster labels",
                 f"Z[{i}, {j}] = {z[i, j]:g}")
  if np.any(z[:, 2] < 0):
    i = int(np.flatnonzero(z[:, 2] < 0)[0])
    _checks.fail(fn, "Z", "hold non-negative merge heights (column 2)",
                 f"Z[{i}, 2] = {float(z[i, 2])!r}")
  if np.any(z[:, 3] < 0):
    i = int(np.flatnonzero(z[:, 3] < 0)[0])
    _checks.fail(fn, "Z", "hold non-negative cluster sizes (column 3)",
                 f"Z[{i}, 3] = {float(z[i, 3])!r}")
  if np.any(z[:, 3] > n):
    i = int(np.flatnonzero(z[:, 3] > n)[0])
    _checks.fail(fn, "Z", f"hold cluster sizes at most n = {n} (column 3)",
                 f"Z[{i}, 3] = {z[i, 3]:g}")
  lab = labels.astype(np.int64)
  formed = n + np.arange(r)[:, None]
  early = lab >= formed
  if early.any():
    i, j = np.argwhere(early)[0]
    _checks.fail(fn, "Z", f"join only clusters formed before each row (row i joins "
                 f"labels < n + i, n = {n})",
                 f"row {i} joining cluster {lab[i, j]} (limit {n + i - 1})")
  flat = lab.ravel()
  counts = np.bincount(flat, minlength=2 * n - 1)
  if np.any(counts > 1):
    c = int(np.flatnonzero(counts > 1)[0])
    rows = np.flatnonzero((lab == c).any(axis=1))[:2].tolist()
    where = (f"row {rows[0]} (twice)" if len(rows) == 1
             else f"rows {rows[0]} and {rows[1]}")
    _checks.fail(fn, "Z", "use each cluster at most once",
                 f"cluster {c} in {where}")
  return lab


def from_linkage(Z) -> Hierarchy:
  """Builds a binary ``Hierarchy`` with heights from a SciPy linkage matrix.

  Row ``i`` of ``Z`` becomes internal node ``n + i`` with children
  ``Z[i, 0]``, ``Z[i, 1]`` and height ``Z[i, 2]``; leaves have height 0.
  SciPy's labels already put children before parents, so no relabelling is
  needed. Non-monotone heights (centroid and median linkage) are accepted.

  ``Z`` is validated as strictly as ``scipy.cluster.hierarchy.is_valid_linkage``
  (on the float64 conversion SciPy's own functions apply), and further:
  entries finite, labels integers, ``Z[i, 3]`` equal to the number of points
  under row ``i``. ``Z`` of shape ``(0, 4)`` is accepted and gives the
  one-point tree (SciPy rejects it).

  Args:
    Z: ``float[n - 1, 4]`` linkage matrix (any real dtype; converted to
      float64 for the checks).

  Returns:
    A ``Hierarchy`` with ``parent: int32[2n - 1]`` and ``height: float[2n - 1]``
    (float32, or float64 under x64).

  Raises:
    ValueError: ``Z`` breaks the linkage contract; the message names the
      row and entry.
    TypeError: ``Z`` is not a real numeric array.
  """
  fn = "from_linkage"
  z = _linkage_array(fn, Z)
  lab = _check_linkage(fn, z)
  r = z.shape[0]
  n = r + 1
  m = 2 * n - 1
  parent = np.full(m, -1, np.int64)
  new = n + np.arange(r)
  parent[lab[:, 0]] = new
  parent[lab[:, 1]] = new
  height = np.zeros(m, np.float64)
  height[n:] = z[:, 2]
  if r:
    size = _subtree_reduce(parent, (np.arange(m) < n).astype(np.int64), np.add)
    bad = size[n:] != z[:, 3]
    if bad.any():
      i = int(np.flatnonzero(bad)[0])
      _checks.fail(fn, "Z", "hold in column 3 the number of points under each row",
                   f"Z[{i}, 3] = {z[i, 3]:g} where row {i} holds {size[n + i]} points")
  return Hierarchy(parent=jnp.asarray(parent, jnp.int32),
                   height=jnp.asarray(height, _checks.float_dtype()))


# ---------------------------------------------------------------------------
# Hierarchy -> linkage matrix.


HEIGHTS = ("monotone", "raw")
"""Valid values of ``to_linkage``'s ``heights``."""


def _merge_rows(h: Hierarchy, fn: str, heights: str):
  """The binarised merges of ``h`` in row order (the core of :func:`to_linkage`).

  Returns:
    ``(z float64[n - 1, 4], owner int64[n - 1])``: the linkage matrix and,
    for each row, the node of ``h`` it completes or belongs to (a node with
    ``k`` children owns ``k - 1`` rows, the last one forming it).
  """
  _checks.check_choice(fn, "heights", heights, HEIGHTS)
  check_hierarchy(fn, h, allow_traced=False)
  parent = np.asarray(h.parent).astype(np.int64)
  m = parent.shape[0]
  n = (m + 1) // 2
  if n == 1:
    return np.zeros((0, 4), np.float64), np.zeros(0, np.int64)
  idx = np.arange(m)
  used = parent != UNUSED
  internal = used & (idx >= n)
  size = _subtree_reduce(parent, (idx < n).astype(np.int64), np.add)
  if h.height is None:
    node_height = size.astype(np.float64)
  else:
    node_height = np.asarray(h.height).astype(np.float64)
    neg = internal & (node_height < 0)
    if neg.any():
      u = int(np.flatnonzero(neg)[0])
      _checks.fail(fn, "h.height", "be non-negative on internal nodes",
                   f"height[{u}] = {float(node_height[u])!r}")
  node_height = np.where(internal, node_height, 0.0)
  top = _subtree_reduce(parent, node_height, np.maximum)

  # Children grouped by parent, in index order within each group.
  has_parent = parent >= 0
  ch = np.flatnonzero(has_parent)
  ch = ch[np.argsort(parent[ch], kind="stable")]
  par = parent[ch]
  first_in_group = np.concatenate([[True], par[1:] != par[:-1]])
  last_in_group = np.concatenate([par[1:] != par[:-1], [True]])
  # Leaves under the first j children of the group, for each position.
  csum = np.cumsum(size[ch])
  group_base = np.maximum.accumulate(np.where(first_in_group,
                                              csum - size[ch], 0))
  merged_size = csum - group_base
  # One merge per child that is not the first of its group (n - 1 in all).
  pos = np.flatnonzero(~first_in_group)
  owner = par[pos]
  own = node_height[owner]
  if heights == "raw":
    # Each row's own subtree: the largest height under the first j children
    # of the group (segmented running max, on integer ranks offset by the
    # group number), so the binarised tree reads back in the same order.
    uniq, rank = np.unique(top[ch], return_inverse=True)
    group = np.cumsum(first_in_group) - 1
    offset = group * len(uniq)
    run_top = uniq[np.maximum.accumulate(offset + rank) - offset]
    merge_top = np.maximum(own, run_top[pos])
  else:
    merge_top = top[owner]  # the largest height in the owner's subtree
  # Row order: that largest height, stable over the generation order (owner
  # index, then the owner's extra merges before the owner), so children come
  # before parents.
  order = np.argsort(merge_top, kind="stable")
  row_of = np.empty(len(pos), np.int64)
  row_of[order] = np.arange(len(pos))
  label = np.arange(m, dtype=np.int64)  # leaves keep their labels
  last = last_in_group[pos]
  label[owner[last]] = n + row_of[last]
  # First child: the group's first child, or the previous merge of the group.
  prev_is_first = first_in_group[pos - 1]
  prev_merge_label = n + np.concatenate([[0], row_of[:-1]])
  left = np.where(prev_is_first, label[ch[pos - 1]], prev_merge_label)
  right = label[ch[pos]]
  if heights == "raw":
    row_height = own
  elif h.height is None:
    # Leaf counts, lowered by the fewest float64 steps that make them
    # strictly increase along the rows: the last row of each count keeps it.
    base = merge_top[order]
    r = np.arange(len(order))
    bits = (base + 0.0).view(np.int64) - r
    lowered = np.minimum.accumulate(bits[::-1])[::-1] + r
    row_height = np.empty(len(order))
    row_height[order] = lowered.view(np.float64)
  else:
    # Each row at the largest height inside it (its own or a child's); a row
    # below a child (an inversion) one float64 step above the previous row,
    # so that it still sorts strictly after its children.
    inverted = (own < merge_top)[order].astype(np.int64)
    base = merge_top[order]
    c = np.cumsum(inverted)
    g = np.maximum.accumulate((base + 0.0).view(np.int64) - c)
    row_height = np.empty(len(order))
    row_height[order] = (g + c).view(np.float64)
  z = np.empty((len(pos), 4), np.float64)
  z[row_of, 0] = left
  z[row_of, 1] = right
  z[row_of, 2] = row_height
  z[row_of, 3] = merged_size[pos]
  row_owner = np.empty(len(pos), np.int64)
  row_owner[row_of] = owner
  return z, row_owner


def to_linkage(h: Hierarchy, *, heights: str = "monotone") -> np.ndarray:
  """The SciPy linkage matrix of ``h`` (binarised if needed).

  The output is made for SciPy's ``cut_tree``, ``fcluster``, ``dendrogram``
  and ``cophenet`` whatever tree ``h`` is (from linkage, fairlet trees,
  reductions without heights, non-binary trees, non-monotone heights): by
  default its heights never decrease along the rows and every row comes
  after the rows that formed its two clusters.

  Rows (merges):

  * Each internal node with children ``c1 < c2 < ... < ck`` (by index)
    becomes ``k - 1`` merges: ``c1`` with ``c2``, the result with ``c3``, ...,
    the last one being the node itself. The ``k - 2`` extra merges are
    *zero-length*: they sit at the node's own height. A binary tree gets
    exactly one row per internal node.
  * Rows are ordered by the largest height in the subtree of the node they
    belong to (the node's own height included; leaf counts for a tree
    without heights), ties by node index, a node's extra merges just before
    it. (With ``heights="raw"``, by the largest height in the row's own
    subtree of the binarised tree, which differs only for the extra merges
    of a non-binary node.) This is a
    valid merge order for any heights (children before parents), it is the
    order in which :func:`fairhc_jax.cut` undoes merges, and
    ``to_linkage(from_linkage(Z))`` keeps the row order of any ``Z`` already
    in this order, as SciPy's and fastcluster's ``linkage`` output is (for
    centroid and median linkage too). Row ``i`` forms cluster ``n + i``.
  * ``Z[i, 0]`` is the child whose leaves come first in ``h``'s DFS leaf
    order, ``Z[i, 1]`` the other (see the module docstring).
  * ``Z[i, 3]`` is the number of points in the merged cluster.

  Heights (``Z[:, 2]``):

  * ``heights="monotone"`` (default), ``h`` with heights: each node (all
    its rows) at the largest height in its subtree, i.e. the maximum of its
    own height and its children's (monotone) heights; the rows of a node
    whose own height is below a descendant's (an *inversion*, as in FHAC or
    centroid trees) are each put one float64 step above the row before
    them, so the node stays strictly above its children and
    ``fcluster(Z, k, "maxclust")`` can cut between them. Heights without inversions are kept exactly (so
    ``to_linkage(from_linkage(Z)) == Z`` for SciPy's monotone methods).
    ``scipy.cluster.hierarchy.is_monotonic(Z)`` always holds.
  * ``heights="monotone"``, ``h.height is None``: a node's height is its
    number of leaves (the weight Dasgupta's cost gives a pair split there),
    lowered by the fewest float64 steps that make the heights strictly
    increase along the rows (the last row of each leaf count keeps the
    count exactly). All heights differ, so ``fcluster(Z, k, "maxclust")``
    gives exactly ``k`` clusters for every ``k`` and
    ``fcluster(Z, t, "distance")`` still joins every cluster of at most
    ``t`` points.
  * ``heights="raw"``: the node's own height (its leaf count without
    heights), as stored, possibly non-monotone. Cophenetic distances are then
    exactly those of ``h``. SciPy's ``cut_tree`` and ``fcluster`` assume
    monotone heights: use this only to read the heights back
    (``to_linkage(from_linkage(Z), heights="raw") == Z`` for any SciPy
    output, centroid and median included).

  Ties: where distinct rows share a height (equal heights in ``h``, or the
  zero-length merges of a node with more than two children),
  ``fcluster(..., "maxclust")`` may give fewer than ``k`` clusters (it cannot
  split a tie) and ``cut_tree`` may order tied rows differently from the row
  order; :func:`fairhc_jax.cut` follows the row order.

  Args:
    h: a valid ``Hierarchy`` over ``n`` points (concrete, not batched), with
      non-negative heights on internal nodes if it has heights.
    heights: ``"monotone"`` (default) or ``"raw"`` (keyword-only).

  Returns:
    ``float64[n - 1, 4]``, valid for ``scipy.cluster.hierarchy.is_valid_linkage``
    (shape ``(0, 4)`` for ``n = 1``, which SciPy itself does not accept).

  Raises:
    ValueError: ``h`` is not a valid hierarchy, has a negative height, or
      ``heights`` is not one of ``"monotone"``, ``"raw"``.
    TypeError: ``h`` is not a concrete ``Hierarchy``.
  """
  return _merge_rows(h, "to_linkage", heights)[0]


def leaves_list(h: Hierarchy) -> np.ndarray:
  """The points in dendrogram order: ``int64[n]``.

  Equals ``scipy.cluster.hierarchy.leaves_list(to_linkage(h))`` and
  ``leaf_ranges(h).order`` (DFS, children by index).
  """
  check_hierarchy("leaves_list", h, allow_traced=False)
  return np.asarray(jax.device_get(leaf_ranges(h).order)).astype(np.int64)
