"""REFERENCE ONLY: the host-side driver of the Knittel et al. reductions as it was
before they became one jitted program (fairhc_jax/algorithms/reductions.py).

Kept for benchmarks/bench_reductions.py (timing the old against the new) and
as the record of tests/data/knittel_reference.npz. Changes from the original:
the operator kernels now take and return a Hierarchy (wrapped below), and the
eps reader is balance.read_eps. Do not use it in library code.

Original docstring:

Knittel et al. (ICML 2023): fair, relatively balanced hierarchies from any hierarchy.

Four algorithms, each taking any valid binary :class:`Hierarchy` (average
linkage, say) and returning the modified hierarchy plus a record of the
operators it applied (:mod:`fairhc_jax.operators`):

* :func:`rebalance_tree` (Theorem 4.1): 1/6-relatively balanced output
  through tree rebalances.
* :func:`refine_rebalance_tree` (Theorem 4.5): ``eps``-relatively balanced
  output, adding subtree deletions and insertions.
* :func:`stochastically_fair_hc` (Theorem 4.9): the above, then one level
  abstraction of the bottom levels (by cut depth or minimum cluster size).
* :func:`fair_hc` (Algorithm 3, Theorem 4.14): the above with the bottom cut
  where the internal part is a complete binary tree, then recursively:
  abstract the top ``log2 h`` levels, sort the ``h`` children by colour
  share, fold them into ``k`` children.

Design: the paper's procedures recurse top-down over disjoint subtrees, so
all recursive calls at one depth commute. The drivers here are
level-synchronous: at depth ``l`` they find, in vectorised NumPy over all
nodes at that depth, where each operator applies (the walks down larger
children), then apply all of that depth's operators in one call of a jitted
batched kernel (:func:`fairhc_jax.operators.rebalance_kernel`,
:func:`~fairhc_jax.operators.move_kernel`,
:func:`~fairhc_jax.operators.level_kernel`,
:func:`~fairhc_jax.operators.fold_kernel`). Sizes, depths, children and
minimum leaves come from one jitted call per step. The number of steps is
the depth of the output tree (plus the refinement rounds), not ``n``.

Ties ("the larger child") are broken by the smallest leaf index in the
subtree, so results do not depend on internal node labels.

Every returned tree keeps all ``n`` leaves and passes
:func:`fairhc_jax.hierarchy.validate`.
"""

from __future__ import annotations

import dataclasses
import functools
from fractions import Fraction
from typing import List, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax import hierarchy as hier
from fairhc_jax import operators as ops
from fairhc_jax.balance import read_eps as as_fraction
from fairhc_jax.hierarchy import UNUSED, Hierarchy

__all__ = ["OperatorStep", "ReductionResult", "rebalance_tree",
           "refine_rebalance_tree", "stochastically_fair_hc", "fair_hc"]


@dataclasses.dataclass(frozen=True)
class OperatorStep:
  """One batch of operators applied at one depth (they act on disjoint subtrees).

  Attributes:
    operator: "tree_rebalance", "subtree_move", "level_abstraction" or
      "tree_fold".
    depth: the depth of the nodes the operators were applied at (for a
      level abstraction, the upper depth ``a``).
    count: how many operators the batch holds.
    sizes: ``int64[count]``: for a rebalance ``|v|``, for a move the size of
      the moved subtree, for a fold the size of the folded result, for an
      abstraction the number of contracted nodes (one entry).
    cost: the batch's operation cost (largest growth factor of a separated
      pair's LCA cluster, see :func:`fairhc_jax.operators.separated_pairs`)
      when the algorithm ran with ``track_cost=True``, else ``None``.
  """

  operator: str
  depth: int
  count: int
  sizes: np.ndarray
  cost: Optional[float] = None


class ReductionResult(NamedTuple):
  """``(hierarchy, steps)``: the output tree and the operators applied, in order."""

  hierarchy: Hierarchy
  steps: List[OperatorStep]


# ---------------------------------------------------------------------------
# Jitted views used by the drivers.


@jax.jit
def _views(parent):
  """Sizes, depths, binary children table and smallest leaf of every node."""
  h = Hierarchy(parent=parent)
  r = hier.leaf_ranges(h)
  size = r.stop - r.start
  d = hier.depth(h)
  table = hier.children_table(h, 2)
  tbl = ops._range_table(r.order, jnp.minimum)
  minleaf = ops._range_query(tbl, r.start, jnp.maximum(r.stop, r.start + 1), jnp.minimum)
  return size, d, table, minleaf




