"""Tree objectives of the Dasgupta framework and their upper bounds.

For a hierarchy ``T`` over ``n`` points with (optional) integer vertex weights
``w(i) >= 1`` (unweighted: all ones; ``w(A) = sum_{a in A} w(a)``):

* Dasgupta cost (minimise): ``cost(T) = sum_{i<j} s(i,j) * w(leaves(T[i v j]))``
* Moseley-Wang revenue (maximise):
  ``rev(T) = sum_{i<j} s(i,j) * (w(V) - w(leaves(T[i v j])))``
* Cohen-Addad et al. value (maximise):
  ``val(T) = sum_{i<j} d(i,j) * w(leaves(T[i v j]))``
* Upper bounds: ``rev(T) <= (w(V) - min_{u != v} w({u, v})) * s(V)`` and
  ``val(T) <= w(V) * d(V)``, with ``s(V) = sum_{i<j} s(i,j)``.

``i v j`` is the lowest common ancestor of leaves ``i`` and ``j``. The weighted
forms are those of Ahmadian et al. (NeurIPS 2020, section 2.1), where the
points are fairlets of ``w(i)`` original points and pair terms keep the given
``s(i, j)`` / ``d(i, j)``; that paper states cost only unweighted, and this
module weights it the same way as value (``|leaves|`` becomes ``w(leaves)``),
so all weights equal to one give the unweighted objectives exactly. Trees may
be non-binary (any internal node with two or more children).

Algorithm (O(n^2) work, no per-pair LCA queries). Put the leaves in DFS order
(:func:`fairhc_jax.hierarchy.leaf_ranges`). For consecutive leaves ``k, k+1``
let ``g[k] = w(leaves(lca))``; a node's leaf weight grows strictly towards the
root, so for positions ``p < q`` the LCA weight is ``max(g[p..q-1])``. Rows are
processed in blocks of ``B`` consecutive DFS positions ``[a0, a1)``: for a
column at position ``q >= a1`` the LCA weight is
``max(hR[p], R[q])`` with ``hR[p] = max(g[p..a1-1])`` per row and
``R[q] = max(g[a1..q-1])`` per column, so each block costs one fused
``max``/``min``/multiply/reduce over a ``B x n`` slab of the matrix (rows
gathered, columns left in their original order). The per-column factors of
every block form an ``(n/B) x n`` table built before the pass (from an
``(n/B)^2`` table of block maxima), zero for the columns not in a later
block, so the masks are arithmetic (see :func:`_blocked_sums`). Pairs inside
a block use a ``B x B`` table of running maxima (a log-depth
``associative_scan``; ``lax.cummax`` lowers to an O(B^2)-per-row
reduce-window on XLA:CPU), applied to the ``B x B`` entries gathered from the
slab. Nothing of size ``n x n`` is materialised: the extra memory is the
``(n/B) x n`` table and one step's slab (about 2^21 entries), and the kernel
runs at any ``n`` whose matrix fits (n = 30,000 included).

Why a loop over row blocks (measured, XLA:CPU, 2 cores, n = 4,000): gathering
the whole matrix into leaf order (``m[order]``) and summing it takes about 5x
one ``jnp.sum`` (every ``n x n`` temporary is a fresh allocation), and a
gather from the ``(n/B, n)`` table inside a whole-matrix reduction is not
fused (XLA materialises it as ``n x n``). Each loop step handles ``K`` blocks
(``K B n`` about 2^21 entries; 2^20 to 2^22 were alike, one step of the
whole matrix about 2x slower) in one gather and two fused reductions. What the loop costs
on XLA:CPU (jax 0.10): a standalone float reduction, ``jnp.sum`` included,
runs as a YNNPACK fusion, fast and on every core; inside a ``while`` loop the
same reductions cost about 2-3x one ``jnp.sum`` even for plain row sums of
contiguous slabs, and each step adds a fixed cost (single-block steps, 63 at
n = 4,000, made the value kernel 3x slower than 16 steps of four blocks), so
few large steps are best (``benchmarks/bench_floors.py`` prints these floors;
all figures measured while other jobs ran).

Precision: each pair factor (an integer leaf weight) is exact in the working
dtype while ``w(V) < 2^24`` in float32 (``2^53`` in float64). The ``n^2/2``
products are summed per row by XLA's vectorised reduction, then per block of
``B`` rows, then over the ``n/B`` block totals with ``jnp.sum``; the relative
error is a few units of ``n * eps`` at worst, and measured at ``n = 10,000``
(average-linkage tree, float64 NumPy reference) it was at most ``2e-7`` in
float32 (``B`` = 64 and 128) and ``1e-14`` in float64. Revenue is summed from its
own non-negative factors ``w(V) - w(lca)`` (no cancellation against the cost).

Measured alternatives that did not help (jax 0.10, XLA:CPU, 2 cores; n =
4,000 unless stated; other jobs running): a second sum in the loop's
variadic reduction costs about as much as the first (one term 30-35 ms of
CPU, two 58-70 ms, five about 90 ms), one ``jnp.sum`` per term 2x and one
reduction of the stacked terms 4x the variadic form
(``benchmarks/bench_floors.py --terms``); d(V) and s(V) as whole-matrix
passes beside a three-term loop were slower than the five-term loop (104
against 91 ms); a fully unrolled loop was 2x slower. Unlike the matrix
check's loop (small slabs, one core: :mod:`fairhc_jax._parallel` cuts it
into concurrent row ranges), this loop already runs on both cores (its
gather is a partitioned fusion; CPU time about 1.9x wall time), and cutting
it into concurrent ranges the same way gained nothing (n = 4,000: 5.5x ->
6.1x a sum for the value, 14.0x -> 15.4x for all five; n = 8,000: 5.2x ->
4.9x and 13.1x -> 13.1x; quieter machine).

The public functions validate their inputs in Python and then call the raw
kernels (``*_kernel``, all backed by the one jitted
:func:`lca_weight_sum_kernel`), which take ``weights`` as an array and do no
validation: ``jax.vmap`` those over batches of trees, matrices or weights.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fairhc_jax import _checks
from fairhc_jax import hierarchy as _hierarchy
from fairhc_jax.hierarchy import Hierarchy

DEFAULT_BLOCK_SIZE = 64
"""Rows per block of the objective kernels (a static argument)."""

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "cohen_addad_value",
    "cohen_addad_value_kernel",
    "dasgupta_cost",
    "dasgupta_cost_kernel",
    "lca_weight_sum_kernel",
    "leaf_order_gaps",
    "moseley_wang_revenue",
    "moseley_wang_revenue_kernel",
    "revenue_upper_bound",
    "revenue_upper_bound_kernel",
    "TreeObjectives",
    "default_similarity",
    "tree_objectives",
    "tree_objectives_kernel",
    "value_upper_bound",
    "value_upper_bound_kernel",
]


# ---------------------------------------------------------------------------
# Kernels.


@jax.jit
def _leaf_order_gaps(parent: jax.Array, weights: jax.Array):
  r = _hierarchy._leaf_ranges(parent)
  n = r.order.shape[0]
  w = jnp.asarray(weights)
  prefix = jnp.concatenate([jnp.zeros(1, w.dtype), jnp.cumsum(w[r.order])])
  node_weight = prefix[r.stop] - prefix[r.start]
  par = jnp.maximum(parent, 0)
  # Node c ends at DFS position stop[c] - 1; unless c is its parent's last
  # child, the next leaf lies in a later sibling, so their LCA is the parent.
  boundary = (parent >= 0) & (r.stop < r.stop[par])
  slot = jnp.where(boundary, r.stop - 1, n)
  gaps = jnp.zeros(n - 1, w.dtype).at[slot].set(node_weight[par], mode="drop")
  return r.order, gaps, prefix[n]


def leaf_order_gaps(h: Hierarchy, weights: jax.Array):
  """DFS leaf order and the LCA weight of each pair of consecutive leaves.

  Args:
    h: a hierarchy with ``parent: int32[m]``, ``m = 2n - 1``.
    weights: ``int[n]`` vertex weights (all ones for the unweighted case).

  Returns:
    ``(order int32[n], gaps int[n - 1], total int scalar)``: ``order`` is the
    DFS leaf order, ``gaps[k] = w(leaves(lca(order[k], order[k + 1])))`` and
    ``total = w(V)``. For positions ``p < q`` of that order,
    ``w(leaves(lca)) = max(gaps[p:q])``. Jitted on ``h.parent`` only.
  """
  return _leaf_order_gaps(h.parent, weights)


class _GapBlocks(NamedTuple):
  """The row-block layout both blocked passes over the matrix share."""
  bsz: int
  nb: int
  low: jax.Array
  gblk: jax.Array
  between: jax.Array
  suffix: jax.Array
  col_block: jax.Array
  col_prefix: jax.Array
  order_pad: jax.Array
  idx: jax.Array
  upper: jax.Array
  block_inner: Callable


def _gap_blocks(order, gaps, n: int, dt, block_size: int) -> _GapBlocks:
  """Blocks of the leaf order and the gap maxima between them (traced helper).

  ``gaps`` must already be of dtype ``dt``; ``n >= 2``.
  """
  bsz = min(block_size, n)
  nb = -(-n // bsz)
  padded = nb * bsz
  # A finite value below every gap: padding must not create inf * 0 = nan.
  low = jnp.min(gaps) - 1
  gpad = jnp.concatenate([gaps, jnp.full(padded - (n - 1), low, dt)])
  gblk = gpad.reshape(nb, bsz)
  block_max = gblk.max(axis=1)  # includes the gap to the next block
  blk = jnp.arange(nb)
  # between[b, c] = max(block_max[b+1 .. c-1]): the gaps strictly between the
  # end of block b and the start of block c (c > b + 1), else `low`.
  later = jnp.where(blk[None, :] > blk[:, None], block_max[None, :], low)
  between = lax.cummax(later, axis=1)
  between = jnp.concatenate([jnp.full((nb, 1), low, dt), between[:, :-1]],
                            axis=1)
  # prefix[q] = max(gaps[start of q's block .. q-1]) (low at a block start).
  inc = lax.cummax(gblk, axis=1)
  prefix = jnp.concatenate([jnp.full((nb, 1), low, dt), inc[:, :-1]],
                           axis=1).reshape(-1)[:n]
  suffix = lax.cummax(gblk, axis=1, reverse=True)  # hR per row position
  pos = jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
  col_block = pos // bsz
  col_prefix = prefix[pos]
  order_pad = jnp.concatenate(
      [order, jnp.full(padded - n, order[n - 1], order.dtype)])
  idx = jnp.arange(bsz)
  upper = idx[None, :] > idx[:, None]
  # inner[a, q] = max(g[a..q-1]) inside a block, for a < q.
  def block_inner(gb):
    tri = jnp.where(idx[None, :] >= idx[:, None], gb[None, :], low)
    run = lax.associative_scan(jnp.maximum, tri, axis=1)
    return jnp.concatenate([jnp.full((bsz, 1), low, dt), run[:, :-1]], axis=1)
  return _GapBlocks(bsz, nb, low, gblk, between, suffix, col_block, col_prefix,
                    order_pad, idx, upper, block_inner)


@functools.partial(jax.jit, static_argnames=("complement", "block_size"))
def _lca_weight_sum(parent: jax.Array, M: jax.Array, weights: jax.Array, *,
                    complement: bool, block_size: int) -> jax.Array:
  order, gaps, total = _leaf_order_gaps(parent, weights)
  term = ("m", "complement" if complement else "lca")
  return _blocked_sums(M, order, gaps, total, (term,), None, block_size)[0]


def lca_weight_sum_kernel(h: Hierarchy, M: jax.Array, weights: jax.Array, *,
                          complement: bool = False,
                          block_size: int = DEFAULT_BLOCK_SIZE) -> jax.Array:
  """Raw jitted ``sum_{i<j} M[i, j] * f(lca(i, j))`` (no validation).

  The one compiled kernel behind all three objectives (cost and value share
  it, so each shape compiles at most twice). It is jitted on ``h.parent``
  alone, so a tree with heights and the same tree without them share one
  compilation. ``jax.vmap`` it over a batch of trees (``Hierarchy`` with
  ``parent: int32[B, m]``), matrices or weights.

  Args:
    h: hierarchy, ``parent: int32[2n - 1]``.
    M: ``float[n, n]`` symmetric matrix (diagonal ignored).
    weights: ``int[n]`` vertex weights (``jnp.ones(n, int32)`` unweighted).
    complement: ``f = w(V) - w(leaves(lca))`` (revenue) instead of
      ``f = w(leaves(lca))`` (cost, value). Static.
    block_size: rows per block. Static.

  Returns:
    A scalar of ``M``'s dtype.
  """
  return _lca_weight_sum(h.parent, M, weights, complement=complement,
                         block_size=block_size)


def dasgupta_cost_kernel(h: Hierarchy, S: jax.Array, weights: jax.Array, *,
                         block_size: int = DEFAULT_BLOCK_SIZE) -> jax.Array:
  """Raw Dasgupta cost (no validation; jit/vmap-able).

  Args:
    h: hierarchy, ``parent: int32[2n - 1]``.
    S: ``float[n, n]`` symmetric similarities (diagonal ignored).
    weights: ``int[n]`` vertex weights (``jnp.ones(n, int32)`` unweighted).
    block_size: rows per block (static).

  Returns:
    ``sum_{i<j} S[i, j] * w(leaves(lca(i, j)))``, a scalar of ``S``'s dtype.
  """
  return lca_weight_sum_kernel(h, S, weights, complement=False,
                               block_size=block_size)


def cohen_addad_value_kernel(h: Hierarchy, D: jax.Array, weights: jax.Array, *,
                             block_size: int = DEFAULT_BLOCK_SIZE) -> jax.Array:
  """Raw Cohen-Addad et al. value (no validation; jit/vmap-able).

  Args:
    h: hierarchy, ``parent: int32[2n - 1]``.
    D: ``float[n, n]`` symmetric distances (diagonal ignored).
    weights: ``int[n]`` vertex weights.
    block_size: rows per block (static).

  Returns:
    ``sum_{i<j} D[i, j] * w(leaves(lca(i, j)))``, a scalar of ``D``'s dtype.
  """
  return lca_weight_sum_kernel(h, D, weights, complement=False,
                               block_size=block_size)


def moseley_wang_revenue_kernel(h: Hierarchy, S: jax.Array, weights: jax.Array,
                                *, block_size: int = DEFAULT_BLOCK_SIZE
                                ) -> jax.Array:
  """Raw Moseley-Wang revenue (no validation; jit/vmap-able).

  Args:
    h: hierarchy, ``parent: int32[2n - 1]``.
    S: ``float[n, n]`` symmetric similarities (diagonal ignored).
    weights: ``int[n]`` vertex weights.
    block_size: rows per block (static).

  Returns:
    ``sum_{i<j} S[i, j] * (w(V) - w(leaves(lca(i, j))))``, a scalar of
    ``S``'s dtype. Each factor is an exact integer before it meets ``S``, so
    there is no cancellation against the cost.
  """
  return lca_weight_sum_kernel(h, S, weights, complement=True,
                               block_size=block_size)


def _pair_total(m: jax.Array) -> jax.Array:
  """``sum_{i<j} m[i, j]`` for a symmetric matrix (one reduction)."""
  n = m.shape[0]
  # A strided slice reads the diagonal only (jnp.trace was ~15x slower than
  # the whole-matrix sum on XLA:CPU: it masks all n^2 entries).
  diag = m.reshape(-1)[::n + 1]
  return (jnp.sum(m) - jnp.sum(diag)) / 2


@jax.jit
def revenue_upper_bound_kernel(S: jax.Array, weights: jax.Array) -> jax.Array:
  """Raw jitted ``(w(V) - min_{u != v} w({u, v})) * s(V)`` (0 when ``n = 1``).

  Args:
    S: ``float[n, n]`` symmetric similarities.
    weights: ``int[n]`` vertex weights.
  """
  n = S.shape[0]
  if n < 2:
    return jnp.zeros((), S.dtype)
  w = jnp.asarray(weights)
  two_smallest = -jnp.sum(lax.top_k(-w, 2)[0])
  factor = (jnp.sum(w) - two_smallest).astype(S.dtype)
  return factor * _pair_total(S)


@jax.jit
def value_upper_bound_kernel(D: jax.Array, weights: jax.Array) -> jax.Array:
  """Raw jitted ``w(V) * d(V)``.

  Args:
    D: ``float[n, n]`` symmetric distances.
    weights: ``int[n]`` vertex weights.
  """
  return jnp.sum(weights).astype(D.dtype) * _pair_total(D)


# ---------------------------------------------------------------------------
# All objectives from D in one pass.


def default_similarity(d: jax.Array) -> jax.Array:
  """The papers' similarity ``s = 1 / (1 + d)`` (elementwise)."""
  return 1 / (1 + d)


