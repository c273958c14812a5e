"""FHAC's vectorised rule with cached per-row candidates (O(n c) per merge, not O(n^2)).

The rule (:mod:`fairhc_jax.algorithms.fair_hac`, ``rule="vectorized"``):
among the active pairs within ``beta`` of the closest one
(``D <= fl(D_min + beta)``), merge one satisfying the most groups ``s``; ties
by the smaller stored distance, then the first pair ``(a, b)``, ``a < b``, in
row-major slot order.

It is the same as: for each *level* ``L = 0..c`` let ``d_L`` be the smallest
distance of a pair with ``s >= L`` (``d_0 = D_min``; ``d_L`` does not
decrease with ``L``). The chosen level is the largest ``L`` with
``d_L <= fl(D_min + beta)`` and the chosen pair the first closest pair with
``s >= L`` (no pair in the window has ``s > L``, so it has ``s = L`` and is
the rule's pair). This module keeps, per active slot ``r`` and level ``L``,
the nearest partner among those with ``s >= L``, as
:func:`fairhc_jax.agglomerative.linkage` keeps row minima, so a merge costs
O(m c) plus O(m c) per re-scanned row instead of a pass over all ``m^2``
pairs.

Why the cache stays correct (each cached value is a lower bound of its
row's true minimum, and exact with its first index unless marked stale):

* ``alpha`` never increases from one merge to the next (``theta1 >= 0`` and
  rounding is monotone), and the group test ``fl(e) <= fl(alpha fl(n|c|))``
  is monotone in ``alpha``, so the set of partners of an unchanged pair that
  pass a level only shrinks: a lower bound stays a lower bound, and an exact
  row stays exact while its cached partner still passes (a first minimum of
  a set is the first minimum of any subset holding it). At every fair merge
  each exact row's cached partner is re-tested with the new ``alpha``
  (O(m c^2)); a failure marks the row stale.
* A merge of ``i < j`` retires ``j`` and gives every row ``k`` one new entry
  ``d(k, i + j)`` that passes level ``L`` or not (the merged cluster's
  counts): a passing entry below the cached value replaces it (exact rows
  take the new partner, stale rows keep the lower bound), an exact row whose
  partner was ``i`` or ``j`` and is not replaced becomes stale, and row
  ``i`` is recomputed from the new distances (no re-scan). No reducibility
  argument is needed for the levels ``L >= 1`` (the new entry is compared
  explicitly); level ``0`` is linkage's cache.
* A selection pops, per level, the row with the smallest cached value
  (smallest slot on ties) and re-scans it (all levels at once, O(m c)) while
  it is stale: only rows that reach the top are re-read. An exact top is the
  level's minimum, and with the smallest slot first the pair comes first in
  row-major order, as in :func:`fairhc_jax.agglomerative.linkage`.

The plain merges (``|C| <= k``) use level ``0`` only: exactly linkage's
cached minima (and its ties). For ``"ward"`` the stored distances are
squared: pairs are ordered by them and the window compares their square
roots, ``sqrt(d_L) <= fl(sqrt(d_0) + beta)``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class RowCache(NamedTuple):
  """Cached nearest partners per level: ``L = c + 1`` levels, ``m`` slots.

  Attributes:
    mind: ``float[L, m]``, a lower bound of the smallest stored distance from
      slot ``r`` to an active partner ``q`` with ``s(r, q) >= level``
      (``+inf`` for retired slots and for rows with no such partner).
    nn: ``int32[L, m]``, the first such partner when the row is exact.
    stale: ``bool[L, m]``, the row's value is only a lower bound.
  """

  mind: jax.Array
  nn: jax.Array
  stale: jax.Array


def group_count(cnt_a, cnt_b, size_a, size_b, totals, n, alpha, dtype):
  """``int32[...]``: number of groups ``g`` with ``fl(e_g) <= fl(alpha fl(n |c|))``.

  ``c`` is the union of the two clusters, ``e_g = |n n_g(c) - n_g |c||`` (exact
  int32); ``cnt_*: int32[..., c]`` colour counts, ``size_*: int32[...]``.
  """
  size = size_a + size_b
  e = jnp.abs((cnt_a + cnt_b) * n - totals * size[..., None])
  rhs = alpha * (size * n).astype(dtype)
  return jnp.sum(e.astype(dtype) <= rhs[..., None], axis=-1, dtype=jnp.int32)


def _first_min_rows(masked):
  """Per row of ``masked: float[L, m]``: ``(min, first index attaining it)``."""
  m = masked.shape[-1]
  mn = jnp.min(masked, axis=-1)
  idx = jnp.arange(m, dtype=jnp.int32)
  first = jnp.min(jnp.where(masked == mn[..., None], idx, m), axis=-1)
  return mn, first.astype(jnp.int32)


def _first_min(x):
  mn = jnp.min(x)
  idx = jnp.arange(x.shape[0], dtype=jnp.int32)
  return mn, jnp.min(jnp.where(x == mn, idx, x.shape[0])).astype(jnp.int32)


def _row_levels(row, s_row, ok, num_levels: int):
  """``(float[L], int32[L])``: per level the first minimum of ``row`` over ``ok & s_row >= L``."""
  inf = jnp.asarray(jnp.inf, row.dtype)
  lv = jnp.arange(num_levels, dtype=jnp.int32)[:, None]
  masked = jnp.where(ok[None, :] & (s_row[None, :] >= lv), row[None, :], inf)
  return _first_min_rows(masked)


def init_cache(dist, alive, cnt, size, totals, n, alpha, num_levels: int) -> RowCache:
  """Every row exact, from the whole matrix (once per run, O(m^2 c)).

  Args:
    dist: ``float[m, m]`` stored distances (``+inf`` on the diagonal).
    alive: ``bool[m]``; cnt: ``int32[m, c]``; size: ``int32[m]``;
    totals: ``int32[c]``; n: number of points; alpha: ``float[]``.
    num_levels: static, ``c + 1`` (``1``: the plain cache only).
  """
  m = dist.shape[0]
  dtype = dist.dtype
  inf = jnp.asarray(jnp.inf, dtype)
  ok = alive[:, None] & alive[None, :] & ~jnp.eye(m, dtype=bool)
  base = jnp.where(ok, dist, inf)
  if num_levels > 1:
    s = group_count(cnt[:, None, :], cnt[None, :, :], size[:, None], size[None, :],
                    totals, n, alpha, dtype)
  mins, firsts = [], []
  for level in range(num_levels):   # one [m, m] pass per level, no [L, m, m] array
    masked = base if level == 0 else jnp.where(s >= level, base, inf)
    mn, first = _first_min_rows(masked)
    mins.append(mn)
    firsts.append(first)
  return RowCache(jnp.stack(mins), jnp.stack(firsts),
                  jnp.zeros((num_levels, m), bool))


def _rescan(cache: RowCache, r, dist, alive, cnt, size, totals, n, alpha,
            num_levels: int) -> RowCache:
  """Row ``r`` exact again at every cached level (O(m c))."""
  m = dist.shape[0]
  row = jax.lax.dynamic_index_in_dim(dist, r, 0, keepdims=False)
  ok = alive & (jnp.arange(m) != r)
  if num_levels > 1:
    s_row = group_count(cnt[r][None, :], cnt, size[r], size, totals, n, alpha, dist.dtype)
  else:
    s_row = jnp.zeros(m, jnp.int32)
  mn, first = _row_levels(row, s_row, ok, num_levels)
  levels = cache.mind.shape[0]
  if num_levels < levels:   # the plain phase keeps only level 0 up to date
    mn = jnp.concatenate([mn, cache.mind[num_levels:, r]])
    first = jnp.concatenate([first, cache.nn[num_levels:, r]])
    fresh = jnp.concatenate([jnp.zeros(num_levels, bool), cache.stale[num_levels:, r]])
  else:
    fresh = jnp.zeros(levels, bool)
  return RowCache(cache.mind.at[:, r].set(mn), cache.nn.at[:, r].set(first),
                  cache.stale.at[:, r].set(fresh))


def _pop(cache: RowCache, level, rescan):
  """The exact top row of ``level`` (re-scanning stale tops): ``(cache, row)``."""
  def cond(cr):
    cache, top = cr
    return cache.stale[level, top]

  def body(cr):
    cache, top = cr
    cache = rescan(cache, top)
    return cache, _first_min(cache.mind[level])[1]

  return jax.lax.while_loop(cond, body, (cache, _first_min(cache.mind[level])[1]))


def choose_plain(cache: RowCache, dist, alive):
  """The closest active pair (linkage's ties) from level 0: ``(cache, a, b, d_ab)``."""
  def rescan(cache, r):
    return _rescan(cache, r, dist, alive, None, None, None, 0, None, 1)

  cache, a = _pop(cache, 0, rescan)
  return cache, a, cache.nn[0, a], cache.mind[0, a]


def choose_fair(cache: RowCache, dist, alive, cnt, size, totals, n, alpha, beta,
                method: str):
  """The vectorised rule's pair: ``(cache, a, b, d_ab)``, ``a < b``, ``d_ab`` stored.

  First re-tests every exact row's cached partner at ``alpha`` (levels
  ``>= 1``), then pops level 0 (``D_min``) and the levels from ``c`` down
  until one has an exact top within the window.
  """
  num_levels = cache.mind.shape[0]
  dtype = dist.dtype
  lv = jnp.arange(1, num_levels, dtype=jnp.int32)[:, None]
  p = cache.nn[1:]                                               # [L-1, m]
  s_p = group_count(cnt[None, :, :], cnt[p], size[None, :], size[p], totals, n,
                    alpha, dtype)
  fails = (s_p < lv) & alive[None, :]
  cache = cache._replace(stale=cache.stale.at[1:].set(cache.stale[1:] | fails))

  def rescan(cache, r):
    return _rescan(cache, r, dist, alive, cnt, size, totals, n, alpha, num_levels)

  def rule_d(v):
    return jnp.sqrt(jnp.maximum(v, 0)) if method == "ward" else v

  cache, a0 = _pop(cache, 0, rescan)
  window = rule_d(cache.mind[0, a0]) + beta

  def cond(cr):
    _, level, found = cr
    return (level >= 1) & ~found

  def body(cr):
    cache, level, _ = cr
    top = _first_min(cache.mind[level])[1]
    over = rule_d(cache.mind[level, top]) > window
    stale = cache.stale[level, top]
    cache = jax.lax.cond(~over & stale, rescan, lambda c, r: c, cache, top)
    return cache, jnp.where(over, level - 1, level), ~over & ~stale

  cache, level, found = jax.lax.while_loop(
      cond, body, (cache, jnp.int32(num_levels - 1), jnp.asarray(False)))
  level = jnp.where(found, level, 0)
  a = jnp.where(found, _first_min(cache.mind[level])[1], a0)
  return cache, a, cache.nn[level, a], cache.mind[level, a]


def update(cache: RowCache, new, i, j, alive, s_new, num_levels: int) -> RowCache:
  """The cache after merging slots ``i < j`` (``j`` retired, ``i`` the union).

  Args:
    new: ``float[m]`` the merged cluster's new stored distances (``+inf`` for
      retired slots and ``i``), as :func:`fairhc_jax.agglomerative.merge`
      returns them.
    alive: ``bool[m]`` after the merge.
    s_new: ``int32[m]`` groups satisfied by each pair ``(k, i)`` after the
      merge (ignored when ``num_levels == 1``).
    num_levels: static: how many levels (from 0) to maintain.
  """
  mind, nn, stale = cache.mind[:num_levels], cache.nn[:num_levels], cache.stale[:num_levels]
  dtype = mind.dtype
  m = mind.shape[1]
  if num_levels == 1:
    s_new = jnp.zeros(m, jnp.int32)
  lv = jnp.arange(num_levels, dtype=jnp.int32)[:, None]
  passes = s_new[None, :] >= lv if num_levels > 1 else jnp.ones((1, m), bool)
  hit = (nn == i) | (nn == j)
  better = passes & ((new < mind) | ((new == mind) & (i <= nn))) & ~stale
  lower = passes & (new < mind)
  mind = jnp.where(better | lower, new[None, :], mind)
  nn = jnp.where(better, i, nn)
  stale = (stale | hit) & ~better & alive[None, :]
  ok = alive & (jnp.arange(m) != i)
  mn, first = _row_levels(new, s_new, ok, num_levels)
  mind = mind.at[:, i].set(mn)
  nn = nn.at[:, i].set(first)
  stale = stale.at[:, i].set(False)
  mind = jnp.where(alive[None, :], mind, jnp.asarray(jnp.inf, dtype))
  if num_levels < cache.mind.shape[0]:
    mind = jnp.concatenate([mind, cache.mind[num_levels:]])
    nn = jnp.concatenate([nn, cache.nn[num_levels:]])
    stale = jnp.concatenate([stale, cache.stale[num_levels:]])
  return RowCache(mind, nn, stale)


def compact(cache: RowCache, alive, order) -> RowCache:
  """The cache of the slots ``order`` (the active ones, in slot order)."""
  rank = (jnp.cumsum(alive) - 1).astype(jnp.int32)
  return RowCache(cache.mind[:, order], rank[cache.nn[:, order]],
                  cache.stale[:, order])


def _rows_opaque(dist, i, j, once):
  """Rows ``i`` and ``j`` of ``dist`` as the output of a loop XLA cannot see through.

  ``once`` is a traced ``1``: the loop runs once, but its trip count is not
  static, so the rows are materialised buffers and no consumer re-reads the
  matrix after the in-place writes of :func:`merge`.
  """
  def body(cr):
    it, _, _ = cr
    return (it + 1, jax.lax.dynamic_index_in_dim(dist, i, 0, keepdims=False),
            jax.lax.dynamic_index_in_dim(dist, j, 0, keepdims=False))
  z = jnp.zeros(dist.shape[0], dist.dtype)
  _, ri, rj = jax.lax.while_loop(lambda cr: cr[0] < once, body, (jnp.int32(0), z, z))
  return ri, rj


def merge(state, a, b, method: str, d_ab, once):
  """:func:`fairhc_jax.agglomerative.merge` from rows read by :func:`_rows_opaque`.

  The same Lance-Williams update and bookkeeping. In this loop XLA fused the
  rows' reads into the column write and kept (copied) the whole matrix every
  merge to serve them after the row write; reading the two rows through an
  opaque loop first removes both copies (checked on the compiled HLO by a test).
  """
  from fairhc_jax import agglomerative as _agg
  dist = state.dist
  m = dist.shape[0]
  i = jnp.minimum(a, b).astype(jnp.int32)
  j = jnp.maximum(a, b).astype(jnp.int32)
  row_i, row_j = _rows_opaque(dist, i, j, once)
  d_ij = jnp.asarray(d_ab, dist.dtype)
  n_i, n_j = state.size[i], state.size[j]
  idx = jnp.arange(m, dtype=jnp.int32)
  alive = state.alive.at[j].set(False)
  new = _agg.lance_williams(method, row_i, row_j, d_ij, n_i, n_j, state.size)
  new = jnp.where(alive & (idx != i), new, jnp.asarray(jnp.inf, dist.dtype))
  dist = jax.lax.dynamic_update_slice(dist, new[None, :], (i, jnp.int32(0)))
  dist = jax.lax.dynamic_update_slice(dist, new[:, None], (jnp.int32(0), i))
  t = state.num_merges
  num_leaves = (state.parent.shape[0] + 1) // 2
  new_node = (num_leaves + t).astype(jnp.int32)
  parent = state.parent.at[state.node[i]].set(new_node).at[state.node[j]].set(new_node)
  h = jnp.sqrt(jnp.maximum(d_ij, 0)) if method == "ward" else d_ij
  return state._replace(dist=dist, size=state.size.at[i].set(n_i + n_j), alive=alive,
                        node=state.node.at[i].set(new_node), parent=parent,
                        height=state.height.at[new_node].set(h), num_merges=t + 1), new
