"""Agglomerative clustering: Lance-Williams linkage kernels.

(The module is `agglomerative`, not `linkage`, so that the package-level
function `fairhc_jax.linkage` does not shadow it: `import fairhc_jax.linkage
as m` would silently bind the function.)

Public entry points:

* :func:`linkage` (distance matrix) and :func:`linkage_from_points` (points;
  distances computed blockwise by :func:`fairhc_jax.distances.pairwise_distances`)
  return a binary :class:`~fairhc_jax.hierarchy.Hierarchy` with merge heights.
  Internal node ``n + t`` is the ``t``-th merge and its height is the merge
  distance (SciPy's convention), so ``to_linkage`` gives SciPy's ``Z``.
  ``algorithm=`` picks the kernel: ``"sequential"`` (this module's, one
  merge per step, below), ``"rnn"`` (:mod:`fairhc_jax.rnn_linkage`: rounds
  in which all reciprocal nearest neighbours merge at once, the same tree)
  or ``"auto"`` (:func:`resolve_algorithm`); ``return_stats=True`` also
  returns the rounds' statistics.
* The reusable pieces, for algorithms that choose pairs their own way (the
  fair agglomerative method): :func:`lance_williams` (the update formula),
  :class:`LinkageState` with :func:`init_state`, :func:`merge` (merge one pair,
  update the matrix, record the merge), :func:`agglomerate` (the merge loop
  around a user ``choose_pair``), :func:`closest_pair` (the plain rule) and
  :func:`to_hierarchy`.

Methods (``d`` = distance, ``n_*`` = cluster sizes, ``k`` any other cluster):

=========== ================================================================
"single"    ``d(k, i+j) = min(d(k, i), d(k, j))``
"complete"  ``max(d(k, i), d(k, j))``
"average"   UPGMA: ``(n_i d(k, i) + n_j d(k, j)) / (n_i + n_j)``, i.e. the
            mean distance between the clusters' points; with ``weights``,
            ``d(A, B) / (w(A) w(B))`` with ``d(A, B)`` the weighted sum.
"weighted"  WPGMA: ``(d(k, i) + d(k, j)) / 2``
"ward"      Ward's minimum variance, from *Euclidean* distances (as SciPy):
            the kernel works on squared distances
            ``((n_i+n_k) d2(k,i) + (n_j+n_k) d2(k,j) - n_k d2(i,j)) / (n_i+n_j+n_k)``
            and reports heights as their square roots.
=========== ================================================================

``weights`` (positive integers, one per point) are the initial cluster sizes
``n_i``: they change "average" and "ward" and are ignored by the other three.
Point ``i`` stands for ``weights[i]`` coincident points: average (and Ward)
linkage with weights equals plain average (Ward) linkage on the point set in
which point ``i`` is repeated ``weights[i]`` times, after the zero-height
merges among the copies. That is what the fairlet method needs. (For Ward the
initial squared distances are scaled by ``2 w_i w_j / (w_i + w_j)`` to make
this hold.)

Algorithm (``linkage``): cached row minima. Every active slot ``k`` keeps a
lower bound of the distance to its nearest active slot (exact, with the
neighbour's index, unless the row is marked stale). A step pops the row with
the smallest bound, re-scanning it first while it is stale (lazy re-scans:
only rows that reach the top are re-read), merges it with its neighbour into
the smaller slot ``i`` (slot ``j`` is retired), writes the updated row ``i``
and the same values into column ``i`` (the matrix stays symmetric, so every
later read is a contiguous row), and marks stale the exact rows whose
neighbour was ``i`` or ``j``. All five methods are reducible
(``d(k, i+j) >= min(d(k, i), d(k, j))``), so no bound can become too high. A
step costs O(n) plus O(n) per re-scan (about 1.8 per merge on random data,
O(n^2) in total in practice); memory is one working copy of the matrix
(the input buffer itself with ``overwrite=True``). The merges run in phases:
when half the active slots are left they are compacted into a matrix of half
the size (from n >= 2048 on), which saves about a third of the memory
traffic, dominated by the strided column writes. Minima are found with
``min`` and a masked ``min`` over indices (``argmin`` is slow on XLA:CPU).
``"single"`` instead runs Prim's minimum spanning tree on the matrix (one
row read per step, no writes) and labels the MST edges sorted by weight.

Tie-breaking (deterministic): among the closest pairs a step merges the pair
of clusters ``(A, B)`` whose smallest points ``a < b`` have the smallest
``a`` and then the smallest ``b`` (slots are kept in that order). The new
internal node takes the next index, so merges at equal heights keep their
order. ``"single"``: equal-weight MST edges merge in the order Prim's
algorithm (started at point 0, first index on ties) added them; single
linkage's cophenetic distances do not depend on ties.

Precision: float32 by default, float64 under x64 (the input matrix's float
dtype is kept). Heights are the values the Lance-Williams recurrences produce
in that precision.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax import distances as _distances
from fairhc_jax import memory as _memory
from fairhc_jax.hierarchy import NO_PARENT, Hierarchy

METHODS = ("average", "single", "complete", "weighted", "ward")
"""Valid values of ``method``."""

_SIZE_METHODS = ("average", "ward")  # methods whose update uses cluster sizes
_WARD_CHECK_MAX_N = 1000  # Euclidean-embeddability check for "ward" up to this n


# ---------------------------------------------------------------------------
# The update formula and the merge state.


def lance_williams(method: str, d_ki, d_kj, d_ij, n_i, n_j, n_k):
  """The Lance-Williams update: distance from ``k`` to the merged ``i + j``.

  Elementwise and broadcasting (``d_ki, d_kj, n_k`` are typically ``float[n]``
  rows, the rest scalars). For ``"ward"`` all distances are *squared*
  Euclidean distances.

  Args:
    method: one of :data:`METHODS` (static).
    d_ki: ``float[...]``, distances from ``k`` to ``i``.
    d_kj: ``float[...]``, distances from ``k`` to ``j``.
    d_ij: ``float[]``, the distance between the merged clusters.
    n_i: ``float[]``, size (total weight) of cluster ``i``.
    n_j: ``float[]``, size of cluster ``j``.
    n_k: ``float[...]``, sizes of the clusters ``k``.

  Returns:
    ``float[...]``, ``d(k, i + j)``.
  """
  if method == "single":
    return jnp.minimum(d_ki, d_kj)
  if method == "complete":
    return jnp.maximum(d_ki, d_kj)
  if method == "average":
    return (n_i * d_ki + n_j * d_kj) / (n_i + n_j)
  if method == "weighted":
    return 0.5 * (d_ki + d_kj)
  if method == "ward":
    return ((n_i + n_k) * d_ki + (n_j + n_k) * d_kj - n_k * d_ij) / (
        n_i + n_j + n_k)
  raise ValueError(f"lance_williams: method must be one of "
                   f"{', '.join(repr(m) for m in METHODS)}, got {method!r}")


class LinkageState(NamedTuple):
  """State of an agglomeration over ``n`` points (``m = 2n - 1`` tree slots).

  Cluster *slots* are the rows of ``dist``. After :func:`init_state` slot
  ``s`` holds point ``s``; :func:`merge` keeps the smaller slot and retires
  the other, so slot ``s`` holds the cluster whose smallest point is ``s``.
  (The fast kernel also compacts slots, keeping their order.)

  Attributes:
    dist: ``float[n, n]``, current linkage distances between active slots
      (squared for ``"ward"``), symmetric; ``+inf`` on the diagonal. Rows and
      columns of retired slots hold stale values: mask them with ``alive``.
    size: ``float[n]``, cluster sizes (sums of vertex weights).
    alive: ``bool[n]``, which slots hold a cluster.
    node: ``int32[n]``, the hierarchy node of each slot's cluster.
    parent: ``int32[m]``, the tree built so far (``NO_PARENT`` = not merged yet).
    height: ``float[m]``, merge heights (plain distances, also for ward).
    num_merges: ``int32[]``, merges done; the next merge creates node
      ``n + num_merges``.
  """

  dist: jax.Array  # float[n, n]
  size: jax.Array  # float[n]
  alive: jax.Array  # bool[n]
  node: jax.Array  # int32[n]
  parent: jax.Array  # int32[2n-1]
  height: jax.Array  # float[2n-1]
  num_merges: jax.Array  # int32[]


def init_state(dist: jax.Array, weights: Optional[jax.Array] = None,
               method: str = "average") -> LinkageState:
  """The state before any merge: every point is its own cluster.

  Jittable; does not validate (the public entry points do).

  Args:
    dist: ``float[n, n]`` distances (plain Euclidean for ``"ward"``; they are
      squared here).
    weights: optional ``int[n]`` or ``float[n]`` initial cluster sizes
      (default all ones).
    method: one of :data:`METHODS` (static).

  Returns:
    A :class:`LinkageState`.
  """
  n = dist.shape[0]
  dtype = dist.dtype
  size = (jnp.ones(n, dtype) if weights is None
          else jnp.asarray(weights).astype(dtype))
  if method == "ward":
    dist = dist * dist
    if weights is not None:
      # Point i stands for size[i] coincident points: Ward's distance between
      # two such groups is 2 w_i w_j / (w_i + w_j) times the squared distance.
      dist = dist * (2 * size[:, None] * size[None, :]
                     / (size[:, None] + size[None, :]))
  # The diagonal as n single-element writes (in place on a donated or
  # temporary matrix), not a whole-matrix select into a fresh n x n buffer.
  diag = jnp.arange(n, dtype=jnp.int32)
  dist = dist.at[diag, diag].set(jnp.asarray(jnp.inf, dtype))
  m = 2 * n - 1
  return LinkageState(
      dist=dist,
      size=size,
      alive=jnp.ones(n, bool),
      node=jnp.arange(n, dtype=jnp.int32),
      parent=jnp.full(m, NO_PARENT, jnp.int32),
      height=jnp.zeros(m, dtype),
      num_merges=jnp.zeros((), jnp.int32),
  )


def merge(state: LinkageState, a, b, method: str, d_ab=None):
  """Merges the clusters in slots ``a`` and ``b`` (``a != b``, both alive).

  Applies the Lance-Williams update to row and column ``i = min(a, b)``
  (written in place when the state is a loop carry), retires slot
  ``j = max(a, b)`` and records the merge as node ``n + num_merges``.

  Args:
    state: the current :class:`LinkageState`.
    a: ``int32[]`` slot.
    b: ``int32[]`` slot.
    method: one of :data:`METHODS` (static).
    d_ab: optional ``float[]``, the current ``dist[a, b]`` when the caller
      already holds it (the fast kernel's exact cached row minimum; for
      ``"ward"`` the squared distance). Then every read of the matrix in
      the step feeds the in-place writes, so XLA updates the matrix in place
      on any backend without copying it (checked by a test on the compiled
      loop); otherwise it is read from the matrix.

  Returns:
    ``(new_state, row)``: ``row`` is ``float[n]``, the new distances from
    the merged cluster to every slot (``+inf`` for retired slots and for
    ``i`` itself), as stored in row ``i``.
  """
  dist = state.dist
  n = dist.shape[0]
  i = jnp.minimum(a, b).astype(jnp.int32)
  j = jnp.maximum(a, b).astype(jnp.int32)
  row_i = jax.lax.dynamic_index_in_dim(dist, i, 0, keepdims=False)
  row_j = jax.lax.dynamic_index_in_dim(dist, j, 0, keepdims=False)
  if d_ab is None:
    # Rows in buffers of their own: fused into the two in-place writes
    # below, the row reads made the second write read the matrix the first
    # one had overwritten, and XLA copied the whole matrix twice per step
    # (the agglomerate() loop with closest_pair; the compiled HLO showed
    # copy(dist) before the row write and copy(result) after the column
    # write). A one-element write gives each row its own buffer.
    row_i = row_i.at[0].set(row_i[0])
    row_j = row_j.at[0].set(row_j[0])
  d_ij = row_i[j] if d_ab is None else jnp.asarray(d_ab, dist.dtype)
  n_i = state.size[i]
  n_j = state.size[j]
  idx = jnp.arange(n, dtype=jnp.int32)
  alive = state.alive.at[j].set(False)
  new = lance_williams(method, row_i, row_j, d_ij, n_i, n_j, state.size)
  new = jnp.where(alive & (idx != i), new, jnp.asarray(jnp.inf, dist.dtype))
  dist = jax.lax.dynamic_update_slice(dist, new[None, :], (i, jnp.int32(0)))
  dist = jax.lax.dynamic_update_slice(dist, new[:, None], (jnp.int32(0), i))
  t = state.num_merges
  num_leaves = (state.parent.shape[0] + 1) // 2  # not n: slots may be compacted
  new_node = (num_leaves + t).astype(jnp.int32)
  parent = state.parent.at[state.node[i]].set(new_node)
  parent = parent.at[state.node[j]].set(new_node)
  h = jnp.sqrt(jnp.maximum(d_ij, 0)) if method == "ward" else d_ij
  height = state.height.at[new_node].set(h)
  new_state = LinkageState(
      dist=dist,
      size=state.size.at[i].set(n_i + n_j),
      alive=alive,
      node=state.node.at[i].set(new_node),
      parent=parent,
      height=height,
      num_merges=t + 1,
  )
  return new_state, new


def _first_min(x: jax.Array):
  """``(min(x), smallest index attaining it)`` without ``argmin`` (slow on CPU)."""
  m = jnp.min(x)
  idx = jnp.arange(x.shape[0], dtype=jnp.int32)
  return m, jnp.min(jnp.where(x == m, idx, x.shape[0])).astype(jnp.int32)


def closest_pair(state: LinkageState):
  """The plain rule: the closest pair of active slots, as ``(a, b)``, ``a < b``.

  Scans the whole matrix (O(n^2) per call): meant for small ``n`` or as the
  reference rule of :func:`agglomerate`. Ties: smallest ``a``, then ``b``.
  """
  dist = state.dist
  masked = jnp.where(state.alive[:, None] & state.alive[None, :], dist,
                     jnp.asarray(jnp.inf, dist.dtype))
  row_min = jnp.min(masked, axis=1)
  _, a = _first_min(row_min)
  _, b = _first_min(jax.lax.dynamic_index_in_dim(masked, a, 0, keepdims=False))
  return a, b


def agglomerate(state: LinkageState,
                choose_pair: Callable[[LinkageState], tuple],
                method: str,
                num_merges: Optional[int] = None) -> LinkageState:
  """The merge loop with a pluggable pair rule.

  Runs ``num_merges`` steps (default ``n - 1``, a full tree) of
  ``a, b = choose_pair(state); state = merge(state, a, b, method)`` in a
  ``fori_loop``. ``choose_pair`` must return two distinct active slots; it
  sees the whole state (distances, sizes, the active mask, the tree so far),
  so fairness-aware rules can add their own per-slot data by closing over
  arrays indexed by ``state.node``. Jittable and vmappable (``method`` and
  ``num_merges`` static).

  Stopping early (``num_merges < n - 1``) leaves several roots
  (``parent == NO_PARENT``) in ``state.parent``: the active clusters.

  The closest-pair rule reads the whole matrix every step (O(n^2) per
  step). The matrix itself is updated in place: :func:`merge` gives the two
  rows their own buffers, without which XLA copied the whole matrix twice
  per step (a test checks the compiled loop). A rule that knows ``d(a, b)``
  can run its own loop over ``merge(..., d_ab=...)``, as the fast kernel
  does.

  Args:
    state: from :func:`init_state`.
    choose_pair: ``LinkageState -> (int32[], int32[])``.
    method: one of :data:`METHODS` (static).
    num_merges: number of merges (static).

  Returns:
    The final :class:`LinkageState`.
  """
  n = state.dist.shape[0]
  steps = n - 1 if num_merges is None else num_merges

  def body(_, st):
    a, b = choose_pair(st)
    return merge(st, a, b, method)[0]

  return jax.lax.fori_loop(0, steps, body, state)


def to_hierarchy(state: LinkageState) -> Hierarchy:
  """The tree recorded in a finished state, as a :class:`Hierarchy`."""
  return Hierarchy(parent=state.parent, height=state.height)


# ---------------------------------------------------------------------------
# The fast kernel: cached row minima, lazy re-scans, shrinking matrix.

_MIN_CAPACITY = 1024  # no compaction below this many slots


_INIT_BLOCK = 256  # rows per block of the initial nearest-neighbour pass


def initial_minima(dist: jax.Array):
  """``(min, first index)`` of every row of ``float[n, n]``, in row blocks.

  The same values as ``dist.min(1)`` and the first index attaining it, but
  computed on blocks of :data:`_INIT_BLOCK` contiguous rows, so that no
  ``n x n`` temporary is made (XLA:CPU materialized the ``int32[n, n]``
  index select of the one-shot form: a second matrix, and a slow first
  touch of fresh memory). A last partial block is clamped to the end and
  recomputes some rows (the same values).

  Returns:
    ``(float[n], int32[n])``.
  """
  n = dist.shape[0]
  b = min(_INIT_BLOCK, n)
  idx = jnp.arange(n, dtype=jnp.int32)

  def block(t, carry):
    mind, nn = carry
    start = jnp.minimum(t * b, n - b)
    rows = jax.lax.dynamic_slice_in_dim(dist, start, b, axis=0)
    m = jnp.min(rows, axis=1)
    first = jnp.min(jnp.where(rows == m[:, None], idx[None, :], n), axis=1)
    mind = jax.lax.dynamic_update_slice_in_dim(mind, m, start, axis=0)
    nn = jax.lax.dynamic_update_slice_in_dim(nn, first.astype(jnp.int32),
                                             start, axis=0)
    return mind, nn

  return jax.lax.fori_loop(0, -(-n // b), block,
                           (jnp.zeros(n, dist.dtype), jnp.zeros(n, jnp.int32)))


def _scan_row(dist, alive, k):
  """``(min, first index)`` of row ``k`` over the active slots."""
  row = jax.lax.dynamic_index_in_dim(dist, k, 0, keepdims=False)
  return _first_min(jnp.where(alive, row, jnp.asarray(jnp.inf, dist.dtype)))


def _merge_phase(state, mind, nn, stale, num_steps: int, method: str):
  """``num_steps`` merges of the cached-minima algorithm on a fixed capacity.

  ``mind[k]`` is a lower bound of row ``k``'s minimum over active slots and
  exact (with ``nn[k]`` its first index) unless ``stale[k]``. A step pops the
  row with the smallest bound, re-scanning it while it is stale, so only
  rows that reach the top are ever re-scanned.
  """
  def step(_, carry):
    st, mind, nn, stale = carry

    def rescan_top(cr):
      mind, nn, stale, a = cr
      m_a, nn_a = _scan_row(st.dist, st.alive, a)
      mind = mind.at[a].set(m_a)
      nn = nn.at[a].set(nn_a)
      stale = stale.at[a].set(False)
      return mind, nn, stale, _first_min(mind)[1]

    a = _first_min(mind)[1]
    if method != "single":  # single linkage never has stale rows
      mind, nn, stale, a = jax.lax.while_loop(
          lambda cr: cr[2][cr[3]], rescan_top, (mind, nn, stale, a))
    b = nn[a]
    i = jnp.minimum(a, b)
    j = jnp.maximum(a, b)
    st, new = merge(st, a, b, method, d_ab=mind[a])
    m_i, nn_i = _first_min(new)
    # Reducibility: d(k, i+j) >= min(d(k, i), d(k, j)) >= mind[k], so every
    # bound stays valid. For an exact row, a new value equal to its minimum
    # moves the neighbour to i when i comes first; an exact row that pointed
    # at i or j becomes stale otherwise. Stale rows wait for a re-scan.
    hit = (nn == i) | (nn == j)
    better = ((new < mind) | ((new == mind) & (i <= nn))) & ~stale
    mind = jnp.where(better, new, mind)
    nn = jnp.where(better, i, nn)
    stale = (stale | hit) & ~better & st.alive
    mind = mind.at[i].set(m_i)
    nn = nn.at[i].set(nn_i)
    stale = stale.at[i].set(False)
    mind = jnp.where(st.alive, mind, jnp.asarray(jnp.inf, mind.dtype))
    return st, mind, nn, stale

  return jax.lax.fori_loop(0, num_steps, step, (state, mind, nn, stale))


def _compact(state, mind, nn, stale, capacity: int):
  """Moves the ``capacity`` active slots to the front of a smaller state (order kept)."""
  order = jnp.nonzero(state.alive, size=capacity)[0].astype(jnp.int32)
  rank = (jnp.cumsum(state.alive) - 1).astype(jnp.int32)
  # One gather of the kept block (no c/2 x c intermediate of a row gather
  # followed by a column gather): the peak stays near 1.25 matrices.
  dist = state.dist[order[:, None], order[None, :]]
  new_state = state._replace(
      dist=dist,
      size=state.size[order],
      alive=jnp.ones(capacity, bool),
      node=state.node[order],
  )
  return new_state, mind[order], rank[nn[order]], stale[order]


def _mst_single_linkage(dist: jax.Array):
  """Single linkage through Prim's minimum spanning tree (no matrix updates).

  Prim's algorithm on the dense matrix reads one row per step and never
  writes the matrix; the MST edges sorted by weight (stable: equal weights
  keep the order Prim found them, starting from point 0) are then the
  merges, labelled with a union-find.
  """
  n = dist.shape[0]
  dtype = dist.dtype
  if n == 1:  # no edges (the loops below would index empty edge arrays)
    return Hierarchy(parent=jnp.full(1, NO_PARENT, jnp.int32),
                     height=jnp.zeros(1, dtype))
  inf = jnp.asarray(jnp.inf, dtype)
  idx = jnp.arange(n, dtype=jnp.int32)
  in_tree = idx == 0
  best = jnp.where(in_tree, inf, dist[0])
  src = jnp.zeros(n, jnp.int32)

  def prim(t, carry):
    in_tree, best, src, eu, ev, ew = carry
    w, v = _first_min(best)
    eu, ev, ew = eu.at[t].set(src[v]), ev.at[t].set(v), ew.at[t].set(w)
    in_tree = in_tree.at[v].set(True)
    row = jax.lax.dynamic_index_in_dim(dist, v, 0, keepdims=False)
    closer = row < best  # strict: ties keep the earlier tree vertex
    best = jnp.where(in_tree, inf, jnp.where(closer, row, best))
    src = jnp.where(closer, v, src)
    return in_tree, best, src, eu, ev, ew

  e = max(n - 1, 0)
  _, _, _, eu, ev, ew = jax.lax.fori_loop(
      0, e, prim, (in_tree, best, src, jnp.zeros(e, jnp.int32),
                   jnp.zeros(e, jnp.int32), jnp.zeros(e, dtype)))
  order = jnp.argsort(ew, stable=True)
  eu, ev, ew = eu[order], ev[order], ew[order]

  def find(uf, x):
    return jax.lax.while_loop(lambda y: uf[y] != y, lambda y: uf[y], x)

  def label(t, carry):
    uf, usize, top, parent, height = carry
    ru = find(uf, eu[t])
    rv = find(uf, ev[t])
    new_node = (n + t).astype(jnp.int32)
    parent = parent.at[top[ru]].set(new_node).at[top[rv]].set(new_node)
    height = height.at[new_node].set(ew[t])
    big = jnp.where(usize[ru] >= usize[rv], ru, rv)  # union by size
    small = jnp.where(usize[ru] >= usize[rv], rv, ru)
    uf = uf.at[small].set(big)
    usize = usize.at[big].add(usize[small])
    top = top.at[big].set(new_node)
    return uf, usize, top, parent, height

  m = 2 * n - 1
  carry = (idx, jnp.ones(n, jnp.int32), idx, jnp.full(m, NO_PARENT, jnp.int32),
           jnp.zeros(m, dtype))
  _, _, _, parent, height = jax.lax.fori_loop(0, e, label, carry)
  return Hierarchy(parent=parent, height=height)


def _cached_minima_linkage(dist: jax.Array, size: jax.Array,
                           method: str, donated: bool = False):
  """Agglomeration with cached nearest neighbours and a shrinking matrix.

  Merges run in phases: when half of the ``c`` active slots are left, they
  are compacted into a ``c/2 x c/2`` matrix (down to ``_MIN_CAPACITY``), so
  later merges touch shorter rows and columns (about 2/3 of the memory
  traffic of a fixed ``n x n`` matrix).

  Returns:
    ``(Hierarchy, None, work)`` (the middle slot is the rounds kernel's
    statistics, none here): with ``donated`` (static), ``work`` is the working
    matrix after the first phase, an output that a donated input buffer can
    alias (so the input serves as the first phase's working matrix);
    otherwise ``None``.
  """
  n = dist.shape[0]
  if method == "single":
    return _mst_single_linkage(dist), None, (dist if donated else None)
  state = init_state(dist, size, method)
  mind, nn = initial_minima(state.dist)
  stale = jnp.zeros(n, bool)
  active = n
  first_work = None
  while active > 1:
    target = active // 2 if active // 2 >= _MIN_CAPACITY else 1
    state, mind, nn, stale = _merge_phase(state, mind, nn, stale,
                                          active - target, method)
    active = target
    if first_work is None:
      first_work = state.dist
    if active > 1:
      state, mind, nn, stale = _compact(state, mind, nn, stale, active)
  if first_work is None:
    first_work = state.dist
  return (Hierarchy(parent=state.parent, height=state.height), None,
          first_work if donated else None)


_linkage_kernel = jax.jit(_cached_minima_linkage,
                          static_argnames=("method", "donated"))
_linkage_kernel_donating = jax.jit(
    functools.partial(_cached_minima_linkage, donated=True),
    static_argnames=("method",), donate_argnums=(0,))


ALGORITHMS = ("auto", "rnn", "sequential")
"""Valid values of ``algorithm``: see :func:`resolve_algorithm`."""

_RNN_MIN_N = 2048  # "auto" picks the rounds kernel from this many points on


def resolve_algorithm(algorithm: str, n: int, method: str) -> str:
  """The kernel ``algorithm="auto"`` runs: ``"rnn"`` or ``"sequential"``.

  The rule: on CPU always ``"sequential"``; on other backends (GPU, TPU)
  ``"rnn"`` from ``n >= 2048`` points for every method, else
  ``"sequential"``.

  Why, on CPU (``benchmarks/bench_rnn_linkage.py``, 8-D Gaussians, average
  linkage, this project's 2-core machine, measured while other jobs ran,
  ``benchmarks/results/rnn_linkage_s17.txt``): warm, the rounds kernel took
  0.4x the sequential kernel's wall time at n = 1,000 (0.8x its CPU time),
  0.7-0.8x at n = 2,000-4,000 and 1.0-1.25x at n = 8,000 (where both are
  bound by the column writes of merged rows: one scatter per block of
  merges against one strided column per merge); and it compiles 3-5x
  longer (15-64 s against 3-15 s: it holds the block bodies and the
  sequential fallback). No size gains enough warm time to pay for the
  longer compile in a single call, so CPU stays sequential; pass
  ``algorithm="rnn"`` when one compiled kernel serves many calls at one
  n of 1,000-4,000. On a GPU a
  sequential merge costs about 30 kernel launches (8-9 us per loop
  iteration before any work), so n - 1 merges cost far more than the
  rounds' few passes per round (the time model in the benchmark:
  ``rounds x passes x matrix bytes / bandwidth`` plus launches). Below
  2,048 points the sequential kernel's smaller compile wins everywhere.
  The GPU half of the rule is from the model, not yet from a device run.

  Args:
    algorithm: ``"auto"``, ``"rnn"`` or ``"sequential"``.
    n: number of points.
    method: one of :data:`METHODS`.

  Returns:
    ``"rnn"`` or ``"sequential"``.
  """
  del method  # the same rule for every method, for now
  if algorithm != "auto":
    return algorithm
  if n < _RNN_MIN_N or jax.default_backend() == "cpu":
    return "sequential"
  return "rnn"


def _kernel(algorithm: str, donate: bool):
  """The jitted kernel ``(dist, size, *, method) -> (Hierarchy, RoundStats | None, work)``."""
  if algorithm != "rnn":
    return _linkage_kernel_donating if donate else _linkage_kernel
  rounds = _rnn.rounds_kernel_donating if donate else _rnn.rounds_kernel

  def run(dist, size, *, method):
    # The thresholds as traced arguments, as rounds_linkage_kernel passes
    # them: one compiled kernel serves both.
    return rounds(dist, size,
                  jnp.asarray(_rnn.DEFAULT_MIN_ROUND_MERGES, jnp.int32),
                  jnp.asarray(dist.shape[-1], jnp.int32), method=method)

  return run


def linkage_kernel(dist: jax.Array, *, method: str = "average",
                   weights: Optional[jax.Array] = None,
                   algorithm: str = "auto") -> Hierarchy:
  """Raw jitted linkage for internal callers (no input checks; jit/vmap safe).

  Args:
    dist: ``float[n, n]`` distances (assumed valid: the public
      :func:`linkage` checks them).
    method: one of :data:`METHODS` (static).
    weights: ``None`` or ``float[n]`` / ``int[n]`` vertex weights.
    algorithm: ``"auto"`` (default, :func:`resolve_algorithm`), ``"rnn"``
      (rounds of reciprocal nearest neighbours,
      :mod:`fairhc_jax.rnn_linkage`) or ``"sequential"`` (one merge per
      step); the same tree either way (static).

  Returns:
    The binary :class:`~fairhc_jax.hierarchy.Hierarchy` with heights, as
    :func:`linkage` returns it.
  """
  n = dist.shape[-1]
  size = (jnp.ones(n, dist.dtype) if weights is None
          else jnp.asarray(weights).astype(dist.dtype))
  algo = resolve_algorithm(algorithm, n, method)
  return _kernel(algo, False)(dist, size, method=method)[0]


# ---------------------------------------------------------------------------
# Public entry points.


def _check_weights(fn, weights, n, dtype):
  w = _checks.check_weights(fn, "weights", weights, n)
  if w is None:
    return jnp.ones(n, dtype)
  return w.astype(dtype)


def _check_ward_euclidean(fn: str, d: jax.Array) -> None:
  """Rejects matrices that cannot be Euclidean distances (small n only).

  A matrix is a Euclidean distance matrix iff ``-1/2 J D^2 J`` is positive
  semi-definite (classical scaling); the test costs O(n^3), so it runs for
  ``n <= 1000``.
  """
  n = d.shape[0]
  if n < 3 or n > _WARD_CHECK_MAX_N or not _checks.is_concrete(d):
    return
  d2 = np.asarray(d, np.float64) ** 2
  gram = -0.5 * (d2 - d2.mean(0) - d2.mean(1)[:, None] + d2.mean())
  ev = np.linalg.eigvalsh(gram)
  tol = (1e-4 if d.dtype == jnp.float32 else 1e-9) * max(ev[-1], 1e-300)
  if ev[0] < -tol:
    _checks.fail(fn, "D", "be a Euclidean distance matrix for method 'ward'",
                 f"a matrix whose classical-scaling Gram matrix has the "
                 f"negative eigenvalue {ev[0]:.6g}")


def _check_algorithm(fn: str, algorithm, return_stats) -> None:
  _checks.check_choice(fn, "algorithm", algorithm, ALGORITHMS)
  if not isinstance(return_stats, bool):
    _checks.fail(fn, "return_stats", "be a bool", repr(return_stats), TypeError)


def _run(d, size, method, algorithm, donate, return_stats):
  """Runs the chosen kernel; the tree, and its statistics if asked."""
  n = d.shape[0]
  algo = resolve_algorithm(algorithm, n, method)
  h, stats, _ = _kernel(algo, donate)(d, size, method=method)
  if not return_stats:
    return h
  return h, _rnn.linkage_stats(algo, method, n, stats)


def linkage(D, method: str = "average", *, weights=None,
            overwrite: bool = False, algorithm: str = "auto",
            return_stats: bool = False):
  """Agglomerative clustering of a distance matrix.

  Args:
    D: ``float[n, n]`` distances: square, symmetric, finite, non-negative
      (the diagonal is ignored). Euclidean distances for ``"ward"``
      (checked for ``n <= 1000``). For points use
      :func:`linkage_from_points`.
    method: ``"average"`` (default), ``"single"``, ``"complete"``,
      ``"weighted"`` or ``"ward"`` (see the module docstring).
    weights: optional ``int[n]`` positive integer vertex weights (initial
      cluster sizes; used by ``"average"`` and ``"ward"``). Keyword-only.
    overwrite: donate ``D``'s buffer to the kernel (a JAX array of the
      working dtype only): saves one ``n x n`` copy; ``D`` is unusable
      after. Then the working matrix *is* ``D``'s buffer, and the peak is
      about 1.25 ``n x n`` (the half-size packed matrix).
    algorithm: ``"auto"`` (default; the rule is :func:`resolve_algorithm`),
      ``"rnn"`` (rounds of reciprocal nearest neighbours merged at once,
      :mod:`fairhc_jax.rnn_linkage`) or ``"sequential"`` (one merge per
      step). Both give the same tree (see :mod:`fairhc_jax.rnn_linkage`
      for the exact statement).
    return_stats: also return a
      :class:`~fairhc_jax.rnn_linkage.LinkageStats` (rounds, merges per
      round, merges done one at a time, the algorithm that ran).

  Returns:
    A binary :class:`~fairhc_jax.hierarchy.Hierarchy` with heights: node
    ``n + t`` is the ``t``-th merge at height ``height[n + t]`` (the
    linkage distance, non-decreasing for these methods up to rounding).
    Compiled once per ``(n, dtype, method, algorithm)``. With
    ``return_stats``, the pair ``(hierarchy, stats)``.

  Raises:
    ValueError: bad distances, weights, method or algorithm (messages name
      the argument and the value).
  """
  fn = "linkage"
  _checks.check_choice(fn, "method", method, METHODS)
  _check_algorithm(fn, algorithm, return_stats)
  d = _checks.check_square_matrix(fn, "D", D)
  n = d.shape[0]
  if not isinstance(overwrite, bool):
    _checks.fail(fn, "overwrite", "be a bool", repr(overwrite), TypeError)
  donate = overwrite and d is D
  _memory.check_memory(fn, n, _memory.square_bytes(
      n, d.dtype, count=working_matrices(resolve_algorithm(algorithm, n, method), donate))
      + WORKING_OVERHEAD_BYTES,
      what=f"the linkage's working copies of the {n} x {n} matrix")
  size = _check_weights(fn, weights, n, d.dtype)
  if method == "ward":
    _check_ward_euclidean(fn, d)
  return _run(d, size, method, algorithm, donate, return_stats)


WORKING_OVERHEAD_BYTES = 512 * 2**20
"""Bytes the linkage guard adds to :func:`working_matrices` (the compiled
program and runtime buffers: about 0.2-0.45 GB measured at n = 16,000)."""


def working_matrices(algorithm: str, donate: bool) -> float:
  """``n x n`` matrices a linkage kernel allocates beside the caller's ``D``.

  Measured peaks (VmHWM) above the process with ``D`` resident, average
  linkage on 8-D Gaussians at n = 16,000 on XLA:CPU
  (``python benchmarks/linkage_memory.py``,
  ``benchmarks/results/linkage_memory.txt``): sequential 1.44 matrices (1.47
  GB: its working copy of ``D``, the half-size packed matrix, and about 0.2
  GB that does not grow with n), rounds 1.74. The guard asks for 1.25
  (sequential) and 1.75 (rounds) matrices plus
  :data:`WORKING_OVERHEAD_BYTES`; donating ``D`` (``overwrite=True``) saves
  the copy.
  """
  count = 1.25 if algorithm == "sequential" else 1.75
  return count - 1 if donate else count


def linkage_from_points(X, method: str = "average", *, weights=None,
                        block_size: Optional[int] = None,
                        algorithm: str = "auto", return_stats: bool = False):
  """Agglomerative clustering of points under Euclidean distance.

  Computes the distances blockwise with
  :func:`~fairhc_jax.distances.pairwise_distances` (accurate direct
  formula) and clusters them with :func:`linkage` (the distance buffer is
  donated and becomes the working matrix: one ``n x n`` matrix in all, plus
  the half-size packed one).

  Args:
    X: ``float[n, d]`` points (finite).
    method: see :func:`linkage`; ``"ward"`` is Ward's criterion on these points.
    weights: optional ``int[n]`` positive integer vertex weights
      (keyword-only).
    block_size: rows per block of the distance computation.
    algorithm: see :func:`linkage`.
    return_stats: see :func:`linkage`.

  Returns:
    A binary :class:`~fairhc_jax.hierarchy.Hierarchy` with heights (with
    ``return_stats``, the pair ``(hierarchy, stats)``).
  """
  fn = "linkage_from_points"
  _checks.check_choice(fn, "method", method, METHODS)
  _check_algorithm(fn, algorithm, return_stats)
  x = _checks.check_points(fn, "X", X)
  size = _check_weights(fn, weights, x.shape[0], x.dtype)
  d = _distances.pairwise_distances(x, block_size=block_size)
  return _run(d, size, method, algorithm, True, return_stats)


# The rounds kernel builds on this module's pieces (init_state, merge, the
# sequential phase); imported last so that both import orders work.
from fairhc_jax import rnn_linkage as _rnn  # noqa: E402
