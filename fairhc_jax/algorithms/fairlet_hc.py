"""Fair hierarchical clustering through fairlets (Ahmadian et al., NeurIPS 2020).

The method has three phases:

1. a fairlet decomposition (:mod:`fairhc_jax.fairlets`) for a constraint
   object: random, ``Balance(b, r)`` (two colours) or
   ``BoundedRepresentation(1/t)`` (any number of colours);
2. the local search (Algorithm 1) that lowers the fairlet objective
   ``phi(Y) = sum_k d(Y_k)`` by swapping same-coloured points, with the
   authors' randomised schedule or the fast one;
3. the fair tree (:func:`fairlet_tree`): average linkage inside every
   fairlet and vertex-weighted average linkage over the fairlets, joined
   into one :class:`~fairhc_jax.hierarchy.Hierarchy`. Every internal node is
   a union of whole fairlets or lies inside one fairlet, so every cluster
   above the fairlet layer is fair under any union-closed notion.

:func:`fair_hierarchical_clustering` runs all three and reports statistics
and the time of each phase; its result carries the constraint and the
:class:`~fairhc_jax.fairness.ClusterScope` its guarantee holds for, so
checking a result with its own scope passes.

Internal code calls kernels only (``fairlet_members``, ``distance_table``,
``agglomerative.linkage_kernel``); the public entry points check.
"""

from __future__ import annotations

import functools
import time
from typing import Any, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax import progress as _progress
from fairhc_jax.distances import pairwise_distances
from fairhc_jax import fairlets as _fl
from fairhc_jax.agglomerative import linkage_kernel
from fairhc_jax.fairlets import (SCHEDULES, Decomposition, check_eps, distance_table,
                                 fairlet_members, local_search, sum_over_members)
from fairhc_jax.fairness import ClusterScope
from fairhc_jax.hierarchy import NO_PARENT, UNUSED, Hierarchy
from fairhc_jax import memory as _memory
from fairhc_jax.objectives import TreeObjectives, tree_objectives_kernel

METRICS = ("euclidean", "precomputed")


def _pad_distance(blocks, real):
  """A distance larger than every real entry of the fairlet blocks: padding merges last.

  ``blocks: float[k, mf, mf]`` (each fairlet's distances), ``real:
  bool[k, mf, mf]`` (both slots real). Only the blocks are read (not all
  of ``D``: at n = 30,162 a pass over ``D`` costs about 0.4 s); average
  linkage inside a block merges its real points among themselves first at
  distances at most this maximum, so the real merges (the ones kept) do not
  depend on the value.
  """
  return 2 * jnp.max(jnp.where(real, blocks, 0)) + 1


INNER = ("linkage", "flat")
"""How a fairlet's points hang below it: an average-linkage subtree (the
paper's) or one flat node with all of them as children."""

STARTS = ("random", "projection")
"""The local search's starting decompositions (``start=`` of :func:`fair_hierarchical_clustering`)."""


PORTABLE_SUMS_ON_CPU = False
"""Read at trace time by :func:`_between`; tests set it to run the portable
form (the one GPUs and TPUs get) on CPU."""


def _between(D, f, members):
  """``float[k, k]``: ``between[b, a] = d(Y_a, Y_b)``, summed in a fixed order.

  Portable form (GPU/TPU): the member-table sums (``distance_table``, then
  row gathers of its transpose), slot order. On CPU
  (``lax.platform_dependent``) two ``segment_sum``s, which XLA:CPU runs as
  a sequential scatter in index order, i.e. the same additions in the same
  order (tested bitwise) and 1.5x faster there at n = 12,800; on a GPU a
  float scatter-add is atomic and its order arbitrary, hence the portable
  form.
  """
  n = D.shape[0]
  k = members.shape[0]

  def portable():
    table_t = distance_table(D, members).T  # [n, k]
    return sum_over_members(
        members, lambda m: jnp.where((m < n)[:, None], table_t[jnp.minimum(m, n - 1)], 0))

  def cpu():
    table = jax.ops.segment_sum(D, f, num_segments=k)  # [k, n]
    return jax.ops.segment_sum(table.T, f, num_segments=k)

  if PORTABLE_SUMS_ON_CPU:
    return portable()
  return jax.lax.platform_dependent(cpu=cpu, default=portable)


