"""Tree operators of Knittel et al. (ICML 2023) as transforms of flat arrays.

Four operators restructure a :class:`~fairhc_jax.hierarchy.Hierarchy` while
keeping its leaf set (the paper's Definitions 3.4-3.7):

* :func:`tree_rebalance` ``(u, v)``: ``u``'s children become ``v`` and a new
  node holding the rest of ``u``'s subtree (``v``'s former parent is
  contracted, its slot is reused for the new node).
* :func:`subtree_move` ``(v, x)``: subtree deletion at ``v`` (its sibling takes
  its parent's place) and insertion next to ``x`` under a new parent (the
  freed slot).
* :func:`level_abstraction` ``(a, b)`` and :func:`abstract_bottom_levels`:
  contract every internal node strictly between depths ``a`` and ``b`` into
  its nearest surviving ancestor.
* :func:`tree_fold` ``(roots)``: sibling subtrees with the same internal
  topology become one subtree of that topology; node ``x`` of the result is
  the union of the corresponding nodes, every leaf hangs below the image of
  its former parent.

Each operator is a handful of index writes (a scatter with a fixed number of
entries, masked writes going to a dummy slot) or a contraction by a mask
(pointer jumping, a rolled ``fori_loop``), compiled once per ``n``; the
public functions validate in Python and then call the raw kernels
(``*_kernel``: a :class:`Hierarchy` first, no checks, jit/vmap safe, only
``h.parent`` read, so a tree with and without heights shares one compiled
program). The kernels take many disjoint applications at once (``int32[B]``
arguments padded with ``-1``), which the jitted programs in
:mod:`fairhc_jax.algorithms.reductions` use.
Operators create parents with small indices, so the public functions end
with :func:`~fairhc_jax.hierarchy.postorder_compact`: internal nodes are
relabelled (leaves keep their labels) and callers should refer to clusters
by their leaves, not by internal node ids, across an operator call.

Merge heights are not defined for a restructured tree: every operator
returns ``height=None``.

Separated pairs and operation cost (Definitions 3.2-3.3): a pair of points
``{i, j}`` is *separated* by an operator that turns ``T`` into ``T'`` when
the lowest cluster of ``T'`` containing both holds a point that the lowest
cluster of ``T`` containing both did not hold, i.e.
``leaves(T'[i v j])`` is not a subset of ``leaves(T[i v j])`` ("a point is
added to the first cluster that contains both endpoints; we do not care if
points are removed"). The *operation cost* we report is the tight value of
the paper's bound: the largest ``|T'[i v j]| / |T[i v j]|`` over separated
pairs (1 when no pair is separated). See :func:`separated_pairs` and
:func:`operation_cost`; they are O(n^2) in time and memory.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax import hierarchy as hier
from fairhc_jax.hierarchy import NO_PARENT, UNUSED, Hierarchy

__all__ = [
    "tree_rebalance",
    "subtree_move",
    "contract_nodes",
    "level_abstraction",
    "abstract_bottom_levels",
    "tree_fold",
    "topology_labels",
    "separated_pairs",
    "operation_cost",
    "SeparationReport",
]


# ---------------------------------------------------------------------------
# Small jitted building blocks (on parent arrays).


def _jump_rounds(length: int) -> int:
  """Pointer-jumping rounds to a fixpoint through ``length`` slots (one spare round)."""
  return hier.pointer_jumping_rounds(length) + 1


def _jump_to_kept(g):
  """Pointer jumping on ``g: int32[L]`` (``g[L-1]`` a sink): ``g`` iterated to a fixpoint."""
  # Rolled (fori_loop), as in hierarchy.py: unrolled rounds cost compile time.
  return jax.lax.fori_loop(0, _jump_rounds(g.shape[0]), lambda _, x: x[x], g)


def _scatter_parent(parent, idx, val):
  """``parent.at[idx].set(val)`` where ``idx == -1`` entries are dropped."""
  m = parent.shape[0]
  tgt = jnp.where(idx >= 0, idx, m)
  return parent.at[tgt].set(val.astype(parent.dtype), mode="drop")


def _contract_parent(parent, mask):
  """Removes the nodes in ``mask``; their children attach to the nearest kept ancestor.

  A masked root must have exactly one child (that child becomes the root).
  Leaves are never contracted. O(m log m) by pointer jumping.
  """
  m = parent.shape[0]
  n = (m + 1) // 2
  idx = jnp.arange(m, dtype=jnp.int32)
  c = mask & (parent != UNUSED) & (idx >= n)
  up = jnp.where(parent >= 0, parent, m)  # m stands for "no parent"
  g = _jump_to_kept(jnp.concatenate([jnp.where(c, up, idx), jnp.array([m], jnp.int32)]))
  new_parent = jnp.where(parent >= 0, g[jnp.maximum(parent, 0)], parent)
  new_parent = jnp.where(new_parent == m, NO_PARENT, new_parent)
  return jnp.where(c, UNUSED, new_parent).astype(jnp.int32)


def _sibling(table, p, v):
  """The other child of a binary node ``p`` (``table`` = children_table(., 2))."""
  a = table[p, 0]
  b = table[p, 1]
  return jnp.where(a == v, b, a)


def _tree(parent) -> Hierarchy:
  return Hierarchy(parent=parent)


@jax.jit
def _rebalance(parent, u, v):
  table = hier.children_table(_tree(parent), 2)
  ok = (u >= 0) & (v >= 0)
  uu = jnp.where(ok, u, 0)
  vv = jnp.where(ok, v, 0)
  p = parent[vv]
  ok = ok & (p != uu)
  p = jnp.where(ok, p, 0)
  s = _sibling(table, p, vv)
  g = parent[p]
  a = table[uu, 0]
  b = table[uu, 1]
  case1 = (p == a) | (p == b)  # v's parent is a child of u
  other = jnp.where(p == a, b, a)
  drop = jnp.full_like(uu, -1)
  idx = jnp.stack([vv, p, s, jnp.where(case1, other, a),
                   jnp.where(case1, drop, b)], 1)
  val = jnp.stack([uu, uu, jnp.where(case1, p, g), p, p], 1)
  idx = jnp.where(ok[:, None], idx, -1)
  return _scatter_parent(parent, idx.reshape(-1), val.reshape(-1))


def rebalance_kernel(h: Hierarchy, u, v) -> Hierarchy:
  """Applies the disjoint tree rebalances ``(u[i], v[i])`` at once (no checks).

  Args:
    h: a binary hierarchy (only ``h.parent: int32[m]`` is read; children
      before parents not required).
    u: ``int32[B]`` binary internal nodes, ``-1`` for padding.
    v: ``int32[B]`` strict descendants of ``u`` whose parents are binary.
      Pairs with ``parent[v] == u`` are no-ops.

  Returns:
    A :class:`Hierarchy` (``height=None``, not compacted); the new node of
    each pair takes the slot of ``v``'s former parent.
  """
  return _tree(_rebalance(h.parent, u, v))


@jax.jit
def _move(parent, v, x):
  table = hier.children_table(_tree(parent), 2)
  ok = (v >= 0) & (x >= 0)
  vv = jnp.where(ok, v, 0)
  xx = jnp.where(ok, x, 0)
  p = parent[vv]
  p = jnp.where(ok, p, 0)
  s = _sibling(table, p, vv)
  g = parent[p]
  x_is_s = xx == s
  above_x = jnp.where(x_is_s, g, parent[xx])
  drop = jnp.full_like(vv, -1)
  idx = jnp.stack([vv, p, xx, jnp.where(x_is_s, drop, s)], 1)
  val = jnp.stack([p, above_x, p, g], 1)
  idx = jnp.where(ok[:, None], idx, -1)
  return _scatter_parent(parent, idx.reshape(-1), val.reshape(-1))


def move_kernel(h: Hierarchy, v, x) -> Hierarchy:
  """Applies the disjoint subtree moves ``(v[i] -> next to x[i])`` at once (no checks).

  ``v``'s parent ``p`` must be binary; ``x`` must not lie in ``v``'s subtree
  and differ from ``p``. ``p`` is contracted (its other child ``s`` takes its
  place) and its slot becomes the new parent of ``x`` and ``v``.

  Args:
    h: a hierarchy (only ``h.parent: int32[m]`` is read).
    v: ``int32[B]``, ``-1`` for padding.
    x: ``int32[B]``, ``-1`` for padding.

  Returns:
    A :class:`Hierarchy` (``height=None``, not compacted).
  """
  return _tree(_move(h.parent, v, x))


@jax.jit
def _contract(parent, mask):
  return _contract_parent(parent, mask & (parent != NO_PARENT))


def contract_kernel(h: Hierarchy, mask) -> Hierarchy:
  """Contracts the internal non-root nodes in ``mask: bool[m]`` (no checks).

  Returns a :class:`Hierarchy` (``height=None``, not compacted).
  """
  return _tree(_contract(h.parent, mask))


@jax.jit
def _level(parent, a, b):
  d = hier.depth(_tree(parent))
  return _contract(parent, (d > a) & (d < b))


def level_kernel(h: Hierarchy, a, b) -> Hierarchy:
  """Contracts the internal nodes with ``a < depth < b`` (no checks).

  Args:
    h: a hierarchy (only ``h.parent`` is read).
    a: int scalar (may be traced).
    b: int scalar (may be traced).

  Returns:
    A :class:`Hierarchy` (``height=None``, not compacted).
  """
  return _tree(_level(h.parent, a, b))


def _internal_children_table(parent, k: int):
  """``int32[m, k]``: each node's internal children in index order, ``-1`` padded."""
  m = parent.shape[0]
  n = (m + 1) // 2
  idx = jnp.arange(m, dtype=jnp.int32)
  keep = (parent >= 0) & (idx >= n)
  bucket = jnp.where(keep, parent, m)
  order = jnp.argsort(bucket, stable=True).astype(jnp.int32)
  sb = bucket[order]
  first = jnp.full(m + 1, m, jnp.int32).at[sb].min(idx)
  rank = idx - first[sb]
  ok = (sb < m) & (rank < k)
  table = jnp.full((m + 1, k), -1, jnp.int32)
  table = table.at[jnp.where(ok, sb, m), jnp.where(ok, rank, 0)].set(
      jnp.where(ok, order, -1))
  return table[:m]


