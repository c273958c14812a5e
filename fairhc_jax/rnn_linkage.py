"""Exact agglomerative clustering in parallel rounds of reciprocal nearest neighbours.

The five linkages of :mod:`fairhc_jax.agglomerative` are *reducible*
(``d(k, i + j) >= min(d(k, i), d(k, j))``): merging two clusters never brings
a third one closer than the nearer of the two. Then any pair of reciprocal
nearest neighbours (``nn(a) = b`` and ``nn(b) = a``) is merged by the
sequential closest-pair algorithm too, at the same height, whatever it
merges in between (Bruynooghe's reducibility; Sumengen et al. 2021, RAC). So
all such pairs can be merged at once and the dendrogram stays the same.

A *round* of this kernel:

1. makes every active cluster's cached nearest neighbour exact (only rows
   whose neighbour was merged are re-read: the cached minima of the
   sequential kernel, in blocks of rows);
2. finds the reciprocal pairs ``a < nn(a)``, ``nn(nn(a)) = a`` (ties: the
   nearest neighbour is the first index at the row minimum, the sequential
   kernel's rule);
3. merges them in blocks of ``block`` pairs (ordered by height, then slot):
   the Lance-Williams rows of a block are computed from two gathered row
   blocks in one batched update, the distances between two clusters merged
   in the same block are corrected by the second Lance-Williams step, and
   the new rows are written as rows and columns (the matrix stays
   symmetric, one ``n x n`` buffer updated in place). In phases whose
   matrix side is at least :data:`_DEFER_MIN_SIDE` (off by default), a
   round merging at
   least ``1/16`` of the side in pairs defers the column writes instead:
   it runs in segments of about ``side / 8`` pairs, stages each block's
   new rows transposed (one block write), patches the rows that later
   blocks of the segment read from the stage, and writes all the
   segment's columns in one pass over the matrix (:func:`_flush`). The
   values written are the same either way.

When a round would merge fewer than ``min_round_merges`` pairs (the line
with growing gaps merges one pair per round), the phase finishes with the
sequential kernel's one-at-a-time merges, so adversarial inputs cost what
the sequential kernel costs. As in the sequential kernel, the active
clusters are packed into a half-size matrix whenever half of them are left
(from ``n >= 2048``), and a new phase tries rounds again.

Merges are recorded in round order and renumbered at the end: node
``n + t`` is the ``t``-th merge in the order of (height, made monotone along
the tree: a node sorts by the largest height in its subtree, so children
always precede parents; then round order). On data without exact ties this
is the sequential kernel's tree, merge for merge, and SciPy's ``Z`` row for
row; heights agree to rounding (a cross distance of two clusters merged in
the same round is computed with the two Lance-Williams steps in height
order, as the sequential kernel does, but the order of merges from
different rounds can differ, which changes the last bits). With exact ties
the trees have the same merge heights and, for every method but
``"single"``, the same clusters; ``"single"`` can pair tied points
differently with identical cophenetic distances.

Memory: one working ``n x n`` matrix, updated in place (no whole-matrix
copy in the compiled loops, none at all with a donated input; a test
inspects the HLO), the input buffer itself when it is donated
(``linkage_from_points``, ``linkage(..., overwrite=True)``); plus, once per
phase, the half-size packed matrix, and ``block x n`` row blocks; in phases
with deferred column writes, the stage of ``side x (side / 8 + block)``
values (about 1/8 of that phase's matrix; it is dead before the phase's
compaction, whose half-size matrix set the measured peak, so the guard of
:func:`~fairhc_jax.agglomerative.working_matrices` is unchanged; not yet
re-measured). The
initial nearest neighbours are found in blocks of rows and the diagonal is
written in place (:func:`fairhc_jax.agglomerative.initial_minima`,
:func:`~fairhc_jax.agglomerative.init_state`): the one-shot forms made an
``int32[n, n]`` and a fresh ``float[n, n]`` temporary, 0.45 s of a 4.1 s
run at n = 8,000 and one extra matrix at the peak.

Where the time goes (XLA:CPU profile at n = 4,000 and 8,000, average
linkage, 8-D Gaussians): more than half of a run is the column writes of
the merged rows, an element scatter of ``block x n`` values per block of
merges (12-30 ns per element against 0.1-0.5 ns for a streamed pass; XLA's
scatter touches one cache line per element), plus building its indices and
transposing its values (another 10-15%). Re-reading stale rows, the
batched Lance-Williams rows and the pair search are each under 10%. The
column writes of retired rows are dropped. The deferred writes of large
rounds replace the scatter by a stage write (about 2 ns per element) and
one flush pass per segment (1.2-2.9 ns per matrix element measured under
load: it gathers along the rows of the stage, which XLA:CPU does slowly);
no gain beyond the noise at n = 4,000-8,000, so it is off by default (see
:data:`_DEFER_MIN_SIDE`). A layout that appends the new clusters of a
round as contiguous rows and columns (no flush pass at all) needs free
slots beyond ``n`` or a compaction per round; not built
(``benchmarks/results/rnn_linkage_profile.txt`` has the measurements).

Statistics (:class:`RoundStats`, :class:`LinkageStats` from the public
``linkage(..., return_stats=True)``): the number of rounds, the merges,
re-read rows, active clusters and matrix side of every round, and the merges
done one at a time. ``algorithm="auto"`` picks this kernel on GPU/TPU from
2,048 points, the sequential one on CPU
(:func:`fairhc_jax.agglomerative.resolve_algorithm` gives the measurements).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import agglomerative as _agg
from fairhc_jax.hierarchy import NO_PARENT, Hierarchy

DEFAULT_MIN_ROUND_MERGES = 4
"""Default fallback threshold: a round that would merge fewer pairs than this
(and fewer than half the active clusters) switches the phase to
one-at-a-time merging.

