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


def decode(params: SoftHierarchy, *, complete=None, S=None) -> Hierarchy:
  """The hard tree of a soft hierarchy: most likely parents, cleaned up, completed.

  Args:
    params: a :class:`SoftHierarchy` over ``n`` points (one instance; index
      a batch first).
    complete: ``None`` (the decoded tree itself, at most ``n'`` internal
      nodes), a :class:`Hierarchy` over the same points (inside every
      decoded node, its children are merged as in that reference tree:
      :func:`fairhc_jax.soft.completion.complete_by_reference`), or
      ``"average"`` (average linkage on ``S`` inside every decoded node:
      :func:`~fairhc_jax.soft.completion.complete_by_average_linkage`).
      A completion refines the decoded tree, so its Dasgupta cost is never
      higher; it adds clusters, so it can break fairness.
    S: ``float[n, n]`` similarities, needed with ``complete="average"``.

  Returns:
    A valid :class:`Hierarchy` over all ``n`` points, every internal node
    with at least two children.
  """
  fn = "decode"
  params = _params.check_params(fn, params)
  n = params.A.shape[0]
  h = tree_from_parents(*hard_parents(params))
  return apply_completion(fn, h, complete, S, n)


def apply_completion(fn: str, h: Hierarchy, complete, S, n: int) -> Hierarchy:
  """Checks ``complete`` / ``S`` and completes ``h`` (see :func:`decode`)."""
  from fairhc_jax import _checks
  from fairhc_jax.soft import completion as _comp
  if complete is None:
    return h
  if isinstance(complete, Hierarchy):
    ref = _hier.check_hierarchy(fn, complete, arg="complete")
    if ref.parent.shape[0] != 2 * n - 1:
      _checks.fail(fn, "complete", f"be a hierarchy over the same n = {n} points",
                   f"one over {(ref.parent.shape[0] + 1) // 2} points")
    return _comp.complete_by_reference(h, ref)
  if isinstance(complete, str) and complete == "average":
    if S is None:
      _checks.fail(fn, "S", "be given with complete='average'", "None")
    S = _checks.check_square_matrix(fn, "S", S, kind="similarity")
    if S.shape[0] != n:
      _checks.fail(fn, "S", f"be [{n}, {n}] like params", f"shape {tuple(S.shape)}")
    return _comp.complete_by_average_linkage(h, np.asarray(S))
  _checks.fail(fn, "complete", "be None, a Hierarchy or 'average'", repr(complete),
               TypeError if not isinstance(complete, str) else ValueError)