def _dense_rank_rows(rows):
  """Dense lexicographic rank of each row of ``int32[m, k]`` (equal rows, equal rank)."""
  m, k = rows.shape
  keys = tuple(rows[:, j] for j in range(k - 1, -1, -1))  # last key is primary
  order = jnp.lexsort(keys).astype(jnp.int32)
  srt = rows[order]
  new = jnp.concatenate([jnp.ones((1,), bool),
                         jnp.any(srt[1:] != srt[:-1], axis=1)])
  rank_sorted = jnp.cumsum(new.astype(jnp.int32)) - 1
  return jnp.zeros(m, jnp.int32).at[order].set(rank_sorted), rank_sorted[-1] + 1


@functools.partial(jax.jit, static_argnames="max_internal_children")
def _topology(parent, max_internal_children: int):
  m = parent.shape[0]
  n = (m + 1) // 2
  idx = jnp.arange(m, dtype=jnp.int32)
  internal = (parent != UNUSED) & (idx >= n)
  table = _internal_children_table(parent, max_internal_children)
  has = table >= 0

  def relabel(labels):
    rows = jnp.where(has, labels[jnp.maximum(table, 0)], -1)
    rows = jnp.sort(rows, axis=1)
    rows = jnp.where(internal[:, None], rows, -2)
    lab, count = _dense_rank_rows(rows)
    return jnp.where(internal, lab, -1), count

  def cond(state):
    _, prev, cur, it = state
    return (cur != prev) & (it < m + 2)

  def body(state):
    labels, _, cur, it = state
    new, count = relabel(labels)
    return new, cur, count, it + 1

  init = jnp.where(internal, 0, -1).astype(jnp.int32)
  first, count = relabel(init)
  labels, _, _, _ = jax.lax.while_loop(
      cond, body, (first, jnp.int32(-1), count, jnp.int32(0)))
  return labels