Measured (``benchmarks/bench_rnn_linkage.py --thresholds
1,2,4,8,16,32,64,128,256``, 8-D Gaussians, n = 2,000, average and Ward,
process CPU time, measured while other jobs ran; results in
``benchmarks/results/rnn_linkage_thresholds.txt``): the time is flat within
the noise (about 10%) from 2 to 64; 1 (never fall back) costs 10-20% more,
because a round has a fixed cost of a few sequential merges (the pair
search, the sort of the pairs, the re-read bookkeeping) and the tail of
rounds merges one or two pairs each; from 128 on Ward gets slower, as the
fallback takes over rounds that merge many pairs. The adversarial line with
growing gaps (one pair per round) goes to the fallback at once for every
threshold from 2 on. 4 sits in the flat part, and equals the fixed cost of
a round in sequential merges."""

_ELEMENT_WRITE_MIN = 1024
"""From this matrix side on, columns are written as single elements (faster
at run time, slower to compile); below it as whole columns."""

DEFAULT_BLOCK = 256
"""Default number of rows gathered per block (re-reads and merges)."""


class RoundStats(NamedTuple):
  """What the rounds kernel did (device arrays inside jit; NumPy from the entry points).

  Attributes:
    rounds: ``int32[]``, rounds that merged pairs.
    merges_per_round: ``int32[n]``, merges of round ``r`` in entry ``r``
      (zero from ``rounds`` on).
    rescans_per_round: ``int32[n]``, rows re-read to make the nearest
      neighbours exact before round ``r``.
    active_per_round: ``int32[n]``, active clusters at the start of round ``r``.
    capacity_per_round: ``int32[n]``, side of the working matrix in round ``r``.
    sequential_merges: ``int32[]``, merges done one at a time (the fallback).
  """

  rounds: jax.Array
  merges_per_round: jax.Array
  rescans_per_round: jax.Array
  active_per_round: jax.Array
  capacity_per_round: jax.Array
  sequential_merges: jax.Array


def _row_minima(rows, alive):
  """``(min, first index)`` of each row of ``float[b, c]`` over the active columns."""
  c = rows.shape[1]
  masked = jnp.where(alive[None, :], rows, jnp.asarray(jnp.inf, rows.dtype))
  m = jnp.min(masked, axis=1)
  idx = jnp.arange(c, dtype=jnp.int32)
  first = jnp.min(jnp.where(masked == m[:, None], idx[None, :], c), axis=1)
  return m, first.astype(jnp.int32)


_TWO_SIZES_MIN = 256
"""From this matrix side on, blocks come in two sizes (see :func:`_block_sizes`)."""


def _block_sizes(block: int, c: int):
  """Block sizes ``block`` and ``block / 16`` (two compiled bodies) for
  matrices of side ``c >= 256``: a count is covered by full blocks and then
  small ones, the last one padded. Smaller matrices use one size (a padded
  block costs little there, and each size is one more body to compile).

  Measured (8-D Gaussians, average linkage, n = 1,000, measured while other
  jobs ran): with one padded 256-pair block per round the rounds kernel took
  0.32 s warm (0.16 s CPU), with the two sizes 0.05 s (0.05 s CPU; the
  sequential kernel: 0.11 s, 0.04 s CPU), for 5 s more compile (19 s
  against 14 s)."""
  return [block] if (block < 32 or c < _TWO_SIZES_MIN) else [block, block // 16]


def _blocked(count, block: int, c: int, body, carry):
  """Runs ``body(start, size, carry)`` over ``[0, count)`` in blocks.

  Full blocks of the largest size first, then smaller sizes for the rest, so
  that a round with few entries does not pay for a large padded block
  (every row block's gathers, scatters and reductions cost ``size x c``).
  """
  sizes = _block_sizes(block, c)
  start = jnp.zeros((), jnp.int32)
  left = count
  for k, sz in enumerate(sizes):
    last = k == len(sizes) - 1
    num = (left + sz - 1) // sz if last else left // sz

    def step(t, cr, sz=sz, start=start):
      return body(start + t * sz, sz, cr)

    carry = jax.lax.fori_loop(0, num, step, carry)
    start = start + num * sz
    left = left - num * sz
  return carry


def _rescan(dist, alive, mind, nn, stale, block: int):
  """Re-reads the stale rows in blocks of rows: every cached minimum exact."""
  c = dist.shape[0]
  num = jnp.sum(stale).astype(jnp.int32)
  rows = jnp.nonzero(stale, size=c, fill_value=c)[0].astype(jnp.int32)
  rows = jnp.concatenate([rows, jnp.full(block, c, jnp.int32)])

  def body(start, sz, carry):
    mind, nn = carry
    r = jax.lax.dynamic_slice_in_dim(rows, start, sz)
    r = jnp.where(start + jnp.arange(sz) < num, r, c)
    m, first = _row_minima(jnp.take(dist, r, axis=0, mode="clip"), alive)
    return (mind.at[r].set(m, mode="drop"), nn.at[r].set(first, mode="drop"))

  mind, nn = _blocked(num, block, c, body, (mind, nn))
  return mind, nn, jnp.zeros_like(stale), num


def _when(pred, f, x):
  """``f(x)`` if the traced ``pred`` holds, else ``x``.

  A loop of zero or one step rather than ``lax.cond``: XLA:CPU copied the
  whole matrix into and out of a conditional (the branch that returns its
  operand unchanged, and a scatter on a branch operand, each got a copy;
  the compiled HLO showed them), while loop carries are updated in place."""
  return jax.lax.fori_loop(0, pred.astype(jnp.int32), lambda _, v: f(v), x)


def _merge_block(carry, ii, jj, dd, valid, p0, method: str, deferred: bool):
  """Merges the pairs ``(ii[p], jj[p])`` (``ii < jj``, disjoint) of one block at once.

  ``dd[p]`` is the pair's distance; ``valid[p]`` marks real entries
  (padding has ``ii = jj = c``). The merges count as made in block order.
  With ``deferred`` (static) the block belongs to a segment whose column
  writes wait for :func:`_flush`: the new rows are staged transposed at
  column ``p0`` (the block's first pair's position in the segment) of the
  stage, and the rows read here get the values of the segment's earlier
  merges from the stage. Otherwise the columns are written now.
  """
  st, mind, nn, stale, stage, pos, order = carry
  dist = st.dist
  c = dist.shape[0]
  b = ii.shape[0]
  inf = jnp.asarray(jnp.inf, dist.dtype)
  iw = jnp.where(valid, ii, c)  # write indices (dropped when padding)
  jw = jnp.where(valid, jj, c)
  rows_i = jnp.take(dist, ii, axis=0, mode="clip")
  rows_j = jnp.take(dist, jj, axis=0, mode="clip")
  if deferred:
    # The columns of the segment's earlier merges are not written yet; their
    # values are staged (row k of the stage = the distances from slot k to
    # the segment's new clusters, in merge order).
    # An element scatter of b x (stage width) values into the two row
    # blocks (in cache; a gather of b x c staged values along the columns
    # ran 3-4x slower: XLA gathers columns into a transposed layout).
    prow = jnp.arange(b, dtype=jnp.int32)[:, None]

    def patch(rows, slots):
      srows = jnp.take(stage, slots, axis=0, mode="clip")
      return rows.at[prow, order[None, :]].set(srows, mode="drop")

    rows_i, rows_j = jax.lax.optimization_barrier(
        (patch(rows_i, ii), patch(rows_j, jj)))
  n_i = jnp.take(st.size, ii, mode="clip")
  n_j = jnp.take(st.size, jj, mode="clip")
  n_new = n_i + n_j
  size = st.size.at[iw].set(n_new, mode="drop")
  alive = st.alive.at[jw].set(False, mode="drop")
  new = _agg.lance_williams(method, rows_i, rows_j, dd[:, None], n_i[:, None],
                            n_j[:, None], st.size[None, :])
  # Two clusters merged in this block: d(P, Q) is the Lance-Williams step of
  # the later pair (q > p) applied to d(P, i_q), d(P, j_q), as if P and Q
  # were merged one after the other; mirrored to keep the matrix symmetric.
  to_i = jnp.take(new, ii, axis=1, mode="clip")  # [p, q] = d(P, i_q)
  to_j = jnp.take(new, jj, axis=1, mode="clip")  # [p, q] = d(P, j_q)
  cross = _agg.lance_williams(method, to_i, to_j, dd[None, :], n_i[None, :],
                              n_j[None, :], n_new[:, None])
  pq = jnp.arange(b)
  cross = jnp.where(pq[:, None] < pq[None, :], cross, cross.T)
  new = new.at[pq[:, None], iw[None, :]].set(cross, mode="drop")
  col = jnp.arange(c, dtype=jnp.int32)
  new = jnp.where(alive[None, :] & (col[None, :] != ii[:, None]), new, inf)
  dist = dist.at[iw].set(new, mode="drop")
  # The columns. XLA:CPU's scatter of whole columns walks each column down
  # the rows (a page per element); single elements in row-major order ran
  # 2.3x faster (n = 2,000) but compile slower, so they serve large matrices.
  if deferred:
    # Stage the new rows transposed (one block write); the flush at the end
    # of the segment writes the columns.
    stage = jax.lax.dynamic_update_slice(stage, new.T, (jnp.int32(0), p0))
    pos = pos.at[iw].set(p0 + pq.astype(jnp.int32), mode="drop")
    order = jax.lax.dynamic_update_slice(order, iw, (p0,))
  elif c >= _ELEMENT_WRITE_MIN:
    # Rows of retired slots are never read again: their writes are dropped
    # (a quarter of the rows in a phase on average, and their memory traffic).
    live_rows = jnp.where(alive, jnp.arange(c, dtype=jnp.int32), c)
    rows_k = jnp.broadcast_to(live_rows[:, None], (c, b))
    cols_k = jnp.broadcast_to(iw[None, :], (c, b))
    dist = dist.at[rows_k.reshape(-1), cols_k.reshape(-1)].set(
        new.T.reshape(-1), mode="drop")
  else:
    dist = dist.at[:, iw].set(new.T, mode="drop")

  # Cached nearest neighbours, as in the sequential kernel but for a block:
  # a row whose neighbour was merged becomes stale unless a new cluster is
  # at least as close (reducibility keeps every other cached minimum exact).
  vals = jnp.where(valid[:, None], new, inf)
  cmin = jnp.min(vals, axis=0)
  cfirst = jnp.min(jnp.where(vals == cmin[None, :], ii[:, None], c), axis=0)
  touched = jnp.zeros(c + 1, bool).at[iw].set(True).at[jw].set(True)
  hit = touched[jnp.minimum(nn, c)]
  better = ((cmin < mind) | ((cmin == mind) & (cfirst <= nn))) & ~stale
  mind = jnp.where(better, cmin, mind)
  nn = jnp.where(better, cfirst.astype(jnp.int32), nn)
  stale = (stale | hit) & ~better & alive
  m_new, nn_new = _row_minima(new, alive)
  mind = mind.at[iw].set(m_new, mode="drop")
  nn = nn.at[iw].set(nn_new, mode="drop")
  stale = stale.at[iw].set(False, mode="drop")
  mind = jnp.where(alive, mind, inf)

  # Record the merges as the next nodes, in block order (as merge() does).
  t0 = st.num_merges
  m = st.parent.shape[0]
  n = (m + 1) // 2
  new_node = jnp.where(valid, n + t0 + pq.astype(jnp.int32), m)
  node_i = jnp.where(valid, jnp.take(st.node, ii, mode="clip"), m)
  node_j = jnp.where(valid, jnp.take(st.node, jj, mode="clip"), m)
  h = jnp.sqrt(jnp.maximum(dd, 0)) if method == "ward" else dd
  parent = st.parent.at[node_i].set(new_node, mode="drop")
  parent = parent.at[node_j].set(new_node, mode="drop")
  height = st.height.at[new_node].set(h.astype(st.height.dtype), mode="drop")
  node = st.node.at[iw].set(new_node, mode="drop")
  st = st._replace(dist=dist, size=size, alive=alive, node=node,
                   parent=parent, height=height,
                   num_merges=t0 + jnp.sum(valid).astype(jnp.int32))
  return st, mind, nn, stale, stage, pos, order


_DEFER_SHARE = 16
"""A round defers its column writes (:func:`_flush`) when it merges at least
``1 / _DEFER_SHARE`` of the matrix side in pairs; smaller rounds write the
columns per block (an element scatter costs ``pairs x side`` element writes;
the flush is one pass over the matrix)."""

_DEFER_MIN_SIDE = 2**31 - 1
"""Phases with a matrix side from this on compile the deferred column writes
(:func:`_flush`); smaller ones write every block's columns at once. Off by
default (no phase is that large): the measurements do not show a gain.

Measured (an A/B probe of both kernels in one process, average linkage,
with the deferred path from side 3,000, min of 3-7 runs, measured while
other jobs ran, load 5-10 on 2 cores): process CPU seconds at n = 4,000
0.432 deferred against 0.456 per block (8-D Gaussians) and 0.420 against
0.401 (Census) in one run, 0.436 against 0.513 (Census) in another; at
n = 8,000 1.78 against 1.83 s (Census); wall times moved both ways by
more than that. The flush, a pass over the whole matrix per segment, ran
at 1.2-2.9 ns per matrix element (its gather along the stage's rows is
slow on XLA:CPU), which eats most of what the scatter saved; and the
deferred path adds 8-25 s of compile. ``bench_rnn_linkage.py
--compare-defer`` times both (deferred from side 3,000) in one run, for a
quiet machine or a GPU (where a flush is one streamed pass) to decide. On a
quiet machine (2 cores, 2026-12-01) it gave deferred/per-block 0.89 and 0.82
on 8-D Gaussians at n = 4,000 and 8,000 and 1.01 and 1.01 on Census
(``benchmarks/results/rnn_linkage_s18_quiet.txt``): not enough to pay the
compile."""

_FLUSH_ROWS = 16
"""Rows per block of :func:`_flush` (a block of rows stays in cache)."""


def _deferred_block(block: int) -> int:
  """Pairs per block in deferred segments (one size: no scatter to amortise)."""
  return max(block // 4, 1)


def _segment_cap(c: int, block: int) -> int:
  """Pairs per deferred segment: about ``c / 8``, a multiple of ``block``.

  The stage holds ``c x (cap + block)`` values (about 1/8 of the matrix
  plus a block); a round that merges more pairs runs in several segments,
  each ending with a flush."""
  return max(block, -(-(c // 8) // block) * block)


def _flush(dist, stage, pos):
  """Writes the deferred columns of a segment in one pass over the matrix.

  Column ``s`` of every slot with ``pos[s] >= 0`` (a cluster made in the
  segment) gets ``dist[k, s] = stage[k, pos[s]]``, the new cluster's row
  transposed, except in the rows of clusters made later in the segment
  (``pos[k] > pos[s]``), whose own rows were computed after ``s`` merged
  and are already right there. One pass over blocks of
  :data:`_FLUSH_ROWS` rows (a select of a gathered block of the stage),
  in place.
  """
  c = dist.shape[0]
  r = min(_FLUSH_ROWS, c)
  cols = jnp.maximum(pos, 0)
  has = pos >= 0

  def body(t, dist):
    r0 = jnp.minimum(t * r, c - r)  # the last block overlaps: same values
    blk = jax.lax.dynamic_slice_in_dim(dist, r0, r, axis=0)
    vals = jnp.take(jax.lax.dynamic_slice_in_dim(stage, r0, r, axis=0), cols,
                    axis=1, mode="clip")
    rpos = jax.lax.dynamic_slice_in_dim(pos, r0, r)
    write = has[None, :] & (rpos[:, None] < pos[None, :])
    return jax.lax.dynamic_update_slice_in_dim(dist, jnp.where(write, vals, blk),
                                               r0, axis=0)

  return jax.lax.fori_loop(0, -(-c // r), body, dist)


def _round(carry, min_pairs, method: str, block: int):
  """One round: exact neighbours, reciprocal pairs, merged in blocks.

  Merges nothing (and sets the fallback flag) when fewer than ``min_pairs``
  pairs are reciprocal. A round with many pairs (see :data:`_DEFER_SHARE`)
  runs in segments of :func:`_segment_cap` pairs whose column writes are
  deferred to one :func:`_flush` per segment; the merged values are the
  same either way.
  """
  st, mind, nn, stale, stats, fallback, stage = carry
  c = st.dist.shape[0]
  active = jnp.sum(st.alive).astype(jnp.int32)
  mind, nn, stale, rescans = _rescan(st.dist, st.alive, mind, nn, stale, block)
  idx = jnp.arange(c, dtype=jnp.int32)
  nn_c = jnp.minimum(nn, c - 1)
  recip = st.alive & (idx < nn) & (nn < c) & (nn[nn_c] == idx)
  num = jnp.sum(recip).astype(jnp.int32)
  go = num >= jnp.minimum(min_pairs, active // 2)
  num = jnp.where(go, num, 0)
  # Pairs by height, then by slot (the sequential kernel's order).
  key = jnp.where(recip, mind, jnp.asarray(jnp.inf, mind.dtype))
  order = jnp.argsort(key, stable=True).astype(jnp.int32)
  pad = jnp.full(block, c, jnp.int32)
  ii_all = jnp.concatenate([jnp.where(jnp.arange(c) < num, order, c), pad])
  jj_all = jnp.concatenate([jnp.take(nn, order), pad])
  dd_all = jnp.concatenate([jnp.take(mind, order),
                            jnp.zeros(block, mind.dtype)])
  defer = (num * _DEFER_SHARE >= c) & (stage is not None)

  def pairs(g, sz, count):
    """The block of ``sz`` pairs from position ``g``; ``count`` valid from ``g - start``."""
    ii = jax.lax.dynamic_slice_in_dim(ii_all, g, sz)
    valid = (ii < c) & (jnp.arange(sz) < count)
    ii = jnp.where(valid, ii, c)
    jj = jnp.where(valid, jax.lax.dynamic_slice_in_dim(jj_all, g, sz), c)
    return ii, jj, jax.lax.dynamic_slice_in_dim(dd_all, g, sz), valid

  def by_scatter(cr):
    # Column writes per block (element scatters), blocks of two sizes.
    def body(start, sz, cr):
      ii, jj, dd, valid = pairs(start, sz, num - start)
      return _merge_block(cr + (None, None, None), ii, jj, dd, valid, None,
                          method, False)[:4]
    return _blocked(num, block, c, body, cr)

  def deferred(cr):
    # Segments of at most cap pairs, each ending with one flush.
    cap = _segment_cap(c, block)
    dblock = _deferred_block(block)

    def segment(s, cr):
      st, mind, nn, stale, stage = cr
      s0 = s * cap
      count = jnp.minimum(cap, num - s0)
      pos = jnp.full(c, -1, jnp.int32)  # slot -> position in the segment
      order = jnp.full(stage.shape[1], c, jnp.int32)  # position -> slot

      def body(t, cr):
        p0 = t * dblock
        ii, jj, dd, valid = pairs(s0 + p0, dblock, count - p0)
        return _merge_block(cr, ii, jj, dd, valid, p0, method, True)

      st, mind, nn, stale, stage, pos, _ = jax.lax.fori_loop(
          0, (count + dblock - 1) // dblock, body,
          (st, mind, nn, stale, stage, pos, order))
      st = st._replace(dist=_flush(st.dist, stage, pos))
      return st, mind, nn, stale, stage

    return jax.lax.fori_loop(0, (num + cap - 1) // cap, segment, cr)

  if stage is not None:  # phases with side >= _DEFER_MIN_SIDE
    st, mind, nn, stale, stage = _when(defer, deferred,
                                       (st, mind, nn, stale, stage))
  if stage is None:  # the default: every block writes its columns
    st, mind, nn, stale = by_scatter((st, mind, nn, stale))
  else:
    st, mind, nn, stale = _when(~defer, by_scatter, (st, mind, nn, stale))
  r = stats.rounds
  slot = jnp.where(go, r, stats.merges_per_round.shape[0])
  stats = stats._replace(
      rounds=r + go.astype(jnp.int32),
      merges_per_round=stats.merges_per_round.at[slot].set(num, mode="drop"),
      rescans_per_round=stats.rescans_per_round.at[slot].set(rescans,
                                                             mode="drop"),
      active_per_round=stats.active_per_round.at[slot].set(active, mode="drop"),
      capacity_per_round=stats.capacity_per_round.at[slot].set(c, mode="drop"))
  return st, mind, nn, stale, stats, fallback | ~go, stage


def _compact(st, mind, nn, stale, capacity: int):
  """Packs the (at most ``capacity``) active slots into a ``capacity``-side state."""
  c = st.dist.shape[0]
  order = jnp.nonzero(st.alive, size=capacity, fill_value=0)[0].astype(jnp.int32)
  live = jnp.arange(capacity) < jnp.sum(st.alive)
  rank = (jnp.cumsum(st.alive) - 1).astype(jnp.int32)
  dist = st.dist[order[:, None], order[None, :]]  # one gather: no c/2 x c temporary
  inf = jnp.asarray(jnp.inf, mind.dtype)
  new_nn = jnp.where(live, rank[jnp.minimum(nn[order], c - 1)], 0)
  return (st._replace(dist=dist, size=st.size[order], alive=live,
                      node=jnp.where(live, st.node[order], 0)),
          jnp.where(live, mind[order], inf), new_nn.astype(jnp.int32),
          stale[order] & live)


def _renumber(parent, height, n: int):
  """Node ``n + t`` = the ``t``-th merge by (largest height in its subtree, record order).

  ``parent``/``height`` hold the merges in the order they were made (node
  ``n + t`` = merge ``t``); children always precede parents in the result.
  """
  m = 2 * n - 1
  e = n - 1
  kid = jnp.arange(m, dtype=jnp.int32)
  has = parent >= n
  slot = jnp.where(has, parent - n, e)
  left = jnp.full(n, m, jnp.int32).at[slot].min(jnp.where(has, kid, m))[:e]
  right = jnp.full(n, -1, jnp.int32).at[slot].max(jnp.where(has, kid, -1))[:e]
  h = height[n:]

  def eff_step(t, eff):
    v = jnp.maximum(h[t], jnp.maximum(eff[left[t]], eff[right[t]]))
    return eff.at[n + t].set(v)

  eff = jax.lax.fori_loop(0, e, eff_step, jnp.full(m, -jnp.inf, height.dtype))
  order = jnp.argsort(eff[n:], stable=True).astype(jnp.int32)
  new_id = jnp.zeros(m, jnp.int32).at[n + order].set(
      n + jnp.arange(e, dtype=jnp.int32))
  new_id = new_id.at[:n].set(jnp.arange(n, dtype=jnp.int32))
  new_parent = jnp.full(m, NO_PARENT, jnp.int32).at[new_id].set(
      jnp.where(parent >= 0, new_id[jnp.maximum(parent, 0)], NO_PARENT))
  new_height = jnp.zeros(m, height.dtype).at[new_id].set(height)
  return Hierarchy(parent=new_parent, height=new_height)


def _rounds_linkage(dist, size, min_pairs=DEFAULT_MIN_ROUND_MERGES,
                    max_rounds=None, *, method: str,
                    block: int = DEFAULT_BLOCK, donated: bool = False):
  """The rounds kernel (see the module docstring).

  Args:
    dist: ``float[n, n]`` distances.
    size: ``float[n]`` initial cluster sizes.
    method: one of :data:`~fairhc_jax.agglomerative.METHODS` (static).
    min_pairs: ``int[]``, the fallback threshold: a round that would merge
      fewer pairs (and fewer than half the active clusters) hands the phase
      to one-at-a-time merging.
    max_rounds: ``int[]`` or ``None``: after this many rounds, the rest is
      merged one at a time (a cap for tests and experiments).
    block: rows gathered per block (static).
    donated: also return the first phase's working matrix, for aliasing
      a donated input (static).

  Returns:
    ``(Hierarchy, RoundStats, work)``; ``work`` is ``None`` unless ``donated``.
  """
  n = dist.shape[0]
  dtype = dist.dtype
  z = jnp.zeros(n, jnp.int32)
  stats = RoundStats(jnp.zeros((), jnp.int32), z, z, z, z,
                     jnp.zeros((), jnp.int32))
  if n == 1:
    h = Hierarchy(parent=jnp.full(1, NO_PARENT, jnp.int32),
                  height=jnp.zeros(1, dtype))
    return h, stats, (dist if donated else None)
  if max_rounds is None:
    max_rounds = n
  st = _agg.init_state(dist, size, method)
  mind, nn = _agg.initial_minima(st.dist)  # blocked: no n x n temporary
  stale = jnp.zeros(n, bool)
  active = n
  first_work = None
  while True:
    c = st.dist.shape[0]
    target = active // 2 if active // 2 >= _agg._MIN_CAPACITY else 1

    def more(cr, target=target):
      return ((n - cr[0].num_merges > target) & ~cr[5]
              & (cr[4].rounds < max_rounds))

    blk = min(block, c)
    body = functools.partial(_round, min_pairs=min_pairs, method=method,
                             block=blk)
    # The stage of deferred column writes (see _flush), one per phase.
    stage = (jnp.zeros((c, _segment_cap(c, blk) + blk), dtype)
             if c >= _DEFER_MIN_SIDE else None)
    st, mind, nn, stale, stats, _, _ = jax.lax.while_loop(
        more, body, (st, mind, nn, stale, stats, jnp.zeros((), bool), stage))
    # The fallback: one merge at a time down to the phase's target.
    steps = jnp.maximum(n - st.num_merges - target, 0)
    st, mind, nn, stale = _agg._merge_phase(st, mind, nn, stale, steps, method)
    stats = stats._replace(sequential_merges=stats.sequential_merges + steps)
    active = target
    if first_work is None:
      first_work = st.dist
    if active <= 1:
      break
    st, mind, nn, stale = _compact(st, mind, nn, stale, active)
  h = _renumber(st.parent, st.height, n)
  return h, stats, (first_work if donated else None)


rounds_kernel = jax.jit(_rounds_linkage,
                        static_argnames=("method", "block", "donated"))
"""The jitted rounds kernel ``(dist, size, min_pairs, max_rounds, *, method, block) -> (Hierarchy, RoundStats, None)``."""

rounds_kernel_donating = jax.jit(
    functools.partial(_rounds_linkage, donated=True),
    static_argnames=("method", "block"), donate_argnums=(0,))


def rounds_linkage_kernel(dist: jax.Array, *, method: str = "average",
                          weights=None,
                          min_round_merges: int = DEFAULT_MIN_ROUND_MERGES,
                          max_rounds=None, block: int = DEFAULT_BLOCK):
  """Raw rounds kernel with its statistics (no input checks; jit/vmap safe).

  :func:`fairhc_jax.agglomerative.linkage_kernel` with ``algorithm="rnn"``
  runs this with the defaults; the extra knobs are for experiments and
  tests. ``min_round_merges`` and ``max_rounds`` are traced (changing them
  does not recompile); ``method`` and ``block`` are static.

  Args:
    dist: ``float[n, n]`` distances.
    method: one of :data:`~fairhc_jax.agglomerative.METHODS`.
    weights: ``None`` or ``float[n]`` / ``int[n]`` vertex weights.
    min_round_merges: ``int``, the fallback threshold.
    max_rounds: ``int`` or ``None`` (no cap), rounds before the fallback.
    block: rows per gathered block.

  Returns:
    ``(Hierarchy, RoundStats)``.
  """
  n = dist.shape[-1]
  size = (jnp.ones(n, dist.dtype) if weights is None
          else jnp.asarray(weights).astype(dist.dtype))
  cap = n if max_rounds is None else max_rounds
  h, stats, _ = rounds_kernel(dist, size, jnp.asarray(min_round_merges, jnp.int32),
                              jnp.asarray(cap, jnp.int32), method=method,
                              block=block)
  return h, stats


class LinkageStats(NamedTuple):
  """What one :func:`~fairhc_jax.agglomerative.linkage` call did (host values).

  ``merges_per_round`` etc. have one entry per round; the GPU time model of
  ``benchmarks/bench_rnn_linkage.py`` reads them.

  Attributes:
    algorithm: the kernel that ran, ``"rnn"`` or ``"sequential"``.
    method: the linkage method.
    n: number of points.
    rounds: rounds that merged pairs (0 for the sequential kernel).
    merges_per_round: ``int[rounds]``.
    rescans_per_round: ``int[rounds]``, rows re-read before each round.
    active_per_round: ``int[rounds]``, clusters at the start of each round.
    capacity_per_round: ``int[rounds]``, side of the working matrix.
    sequential_merges: merges done one at a time (all ``n - 1`` for the
      sequential kernel).
  """

  algorithm: str
  method: str
  n: int
  rounds: int
  merges_per_round: np.ndarray
  rescans_per_round: np.ndarray
  active_per_round: np.ndarray
  capacity_per_round: np.ndarray
  sequential_merges: int

  def __str__(self) -> str:
    mpr = self.merges_per_round
    lines = [f"{self.algorithm} {self.method} linkage of {self.n} points: "
             f"{self.rounds} rounds merged {int(mpr.sum())} pairs, "
             f"{self.sequential_merges} merges one at a time"]
    if self.rounds:
      share = mpr / np.maximum(self.active_per_round, 1)
      lines.append(f"  merges per round: first {int(mpr[0])}, median "
                   f"{int(np.median(mpr))}, last {int(mpr[-1])}; share of "
                   f"active clusters merging: {share.min():.3f}-"
                   f"{share.max():.3f}")
    return "\n".join(lines)


def linkage_stats(algorithm: str, method: str, n: int, stats) -> LinkageStats:
  """The host :class:`LinkageStats` of a kernel's :class:`RoundStats` (or ``None``)."""
  if stats is None:
    e = np.zeros(0, np.int64)
    return LinkageStats(algorithm, method, n, 0, e, e, e, e, max(n - 1, 0))
  r = int(stats.rounds)
  cut = lambda a: np.asarray(a)[:r].astype(np.int64)  # noqa: E731
  return LinkageStats(algorithm, method, n, r, cut(stats.merges_per_round),
                      cut(stats.rescans_per_round), cut(stats.active_per_round),
                      cut(stats.capacity_per_round), int(stats.sequential_merges))