@functools.partial(jax.jit, static_argnames="num_colors")
def _color_counts(parent, colors, num_colors: int):
  """``int32[m, c]`` colour counts of every node (prefix sums in DFS leaf order)."""
  r = hier.leaf_ranges(Hierarchy(parent=parent))
  onehot = jax.nn.one_hot(colors[r.order], num_colors, dtype=jnp.int32)
  cum = jnp.concatenate([jnp.zeros((1, num_colors), jnp.int32),
                         jnp.cumsum(onehot, axis=0)])
  return cum[r.stop] - cum[r.start]


class _State:
  """The working tree of a driver: a host copy of ``parent`` plus fresh views."""

  def __init__(self, parent: np.ndarray, n: int, track_cost: bool):
    self.parent = np.asarray(parent, np.int32)
    self.n = n
    self.m = self.parent.shape[0]
    self.track_cost = track_cost
    self.steps: List[OperatorStep] = []
    self.refresh()

  def refresh(self):
    size, d, table, minleaf = jax.device_get(_views(jnp.asarray(self.parent)))
    self.size = np.asarray(size, np.int64)
    self.depth = np.asarray(d)
    self.minleaf = np.asarray(minleaf)
    c0, c1 = np.asarray(table[:, 0]), np.asarray(table[:, 1])
    idx = np.arange(self.m)
    has2 = c1 >= 0
    s0 = np.where(c0 >= 0, self.size[np.maximum(c0, 0)], -1)
    s1 = np.where(has2, self.size[np.maximum(c1, 0)], -1)
    first_heavier = (s0 > s1) | ((s0 == s1) & (self.minleaf[np.maximum(c0, 0)] <
                                             self.minleaf[np.maximum(c1, 0)]))
    self.heavy = np.where(has2, np.where(first_heavier, c0, c1), idx)
    self.light = np.where(has2, np.where(first_heavier, c1, c0), idx)
    self.internal = (idx >= self.n) & (self.parent != UNUSED)

  def compact(self) -> Hierarchy:
    return hier.postorder_compact(Hierarchy(parent=jnp.asarray(self.parent)))

  def apply(self, name: str, depth: int, new_parent, count: int, sizes):
    before = self.compact() if self.track_cost else None
    self.parent = np.asarray(new_parent, np.int32)
    cost = None
    if self.track_cost:
      cost = float(ops.separation_kernel(before, self.compact()).cost)
    self.steps.append(OperatorStep(name, int(depth), int(count),
                                   np.asarray(sizes, np.int64), cost))
    self.refresh()


def _pad(values, length: int) -> jnp.ndarray:
  out = np.full(length, -1, np.int32)
  out[: len(values)] = values
  return jnp.asarray(out)


def _rebalance_pass(st: _State):
  """Algorithm 1, level-synchronous: one batch of rebalances per depth."""
  level = 0
  while True:
    items = np.flatnonzero(st.internal & (st.depth == level))
    if items.size == 0:
      return
    big = st.size[items]
    x = st.heavy[items].copy()
    act = 3 * st.size[x] > 2 * big
    while act.any():
      x[act] = st.heavy[x[act]]
      act = 3 * st.size[x] > 2 * big
    need = st.parent[x] != items
    if need.any():
      u, v = items[need], x[need]
      new = ops.rebalance_kernel(Hierarchy(parent=jnp.asarray(st.parent)), _pad(u, st.n), _pad(v, st.n)).parent
      st.apply("tree_rebalance", level, new, u.size, st.size[v])
    level += 1


def _refine_pass(st: _State, eps: Fraction):
  """Algorithm 2 after Algorithm 1: subtree moves until every depth is eps-balanced."""
  a, b = eps.numerator, eps.denominator
  level = 0
  while True:
    if not (st.internal & (st.depth == level)).any():
      return
    for _ in range(st.n + 1):  # every round shrinks each violating |R|
      items = np.flatnonzero(st.internal & (st.depth == level))
      big_p = st.size[items]
      r_child = st.heavy[items]
      viol = (a * big_p >= b) & (2 * b * st.size[r_child] > (b + 2 * a) * big_p)
      if not viol.any():
        break
      p_size = big_p[viol]
      r_child = r_child[viol]
      l_child = st.light[items[viol]]
      slack2 = 2 * st.size[r_child] - p_size  # a moved size t needs 2 t <= slack2
      x = r_child.copy()
      act = st.internal[x] & (2 * st.size[st.light[x]] > slack2)
      while act.any():
        x[act] = st.heavy[x[act]]
        act = st.internal[x] & (2 * st.size[st.light[x]] > slack2)
      v = st.light[x]
      t = st.size[v]
      y = l_child.copy()
      act = st.size[y] > 2 * t
      while act.any():
        y[act] = st.heavy[y[act]]
        act = st.size[y] > 2 * t
      new = ops.move_kernel(Hierarchy(parent=jnp.asarray(st.parent)), _pad(v, st.n), _pad(y, st.n)).parent
      st.apply("subtree_move", level, new, v.size, t)
    else:  # pragma: no cover - the loop always terminates earlier
      raise RuntimeError("refine_rebalance_tree: refinement did not converge")
    level += 1