def topology_kernel(h: Hierarchy, max_internal_children: int) -> jax.Array:
  """Canonical labels of each node's internal topology (leaves ignored; no checks).

  Two internal nodes get the same label iff their subtrees, with all leaves
  removed, are isomorphic as rooted unordered trees. Computed by colour
  refinement: a node's label is the dense rank of the sorted tuple of its
  internal children's labels, iterated until the number of labels stops
  growing (internal height + 2 rounds, each O(k m log m)).

  Args:
    h: a hierarchy (only ``h.parent`` is read).
    max_internal_children: static bound on any node's internal children.

  Returns:
    ``int32[m]``, ``-1`` for leaves and free slots.
  """
  return _topology(h.parent, max_internal_children)


def _prefix_sum_up(acc, ptr):
  """Sums ``acc`` along ``ptr`` chains (pointer jumping, rolled)."""
  def jump(_, carry):
    acc, ptr = carry
    return acc + acc[ptr], ptr[ptr]
  acc, _ = jax.lax.fori_loop(0, _jump_rounds(ptr.shape[0]), jump, (acc, ptr))
  return acc


@functools.partial(jax.jit, static_argnames="max_internal_children")
def _fold(parent, groups, max_internal_children: int):
  m = parent.shape[0]
  n = (m + 1) // 2
  idx = jnp.arange(m, dtype=jnp.int32)
  used = parent != UNUSED
  internal = used & (idx >= n)
  h = _tree(parent)
  labels = _topology(parent, max_internal_children)
  # Internal-node counts of every subtree, from Euler positions.
  enter, exit_ = hier.euler_positions(h)
  ev = jnp.zeros(2 * m + 1, jnp.int32).at[jnp.where(internal, enter, 2 * m)].add(1)
  cex = jnp.concatenate([jnp.zeros(1, jnp.int32), jnp.cumsum(ev)])
  isize = jnp.where(internal, cex[jnp.maximum(exit_, 0)] - cex[jnp.maximum(enter, 0)], 0)
  # Canonical pre-order of internal nodes: siblings sorted by (label, index).
  sib = internal & (parent >= 0)
  bucket = jnp.where(sib, parent, m)
  order = jnp.lexsort((idx, labels, bucket)).astype(jnp.int32)
  sb = bucket[order]
  cs = jnp.cumsum(isize[order]) - isize[order]
  k = jnp.arange(m, dtype=jnp.int32)
  first = jnp.full(m + 1, m, jnp.int32).at[sb].min(k)
  before = cs - cs[first[sb]]
  off = jnp.zeros(m, jnp.int32).at[order].set(jnp.where(sb < m, 1 + before, 0))
  acc = _prefix_sum_up(jnp.concatenate([off, jnp.zeros(1, jnp.int32)]),
                       jnp.concatenate([jnp.where(sib, parent, m), jnp.array([m], jnp.int32)]))
  pos = jnp.where(internal, acc[:m], m)
  node_at = jnp.full(m + 1, -1, jnp.int32).at[pos].set(idx)
  # Subtree membership: nearest marked ancestor-or-self.
  rows_ok = (groups >= 0) & (jnp.sum(groups >= 0, axis=1, keepdims=True) >= 2)
  flat = jnp.where(rows_ok, groups, m).reshape(-1)
  rep = jnp.broadcast_to(groups[:, :1], groups.shape).reshape(-1)
  rep_of = jnp.full(m + 1, -1, jnp.int32).at[flat].set(rep)[:m]
  marked = rep_of >= 0
  root_of = _jump_to_kept(jnp.concatenate(
      [jnp.where(marked, idx, jnp.where(parent >= 0, parent, m)),
       jnp.array([m], jnp.int32)]))[:m]
  rep_ext = jnp.concatenate([rep_of, jnp.array([-1], jnp.int32)])
  my_rep = rep_ext[root_of]
  moved = (my_rep >= 0) & (my_rep != root_of)  # inside a non-representative subtree
  r = jnp.minimum(root_of, m - 1)
  rr = jnp.maximum(my_rep, 0)

  def image(x):
    return node_at[jnp.clip(pos[rr] + pos[x] - pos[r], 0, m)]

  leaf = idx < n
  pleaf = jnp.maximum(parent, 0)
  new_parent = jnp.where(leaf & moved, image(pleaf), parent)
  new_parent = jnp.where(moved & ~leaf, UNUSED, new_parent)
  # Contract nodes left with a single child.
  cnt = jnp.zeros(m + 1, jnp.int32).at[jnp.where(new_parent >= 0, new_parent, m)].add(1)[:m]
  unary = (new_parent != UNUSED) & (idx >= n) & (cnt == 1)
  return _contract_parent(new_parent, unary)


