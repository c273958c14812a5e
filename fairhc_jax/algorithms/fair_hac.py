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

  Vectorised realisation (proved equal to the scan). The running best after
  a replacement by pair ``p`` is ``(s_p, D_p)``, whatever came before; so the
  scan is the chain ``p_0 -> next(p_0) -> ...`` where ``p_0`` is the first
  active pair (it always replaces the initial best: ``s >= 0`` and
  ``D < inf``) and ``next(p)`` is the first pair ``q > p`` with
  ``s_q >= s_p`` and ``D_q < D_p + beta`` (pairs in between fail the test
  against the unchanged best). The merged pair is the chain's last element.
  Each merge computes ``next`` for all pairs at once: per level ``sigma`` a
  sparse table of range minima of ``D`` over the pairs with ``s >= sigma``
  (``ceil(log2 N)`` levels, ``N = n(n-1)/2``), so "the first pair after ``p``
  below ``D_p + beta``" is a binary descent over that table; then the chain's
  end is found by pointer doubling (``next <- next o next`` until the end of
  ``p_0``'s chain is a fixed point). O(N log N) vectorised work per merge,
  no loop over pairs.

``"vectorized"`` (order-independent, for large ``n``). Among the active
  pairs within ``beta`` of the closest one (``D <= D_min + beta``), merge the
  one satisfying the most groups; ties by smaller ``D``, then the first in
  row-major slot order. Five O(n^2) reductions per merge (O(n^3) in total,
  like a plain matrix-scan HAC). With ``beta = 0`` and ``alpha >= 1`` it is
  plain HAC too.

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
* Exact group test: ``|delta_g - phi_g| <= alpha`` is decided as
  ``|n * n_g(C) - n_g * |C|| <= alpha * (n |C|)`` (the inequality times
  ``n |C|``): the left side is an exact integer (int32, so ``n <= 46340``),
  the right side one rounded product in the working float dtype. No float
  ratio is compared.
* Precision: distances in the input's float dtype (float32, or float64 under
  x64); ``d_min + beta`` is one rounded addition, as in the scan.

Batches: the kernels are written for one parameter vector and ``jax.vmap``-ed
over ``[B]`` parameter arrays; schedule parameters and ``k`` are traced, so
one compilation per ``(n, num_colors, method, rule, dtype)`` serves every
parameter value and every ``k``.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax import agglomerative as _agg
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


# ---------------------------------------------------------------------------
# Per-merge quantities.


def _pair_index(n: int):
  """Static ``int32[N]`` row and column slots of the pairs ``i < j``, row-major."""
  i, j = np.triu_indices(n, 1)
  return jnp.asarray(i, jnp.int32), jnp.asarray(j, jnp.int32)


def _group_counts_ok(cnt_a, cnt_b, size_a, size_b, totals, n, alpha, dtype):
  """``int32[...]``: number of groups ``g`` with ``|n n_g(C) - n_g |C|| <= alpha n |C|``.

  ``cnt_*: int32[..., c]`` colour counts of the two clusters, ``size_*: int32[...]``.
  """
  size = size_a + size_b
  e = jnp.abs((cnt_a + cnt_b) * n - totals * size[..., None])
  rhs = alpha * (size * n).astype(dtype)
  return jnp.sum(e.astype(dtype) <= rhs[..., None], axis=-1, dtype=jnp.int32)


def _rule_distance(dist, method):
  """The distance the pair rule compares: the stored one, or Ward's (its square root)."""
  return jnp.sqrt(jnp.maximum(dist, 0)) if method == "ward" else dist


def _node_cost(cnt, size, phi, dtype):
  """``sum_g |delta_g - phi_g|`` of clusters with counts ``cnt: int32[..., c]``."""
  delta = cnt.astype(dtype) / jnp.maximum(size, 1)[..., None].astype(dtype)
  return jnp.sum(jnp.abs(delta - phi), axis=-1)


def _num_levels(length: int) -> int:
  """Sparse-table levels so that ``2**(levels - 1) >= length``."""
  return max(1, math.ceil(math.log2(max(length, 1))) + 1)


def _literal_next_final(d, s, valid, beta, num_levels_sigma: int):
  """Chain end of the literal scan; ``num_levels_sigma = c + 1`` levels of ``s``."""
  num = d.shape[0]
  dtype = d.dtype
  inf = jnp.asarray(jnp.inf, dtype)
  idx = jnp.arange(num, dtype=jnp.int32)
  s = jnp.where(valid, s, -1)
  sig = jnp.arange(num_levels_sigma, dtype=jnp.int32)
  # vals[sigma, q] = D_q if pair q is active and satisfies >= sigma groups.
  vals = jnp.where(s[None, :] >= sig[:, None], d[None, :], inf)
  levels = _num_levels(num)
  table = [vals]
  for k in range(1, levels):
    prev = table[-1]
    half = 1 << (k - 1)
    shifted = jnp.concatenate(
        [prev[:, half:], jnp.full((num_levels_sigma, min(half, num)), inf, dtype)],
        axis=1)[:, :num]
    table.append(jnp.minimum(prev, shifted))
  table = jnp.stack(table)                       # [levels, c + 1, N]
  flat = table.reshape(-1)
  lev = jnp.maximum(s, 0)
  thr = d + beta                                 # the scan's d_min + beta
  pos = idx + 1
  for k in reversed(range(levels)):
    length = 1 << k
    inside = pos + length <= num
    at = (k * num_levels_sigma + lev) * num + jnp.minimum(pos, num - 1)
    skip = inside & (flat[at] >= thr)
    pos = jnp.where(skip, pos + length, pos)
  nxt = jnp.where(valid & (pos < num), pos, idx)   # terminal pairs point to themselves
  p0 = jnp.min(jnp.where(valid, idx, num)).astype(jnp.int32)

  def not_done(nx):
    e = nx[p0]
    return nx[e] != e

  nxt = jax.lax.while_loop(not_done, lambda nx: nx[nx], nxt)
  return nxt[p0]


