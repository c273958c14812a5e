"""Fairlet decompositions, the fairlet objective and its local search.

A *fairlet* is a small fair set of points; a *fairlet decomposition*
partitions the points into fairlets (Chierichetti et al. 2017). Ahmadian et
al. (NeurIPS 2020) build a fair hierarchy on top of one, and for the value
objective want the decomposition to keep close points together, that is to
minimise the fairlet objective ``phi(Y) = sum_k d(Y_k)``. This module holds:

* the decompositions: :func:`balance_decomposition` (two colours, balance
  ``b:r``) and :func:`capped_decomposition` (any number of colours, cap
  ``alpha = 1/t``), both random (an explicit ``key``) and both returning a
  :class:`Decomposition` (``fairlet_of: int32[n]`` plus the static number of
  fairlets);
* the objective :func:`fairlet_objective` (``phi``), :func:`ratio_fairlets`,
  the point-to-fairlet distance table :func:`fairlet_table`, the all-pairs
  swap kernel :func:`swap_deltas` and the O(n) update :func:`apply_swap`;
* the local search (Algorithm 1) as an ``init``/``step`` pair with an explicit
  state (:class:`LocalSearchState`, :func:`local_search_init`,
  :func:`local_search_step`) and a driver :func:`local_search`, with two
  schedules: ``"random"`` (the authors' randomised one, for reproduction) and
  ``"fast"`` (best swaps, many disjoint swaps per step).

Notation: ``n`` points, ``k`` fairlets, ``D: float[n, n]`` symmetric
distances with a zero diagonal, ``f = fairlet_of``. The table is stored
fairlet-major, ``table[a, x] = d(x, Y_a) = sum_{y in Y_a} D[y, x]``
(``float[k, n]``): a swap then rewrites two *rows* of it, the cheap direction
on XLA:CPU.

Precision: ``phi`` and ``d(V)`` are float sums of up to ``n^2`` terms in the
dtype of ``D`` (float32 by default: relative error about ``1e-6`` to ``1e-5``
at n in the tens of thousands; use float64 under x64 for exact comparisons).
"""

from __future__ import annotations

import dataclasses
import fractions
import functools
import math
import time
from typing import Any, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax import progress as _progress
from fairhc_jax.progress import ProgressMode

SCHEDULES = ("fast", "random")
"""Local-search schedules: ``"fast"`` (ours) and ``"random"`` (the authors')."""


# ---------------------------------------------------------------------------
# The decomposition type.


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["fairlet_of"],
    meta_fields=["num_fairlets", "max_size"],
)
@dataclasses.dataclass(frozen=True)
class Decomposition:
  """A fairlet decomposition.

  Attributes:
    fairlet_of: ``int32[n]``, the fairlet of each point, in ``[0, k)``.
      Every fairlet id in ``[0, k)`` is used.
    num_fairlets: ``k`` (static: it sets the shape of the distance table).
    max_size: the largest fairlet size (static).
  """

  fairlet_of: jax.Array
  num_fairlets: int
  max_size: int


def _color_counts(fn: str, colors: Any):
  """Validates a colouring ``int[n]``; returns (int32 array, counts int[c])."""
  c = _checks.as_array(fn, "colors", colors)
  if c.ndim != 1:
    _checks.fail(fn, "colors", "be int[n] (one colour per point)",
                 f"shape {tuple(c.shape)}")
  n = int(c.shape[0])
  if n == 0:
    _checks.fail(fn, "colors", "hold at least one point", "an empty array")
  c, num_colors = _checks.check_colors(fn, "colors", c, n, batched=False)
  if not _checks.is_concrete(c):
    _checks.fail(fn, "colors", "be concrete (fairlet sizes depend on the colour "
                 "counts)", "a traced array", TypeError)
  counts = np.bincount(np.asarray(c), minlength=num_colors)
  empty = np.flatnonzero(counts == 0)
  if empty.size:
    _checks.fail(fn, "colors", f"give every colour in [0, {num_colors}) at least "
                 "one point", f"no point of colour {int(empty[0])}")
  return c, counts


def _check_balance(fn: str, balance: Any) -> tuple[int, int]:
  if not isinstance(balance, (tuple, list)) or len(balance) != 2:
    _checks.fail(fn, "balance", "be a pair (b, r) of positive integers with b <= r",
                 _checks.describe(balance), TypeError)
  b = _checks.check_positive_int(fn, "balance[0]", balance[0])
  r = _checks.check_positive_int(fn, "balance[1]", balance[1])
  if b > r:
    _checks.fail(fn, "balance", "be (b, r) with b <= r", f"({b}, {r})")
  return b, r