def fold_kernel(h: Hierarchy, groups, max_internal_children: int) -> Hierarchy:
  """Applies disjoint tree folds at once (no checks).

  Args:
    h: a hierarchy (only ``h.parent: int32[m]`` is read).
    groups: ``int32[G, r]``; each row lists sibling subtree roots (internal
      nodes) with the same internal topology, ``-1`` padded; the first entry
      of a row is the representative that survives. Rows with fewer than two
      roots are no-ops.
    max_internal_children: static bound on any node's internal children.

  Returns:
    A :class:`Hierarchy` (``height=None``, not compacted). Nodes left with
    one child are contracted (a unary root hands the root over to its child).
  """
  return _tree(_fold(h.parent, groups, max_internal_children))


def min_leaf_from_ranges(r: hier.LeafRanges) -> jax.Array:
  """``int32[m]``: the smallest leaf of each node from its :class:`LeafRanges`."""
  tbl = _range_table(r.order, jnp.minimum)
  return _range_query(tbl, r.start, jnp.maximum(r.stop, r.start + 1), jnp.minimum)


@jax.jit
def _min_leaf(parent):
  return min_leaf_from_ranges(hier.leaf_ranges(_tree(parent)))


def min_leaf_kernel(h: Hierarchy) -> jax.Array:
  """``int32[m]``: the smallest leaf index in each node's subtree (no checks).

  The reductions break "larger child" ties with it, so that results do not
  depend on internal node labels. Free slots hold an arbitrary leaf.
  """
  return _min_leaf(h.parent)


