"""Fairlet decompositions, the fairlet objective and its local search.

A *fairlet* is a small fair set of points; a *fairlet decomposition*
partitions the points into fairlets (Chierichetti et al. 2017). Ahmadian et
al. (NeurIPS 2020) build a fair hierarchy on top of one, and for the value
objective want the decomposition to keep close points together, that is to
minimise the fairlet objective ``phi(Y) = sum_k d(Y_k)``. This module holds:

* the decompositions, driven by the constraint types of
  :mod:`fairhc_jax.fairness` (the objects the checks take):
  :func:`fairlet_decomposition` ``(key, colors, constraint)`` dispatches on
  :class:`~fairhc_jax.fairness.Balance` ``(b, r)`` (two colours, every
  fairlet with balance ``>= b/r``; :func:`balance_decomposition`) and
  :class:`~fairhc_jax.fairness.BoundedRepresentation` ``(1/t)`` (any number
  of colours, no colour above a share of ``1/t``;
  :func:`capped_decomposition`). All are random (an explicit ``key``) and
  return a :class:`Decomposition` (``fairlet_of: int32[n]`` plus the static
  number of fairlets and largest size);
* the objective :func:`fairlet_objective` (``phi``), :func:`ratio_fairlets`,
  the member table :func:`fairlet_members`, the point-to-fairlet distance
  table :func:`fairlet_table`, the all-pairs swap kernel :func:`swap_deltas`
  and the O(n) update :func:`apply_swap`;
* the local search (Algorithm 1) in the optax style:
  ``search = local_search(schedule, eps)`` is a :class:`LocalSearch` triple
  of pure functions ``init(D, decomposition, key=None) -> state``,
  ``step(state, D, colors) -> state`` and ``run(state, D, colors,
  max_steps=None) -> state`` with one state type per schedule
  (:class:`FastSearchState`, :class:`RandomSearchState`); the schedule and
  ``eps`` are fixed (and checked) once, when the pair is made.
  :func:`run_local_search` is the convenience runner (checks, init, run,
  a progress line). Schedules (:data:`SCHEDULES`): ``"fast"`` (best swaps,
  many disjoint swaps per step) and ``"random"`` (the authors' randomised
  one, for reproduction).

Constraint rules (exact, with :func:`fairhc_jax._checks.as_fraction`, the
same reading as the checks): ``Balance(b, r)`` needs integers
``1 <= b <= r`` (``b = 0`` asks for no fairness at all and is an error
here: use plain average linkage); it is the same constraint as
``Balance(b/g, r/g)`` for ``g = gcd(b, r)`` and the decomposition uses the
reduced pair (smaller fairlets). ``BoundedRepresentation(alpha)`` needs
``alpha = 1/t`` exactly for a positive integer ``t`` (``0.25``, ``1/3`` as
a float, ``Fraction(1, 3)``, ``(1, 3)``); other caps have no fairlet
construction here and are an error. Infeasible requests name the colour
and the numbers.

Notation: ``n`` points, ``k`` fairlets, ``D: float[n, n]`` symmetric
distances with a zero diagonal, ``f = fairlet_of``. The table is stored
fairlet-major, ``table[a, x] = d(x, Y_a) = sum_{y in Y_a} D[y, x]``
(``float[k, n]``): a swap then rewrites two *rows* of it, the cheap direction
on XLA:CPU.

Determinism (same key, same result, bitwise, on any backend): every float
sum here has a fixed order. Sums over a fairlet's points run over the
member table (``members[a, s]``, the ``s``-th point of fairlet ``a`` by
index) in slot order; there is no float scatter-add (``segment_sum``
becomes atomic adds in arbitrary order on GPU). The loops inside a step
have trip counts fixed at trace time on GPU/TPU (a few static capacities
chosen by ``lax.switch``; ``lax.platform_dependent`` keeps the exact
while-loop count on CPU, where a loop predicate costs nothing; both forms
give the same result, tested), so on a GPU no loop reads its predicate back
per iteration; only the outer loop over steps in ``run`` is data-dependent.

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
from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax import progress as _progress
from fairhc_jax.fairness import Balance, BoundedRepresentation
from fairhc_jax.progress import ProgressMode

SCHEDULES = ("fast", "random")
"""Local-search schedules: ``"fast"`` (ours) and ``"random"`` (the authors').
The one list of them: :func:`fairhc_jax.algorithms.fairlet_hc.
fair_hierarchical_clustering` also takes ``schedule=None`` (no search)."""


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
                 "one point (colours are codes 0..c-1: recode other labels with "
                 "np.unique(labels, return_inverse=True)[1])",
                 f"no point of colour {int(empty[0])}")
  return c, counts


def read_balance(fn: str, constraint: Any) -> tuple[int, int]:
  """Reads a two-colour balance target; returns the reduced ``(b, r)``.

  Accepts :class:`~fairhc_jax.fairness.Balance` ``(b, r)`` or the alias
  pair ``(b, r)``. Integers ``1 <= b <= r`` (exact: no float ratios);
  the result is divided by ``gcd(b, r)`` (the same constraint, smaller
  fairlets).
  """
  if isinstance(constraint, Balance):
    names = ("constraint.b", "constraint.r")
    what = f"Balance({constraint.b!r}, {constraint.r!r})"
  elif isinstance(constraint, (tuple, list)) and len(constraint) == 2:
    names = ("balance[0]", "balance[1]")
    what = f"({constraint[0]!r}, {constraint[1]!r})"
  else:
    _checks.fail(fn, "constraint", "be Balance(b, r) with integers 1 <= b <= r",
                 _checks.describe(constraint), TypeError)
  vals = []
  for name, v in zip(names, constraint):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
      _checks.fail(fn, name, "be an integer", repr(v), TypeError)
    vals.append(int(v))
  b, r = vals
  if b == 0:
    _checks.fail(fn, names[0], "be an integer >= 1 for a fairlet decomposition "
                 "(b = 0 asks for no balance at all: use plain average linkage, "
                 "fairhc_jax.linkage)", what)
  if b < 0 or r < 1:
    _checks.fail(fn, names[0] if b < 0 else names[1], "be an integer >= 1", what)
  if b > r:
    _checks.fail(fn, "constraint" if names[0][0] == "c" else "balance",
                 "be (b, r) with b <= r (balance is at most 1)", what)
  g = math.gcd(b, r)
  return b // g, r // g


def read_cap(fn: str, constraint: Any) -> int:
  """Reads a cap ``1/t``; returns the integer ``t``.

  Accepts :class:`~fairhc_jax.fairness.BoundedRepresentation` ``(alpha)``
  or the alias ``alpha`` (a ``Fraction``, int, ``(num, den)`` or float, read
  exactly with :func:`fairhc_jax._checks.as_fraction`: ``0.25 -> 1/4``,
  ``1/3 -> 1/3``). ``alpha`` must be exactly ``1/t``, ``t >= 1``.
  """
  if isinstance(constraint, BoundedRepresentation):
    arg, raw = "constraint.alpha", constraint.alpha
  else:
    arg, raw = "alpha", constraint
  if isinstance(raw, (str, bytes)) or raw is None:
    _checks.fail(fn, arg, "be a number 1/t with t a positive integer", repr(raw),
                 TypeError)
  a = _checks.as_fraction(fn, arg, raw)
  if not 0 < a <= 1:
    _checks.fail(fn, arg, "be in (0, 1] (a cap 1/t)", repr(raw))
  if a.numerator != 1:
    _checks.fail(fn, arg, "be 1/t for a positive integer t (e.g. 1/2, 1/3, 0.25; "
                 "other caps have no fairlet construction)", f"{raw!r} = {a}")
  return int(a.denominator)


def check_alpha(fn: str, alpha: Any) -> int:
  """Validates a cap ``alpha = 1/t`` exactly; returns ``t`` (see :func:`read_cap`)."""
  return read_cap(fn, alpha)


Constraint = Union[Balance, BoundedRepresentation]
"""The constraints a fairlet decomposition can be built for."""


def as_constraint(fn: str, constraint: Any = None, *, balance: Any = None,
                  alpha: Any = None):
  """Reads the target of a fairlet pipeline: exactly one of the three.

  Returns:
    ``(constraint, kind, params)``: the constraint object (``Balance`` with
    the given integers, or ``BoundedRepresentation(Fraction(1, t))``),
    ``"balance"`` or ``"cap"``, and ``(b, r)`` reduced or ``t``.
  """
  given = [(name, v) for name, v in (("constraint", constraint), ("balance", balance),
                                     ("alpha", alpha)) if v is not None]
  if len(given) != 1:
    _checks.fail(fn, "constraint", "be given exactly once (constraint=Balance(b, r) "
                 "for two colours, constraint=BoundedRepresentation(1/t) for a cap; "
                 "balance=(b, r) and alpha=1/t are aliases)",
                 ", ".join(f"{k}={v!r}" for k, v in given) if given else "none")
  name, v = given[0]
  if name == "balance":
    b, r = read_balance(fn, v)
    return Balance(int(v[0]), int(v[1])), "balance", (b, r)
  if name == "alpha":
    t = read_cap(fn, v)
    return BoundedRepresentation(fractions.Fraction(1, t)), "cap", t
  if isinstance(v, Balance):
    b, r = read_balance(fn, v)
    return Balance(int(v.b), int(v.r)), "balance", (b, r)
  if isinstance(v, BoundedRepresentation):
    t = read_cap(fn, v)
    return BoundedRepresentation(fractions.Fraction(1, t)), "cap", t
  _checks.fail(fn, "constraint", "be Balance(b, r) or BoundedRepresentation(1/t) "
               "(the constraints with a fairlet construction)",
               type(v).__name__, TypeError)


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


def _balance_decomposition(fn: str, key, colors, b: int, r: int) -> Decomposition:
  c, counts = _color_counts(fn, colors)
  if counts.size != 2:
    _checks.fail(fn, "colors", "hold exactly two colours 0 and 1 for a Balance "
                 "constraint (use BoundedRepresentation(1/t) for more)",
                 f"{counts.size} colour(s)")
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


def _capped_decomposition(fn: str, key, colors, t: int) -> Decomposition:
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


def balance_decomposition(key: jax.Array, colors: Any, constraint: Any) -> Decomposition:
  """A random two-colour fairlet decomposition with balance at least ``b/r``.

  Every fairlet has ``min(#0, #1) * r >= max(#0, #1) * b`` and at most
  ``b + r`` points (``b, r`` reduced by their gcd; see
  :func:`balance_slots` for the construction); the points of each colour
  are assigned to the slots in a random order.

  Args:
    key: PRNG key (consumed).
    colors: ``int[n]`` with values 0 and 1, both present.
    constraint: :class:`~fairhc_jax.fairness.Balance` ``(b, r)`` or the
      alias pair ``(b, r)``: integers ``1 <= b <= r``.

  Returns:
    A :class:`Decomposition`.

  Raises:
    ValueError: bad colours or balance (``b = 0`` included), or a minority
      share below ``b / (b + r)`` (the message names the colour and its
      counts).
  """
  fn = "balance_decomposition"
  b, r = read_balance(fn, constraint)
  _checks.check_key(fn, key)
  return _balance_decomposition(fn, key, colors, b, r)


def capped_decomposition(key: jax.Array, colors: Any, constraint: Any) -> Decomposition:
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
    constraint: :class:`~fairhc_jax.fairness.BoundedRepresentation`
      ``(1/t)`` or the alias ``alpha = 1/t`` (exactly; e.g. ``0.25``).

  Returns:
    A :class:`Decomposition`.

  Raises:
    ValueError: a colour holding more than ``n / t`` points (named, with
      its count and share), fewer than ``t`` points, or a bad cap.
  """
  fn = "capped_decomposition"
  t = read_cap(fn, constraint)
  _checks.check_key(fn, key)
  return _capped_decomposition(fn, key, colors, t)


def fairlet_decomposition(key: jax.Array, colors: Any, constraint: Any) -> Decomposition:
  """A random fairlet decomposition for a fairness constraint.

  Dispatches on the constraint type: :class:`~fairhc_jax.fairness.Balance`
  ``(b, r)`` -> :func:`balance_decomposition`,
  :class:`~fairhc_jax.fairness.BoundedRepresentation` ``(1/t)`` ->
  :func:`capped_decomposition`. Every fairlet satisfies the constraint, and
  so does every union of fairlets.

  Args:
    key: PRNG key (consumed).
    colors: ``int[n]`` colours in ``[0, c)``, every colour present.
    constraint: ``Balance(b, r)`` or ``BoundedRepresentation(1/t)``.

  Returns:
    A :class:`Decomposition`.
  """
  fn = "fairlet_decomposition"
  _, kind, params = as_constraint(fn, constraint)
  _checks.check_key(fn, key)
  if kind == "balance":
    return _balance_decomposition(fn, key, colors, *params)
  return _capped_decomposition(fn, key, colors, params)


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


@functools.partial(jax.jit, static_argnames=("num_fairlets", "max_size"))
def fairlet_members(fairlet_of: jax.Array, num_fairlets: int, max_size: int):
  """The member table of a decomposition (integer work only: deterministic).

  Args:
    fairlet_of: ``int[n]``, fairlet ids in ``[0, k)``.
    num_fairlets: ``k`` (static).
    max_size: the largest fairlet size ``mf`` (static).

  Returns:
    ``(members, slot)``: ``members: int32[k, mf]`` with ``members[a, s]``
    the ``s``-th point of fairlet ``a`` by index (``n`` marks an empty
    slot), and ``slot: int32[n]`` with ``members[f[x], slot[x]] = x``.
  """
  n = fairlet_of.shape[0]
  f = fairlet_of.astype(jnp.int32)
  idx = jnp.arange(n, dtype=jnp.int32)
  order = jnp.argsort(f, stable=True).astype(jnp.int32)
  sizes = jnp.zeros(num_fairlets, jnp.int32).at[f].add(1)  # integer: exact
  first = jnp.cumsum(sizes) - sizes  # first position of each fairlet in order
  slot = jnp.zeros(n, jnp.int32).at[order].set(idx - first[f[order]])
  members = jnp.full((num_fairlets, max_size), n, jnp.int32).at[f, slot].set(idx)
  return members, slot


def sum_over_members(members: jax.Array, rows_of: Callable) -> jax.Array:
  """A kernel: ``sum_s rows_of(members[:, s])`` over real slots, in slot order.

  ``rows_of(int32[k]) -> float[k, ...]``; empty slots (``n``) add nothing.
  A fixed-trip-count loop: the same order of additions on every backend.
  """
  k, mf = members.shape
  first = rows_of(members[:, 0])

  def body(s, acc):
    return acc + rows_of(members[:, s])

  return jax.lax.fori_loop(1, mf, body, first)


def distance_table(D: jax.Array, members: jax.Array) -> jax.Array:
  """``float[k, n]``: ``table[a, x] = sum_s D[members[a, s], x]`` (a kernel).

  ``D: float[n, n]``, ``members: int32[k, mf]`` from :func:`fairlet_members`;
  slot order, no float scatter-add (deterministic on every backend).
  """
  n = D.shape[0]

  def rows_of(m):
    return jnp.where((m < n)[:, None], D[jnp.minimum(m, n - 1)], 0)

  return sum_over_members(members, rows_of)


@functools.partial(jax.jit, static_argnames=("num_fairlets", "max_size"))
def _fairlet_table(D, fairlet_of, num_fairlets, max_size):
  members, _ = fairlet_members(fairlet_of, num_fairlets, max_size)
  return distance_table(D, members)


def fairlet_table(D: jax.Array, decomposition: Decomposition) -> jax.Array:
  """``float[k, n]`` with ``table[a, x] = d(x, Y_a)`` (``D`` symmetric).

  ``max_size`` row gathers of ``D`` summed in slot order (O(n^2) reads,
  deterministic: no float scatter-add).

  Args:
    D: ``float[n, n]`` symmetric distances.
    decomposition: a :class:`Decomposition` of the ``n`` points.
  """
  return _fairlet_table(D, decomposition.fairlet_of, decomposition.num_fairlets,
                        decomposition.max_size)


def _within_phi(D, members):
  """``phi`` from the member table: ``0.5 sum_a sum_{s,t} D[m[a,s], m[a,t]]``."""
  n = D.shape[0]
  real = members < n
  safe = jnp.minimum(members, n - 1)
  blocks = D[safe[:, :, None], safe[:, None, :]]  # [k, mf, mf]
  pair = real[:, :, None] & real[:, None, :]
  return 0.5 * jnp.sum(jnp.where(pair, blocks, 0))


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

  row = _swap_row(D, table, f, colors, own, column)
  rows = iota if rows is None else rows
  return jax.lax.map(row, rows, batch_size=_row_block(n))


def _swap_row(D, table, f, colors, own, column):
  """``row(u) -> (delta, partner)``: point ``u``'s best swap (see :func:`best_swaps`)."""
  n = D.shape[0]
  iota = jnp.arange(n, dtype=jnp.int32)

  def row(u):
    dl = (table[f[u]] + column(u)[f] - own[u] - own - 2 * D[u])
    ok = (colors == colors[u]) & (f != f[u])
    dl = jnp.where(ok, dl, jnp.inf)
    m = jnp.min(dl)
    idx = jnp.min(jnp.where(dl == m, iota, n))
    return m, jnp.where(jnp.isfinite(m), idx, n)

  return row


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
# Local search (Algorithm 1): one state type per schedule, an optax-style
# triple of pure functions made once per (schedule, eps).


class FastSearchState(NamedTuple):
  """State of the fast schedule (one instance; ``vmap`` for batches).

  Attributes:
    fairlet_of: ``int32[n]``, the current decomposition.
    table: ``float[k, n]``, ``table[a, x] = d(x, Y_a)`` for it.
    phi: ``float[]``, the current fairlet objective.
    phi_floor: ``float[]``, ``d_max / n^2``: the search stops at or below it.
    swaps: ``int32[]``, swaps accepted so far.
    trials: ``int32[]``, swap candidates examined so far.
    steps: ``int32[]``, steps taken.
    done: ``bool[]``, whether the stopping rule has fired.
    best_delta: ``float[n]``, each point's best swap change as of its last
      computation (the cache of partial steps).
    best_partner: ``int32[n]``, the partners of ``best_delta`` (``n``: none).
    touched: ``bool[k]``, fairlets changed by the last step.
    full_next: ``bool[]``, whether the next step must recompute every row.
  """

  fairlet_of: jax.Array  # int32[n]
  table: jax.Array  # float[k, n]
  phi: jax.Array  # float[]
  phi_floor: jax.Array  # float[]
  swaps: jax.Array  # int32[]
  trials: jax.Array  # int32[]
  steps: jax.Array  # int32[]
  done: jax.Array  # bool[]
  best_delta: jax.Array  # float[n]
  best_partner: jax.Array  # int32[n]
  touched: jax.Array  # bool[k]
  full_next: jax.Array  # bool[]


class RandomSearchState(NamedTuple):
  """State of the authors' randomised schedule (one instance; ``vmap``-able).

  The swap change of a trial is computed from the member table and ``D``
  (``d(v, Y_i) = sum_s D[v, members[i, s]]``, ``O(max_size)`` reads), so a
  swap is an O(1) update of ``fairlet_of``, ``members`` and ``slot``: no
  ``k x n`` table to keep in place.

  Attributes:
    fairlet_of: ``int32[n]``, the current decomposition.
    members: ``int32[k, mf]``, its member table (:func:`fairlet_members`).
    slot: ``int32[n]``, each point's slot in ``members``.
    phi: ``float[]``, the current fairlet objective (recomputed exactly from
      ``members`` after every round).
    phi_floor: ``float[]``, ``d_max / n^2``.
    swaps: ``int32[]``, swaps accepted so far.
    trials: ``int32[]``, trials so far (``n`` per round).
    steps: ``int32[]``, rounds taken.
    done: ``bool[]``, set after a round with no accepted swap (or at the
      floor).
    key: the PRNG key of the next round.
  """

  fairlet_of: jax.Array  # int32[n]
  members: jax.Array  # int32[k, mf]
  slot: jax.Array  # int32[n]
  phi: jax.Array  # float[]
  phi_floor: jax.Array  # float[]
  swaps: jax.Array  # int32[]
  trials: jax.Array  # int32[]
  steps: jax.Array  # int32[]
  done: jax.Array  # bool[]
  key: jax.Array  # PRNG key


SearchState = Union[FastSearchState, RandomSearchState]


class LocalSearch(NamedTuple):
  """The local search for one ``(schedule, eps)``, as pure functions.

  Made by :func:`local_search`. All three are jit-compiled, ``vmap``-able
  over states, and do no input checks (:func:`run_local_search` checks);
  ``eps`` enters as a traced scalar, so searches with different ``eps``
  share one compilation.

  Attributes:
    init: ``init(D, decomposition, key=None) -> state``: the initial state
      (``key`` is required by the ``"random"`` schedule and ignored by
      ``"fast"``).
    step: ``step(state, D, colors) -> state``: one step (a round of ``n``
      trials for ``"random"``); a no-op once ``state.done``.
    run: ``run(state, D, colors, max_steps=None) -> state``: steps until
      ``done`` or ``max_steps`` more steps, as one ``lax.while_loop``
      (``max_steps`` is traced: different caps do not recompile).
    schedule: ``"fast"`` or ``"random"``.
    eps: the ``eps > 0`` of the acceptance rule.
  """

  init: Callable[..., SearchState]
  step: Callable[..., SearchState]
  run: Callable[..., SearchState]
  schedule: str
  eps: float


def check_eps(fn: str, eps: Any) -> float:
  """Validates the local search's ``eps > 0``; returns it as a float."""
  if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
    _checks.fail(fn, "eps", "be a positive number", repr(eps), TypeError)
  if not (math.isfinite(float(eps)) and float(eps) > 0):
    _checks.fail(fn, "eps", "be a positive number", repr(eps))
  return float(eps)


def _threshold(phi, eps, n):
  """Accept a change ``delta`` when ``(phi + delta) (1 + eps/n) < phi``."""
  rate = eps / n
  return -phi * (rate / (1 + rate))


def _floor(D):
  n = D.shape[0]
  return jnp.max(D) / (n * n)


@functools.partial(jax.jit, static_argnames=("num_fairlets", "max_size"))
def _fast_init(D, fairlet_of, num_fairlets, max_size):
  n = D.shape[0]
  f = fairlet_of.astype(jnp.int32)
  members, _ = fairlet_members(f, num_fairlets, max_size)
  table = distance_table(D, members)
  phi = 0.5 * jnp.sum(_own(table, f))
  floor = _floor(D)
  zero = jnp.zeros((), jnp.int32)
  return FastSearchState(
      fairlet_of=f, table=table, phi=phi, phi_floor=floor, swaps=zero, trials=zero,
      steps=zero, done=phi <= floor, best_delta=jnp.full(n, jnp.inf, D.dtype),
      best_partner=jnp.full(n, n, jnp.int32),
      touched=jnp.zeros(num_fairlets, bool), full_next=jnp.ones((), bool))


@functools.partial(jax.jit, static_argnames=("num_fairlets", "max_size"))
def _random_init(key, D, fairlet_of, num_fairlets, max_size):
  f = fairlet_of.astype(jnp.int32)
  members, slot = fairlet_members(f, num_fairlets, max_size)
  phi = _within_phi(D, members)
  floor = _floor(D)
  zero = jnp.zeros((), jnp.int32)
  return RandomSearchState(
      fairlet_of=f, members=members, slot=slot, phi=phi, phi_floor=floor,
      swaps=zero, trials=zero, steps=zero, done=phi <= floor, key=key)


def _random_round(state: RandomSearchState, D, colors, eps):
  """One round of the authors' schedule: ``n`` random same-colour trials.

  A fixed trip count of ``n`` trials; each trial's swap is a masked O(1)
  update (no branch, no inner loop).
  """
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

  def dist_to(x, m):
    """``d(x, Y) = sum_s D[x, m[s]]`` over the real slots, in slot order."""
    return jnp.sum(jnp.where(m < n, D[x, jnp.minimum(m, n - 1)], 0))

  def trial(t, carry):
    members, slot, f, phi, accepted = carry
    u, v = us[t], vs[t]
    i, j = f[u], f[v]
    mi, mj = members[i], members[j]
    delta = (dist_to(v, mi) + dist_to(u, mj) - dist_to(u, mi) - dist_to(v, mj)
             - 2 * D[u, v])
    ok = (i != j) & (delta < _threshold(phi, eps, n)) & (phi > state.phi_floor)
    su, sv = slot[u], slot[v]
    members = members.at[i, su].set(jnp.where(ok, v, u))
    members = members.at[j, sv].set(jnp.where(ok, u, v))
    f = f.at[u].set(jnp.where(ok, j, i)).at[v].set(jnp.where(ok, i, j))
    slot = slot.at[u].set(jnp.where(ok, sv, su)).at[v].set(jnp.where(ok, su, sv))
    return members, slot, f, jnp.where(ok, phi + delta, phi), accepted + ok

  members, slot, f, phi, accepted = jax.lax.fori_loop(
      0, n, trial, (state.members, state.slot, state.fairlet_of, state.phi,
                    jnp.zeros((), jnp.int32)))
  phi = _within_phi(D, members)  # exact refresh: no drift across rounds
  done = (accepted == 0) | (phi <= state.phi_floor)
  return state._replace(fairlet_of=f, members=members, slot=slot, phi=phi,
                        swaps=state.swaps + accepted, trials=state.trials + n,
                        steps=state.steps + 1, done=done, key=key)


def _capacities(total: int, factor: int = 4, smallest: int = 64) -> list[int]:
  """Static loop capacities ``total, total/4, total/16, ...`` (at least 1)."""
  caps = {max(1, total)}
  c = total // factor
  while c >= smallest:
    caps.add(c)
    c //= factor
  caps.add(min(max(1, total), smallest))
  return sorted(caps)


def _by_capacity(count, caps, make):
  """``make(cap)()`` for the least static ``cap >= count`` (``lax.switch``)."""
  tier = sum((count > c).astype(jnp.int32) for c in caps[:-1])
  return jax.lax.switch(tier, [make(c) for c in caps])


FIXED_TRIP_COUNTS_ON_CPU = False
"""Read at trace time by :func:`_loop_upto`; tests set it to run the
fixed-trip-count form (the one GPUs and TPUs get) on CPU."""


def _loop_upto(count, caps, body, init):
  """``fori_loop(0, count, body, init)`` for a traced ``count <= caps[-1]``.

  ``body(i, carry)`` must be a no-op for ``i >= count`` (masked). On CPU a
  while loop with the exact trip count (no host round trip there); on
  other backends (``lax.platform_dependent``) a loop with the least static
  capacity ``>= count`` (``lax.switch``), so that no loop reads its
  predicate back to the host every iteration. Both give the same result.
  """
  def fixed():
    return _by_capacity(count, caps,
                        lambda c: lambda: jax.lax.fori_loop(0, c, body, init))

  if FIXED_TRIP_COUNTS_ON_CPU:
    return fixed()
  return jax.lax.platform_dependent(
      cpu=lambda: jax.lax.fori_loop(0, count, body, init), default=fixed)


def _swap_row_slice(D, table, f, own, column, lo: int, size: int, with_column=False):
  """``row(u) -> (delta, partner)`` over the columns ``[lo, lo + size)`` only.

  For colour-sorted points (:func:`color_blocks`): a point's swap partners
  all have its colour, i.e. lie in its colour's block of indices, so the
  row is :func:`_swap_row`'s expression on that one contiguous slice
  (contiguous reads of ``D[u]`` and ``table[f(u)]``, no colour mask). Same
  values, same partner (lowest index on ties: the slice is in index order).
  """
  fs = jax.lax.slice_in_dim(f, lo, lo + size)
  own_s = jax.lax.slice_in_dim(own, lo, lo + size)
  iota = jnp.arange(size, dtype=jnp.int32)
  n = D.shape[0]

  def row(u, col=None):
    start = jnp.asarray(lo, jnp.int32)
    tr = jax.lax.dynamic_slice(table, (f[u].astype(jnp.int32), start), (1, size))[0]
    dr = jax.lax.dynamic_slice(D, (u.astype(jnp.int32), start), (1, size))[0]
    dl = tr + (column(u) if col is None else col)[fs] - own[u] - own_s - 2 * dr
    dl = jnp.where(fs != f[u], dl, jnp.inf)
    m = jnp.min(dl)
    idx = lo + jnp.min(jnp.where(dl == m, iota, size))
    return m, jnp.where(jnp.isfinite(m), idx, n).astype(jnp.int32)

  return row


@functools.partial(jax.jit, static_argnames=("num_fairlets",))
def _spread_kernel(key, fairlet_of, colors, scores, *, num_fairlets: int):
  perm = jax.random.permutation(key, num_fairlets).astype(jnp.int32)
  f = perm[fairlet_of]
  points = jnp.lexsort((scores, colors))    # each colour's points by score (ties: index)
  slots = jnp.lexsort((f, colors))          # each colour's slots by (shuffled) fairlet id
  return jnp.zeros_like(f).at[points].set(f[slots])


def spread_by_score(key: jax.Array, decomposition: Decomposition, colors: Any,
                    scores: Any) -> Decomposition:
  """A decomposition with the same fairlets' colour counts, points placed by a 1-D score.

  The fairlet ids are shuffled (``key``); then, for every colour, its points
  in increasing ``scores`` (ties by index) take that colour's slots in
  increasing fairlet id. So every fairlet keeps its number of points of each
  colour (its fairness is unchanged) and gathers points of similar score:
  with ``scores`` a projection of the points on their first principal
  direction, the local search starts from fairlets of nearby points instead
  of random ones (see ``start="projection"`` in
  :func:`fairhc_jax.algorithms.fairlet_hc.fair_hierarchical_clustering`).
  The local search's guarantee holds from any valid decomposition.

  Args:
    key: PRNG key (the shuffle of fairlet ids).
    decomposition: a valid :class:`Decomposition` of ``colors``.
    colors: ``int[n]``.
    scores: ``float[n]``.

  Returns:
    A :class:`Decomposition` with the same ``num_fairlets`` and ``max_size``.
  """
  fn = "spread_by_score"
  if not isinstance(decomposition, Decomposition):
    _checks.fail(fn, "decomposition", "be a Decomposition", _checks.describe(decomposition),
                 TypeError)
  fairlet_of = jnp.asarray(decomposition.fairlet_of, jnp.int32)
  n = fairlet_of.shape[0]
  c, _ = _checks.check_colors(fn, "colors", colors, n, batched=False)
  s = _checks.as_float(fn, "scores", scores)
  if s.shape != (n,):
    _checks.fail(fn, "scores", f"be float[{n}] (one score per point)", _checks.describe(s))
  if _checks.is_concrete(s) and not bool(jnp.all(jnp.isfinite(s))):
    bad = int(np.argmax(~np.isfinite(np.asarray(s))))
    _checks.fail(fn, "scores", "be finite", f"a NaN or infinite value at index {bad}")
  f = _spread_kernel(key, fairlet_of, c, s, num_fairlets=decomposition.num_fairlets)
  return Decomposition(fairlet_of=f, num_fairlets=decomposition.num_fairlets,
                       max_size=decomposition.max_size)


def principal_scores(X: Any) -> jax.Array:
  """``float[n]``: the centred points projected on their first principal direction.

  Power iteration on ``Xc^T Xc`` (64 rounds, from the all-ones direction);
  all zeros when the points do not vary. The sign is arbitrary.

  Args:
    X: ``float[n, d]`` finite points.
  """
  return _principal_scores(_checks.check_points("principal_scores", "X", X))


@jax.jit
def _principal_scores(X: jax.Array) -> jax.Array:
  xc = X - jnp.mean(X, axis=0)
  d = X.shape[1]

  def power(_, v):
    w = xc.T @ (xc @ v)
    norm = jnp.linalg.norm(w)
    return jnp.where(norm > 0, w / jnp.where(norm > 0, norm, 1), v)

  v = jax.lax.fori_loop(0, 64, power, jnp.full((d,), 1 / np.sqrt(d), X.dtype))
  return xc @ v


def color_blocks(colors: Any) -> Optional[tuple[tuple[int, int], ...]]:
  """``((lo_0, size_0), ...)`` when the colours are sorted, else ``None``.

  Host-side (NumPy) on a concrete ``int[n]``: for colours in non-decreasing
  order, each present colour's contiguous index range, in order. The fast
  schedule then computes each row over its colour's block only (for
  Census gender at 1:3 that is ``(1/3)^2 + (2/3)^2 = 5/9`` of the row
  elements). :func:`fairhc_jax.algorithms.fairlet_hc.fair_hierarchical_clustering`
  sorts the points by colour itself and maps its outputs back to the
  caller's order. Traced or unsorted colours: ``None`` (the general rows,
  same result).
  """
  if not _checks.is_concrete(colors):
    return None
  c = np.asarray(colors)
  if c.ndim != 1 or c.size == 0 or np.any(np.diff(c) < 0):
    return None
  cuts = np.flatnonzero(np.diff(c)) + 1
  starts = np.concatenate([[0], cuts])
  ends = np.concatenate([cuts, [c.size]])
  return tuple((int(a), int(b - a)) for a, b in zip(starts, ends))


def _members_sum(du, safe, real):
  """``float[k]``: ``sum_s du[members[a, s]]`` over real slots, in slot order."""
  acc = jnp.where(real[:, 0], du[safe[:, 0]], 0)
  for s in range(1, safe.shape[1]):
    acc = acc + jnp.where(real[:, s], du[safe[:, s]], 0)
  return acc


def _recompute_rows(D, table, f, colors, rows, num_rows, init, transposed=False,
                    blocks=None, members=None):
  """Writes the best swaps of ``rows[:num_rows]`` into ``init = (delta, partner)``.

  The rows go in blocks of :func:`_row_block` through :func:`best_swaps`'s
  row expression; the number of blocks is a loop count up to a traced
  value (:func:`_loop_upto`: the exact count on CPU, so a step that touched
  2,000 points reads 2,000 rows of ``D`` and no more; a few static
  capacities elsewhere). ``rows`` is padded with ``n`` (dropped on write).
  ``transposed``: read each row's column of the table from one transpose
  (pays off when most rows are recomputed) instead of strided reads.
  ``blocks``: static colour blocks from :func:`color_blocks` (the colours
  sorted): the rows of each colour go through :func:`_swap_row_slice` on
  their colour's columns only (``rows`` is in index order, so each colour's
  rows are one contiguous run of it).
  """
  n = D.shape[0]
  block = _row_block(n)
  num_blocks_max = -(-n // block)
  padded = jnp.concatenate([rows, jnp.full(num_blocks_max * block - n, n, jnp.int32)])
  own = _own(table, f)
  if members is not None:
    # d(u, Y_a) for every a from the row D[u] itself (read anyway): gathers
    # from one row in cache, where table[:, u] reads one cache line per
    # fairlet (memory-latency bound: 0.6 ms a row at n = 30,162).
    real = members < n
    safe = jnp.minimum(members, n - 1)

    def column(u):
      return _members_sum(D[u], safe, real)
  elif transposed:
    table_t = table.T
    column = lambda u: table_t[u]
  else:
    column = lambda u: table[:, u]
  if blocks is not None:
    block = 1 if members is not None else block  # one row at a time: 1-D gathers
    carry = init
    for lo, size in blocks:
      start = jnp.searchsorted(rows, lo, side="left").astype(jnp.int32)
      end = jnp.minimum(jnp.searchsorted(rows, lo + size, side="left"),
                        num_rows).astype(jnp.int32)
      count = jnp.maximum(end - start, 0)
      row_c = _swap_row_slice(D, table, f, own, column, lo, size)
      max_blocks_c = -(-size // block)

      def rows_at(b, start=start, end=end):
        pos = start + b * block + jnp.arange(block, dtype=jnp.int32)
        return jnp.where(pos < end, padded[jnp.minimum(pos, padded.shape[0] - 1)], n)

      if members is None:
        def body_c(b, carry, rows_at=rows_at, row_c=row_c):
          delta, partner = carry
          us = rows_at(b)
          m, idx = jax.vmap(row_c)(jnp.minimum(us, n - 1))
          return (delta.at[us].set(m, mode="drop"),
                  partner.at[us].set(idx, mode="drop"))

        carry = _loop_upto((count + block - 1) // block, _capacities(max_blocks_c),
                           body_c, carry)
      else:
        # Software-pipelined: each iteration computes the next rows' table
        # columns into the loop carry. A loop-carried value is materialised;
        # fused into the row, XLA:CPU recomputes the column's gathers for
        # every element (measured 14 ns per element at n = 30,162).
        cols_of = jax.vmap(column)

        def body_c(b, carry, rows_at=rows_at, row_c=row_c, cols_of=cols_of):
          delta, partner, cols = carry
          us = rows_at(b)
          m, idx = jax.vmap(row_c)(jnp.minimum(us, n - 1), cols)
          nxt = cols_of(jnp.minimum(rows_at(b + 1), n - 1))
          return (delta.at[us].set(m, mode="drop"),
                  partner.at[us].set(idx, mode="drop"), nxt)

        cols0 = cols_of(jnp.minimum(rows_at(0), n - 1))
        *carry, _ = _loop_upto((count + block - 1) // block, _capacities(max_blocks_c),
                               body_c, (*carry, cols0))
        carry = tuple(carry)
    return carry
  row = _swap_row(D, table, f, colors, own, column)
  num_blocks = (num_rows + block - 1) // block

  def body(b, carry):
    delta, partner = carry
    us = jax.lax.dynamic_slice(padded, (b * block,), (block,))
    m, idx = jax.vmap(row)(jnp.minimum(us, n - 1))
    delta = delta.at[us].set(m, mode="drop")
    partner = partner.at[us].set(idx, mode="drop")
    return delta, partner

  return _loop_upto(num_blocks, _capacities(num_blocks_max), body, init)


def _greedy_swaps(delta, partner, f, k: int, max_swaps: int, threshold, phi, floor):
  """The greedy matching of a step: disjoint fairlet pairs, best swaps first.

  Candidate ``u`` proposes the swap ``(u, partner[u])`` between fairlets
  ``f(u)`` and ``f(partner[u])`` when ``delta[u] < threshold`` (the
  acceptance rule at the step's starting ``phi``). The result is the
  sequential greedy over the candidates sorted by ``(delta, u)``: take a
  swap when neither fairlet was taken before. It is computed in rounds
  without a per-candidate loop: every round takes each remaining swap that
  is the first (in that order) of all remaining swaps touching either of
  its fairlets (they are pairwise disjoint and would be taken by the
  sequential greedy), then drops the swaps touching a taken fairlet; the
  first remaining swap always wins, so the rounds end. Integer work only
  (ranks, ``min`` scatters): the same on every backend.

  Each taken swap's change is below the threshold at the step's ``phi``,
  hence below it at the running ``phi`` (which only falls, loosening the
  rule), so it passes the acceptance rule in any order. The floor rule is
  applied in the greedy order: swaps are taken while the running ``phi``
  (a cumulative sum in that order) is above ``floor``.

  Returns:
    ``(count, acc_u int32[max_swaps], acc_v int32[max_swaps], used bool[k])``:
    the taken swaps in greedy order (padding after ``count``) and the
    fairlets they touch.
  """
  n = delta.shape[0]
  order = jnp.argsort(delta, stable=True).astype(jnp.int32)
  rank = jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
  fi = f
  fj = f[jnp.minimum(partner, n - 1)]
  alive0 = (delta < threshold) & (partner < n)
  big = jnp.int32(n)

  def cond(carry):
    alive, _, _ = carry
    return jnp.any(alive)

  def body(carry):
    alive, used, taken = carry
    key = jnp.where(alive, rank, big)
    first = jnp.full(k, big, jnp.int32).at[fi].min(key).at[fj].min(key)
    win = alive & (first[fi] == rank) & (first[fj] == rank)
    hit = jnp.zeros(k, bool).at[jnp.where(win, fi, k)].set(True, mode="drop")
    hit = hit.at[jnp.where(win, fj, k)].set(True, mode="drop")
    used = used | hit
    alive = alive & ~used[fi] & ~used[fj]
    return alive, used, taken | win

  _, _, taken = jax.lax.while_loop(
      cond, body, (alive0, jnp.zeros(k, bool), jnp.zeros(n, bool)))
  # The taken swaps in greedy order, while phi stays above the floor.
  taken_sorted = taken[order]
  d_sorted = jnp.where(taken_sorted, delta[order], 0)
  phi_before = phi + jnp.cumsum(d_sorted) - d_sorted
  taken_sorted = taken_sorted & (phi_before > floor)
  count = jnp.sum(taken_sorted).astype(jnp.int32)
  pos = jnp.nonzero(taken_sorted, size=max_swaps, fill_value=0)[0]
  acc_u = order[pos]
  acc_v = jnp.minimum(partner[acc_u], n - 1)
  live = jnp.arange(max_swaps) < count
  used = jnp.zeros(k, bool).at[jnp.where(live, fi[acc_u], k)].set(True, mode="drop")
  used = used.at[jnp.where(live, fj[acc_u], k)].set(True, mode="drop")
  return count, acc_u, acc_v, used


def _fast_step(state: FastSearchState, D, colors, eps, blocks=None, max_size=None):
  """One step of the fast schedule: many disjoint best swaps.

  Each point's best partner comes from the blocked swap kernel; the
  candidates, from the most improving one, give a greedy matching over
  fairlets (:func:`_greedy_swaps`: each accepted swap's two fairlets are
  untouched by the better ones, and its change passes the acceptance rule
  at the step's starting ``phi``). Swaps on disjoint pairs of fairlets do
  not interact, so every accepted swap's change of ``phi`` is exact. Then
  the table rows of the accepted swaps are updated, O(n) per swap.

  After a step with swaps, the next step recomputes only the rows of the
  points in the fairlets it touched (``swap_deltas`` is symmetric, so every
  pair whose change of ``phi`` moved has such an endpoint) and keeps the
  cached best swaps of the other points whose partner's fairlet was not
  touched (still exact). Such a partial step may miss some swaps, so the
  search only stops after a full step (every row) finds none. (Also
  recomputing the points whose cached partner went stale was measured and
  rejected: on whole Census most steps became near-full, 210 s against
  106 s.)

  The row recomputation and the swap updates are masked loops up to a
  traced count (:func:`_loop_upto`): the exact count on CPU (a step that
  touched 2,000 points reads 2,000 rows of ``D``), the least of a few
  static capacities (``n, n/4, n/16, ...``) on other backends.

  Static layout (read by ``local_search``'s ``step``/``run`` from concrete
  inputs): ``blocks`` (:func:`color_blocks`, colours sorted) restricts each
  row to its colour's contiguous columns; ``max_size`` (the largest
  fairlet) lets each row compute its table column ``d(u, Y_a)`` from its
  own row of ``D`` through the member table, one row at a time and one row
  ahead (loop-carried), instead of strided reads of the table (one cache
  line per fairlet). Without them (traced inputs, e.g. under ``vmap`` of
  the state), rows read their table column with strided reads, or, when
  more than ``n/2`` rows are recomputed, from one transpose of the table (a
  transpose of the ``k x n`` table cost about 1-5 s at n = 30,162,
  measured).

  Also tried for the row pass and dropped (session 20, Census sorted by
  colour, n = 12,000, 3,000 random rows, CPU time per row measured while
  other jobs ran; this kernel: 44-47 us): blocks of ``B`` rows per loop
  iteration (XLA:CPU does split ``[B, S]`` fusions over both cores inside
  the loop, ``outer_dimension_partitions: 2``, but the batched gathers get
  transposed layouts): vmapped rows 64-106 us at B = 16-64, unrolled rows
  (B = 2, 4) no better, gathers from the flattened ``D``/table 87-184 us;
  the two colour blocks' loops made independent, or two jitted halves
  dispatched from two Python threads: no overlap (one CPU device runs its
  executions in order); column sums grouped by fairlet size (no padded
  slots; 62 us), the column behind an ``optimization_barrier`` instead of
  the loop carry (119 us), a two-level (chunked) arg-min (138 us), the
  arg-min over float indices (45 us, no gain). Partial steps over
  candidate partners only (the same-coloured members of each point's
  ``m`` nearest points' fairlets, full rows in full steps) kept the
  stopping guarantee but ended in worse local optima (phi +11% at
  m = 64, +25% at m = 16, n = 8,000) at the same CPU time; recomputing
  only the two swapped points' rows (the other members of touched
  fairlets deferred like stale rows) ended 9% worse in 164 steps instead
  of 81 for 13% less CPU time.
  """
  n = D.shape[0]
  k = state.table.shape[0]
  f0 = state.fairlet_of
  # The rows to recompute: every point of a touched fairlet (all of them
  # after a step without swaps), in index order.
  full = state.full_next
  rows_mask = state.touched[f0] | full
  num_rows = jnp.sum(rows_mask).astype(jnp.int32)
  rows = jnp.nonzero(rows_mask, size=n, fill_value=n)[0].astype(jnp.int32)
  # Cached best swaps stay valid for the other points unless their partner's
  # fairlet was touched (then +inf until their row is next recomputed).
  partner0 = state.best_partner
  stale = rows_mask | state.touched[f0[jnp.minimum(partner0, n - 1)]]
  delta0 = jnp.where(stale, jnp.inf, state.best_delta)
  partner0 = jnp.where(stale, n, partner0)
  if max_size is not None:
    # Each row's table column from its own row of D (see _recompute_rows).
    members, _ = fairlet_members(f0, k, max_size)
    delta, partner = _recompute_rows(D, state.table, f0, colors, rows, num_rows,
                                     (delta0, partner0), blocks=blocks, members=members)
  else:
    delta, partner = jax.lax.cond(
        num_rows > n // 2,  # a transpose of the table costs more than strided reads below
        lambda: _recompute_rows(D, state.table, f0, colors, rows, num_rows,
                                (delta0, partner0), transposed=True, blocks=blocks),
        lambda: _recompute_rows(D, state.table, f0, colors, rows, num_rows,
                                (delta0, partner0), blocks=blocks))
  num_neg = jnp.sum(delta < 0).astype(jnp.int32)
  max_swaps = k // 2 + 1
  count, acc_u, acc_v, used = _greedy_swaps(delta, partner, f0, k, max_swaps,
                                            _threshold(state.phi, eps, n), state.phi,
                                            state.phi_floor)

  def do_swap(s, table):
    live = s < count
    u, v = acc_u[s], acc_v[s]
    i, j = f0[u], f0[v]
    diff = D[v] - D[u]
    table = table.at[jnp.where(live, i, k)].add(diff, mode="drop")
    return table.at[jnp.where(live, j, k)].add(-diff, mode="drop")

  table = _loop_upto(count, _capacities(max_swaps), do_swap, state.table)
  # The assignment: all accepted swaps at once (distinct points).
  live = jnp.arange(max_swaps) < count
  pu = jnp.where(live, acc_u, n)
  pv = jnp.where(live, acc_v, n)
  f = f0.at[pu].set(f0[acc_v], mode="drop").at[pv].set(f0[acc_u], mode="drop")
  phi = 0.5 * jnp.sum(_own(table, f))
  at_floor = phi <= state.phi_floor
  done = ((count == 0) & full) | at_floor
  return state._replace(fairlet_of=f, table=table, phi=phi,
                        swaps=state.swaps + count, trials=state.trials + num_neg,
                        steps=state.steps + 1, done=done, best_delta=delta,
                        best_partner=partner, touched=used,
                        full_next=(count == 0))


_BODIES = {"fast": _fast_step, "random": _random_round}


def _body(schedule, blocks, max_size):
  if schedule == "fast":
    return functools.partial(_fast_step, blocks=blocks, max_size=max_size)
  return _random_round


@functools.partial(jax.jit, static_argnames=("schedule", "blocks", "max_size"))
def _step_kernel(state, D, colors, eps, schedule, blocks=None, max_size=None):
  body = _body(schedule, blocks, max_size)
  colors = colors.astype(jnp.int32)
  return jax.lax.cond(state.done, lambda s: s,
                      lambda s: body(s, D, colors, eps), state)


@functools.partial(jax.jit, static_argnames=("schedule", "blocks", "max_size"))
def _run_kernel(state, D, colors, eps, max_steps, schedule, blocks=None, max_size=None):
  body = _body(schedule, blocks, max_size)
  colors = colors.astype(jnp.int32)
  start = state.steps

  def cond(s):
    return (~s.done) & (s.steps - start < max_steps)

  return jax.lax.while_loop(cond, lambda s: body(s, D, colors, eps), state)


_NO_CAP = int(np.iinfo(np.int32).max)


def local_search(schedule: str = "fast", eps: float = 0.1) -> LocalSearch:
  """The fairlet local search (Algorithm 1) as an ``init``/``step``/``run`` triple.

  Acceptance rule (both schedules): a swap of two same-coloured points in
  different fairlets is taken when it lowers ``phi`` by more than a factor
  ``1 + eps/n`` and ``phi > d_max / n^2``.

  * ``"fast"`` (:class:`FastSearchState`): every point's best swap from the
    vectorised kernel (O(n^2) work in row blocks), then a greedy set of
    swaps on pairwise disjoint fairlets, best first. ``done`` when a full
    step finds no swap that passes the rule, i.e. the decomposition is
    ``(eps/n)``-locally optimal (Definition 13).
  * ``"random"`` (:class:`RandomSearchState`): one step is one round of the
    authors' schedule: ``n`` trials, each a uniformly random point and a
    uniformly random point of the same colour. ``done`` after a round with
    no accepted swap.

  Example::

    search = local_search("fast", eps=0.1)
    state = search.init(D, decomposition)
    while not state.done:
      state = search.step(state, D, colors)
    # or: state = search.run(state, D, colors)

  Args:
    schedule: ``"fast"`` (default) or ``"random"``.
    eps: ``eps > 0`` of the acceptance rule (the paper uses 0.1).

  Returns:
    A :class:`LocalSearch` ``(init, step, run, schedule, eps)``.
  """
  fn = "local_search"
  if not isinstance(schedule, str):
    _checks.fail(fn, "schedule", "be one of 'fast', 'random' (local_search(schedule, "
                 "eps) makes the (init, step, run) functions; the runner "
                 "local_search(key, D, colors, decomposition) is now run_local_search)",
                 _checks.describe(schedule), TypeError)
  _checks.check_choice(fn, "schedule", schedule, SCHEDULES)
  eps = check_eps(fn, eps)

  def init(D, decomposition: Decomposition, key=None) -> SearchState:
    if schedule == "fast":
      return _fast_init(D, decomposition.fairlet_of, decomposition.num_fairlets,
                        decomposition.max_size)
    if key is None:
      _checks.fail("local_search.init", "key", "be a PRNG key for the 'random' "
                   "schedule, e.g. jax.random.key(0)", "None", TypeError)
    return _random_init(key, D, decomposition.fairlet_of, decomposition.num_fairlets,
                        decomposition.max_size)

  def layout(state, D, colors):
    """Static facts read from concrete inputs: colour blocks, fairlet size."""
    if schedule != "fast" or not _checks.is_concrete(D):
      return {}
    out = {"blocks": color_blocks(colors)}
    f = state.fairlet_of
    if _checks.is_concrete(f) and f.ndim == 1:
      out["max_size"] = int(np.bincount(np.asarray(f)).max())
    return out

  def step(state: SearchState, D, colors) -> SearchState:
    return _step_kernel(state, D, jnp.asarray(colors), eps, schedule,
                        **layout(state, D, colors))

  def run(state: SearchState, D, colors, max_steps=None) -> SearchState:
    cap = _NO_CAP if max_steps is None else max_steps
    return _run_kernel(state, D, jnp.asarray(colors), eps,
                       jnp.asarray(cap, jnp.int32), schedule, **layout(state, D, colors))

  init.__doc__ = f"Initial {schedule!r} search state: init(D, decomposition, key=None)."
  step.__doc__ = f"One {schedule!r} step (eps={eps}): step(state, D, colors)."
  run.__doc__ = (f"{schedule!r} steps until done (eps={eps}): "
                 "run(state, D, colors, max_steps=None).")
  return LocalSearch(init=init, step=step, run=run, schedule=schedule, eps=eps)


def run_local_search(key: jax.Array, D: Any, colors: Any, decomposition: Decomposition,
                     *, schedule: str = "fast", eps: float = 0.1,
                     max_steps: Optional[int] = None,
                     progress: ProgressMode = "auto",
                     validate: bool = True) -> SearchState:
  """Runs the local search from ``decomposition`` until it stops (checked).

  The convenience runner around :func:`local_search`: validates the inputs,
  makes the state and runs it. With a progress line the run goes in chunks
  of steps (``max_steps`` is traced, so chunks do not recompile) and
  between chunks a line (steps, swaps, phi) goes to stderr; the result is
  the same as one call.

  Args:
    key: PRNG key (consumed by the ``"random"`` schedule).
    D: ``float[n, n]`` symmetric distances with a zero diagonal.
    colors: ``int[n]`` colours (swaps keep every fairlet's colour counts).
    decomposition: the starting :class:`Decomposition`.
    schedule: ``"fast"`` (default) or ``"random"``; see :func:`local_search`.
    eps: ``eps > 0`` in the acceptance rule (the paper uses 0.1).
    max_steps: cap on the number of steps (default: unbounded).
    progress: a progress line on stderr: ``"auto"`` (once the search has run
      2 s), ``True`` or ``False``.
    validate: ``False`` skips the value checks of ``D`` (already checked,
      e.g. by :func:`fairhc_jax.check_distances`).

  Returns:
    The final :class:`FastSearchState` or :class:`RandomSearchState`
    (``fairlet_of``, ``phi``, ``swaps``, ``steps``, ``trials``, ``done``).
  """
  fn = "run_local_search"
  _checks.check_key(fn, key)
  _checks.check_choice(fn, "schedule", schedule, SCHEDULES)
  eps = check_eps(fn, eps)
  progress = _progress.check_mode(fn, progress)
  D = _checks.check_square_matrix(fn, "D", D, zero_diagonal=True, validate=validate)
  n = D.shape[0]
  c, _ = _checks.check_colors(fn, "colors", colors, n, batched=False)
  if not isinstance(decomposition, Decomposition):
    _checks.fail(fn, "decomposition", "be a Decomposition", type(decomposition).__name__,
                 TypeError)
  if decomposition.fairlet_of.shape != (n,):
    _checks.fail(fn, "decomposition", f"cover the {n} points of D",
                 f"fairlet_of of shape {tuple(decomposition.fairlet_of.shape)}")
  cap = _NO_CAP if max_steps is None else _checks.check_positive_int(
      fn, "max_steps", max_steps, minimum=0)
  search = local_search(schedule, eps)
  state = search.init(D, decomposition, key=key)
  return _drive(search, state, D, c, cap, progress)


def _drive(search: LocalSearch, state, D, colors, cap: int, progress) -> SearchState:
  """``search.run`` in one call, or in chunks with a progress line."""
  if progress is False or not _checks.is_concrete(state.phi):
    return search.run(state, D, colors, cap)
  bar = _progress.Progress(f"local search ({search.schedule})", progress)
  phi0 = float(state.phi)
  remaining, chunk = cap, 1
  while remaining > 0 and not bool(state.done):
    t0 = time.perf_counter()
    before = int(state.steps)
    state = search.run(state, D, colors, min(chunk, remaining))
    remaining -= int(state.steps) - before
    if int(state.steps) == before:  # no step taken: done
      break
    # Aim for about four progress updates a second.
    chunk = chunk * 2 if time.perf_counter() - t0 < 0.25 else max(1, chunk // 2)
    bar.update(f"{int(state.steps)} steps, {int(state.swaps)} swaps, "
               f"phi {float(state.phi) / max(phi0, 1e-30):.3g} of initial")
  bar.close()
  return state
