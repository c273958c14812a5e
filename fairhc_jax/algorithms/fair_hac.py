"""FHAC: fair hierarchical agglomerative clustering (Chhabra & Mohapatra, Algorithm 1).

The merge loop of :mod:`fairhc_jax.agglomerative` with a fairness-aware pair
rule. While more than ``k`` clusters remain, merge ``t`` (``|C|`` clusters
before it) uses the schedules

    alpha = theta1 * (|C| - k) + alpha0      (fairness tolerance, tightens)
    beta  = theta2 * (n - |C|) + beta0       (distance slack, loosens)

and a pair ``(c_i, c_j)`` satisfies group ``g`` when
``|delta_g(c_i + c_j) - phi_g| <= alpha``. The number of satisfied groups of a
pair is ``s`` and its linkage distance ``D`` (for ``"ward"`` the Ward
distance itself, not its square).

Rules (``rule=``):

``"literal"`` (the paper's scan, exactly). The active clusters are scanned in
  slot order (a merge of slots ``i < j`` keeps ``i``, so slot order is the
  order of each cluster's smallest point), pairs ``i < j`` row-major. A
  running best starts at ``s_best = 0``, ``d_min = +inf``; a pair replaces it
  when ``s >= s_best`` and ``D < d_min + beta`` (then ``s_best = s``,
  ``d_min = D``). The pair held at the end is merged.

  Realisation: the scan itself, one pair per step of a ``fori_loop``
  (pairs of retired slots carry ``D = +inf`` and never replace). The
  recurrence is order-dependent with a real-valued state (``d_min`` can
  drift upward by up to ``beta`` per replacement), so every parallel form
  (the previous version used sparse-table next pointers and pointer
  doubling, O(N log N) gathers per merge) does more work than the O(N)
  scan, whose step costs tens of nanoseconds on XLA:CPU. The scan reads a
  per-pair table kept across the merges of a phase (``_Pairs``: the rule
  distance, ``fl(e_g)`` and ``fl(n |c|)`` of every pair of the phase's
  triangle): a merge rewrites only the ``2 m`` entries of the two merged
  slots, and the count of satisfied groups, which depends on ``alpha_t``,
  is recomputed from the table by ``c`` elementwise comparisons (the
  previous version rebuilt every pair's values from the ``[m, m, c]``
  state and gathered them, which took most of the time of a tree). Under
  ``vmap`` a custom batching rule lays the scan's operands out batch-last,
  in groups of ``_LANES`` lanes, so every step reads contiguous vectors
  and serves a group of parameter vectors (``vmap``'s batch-first layout
  made each read a strided gather, several times slower; one transpose of
  a whole ``[B, N]`` table fell out of cache for ``B = 100``).

``"vectorized"`` (order-independent, for large ``n``). Among the active
  pairs within ``beta`` of the closest one (``D <= fl(D_min + beta)``), merge
  the one satisfying the most groups; ties by the smaller stored distance
  (for ``"ward"`` the squared one, whose order is ``D``'s except where two
  squares round to one root), then the first pair in row-major slot order.
  Realisation (:mod:`fairhc_jax.algorithms.fhac_vectorized`): per slot and
  per level ``L = 0..c`` a cached nearest partner among those satisfying at
  least ``L`` groups, maintained like ``linkage``'s cached row minima (rows
  touched by a merge updated, stale rows re-scanned lazily when they reach
  the top); a merge costs O(m c) plus O(m c) per re-scan instead of passes
  over all ``m^2`` pairs.

Both rules run in phases: when half of the slots are left they are compacted
(order kept) into a matrix of half the size, down to 16 slots (literal) or
256 (vectorised), so later merges scan fewer pairs. With ``beta = 0`` and
``alpha >= 1`` either rule is plain HAC.

Decisions (also in ALGORITHMS.md section 5):

* The fair rule runs while more than ``k`` clusters remain (the paper's
  ``while |C| >= k`` would stop at ``k - 1``); the plain closest-pair rule
  (ties as in :func:`fairhc_jax.agglomerative.linkage`: smallest slot, then
  smallest partner) completes the tree, so the result is always a full binary
  :class:`~fairhc_jax.hierarchy.Hierarchy` whose node ``n + t`` is merge
  ``t`` at height ``D`` of the merged pair (Ward: the Ward distance). ``k = 1``
  is fair throughout.
* With ``alpha0 >= 1`` (every pair satisfies every group) and
  ``beta0 = theta2 = 0`` only strictly closer pairs replace the best, so FHAC
  is exactly vanilla HAC (same merges, same heights as ``linkage``, on data
  without distance ties; single linkage's MST kernel orders equal-height
  merges differently).
* Exact semantics of every threshold and comparison (independent of
  fused multiply-add contraction, so the same at every XLA optimisation
  level and on every backend). ``fl(.)`` is one IEEE round-to-nearest-even
  operation in the working dtype (float32, or float64 under x64: the
  input's float dtype):

  - the parameters are first rounded to the working dtype;
  - ``alpha_t = fl(fl(theta1 * (|C| - k)) + alpha0)`` and
    ``beta_t = fl(fl(theta2 * t) + beta0)``: a product and a sum, each
    rounded, never fused. They are computed on the host with NumPy
    (:func:`fhac_schedules`, one ``ufunc`` per operation, so nothing can
    fuse them) and passed to the kernel as a table per merge index ``t``;
  - the group test ``|delta_g - phi_g| <= alpha`` is decided as
    ``fl(e) <= fl(alpha_t * fl(n |c|))`` for the merged cluster
    ``c = c_i + c_j``, with the exact integer ``e = |n * n_g(c) - n_g * |c||``
    (the inequality times ``n |c|``; int32, so ``n <= 46340``; ``fl(e)`` and
    ``fl(n |c|)`` are exact below ``2^24`` in float32, always in float64):
    one rounded product and a comparison, nothing a compiler can contract.
    No float ratio is compared;
  - the distance test is ``D < fl(d_min + beta_t)`` (literal) and
    ``D <= fl(D_min + beta_t)`` (vectorised): one rounded addition.

  The distances ``D`` themselves are the Lance-Williams values of
  :func:`fairhc_jax.agglomerative.merge` in the working dtype: exact for
  ``"single"`` and ``"complete"`` (min / max); for ``"average"`` and
  ``"ward"`` their last bit is that module's (its updates are
  multiply-adds).

Batches: the kernels are written for one schedule table and ``jax.vmap``-ed
over ``[B]`` tables; the tables and ``k`` are traced, so one compilation per
``(n, num_colors, method, rule, dtype)`` serves every parameter value and
every ``k``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax import agglomerative as _agg
from fairhc_jax.algorithms import fhac_vectorized as _vec
from fairhc_jax.hierarchy import Hierarchy

RULES = ("literal", "vectorized")
"""Valid values of ``rule``."""

MAX_POINTS = 46340
"""Largest ``n`` for which the exact group test fits int32 (``n^2 < 2^31``)."""


class FHACParams(NamedTuple):
  """Schedule parameters of FHAC: ``alpha = theta1 (|C| - k) + alpha0``, ``beta = theta2 (n - |C|) + beta0``.

  Each field is a non-negative finite scalar or a ``float[B]`` array (a batch
  of parameter vectors; scalars broadcast against arrays).

  Attributes:
    alpha0: fairness tolerance at ``k`` clusters (``|delta_g - phi_g| <= alpha``).
    theta1: how much the tolerance loosens per cluster above ``k``.
    beta0: distance slack at the first merge (in the units of ``D``).
    theta2: how much the slack grows per merge done.
  """

  alpha0: object
  theta1: object
  beta0: object
  theta2: object


class FHACOutput(NamedTuple):
  """What the jitted FHAC kernel returns (one parameter vector).

  Attributes:
    hierarchy: the binary :class:`Hierarchy` (``parent: int32[2n-1]``,
      ``height: float[2n-1]``).
    fc: ``float[]``, the Fairness Cost of the level with ``k`` clusters.
    hfc: ``float[]``, the Hierarchical Fairness Cost (sum of the FC of the
      ``n`` stages after ``0..n-1`` merges).
  """

  hierarchy: Hierarchy
  fc: jax.Array
  hfc: jax.Array


def fhac_schedules(params, n: int, k: int, dtype) -> np.ndarray:
  """The per-merge thresholds ``(alpha_t, beta_t)`` of FHAC, on the host.

  ``alpha_t = fl(fl(theta1 * (n - t - k)) + alpha0)`` and
  ``beta_t = fl(fl(theta2 * t) + beta0)`` for merge ``t`` (``n - t``
  clusters before it), each operation one IEEE rounding in ``dtype`` after
  the parameters are rounded to ``dtype``; one NumPy ``ufunc`` per
  operation, so no multiply-add is ever fused (module docstring). Entries
  of merges done by the plain rule (``t >= n - k``) are computed but unused.

  Args:
    params: ``float[4]`` or ``float[B, 4]`` rows ``(alpha0, theta1, beta0, theta2)``.
    n: number of points.
    k: the number of clusters down to which the fair rule runs.
    dtype: the working float dtype.

  Returns:
    ``dtype[..., 2, n - 1]``: ``[..., 0, t] = alpha_t``, ``[..., 1, t] = beta_t``.
  """
  dtype = np.dtype(dtype)
  p = np.asarray(params, np.float64).astype(dtype)
  t = np.arange(max(n - 1, 0))
  x = (n - t - k).astype(dtype)       # exact: |x| < 2^24
  alpha = np.add(np.multiply(p[..., 1:2], x), p[..., 0:1])
  beta = np.add(np.multiply(p[..., 3:4], t.astype(dtype)), p[..., 2:3])
  return np.stack([alpha, beta], axis=-2).astype(dtype)


# ---------------------------------------------------------------------------
# Per-merge quantities.


def _node_cost(cnt, size, phi, dtype):
  """``sum_g |delta_g - phi_g|`` of clusters with counts ``cnt: int32[..., c]``."""
  delta = cnt.astype(dtype) / jnp.maximum(size, 1)[..., None].astype(dtype)
  return jnp.sum(jnp.abs(delta - phi), axis=-1)


def _upper_triangle(m: int):
  """Static ``int32[m (m - 1) / 2]`` slots ``(i, j)``, ``i < j``, in row-major order."""
  i, j = np.triu_indices(m, 1)
  return i.astype(np.int32), j.astype(np.int32)


_UNROLL = 4   # scan steps per loop iteration
_LANES = 24   # lanes per scan under vmap (B = 100: five scans)


class _Pairs(NamedTuple):
  """The literal rule's per-pair table over a phase's static triangle, kept across merges.

  Entry ``q < N = m (m - 1) / 2`` is the pair ``tri[q] = (a, b)``, ``a < b``
  (row-major); entry ``N`` is a dump slot (``D = +inf``) that absorbs the
  writes of a slot's pair with itself. Only the rows and columns of the two
  merged slots change in a merge, so a merge rewrites ``2 m`` entries
  (:func:`_pairs_update`) instead of recomputing all ``N`` pairs; the group
  test itself depends on ``alpha_t``, which changes every merge, so the
  counts of satisfied groups are recomputed from ``e`` and ``w`` (``O(N c)``
  elementwise, no gathers).

  Attributes:
    d: ``float[N + 1]`` the rule distance ``D`` (Ward: the root of the
      stored value), ``+inf`` for pairs with a retired slot.
    e: ``float[c, N + 1]`` ``fl(e_g)``, ``e_g = |n n_g(c_a + c_b) - n_g |c_a + c_b||``
      (exact int32, rounded once).
    w: ``float[N + 1]`` ``fl(n |c_a + c_b|)``.
  """

  d: jax.Array
  e: jax.Array
  w: jax.Array


def _pair_values(dist_rows, alive_ok, cnt_a, cnt_b, size_a, size_b, totals,
                 method: str):
  """``(D, fl(e)[c, P], fl(w))`` of ``P`` pairs from their operands (elementwise)."""
  dtype = dist_rows.dtype
  nn = jnp.sum(totals).astype(jnp.int32)
  d = jnp.sqrt(jnp.maximum(dist_rows, 0)) if method == "ward" else dist_rows
  d = jnp.where(alive_ok, d, jnp.asarray(jnp.inf, dtype))
  sz = size_a + size_b
  e = jnp.abs((cnt_a + cnt_b) * nn - totals[None, :] * sz[:, None])   # int32[P, c]
  return d, e.T.astype(dtype), (sz * nn).astype(dtype)


def _pairs_init(dist, alive, cnt, size, totals, tri, method: str) -> _Pairs:
  """The table of a phase from its state (``O(m^2 c)``, once per phase)."""
  ti, tj = jnp.asarray(tri[0]), jnp.asarray(tri[1])
  d, e, w = _pair_values(dist[ti, tj], alive[ti] & alive[tj], cnt[ti], cnt[tj],
                         size[ti], size[tj], totals, method)
  dtype = dist.dtype
  return _Pairs(jnp.append(d, jnp.asarray(jnp.inf, dtype)),
                jnp.concatenate([e, jnp.zeros((e.shape[0], 1), dtype)], axis=1),
                jnp.append(w, jnp.zeros((), dtype)))


def _pair_positions(r, m: int):
  """``int32[m]``: table entries of the pairs ``(r, x)``, ``x = 0..m-1`` (``x = r``: the dump slot)."""
  x = jnp.arange(m, dtype=jnp.int32)
  a = jnp.minimum(r, x)
  b = jnp.maximum(r, x)
  q = a * m - a * (a + 1) // 2 + (b - a - 1)
  return jnp.where(x == r, m * (m - 1) // 2, q)


def _pairs_update(pairs: _Pairs, row, i, j, alive, cnt, size, totals,
                  method: str) -> _Pairs:
  """The table after the merge that kept slot ``i`` and retired ``j``.

  ``row: float[m]`` is the merged cluster's stored distance to every slot
  (``+inf`` for retired slots and ``i``: :func:`fairhc_jax.agglomerative.merge`);
  ``alive``, ``cnt`` and ``size`` are the state after the merge. Pairs with
  ``j`` become ``+inf``; pairs with ``i`` get the merged cluster's values,
  computed by the same elementwise operations as :func:`_pairs_init`.
  """
  m = row.shape[0]
  pos_j = _pair_positions(j, m)
  pos_i = _pair_positions(i, m)
  d, e, w = _pair_values(row, alive, jnp.broadcast_to(cnt[i], cnt.shape), cnt,
                         jnp.broadcast_to(size[i], size.shape), size, totals,
                         method)
  inf = jnp.asarray(jnp.inf, pairs.d.dtype)
  pd = pairs.d.at[pos_j].set(inf, unique_indices=True)
  pd = pd.at[pos_i].set(d, unique_indices=True)
  return _Pairs(pd, pairs.e.at[:, pos_i].set(e, unique_indices=True),
                pairs.w.at[pos_i].set(w, unique_indices=True))


def _literal_choice(pairs: _Pairs, alpha, beta, tri):
  """The paper's scan over the active pairs, one pair per loop step.

  The slots of a phase are in slot order, so its static row-major list
  ``tri`` of pairs ``i < j`` (retired slots carry ``D = +inf`` and never
  replace) is the scan order over the active clusters. The running best
  ``(s_best, d_min)`` starts at ``(0, +inf)``; pair ``(i, j)`` replaces it
  when ``s >= s_best`` and ``D < d_min + beta``. A scalar loop step costs
  tens of nanoseconds on XLA:CPU, less than any O(N log N) parallel form of
  this order-dependent recurrence. Under ``vmap`` (a custom batching rule)
  the operands are laid out batch-last, so each step reads contiguous
  ``[B]`` vectors and serves the whole batch (``vmap``'s own batch-first
  layout made every read a strided gather, ten times slower).

  Args:
    pairs: the phase's :class:`_Pairs` table.
    alpha: ``float[]`` fairness tolerance of this merge.
    beta: ``float[]`` distance slack of this merge.
    tri: static row-major ``(i, j)`` pair lists of the phase.

  Returns:
    ``(i, j)``, the merged slots, ``i < j``.
  """
  num = tri[0].shape[0]
  dtype = pairs.d.dtype
  alpha = jnp.asarray(alpha, dtype)
  # The number of satisfied groups of every pair: fl(e) <= fl(alpha fl(w)).
  rhs = alpha * pairs.w[:num]
  s_all = (pairs.e[0, :num] <= rhs).astype(jnp.int32)
  for g in range(1, pairs.e.shape[0]):   # c elementwise planes, no reduction
    s_all = s_all + (pairs.e[g, :num] <= rhs).astype(jnp.int32)

  def scan(d_flat, s_flat, beta):
    """Batch-last scan: ``d_flat, s_flat: [N, B]``, ``beta: [B]``."""
    def body(q, carry):
      best, s_best, d_min = carry
      d = d_flat[q]
      s = s_flat[q]
      take = (s >= s_best) & (d < d_min + beta)
      return (jnp.where(take, q, best), jnp.where(take, s, s_best),
              jnp.where(take, d, d_min))

    shape = beta.shape
    init = (jnp.zeros(shape, jnp.int32), jnp.zeros(shape, jnp.int32),
            jnp.full(shape, jnp.inf, dtype))
    return jax.lax.fori_loop(0, num, body, init, unroll=_UNROLL)[0]

  @jax.custom_batching.custom_vmap
  def choose(d_flat, s_flat, beta):
    return scan(d_flat[:, None], s_flat[:, None], beta[None])[0]

  @choose.def_vmap
  def _(axis_size, in_batched, d_flat, s_flat, beta):
    # Lanes in groups of at most _LANES, one scan per group: the batch-last
    # copy of a group's [L, N] operands stays in cache (a whole [B, N]
    # transpose for B = 100 ran several times slower per lane).
    args = [x if b else jnp.broadcast_to(x, (axis_size,) + x.shape)
            for x, b in zip((d_flat, s_flat, beta), in_batched)]
    best = [scan(*(jnp.moveaxis(x[g:g + _LANES], 0, -1) for x in args))
            for g in range(0, axis_size, _LANES)]
    return jnp.concatenate(best), True

  best = choose(pairs.d[:num], s_all, jnp.asarray(beta, dtype))
  return jnp.asarray(tri[0])[best], jnp.asarray(tri[1])[best]


# ---------------------------------------------------------------------------
# The kernel (one parameter vector; vmapped for batches).


_MIN_CAPACITY = {"literal": 16, "vectorized": 256}   # no compaction below


class _Carry(NamedTuple):
  """Loop state of one FHAC run (one parameter vector)."""

  st: _agg.LinkageState
  cnt: jax.Array     # int32[m, c] colour counts per slot
  size: jax.Array    # int32[m] cluster sizes
  cost: jax.Array    # float[m] sum_g |delta_g - phi_g| per slot
  total: jax.Array   # float[] FC of the current stage
  hfc: jax.Array     # float[] sum of the FC of the stages so far
  fc: jax.Array      # float[] FC of the stage with k clusters
  cache: object = None   # _vec.RowCache (rule "vectorized") or _Pairs ("literal")


def _compact(carry: _Carry, capacity: int) -> _Carry:
  """Moves the ``capacity`` active slots to the front of a smaller state (order kept)."""
  st = carry.st
  order = jnp.nonzero(st.alive, size=capacity)[0].astype(jnp.int32)
  dist = jnp.take(jnp.take(st.dist, order, axis=0), order, axis=1)
  cache = (_vec.compact(carry.cache, st.alive, order)
           if isinstance(carry.cache, _vec.RowCache) else None)   # literal: rebuilt
  st = st._replace(dist=dist, size=st.size[order],
                   alive=jnp.ones(capacity, bool), node=st.node[order])
  return carry._replace(st=st, cnt=carry.cnt[order], size=carry.size[order],
                        cost=carry.cost[order], cache=cache)


def _fhac_one(dist0, colors, sched, k, *, num_colors: int, method: str,
              rule: str) -> FHACOutput:
  """FHAC on one instance: ``dist0: float[n, n]``, ``colors: int32[n]``,
  ``sched: float[2, n - 1]`` (:func:`fhac_schedules`: ``alpha_t``,
  ``beta_t`` per merge ``t``), ``k: int32[]``.

  The merges run in phases of fixed capacity: when half of a phase's slots
  are left they are compacted into a matrix of half the size (slot order
  kept, so the scan order and the ties do not change), down to
  ``_MIN_CAPACITY`` slots. Merge ``t`` uses the fair rule while
  ``n - t > k`` and the closest pair otherwise (a ``lax.cond`` on values
  that do not depend on the parameters, so it stays a branch under vmap).
  """
  n = dist0.shape[0]
  dtype = dist0.dtype
  if n == 1:   # one point: the tree is the leaf, every cost 0
    zero = jnp.zeros((), dtype)
    return FHACOutput(Hierarchy(parent=jnp.full(1, -1, jnp.int32),
                                height=jnp.zeros(1, dtype)), zero, zero)
  state = _agg.init_state(dist0, None, method)
  cnt = jax.nn.one_hot(colors, num_colors, dtype=jnp.int32)      # [n, c]
  totals = jnp.sum(cnt, axis=0)
  phi = totals.astype(dtype) / n
  size = jnp.ones(n, jnp.int32)
  cost = _node_cost(cnt, size, phi, dtype)
  total = jnp.sum(cost)
  sched = jnp.asarray(sched, dtype)
  k = jnp.asarray(k, jnp.int32)
  nn = jnp.int32(n)

  levels = num_colors + 1
  once = jnp.minimum(k, 1)   # a traced 1 (k >= 1) for fhac_vectorized.merge

  def step(t, c: _Carry, a, b, d_ab=None):
    """Merge ``t`` of slots ``a, b``: the new carry and the merged row."""
    i = jnp.minimum(a, b)
    j = jnp.maximum(a, b)
    c_new = c.cnt[i] + c.cnt[j]
    s_new = c.size[i] + c.size[j]
    cost_new = _node_cost(c_new, s_new, phi, dtype)
    hfc = c.hfc + c.total                   # the stage before this merge
    # The stage's FC summed afresh over the active slots (O(m)): a running
    # total (+ new - old - old) drifted in float32 by more than 1e-4 of the
    # FC over ~120 merges of costs ~1 each (the fair-HAC notebook's check).
    cost = c.cost.at[i].set(cost_new)
    total = jnp.sum(jnp.where(c.st.alive.at[j].set(False), cost, 0))
    fc = jnp.where(nn - t - 1 == k, total, c.fc)
    if d_ab is None:
      st, row = _agg.merge(c.st, a, b, method)
    else:   # the cached rule: a merge without whole-matrix copies (fhac_vectorized.merge)
      st, row = _vec.merge(c.st, a, b, method, d_ab, once)
    return _Carry(st, c.cnt.at[i].set(c_new), c.size.at[i].set(s_new),
                  cost, total, hfc, fc, c.cache), row

  def literal_fair(t, c: _Carry, tri):
    # Read from the host-computed table (never a multiply-add here, which
    # a compiler could contract into an FMA: module docstring).
    a, b = _literal_choice(c.cache, sched[0, t], sched[1, t], tri)
    c, row = step(t, c, a, b)
    i, j = jnp.minimum(a, b), jnp.maximum(a, b)
    return c._replace(cache=_pairs_update(c.cache, row, i, j, c.st.alive, c.cnt,
                                          c.size, totals, method))

  def literal_plain(t, c: _Carry):
    return step(t, c, *_agg.closest_pair(c.st))[0]

  def vec_fair(t, c: _Carry, tri):
    alpha, beta = sched[0, t], sched[1, t]
    st = c.st
    cache, a, b, d_ab = _vec.choose_fair(c.cache, st.dist, st.alive, c.cnt, c.size,
                                         totals, nn, alpha, beta, method)
    c, row = step(t, c._replace(cache=cache), a, b, d_ab)
    i = jnp.minimum(a, b)
    s_row = _vec.group_count(c.cnt, c.cnt[i][None, :], c.size, c.size[i], totals,
                             nn, alpha, dtype)
    return c._replace(cache=_vec.update(c.cache, row, i, jnp.maximum(a, b),
                                        c.st.alive, s_row, levels))

  def vec_plain(t, c: _Carry):
    cache, a, b, d_ab = _vec.choose_plain(c.cache, c.st.dist, c.st.alive)
    c, row = step(t, c._replace(cache=cache), a, b, d_ab)
    return c._replace(cache=_vec.update(c.cache, row, jnp.minimum(a, b),
                                        jnp.maximum(a, b), c.st.alive, None, 1))

  fair_body, plain_body = ((literal_fair, literal_plain) if rule == "literal"
                           else (vec_fair, vec_plain))
  cache = None
  if rule == "vectorized":
    cache = _vec.init_cache(state.dist, state.alive, cnt, size, totals, nn,
                            sched[0, 0], levels)
  carry = _Carry(state, cnt, size, cost, total, jnp.zeros((), dtype), total, cache)
  active, t0 = n, 0
  while active > 1:
    target = active // 2 if active // 2 >= _MIN_CAPACITY[rule] else 1
    t1 = t0 + active - target
    tri = None
    if rule == "literal":
      tri = _upper_triangle(active)
      carry = carry._replace(cache=_pairs_init(carry.st.dist, carry.st.alive, carry.cnt,
                                               carry.size, totals, tri, method))
    # Merges t0..t1-1 of this phase: fair while n - t > k, then plain (the
    # bounds depend on k only, never on the parameters: no branch per lane).
    t_fair = jnp.clip(nn - k, t0, t1)
    carry = jax.lax.fori_loop(jnp.int32(t0), t_fair,
                              functools.partial(fair_body, tri=tri), carry)
    carry = jax.lax.fori_loop(t_fair, jnp.int32(t1), plain_body, carry)
    t0 = t1
    active = target
    if active > 1:
      carry = _compact(carry, active)
  hfc = carry.hfc + carry.total             # the last stage (one cluster)
  return FHACOutput(_agg.to_hierarchy(carry.st), carry.fc, hfc)


_STATIC = ("num_colors", "method", "rule")
fhac_kernel = jax.jit(_fhac_one, static_argnames=_STATIC)
"""Raw jitted FHAC for one schedule table (no checks): ``fhac_kernel(dist,
colors, sched: float[2, n-1], k, *, num_colors, method, rule) -> FHACOutput``
with ``sched = fhac_schedules(params, n, k, dist.dtype)``."""


def _fhac_batch(dist0, colors, sched, k, *, num_colors: int, method: str,
                rule: str) -> FHACOutput:
  one = functools.partial(_fhac_one, num_colors=num_colors, method=method,
                          rule=rule)
  return jax.vmap(one, in_axes=(None, None, 0, None))(dist0, colors, sched, k)


fhac_batch_kernel = jax.jit(_fhac_batch, static_argnames=_STATIC)
"""Raw jitted FHAC for a batch of tables ``sched: float[B, 2, n-1]`` (no checks)."""


# ---------------------------------------------------------------------------
# Public entry point.


def check_params(fn: str, params) -> tuple:
  """Validates :class:`FHACParams`; returns ``(float array [4] or [B, 4], batched)``."""
  if not isinstance(params, FHACParams):
    if isinstance(params, (tuple, list)) and len(params) == 4:
      params = FHACParams(*params)
    else:
      _checks.fail(fn, "params", "be FHACParams(alpha0, theta1, beta0, theta2)",
                   _checks.describe(params), TypeError)
  cols = []
  for name, v in zip(FHACParams._fields, params):
    if isinstance(v, jax.core.Tracer):
      _checks.fail(fn, f"params.{name}", "be concrete (call the kernel inside jit)",
                   "a tracer", TypeError)
    a = np.asarray(v, dtype=np.float64)
    if a.ndim > 1:
      _checks.fail(fn, f"params.{name}", "be a scalar or a 1-D array [B]",
                   f"shape {a.shape}")
    if not np.all(np.isfinite(a)):
      _checks.fail(fn, f"params.{name}", "be finite", repr(v))
    if np.any(a < 0):
      _checks.fail(fn, f"params.{name}", "be non-negative (schedules must not decrease)",
                   f"minimum {float(a.min()):.6g}")
    cols.append(a)
  batched = any(a.ndim == 1 for a in cols)
  try:
    stacked = np.stack(np.broadcast_arrays(*cols), axis=-1)
  except ValueError:
    _checks.fail(fn, "params", "have fields of one batch length",
                 f"shapes {[a.shape for a in cols]}")
  if batched and stacked.shape[0] == 0:
    _checks.fail(fn, "params", "hold at least one parameter vector", "an empty batch")
  return stacked, batched


def check_inputs(fn: str, D, colors, k, method: str, rule: str, num_colors):
  """Shared checks of the FHAC entry points; returns ``(d, colors, k, c)``."""
  _checks.check_choice(fn, "method", method, _agg.METHODS)
  _checks.check_choice(fn, "rule", rule, RULES)
  d = _checks.check_square_matrix(fn, "D", D)
  n = d.shape[0]
  if n > MAX_POINTS:
    _checks.fail(fn, "D", f"have at most {MAX_POINTS} points (exact int32 group test)",
                 f"n = {n}")
  if method == "ward":
    _agg._check_ward_euclidean(fn, d)
  col, c = _checks.check_colors(fn, "colors", colors, n, num_colors, batched=False)
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
    _checks.fail(fn, "k", f"be an integer in [1, {n}]", repr(k), TypeError)
  if not 1 <= int(k) <= n:
    _checks.fail(fn, "k", f"be in [1, n] = [1, {n}]", int(k))
  return d, col, int(k), c


def fhac(D, colors, params: FHACParams, *, k: int, method: str = "average",
         rule: str = "literal", num_colors=None) -> Hierarchy:
  """Fair agglomerative clustering (FHAC, Chhabra & Mohapatra Algorithm 1).

  Args:
    D: ``float[n, n]`` distances (square, symmetric, finite, non-negative;
      Euclidean for ``"ward"``).
    colors: ``int[n]`` group of each point, in ``[0, num_colors)``.
    params: :class:`FHACParams`; scalars give one tree, ``[B]`` arrays a
      batch of ``B`` trees (one vectorised call).
    k: the number of clusters down to which the fair rule runs, ``1 <= k <= n``
      (module docstring: the plain rule completes the tree).
    method: ``"average"``, ``"single"``, ``"complete"``, ``"weighted"`` or ``"ward"``.
    rule: ``"literal"`` (the paper's scan, exactly) or ``"vectorized"``
      (order-independent; module docstring).
    num_colors: ``c``; defaults to ``max(colors) + 1``.

  Returns:
    A binary :class:`Hierarchy` with heights (node ``n + t`` is merge ``t``),
    or for batched parameters one ``Hierarchy`` with ``parent: int32[B, 2n-1]``
    and ``height: float[B, 2n-1]``. One compilation serves every parameter
    value and every ``k``.

  Raises:
    ValueError / TypeError: bad distances, colours, ``k``, method, rule or
      parameters (negative or non-finite schedule parameters).
  """
  fn = "fhac"
  d, col, k, c = check_inputs(fn, D, colors, k, method, rule, num_colors)
  p, batched = check_params(fn, params)
  sched = fhac_schedules(p, d.shape[0], k, d.dtype)
  kern = fhac_batch_kernel if batched else fhac_kernel
  return kern(d, col, sched, jnp.int32(k), num_colors=c, method=method,
              rule=rule).hierarchy


def fhac_costs(D, colors, params: FHACParams, *, k: int, method: str = "average",
               rule: str = "literal", num_colors=None) -> FHACOutput:
  """:func:`fhac` returning also the FC at ``k`` and the HFC of each tree.

  Same arguments as :func:`fhac`. Returns an :class:`FHACOutput` (fields
  batched like the parameters); ``fc`` and ``hfc`` are accumulated during
  the merges and equal :func:`fairhc_jax.fairness.fairness_cost` /
  :func:`~fairhc_jax.fairness.hierarchical_fairness_cost` of the tree up to
  float rounding.
  """
  fn = "fhac_costs"
  d, col, k, c = check_inputs(fn, D, colors, k, method, rule, num_colors)
  p, batched = check_params(fn, params)
  sched = fhac_schedules(p, d.shape[0], k, d.dtype)
  kern = fhac_batch_kernel if batched else fhac_kernel
  return kern(d, col, sched, jnp.int32(k), num_colors=c, method=method, rule=rule)