# ---------------------------------------------------------------------------
# Validation helpers (NumPy, concrete inputs).


def _host_tree(fn: str, h) -> np.ndarray:
  """The checked tree's parent array on the host (``int64[m]``, for NumPy-side argument checks)."""
  return np.asarray(hier.check_hierarchy(fn, h, allow_traced=False).parent).astype(np.int64)


def _node_arg(fn: str, arg: str, x, m: int, parent: np.ndarray) -> int:
  if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
    arr = np.asarray(x) if hasattr(x, "shape") else None
    if arr is None or arr.shape != () or arr.dtype.kind not in "iu":
      _checks.fail(fn, arg, "be an integer node index", repr(x), TypeError)
  x = int(x)
  if not 0 <= x < m or parent[x] == UNUSED:
    _checks.fail(fn, arg, f"be a used node in [0, {m})", x)
  return x


def _ancestors(parent: np.ndarray, x: int) -> list:
  out = []
  while parent[x] >= 0:
    x = int(parent[x])
    out.append(x)
  return out


def _finish(out: Hierarchy) -> Hierarchy:
  return hier.postorder_compact(out)


# ---------------------------------------------------------------------------
# Public operators.


def tree_rebalance(h: Hierarchy, u, v) -> Hierarchy:
  """Tree rebalance of ``u`` at ``v`` (Knittel et al., Definition 3.4).

  ``u``'s children become ``v`` and a new node holding the rest of ``u``'s
  subtree; ``v``'s former parent is contracted (its other child takes its
  place) and its slot is reused for the new node. Rebalancing at a child of
  ``u`` changes nothing.

  Args:
    h: a valid hierarchy.
    u: an internal node with exactly two children.
    v: a strict descendant of ``u`` whose parent has exactly two children.

  Returns:
    The rebalanced hierarchy (internal nodes relabelled in post-order,
    ``height=None``).
  """
  fn = "tree_rebalance"
  parent = _host_tree(fn, h)
  m = parent.shape[0]
  u = _node_arg(fn, "u", u, m, parent)
  v = _node_arg(fn, "v", v, m, parent)
  counts = np.bincount(parent[parent >= 0], minlength=m)
  if counts[u] != 2:
    _checks.fail(fn, "u", "be an internal node with two children",
                 f"node {u} with {counts[u]} children")
  if u not in _ancestors(parent, v):
    _checks.fail(fn, "v", f"be a strict descendant of u = {u}", f"node {v}")
  if counts[parent[v]] != 2:
    _checks.fail(fn, "v", "have a parent with two children",
                 f"node {v} whose parent {parent[v]} has {counts[parent[v]]}")
  out = rebalance_kernel(_tree(h.parent.astype(jnp.int32)), jnp.array([u], jnp.int32),
                         jnp.array([v], jnp.int32))
  return _finish(out)


def subtree_move(h: Hierarchy, v, x) -> Hierarchy:
  """Subtree deletion at ``v`` and insertion next to ``x`` (Definition 3.5).

  Deletion removes ``v``'s subtree; ``v``'s parent ``p`` is contracted (the
  sibling of ``v`` takes its place). Insertion puts a new node (the slot of
  ``p``) between ``x`` and its parent, with children ``x`` and ``v``; if
  ``x`` is the root the new node becomes the root.

  Args:
    h: a valid hierarchy.
    v: a non-root node whose parent has exactly two children.
    x: a node outside ``v``'s subtree, other than ``v``'s parent.

  Returns:
    The modified hierarchy (relabelled, ``height=None``).
  """
  fn = "subtree_move"
  parent = _host_tree(fn, h)
  m = parent.shape[0]
  v = _node_arg(fn, "v", v, m, parent)
  x = _node_arg(fn, "x", x, m, parent)
  if parent[v] < 0:
    _checks.fail(fn, "v", "be a non-root node", f"the root {v}")
  counts = np.bincount(parent[parent >= 0], minlength=m)
  if counts[parent[v]] != 2:
    _checks.fail(fn, "v", "have a parent with two children",
                 f"node {v} whose parent {parent[v]} has {counts[parent[v]]}")
  if x == v or v in _ancestors(parent, x):
    _checks.fail(fn, "x", f"lie outside the subtree of v = {v}", f"node {x}")
  if x == parent[v]:
    _checks.fail(fn, "x", f"differ from v's parent {parent[v]} (it is contracted)",
                 f"node {x}")
  out = move_kernel(_tree(h.parent.astype(jnp.int32)), jnp.array([v], jnp.int32),
                    jnp.array([x], jnp.int32))
  return _finish(out)