def _abstract(st: _State, a: int, b: int):
  mask = st.internal & (st.depth > a) & (st.depth < b) & (st.parent >= 0)
  count = int(mask.sum())
  if count:
    new = ops.level_kernel(Hierarchy(parent=jnp.asarray(st.parent)), jnp.int32(a), jnp.int32(b)).parent
    st.apply("level_abstraction", a, new, 1, [count])


# ---------------------------------------------------------------------------
# Validation.


def _check_binary_tree(fn: str, tree) -> np.ndarray:
  hier.check_hierarchy(fn, tree, arg="tree", allow_traced=False)
  parent = np.asarray(tree.parent).astype(np.int64)
  m = parent.shape[0]
  counts = np.bincount(parent[parent >= 0], minlength=m)
  n = (m + 1) // 2
  used_internal = np.flatnonzero((parent != UNUSED) & (np.arange(m) >= n))
  bad = used_internal[counts[used_internal] != 2]
  if bad.size:
    _checks.fail(fn, "tree", "be a binary hierarchy (every internal node with two children)",
                 f"node {bad[0]} with {counts[bad[0]]} children")
  return parent


def _check_track(fn: str, track_cost):
  if not isinstance(track_cost, (bool, np.bool_)):
    _checks.fail(fn, "track_cost", "be a bool", repr(track_cost), TypeError)
  return bool(track_cost)


def _result(st: _State) -> ReductionResult:
  return ReductionResult(st.compact(), st.steps)


# ---------------------------------------------------------------------------
# Public algorithms.


def rebalance_tree(tree: Hierarchy, *, track_cost: bool = False) -> ReductionResult:
  """RebalanceTree (Knittel et al., Algorithm 1 / Theorem 4.1).

  At a node with ``N`` leaves, walk down the larger child while it has more
  than ``2N/3`` leaves; rebalance at the first node ``v`` with at most
  ``2N/3`` (it has more than ``N/3``); recurse into both new children. The
  output is 1/6-relatively balanced: every split is between ``N/3`` and
  ``2N/3`` (checked on integers, ``3|v| > N``, ``3|v| <= 2N``), at every
  size.

  Args:
    tree: a valid binary hierarchy (``int32[2n - 1]`` parents).
    track_cost: also compute each batch's operation cost (O(n^2) per batch).

  Returns:
    ``ReductionResult(hierarchy, steps)``: a binary hierarchy on the same
    leaves (``height=None``) and the batches of tree rebalances applied.
  """
  fn = "rebalance_tree"
  parent = _check_binary_tree(fn, tree)
  st = _State(parent, tree.num_leaves, _check_track(fn, track_cost))
  _rebalance_pass(st)
  return _result(st)


def refine_rebalance_tree(tree: Hierarchy, eps, *,
                          track_cost: bool = False) -> ReductionResult:
  """RefineRebalanceTree (Knittel et al., Algorithm 2 / Theorem 4.5).

  :func:`rebalance_tree`, then top-down at every node ``P`` with
  ``|P| >= 1/eps`` and larger child ``R``: while ``|R| > (1/2 + eps)|P|``,
  walk down the larger children of ``R`` until the smaller child ``v`` has
  ``|v| <= |R| - |P|/2``; delete ``v`` and insert it into the smaller child
  of ``P`` next to the first node (walking down larger children) with at
  most ``2|v|`` leaves. The output is ``eps``-relatively balanced (nodes
  with fewer than ``1/eps`` leaves exempt, see :mod:`fairhc_jax.balance`).

  Args:
    tree: a valid binary hierarchy.
    eps: in ``(0, 1/2)``, a float or ``fractions.Fraction`` (floats are
      read as the nearest fraction with denominator <= 10^6).
    track_cost: also compute each batch's operation cost (O(n^2) per batch).

  Returns:
    ``ReductionResult(hierarchy, steps)`` with the rebalances and subtree
    moves applied.
  """
  fn = "refine_rebalance_tree"
  parent = _check_binary_tree(fn, tree)
  f = as_fraction(fn, "eps", eps)
  st = _State(parent, tree.num_leaves, _check_track(fn, track_cost))
  _rebalance_pass(st)
  _refine_pass(st, f)
  return _result(st)