class TreeObjectives(NamedTuple):
  """Every objective of one tree, from :func:`tree_objectives` (scalars).

  Attributes:
    cost: Dasgupta cost ``sum_{i<j} s(i,j) w(leaves(i v j))`` (minimise).
    revenue: Moseley-Wang revenue ``sum_{i<j} s(i,j) (w(V) - w(leaves(i v j)))``.
    value: Cohen-Addad et al. value ``sum_{i<j} d(i,j) w(leaves(i v j))``.
    revenue_upper_bound: ``(w(V) - min_{u != v} w({u, v})) * s(V)``.
    value_upper_bound: ``w(V) * d(V)``.
  """

  cost: jax.Array
  revenue: jax.Array
  value: jax.Array
  revenue_upper_bound: jax.Array
  value_upper_bound: jax.Array


_STEP_ELEMENTS = 1 << 21
"""Matrix entries per loop step of :func:`_blocked_sums` (about 8 MB in float32)."""

_TREE_TERMS = (("m", "lca"), ("s", "lca"), ("s", "complement"), ("m", "mask"),
               ("s", "mask"))
"""The five sums of :func:`tree_objectives`: value, cost, revenue, d(V), s(V)."""


def _blocked_sums(d, order, gaps, total, terms, transform, block_size: int,
                  step_elements: int = _STEP_ELEMENTS):
  """Sums ``sum_{p<q} x[p, q] * f(p, q)`` for each ``(x, f)`` of ``terms`` (traced).

  Args:
    d: ``float[n, n]`` matrix in the original point order.
    order, gaps, total: from :func:`leaf_order_gaps` (``gaps`` any dtype).
    terms: static tuple of ``(source, factor)`` pairs: source ``"m"`` (the
      entries of ``d``) or ``"s"`` (``transform`` of them, computed on the
      fly); factor ``"lca"`` (``w(leaves(lca))``), ``"complement"``
      (``w(V) - w(leaves(lca))``) or ``"mask"`` (1: the pair total).
    transform: elementwise function (used only when a source is ``"s"``).
    block_size: rows per block ``B`` (static).
    step_elements: matrix entries per loop step (static).

  Returns:
    ``float[len(terms)]`` in ``d``'s dtype.

  The row blocks of the module docstring (``B`` DFS positions each), ``K``
  of them per loop step (``K * B * n`` about ``step_elements``), with the
  loop body reduced to one gather of the ``K * B`` rows and two fused
  reductions (one variadic reduction when there are several terms, so the
  transformed entry is computed once and feeds all its sums). Everything
  that depends only on the tree is built before the loop: the per-block
  column factors ``c[b, j]`` (an ``nb x n`` table, ``nb = n / B``; ``0``
  for the columns not in a later block, else ``>= 1``) and the ``B x B``
  running-maximum tables of the pairs inside each block. With
  ``mx = max(hR[p], c[b, j])`` (``1 <= mx <= w(V)``), the masks are
  arithmetic (no select): with ``cw = c * w(V)`` (``0`` or ``>= w(V)``; never
  ``0 * inf``, since ``w(V)`` is finite) the LCA factor is ``min(mx, cw)``,
  the complement ``min(w(V) - mx, cw)`` and the mask ``min(cw, 1)``;
  each is an exact integer (or 0) before it meets a matrix entry. Per-row
  sums (the inner reduction) go to an ``[nb, B, k]`` buffer and are summed
  per block and over the blocks after the loop.
  """
  n = d.shape[0]
  dt = d.dtype
  k_terms = len(terms)
  zero = jnp.zeros((), dt)
  if n < 2:
    return jnp.zeros(k_terms, dt)
  gaps = gaps.astype(dt)
  W = total.astype(dt)
  L = _gap_blocks(order, gaps, n, dt, block_size)
  bsz, nb = L.bsz, L.nb
  # At least two blocks per step: with one (n > 2^21 / (2 B) = 16,384 at the
  # defaults) XLA:CPU compiled the one-term kernels into a loop 12x slower
  # (cohen_addad_value_kernel at n = 32,000: 9.6 s against 0.86 s with two
  # blocks per step; quiet, lead's probe).
  K = int(min(nb, max(2, step_elements // (bsz * n))))
  steps = -(-nb // K)
  nbp = steps * K  # blocks padded to whole steps; padded blocks add zeros
  cb = L.col_block
  blk = jnp.arange(nbp)
  between, suffix, gblk = L.between, L.suffix, L.gblk
  if nbp > nb:
    extra = nbp - nb
    between = jnp.concatenate([between, jnp.zeros((extra, nb), dt)])
    suffix = jnp.concatenate([suffix, jnp.ones((extra, bsz), dt)])
    gblk = jnp.concatenate([gblk, jnp.full((extra, bsz), L.low, dt)])
  # c[b, j]: the factor of column j for row block b, before the row part
  # (>= low >= 1 for columns in later blocks, 0 otherwise).
  ctab = jnp.where(cb[None, :] > blk[:, None],
                   jnp.maximum(between[:, cb], L.col_prefix[None, :]), 0)
  rows_all = jnp.concatenate(
      [L.order_pad, jnp.full(nbp * bsz - L.order_pad.shape[0], order[n - 1], order.dtype)])
  # Padding rows (copies of the last leaf) lie in the last real block, which
  # has no later block, or in padded blocks: their c[b] rows are all zero, so
  # they add nothing outside the block; inside it ``keep`` drops them.
  row_valid = (jnp.arange(nbp * bsz) < n).reshape(nbp, bsz)
  # Pairs inside a block: factor tables (zero outside p < q of valid rows).
  keep = L.upper[None] & row_valid[:, None, :] & row_valid[:, :, None]
  inner = jax.vmap(L.block_inner)(gblk)
  inner_fac = {"lca": jnp.where(keep, inner, 0),
               "complement": jnp.where(keep, W - inner, 0),
               "mask": keep.astype(dt)}
  used = sorted({f for _, f in terms})
  inner_fac = {f: inner_fac[f] for f in used}
  needs_s = any(src == "s" for src, _ in terms)

  def addk(x, y):
    return tuple(u + v for u, v in zip(x, y))

  def body(t, acc):
    outer_acc, inner_acc = acc
    idx = lax.dynamic_slice_in_dim(rows_all, t * K * bsz, K * bsz)
    slab = d[idx].reshape(K, bsz, n)  # float[K, B, n], columns in original order
    src = {"m": slab, "s": transform(slab) if needs_s else None}
    c = lax.dynamic_slice_in_dim(ctab, t * K, K)[:, None, :]
    h = lax.dynamic_slice_in_dim(suffix, t * K, K)[:, :, None]
    cbig = c * W  # 0 for masked columns, >= w(V) >= every factor otherwise
    mx = jnp.maximum(h, c)
    fac = {"lca": lambda: jnp.minimum(mx, cbig),
           "complement": lambda: jnp.minimum(W - mx, cbig),
           "mask": lambda: jnp.minimum(cbig, 1)}
    fac = {f: fac[f]() for f in used}
    rs = lax.reduce(tuple(src[a] * fac[f] for a, f in terms), (zero,) * k_terms,
                    addk, (2,))
    outer_acc = lax.dynamic_update_slice_in_dim(outer_acc, jnp.stack(rs, axis=-1),
                                                t * K, 0)
    # The B x B pairs inside each block, gathered from the slab (in cache).
    loc = jnp.broadcast_to(idx.reshape(K, 1, bsz), (K, bsz, bsz))
    sub = jnp.take_along_axis(slab, loc, axis=2)
    ssrc = {"m": sub, "s": transform(sub) if needs_s else None}  # elementwise
    ifac = {f: lax.dynamic_slice_in_dim(v, t * K, K) for f, v in inner_fac.items()}
    ins = lax.reduce(tuple(ssrc[a] * ifac[f] for a, f in terms), (zero,) * k_terms,
                     addk, (1, 2))
    inner_acc = lax.dynamic_update_slice_in_dim(inner_acc, jnp.stack(ins, axis=-1),
                                                t * K, 0)
    return outer_acc, inner_acc

  init = (jnp.zeros((nbp, bsz, k_terms), dt), jnp.zeros((nbp, k_terms), dt))
  outer_rows, inner_blocks = lax.fori_loop(0, steps, body, init)
  # Per block, then over the blocks.
  outer_blocks = jnp.sum(outer_rows, axis=1)
  return jnp.sum(outer_blocks + inner_blocks, axis=0)


def _pair_max_sums(d, order, gaps, total, transform, block_size: int):
  """``(value, cost, revenue, d(V), s(V))`` in one pass over ``d`` (traced).

  :func:`_blocked_sums` with the five terms of :func:`tree_objectives`:
  ``s = transform(slab)`` is computed once per entry on the fly (never
  ``n x n``) and feeds the cost, revenue and ``s(V)`` sums of one variadic
  reduction.

  Measured at n = 4,000 (CPU time, other jobs running, ratio to one
  ``jnp.sum``): the previous body (some 40 kernels per block, among them
  small reductions that XLA:CPU hands to YNNPACK fusions at a high per-call
  cost) 12-16x; this one 10-14x. The floor of the design on XLA:CPU is the
  fused five-sum arithmetic itself: the same loop over contiguous slabs, no
  gather, no tree, measured 6.4x (``benchmarks/bench_floors.py``).
  """
  tot = _blocked_sums(d, order, gaps, total, _TREE_TERMS, transform, block_size)
  return tot[0], tot[1], tot[2], tot[3], tot[4]


@functools.partial(jax.jit, static_argnames=("similarity", "block_size"))
def _tree_objectives(parent, D, weights, *, similarity, block_size):
  order, gaps, total = _leaf_order_gaps(parent, weights)
  transform = default_similarity if similarity is None else similarity
  val, cost, rev, dv, sv = _pair_max_sums(D, order, gaps, total, transform, block_size)
  n = D.shape[0]
  w = jnp.asarray(weights)
  if n >= 2:
    two_smallest = -jnp.sum(lax.top_k(-w, 2)[0])
    rfac = (jnp.sum(w) - two_smallest).astype(D.dtype)
  else:
    rfac = jnp.zeros((), D.dtype)
  return TreeObjectives(cost=cost, revenue=rev, value=val,
                        revenue_upper_bound=rfac * sv,
                        value_upper_bound=jnp.sum(w).astype(D.dtype) * dv)


def tree_objectives_kernel(h: Hierarchy, D: jax.Array, weights: jax.Array, *,
                           similarity=None,
                           block_size: int = DEFAULT_BLOCK_SIZE) -> TreeObjectives:
  """Raw :func:`tree_objectives` (no validation; jit/vmap-able).

  Args:
    h: hierarchy, ``parent: int32[2n - 1]`` (only ``h.parent`` is read).
    D: ``float[n, n]`` symmetric distances (diagonal ignored).
    weights: ``int[n]`` vertex weights.
    similarity: ``None`` (``1 / (1 + d)``) or an elementwise function of
      ``d`` (static: pass the same function object to reuse the compile).
    block_size: rows per block (static).
  """
  return _tree_objectives(h.parent, D, weights, similarity=similarity,
                          block_size=block_size)


# ---------------------------------------------------------------------------
# Validating entry points.


def _int_weights(fn: str, weights, n: int):
  """Validated weights as an integer array (ones when ``None``)."""
  idt = jnp.result_type(int)  # int32, or int64 under x64
  w = _checks.check_weights(fn, "weights", weights, n)
  if w is None:
    return jnp.ones(n, idt)
  if _checks.is_concrete(w):
    total = float(np.sum(np.asarray(w, dtype=np.float64)))
    limit = float(np.iinfo(np.dtype(idt)).max)
    if total > limit:
      _checks.fail(fn, "weights", f"sum to at most {int(limit)}",
                   f"total weight {total:.0f}")
  return w.astype(idt)


def _validated(fn: str, h, M, arg: str, kind: str, weights, validate: bool = True):
  """The checked ``(h, M, integer weights)`` of an objective's entry point."""
  M = _checks.check_square_matrix(fn, arg, M, kind=kind, validate=validate)
  n = M.shape[0]
  h = _hierarchy.check_hierarchy(fn, h)
  length = h.parent.shape[0]
  if length != 2 * n - 1:
    _checks.fail(fn, "h", f"have capacity 2n - 1 = {2 * n - 1} to match the "
                 f"{n} x {n} matrix {arg}",
                 f"parent of length {length} ({(length + 1) // 2} leaves)")
  return h, M, _int_weights(fn, weights, n)


def dasgupta_cost(h: Hierarchy, S, *, weights=None, validate: bool = True) -> jax.Array:
  """Dasgupta cost ``sum_{i<j} S[i, j] * w(leaves(T[i v j]))`` (minimise).

  Args:
    h: a valid hierarchy over ``n`` leaves (binary or not).
    S: ``float[n, n]`` symmetric, non-negative, finite similarities; the
      diagonal is ignored.
    weights: optional ``int[n]`` vertex weights ``>= 1`` (fairlet sizes);
      ``None`` means all ones (``w(leaves) = |leaves|``).
    validate: ``False`` skips the matrix's value checks (one pass over it)
      for a matrix already checked (:func:`fairhc_jax.check_distances`);
      shapes, the tree and the weights are still checked. Every objective
      function here takes it. A JAX array that passed the check once (in
      any public function) is remembered and not checked again, so
      ``validate=False`` matters only for NumPy inputs and fresh arrays.

  Returns:
    A scalar of ``S``'s float dtype (float32 by default). O(n^2) work.

  Raises:
    ValueError / TypeError: on a malformed tree, matrix or weights.
  """
  h, S, w = _validated("dasgupta_cost", h, S, "S", "similarity", weights, validate)
  return dasgupta_cost_kernel(h, S, w)


def moseley_wang_revenue(h: Hierarchy, S, *, weights=None, validate: bool = True) -> jax.Array:
  """Moseley-Wang revenue ``sum_{i<j} S[i,j] * (w(V) - w(leaves(T[i v j])))``.

  Args:
    h: a valid hierarchy over ``n`` leaves (binary or not).
    S: ``float[n, n]`` symmetric, non-negative, finite similarities; the
      diagonal is ignored.
    weights: optional ``int[n]`` vertex weights ``>= 1``; ``None`` = ones.

  Returns:
    A scalar of ``S``'s float dtype; at most :func:`revenue_upper_bound`.
  """
  h, S, w = _validated("moseley_wang_revenue", h, S, "S", "similarity", weights, validate)
  return moseley_wang_revenue_kernel(h, S, w)


def cohen_addad_value(h: Hierarchy, D, *, weights=None, validate: bool = True) -> jax.Array:
  """Cohen-Addad et al. value ``sum_{i<j} D[i, j] * w(leaves(T[i v j]))``.

  Args:
    h: a valid hierarchy over ``n`` leaves (binary or not).
    D: ``float[n, n]`` symmetric, non-negative, finite distances; the
      diagonal is ignored.
    weights: optional ``int[n]`` vertex weights ``>= 1``; ``None`` = ones.

  Returns:
    A scalar of ``D``'s float dtype; at most :func:`value_upper_bound`.
  """
  h, D, w = _validated("cohen_addad_value", h, D, "D", "distance", weights, validate)
  return cohen_addad_value_kernel(h, D, w)


def revenue_upper_bound(S, *, weights=None, validate: bool = True) -> jax.Array:
  """Upper bound on revenue: ``(w(V) - min_{u != v} w({u, v})) * s(V)``.

  Unweighted this is ``(n - 2) * s(V)`` (Moseley and Wang; weighted form from
  Ahmadian et al. 2020, eq. 1), with ``s(V) = sum_{i<j} S[i, j]``. Zero when
  ``n = 1`` (no pairs).

  Args:
    S: ``float[n, n]`` symmetric, non-negative, finite similarities.
    weights: optional ``int[n]`` vertex weights ``>= 1``; ``None`` = ones.
  """
  fn = "revenue_upper_bound"
  S = _checks.check_square_matrix(fn, "S", S, kind="similarity", validate=validate)
  w = _int_weights(fn, weights, S.shape[0])
  return revenue_upper_bound_kernel(S, w)


def value_upper_bound(D, *, weights=None, validate: bool = True) -> jax.Array:
  """Upper bound on value: ``w(V) * d(V)`` with ``d(V) = sum_{i<j} D[i, j]``.

  Args:
    D: ``float[n, n]`` symmetric, non-negative, finite distances.
    weights: optional ``int[n]`` vertex weights ``>= 1``; ``None`` = ones.
  """
  fn = "value_upper_bound"
  D = _checks.check_square_matrix(fn, "D", D, kind="distance", validate=validate)
  w = _int_weights(fn, weights, D.shape[0])
  return value_upper_bound_kernel(D, w)


def tree_objectives(h: Hierarchy, D, *, weights=None,
                    similarity: Optional[Callable] = None,
                    validate: bool = True) -> TreeObjectives:
  """Cost, revenue, value and both upper bounds of a tree, in one pass over ``D``.

  The similarity ``s = similarity(d)`` (default ``1 / (1 + d)``, the
  papers') is computed on the fly inside the pass, block by block: no
  ``n x n`` similarity matrix is ever allocated. Equal (to rounding) to
  ``dasgupta_cost(h, S)``, ``moseley_wang_revenue(h, S)``,
  ``cohen_addad_value(h, D)``, ``revenue_upper_bound(S)`` and
  ``value_upper_bound(D)`` with ``S = similarity(D)`` off the diagonal.

  Args:
    h: a valid hierarchy over ``n`` leaves (binary or not).
    D: ``float[n, n]`` symmetric, non-negative, finite distances; the
      diagonal is ignored.
    weights: optional ``int[n]`` vertex weights ``>= 1``; ``None`` = ones.
    similarity: ``None`` or an elementwise ``jnp`` function of the distances
      giving non-negative finite similarities (e.g.
      ``lambda d: jnp.exp(-d)``). It is a static argument of the compiled
      pass: reuse one function object to reuse the compile.
    validate: ``False`` skips the value checks of ``D`` (see
      :func:`dasgupta_cost`).

  Returns:
    :class:`TreeObjectives` of scalars in ``D``'s float dtype.
  """
  fn = "tree_objectives"
  if similarity is not None and not callable(similarity):
    _checks.fail(fn, "similarity", "be None or an elementwise function of the distances",
                 repr(similarity), TypeError)
  h, D, w = _validated(fn, h, D, "D", "distance", weights, validate)
  return tree_objectives_kernel(h, D, w, similarity=similarity)