def contract_nodes(h: Hierarchy, mask) -> Hierarchy:
  """Contracts every internal non-root node in ``mask`` into its parent.

  The children of a contracted node attach to its nearest surviving
  ancestor. This is the primitive behind level abstraction.

  Args:
    h: a valid hierarchy.
    mask: ``bool[m]``; entries on leaves, the root and free slots are ignored.

  Returns:
    The contracted hierarchy (relabelled, ``height=None``).
  """
  fn = "contract_nodes"
  parent = _host_tree(fn, h)
  mk = np.asarray(mask)
  if mk.shape != parent.shape:
    _checks.fail(fn, "mask", f"be bool[{parent.shape[0]}] (one entry per node slot)",
                 _checks.describe(mk))
  out = contract_kernel(_tree(h.parent.astype(jnp.int32)), jnp.asarray(mk.astype(bool)))
  return _finish(out)


def _max_depth(h: Hierarchy) -> int:
  return int(jnp.max(hier.depth(h)))


def level_abstraction(h: Hierarchy, a: int, b: int) -> Hierarchy:
  """Level abstraction between depths ``a < b`` (Definition 3.6).

  Every internal node whose depth ``d`` satisfies ``a < d < b`` is
  contracted: its children attach to the nearest ancestor at depth ``<= a``.
  Leaves never move; depths are those of ``h`` (root at depth 0).

  Args:
    h: a valid hierarchy of depth ``H`` (the largest depth of any node).
    a: integer in ``[0, H]``.
    b: integer in ``(a, H + 1]``; ``b = H + 1`` abstracts all levels below ``a``.

  Returns:
    The abstracted hierarchy (relabelled, ``height=None``).
  """
  fn = "level_abstraction"
  _host_tree(fn, h)
  top = _max_depth(h)
  a = _checks.check_positive_int(fn, "a", a, minimum=0)
  if a > top:
    _checks.fail(fn, "a", f"be at most the tree's depth {top}", a)
  b = _checks.check_positive_int(fn, "b", b, minimum=0)
  if not a < b <= top + 1:
    _checks.fail(fn, "b", f"satisfy a = {a} < b <= depth + 1 = {top + 1}", b)
  out = level_kernel(_tree(h.parent.astype(jnp.int32)), jnp.int32(a), jnp.int32(b))
  return _finish(out)


def abstract_bottom_levels(h: Hierarchy, cut_depth: int) -> Hierarchy:
  """Level abstraction of the bottom levels below ``cut_depth``.

  Every internal node deeper than ``cut_depth`` is contracted, so each
  internal node at depth ``cut_depth`` becomes the direct parent of all its
  leaves. Equals ``level_abstraction(h, cut_depth, depth + 1)``.

  Args:
    h: a valid hierarchy of depth ``H``.
    cut_depth: integer in ``[0, H]``.
  """
  fn = "abstract_bottom_levels"
  _host_tree(fn, h)
  top = _max_depth(h)
  d = _checks.check_positive_int(fn, "cut_depth", cut_depth, minimum=0)
  if d > top:
    _checks.fail(fn, "cut_depth", f"be at most the tree's depth {top}", d)
  out = level_kernel(_tree(h.parent.astype(jnp.int32)), jnp.int32(d), jnp.int32(top + 2))
  return _finish(out)


def _max_internal_children(parent: np.ndarray, n: int) -> int:
  idx = np.arange(parent.shape[0])
  keep = (parent >= 0) & (idx >= n)
  if not keep.any():
    return 1
  k = int(np.bincount(parent[keep]).max())
  return 1 << (k - 1).bit_length()  # a power of two: fewer recompilations


def topology_labels(h: Hierarchy) -> jax.Array:
  """``int32[m]``: equal labels iff equal internal topology (leaves removed).

  Labels are canonical within one call (rooted unordered tree isomorphism
  of the subtrees with their leaves deleted); ``-1`` on leaves and free
  slots. Use it to check that subtrees can be folded together.
  """
  parent = _host_tree("topology_labels", h)
  k = _max_internal_children(parent, h.num_leaves)
  return _topology(h.parent.astype(jnp.int32), max(k, 1))