def _min_size_cut(st: _State, s: int) -> int:
  """Deepest ``d`` with every node at depth ``<= d`` internal and of size ``>= s``."""
  used = st.parent != UNUSED
  d = -1
  top = int(st.depth[used].max())
  for level in range(top + 1):
    at = used & (st.depth == level)
    if not (st.internal[at].all() and (st.size[at] >= s).all()):
      break
    d = level
  return d


def stochastically_fair_hc(tree: Hierarchy, eps, *, min_cluster_size: Optional[int] = None,
                           cut_depth: Optional[int] = None,
                           track_cost: bool = False) -> ReductionResult:
  """StochasticallyFairHC (Knittel et al., Theorem 4.9).

  :func:`refine_rebalance_tree`, then one level abstraction of the bottom
  levels so that the lowest clusters are large enough for random colours to
  concentrate. Give exactly one of:

  * ``cut_depth``: every internal node deeper than ``cut_depth`` is
    contracted (the paper's form; depths of the rebalanced tree).
  * ``min_cluster_size`` ``s``: the cut is the deepest depth ``d`` such
    that every node at depth ``<= d`` is internal with at least ``s``
    leaves. Then every internal node of the output has at least ``s``
    leaves, and a node with a leaf child has only leaf children.

  Args:
    tree: a valid binary hierarchy.
    eps: in ``(0, 1/2)``.
    min_cluster_size: integer in ``[2, n]``.
    cut_depth: integer in ``[0, depth of the rebalanced tree]``.
    track_cost: also compute each batch's operation cost (O(n^2) per batch).

  Returns:
    ``ReductionResult(hierarchy, steps)``.
  """
  fn = "stochastically_fair_hc"
  parent = _check_binary_tree(fn, tree)
  f = as_fraction(fn, "eps", eps)
  n = tree.num_leaves
  if (min_cluster_size is None) == (cut_depth is None):
    _checks.fail(fn, "min_cluster_size / cut_depth", "be given exactly one",
                 f"min_cluster_size={min_cluster_size!r}, cut_depth={cut_depth!r}")
  if min_cluster_size is not None:
    s = _checks.check_positive_int(fn, "min_cluster_size", min_cluster_size, minimum=2)
    if s > n:
      _checks.fail(fn, "min_cluster_size", f"be at most n = {n}", s)
  else:
    cd = _checks.check_positive_int(fn, "cut_depth", cut_depth, minimum=0)
  st = _State(parent, n, _check_track(fn, track_cost))
  _rebalance_pass(st)
  _refine_pass(st, f)
  if min_cluster_size is not None:
    cd = _min_size_cut(st, s)
  else:
    top = int(st.depth.max())
    if cd > top:
      _checks.fail(fn, "cut_depth", f"be at most the rebalanced tree's depth {top}", cd)
  _abstract(st, cd, st.m + 1)
  return _result(st)


def _is_power_of_two(x: int) -> bool:
  return x >= 1 and (x & (x - 1)) == 0


