"""Decoding a soft hierarchy into a valid :class:`~fairhc_jax.Hierarchy`.

Every point takes its most likely parent (``argmax A[i]``), every internal
node its most likely parent (``argmax B[z]``, which lies above it: ``B`` is
strictly upper triangular), ties to the smallest index. The resulting tree
over ``n + n'`` nodes may have internal nodes with no point below them
(removed) and nodes with a single child (contracted: the child hangs from
the nearest ancestor with two or more children, and a single-child root
hands the root to its child). What is left is a valid tree over all ``n``
points with at most ``n'`` internal nodes, canonicalised with
:func:`fairhc_jax.from_parent`. Host (NumPy) work, O((n + n') n') for the
arg-maxes and O(n + n') for the clean-up.
"""

from __future__ import annotations

import jax
import numpy as np

from fairhc_jax import hierarchy as _hier
from fairhc_jax.hierarchy import Hierarchy
from fairhc_jax.soft import params as _params
from fairhc_jax.soft.params import SoftHierarchy

__all__ = ["decode", "hard_parents", "tree_from_parents"]


def hard_parents(params: SoftHierarchy):
  """``(leaf_parent: int[n], node_parent: int[n'])``: most likely parents (NumPy).

  ``node_parent[n' - 1] = -1`` (the root).
  """
  A = np.asarray(params.A)
  B = np.asarray(params.B)
  k = A.shape[1]
  leaf_parent = np.argmax(A, axis=1)
  mask = np.triu(np.ones((k, k), bool), 1)
  Bm = np.where(mask, B, -np.inf)
  node_parent = np.full(k, -1, np.int64)
  if k > 1:
    node_parent[:-1] = np.argmax(Bm[:-1], axis=1)
  return leaf_parent.astype(np.int64), node_parent


def tree_from_parents(leaf_parent, node_parent) -> Hierarchy:
  """Builds the cleaned-up :class:`Hierarchy` from soft-node parent indices.

  Args:
    leaf_parent: ``int[n]`` in ``[0, n')``.
    node_parent: ``int[n']`` with ``node_parent[z] > z`` and ``-1`` at the
      root ``n' - 1``.

  Returns:
    A valid (canonical) :class:`Hierarchy` over the ``n`` points.
  """
  leaf_parent = np.asarray(leaf_parent, np.int64)
  node_parent = np.asarray(node_parent, np.int64)
  n, k = leaf_parent.shape[0], node_parent.shape[0]
  if n == 1:
    return _hier.from_parent(np.array([-1]), num_leaves=1)
  # Nodes 0..n-1 points, n..n+k-1 the soft internal nodes.
  par = np.concatenate([leaf_parent + n, np.where(node_parent >= 0, node_parent + n, -1)])
  total = n + k
  kids = np.zeros(total, np.int64)      # children that hold at least one point
  has_points = np.zeros(total, bool)
  has_points[:n] = True
  for u in range(total):                # children before parents
    if has_points[u] and par[u] >= 0:
      has_points[par[u]] = True
  for u in range(total):
    if has_points[u] and par[u] >= 0:
      kids[par[u]] += 1
  # Kept internal nodes: with points and at least two non-empty children.
  keep = np.zeros(total, bool)
  keep[:n] = True
  keep[n:] = has_points[n:] & (kids[n:] >= 2)
  # New parent of every kept node: its nearest kept proper ancestor. Walk
  # top-down (parents have larger indices) keeping each node's nearest kept
  # ancestor-or-self.
  near = np.full(total, -1, np.int64)
  for u in range(total - 1, -1, -1):
    if not has_points[u]:
      continue
    p = par[u]
    above = near[p] if p >= 0 else -1
    near[u] = u if keep[u] else above
  new_par = np.full(total, -2, np.int64)
  for u in range(total):
    if keep[u]:
      p = par[u]
      new_par[u] = near[p] if p >= 0 else -1
  used = np.nonzero(keep)[0]
  relabel = np.full(total, -1, np.int64)
  relabel[used] = np.arange(used.size)
  out = np.where(new_par[used] >= 0, relabel[np.maximum(new_par[used], 0)], -1)
  return _hier.from_parent(out.astype(np.int32), num_leaves=n)


def decode(params: SoftHierarchy) -> Hierarchy:
  """The hard tree of a soft hierarchy: most likely parents, cleaned up.

  Args:
    params: a :class:`SoftHierarchy` over ``n`` points (one instance; index
      a batch first).

  Returns:
    A valid :class:`Hierarchy` over all ``n`` points, every internal node
    with at least two children, at most ``n'`` internal nodes.
  """
  params = _params.check_params("decode", params)
  return tree_from_parents(*hard_parents(params))