@functools.partial(jax.jit, static_argnames=("num_fairlets", "max_size", "inner"))
def _fairlet_tree_kernel(D, fairlet_of, num_fairlets: int, max_size: int,
                         inner: str = "linkage"):
  """The fair tree for one decomposition (see :func:`fairlet_tree`).

  Calls only kernels (``fairlet_members``, ``distance_table``,
  ``linkage_kernel``): no input checks inside jit/vmap. Float sums have a
  fixed order on every backend (see :func:`_between`): deterministic.
  """
  n = D.shape[0]
  k, mf = num_fairlets, max_size
  f = fairlet_of.astype(jnp.int32)
  idx = jnp.arange(n, dtype=jnp.int32)
  # members[a, s]: the s-th point of fairlet a (by index), n for padding.
  members, _ = fairlet_members(f, k, mf)
  real = members < n
  sizes = jnp.sum(real, axis=1).astype(jnp.int32)
  # First inner node of fairlet a.
  base = (n + jnp.cumsum(sizes - 1) - (sizes - 1)).astype(jnp.int32)

  between = _between(D, f, members)  # between[b, a] = d(Y_a, Y_b)
  safe_members = jnp.minimum(members, n - 1)

  m = 2 * n - 1
  parent = jnp.full(m, NO_PARENT, jnp.int32)
  height = jnp.zeros(m, D.dtype)
  fairlet_root = members[:, 0]  # singleton fairlets: the leaf itself

  if inner == "flat":
    # Fairlets of size >= 2 become nodes n, n+1, ... (in fairlet order) with
    # their points as children; singletons stay leaves; free slots at the end.
    big = sizes > 1
    node_of = (n + jnp.cumsum(big) - big).astype(jnp.int32)
    top = n + jnp.sum(big).astype(jnp.int32)  # first fairlet-level node
    parent = jnp.where(jnp.arange(m) < n, NO_PARENT, UNUSED).astype(jnp.int32)
    parent = parent.at[idx].set(jnp.where(big[f], node_of[f], NO_PARENT))
    flat_target = jnp.where(big, node_of, m)  # out of range: dropped
    parent = parent.at[flat_target].set(NO_PARENT, mode="drop")
    within = 0.5 * jnp.diagonal(between)  # d(Y_a)
    pairs = (sizes * (sizes - 1) // 2).astype(D.dtype)
    height = height.at[flat_target].set(within / jnp.maximum(pairs, 1), mode="drop")
    fairlet_root = jnp.where(big, node_of, fairlet_root)
  elif mf > 1:
    # Inside every fairlet at once: one padded mf x mf block per fairlet, the
    # padding at a distance above every real one so that the first s_a - 1
    # merges of block a join exactly its s_a real points; vmapped linkage.
    top = n + (n - k)
    blocks = D[safe_members[:, :, None], safe_members[:, None, :]]
    pair_real = real[:, :, None] & real[:, None, :]
    blocks = jnp.where(pair_real, blocks, _pad_distance(blocks, pair_real))
    blocks = jnp.where(jnp.eye(mf, dtype=bool), 0, blocks)
    sub = jax.vmap(lambda b: linkage_kernel(b, method="average"))(blocks)
    # Global id of local node x of fairlet a (leaves: points; merges: base+t).
    local = jnp.arange(2 * mf - 1, dtype=jnp.int32)[None, :]
    glob = jnp.where(local < mf,
                     jnp.concatenate([members, jnp.zeros((k, mf - 1), jnp.int32)], 1),
                     base[:, None] + local - mf)
    # Real local nodes below the fairlet's root: real leaves and the first
    # s_a - 2 merges (merge s_a - 2 is the fairlet root).
    below_root = jnp.where(local < mf,
                           jnp.concatenate([real, jnp.zeros((k, mf - 1), bool)], 1),
                           (local - mf) < (sizes[:, None] - 2))
    below_root = below_root & (sizes[:, None] > 1)
    gparent = jnp.take_along_axis(glob, jnp.maximum(sub.parent, 0), axis=1)
    target = jnp.where(below_root, glob, m)  # out of range: dropped
    parent = parent.at[target.ravel()].set(gparent.ravel(), mode="drop")
    is_merge = (local >= mf) & ((local - mf) < (sizes[:, None] - 1))
    htarget = jnp.where(is_merge, glob, m)
    height = height.at[htarget.ravel()].set(sub.height.ravel(), mode="drop")
    fairlet_root = jnp.where(sizes > 1, base + sizes - 2, fairlet_root)
  else:
    top = n

  # Over the fairlets: vertex-weighted average linkage on the mean
  # fairlet-to-fairlet distances d(Y_a, Y_b) / (|Y_a| |Y_b|).
  if k > 1:
    w = sizes.astype(D.dtype)
    mean = between / (w[:, None] * w[None, :])
    mean = jnp.where(jnp.eye(k, dtype=bool), 0, mean)
    outer = linkage_kernel(mean, method="average", weights=sizes)
    oglob = jnp.concatenate([fairlet_root, top + jnp.arange(k - 1, dtype=jnp.int32)])
    opar = jnp.where(outer.parent >= 0, oglob[jnp.maximum(outer.parent, 0)], NO_PARENT)
    parent = parent.at[oglob].set(opar)
    height = height.at[top + jnp.arange(k - 1, dtype=jnp.int32)].set(outer.height[k:])
  return Hierarchy(parent=parent, height=height)


def fairlet_tree(D: Any, decomposition: Decomposition, *,
                 inner: str = "linkage", validate: bool = True) -> Hierarchy:
  """The fair tree on a fairlet decomposition.

  Average linkage inside every fairlet (all fairlets at once: each fairlet's
  distances padded to ``max_size x max_size`` and the linkage kernel
  vmapped over fairlets), then vertex-weighted average linkage over the
  fairlets (a fairlet is a point of weight ``|Y_a|``; the linkage between
  fairlet clusters ``A, B`` is ``d(A, B) / (w(A) w(B))``), joined into one
  binary hierarchy on the ``n`` points.

  Fairness: every cluster that is a union of whole fairlets is fair (the
  notions are union-closed). With ``inner="linkage"`` (the paper's tree) the
  clusters strictly inside a fairlet are not fair (a fairlet has no fair
  split), so the tree is fair in the sense of the paper's footnote 1: it
  contains a layer of fairlets and every cluster at or above it is fair.
  With ``inner="flat"`` each fairlet is one node whose children are its
  points, so every non-leaf cluster is fair (Definition 5 exactly, and a
  node with a leaf child has only leaf children, Knittel et al.'s form);
  value can only rise and cost and revenue can only worsen against the
  paper's tree.

  Which ``inner`` is the default: ``"linkage"``, the paper's tree. Measured
  on the same searched fairlets (``benchmarks/fairlet_inner_compare.py``,
  n = 3,200, 2 samples; ``benchmarks/results/fairlet_inner_compare.txt``),
  each objective over plain average linkage's:

  ==============  =======  ========  =========  ======================
  data            inner    cost      value      internal nodes fair
  ==============  =======  ========  =========  ======================
  Census 1:3      linkage  1.1263    0.9993     79.2% (all in scope)
  Census 1:3      flat     1.1266    0.9993     100%
  Bank 1:2        linkage  1.0099    0.9984     88.7% (all in scope)
  Bank 1:2        flat     1.0099    0.9984     100%
  ==============  =======  ========  =========  ======================

  Flattening only changes the clusters inside fairlets (at most
  ``max_size`` points each), so both objectives move by less than 0.05%
  (value can only rise, cost only worsen). The default stays the paper's
  tree: it is binary (what downstream tools and the reductions expect), it
  keeps the (slightly) better cost, and its guarantee is stated exactly by
  the result's scope (``ClusterScope(blocks=fairlets)``), which the checks
  take, so a result checked with its own scope passes. Use ``"flat"`` when
  every internal node must pass an unscoped check (Definition 5 exactly,
  or Knittel et al.'s leaf-children rule).

  Node layout (``inner="linkage"``, a binary tree): leaves ``0..n-1``; then
  each fairlet's ``|Y_a| - 1`` merges, fairlet by fairlet; then the
  ``k - 1`` fairlet-level merges. (``"flat"``: the fairlet nodes, then the
  fairlet-level merges, then free slots.) Children always have smaller ids
  than their parents.

  Heights (raw, as built): an in-fairlet merge sits at its average-linkage
  distance inside the fairlet (a flat fairlet node: the mean pairwise
  distance of its points); a fairlet-level merge sits at the outer
  vertex-weighted average-linkage distance, i.e. the mean point-to-point
  distance ``d(A, B) / (|A| |B|)`` between the two merged groups of
  fairlets. Each part is monotone on its own (average linkage is), but the
  whole need not be: a fairlet is chosen for fairness, so its points (e.g.
  a minority point and its majority partners) can be further apart than
  two neighbouring fairlets are on average, and then a fairlet-level merge
  sits below an in-fairlet merge (at n = 3,200: 18% of the internal nodes
  on Census, 20% on Bank sit below one of their children). The raw heights are kept (they are the distances the
  tree was built from); :func:`fairhc_jax.interop.to_linkage` makes them
  monotone for SciPy (each node at least as high as its children).

  Args:
    D: ``float[n, n]`` symmetric distances with a zero diagonal.
    decomposition: a :class:`~fairhc_jax.fairlets.Decomposition` of the
      ``n`` points.
    inner: ``"linkage"`` (default) or ``"flat"``.
    validate: ``False`` skips the value checks of ``D`` (already checked).

  Returns:
    A :class:`Hierarchy` with heights.
  """
  fn = "fairlet_tree"
  _checks.check_choice(fn, "inner", inner, INNER)
  D = _checks.check_square_matrix(fn, "D", D, zero_diagonal=True, validate=validate)
  if not isinstance(decomposition, Decomposition):
    _checks.fail(fn, "decomposition", "be a Decomposition",
                 type(decomposition).__name__, TypeError)
  if decomposition.fairlet_of.shape != (D.shape[0],):
    _checks.fail(fn, "decomposition", f"cover the {D.shape[0]} points of D",
                 f"fairlet_of of shape {tuple(decomposition.fairlet_of.shape)}")
  return _fairlet_tree_kernel(D, decomposition.fairlet_of,
                              decomposition.num_fairlets, decomposition.max_size,
                              inner)


class FairHCStats(NamedTuple):
  """Statistics of one run of :func:`fair_hierarchical_clustering`.

  Attributes:
    num_fairlets: ``k``.
    max_fairlet_size: the largest fairlet.
    phi_before: ``phi`` of the initial random decomposition.
    phi_after: ``phi`` after the local search.
    ratio_fairlets_before: ``phi_before / d(V)``.
    ratio_fairlets_after: ``phi_after / d(V)``.
    swaps: swaps accepted by the local search.
    steps: its steps (rounds of ``n`` trials for ``"random"``).
    trials: swap candidates it examined.
    time_distances: seconds for the distance matrix (precomputed: 0, or the
      colour-sorted copy when one was made).
    time_decomposition: seconds for the initial decomposition.
    time_local_search: seconds for the local search.
    time_tree: seconds for the fair tree.
    time_order: seconds to put the distances back into the caller's point
      order after a colour-sorted run (0 when the points came sorted or the
      run stayed in the caller's order; see "Point order" in
      :func:`fair_hierarchical_clustering`).
  """

  num_fairlets: int
  max_fairlet_size: int
  phi_before: float
  phi_after: float
  ratio_fairlets_before: float
  ratio_fairlets_after: float
  swaps: int
  steps: int
  trials: int
  time_distances: float
  time_decomposition: float
  time_local_search: float
  time_tree: float
  time_order: float = 0.0


class FairHCResult(NamedTuple):
  """The result of :func:`fair_hierarchical_clustering`.

  Attributes:
    hierarchy: the fair tree, a :class:`Hierarchy` on the ``n`` points.
    fairlets: ``int32[n]``, the fairlet of each point (the tree's bottom
      fair layer).
    stats: :class:`FairHCStats`.
    distances: ``float[n, n]``, the distance matrix used, in the caller's
      point order (handy for the objectives; the input itself when
      ``metric="precomputed"``). After a colour-sorted run (see "Point
      order" in :func:`fair_hierarchical_clustering`) it is the sorted
      run's matrix permuted back in place: bitwise the entries the tree
      was built from.
    scope: the :class:`~fairhc_jax.fairness.ClusterScope` the fairness
      guarantee holds for: ``ClusterScope(blocks=fairlets)`` ("every
      cluster at and above the fairlets") for ``inner="linkage"``,
      ``ClusterScope()`` (every internal node) for ``inner="flat"``. So
      ``check_fairness(res.hierarchy, colors, res.constraint,
      scope=res.scope)`` passes. (With ``inner="linkage"``,
      ``ClusterScope(min_size=stats.max_fairlet_size)`` passes too: a
      cluster strictly inside a fairlet has fewer points than the largest
      fairlet.)
    constraint: the constraint the tree was built for (``Balance(b, r)``
      or ``BoundedRepresentation(Fraction(1, t))``; the aliases
      ``balance=`` / ``alpha=`` are stored as these).
  """

  hierarchy: Hierarchy
  fairlets: jax.Array
  stats: FairHCStats
  distances: jax.Array
  scope: ClusterScope
  constraint: Any

  def objectives(self, similarity=None) -> TreeObjectives:
    """Cost, revenue, value and both bounds of the fair tree, one pass over ``distances``.

    :func:`fairhc_jax.objectives.tree_objectives` on the pipeline's own
    (already checked) matrix: no re-validation, no similarity matrix.

    Args:
      similarity: ``None`` (``1 / (1 + d)``) or an elementwise function.
    """
    n = self.distances.shape[0]
    return tree_objectives_kernel(self.hierarchy, self.distances,
                                  jnp.ones(n, jnp.result_type(int)), similarity=similarity)


def _ready(x):
  return jax.block_until_ready(x)


def pipeline_bytes(n: int, k: int, dtype, *, precomputed: bool = False,
                   sorted_copy: bool = False) -> int:
  """Bytes of the pipeline's large buffers for ``n`` points and ``k`` fairlets.

  The ``n x n`` distances (not counted when precomputed: they exist
  already), the ``k x n`` fairlet table and the transposed copy the full
  swap step reads, and the ``k x k`` fairlet distances and their means.
  ``sorted_copy``: plus one ``n x n`` copy (a precomputed matrix permuted
  into colour order, see :func:`fair_hierarchical_clustering`).
  """
  item = np.dtype(dtype).itemsize
  d = 0 if precomputed else n * n * item
  d += n * n * item if sorted_copy else 0
  return int(d + 2 * k * n * item + 2 * k * k * item)


SORT_MIN_POINTS = 2048
"""Below this many points :func:`fair_hierarchical_clustering` keeps the
caller's order (a small run is compile-bound: the colour-sorted run's extra
kernels, the permutations and the colour-block search, cost more than they
save there). Tests lower it to run the sorted path on small inputs."""


def colour_order(colors: Any) -> Optional[np.ndarray]:
  """``int[n]`` stable argsort of a concrete colouring, ``None`` if already sorted.

  Host-side (NumPy). ``order[p]`` is the caller's index of the point at
  position ``p`` of the colour-sorted order.
  """
  c = np.asarray(colors)
  if c.size < 2 or not np.any(np.diff(c) < 0):
    return None
  return np.argsort(c, kind="stable").astype(np.int32)


def _move_plan(order: np.ndarray):
  """Row moves that permute a matrix in place, cycle by cycle (NumPy).

  For ``out[i] = in[order[i]]`` (every row read before it is overwritten):
  ``dst[t]``, ``src[t]`` and two flags: ``save[t]`` (copy row ``dst[t]``
  into the spare row first: the start of a cycle) and ``from_spare[t]``
  (take the spare row instead of ``src[t]``: the end of a cycle).
  """
  n = order.shape[0]
  dst = np.empty(n, np.int32)
  src = np.empty(n, np.int32)
  save = np.zeros(n, bool)
  spare = np.zeros(n, bool)
  seen = np.zeros(n, bool)
  t = 0
  for start in range(n):
    if seen[start]:
      continue
    i = start
    save[t] = True
    while True:
      seen[i] = True
      j = int(order[i])
      dst[t] = i
      if j == start:
        src[t] = start
        spare[t] = True
        t += 1
        break
      src[t] = j
      t += 1
      i = j
  return dst, src, save, spare


@functools.partial(jax.jit, donate_argnums=0)
def _permute_in_place(D, order, dst, src, save, from_spare):
  """``D[order][:, order]`` written over ``D`` (donated): one spare row, no copy.

  ``n`` row moves along the permutation's cycles (:func:`_move_plan`); each
  moved row is also permuted along its columns. Pure data movement: the
  result equals ``D[order][:, order]`` bitwise. ``D: float[n, n]``,
  ``order: int32[n]`` (a permutation), the plan ``int32[n]``/``bool[n]``.
  """
  n = D.shape[0]

  def body(t, carry):
    M, spare = carry
    d = dst[t]
    spare = jnp.where(save[t], jax.lax.dynamic_index_in_dim(M, d, keepdims=False), spare)
    row = jnp.where(from_spare[t], spare,
                    jax.lax.dynamic_index_in_dim(M, src[t], keepdims=False))
    return jax.lax.dynamic_update_index_in_dim(M, row[order], d, 0), spare

  M, _ = jax.lax.fori_loop(0, n, body, (D, jnp.zeros(n, D.dtype)))
  return M


def permute_in_place(D: jax.Array, order: Any) -> jax.Array:
  """``D[order][:, order]`` without a second ``n x n`` buffer (``D`` is donated).

  ``D`` must not be used afterwards (its buffer now holds the result on
  backends that donate; elsewhere JAX copies and warns).

  Args:
    D: ``float[n, n]``.
    order: ``int[n]``, a permutation of ``0..n-1`` (concrete).

  Returns:
    ``float[n, n]``, ``out[i, j] = D[order[i], order[j]]``.

  Raises:
    ValueError: ``D`` not square or ``order`` not a permutation of its rows.
  """
  fn = "permute_in_place"
  shape = tuple(getattr(D, "shape", ()))
  if len(shape) != 2 or shape[0] != shape[1]:
    _checks.fail(fn, "D", "be a square matrix float[n, n]", f"shape {shape}")
  o = np.asarray(order)
  n = shape[0]
  if (o.shape != (n,) or o.dtype.kind not in "iu"
      or not np.array_equal(np.sort(o), np.arange(n))):
    _checks.fail(fn, "order", f"be a permutation of 0..{n - 1} (int[{n}])",
                 _checks.describe(o))
  order = o.astype(np.int32)
  plan = _move_plan(order)
  return _permute_in_place(D, jnp.asarray(order), *(jnp.asarray(p) for p in plan))


@jax.jit
def _permuted_copy(D, order):
  """``float[n, n]``: ``D[order][:, order]`` (a new matrix)."""
  return D[order[:, None], order[None, :]]


@jax.jit
def _unsort_outputs(parent, height, fairlet_of, order):
  """Maps a tree and fairlets on colour-sorted positions back to the caller's points.

  Leaf ``p`` of the sorted run is the caller's point ``order[p]``; internal
  nodes keep their ids (children stay below parents).
  """
  n = order.shape[0]
  parent = parent.at[order].set(parent[:n])
  height = height.at[order].set(height[:n])
  f = jnp.zeros_like(fairlet_of).at[order].set(fairlet_of)
  return parent, height, f


def fair_hierarchical_clustering(
    key: jax.Array,
    X: Any,
    colors: Any,
    *,
    constraint: Any = None,
    balance: Optional[Sequence[int]] = None,
    alpha: Optional[Any] = None,
    schedule: Optional[str] = "fast",
    eps: float = 0.1,
    metric: str = "euclidean",
    inner: str = "linkage",
    max_steps: Optional[int] = None,
    progress="auto",
    start: str = "random",
) -> FairHCResult:
  """Fair hierarchical clustering by fairlets, local search and average linkage.

  Example::

    res = fair_hierarchical_clustering(jax.random.key(0), X, colors,
                                       constraint=Balance(1, 3))
    check_fairness(res.hierarchy, colors, res.constraint, scope=res.scope)

  Args:
    key: PRNG key (consumed: split for the decomposition and the search).
    X: ``float[n, d]`` points (Euclidean distances), or ``float[n, n]``
      distances with ``metric="precomputed"``.
    colors: ``int[n]`` protected colours in ``[0, c)``, every colour present.
    constraint: the fairness target, one of the constraint types the checks
      take: ``Balance(b, r)`` (two colours, every cluster at or above the
      fairlets with ``min/max >= b/r``; integers ``1 <= b <= r``) or
      ``BoundedRepresentation(1/t)`` (any number of colours, no colour above
      a share of ``1/t``; exactly ``1/t``). Read exactly, as the checks do
      (see :mod:`fairhc_jax.fairlets`).
    balance: alias: ``balance=(b, r)`` is ``constraint=Balance(b, r)``.
    alpha: alias: ``alpha=1/t`` is ``constraint=BoundedRepresentation(1/t)``.
      Give exactly one of ``constraint``, ``balance`` and ``alpha``.
    schedule: ``"fast"`` (default), ``"random"`` (the authors' schedule) or
      ``None`` (keep the random decomposition; ``"none"`` is an alias).
    eps: ``eps > 0`` of the local search's acceptance rule (paper: 0.1).
    metric: ``"euclidean"`` (``X`` holds points) or ``"precomputed"``.
    inner: ``"linkage"`` (default: the paper's average-linkage subtree in
      each fairlet) or ``"flat"`` (one node per fairlet, so that every
      non-leaf cluster is fair); see :func:`fairlet_tree` and the measured
      comparison there.
    max_steps: optional cap on local-search steps.
    progress: a progress line for the local search on stderr: ``"auto"``
      (shown once it has run 2 s), ``True`` or ``False``.
    start: the local search's starting decomposition: ``"random"`` (default,
      the paper's: the random fair decomposition) or ``"projection"`` (the
      same fairlet colour counts, each colour's points placed in the order
      of their first principal component, or of their distance to a far
      point with ``metric="precomputed"``; :func:`fairhc_jax.fairlets.spread_by_score`).
      Both start from a valid decomposition, so the search's guarantee is the
      same. Measured on the first 8,000 Census points (gender,
      ``Balance(1, 3)``, one run each): ``"projection"``
      needed 3,615 swaps in 44 steps against 11,913 in 87 (local search
      2.4 s against 7.8 s) and ended at a lower fairlet cost (phi 2.51e7
      against 2.90e7; value / upper bound 0.8441 against 0.8438).

  Returns:
    A :class:`FairHCResult` with ``.hierarchy``, ``.fairlets``, ``.stats``,
    ``.distances``, ``.scope`` and ``.constraint``.

  Point order: the fast local search computes each point's swaps over its
  own colour's contiguous block of columns only
  (:func:`fairhc_jax.fairlets.color_blocks`; 5/9 of each row for Census
  gender), which needs the points sorted by colour. So when ``colors`` is
  not non-decreasing (and ``n >= SORT_MIN_POINTS``), the run works on the
  colour-sorted order ``order = np.argsort(colors, kind="stable")`` and
  maps every output back: ``hierarchy`` (leaf ``order[p]`` takes the sorted
  run's leaf ``p``; internal node ids unchanged), ``fairlets``, ``scope``
  and ``distances`` are all in the caller's point order, and the result
  equals that of calling with ``X[order], colors[order]`` up to that
  relabelling of the points (the same tree, fairlets, statistics and
  objective values; tested). The distances: with points, ``D`` is computed
  in sorted order and, after the tree, permuted back into the caller's
  order in place (:func:`permute_in_place`: one spare row, never a second
  ``n x n`` matrix; ``stats.time_order``); with ``metric="precomputed"``
  the caller's matrix is copied into sorted order (a second ``n x n``
  matrix, freed before returning; ``stats.time_distances``) when the
  memory guard finds room for it, and otherwise the run stays in the
  caller's order (the same guarantees; the random decomposition is the
  same, the search may then break ties differently). The copy pays for
  itself: on the first 8,000 Census points (warm, measured while other
  jobs ran) it took 0.35 s and the search 7.3 s, against 23.5 s in the
  caller's order. Census, 30,162
  points, gender, ``Balance(1, 3)``, quiet 2-core CPU: the local search
  took 163.4 s in the file's order and 80.0 s sorted
  (``benchmarks/bench_whole_data.py --data census`` with and without
  ``--keep-order``).

  Raises:
    ValueError: bad inputs or an infeasible fairness request (the message
      names the colour and its counts).
  """
  fn = "fair_hierarchical_clustering"
  _checks.check_key(fn, key)
  if schedule == "none":
    schedule = None
  if schedule is not None:
    _checks.check_choice(fn, "schedule", schedule, SCHEDULES + (None,))
  _checks.check_choice(fn, "metric", metric, METRICS)
  _checks.check_choice(fn, "inner", inner, INNER)
  eps = check_eps(fn, eps)
  target, kind, params = _fl.as_constraint(fn, constraint, balance=balance, alpha=alpha)
  if max_steps is not None:
    max_steps = _checks.check_positive_int(fn, "max_steps", max_steps, minimum=0)
  progress = _progress.check_mode(fn, progress)
  # Validate everything cheap before the O(n^2) work.
  if metric == "precomputed":
    x = _checks.as_float(fn, "X", X)
    if x.ndim != 2 or x.shape[0] != x.shape[1]:
      _checks.fail(fn, "X", "be a square distance matrix float[n, n] with "
                   "metric='precomputed'", f"shape {tuple(x.shape)}")
  else:
    x = _checks.check_points(fn, "X", X)
  n = x.shape[0]
  c, _ = _checks.check_colors(fn, "colors", colors, n, batched=False)
  k_dec, k_search = jax.random.split(key)
  _checks.check_choice(fn, "start", start, STARTS)
  # Colour order (see "Point order" above): the decomposition is always drawn
  # on the colour-sorted positions; the run works on them and maps every
  # output back. A precomputed matrix is permuted into a copy only when a
  # second n x n matrix fits; otherwise the run stays in the caller's order.
  order = (colour_order(c) if _checks.is_concrete(c) and n >= SORT_MIN_POINTS
           else None)
  c_run = c if order is None else c[jnp.asarray(order)]

  t0 = time.perf_counter()
  if kind == "balance":
    dec = _fl._balance_decomposition(fn, k_dec, c_run, *params)
  else:
    dec = _fl._capped_decomposition(fn, k_dec, c_run, params)
  _ready(dec.fairlet_of)
  t_dec = time.perf_counter() - t0
  precomputed = metric == "precomputed"
  if order is not None and precomputed:
    free = _memory.free_bytes()
    need = pipeline_bytes(n, dec.num_fairlets, x.dtype, precomputed=True, sorted_copy=True)
    if _memory.ENABLED and free is not None and need > _memory.HEADROOM * free:
      f_caller = jnp.zeros(n, jnp.int32).at[jnp.asarray(order)].set(dec.fairlet_of)
      dec = Decomposition(fairlet_of=f_caller, num_fairlets=dec.num_fairlets,
                          max_size=dec.max_size)
      order, c_run = None, c
  copy = order is not None and precomputed
  # Before any O(n^2) buffer: the decomposition (O(n)) gives k exactly.
  _memory.check_memory(fn, n, pipeline_bytes(n, dec.num_fairlets, x.dtype,
                                             precomputed=precomputed, sorted_copy=copy),
                       what=("a colour-sorted copy of the distance matrix" if copy
                             else "the distance matrix")
                       + f", the {dec.num_fairlets} x {n} fairlet "
                       "table and its transpose and the fairlet-to-fairlet distances")

  t0 = time.perf_counter()
  if metric == "precomputed":
    D_in = _checks.check_square_matrix(fn, "X", x, zero_diagonal=True)
    D = D_in if order is None else _ready(_permuted_copy(D_in, jnp.asarray(order)))
  else:
    D = _ready(pairwise_distances(x if order is None else x[jnp.asarray(order)]))
  t_dist = time.perf_counter() - t0 if (copy or not precomputed) else 0.0

  if start == "projection":
    t0 = time.perf_counter()
    if precomputed:   # the distances to the point farthest from point 0
      scores = D[jnp.argmax(D[0])]
    else:
      scores = _fl._principal_scores(x if order is None else x[jnp.asarray(order)])
    dec = _fl.spread_by_score(jax.random.fold_in(k_dec, 1), dec, c_run, scores)
    _ready(dec.fairlet_of)
    t_dec += time.perf_counter() - t0

  t0 = time.perf_counter()
  search = local_search(schedule or "fast", eps)
  state = search.init(D, dec, key=k_search)
  phi_before = float(state.phi)
  if schedule is not None:
    cap = _fl._NO_CAP if max_steps is None else max_steps
    state = _fl._drive(search, state, D, c_run, cap, progress)
  _ready(state.phi)
  t_ls = time.perf_counter() - t0
  final = Decomposition(fairlet_of=state.fairlet_of, num_fairlets=dec.num_fairlets,
                        max_size=dec.max_size)

  t0 = time.perf_counter()
  h = _ready(_fairlet_tree_kernel(D, final.fairlet_of, final.num_fairlets,
                                  final.max_size, inner))
  t_tree = time.perf_counter() - t0

  total = float(0.5 * jnp.sum(D))
  phi_after = float(state.phi)
  t_order = 0.0
  counts = dict(swaps=int(state.swaps), steps=int(state.steps), trials=int(state.trials))
  fairlet_of = final.fairlet_of
  if order is not None:
    parent, height, fairlet_of = _unsort_outputs(h.parent, h.height, fairlet_of,
                                                 jnp.asarray(order))
    h = Hierarchy(parent=parent, height=height)
    del state, final  # the sorted-order buffers
    if metric == "precomputed":
      D.delete()  # the sorted copy; the caller's matrix is the result's
      D = D_in
    else:
      inv = np.empty(n, np.int32)
      inv[order] = np.arange(n, dtype=np.int32)
      t0 = time.perf_counter()
      D = _ready(permute_in_place(D, inv))  # back to the caller's order, in place
      t_order = time.perf_counter() - t0
  ratio = (lambda p: p / total if total > 0 else 0.0)
  stats = FairHCStats(
      num_fairlets=dec.num_fairlets, max_fairlet_size=dec.max_size,
      phi_before=phi_before, phi_after=phi_after,
      ratio_fairlets_before=ratio(phi_before), ratio_fairlets_after=ratio(phi_after),
      **counts, time_distances=t_dist, time_decomposition=t_dec, time_local_search=t_ls,
      time_tree=t_tree, time_order=t_order)
  scope = (ClusterScope(blocks=fairlet_of) if inner == "linkage"
           else ClusterScope())
  return FairHCResult(hierarchy=h, fairlets=fairlet_of, stats=stats, distances=D,
                      scope=scope, constraint=target)
