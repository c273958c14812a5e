"""Fairness constraint types and their exact compilation to integer thresholds.

Constraints are small ``NamedTuple`` types:

* :class:`BoundedRepresentation` ``(alpha)``: ``delta_g <= alpha`` for all ``g``.
* :class:`RepresentationBounds` ``(lower, upper)``: ``lower_g <= delta_g <= upper_g``.
* :class:`Balance` ``(b, r)``: two colours, ``min(n_0/n_1, n_1/n_0) >= b/r``.
* :class:`Proportional` ``(alpha, shares=None)``: ``|delta_g - phi_g| <= alpha``
  with ``phi`` the shares of the colouring being checked (each colouring of
  a batch uses its own), or fixed ``shares`` when given.

Thresholds are rationals, read by the library's one rational reader
:func:`fairhc_jax._checks.as_fraction`: a ``Fraction``, an ``int`` or a
``(num, den)`` tuple is exact; a float ``x`` becomes
``Fraction(x).limit_denominator(MAX_DENOMINATOR)`` (``0.75 -> 3/4``,
``1/3 -> 1/3``). For fixed bounds ``p/q``, ``count / size <= p/q`` is
``count <= floor(size * p / q)``; :func:`_plan` tabulates these thresholds for
every size ``0..n`` with exact Python integers, so a jitted verdict is one
int32 comparison per node and colour. The proportional rule with the data's
own shares has no table (its bounds depend on the colouring); it is decided
in 64-bit arithmetic emulated on ``uint32`` pairs (:mod:`fairhc_jax._wide_int`).
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple, Optional, Sequence, Union

import numpy as np

from fairhc_jax import _checks

MAX_DENOMINATOR = 10**6
"""Floats become ``Fraction(x).limit_denominator(MAX_DENOMINATOR)``."""

Rational = Union[Fraction, int, float, tuple]
"""A threshold: ``Fraction``, ``int``, ``(num, den)`` tuple, or float (see above)."""


class BoundedRepresentation(NamedTuple):
  """Bounded representation (Ahmadian et al. 2019): ``delta_g(C) <= alpha``.

  Attributes:
    alpha: the cap, a rational in ``(0, 1]``; with ``c`` colours it must be
      at least ``1 / c`` (otherwise no cluster can be fair).
  """

  alpha: Rational


class RepresentationBounds(NamedTuple):
  """Lower/upper vectors (Bercea et al. 2019; Knittel et al. 2023).

  ``lower_g <= delta_g(C) <= upper_g`` for every colour ``g``.

  Attributes:
    lower: ``c`` rationals in ``[0, 1]`` (the ``beta_g``); their sum must be
      at most 1.
    upper: ``c`` rationals in ``[0, 1]`` (the ``alpha_g``), ``lower_g <=
      upper_g``; their sum must be at least 1.
  """

  lower: Sequence[Rational]
  upper: Sequence[Rational]


class Balance(NamedTuple):
  """Two-colour balance (Chierichetti et al. 2017): ``balance(C) >= b / r``.

  ``balance(C) = min(n_0 / n_1, n_1 / n_0)`` (0 for a one-colour cluster).
  Decided exactly as ``r * min(n_0, n_1) >= b * max(n_0, n_1)``.

  Attributes:
    b: integer ``>= 0``.
    r: integer ``>= 1`` with ``b <= r``.
  """

  b: int
  r: int


class Proportional(NamedTuple):
  """Proportional fairness (Chhabra & Mohapatra): ``|delta_g(C) - phi_g| <= alpha``.

  Attributes:
    alpha: the tolerance, a rational in ``[0, 1]``.
    shares: ``None`` (default) to use the shares ``phi_g = n_g / n`` of the
      colouring being checked (each colouring of a batch its own), or ``c``
      fixed rationals in ``[0, 1]`` (e.g. population shares).
  """

  alpha: Rational
  shares: Optional[Sequence[Rational]] = None


Constraint = Union[BoundedRepresentation, RepresentationBounds, Balance,
                   Proportional]

_KINDS = ("BoundedRepresentation", "RepresentationBounds", "Balance", "Proportional")


def as_fraction(fn: str, arg: str, x) -> Fraction:
  """Alias of :func:`fairhc_jax._checks.as_fraction` at ``MAX_DENOMINATOR``.

  Kept for callers that import it from here; there is one implementation.
  """
  return _checks.as_fraction(fn, arg, x, max_denominator=MAX_DENOMINATOR)


def _fraction_vector(fn: str, arg: str, v, c: Optional[int]) -> list:
  if isinstance(v, (str, bytes)) or not hasattr(v, "__len__"):
    _checks.fail(fn, arg, "be a sequence with one rational per colour", repr(v),
                 TypeError)
  out = [as_fraction(fn, f"{arg}[{g}]", x) for g, x in enumerate(list(v))]
  if c is not None and len(out) != c:
    _checks.fail(fn, arg, f"have one entry per colour ({c})", f"length {len(out)}")
  if not out:
    _checks.fail(fn, arg, "have at least one entry", "an empty sequence")
  return out


def fmt(f: Fraction) -> str:
  """``3/4`` or ``2``: a Fraction as people write it."""
  return str(f) if f.denominator != 1 else str(f.numerator)


_fmt = fmt


def constraint_num_colors(constraint) -> Optional[int]:
  """The number of colours a constraint fixes (``None`` if it fixes none)."""
  if isinstance(constraint, RepresentationBounds):
    return len(constraint.lower)
  if isinstance(constraint, Balance):
    return 2
  if isinstance(constraint, Proportional) and constraint.shares is not None:
    return len(constraint.shares)
  return None


def check_constraint_type(fn: str, constraint) -> None:
  """Raises ``TypeError`` unless ``constraint`` is one of the four types."""
  if not isinstance(constraint, (BoundedRepresentation, RepresentationBounds, Balance,
                                 Proportional)):
    _checks.fail(fn, "constraint", "be one of " + ", ".join(_KINDS),
                 type(constraint).__name__, TypeError)


def bounds(fn: str, constraint, c: int):
  """Validates a constraint; returns exact per-colour (lower, upper) Fractions.

  Proportional with the data's shares returns ``None`` (per-colouring bounds).
  """
  check_constraint_type(fn, constraint)
  if isinstance(constraint, BoundedRepresentation):
    a = as_fraction(fn, "constraint.alpha", constraint.alpha)
    if not 0 < a <= 1:
      _checks.fail(fn, "constraint.alpha", "lie in (0, 1]", fmt(a))
    if a * c < 1:
      _checks.fail(fn, "constraint.alpha",
                   f"be at least 1/{c} with {c} colours (otherwise no cluster "
                   "can be fair)", fmt(a))
    return [Fraction(0)] * c, [a] * c
  if isinstance(constraint, RepresentationBounds):
    lo = _fraction_vector(fn, "constraint.lower", constraint.lower, c)
    hi = _fraction_vector(fn, "constraint.upper", constraint.upper, c)
    for g in range(c):
      for name, v in (("lower", lo[g]), ("upper", hi[g])):
        if not 0 <= v <= 1:
          _checks.fail(fn, f"constraint.{name}[{g}]", "lie in [0, 1]", fmt(v))
      if lo[g] > hi[g]:
        _checks.fail(fn, f"constraint.lower[{g}]",
                     f"be at most constraint.upper[{g}] = {fmt(hi[g])} (colour {g})",
                     fmt(lo[g]))
    if sum(lo) > 1:
      _checks.fail(fn, "constraint.lower", "sum to at most 1 (otherwise no "
                   "cluster can be fair)", f"sum {fmt(sum(lo))}")
    if sum(hi) < 1:
      _checks.fail(fn, "constraint.upper", "sum to at least 1 (otherwise no "
                   "cluster can be fair)", f"sum {fmt(sum(hi))}")
    return lo, hi
  if isinstance(constraint, Balance):
    b, r = constraint.b, constraint.r
    for name, v, lo_ in (("b", b, 0), ("r", r, 1)):
      if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        _checks.fail(fn, f"constraint.{name}", "be an integer", repr(v), TypeError)
      if v < lo_:
        _checks.fail(fn, f"constraint.{name}", f"be an integer >= {lo_}", repr(v))
    if b > r:
      _checks.fail(fn, "constraint.b", f"be at most constraint.r = {r} (balance "
                   "is at most 1)", repr(b))
    if c != 2:
      _checks.fail(fn, "num_colors", "be 2 for a Balance constraint", c)
    share = Fraction(int(b), int(b) + int(r))
    return [share, share], [Fraction(1), Fraction(1)]
  a = as_fraction(fn, "constraint.alpha", constraint.alpha)   # Proportional
  if not 0 <= a <= 1:
    _checks.fail(fn, "constraint.alpha", "lie in [0, 1]", fmt(a))
  if constraint.shares is None:
    return None
  phi = _fraction_vector(fn, "constraint.shares", constraint.shares, c)
  for g, p in enumerate(phi):
    if not 0 <= p <= 1:
      _checks.fail(fn, f"constraint.shares[{g}]", "lie in [0, 1]", fmt(p))
  return ([max(Fraction(0), p - a) for p in phi],
          [min(Fraction(1), p + a) for p in phi])


_bounds = bounds


def _threshold_tables(lo, hi, n: int):
  """``int32[n + 1, c]`` tables: ``ceil(s * lo_g)`` and ``floor(s * hi_g)``."""
  cols_lo, cols_hi = [], []
  for f_lo, f_hi in zip(lo, hi):
    for f, out, up in ((f_lo, cols_lo, True), (f_hi, cols_hi, False)):
      p, q = f.numerator, f.denominator
      if n * p < 2**62:
        s = np.arange(n + 1, dtype=np.int64)
      else:  # exact Python integers for huge numerators
        s = np.arange(n + 1, dtype=object)
      col = -((-s * p) // q) if up else (s * p) // q
      out.append(np.asarray(col, dtype=np.int64))
  return (np.stack(cols_lo, 1).astype(np.int32),
          np.stack(cols_hi, 1).astype(np.int32))


class Plan(NamedTuple):
  """A compiled constraint: tables, or the proportional-with-data-shares rule."""
  data_shares: bool           # static: which verdict kernel
  lo_table: np.ndarray        # int32[n + 1, c]
  hi_table: np.ndarray        # int32[n + 1, c]
  num: int                    # alpha numerator (data_shares only)
  den: int                    # alpha denominator (data_shares only)


_Plan = Plan


def plan(fn: str, constraint, n: int, c: int) -> Plan:
  """Validates ``constraint`` for ``n`` points and ``c`` colours; compiles it."""
  b = bounds(fn, constraint, c)
  if b is None:
    a = as_fraction(fn, "constraint.alpha", constraint.alpha)
    if a.denominator >= 2**32 or n * n * a.denominator >= 2**64:
      _checks.fail(fn, "constraint.alpha",
                   f"have a denominator below 2^64 / n^2 = {2**64 // (n * n)} "
                   f"for exact arithmetic at n = {n}", fmt(a))
    empty = np.zeros((1, c), np.int32)
    return Plan(True, empty, empty, a.numerator, a.denominator)
  lo_t, hi_t = _threshold_tables(*b, n)
  return Plan(False, lo_t, hi_t, 0, 1)


_plan = plan


def describe_constraint(constraint) -> str:
  """One line naming the constraint and its thresholds (for reports)."""
  f = lambda x: fmt(as_fraction("fairness_report", "constraint", x))
  if isinstance(constraint, BoundedRepresentation):
    return f"bounded representation, every colour share <= {f(constraint.alpha)}"
  if isinstance(constraint, RepresentationBounds):
    return ("representation bounds, lower = [" + ", ".join(f(x) for x in constraint.lower)
            + "], upper = [" + ", ".join(f(x) for x in constraint.upper) + "]")
  if isinstance(constraint, Balance):
    return f"two-colour balance >= {constraint.b}/{constraint.r}"
  if constraint.shares is None:
    return f"proportional, |share - data share| <= {f(constraint.alpha)}"
  return (f"proportional, |share - phi| <= {f(constraint.alpha)} with phi = ["
          + ", ".join(f(x) for x in constraint.shares) + "]")