def fair_hc(tree: Hierarchy, colors, *, h: int, k: int, eps,
            num_colors: Optional[int] = None, min_cluster_size: Optional[int] = None,
            track_cost: bool = False) -> ReductionResult:
  """FairHC (Knittel et al., Algorithm 3 / Theorem 4.14).

  1. :func:`refine_rebalance_tree` with ``eps``.
  2. Abstract the bottom levels at the deepest depth ``D`` where every node
     at depth ``<= D`` is internal (and has at least ``min_cluster_size``
     leaves, if given): the internal part is then a complete binary tree of
     depth ``D`` whose lowest nodes hold only leaves.
  3. Recursively from the root, while the subtree below the current nodes
     is at least ``log2 h`` levels deep: abstract the top ``log2 h`` levels
     (each current node gets ``h`` children), sort the ``h`` children by
     their share of the colour of interest (exact ordering; ties by smallest
     leaf), cut the sorted list into ``h / k`` chunks of ``k`` and fold
     together the ``i``-th node of every chunk, ``i = 1..k``; each current
     node now has ``k`` children, each a fold of ``h / k`` subtrees with
     colour shares spread across the range; recurse into them. All nodes of
     one recursion depth are processed in one batch.

  Colour of interest **[decision]**: with two colours both choices give the
  same folds (sorting by one share is sorting by the other, reversed). With
  ``c > 2`` colours the recursion cycles through the colours, rarest first:
  recursion depth ``t`` sorts by colour ``order[t mod c]`` where ``order``
  lists colours by increasing global count. Each colour thus gets the
  paper's two-colour spreading at every ``c``-th level.

  Args:
    tree: a valid binary hierarchy on ``n`` leaves.
    colors: ``int[n]`` colours in ``[0, num_colors)``.
    h: power of two ``>= 2``, the number of subtrees sorted at each step.
    k: power of two ``>= 2`` dividing ``h``, the number of children after folding.
    eps: relative balance in ``(0, 1/2)``.
    num_colors: defaults to ``max(colors) + 1``.
    min_cluster_size: optional lower bound on the bottom cluster sizes.
    track_cost: also compute each batch's operation cost (O(n^2) per batch).

  Returns:
    ``ReductionResult(hierarchy, steps)``.

  Raises:
    ValueError: bad parameters, or ``h`` larger than ``2**D`` (the tree's
      complete binary part is too shallow for one folding step).
  """
  fn = "fair_hc"
  parent = _check_binary_tree(fn, tree)
  n = tree.num_leaves
  cols, c = _checks.check_colors(fn, "colors", colors, n, num_colors, batched=False)
  for name, val in (("h", h), ("k", k)):
    if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
      _checks.fail(fn, name, "be an integer power of two >= 2", repr(val), TypeError)
    if not (_is_power_of_two(int(val)) and val >= 2):
      _checks.fail(fn, name, "be a power of two >= 2", repr(val))
  h, k = int(h), int(k)
  if h % k:
    _checks.fail(fn, "k", f"divide h = {h}", k)
  f = as_fraction(fn, "eps", eps)
  if min_cluster_size is not None:
    s = _checks.check_positive_int(fn, "min_cluster_size", min_cluster_size, minimum=2)
    if s > n:
      _checks.fail(fn, "min_cluster_size", f"be at most n = {n}", s)
  else:
    s = 2
  st = _State(parent, n, _check_track(fn, track_cost))
  _rebalance_pass(st)
  _refine_pass(st, f)
  depth_cut = _min_size_cut(st, s)
  lh = h.bit_length() - 1
  if depth_cut < lh:
    _checks.fail(fn, "h", f"be at most 2**D = {2 ** max(depth_cut, 0)}, where D = "
                 f"{depth_cut} is the depth of the complete binary part of the "
                 "rebalanced tree", h)
  _abstract(st, depth_cut, st.m + 1)
  cols_np = np.asarray(cols)
  color_order = np.argsort(np.bincount(cols_np, minlength=c), kind="stable")
  cols_j = jnp.asarray(cols_np)
  level, remaining, t = 0, depth_cut, 0
  while remaining >= lh:
    _abstract(st, level, level + lh)
    items = np.flatnonzero(st.internal & (st.depth == level))
    counts = np.asarray(_color_counts(jnp.asarray(st.parent), cols_j, c))
    g = int(color_order[t % c])
    kids = np.flatnonzero(np.isin(st.parent, items))
    share = counts[kids, g] / st.size[kids]
    order = np.lexsort((st.minleaf[kids], share, st.parent[kids]))
    kids = kids[order]
    if kids.size != items.size * h:  # pragma: no cover - guaranteed by the cut
      raise RuntimeError(f"{fn}: expected {h} children per node at depth {level}")
    srt = kids.reshape(items.size, h // k, k)  # [item, chunk, position in chunk]
    groups = srt.transpose(0, 2, 1).reshape(items.size * k, h // k)
    if h > k:
      # Each group holds h/k >= 2 distinct internal nodes, so at most n groups:
      # padding to n rows compiles the fold kernel once per (n, h, k).
      padded = np.full((st.n, h // k), -1, np.int32)
      padded[: groups.shape[0]] = groups
      new = ops.fold_kernel(Hierarchy(parent=jnp.asarray(st.parent)), jnp.asarray(padded), h).parent
      st.apply("tree_fold", level, new, groups.shape[0],
               st.size[groups].sum(axis=1))
    level += 1
    remaining -= lh
    t += 1
  return _result(st)