def check_alpha(fn: str, alpha: Any) -> int:
  """Validates a cap ``alpha = 1/t`` (t a positive integer); returns ``t``."""
  if isinstance(alpha, bool) or not isinstance(
      alpha, (int, float, np.integer, np.floating, fractions.Fraction)):
    _checks.fail(fn, "alpha", "be a number 1/t with t a positive integer",
                 repr(alpha), TypeError)
  a = float(alpha)
  if not (0.0 < a <= 1.0):
    _checks.fail(fn, "alpha", "be in (0, 1] (a cap 1/t)", repr(alpha))
  t = round(1.0 / a)
  if abs(t * a - 1.0) > 1e-9:
    _checks.fail(fn, "alpha", "be 1/t for a positive integer t "
                 "(e.g. 1/2, 1/3, 0.25)", repr(alpha))
  return int(t)


@jax.jit
def _assign(key, colors, slots):
  """Shuffles each colour and gives its points the slots of that colour.

  ``slots: int32[n]`` lists fairlet ids colour by colour (all slots of colour
  0 first, then colour 1, ...); the points of each colour take their colour's
  slots in a uniformly random order.
  """
  n = colors.shape[0]
  perm = jax.random.permutation(key, n)
  order = perm[jnp.argsort(colors[perm], stable=True)]
  return jnp.zeros(n, jnp.int32).at[order].set(slots.astype(jnp.int32))


