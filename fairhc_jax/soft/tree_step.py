"""The hard-forward loss and its gradient by tree sums: no ``n x n x n'`` product.

The dense loss (:func:`fairhc_jax.soft.loss`) evaluates the expected cost
for soft point assignments ``A``; its big products ``S Anc`` and ``A R``
cost ``2 n^2 n'`` and ``2 n n'^2`` flops (16 and 2 GFLOP at n = 4,000,
n' = 512). This module evaluates the same formula at the *decoded* point
assignment (straight-through, as the dense loss already does for ``B``):

* forward: ``A`` and ``B`` replaced by their most likely parents, i.e. the
  value is the exact Dasgupta cost of the decoded (compressed, uncompleted)
  tree plus ``penalty`` times the fairness penalty of its exact colour
  counts (the ``decoded_penalty`` of the dense loss);
* backward: the gradient of the dense loss's relaxed formula evaluated at
  that hard point, written out by hand. Because the expected cost is
  multilinear in the rows of ``A``, ``dE/dA[i, z]`` there is the exact cost
  of the decoded tree with point ``i`` moved under node ``z`` (up to a
  constant per row), so a step on ``A`` is a soft version of a local search
  over single-point moves.

Everything is a per-node sum over a tree, computed on node-major arrays
(``float[n', n]``: one contiguous row per internal node) instead of matrix
products. Children have smaller indices than their parents, so

* subtree sums (``R X`` for ``R = (I - B)^{-1}``) are one loop of row
  additions, children before parents (:func:`_up_rows`);
* path sums (``X R^T``: over a node's ancestors) are one loop of row
  additions, parents before children (:func:`_down_rows`);
* ``M = S0 Anc`` (similarity of each point to the points under each node)
  is the rows of ``S`` summed by their point's parent (a segment sum), then
  a subtree sum: ``O(n^2)`` additions instead of ``2 n^2 n'`` flops;
* whether a point lies under a node (or under its parent) is an interval
  test on pre-order positions, computed inside the passes that use it;
  small per-node sums (sizes, colour counts) are products with the hard
  reach matrix.

On XLA:CPU this layout beat pre-order prefix sums with Euler-tour column
gathers by about 3x at n = 4,000, n' = 512 (``benchmarks/bench_soft.py
step``). What decides the time there is the number of ``[n', n]`` arrays
written to memory, so the code avoids them: compares are written as
clipped arithmetic (XLA:CPU fuses arithmetic into a reduction, a
compare-and-convert it writes out first), the children's sums are
scattered into the gradient in place, and ``gB`` is computed on its
support only, where the points-by-subtree term is ``2 W`` (no second
transpose). One ``[n', n]`` transpose remains (``gA`` to the parameters'
layout), done once in blocks so that the optimiser reads it contiguously
(a plain transpose was fused into each of its consumers, each reading with
a stride).

Per step: ``O(n^2 + n n' + n'^2)`` work plus ``O(n')`` sequential scalar
steps (the DFS layout). Exactness: the value equals
:func:`fairhc_jax.dasgupta_cost` of the decoded tree before clean-up
(tested), and the gradients equal ``jax.grad`` of the dense loss at one-hot
``A`` (``gB`` on ``B``'s support, zero off it; tested in float64).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from fairhc_jax.soft import fairness as _fair
from fairhc_jax.soft import params as _params
from fairhc_jax.soft.params import SoftHierarchy

__all__ = ["Layout", "hard_parents_kernel", "layout", "tree_loss_and_grad"]


class Layout(NamedTuple):
  """DFS layout of a hard soft-tree (all ``int32``).

  Attributes:
    leaf_parent: ``int[n]`` parent (soft node) of every point.
    node_parent: ``int[n']`` parent of every internal node (root: ``n'``).
    pos: ``int[n']`` pre-order position of every internal node (root 0).
    cnt: ``int[n']`` internal nodes in the subtree (itself included).
    enter: ``int[n']`` Euler-tour index of entering the node (``0..2n'-1``).
    events: ``int[2n']`` node of every Euler event.
    signs: ``float[2n']`` ``+1`` (enter) / ``-1`` (leave).
    node_at: ``int[n']`` node at every pre-order position.
    point_order: ``int[n]`` points sorted by their parent's position.
    lo, hi: ``int[n']`` range of the points under the node in
      ``point_order``; ``direct_hi`` the end of its own points (they start
      at ``lo``).
  """

  leaf_parent: jax.Array
  node_parent: jax.Array
  pos: jax.Array
  cnt: jax.Array
  enter: jax.Array
  events: jax.Array
  signs: jax.Array
  node_at: jax.Array
  point_order: jax.Array
  lo: jax.Array
  hi: jax.Array
  direct_hi: jax.Array


def hard_parents_kernel(params: SoftHierarchy):
  """``(leaf_parent int32[n], node_parent int32[n'])``: arg-max parents (root ``n'``).

  Ties go to the smallest index, as :func:`fairhc_jax.soft.decode`.
  """
  k = params.A.shape[-1]
  lp = _first_max(params.A)
  mask = _params.parent_mask(k)
  low = jnp.asarray(-jnp.finfo(params.B.dtype).max, params.B.dtype)   # finite: see _first_max
  npar = _first_max(jnp.where(mask, params.B, low))
  npar = npar.at[k - 1].set(k)
  return lp, npar


def _first_max(X):
  """``int32[r]``: index of the first maximum of every row (argmax is slow on XLA:CPU).

  Rows must have a finite maximum (``-inf`` entries are fine elsewhere),
  and a miss must be at least the smallest normal number below it: true
  whenever the maximum is at least ``2^-100`` or so (simplex rows: at least
  ``1 / k``), since two distinct floats that large differ by a normal number.
  """
  k = X.shape[-1]
  # Float arithmetic, not a select and an integer min (3-4x slower on XLA:CPU):
  # a miss adds k to its index, so the minimum is the first hit (exact below
  # 2^24). The miss indicator is min((max - x) / tiny, 1) (0 at a hit, 1
  # elsewhere), not a compare: XLA:CPU fuses it into the reduction, where a
  # compare-and-convert is written out first and a sign() made the reduction
  # 8x slower (measured at [4000, 512]).
  m = jnp.max(X, axis=-1, keepdims=True)
  # An identity rounding (the dtype's own widths): without it XLA:CPU fuses
  # the broadcast of the maximum into the reduction and writes a full
  # [r, k] array of row maxima (measured: 1.5x the time of the whole kernel).
  fi = jnp.finfo(X.dtype)
  m = jax.lax.reduce_precision(m, exponent_bits=fi.nexp, mantissa_bits=fi.nmant)
  miss = jnp.minimum((m - X) * (1 / fi.tiny), 1).astype(jnp.float32)
  idx = jnp.arange(k, dtype=jnp.float32) + k * miss
  return jnp.min(idx, axis=-1).astype(jnp.int32)


def layout(leaf_parent: jax.Array, node_parent: jax.Array) -> Layout:
  """The DFS layout of a hard tree (jit-safe; ``O(n')`` sequential scalar steps).

  Args:
    leaf_parent: ``int[n]`` in ``[0, n')``.
    node_parent: ``int[n']`` with ``node_parent[z] > z``, ``n'`` at the root.
  """
  k = node_parent.shape[0]
  n = leaf_parent.shape[0]
  idx = jnp.arange(k, dtype=jnp.int32)
  par = node_parent

  def up(z, cnt):                       # children before parents
    return cnt.at[par[z]].add(cnt[z], mode="drop")
  cnt = jax.lax.fori_loop(0, k - 1, up, jnp.ones(k + 1, jnp.int32))[:k]
  # Siblings in index order: offset = subtree sizes of the earlier siblings.
  same = (par[:, None] == par[None, :]) & (idx[None, :] < idx[:, None])
  off = jnp.sum(jnp.where(same, cnt[None, :], 0), axis=1).astype(jnp.int32)

  def down(t, carry):                   # parents before children
    pos, dep = carry
    z = k - 2 - t
    p = par[z]
    pos = pos.at[z].set(pos[p] + 1 + off[z])
    dep = dep.at[z].set(dep[p] + 1)
    return pos, dep
  pos, dep = jax.lax.fori_loop(0, k - 1, down, (jnp.zeros(k, jnp.int32),
                                                jnp.zeros(k, jnp.int32)))
  enter = 2 * pos - dep
  leave = enter + 2 * cnt - 1
  events = jnp.zeros(2 * k, jnp.int32).at[enter].set(idx).at[leave].set(idx)
  signs = jnp.zeros(2 * k, jnp.float32).at[enter].set(1.0).at[leave].set(-1.0)
  node_at = jnp.zeros(k, jnp.int32).at[pos].set(idx)
  key = pos[leaf_parent]
  point_order = jnp.argsort(key, stable=True).astype(jnp.int32)
  sorted_key = key[point_order]
  lo = jnp.searchsorted(sorted_key, pos, side="left").astype(jnp.int32)
  hi = jnp.searchsorted(sorted_key, pos + cnt, side="left").astype(jnp.int32)
  direct_hi = jnp.searchsorted(sorted_key, pos + 1, side="left").astype(jnp.int32)
  del n
  return Layout(leaf_parent, node_parent, pos, cnt, enter, events, signs, node_at,
                point_order, lo, hi, direct_hi)


class TreeMetrics(NamedTuple):
  loss: jax.Array
  cost: jax.Array
  penalty: jax.Array


def _up_rows(X, node_parent):
  """``Y[u] = sum_{z in subtree(u)} X[z]`` for ``X: float[n', m]`` (rows are nodes).

  One row addition per node, children before parents (``node_parent[z] >
  z``): ``O(n' m)`` work in ``n' - 1`` sequential steps, each a contiguous
  row, where the pre-order prefix sums of :func:`subtree_sums` need a column
  gather.
  """
  k = X.shape[0]

  def body(z, Y):
    p = node_parent[z]
    row = jax.lax.dynamic_index_in_dim(Y, z, 0, keepdims=True)
    tot = jax.lax.dynamic_index_in_dim(Y, p, 0, keepdims=True) + row
    return jax.lax.dynamic_update_index_in_dim(Y, tot, p, 0)
  return jax.lax.fori_loop(0, k - 1, body, X)


def _down_rows(X, node_parent):
  """``Y[z] = sum_{u ancestor-or-self of z} X[u]`` for ``X: float[n', m]`` (parents first)."""
  k = X.shape[0]

  def body(t, Y):
    z = k - 2 - t
    p = node_parent[z]
    tot = (jax.lax.dynamic_index_in_dim(Y, z, 0, keepdims=True)
           + jax.lax.dynamic_index_in_dim(Y, p, 0, keepdims=True))
    return jax.lax.dynamic_update_index_in_dim(Y, tot, z, 0)
  return jax.lax.fori_loop(0, k - 1, body, X)


def _reach(lay: Layout, dtype):
  """``float[n', n']``: ``Rn[z, y] = 1`` iff ``y`` is ``z`` or an ancestor of ``z``.

  Built from the pre-order intervals (``pos[y] <= pos[z] < pos[y] +
  cnt[y]``) in one elementwise pass: subtree sums of small per-node arrays
  are then ``Rn^T X`` and path sums ``Rn X`` (``n'^2 m`` flops, no
  sequential loop).
  """
  pz = lay.pos[:, None]
  return ((pz >= lay.pos[None, :]) & (pz < (lay.pos + lay.cnt)[None, :])).astype(dtype)


def _outer_sum(left, right):
  """``left @ right`` for ``left: float[r, c]``, ``right: float[c, m]``, as broadcasts.

  For a few colours (``c <= 8``) the sum of ``c`` rank-one broadcasts fuses
  into its consumer's elementwise pass, where a dot on XLA:CPU writes a
  fresh ``[r, m]`` array first.
  """
  c = left.shape[-1]
  if c > 8:
    return left @ right
  out = left[:, 0:1] * right[0:1, :]
  for g in range(1, c):
    out = out + left[:, g:g + 1] * right[g:g + 1, :]
  return out


_T_BLOCK = 64


def _transpose(X):
  """``X.T`` (``float[m, r] -> float[r, m]``), materialised once, in blocks of 64 rows.

  A plain ``X.T`` is fused by XLA:CPU into every consumer (the optimiser's
  moment updates, the row means of the tangent projection, a segment sum),
  each reading ``X`` with a stride; ``optimization_barrier`` does not stop
  that (it is removed before fusion). A loop's result is a buffer, so
  every consumer reads it contiguously. Each iteration reads a block of
  whole rows of ``X`` (contiguous) and writes it transposed as a block of
  columns: measured at ``[512, 4000]`` (CPU time, with Adam-like
  consumers), 25% less than blocks of 32 columns (strided reads) and half
  of the plain transpose.
  """
  m, r = X.shape
  b = _T_BLOCK
  nb = -(-m // b)
  Xp = X if nb * b == m else jnp.pad(X, ((0, nb * b - m), (0, 0)))

  def body(j, out):
    blk = jax.lax.dynamic_slice_in_dim(Xp, j * b, b, axis=0)
    return jax.lax.dynamic_update_slice_in_dim(out, blk.T, j * b, axis=1)
  out = jax.lax.fori_loop(0, nb, body, jnp.zeros((r, nb * b), X.dtype))
  return out if nb * b == m else out[:, :m]


def tree_loss_and_grad(params: SoftHierarchy, S: jax.Array, scale, target, penalty):
  """Loss of the decoded tree and the relaxed gradient there (module docstring).

  The per-point, per-node quantities are held node-major (``float[n', n]``,
  suffix ``_T``): every tree sum over ``n``-long rows is a loop of
  contiguous row additions (:func:`_up_rows`, :func:`_down_rows`), and the
  hard ancestor indicators of a node and of its parent are interval tests
  on the pre-order positions, fused into the passes that use them (no
  ``[n', n]`` indicator array, no row gather). One ``[n', n]`` transpose
  remains (``gA`` to the parameters' layout), materialised once so that the
  optimiser's passes read it contiguously.

  ``gB`` is the gradient on ``B``'s support (``B[z, y]``, ``y > z``, rows
  but the root's) and zero elsewhere: entries off the support never move
  ``B`` (:func:`fairhc_jax.soft.tangent` and :func:`~.params.project` mask
  them), and on the support the points-by-subtree term of the dense
  gradient reduces to ``2 W(z)`` where ``y`` is a proper ancestor of ``z``
  (a node above ``z`` never lies under it), so no second transpose is
  needed.

  Args:
    params: a :class:`SoftHierarchy` (one instance).
    S: ``float[n, n]`` symmetric similarities (diagonal ignored).
    scale: cost normalisation (``Problem.scale``).
    target: a :class:`~.fairness.FairnessTarget` or ``None``.
    penalty: ``float[]`` penalty weight.

  Returns:
    ``(TreeMetrics, grads: SoftHierarchy)`` with ``grads.A: float[n, n']``,
    ``grads.B: float[n', n']``.
  """
  dtype = params.A.dtype
  k = params.A.shape[-1]
  n = params.A.shape[-2]
  lp, npar = hard_parents_kernel(params)
  lay = layout(lp, npar)
  is_root = jnp.arange(k) == k - 1
  notroot = (~is_root).astype(dtype)
  S = S.astype(dtype)
  diag = jnp.diagonal(S)
  # Pre-order intervals as floats (exact below 2^24); the interval tests are
  # clipped differences, lo <= key < hi iff clip(key - lo + 1, 0, 1) *
  # clip(hi - key, 0, 1) = 1 (integers), not compares: XLA:CPU fuses
  # arithmetic into the passes and reductions that use them, where a
  # compare-and-convert is written out first.
  key = lay.pos[lp].astype(dtype)[None, :]                   # [1, n]
  lo = lay.pos.astype(dtype)[:, None]                         # [n', 1]
  hi = (lay.pos + lay.cnt).astype(dtype)[:, None]
  par_c = jnp.minimum(npar, k - 1)
  # The root's parent interval is empty (lo = hi = -1): anc_par is 0 there.
  plo = jnp.where(is_root[:, None], -1.0, lo[par_c]).astype(dtype)
  phi = jnp.where(is_root[:, None], -1.0, hi[par_c]).astype(dtype)

  def inside(lo_, hi_):
    return jnp.clip(key - lo_ + 1, 0, 1) * jnp.clip(hi_ - key, 0, 1)

  def anc():        # anc_T[u, i] = 1 iff point i lies under u
    return inside(lo, hi)

  def anc_par():    # anc_T[parent(u), i]
    return inside(plo, phi)

  Rn = _reach(lay, dtype)
  direct = jax.ops.segment_sum(jnp.ones((n,), dtype), lp, k)           # points per node
  size = direct @ Rn                                                    # subtree sums
  # Ysub_T[u, i] = sum_{j under u} S[i, j]: rows of S summed by their point's
  # parent (one n x n pass), then over subtrees (S symmetric).
  Ysub_T = _up_rows(jax.ops.segment_sum(S, lp, k), npar)
  # AM_T = anc * M with M = Ysub - diag * anc (anc^2 = anc).
  AM_T = anc() * (Ysub_T - diag[None, :])
  W = 0.5 * jnp.sum(AM_T, axis=1)                                     # float[n']
  size_par = jnp.where(is_root, 0, size[par_c])
  d = size - size_par + 2 * is_root
  cost = jnp.sum(W * d) - 2 * W[k - 1]
  child_W = jnp.zeros(k + 1, dtype).at[npar].add(W)[:k]               # sum of W over children
  beta = (d + notroot - 1)[:, None]
  a = anc()
  M_T = Ysub_T - diag[None, :] * a
  G_T = scale * (M_T * (beta + anc_par() - 2 * a) + (W - child_W)[:, None])
  # Penalty of the exact colour counts (its gradient joins G_T's pass).
  if target is None:
    pen = jnp.zeros((), dtype)
  else:
    onehot = target.onehot.astype(dtype)
    counts = Rn.T @ jax.ops.segment_sum(onehot, lp, k)                 # [n', c]
    pfun = lambda N: jnp.sum(_fair.node_violations(N, target)) / onehot.shape[0]
    pen, gN = jax.value_and_grad(pfun)(counts)
    G_T = G_T + _outer_sum(penalty * gN, onehot.T)
  # + the sum of AM over every node's children: scattered into G_T in place
  # (the root's row has parent n' and is dropped), no zero-filled array.
  G_T = G_T.at[npar].add(scale * AM_T, mode="drop")
  # gA = G R^T: path sums, then the parameters' layout (one materialised transpose).
  gA = _transpose(_down_rows(G_T, npar))                           # [n, n']
  # dE/dB on its support: R^T (A^T G) R^T + scale W (2 [y above z] - size[y]).
  gB = _up_rows(jax.ops.segment_sum(gA, lp, k), npar)
  above = Rn * (1 - jnp.eye(k, dtype=dtype))                          # y proper ancestor of z
  gB = (gB + scale * W[:, None] * (2 * above - size[None, :])) * _params.parent_mask(k, dtype)
  total = cost * scale + penalty * pen
  return TreeMetrics(total, cost * scale, pen), SoftHierarchy(gA, gB)