def tree_fold(h: Hierarchy, roots: Sequence[int]) -> Hierarchy:
  """Tree folding of sibling subtrees with the same internal topology (Def. 3.7).

  The subtrees rooted at ``roots`` (siblings, internal nodes) are replaced by
  one subtree, the first root's, whose node ``x`` becomes the union of the
  nodes of the other subtrees that the isomorphism maps to ``x``: every leaf
  whose parent was node ``y`` of some folded subtree hangs below the image
  of ``y``. Topologies are compared with :func:`topology_labels` (subtrees
  with their leaves removed, as unordered rooted trees); when several
  isomorphisms exist the one matching children in canonical order (label,
  then index) is used. If the common parent is left with one child it is
  contracted.

  Args:
    h: a valid hierarchy.
    roots: two or more distinct internal nodes with the same parent.

  Returns:
    The folded hierarchy (relabelled, ``height=None``).

  Raises:
    ValueError: when the roots are not siblings, not internal, or their
      internal topologies differ.
  """
  fn = "tree_fold"
  parent = _host_tree(fn, h)
  m = parent.shape[0]
  n = h.num_leaves
  rs = np.asarray(roots)
  if rs.ndim != 1 or rs.dtype.kind not in "iu":
    _checks.fail(fn, "roots", "be a 1-D sequence of node indices", _checks.describe(rs))
  rs = [_node_arg(fn, "roots", int(r), m, parent) for r in rs]
  if len(rs) < 2 or len(set(rs)) != len(rs):
    _checks.fail(fn, "roots", "hold at least two distinct nodes", rs)
  leaves = [r for r in rs if r < n]
  if leaves:
    _checks.fail(fn, "roots", "be internal nodes (a leaf has no internal topology)",
                 f"leaf {leaves[0]}")
  ps = {int(parent[r]) for r in rs}
  if len(ps) != 1 or -1 in ps:
    _checks.fail(fn, "roots", "be siblings (non-root nodes with one common parent)",
                 f"parents {[int(parent[r]) for r in rs]}")
  k = max(_max_internal_children(parent, n), 1)
  labels = np.asarray(_topology(h.parent.astype(jnp.int32), k))
  lab = [int(labels[r]) for r in rs]
  if len(set(lab)) != 1:
    bad = next(i for i in range(1, len(rs)) if lab[i] != lab[0])
    _checks.fail(fn, "roots", "root subtrees with the same internal topology",
                 f"node {rs[bad]} whose topology differs from node {rs[0]}'s")
  groups = jnp.asarray(np.array([rs], np.int32))
  out = fold_kernel(_tree(h.parent.astype(jnp.int32)), groups, k)
  return _finish(out)


# ---------------------------------------------------------------------------
# Separated pairs and operation cost.


class SeparationReport(NamedTuple):
  """Which pairs an operator separated, and by how much their LCA cluster grew.

  Attributes:
    separated: ``bool[n, n]``, symmetric, ``False`` on the diagonal.
    ratio: ``float[n, n]``, ``|T'[i v j]| / |T[i v j]|`` for every pair
      (1 on the diagonal).
    cost: float scalar, the largest ratio over separated pairs (1 if none).
  """

  separated: jax.Array
  ratio: jax.Array
  cost: jax.Array


def _range_table(values, op):
  """Sparse table of ``op`` over ``values`` (``[levels, n]``)."""
  n = values.shape[0]
  levels = [values]
  step = 1
  while 2 * step <= n:
    prev = levels[-1]
    shifted = jnp.concatenate([prev[step:], prev[-1:].repeat(step)])
    levels.append(op(prev, shifted))
    step *= 2
  return jnp.stack(levels)


def _range_query(table, start, stop, op):
  """``op`` over ``values[start:stop]`` for non-empty ranges."""
  length = jnp.maximum(stop - start, 1)
  lev = jnp.floor(jnp.log2(length.astype(jnp.float32))).astype(jnp.int32)
  lev = jnp.minimum(lev, table.shape[0] - 1)
  # Guard against float log2 rounding: ensure 2**lev <= length < 2**(lev+1).
  lev = jnp.where((1 << lev) > length, lev - 1, lev)
  lev = jnp.where((2 << lev) <= length, lev + 1, lev)
  lev = jnp.clip(lev, 0, table.shape[0] - 1)
  return op(table[lev, start], table[lev, stop - (1 << lev)])