def _vectorized_choice(d, s, valid, beta):
  """Within ``beta`` of the closest active pair, most groups, then closest, then first."""
  num = d.shape[0]
  dtype = d.dtype
  inf = jnp.asarray(jnp.inf, dtype)
  idx = jnp.arange(num, dtype=jnp.int32)
  dv = jnp.where(valid, d, inf)
  dmin = jnp.min(dv)
  cand = valid & (dv <= dmin + beta)
  smax = jnp.max(jnp.where(cand, s, -1))
  cand = cand & (s == smax)
  dbest = jnp.min(jnp.where(cand, dv, inf))
  return jnp.min(jnp.where(cand & (dv == dbest), idx, num)).astype(jnp.int32)


# ---------------------------------------------------------------------------
# The kernel (one parameter vector; vmapped for batches).


def _fhac_one(dist0, colors, params, k, *, num_colors: int, method: str,
              rule: str) -> FHACOutput:
  """FHAC on one instance: ``dist0: float[n, n]``, ``colors: int32[n]``,
  ``params: float[4]`` (alpha0, theta1, beta0, theta2), ``k: int32[]``."""
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
  alpha0, theta1, beta0, theta2 = (params[0], params[1], params[2], params[3])
  k = jnp.asarray(k, jnp.int32)
  nn = jnp.int32(n)
  if rule == "literal":
    pi, pj = _pair_index(n)

  def choose_fair(st, cnt, size, t):
    clusters = nn - t
    alpha = theta1 * (clusters - k).astype(dtype) + alpha0
    beta = theta2 * t.astype(dtype) + beta0
    dfull = _rule_distance(st.dist, method)
    if rule == "literal":
      d = dfull[pi, pj]
      valid = st.alive[pi] & st.alive[pj]
      s = _group_counts_ok(cnt[pi], cnt[pj], size[pi], size[pj], totals, n,
                           alpha, dtype)
      pos = _literal_next_final(d, s, valid, beta, num_colors + 1)
      return pi[pos], pj[pos]
    r = jnp.arange(n, dtype=jnp.int32)
    valid = st.alive[:, None] & st.alive[None, :] & (r[:, None] < r[None, :])
    s = _group_counts_ok(cnt[:, None, :], cnt[None, :, :], size[:, None],
                         size[None, :], totals, n, alpha, dtype)
    pos = _vectorized_choice(dfull.reshape(-1), s.reshape(-1),
                             valid.reshape(-1), beta)
    return pos // n, pos % n

  def step(carry, a, b):
    st, cnt, size, cost, total, hfc = carry
    i = jnp.minimum(a, b)
    j = jnp.maximum(a, b)
    c_new = cnt[i] + cnt[j]
    s_new = size[i] + size[j]
    cost_new = _node_cost(c_new, s_new, phi, dtype)
    hfc = hfc + total                       # the stage before this merge
    total = total + cost_new - cost[i] - cost[j]
    st = _agg.merge(st, a, b, method)[0]
    return (st, cnt.at[i].set(c_new), size.at[i].set(s_new),
            cost.at[i].set(cost_new), total, hfc)

  def fair_body(t, carry):
    a, b = choose_fair(carry[0], carry[1], carry[2], t)
    return step(carry, a, b)

  def plain_body(t, carry):
    a, b = _agg.closest_pair(carry[0])
    return step(carry, a, b)

  carry = (state, cnt, size, cost, total, jnp.zeros((), dtype))
  carry = jax.lax.fori_loop(jnp.int32(0), nn - k, fair_body, carry)
  fc = carry[4]
  carry = jax.lax.fori_loop(nn - k, nn - 1, plain_body, carry)
  st, _, _, _, total, hfc = carry
  hfc = hfc + total                         # the last stage (one cluster)
  return FHACOutput(_agg.to_hierarchy(st), fc, hfc)


_STATIC = ("num_colors", "method", "rule")
fhac_kernel = jax.jit(_fhac_one, static_argnames=_STATIC)
"""Raw jitted FHAC for one parameter vector (no checks): ``fhac_kernel(dist,
colors, params: float[4], k, *, num_colors, method, rule) -> FHACOutput``."""

def _fhac_batch(dist0, colors, params, k, *, num_colors: int, method: str,
                rule: str) -> FHACOutput:
  one = functools.partial(_fhac_one, num_colors=num_colors, method=method,
                          rule=rule)
  return jax.vmap(one, in_axes=(None, None, 0, None))(dist0, colors, params, k)


fhac_batch_kernel = jax.jit(_fhac_batch, static_argnames=_STATIC)
"""Raw jitted FHAC for a batch ``params: float[B, 4]`` (no checks)."""


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
  p = jnp.asarray(p, d.dtype)
  if batched:
    return fhac_batch_kernel(d, col, p, jnp.int32(k), num_colors=c,
                             method=method, rule=rule).hierarchy
  return fhac_kernel(d, col, p, jnp.int32(k), num_colors=c, method=method,
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
  p = jnp.asarray(p, d.dtype)
  kern = fhac_batch_kernel if batched else fhac_kernel
  return kern(d, col, p, jnp.int32(k), num_colors=c, method=method, rule=rule)
