"""The ``Hierarchy`` type and its structural views.

A hierarchy over ``n`` points is a rooted tree whose leaves are the points.
It is stored as flat arrays of fixed capacity ``m = 2n - 1`` (see
``fairhc_jax/README.md`` for the invariants):

* ``parent: int32[m]``: the parent of each node, ``NO_PARENT`` (-1) at the
  root and ``UNUSED`` (-2) on free slots. Nodes ``0..n-1`` are the leaves;
  internal nodes live in ``n..m-1``. A child's index is always smaller than
  its parent's (SciPy's invariant), so bottom-up passes are index-ordered.
* ``height: float[m] | None``: merge heights (for dendrograms and SciPy
  export); leaves have height 0.

Everything else (leaf counts, depths, children, the DFS leaf order with each
node's leaves as a contiguous range) is derived by the jitted views below.
Children are ordered by index; the DFS leaf order visits children in that
order. Views take one hierarchy; ``jax.vmap`` them for batches.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks

NO_PARENT = -1
"""``parent`` value of the root."""
UNUSED = -2
"""``parent`` value of a free slot."""


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["parent", "height"],
    meta_fields=[],
)
@dataclasses.dataclass(frozen=True)
class Hierarchy:
  """A rooted tree over ``n`` leaves, as flat arrays of capacity ``m = 2n - 1``.

  Attributes:
    parent: ``int32[m]``; ``parent[i]`` is the parent of node ``i``,
      ``NO_PARENT`` (-1) for the root, ``UNUSED`` (-2) for a free slot.
      Leaves are ``0..n-1``; every used node has a smaller index than its
      parent. Internal nodes have at least two children.
    height: ``float[m]`` merge heights, or ``None``. Leaves are at 0; unused
      slots hold 0.

  The constructor does not validate (JAX rebuilds pytrees from tracers): use
  :func:`from_parent`, :func:`fairhc_jax.from_linkage` or :func:`validate`.
  A batch of hierarchies is one ``Hierarchy`` whose arrays have a leading
  batch axis (``int32[B, m]``).
  """

  parent: jax.Array
  height: Optional[jax.Array] = None

  @property
  def capacity(self) -> int:
    """``m = 2n - 1``, the number of node slots."""
    return self.parent.shape[-1]

  @property
  def num_leaves(self) -> int:
    """``n``, the number of leaves (points)."""
    return (self.parent.shape[-1] + 1) // 2


# ---------------------------------------------------------------------------
# Jitted structural views.


class LeafRanges(NamedTuple):
  """The DFS leaf order and each node's leaves as a range of it.

  Attributes:
    order: ``int32[n]``, the leaves in DFS order (children visited by index).
    start: ``int32[m]``; node ``u``'s leaves are ``order[start[u]:stop[u]]``.
    stop: ``int32[m]``. Unused slots have ``start = stop = 0``.
  """

  order: jax.Array
  start: jax.Array
  stop: jax.Array


class Children(NamedTuple):
  """Children of every node as linked lists (children in index order).

  Attributes:
    first: ``int32[m]``, the smallest-index child of each node, ``-1`` if none.
    next_sibling: ``int32[m]``, the next child of the same parent, ``-1`` if none.
    count: ``int32[m]``, the number of children.
  """

  first: jax.Array
  next_sibling: jax.Array
  count: jax.Array


def pointer_jumping_rounds(length: int) -> int:
  """Pointer-jumping rounds that cover any path in ``length`` nodes (the one round-count rule)."""
  return max(1, math.ceil(math.log2(max(length, 2))))


# Every view is a thin function of ``h`` that passes ``h.parent`` to a jitted
# kernel of the parent array alone: the pytree of a ``Hierarchy`` changes with
# ``height`` present or ``None``, and jitting on ``h`` would compile each view
# twice for the same tree with and without heights.


@jax.jit
def _children(parent: jax.Array) -> Children:
  m = parent.shape[-1]
  idx = jnp.arange(m, dtype=jnp.int32)
  has_parent = parent >= 0
  bucket = jnp.where(has_parent, parent, m)  # roots and free slots -> bucket m
  first = jnp.full(m + 1, m, jnp.int32).at[bucket].min(idx)[:m]
  order = jnp.argsort(bucket, stable=True).astype(jnp.int32)
  sorted_bucket = bucket[order]
  same = jnp.concatenate([sorted_bucket[1:] == sorted_bucket[:-1],
                          jnp.zeros(1, bool)])
  nxt_sorted = jnp.where(same, jnp.roll(order, -1), -1)
  next_sibling = jnp.full(m, -1, jnp.int32).at[order].set(nxt_sorted)
  next_sibling = jnp.where(has_parent, next_sibling, -1)
  count = jnp.zeros(m + 1, jnp.int32).at[bucket].add(1)[:m]
  first = jnp.where(first < m, first, -1)
  return Children(first=first, next_sibling=next_sibling, count=count)


def children(h: Hierarchy) -> Children:
  """Children lists of every node. O(m log m) (one sort). Jitted on ``h.parent``."""
  return _children(h.parent)


@functools.partial(jax.jit, static_argnames="max_children")
def _children_table(parent: jax.Array, max_children: int) -> jax.Array:
  m = parent.shape[-1]
  has_parent = parent >= 0
  bucket = jnp.where(has_parent, parent, m)
  order = jnp.argsort(bucket, stable=True).astype(jnp.int32)
  sorted_bucket = bucket[order]
  k = jnp.arange(m, dtype=jnp.int32)
  group_start = jnp.full(m + 1, m, jnp.int32).at[sorted_bucket].min(k)
  rank = k - group_start[sorted_bucket]
  keep = (sorted_bucket < m) & (rank < max_children)
  rows = jnp.where(keep, sorted_bucket, m)
  table = jnp.full((m + 1, max_children), -1, jnp.int32)
  table = table.at[rows, jnp.where(keep, rank, 0)].set(
      jnp.where(keep, order, -1))
  return table[:m]


def children_table(h: Hierarchy, max_children: int = 2) -> jax.Array:
  """Dense children table ``int32[m, max_children]``, padded with -1.

  Children beyond ``max_children`` (static) are dropped (use
  ``max(num_children(h))`` for non-binary trees).
  """
  return _children_table(h.parent, max_children=max_children)


@jax.jit
def _num_children(parent: jax.Array) -> jax.Array:
  m = parent.shape[-1]
  bucket = jnp.where(parent >= 0, parent, m)
  return jnp.zeros(m + 1, jnp.int32).at[bucket].add(1)[:m]


def num_children(h: Hierarchy) -> jax.Array:
  """``int32[m]``, the number of children of each node."""
  return _num_children(h.parent)


@jax.jit
def _depth(parent: jax.Array) -> jax.Array:
  m = parent.shape[-1]
  idx = jnp.arange(m, dtype=jnp.int32)
  has_parent = parent >= 0
  dist = has_parent.astype(jnp.int32)
  ptr = jnp.where(has_parent, parent, idx)

  def jump(_, carry):
    # The root points at itself with distance 0, so a node whose pointer
    # reached the root stops accumulating.
    dist, ptr = carry
    return dist + dist[ptr], ptr[ptr]

  # A rolled loop: unrolled rounds cost seconds of compile time per size.
  dist, _ = jax.lax.fori_loop(0, pointer_jumping_rounds(m), jump, (dist, ptr))
  return jnp.where(parent == UNUSED, -1, dist)


def depth(h: Hierarchy) -> jax.Array:
  """``int32[m]``: edges from each node to the root (root 0, unused -1).

  Pointer jumping: O(m log m) work, O(log m) sequential rounds.
  """
  return _depth(h.parent)


@jax.jit
def _root(parent: jax.Array) -> jax.Array:
  # A masked sum, not argmax: argmax is slow on XLA:CPU (PERFORMANCE-NOTES).
  idx = jnp.arange(parent.shape[-1], dtype=jnp.int32)
  return jnp.sum(jnp.where(parent == NO_PARENT, idx, 0)).astype(jnp.int32)


def root(h: Hierarchy) -> jax.Array:
  """The index of the root (int32 scalar).

  The library's one way to find the root inside kernels (a masked sum over
  ``parent == NO_PARENT``; ``argmax`` is slow on XLA:CPU).
  """
  return _root(h.parent)


@jax.jit
def _euler_positions(parent: jax.Array):
  m = parent.shape[-1]
  idx = jnp.arange(m, dtype=jnp.int32)
  used = parent != UNUSED
  has_parent = parent >= 0
  ch = _children(parent)
  end = 2 * m
  succ_enter = jnp.where(ch.first >= 0, ch.first, m + idx)
  succ_exit = jnp.where(ch.next_sibling >= 0, ch.next_sibling,
                        jnp.where(has_parent, m + parent, end))
  succ = jnp.concatenate([succ_enter, succ_exit, jnp.array([end], jnp.int32)])
  succ = jnp.where(jnp.concatenate([used, used, jnp.array([False])]), succ,
                   end)
  weight = jnp.concatenate([used, used, jnp.array([False])]).astype(jnp.int32)

  def jump(_, carry):
    dist, succ = carry
    return dist + dist[succ], succ[succ]

  dist, _ = jax.lax.fori_loop(0, pointer_jumping_rounds(2 * m + 1), jump, (weight, succ))
  total = 2 * jnp.sum(used.astype(jnp.int32))
  pos = total - dist
  enter = jnp.where(used, pos[:m], -1)
  exit_ = jnp.where(used, pos[m:2 * m], -1)
  return enter, exit_


def euler_positions(h: Hierarchy):
  """Positions of each node's enter and exit events in the Euler tour.

  The tour enters the root, visits the children in index order
  recursively, and exits. Computed by list ranking (pointer jumping):
  O(m log m) work, O(log m) rounds, no sequential loop over nodes.

  Returns:
    ``(enter int32[m], exit int32[m])``, positions in ``[0, 2 * used)``;
    unused slots get ``-1``.
  """
  return _euler_positions(h.parent)


@jax.jit
def _leaf_ranges(parent: jax.Array) -> LeafRanges:
  m = parent.shape[-1]
  n = (m + 1) // 2
  enter, exit_ = _euler_positions(parent)
  used = parent != UNUSED
  # Number of leaf-enter events strictly before each tour position.
  is_leaf_event = jnp.zeros(2 * m + 1, jnp.int32).at[enter[:n]].set(1)
  before = jnp.cumsum(is_leaf_event) - is_leaf_event
  start = jnp.where(used, before[jnp.maximum(enter, 0)], 0)
  stop = jnp.where(used, before[jnp.maximum(exit_, 0)], 0)
  stop = stop.at[:n].set(start[:n] + 1)
  order = jnp.zeros(n, jnp.int32).at[start[:n]].set(
      jnp.arange(n, dtype=jnp.int32))
  return LeafRanges(order=order, start=start.astype(jnp.int32),
                    stop=stop.astype(jnp.int32))


def leaf_ranges(h: Hierarchy) -> LeafRanges:
  """DFS leaf order and each node's leaves as ``order[start:stop]``.

  With leaves in this order, per-node sums of per-leaf quantities become
  prefix-sum differences: ``counts[u] = C[stop[u]] - C[start[u]]``.
  """
  return _leaf_ranges(h.parent)


@jax.jit
def _leaf_counts(parent: jax.Array) -> jax.Array:
  r = _leaf_ranges(parent)
  return r.stop - r.start


def leaf_counts(h: Hierarchy) -> jax.Array:
  """``int32[m]``, the number of leaves under each node (0 for unused slots)."""
  return _leaf_counts(h.parent)


@jax.jit
def _postorder_labels(parent: jax.Array):
  """``(new parent int32[m], target int32[m])``: slot ``target[u]`` receives node ``u``."""
  m = parent.shape[-1]
  n = (m + 1) // 2
  idx = jnp.arange(m, dtype=jnp.int32)
  used = parent != UNUSED
  internal = used & (idx >= n)
  _, exit_ = _euler_positions(parent)
  key = jnp.where(internal, exit_, 4 * m + idx)
  order = jnp.argsort(key).astype(jnp.int32)  # used internal nodes first
  new_label = jnp.zeros(m, jnp.int32).at[order].set(idx)
  new_label = jnp.where(idx < n, idx, n + new_label)
  new_label = jnp.where(used, new_label, -1)
  new_parent_of = jnp.where(parent >= 0, new_label[jnp.maximum(parent, 0)],
                            parent).astype(jnp.int32)
  target = jnp.where(used, new_label, m)
  new_parent = jnp.full(m + 1, UNUSED, jnp.int32).at[target].set(
      new_parent_of)[:m]
  return new_parent, target


@jax.jit
def _move_heights(height: jax.Array, parent: jax.Array, target: jax.Array):
  m = height.shape[-1]
  return jnp.zeros(m + 1, height.dtype).at[target].set(
      jnp.where(parent != UNUSED, height, 0))[:m]


def postorder_compact(h: Hierarchy) -> Hierarchy:
  """Relabels internal nodes into ``n..n+q-1`` in post-order.

  Used nodes keep their parent-child relations; free slots move to the end.
  Post-order guarantees the child-before-parent invariant, so this repairs
  the output of operators that create parents with small indices. Leaves
  keep their labels. Heights move with their nodes. Jitted on the arrays
  (one compile per ``n`` for the structure, one more for the heights).
  """
  new_parent, target = _postorder_labels(h.parent)
  new_height = None
  if h.height is not None:
    new_height = _move_heights(h.height, h.parent, target)
  return Hierarchy(parent=new_parent, height=new_height)


# ---------------------------------------------------------------------------
# Validation and construction (NumPy, before tracing).


def _problems(parent: np.ndarray, n: int, allow_unary: bool,
              require_index_order: bool) -> list[str]:
  """All structural problems of a parent array (empty if valid)."""
  m = parent.shape[0]
  out = []
  bad = (parent < UNUSED) | (parent >= m)
  if bad.any():
    i = int(np.flatnonzero(bad)[0])
    out.append(f"parent[{i}] = {parent[i]} is out of range [-2, {m})")
    return out
  if (parent[:n] == UNUSED).any():
    i = int(np.flatnonzero(parent[:n] == UNUSED)[0])
    out.append(f"leaf {i} is missing (parent[{i}] = UNUSED)")
  roots = np.flatnonzero(parent == NO_PARENT)
  if len(roots) != 1:
    out.append(f"there must be exactly one root (parent == -1), found "
               f"{len(roots)}" + (f": nodes {roots[:5].tolist()}" if len(roots) else ""))
  has_parent = parent >= 0
  p = parent[has_parent]
  if (p < n).any() and n > 0:
    i = int(np.flatnonzero(has_parent)[np.flatnonzero(p < n)[0]])
    out.append(f"node {i} has leaf {parent[i]} as its parent")
  if (parent[p] == UNUSED).any():
    i = int(np.flatnonzero(has_parent)[np.flatnonzero(parent[p] == UNUSED)[0]])
    out.append(f"node {i} has the unused slot {parent[i]} as its parent")
  if out:
    return out
  # Cycles: follow parent pointers; every used node must reach the root in < m steps.
  idx = np.arange(m)
  ptr = np.where(has_parent, parent, idx)
  for _ in range(pointer_jumping_rounds(m) + 1):
    ptr = ptr[ptr]
  used = parent != UNUSED
  stuck = used & (parent[ptr] != NO_PARENT)
  if stuck.any():
    i = int(np.flatnonzero(stuck)[0])
    out.append(f"node {i} does not reach the root (parent pointers form a cycle)")
    return out
  if require_index_order:
    inv = has_parent & (parent <= idx)
    if inv.any():
      i = int(np.flatnonzero(inv)[0])
      out.append(f"node {i} has parent {parent[i]} with a smaller index "
                 "(children must come before parents; use from_parent to relabel)")
  counts = np.bincount(p, minlength=m)
  internal = used & (idx >= n)
  need = 1 if allow_unary else 2
  few = internal & (counts < need)
  if few.any():
    i = int(np.flatnonzero(few)[0])
    out.append(f"internal node {i} has {counts[i]} child(ren); at least {need} required")
  return out


def _validation_problems(h: Hierarchy, fn: str, arg: str,
                         allow_unary: bool) -> list[str]:
  parent = np.asarray(h.parent)
  if parent.ndim != 1 or parent.shape[0] % 2 != 1:
    _checks.fail(fn, f"{arg}.parent", "be int[2n - 1] (one tree, odd length)",
                 f"shape {parent.shape}")
  if parent.dtype.kind not in "iu":
    _checks.fail(fn, f"{arg}.parent", "be an integer array", str(parent.dtype),
                 TypeError)
  n = (parent.shape[0] + 1) // 2
  probs = _problems(parent.astype(np.int64), n, allow_unary, True)
  if h.height is not None:
    height = np.asarray(h.height)
    if height.shape != parent.shape:
      probs.append(f"height has shape {height.shape}, expected {parent.shape}")
    elif not np.all(np.isfinite(height)):
      probs.append("height has NaN or infinite entries")
  return probs


def validate(h: Hierarchy, *, allow_unary: bool = False) -> None:
  """Raises ``ValueError`` listing every structural problem of ``h``.

  Checks: shape ``int[2n - 1]``; values in ``{-2, -1} U [0, m)``; every leaf
  present; exactly one root; parents are used internal nodes; no cycles
  (every used node reaches the root); children before parents; every
  internal node has at least two children (one if ``allow_unary``);
  heights, if present, finite with the same shape.
  """
  check_hierarchy("validate", h, allow_unary=allow_unary, allow_traced=False)


def check_hierarchy(fn: str, h, *, arg: str = "h", allow_unary: bool = False,
                    allow_traced: bool = True) -> Hierarchy:
  """Entry-point validation of a hierarchy argument (the library's message format).

  Checks the type and that ``h`` is one tree (``parent`` is 1-D); when its
  arrays are concrete, runs the structural checks of :func:`validate`. A
  traced ``h`` (inside ``jit``/``vmap``) passes the static checks only,
  unless ``allow_traced=False``.

  Returns:
    ``h`` with an ``int32`` parent array.
  """
  if not isinstance(h, Hierarchy):
    _checks.fail(fn, arg, "be a Hierarchy", type(h).__name__, TypeError)
  parent = h.parent
  if getattr(parent, "ndim", None) != 1:
    _checks.fail(fn, f"{arg}.parent",
                 "be int[2n - 1] (one tree; jax.vmap the kernels for a batch)",
                 _checks.describe(parent))
  traced = not (_checks.is_concrete(parent) and _checks.is_concrete(h.height))
  if traced:
    if not allow_traced:
      _checks.fail(fn, arg, f"be concrete ({fn} runs outside jit)",
                   "a traced value", TypeError)
    return h
  probs = _validation_problems(h, fn, arg, allow_unary)
  if probs:
    _checks.fail(fn, arg, "be a valid hierarchy", "; ".join(probs))
  if h.parent.dtype != jnp.int32:
    h = Hierarchy(parent=jnp.asarray(h.parent, jnp.int32), height=h.height)
  return h


def is_valid_hierarchy(h: Hierarchy, *, throw: bool = False,
                       allow_unary: bool = False) -> bool:
  """True when ``h`` is a valid hierarchy (see :func:`validate`).

  With ``throw=True`` an invalid tree raises ``ValueError`` instead.
  """
  try:
    validate(h, allow_unary=allow_unary)
  except (ValueError, TypeError):
    if throw:
      raise
    return False
  return True


def _childless_leaf_count(p: np.ndarray) -> Optional[int]:
  """``n`` = the number of used nodes without children, when they are ``0..n-1``.

  ``None`` when the childless nodes are not exactly ``0..n-1`` or the length
  does not fit ``n <= L <= 2n - 1`` (the caller then reports the problem).
  """
  length = p.shape[0]
  has_child = np.zeros(length, bool)
  ok = (p >= 0) & (p < length)
  has_child[p[ok]] = True
  childless = np.flatnonzero((p != UNUSED) & ~has_child)
  n = len(childless)
  if n == 0 or not (n <= length <= 2 * n - 1) or childless[-1] != n - 1:
    return None
  return n


def from_parent(parent, *, num_leaves: Optional[int] = None,
                height=None, allow_unary: bool = False) -> Hierarchy:
  """Builds a ``Hierarchy`` from any valid parent array over leaves ``0..n-1``.

  Args:
    parent: ``int[L]`` with ``parent[i]`` the parent of node ``i``, ``-1`` at
      the root (``-2`` marks free slots). Leaves are ``0..n-1``; internal
      nodes may be numbered in any order.
    num_leaves: ``n``; when omitted, the number of nodes without children
      (which must be ``0..n-1``), so a non-binary tree needs only its used
      slots (``n <= L <= 2n - 1``); arrays shorter than ``2n - 1`` are
      padded with free slots.
    height: optional ``float[L]`` merge heights.
    allow_unary: accept internal nodes with a single child.

  Returns:
    A ``Hierarchy`` of capacity ``2n - 1`` whose internal nodes are
    relabelled in post-order when children did not already come before
    parents (the input order is kept when it is already canonical).
  """
  fn = "from_parent"
  p = np.asarray(parent)
  if p.ndim != 1 or p.dtype.kind not in "iuf":
    _checks.fail(fn, "parent", "be a 1-D integer array", _checks.describe(p))
  if p.dtype.kind == "f":
    if not np.all(p == np.round(p)):
      _checks.fail(fn, "parent", "hold integers", "non-integer values")
  p = p.astype(np.int64)
  length = p.shape[0]
  if num_leaves is None:
    n = _childless_leaf_count(p)
    if n is None:  # not a tree over leaves 0..n-1: validate as if binary
      if length % 2 != 1:
        _checks.fail(fn, "parent", "have odd length 2n - 1 (or pass num_leaves)",
                     f"length {length}")
      n = (length + 1) // 2
  else:
    n = _checks.check_positive_int(fn, "num_leaves", num_leaves)
    if not n <= length <= 2 * n - 1:
      _checks.fail(fn, "parent", f"have length between n = {n} and 2n - 1 = {2 * n - 1}",
                   f"length {length}")
  m = 2 * n - 1
  hgt = None
  if height is not None:
    hgt = np.asarray(height, dtype=np.float64)
    if hgt.shape != (length,):
      _checks.fail(fn, "height", f"have shape ({length},) like parent", f"shape {hgt.shape}")
    if not np.all(np.isfinite(hgt)):
      _checks.fail(fn, "height", "be finite", "NaN or infinite entries")
  if length < m:
    p = np.concatenate([p, np.full(m - length, UNUSED)])
    if hgt is not None:
      hgt = np.concatenate([hgt, np.zeros(m - length)])
  probs = _problems(p, n, allow_unary, False)
  if probs:
    raise ValueError(f"{fn}: parent must describe a valid hierarchy, got: " + "; ".join(probs))
  idx = np.arange(m)
  used = p != UNUSED
  q = int((used & (idx >= n)).sum())
  canonical = (np.all(p[p >= 0] > idx[p >= 0]) and np.all(used[n:n + q]))
  dtype = _checks.float_dtype()
  h = Hierarchy(parent=jnp.asarray(p, jnp.int32),
                height=None if hgt is None else jnp.asarray(hgt, dtype))
  if not canonical:
    h = postorder_compact(h)
  return h


def leaf_sets(h: Hierarchy) -> list:
  """Python list: for each node, the sorted array of its leaves (``None`` if unused).

  A convenience for small trees and debugging (O(n m) output).
  """
  r = jax.device_get(leaf_ranges(h))
  parent = np.asarray(h.parent)
  return [None if parent[u] == UNUSED else np.sort(r.order[r.start[u]:r.stop[u]])
          for u in range(parent.shape[0])]