def balance_slots(minority: int, majority: int, b: int, r: int):
  """The two-colour construction of ALGORITHMS.md, on counts (NumPy).

  With ``B`` minority and ``R`` majority points (``B * r >= R * b``): while
  ``R - B >= r - b`` a fairlet of ``b`` minority and ``r`` majority points;
  then, if ``R > B``, one fairlet of ``x`` minority and ``x + R - B`` majority
  points with ``x = ceil(b (R - B) / (r - b))`` (the least ``x`` that keeps
  balance ``>= b/r``; ``x <= b`` and ``x <= B`` always hold, so this is the
  specification's leftover fairlet made as small as possible -- the
  specification's ``x = b`` can exceed the remaining ``B``, e.g. ``B = 2``,
  ``R = 3`` with ``3:5``); the rest are ``(1, 1)`` pairs.

  Returns:
    ``(minority_slots int[B], majority_slots int[R], num_fairlets, max_size)``.
  """
  big_b, big_r = minority, majority
  k1 = (big_r - big_b) // (r - b) if r > b else 0
  mins = [np.repeat(np.arange(k1), b)]
  majs = [np.repeat(np.arange(k1), r)]
  rb, rr = big_b - k1 * b, big_r - k1 * r
  fid, max_size = k1, (b + r if k1 else 0)
  if rr > rb:
    x = -(-b * (rr - rb) // (r - b))
    mins.append(np.full(x, fid))
    majs.append(np.full(x + rr - rb, fid))
    max_size = max(max_size, 2 * x + rr - rb)
    rb, rr, fid = rb - x, rr - (x + rr - rb), fid + 1
  assert rb == rr >= 0, (rb, rr)
  mins.append(fid + np.arange(rb))
  majs.append(fid + np.arange(rr))
  if rb:
    max_size = max(max_size, 2)
  return (np.concatenate(mins).astype(np.int32),
          np.concatenate(majs).astype(np.int32), fid + rb, max_size)


def balance_decomposition(key: jax.Array, colors: Any,
                          balance: Sequence[int]) -> Decomposition:
  """A random two-colour fairlet decomposition with balance at least ``b/r``.

  Every fairlet has ``min(#0, #1) * r >= max(#0, #1) * b`` and at most
  ``b + r`` points (see :func:`balance_slots` for the construction); the
  points of each colour are assigned to the slots in a random order.

  Args:
    key: PRNG key (consumed).
    colors: ``int[n]`` with values 0 and 1, both present.
    balance: ``(b, r)``, positive integers, ``b <= r``.

  Returns:
    A :class:`Decomposition`.

  Raises:
    ValueError: bad colours or balance, or a minority share below
      ``b / (b + r)`` (the message names the colour and its share).
  """
  fn = "balance_decomposition"
  b, r = _check_balance(fn, balance)
  c, counts = _color_counts(fn, colors)
  if counts.size != 2:
    _checks.fail(fn, "colors", "hold exactly two colours 0 and 1 with balance=(b, r) "
                 "(use alpha=1/t for more)", f"{counts.size} colour(s)")
  n = int(c.shape[0])
  g = int(np.argmin(counts))
  big_b, big_r = int(counts[g]), int(counts[1 - g])
  if big_b * r < big_r * b:
    _checks.fail(fn, "colors", f"give the minority colour a share of at least "
                 f"b/(b+r) = {b}/{b + r} = {b / (b + r):.4g} for balance {b}:{r}",
                 f"colour {g} with {big_b} of {n} points (share {big_b / n:.4g}, "
                 f"balance {big_b}:{big_r})")
  smin, smaj, k, max_size = balance_slots(big_b, big_r, b, r)
  slots = np.concatenate([smin, smaj] if g == 0 else [smaj, smin])
  f = _assign(key, c, jnp.asarray(slots))
  return Decomposition(fairlet_of=f, num_fairlets=int(k), max_size=int(max_size))


def capped_decomposition(key: jax.Array, colors: Any, alpha: Any) -> Decomposition:
  """A random fairlet decomposition in which no colour exceeds ``alpha = 1/t``.

  Construction: ``k = floor(n / t)`` fairlets; the points, sorted by colour
  (randomly within each colour), go round-robin to fairlets ``0, 1, ..., k-1,
  0, 1, ...``. Feasibility (``n_g * t <= n`` for every colour) gives
  ``n_g <= floor(n / t) = k``, so a colour's points, consecutive in that
  order, land in distinct fairlets: every fairlet holds at most one point of
  each colour and has ``floor(n/k) >= t`` or ``ceil(n/k)`` points, so each
  colour's share is at most ``1/t`` (``count * t <= size``). Since
  ``n < (k + 1) t``, sizes are at most ``t + ceil((t - 1) / k) <= 2t - 1``
  (the paper's bound; ``t + 1`` once ``k >= t - 1``, singletons when
  ``t = 1``).

  Args:
    key: PRNG key (consumed).
    colors: ``int[n]`` colours in ``[0, c)``, every colour present.
    alpha: the cap ``1/t`` (``t`` a positive integer; e.g. ``0.25``).

  Returns:
    A :class:`Decomposition`.

  Raises:
    ValueError: a colour holding more than ``alpha * n`` points (named, with
      its share), fewer than ``t`` points, or a bad ``alpha``.
  """
  fn = "capped_decomposition"
  t = check_alpha(fn, alpha)
  c, counts = _color_counts(fn, colors)
  n = int(c.shape[0])
  if n < t:
    _checks.fail(fn, "colors", f"hold at least one fairlet's worth of points "
                 f"(t = 1/alpha = {t})", f"{n} point(s)")
  over = np.flatnonzero(counts * t > n)
  if over.size:
    g = int(over[np.argmax(counts[over])])
    _checks.fail(fn, "colors", f"give every colour a share of at most alpha = 1/{t} "
                 f"= {1 / t:.4g}", f"colour {g} with {int(counts[g])} of {n} points "
                 f"(share {counts[g] / n:.4g}, at most {n // t} allowed)")
  k = n // t
  slots = np.arange(n, dtype=np.int32) % k
  f = _assign(key, c, jnp.asarray(slots))
  return Decomposition(fairlet_of=f, num_fairlets=int(k), max_size=-(-n // k))


def decomposition_from_assignment(fairlet_of: Any) -> Decomposition:
  """Wraps a user-given assignment ``int[n]`` (ids ``0..k-1``, all used).

  No fairness check is made here (see :mod:`fairhc_jax.fairness`).
  """
  fn = "decomposition_from_assignment"
  f = np.asarray(fairlet_of)
  if f.ndim != 1 or f.size == 0 or f.dtype.kind not in "iu":
    _checks.fail(fn, "fairlet_of", "be a non-empty int[n]", _checks.describe(f))
  if f.min() < 0:
    _checks.fail(fn, "fairlet_of", "hold fairlet ids >= 0", f"id {int(f.min())}")
  k = int(f.max()) + 1
  sizes = np.bincount(f, minlength=k)
  if (sizes == 0).any():
    _checks.fail(fn, "fairlet_of", "use every fairlet id 0..k-1",
                 f"values from {int(f.min())} to {k - 1} with "
                 f"{int((sizes == 0).sum())} unused id(s)")
  return Decomposition(fairlet_of=jnp.asarray(f, jnp.int32), num_fairlets=k,
                       max_size=int(sizes.max()))


# ---------------------------------------------------------------------------
# The objective, the distance table and the swap kernel.


@jax.jit
def fairlet_objective(D: jax.Array, fairlet_of: jax.Array) -> jax.Array:
  """``phi(Y) = sum_k d(Y_k)``: the distances inside fairlets, each pair once.

  One fused pass over ``D: float[n, n]``; ``fairlet_of: int[n]``.
  """
  same = fairlet_of[:, None] == fairlet_of[None, :]
  return 0.5 * jnp.sum(jnp.where(same, D, 0))


@jax.jit
def ratio_fairlets(D: jax.Array, fairlet_of: jax.Array) -> jax.Array:
  """``phi(Y) / d(V)`` (the paper's ``ratio_fairlets``); 0 when ``d(V) = 0``."""
  phi = fairlet_objective(D, fairlet_of)
  total = 0.5 * jnp.sum(D)
  return jnp.where(total > 0, phi / jnp.where(total > 0, total, 1), 0)


@functools.partial(jax.jit, static_argnames="num_fairlets")
def fairlet_table(D: jax.Array, fairlet_of: jax.Array,
                  num_fairlets: int) -> jax.Array:
  """``float[k, n]`` with ``table[a, x] = d(x, Y_a)`` (``D`` symmetric).

  A segment sum of the rows of ``D``: O(n^2).
  """
  return jax.ops.segment_sum(D, fairlet_of, num_segments=num_fairlets)


def _own(table, fairlet_of):
  """``float[n]``: ``d(x, Y_f(x))``."""
  n = fairlet_of.shape[0]
  return table[fairlet_of, jnp.arange(n)]


@jax.jit
def swap_deltas(D: jax.Array, table: jax.Array, fairlet_of: jax.Array,
                colors: jax.Array) -> jax.Array:
  """Change of ``phi`` for every swap, as one ``float[n, n]`` expression.

  Swapping ``u in Y_i`` with ``v in Y_j`` (``i != j``, same colour) changes
  ``phi`` by ``F[v,i] + F[u,j] - F[u,i] - F[v,j] - 2 d(u,v)`` with
  ``F[x, a] = table[a, x]`` (the specification's "gain"; negative values are
  improvements). Pairs of different colours or in the same fairlet get
  ``+inf``. Symmetric. Materialises ``n x n`` floats; the local search uses a
  row-blocked form of the same expression.
  """
  f = fairlet_of
  h = table[f]  # h[u, v] = F[v, f(u)]
  own = _own(table, f)
  delta = h + h.T - own[:, None] - own[None, :] - 2 * D
  ok = (colors[:, None] == colors[None, :]) & (f[:, None] != f[None, :])
  return jnp.where(ok, delta, jnp.inf)


def _row_block(n: int) -> int:
  """Rows per block of the blocked swap kernel (about 1 MiB per operand)."""
  return int(max(8, min(256, (1 << 18) // max(n, 1))))


def best_swaps(D: jax.Array, table: jax.Array, fairlet_of: jax.Array,
               colors: jax.Array, rows: Optional[jax.Array] = None):
  """Each point's best swap partner, from :func:`swap_deltas` row by row.

  Computed in row blocks (never materialising ``n x n``): row ``u`` is
  ``table[f(u)] + table.T[u][f] - own(u) - own - 2 D[u]``, masked to the
  same colour and other fairlets; its minimum is found with ``min`` and
  then a masked-iota ``min`` (``argmin`` is slow on XLA:CPU).

  Args:
    D: ``float[n, n]``.
    table: ``float[k, n]`` (see :func:`fairlet_table`).
    fairlet_of: ``int32[n]``.
    colors: ``int32[n]``.
    rows: optional ``int32[R]``: compute only these rows.

  Returns:
    ``(delta float[R], partner int32[R])`` (``R = n`` by default): the
    smallest change of ``phi`` over the swaps of each point and its partner
    (lowest index on ties); ``+inf`` and ``n`` when a point has no valid
    partner.
  """
  n = D.shape[0]
  f = fairlet_of
  own = _own(table, f)
  iota = jnp.arange(n, dtype=jnp.int32)
  if rows is None:
    table_t = table.T  # [n, k]: one transpose pays off for all rows
    column = lambda u: table_t[u]
  else:
    column = lambda u: table[:, u]  # a few rows: strided reads, no transpose

  def row(u):
    dl = (table[f[u]] + column(u)[f] - own[u] - own - 2 * D[u])
    ok = (colors == colors[u]) & (f != f[u])
    dl = jnp.where(ok, dl, jnp.inf)
    m = jnp.min(dl)
    idx = jnp.min(jnp.where(dl == m, iota, n))
    return m, jnp.where(jnp.isfinite(m), idx, n)

  rows = iota if rows is None else rows
  return jax.lax.map(row, rows, batch_size=_row_block(n))


def apply_swap(table: jax.Array, fairlet_of: jax.Array, D: jax.Array,
               u: jax.Array, v: jax.Array):
  """Swaps points ``u`` and ``v`` between their fairlets; O(n).

  Only rows ``f(u)`` and ``f(v)`` of the table change:
  ``table[f(u)] += D[v] - D[u]`` and ``table[f(v)] -= D[v] - D[u]``.

  Returns:
    ``(table, fairlet_of)`` after the swap.
  """
  i, j = fairlet_of[u], fairlet_of[v]
  diff = D[v] - D[u]
  table = table.at[i].add(diff)
  table = table.at[j].add(-diff)
  fairlet_of = fairlet_of.at[u].set(j).at[v].set(i)
  return table, fairlet_of


# ---------------------------------------------------------------------------
# Local search (Algorithm 1) as an init/step pair.


class LocalSearchState(NamedTuple):
  """State of the fairlet local search (one instance; ``vmap`` for batches).

  Attributes:
    fairlet_of: ``int32[n]``, the current decomposition.
    table: ``float[k, n]``, ``table[a, x] = d(x, Y_a)`` for it.
    phi: ``float[]``, the current fairlet objective.
    phi_floor: ``float[]``, ``d_max / n^2``: the search stops at or below it.
    swaps: ``int32[]``, swaps accepted so far.
    trials: ``int32[]``, swap candidates examined so far.
    steps: ``int32[]``, steps taken (rounds of ``n`` trials for ``"random"``).
    done: ``bool[]``, whether the schedule's stopping rule has fired.
    key: PRNG key for the randomised schedule.
    best_delta: ``float[n]``, the fast schedule's cache: each point's best
      swap change as of its last computation.
    best_partner: ``int32[n]``, the partners of ``best_delta`` (``n``: none).
    touched: ``bool[k]``, fairlets changed by the last fast step.
    full_next: ``bool[]``, whether the next fast step must recompute every row.
  """

  fairlet_of: jax.Array  # int32[n]
  table: jax.Array  # float[k, n]
  phi: jax.Array  # float[]
  phi_floor: jax.Array  # float[]
  swaps: jax.Array  # int32[]
  trials: jax.Array  # int32[]
  steps: jax.Array  # int32[]
  done: jax.Array  # bool[]
  key: jax.Array  # key
  best_delta: jax.Array  # float[n]
  best_partner: jax.Array  # int32[n]
  touched: jax.Array  # bool[k]
  full_next: jax.Array  # bool[]


@functools.partial(jax.jit, static_argnames="num_fairlets")
def _init(key, D, fairlet_of, num_fairlets):
  n = D.shape[0]
  table = fairlet_table(D, fairlet_of, num_fairlets)
  phi = 0.5 * jnp.sum(_own(table, fairlet_of))
  floor = jnp.max(D) / (n * n)
  zero = jnp.zeros((), jnp.int32)
  return LocalSearchState(
      fairlet_of=fairlet_of.astype(jnp.int32), table=table, phi=phi,
      phi_floor=floor, swaps=zero, trials=zero, steps=zero, done=phi <= floor,
      key=key, best_delta=jnp.full(n, jnp.inf, D.dtype),
      best_partner=jnp.full(n, n, jnp.int32),
      touched=jnp.zeros(num_fairlets, bool), full_next=jnp.ones((), bool))


def local_search_init(key: jax.Array, D: jax.Array,
                      decomposition: Decomposition) -> LocalSearchState:
  """The initial state: the decomposition, its table, ``phi`` and floor.

  Args:
    key: PRNG key, kept in the state for the randomised schedule.
    D: ``float[n, n]`` symmetric distances, zero diagonal.
    decomposition: the starting :class:`Decomposition`.
  """
  return _init(key, D, decomposition.fairlet_of, decomposition.num_fairlets)


def _threshold(phi, eps, n):
  """Accept a change ``delta`` when ``(phi + delta) (1 + eps/n) < phi``."""
  rate = eps / n
  return -phi * (rate / (1 + rate))


def _random_round(state: LocalSearchState, D, colors, eps):
  """One round of the authors' schedule: ``n`` random same-colour trials."""
  n = D.shape[0]
  key, k_u, k_v = jax.random.split(state.key, 3)
  order = jnp.argsort(colors, stable=True).astype(jnp.int32)
  sorted_c = colors[order]
  lo = jnp.searchsorted(sorted_c, colors, side="left").astype(jnp.int32)
  hi = jnp.searchsorted(sorted_c, colors, side="right").astype(jnp.int32)
  us = jax.random.randint(k_u, (n,), 0, n, dtype=jnp.int32)
  pick = jax.random.uniform(k_v, (n,), dtype=jnp.float32)
  span = hi[us] - lo[us]
  vs = order[lo[us] + jnp.minimum((pick * span).astype(jnp.int32), span - 1)]

  def trial(t, carry):
    table, f, phi, accepted = carry
    u, v = us[t], vs[t]
    i, j = f[u], f[v]
    vals = table[jnp.stack([i, j, i, j]), jnp.stack([v, u, u, v])]
    # Own buffer for the values read from the loop-carried table: without
    # it XLA copies the whole table every trial (PERFORMANCE-NOTES).
    vals = vals.at[0].set(vals[0])
    delta = vals[0] + vals[1] - vals[2] - vals[3] - 2 * D[u, v]
    ok = (i != j) & (delta < _threshold(phi, eps, n)) & (phi > state.phi_floor)

    # A loop that runs once or never: unlike lax.cond, it updates the
    # table in place (a cond's identity branch copies the whole table).
    def swap(args):
      _, table, f = args
      return (False,) + apply_swap(table, f, D, u, v)

    _, table, f = jax.lax.while_loop(lambda a: a[0], swap, (ok, table, f))
    return table, f, jnp.where(ok, phi + delta, phi), accepted + ok

  table, f, phi, accepted = jax.lax.fori_loop(
      0, n, trial, (state.table, state.fairlet_of, state.phi,
                    jnp.zeros((), jnp.int32)))
  phi = 0.5 * jnp.sum(_own(table, f))  # refresh: no drift across rounds
  done = (accepted == 0) | (phi <= state.phi_floor)
  return state._replace(fairlet_of=f, table=table, phi=phi, swaps=state.swaps + accepted,
                        trials=state.trials + n, steps=state.steps + 1,
                        done=done, key=key, full_next=jnp.ones((), bool))


def _fast_step(state: LocalSearchState, D, colors, eps):
  """One step of the fast schedule: many disjoint best swaps.

  Each point's best partner comes from the blocked swap kernel; the
  candidates are scanned from the most improving one, accepting each whose
  two fairlets are still untouched in this step (a greedy matching over
  fairlets). Swaps on disjoint pairs of fairlets do not interact, so every
  accepted swap's change of ``phi`` is exact. Then the table rows of the
  accepted swaps are updated, O(n) per swap.

  After a step that touched few fairlets, the next step recomputes only the
  rows of the points in those fairlets (``swap_deltas`` is symmetric, so
  every pair whose change of ``phi`` moved has such an endpoint) and keeps
  the cached best swaps of the other points whose partner's fairlet was not
  touched (still exact). Such a partial step may miss some swaps, so the
  search only stops after a full step finds none.
  """
  n = D.shape[0]
  k = state.table.shape[0]
  f0 = state.fairlet_of
  # Partial steps come in a few static row capacities (a small one for the
  # long tail of steps with few swaps); more touched rows: a full step.
  caps = sorted({max(1, n // 64), max(1, n // 4)})
  rows_mask = state.touched[f0]
  num_rows = jnp.sum(rows_mask)
  tier = sum((num_rows > c).astype(jnp.int32) for c in caps)
  tier = jnp.where(state.full_next, len(caps), tier)

  def full_rows():
    return best_swaps(D, state.table, f0, colors)

  def partial_rows(cap):
    rows = jnp.nonzero(rows_mask, size=cap, fill_value=0)[0].astype(jnp.int32)
    m, idx = best_swaps(D, state.table, f0, colors, rows)
    partner = state.best_partner
    stale = rows_mask | state.touched[f0[jnp.minimum(partner, n - 1)]]
    delta = jnp.where(stale, jnp.inf, state.best_delta).at[rows].set(m)
    partner = jnp.where(stale, n, partner).at[rows].set(idx)
    return delta, partner

  branches = [functools.partial(partial_rows, c) for c in caps] + [full_rows]
  delta, partner = jax.lax.switch(tier, branches)
  full = tier == len(caps)
  cand = jnp.argsort(delta).astype(jnp.int32)
  num_neg = jnp.sum(delta < 0).astype(jnp.int32)
  max_swaps = k // 2 + 1

  def scan_cond(carry):
    return carry[0] < num_neg

  def scan_body(carry):
    c, used, phi, count, acc_u, acc_v = carry
    u = cand[c]
    v = partner[u]
    d = delta[u]
    i, j = f0[u], f0[jnp.minimum(v, n - 1)]
    ok = ((~used[i]) & (~used[j]) & (d < _threshold(phi, eps, n))
          & (phi > state.phi_floor))
    used = used.at[i].set(used[i] | ok).at[j].set(used[j] | ok)
    slot = jnp.where(ok, count, max_swaps)  # out of range: dropped
    acc_u = acc_u.at[slot].set(u, mode="drop")
    acc_v = acc_v.at[slot].set(v, mode="drop")
    return (c + 1, used, jnp.where(ok, phi + d, phi), count + ok, acc_u, acc_v)

  init = (jnp.zeros((), jnp.int32), jnp.zeros(k, bool), state.phi,
          jnp.zeros((), jnp.int32), jnp.zeros(max_swaps, jnp.int32),
          jnp.zeros(max_swaps, jnp.int32))
  _, used, _, count, acc_u, acc_v = jax.lax.while_loop(scan_cond, scan_body, init)

  def do_swap(s, carry):
    table, f = carry
    return apply_swap(table, f, D, acc_u[s], acc_v[s])

  table, f = jax.lax.fori_loop(0, count, do_swap, (state.table, f0))
  phi = 0.5 * jnp.sum(_own(table, f))
  at_floor = phi <= state.phi_floor
  done = ((count == 0) & full) | at_floor
  return state._replace(fairlet_of=f, table=table, phi=phi,
                        swaps=state.swaps + count, trials=state.trials + num_neg,
                        steps=state.steps + 1, done=done, best_delta=delta,
                        best_partner=partner, touched=used,
                        full_next=(count == 0))


@functools.partial(jax.jit, static_argnames="schedule")
def _step(state, D, colors, eps, schedule):
  body = _fast_step if schedule == "fast" else _random_round
  return jax.lax.cond(state.done, lambda s: s,
                      lambda s: body(s, D, colors, eps), state)


def local_search_step(state: LocalSearchState, D: jax.Array, colors: jax.Array,
                      *, schedule: str = "fast", eps: float = 0.1) -> LocalSearchState:
  """One step of the local search (a no-op once ``state.done``).

  Acceptance rule (both schedules): a swap is taken when it lowers ``phi``
  by more than a factor ``1 + eps/n`` and ``phi > d_max / n^2``.

  * ``"random"``: one round of the authors' schedule: ``n`` trials, each a
    uniformly random point and a uniformly random point of the same colour;
    each accepted swap updates the table in O(n). ``done`` after a round with
    no accepted swap.
  * ``"fast"``: every point's best swap from the vectorised kernel
    (O(n^2) work in row blocks), then a greedy set of swaps on pairwise
    disjoint fairlets, best first. ``done`` when no swap passes the rule,
    i.e. the decomposition is ``(eps/n)``-locally optimal (Definition 13).

  Args:
    state: the current :class:`LocalSearchState`.
    D: ``float[n, n]`` distances (the same as at init).
    colors: ``int32[n]``.
    schedule: ``"fast"`` or ``"random"``.
    eps: ``eps > 0`` of the acceptance rule.
  """
  fn = "local_search_step"
  _checks.check_choice(fn, "schedule", schedule, SCHEDULES)
  eps = check_eps(fn, eps)
  return _step(state, D, jnp.asarray(colors, jnp.int32),
               jnp.asarray(eps, D.dtype), schedule)


def check_eps(fn: str, eps: Any) -> float:
  """Validates the local search's ``eps > 0``; returns it as a float."""
  if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
    _checks.fail(fn, "eps", "be a positive number", repr(eps), TypeError)
  if not (math.isfinite(float(eps)) and float(eps) > 0):
    _checks.fail(fn, "eps", "be a positive number", repr(eps))
  return float(eps)


@functools.partial(jax.jit, static_argnames="schedule")
def _run(state, D, colors, eps, max_steps, schedule):
  body = _fast_step if schedule == "fast" else _random_round

  start = state.steps

  def cond(s):
    return (~s.done) & (s.steps - start < max_steps)

  return jax.lax.while_loop(cond, lambda s: body(s, D, colors, eps), state)


def local_search_run(state: LocalSearchState, D: jax.Array, colors: jax.Array, *,
                     schedule: str = "fast", eps: float = 0.1,
                     max_steps: Optional[int] = None,
                     progress: ProgressMode = "auto") -> LocalSearchState:
  """Steps ``state`` until it is done (or ``max_steps`` more steps), jitted.

  The same as calling :func:`local_search_step` in a loop; ``D`` and
  ``colors`` are not re-validated (see :func:`local_search`). The loop runs
  as a ``lax.while_loop`` in chunks of steps (the step cap is a traced
  argument, so chunks do not recompile); between chunks a progress line
  (steps, swaps, phi) goes to stderr: ``progress="auto"`` shows it only once
  the search has run for 2 s, ``True`` always, ``False`` never (then the
  whole search is one call).
  """
  fn = "local_search_run"
  _checks.check_choice(fn, "schedule", schedule, SCHEDULES)
  eps = check_eps(fn, eps)
  progress = _progress.check_mode(fn, progress)
  cap = np.iinfo(np.int32).max if max_steps is None else _checks.check_positive_int(
      fn, "max_steps", max_steps, minimum=0)
  colors = jnp.asarray(colors, jnp.int32)
  eps_arr = jnp.asarray(eps, D.dtype)
  if progress is False or isinstance(state.phi, jax.core.Tracer):
    return _run(state, D, colors, eps_arr, jnp.asarray(cap, jnp.int32), schedule)
  bar = _progress.Progress(f"local search ({schedule})", progress)
  phi0 = float(state.phi)
  remaining, chunk = cap, 1
  while remaining > 0 and not bool(state.done):
    t0 = time.perf_counter()
    step = min(chunk, remaining)
    before = int(state.steps)
    state = _run(state, D, colors, eps_arr, jnp.asarray(step, jnp.int32), schedule)
    remaining -= int(state.steps) - before
    if int(state.steps) == before:  # no step taken: done
      break
    # Aim for about four progress updates a second.
    chunk = chunk * 2 if time.perf_counter() - t0 < 0.25 else max(1, chunk // 2)
    bar.update(f"{int(state.steps)} steps, {int(state.swaps)} swaps, "
               f"phi {float(state.phi) / max(phi0, 1e-30):.3g} of initial")
  bar.close()
  return state


def local_search(key: jax.Array, D: Any, colors: Any, decomposition: Decomposition,
                 *, schedule: str = "fast", eps: float = 0.1,
                 max_steps: Optional[int] = None,
                 progress: ProgressMode = "auto") -> LocalSearchState:
  """Runs the local search from ``decomposition`` until it stops.

  Args:
    key: PRNG key (consumed by the ``"random"`` schedule).
    D: ``float[n, n]`` symmetric distances with a zero diagonal.
    colors: ``int[n]`` colours (swaps keep every fairlet's colour counts).
    decomposition: the starting :class:`Decomposition`.
    schedule: ``"fast"`` (default) or ``"random"``; see
      :func:`local_search_step`.
    eps: ``eps > 0`` in the acceptance rule (the paper uses 0.1).
    max_steps: cap on the number of steps (default: unbounded).
    progress: a progress line on stderr: ``"auto"`` (once the search has run
      2 s), ``True`` or ``False``.

  Returns:
    The final :class:`LocalSearchState` (``fairlet_of``, ``phi``, ``swaps``,
    ``steps``, ``trials``).
  """
  fn = "local_search"
  _checks.check_choice(fn, "schedule", schedule, SCHEDULES)
  eps = check_eps(fn, eps)
  D = _checks.check_square_matrix(fn, "D", D, zero_diagonal=True)
  n = D.shape[0]
  c, _ = _checks.check_colors(fn, "colors", colors, n, batched=False)
  if not isinstance(decomposition, Decomposition):
    _checks.fail(fn, "decomposition", "be a Decomposition", type(decomposition).__name__,
                 TypeError)
  if decomposition.fairlet_of.shape != (n,):
    _checks.fail(fn, "decomposition", f"cover the {n} points of D",
                 f"fairlet_of of shape {tuple(decomposition.fairlet_of.shape)}")
  if max_steps is not None:
    _checks.check_positive_int(fn, "max_steps", max_steps, minimum=0)
  state = local_search_init(key, D, decomposition)
  return local_search_run(state, D, c, schedule=schedule, eps=eps, max_steps=max_steps,
                          progress=progress)