def _lca_matrix(h: Hierarchy, r):
  """``int32[n, n]`` LCA node of every pair of points (valid, index-ordered tree).

  The LCA of the leaves at DFS positions ``p < q`` is the highest split node
  between consecutive leaves in ``p..q-1``; ancestors have larger indices, so
  it is a running maximum along each row.
  """
  parent = h.parent
  m = parent.shape[0]
  n = (m + 1) // 2
  if n == 1:
    return jnp.zeros((1, 1), jnp.int32)
  has = parent >= 0
  pp = jnp.maximum(parent, 0)
  not_last = has & (r.stop != r.stop[pp])
  split = jnp.full(n, -1, jnp.int32).at[jnp.where(not_last, r.stop - 1, n - 1)].max(
      jnp.where(not_last, parent, -1))[: n - 1]
  p = jnp.arange(n - 1)
  a = jnp.where(p[None, :] >= p[:, None], split[None, :], -1)
  cm = jax.lax.cummax(a, axis=1)  # cm[p, j] = lca(order[p], order[j + 1])
  i = jnp.arange(n)
  lo = jnp.minimum(i[:, None], i[None, :])
  hi = jnp.maximum(i[:, None], i[None, :])
  pos_lca = jnp.where(lo == hi, r.order[lo], cm[jnp.minimum(lo, n - 2), jnp.maximum(hi - 1, 0)])
  pos = r.start[:n]  # DFS position of each point
  return pos_lca[pos[:, None], pos[None, :]]


def separation_kernel(before: Hierarchy, after: Hierarchy) -> SeparationReport:
  """Core of :func:`separated_pairs` (valid, index-ordered trees; no checks).

  Only ``before.parent`` and ``after.parent`` are read (heights never cause
  a second compile).
  """
  return _separation(before.parent, after.parent)


@jax.jit
def _separation(parent_before, parent_after) -> SeparationReport:
  before, after = _tree(parent_before), _tree(parent_after)
  m = before.parent.shape[0]
  n = (m + 1) // 2
  rb = hier.leaf_ranges(before)
  ra = hier.leaf_ranges(after)
  lb = _lca_matrix(before, rb)
  la = _lca_matrix(after, ra)
  pos_b = rb.start[:n]
  vals = pos_b[ra.order]  # before-positions of the leaves in after-order
  used_a = after.parent != UNUSED
  st = jnp.where(used_a, ra.start, 0)
  sp = jnp.where(used_a, ra.stop, 1)
  lo = _range_query(_range_table(vals, jnp.minimum), st, sp, jnp.minimum)
  hi = _range_query(_range_table(vals, jnp.maximum), st, sp, jnp.maximum)
  inside = (lo[la] >= rb.start[lb]) & (hi[la] < rb.stop[lb])
  eye = jnp.eye(n, dtype=bool)
  sep = ~inside & ~eye
  fdt = _checks.float_dtype()
  size_b = (rb.stop - rb.start)[lb]
  size_a = (ra.stop - ra.start)[la]
  ratio = size_a.astype(fdt) / size_b.astype(fdt)
  cost = jnp.max(jnp.where(sep, ratio, 0))
  cost = jnp.where(jnp.any(sep), cost, 1).astype(fdt)
  return SeparationReport(separated=sep, ratio=ratio, cost=cost)


def separated_pairs(before: Hierarchy, after: Hierarchy) -> SeparationReport:
  """Pairs separated by an operator that turned ``before`` into ``after``.

  A pair ``{i, j}`` is separated when ``leaves(after[i v j])`` is not a
  subset of ``leaves(before[i v j])`` (a point was added to the lowest
  cluster holding both; Knittel et al., Def. 3.2). The report's ``cost`` is
  the operation cost: the largest ``|after[i v j]| / |before[i v j]|`` over
  separated pairs (Def. 3.3 made tight), 1 when nothing is separated.

  O(n^2) time and memory (``int32[n, n]`` LCA matrices): meant for
  analysis at moderate ``n``.

  Args:
    before: a valid hierarchy.
    after: a valid hierarchy on the same ``n`` leaves.

  Returns:
    A :class:`SeparationReport`.
  """
  fn = "separated_pairs"
  _host_tree(fn, before)
  if not isinstance(after, Hierarchy):
    _checks.fail(fn, "after", "be a Hierarchy", type(after).__name__, TypeError)
  if after.parent.shape != before.parent.shape:
    _checks.fail(fn, "after", f"have the same capacity as before ({before.parent.shape[0]})",
                 f"capacity {after.parent.shape[0]}")
  hier.check_hierarchy(fn, after, arg="after", allow_traced=False)
  b = Hierarchy(parent=before.parent.astype(jnp.int32))
  a = Hierarchy(parent=after.parent.astype(jnp.int32))
  return separation_kernel(b, a)


def operation_cost(before: Hierarchy, after: Hierarchy) -> float:
  """The operation cost of the change ``before -> after`` (see :func:`separated_pairs`)."""
  return float(separated_pairs(before, after).cost)
