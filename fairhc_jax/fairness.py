"""Fairness of a hierarchy: colour counts per node, constraints, verdicts, costs.

Notation (ALGORITHMS.md section 2): ``c`` colours, a cluster ``C`` (a node of
the hierarchy, its leaves) has colour counts ``n_g(C)`` and shares
``delta_g(C) = n_g(C) / |C|``; the data has ``n_g`` points of colour ``g`` and
shares ``phi_g = n_g / n``.

Everything starts from :func:`color_counts`: with the leaves in DFS order
(:func:`fairhc_jax.hierarchy.leaf_ranges`) every node's leaves are a
contiguous range, so ``counts[u] = C[stop[u]] - C[start[u]]`` with ``C`` the
cumulative one-hot colour counts in leaf order: O(n c) per colouring. Every
public function takes one colouring ``int[n]`` or a batch ``int[B, n]``,
evaluated in one vectorised call with the tree-only work (leaf order, sizes)
done once (see the note above the kernels for the batch layout); all of
them are pure functions of arrays that can themselves be ``jax.vmap``-ed
or ``jax.jit``-ed (over trees, or over colourings given ``num_colors``).

Constraints are small ``NamedTuple`` types:

* :class:`BoundedRepresentation` ``(alpha)``: ``delta_g <= alpha`` for all ``g``.
* :class:`RepresentationBounds` ``(lower, upper)``: ``lower_g <= delta_g <= upper_g``.
* :class:`Balance` ``(b, r)``: two colours, ``min(n_0/n_1, n_1/n_0) >= b/r``.
* :class:`Proportional` ``(alpha, shares=None)``: ``|delta_g - phi_g| <= alpha``
  with ``phi`` the shares of the colouring being checked (each colouring of
  a batch uses its own), or fixed ``shares`` when given.

Exact verdicts. Thresholds are rationals. A ``fractions.Fraction``, an
``int`` or a ``(num, den)`` tuple is taken exactly; a float ``x`` is
converted with ``Fraction(x).limit_denominator(MAX_DENOMINATOR)`` (so
``0.75 -> 3/4`` and ``1/3 -> 1/3``). No verdict ever compares float
ratios. For fixed rational bounds ``p/q`` the check ``count / size <= p/q``
is ``count <= floor(size * p / q)``; these thresholds are tabulated for every
possible size ``0..n`` in Python with exact integers, so the jitted verdict
is one int32 comparison per node and colour (no products, no overflow at
any ``n``). The proportional rule with the data's own shares needs
``|count * n - n_g * size| * den <= num * size * n`` per colouring; it is
evaluated in exact 64-bit unsigned arithmetic emulated with pairs of
``uint32`` words, so it is exact without x64 as long as
``n^2 * den < 2^64`` (checked; about ``n <= 4 * 10^6`` at
``den = 10^6``).

A hierarchy is fair iff every non-leaf cluster is fair (Ahmadian et al.
2020, Def. 5); :func:`check_fairness` checks every used internal node and
reports each violating node and colour. Knittel et al. (2023) add the rule
"a node with a leaf child has only leaf children" (``leaf_children_rule``).

Fairness costs (Chhabra & Mohapatra): the merge order is the order of the
internal nodes by index (children before parents). A node with ``r``
children performs ``r - 1`` merges at once. Stage ``t`` (``t = 0..n-1``) is
the state after ``t`` merges: the partition after processing every internal
node whose cumulative merge count is ``<= t``; so the state a node produces
lasts ``r' - 1`` stages, ``r'`` the child count of the next internal node,
and when no state has exactly ``k`` clusters, the "level with ``k``
clusters" is the coarsest state with at least ``k`` clusters. For binary
trees every state lasts one stage and stage ``t`` has exactly ``n - t``
clusters. ``FC_k = sum over clusters of stage n - k of sum_g |delta_g - phi_g|``
and ``HFC = sum_t FC(stage t) = sum_C lifetime(C) * sum_g |delta_g(C) - phi_g|``.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax import hierarchy as _hier
from fairhc_jax.hierarchy import UNUSED, Hierarchy

MAX_DENOMINATOR = 10**6
"""Floats become ``Fraction(x).limit_denominator(MAX_DENOMINATOR)``."""

Rational = Union[Fraction, int, float, tuple]
"""A threshold: ``Fraction``, ``int``, ``(num, den)`` tuple, or float (see above)."""


# ---------------------------------------------------------------------------
# Constraint types.


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


class ClusterScope(NamedTuple):
  """Which clusters of a hierarchy a fairness check counts.

  A used internal node ``u`` is checked iff ``|u| >= min_size`` and, when
  ``blocks`` is given, ``u`` is a union of whole blocks (every block that
  meets ``u`` lies inside ``u``). The default scope checks every internal
  node. Fair pipelines return the scope their guarantee holds for (e.g. the
  fairlet tree: ``blocks = fairlet_of``, "at and above the fairlets"), so
  ``check_fairness(res.hierarchy, colors, c, scope=res.scope)`` passes.

  Attributes:
    min_size: clusters of fewer points are exempt (int ``>= 1``; 2 = every
      internal node).
    blocks: ``None`` or ``int[n]``, a block id per point (e.g. a fairlet
      decomposition's ``fairlet_of``).
  """

  min_size: int = 2
  blocks: Optional[object] = None


def as_fraction(fn: str, arg: str, x) -> Fraction:
  """Reads a threshold as an exact ``Fraction`` (see :func:`_checks.as_fraction`)."""
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


def _fmt(f: Fraction) -> str:
  return str(f) if f.denominator != 1 else str(f.numerator)


def constraint_num_colors(constraint) -> Optional[int]:
  """The number of colours a constraint fixes (``None`` if it fixes none)."""
  if isinstance(constraint, RepresentationBounds):
    return len(constraint.lower)
  if isinstance(constraint, Balance):
    return 2
  if isinstance(constraint, Proportional) and constraint.shares is not None:
    return len(constraint.shares)
  return None


def _bounds(fn: str, constraint, c: int):
  """Validates a constraint; returns exact per-colour (lower, upper) Fractions.

  Proportional with the data's shares returns ``None`` (per-colouring bounds).
  """
  kinds = ("BoundedRepresentation", "RepresentationBounds", "Balance",
           "Proportional")
  if isinstance(constraint, BoundedRepresentation):
    a = as_fraction(fn, "constraint.alpha", constraint.alpha)
    if not 0 < a <= 1:
      _checks.fail(fn, "constraint.alpha", "lie in (0, 1]", _fmt(a))
    if a * c < 1:
      _checks.fail(fn, "constraint.alpha",
                   f"be at least 1/{c} with {c} colours (otherwise no cluster "
                   "can be fair)", _fmt(a))
    return [Fraction(0)] * c, [a] * c
  if isinstance(constraint, RepresentationBounds):
    lo = _fraction_vector(fn, "constraint.lower", constraint.lower, c)
    hi = _fraction_vector(fn, "constraint.upper", constraint.upper, c)
    for g in range(c):
      for name, v in (("lower", lo[g]), ("upper", hi[g])):
        if not 0 <= v <= 1:
          _checks.fail(fn, f"constraint.{name}[{g}]", "lie in [0, 1]", _fmt(v))
      if lo[g] > hi[g]:
        _checks.fail(fn, f"constraint.lower[{g}]",
                     f"be at most constraint.upper[{g}] = {_fmt(hi[g])} (colour {g})",
                     _fmt(lo[g]))
    if sum(lo) > 1:
      _checks.fail(fn, "constraint.lower", "sum to at most 1 (otherwise no "
                   "cluster can be fair)", f"sum {_fmt(sum(lo))}")
    if sum(hi) < 1:
      _checks.fail(fn, "constraint.upper", "sum to at least 1 (otherwise no "
                   "cluster can be fair)", f"sum {_fmt(sum(hi))}")
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
  if isinstance(constraint, Proportional):
    a = as_fraction(fn, "constraint.alpha", constraint.alpha)
    if not 0 <= a <= 1:
      _checks.fail(fn, "constraint.alpha", "lie in [0, 1]", _fmt(a))
    if constraint.shares is None:
      return None
    phi = _fraction_vector(fn, "constraint.shares", constraint.shares, c)
    for g, p in enumerate(phi):
      if not 0 <= p <= 1:
        _checks.fail(fn, f"constraint.shares[{g}]", "lie in [0, 1]", _fmt(p))
    return ([max(Fraction(0), p - a) for p in phi],
            [min(Fraction(1), p + a) for p in phi])
  _checks.fail(fn, "constraint", "be one of " + ", ".join(kinds),
               type(constraint).__name__, TypeError)


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


class _Plan(NamedTuple):
  """A compiled constraint: tables, or the proportional-with-data-shares rule."""
  data_shares: bool           # static: which verdict kernel
  lo_table: np.ndarray        # int32[n + 1, c]
  hi_table: np.ndarray        # int32[n + 1, c]
  num: int                    # alpha numerator (data_shares only)
  den: int                    # alpha denominator (data_shares only)


def _plan(fn: str, constraint, n: int, c: int) -> _Plan:
  bounds = _bounds(fn, constraint, c)
  if bounds is None:
    a = as_fraction(fn, "constraint.alpha", constraint.alpha)
    if a.denominator >= 2**32 or n * n * a.denominator >= 2**64:
      _checks.fail(fn, "constraint.alpha",
                   f"have a denominator below 2^64 / n^2 = {2**64 // (n * n)} "
                   f"for exact arithmetic at n = {n}", _fmt(a))
    empty = np.zeros((1, c), np.int32)
    return _Plan(True, empty, empty, a.numerator, a.denominator)
  lo_t, hi_t = _threshold_tables(*bounds, n)
  return _Plan(False, lo_t, hi_t, 0, 1)


# ---------------------------------------------------------------------------
# Exact 64-bit unsigned arithmetic on pairs of uint32 words (hi, lo).

_U32 = jnp.uint32


def _mul_wide(a, b):
  """Exact ``a * b`` of two uint32 arrays as a (hi, lo) pair of uint32 words."""
  m16 = _U32(0xFFFF)
  a0, a1 = a & m16, a >> 16
  b0, b1 = b & m16, b >> 16
  p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
  mid = (p00 >> 16) + (p01 & m16) + (p10 & m16)
  lo = (p00 & m16) | ((mid & m16) << 16)
  hi = p11 + (p01 >> 16) + (p10 >> 16) + (mid >> 16)
  return hi, lo


def _sub64(x, y):
  """``x - y`` for (hi, lo) pairs with ``x >= y``."""
  lo = x[1] - y[1]
  borrow = (x[1] < y[1]).astype(_U32)
  return x[0] - y[0] - borrow, lo


def _le64(x, y):
  """``x <= y`` for (hi, lo) pairs."""
  return (x[0] < y[0]) | ((x[0] == y[0]) & (x[1] <= y[1]))


def _mul64x32(x, b):
  """``x * b`` for a (hi, lo) pair and uint32 ``b``; exact when it fits 64 bits."""
  hi, lo = _mul_wide(x[1], b)
  return hi + x[0] * b, lo


# ---------------------------------------------------------------------------
# Kernels.
#
# Layout: a batch of colourings is processed ``CHUNK`` at a time, with the
# colourings on the minor ("lane") axis: the cumulative counts are one
# sequential scan over the ``n`` leaves in DFS order whose body adds a
# ``[c - 1, b]`` slab, and the per-node counts are row gathers ``cum[stop] -
# cum[start]``. Measured on the 2-core CPU (n = 4,000, B = 1,000, two
# colours): ``jax.vmap`` of a per-colouring kernel with the batch on the
# leading axis (XLA's default for vmap) took 4-10x longer, ``jnp.cumsum``
# (an associative scan) 10x longer than the scan, and unchunked batches of
# 1,000 spent most of their time faulting in fresh 16-64 MB buffers. Every
# kernel below is still a pure function of arrays and can be vmapped over
# trees.

CHUNK = 128
"""Colourings evaluated per vectorised step (bounds the working set)."""


class _TreeViews(NamedTuple):
  """Tree-only quantities, computed once per call."""
  order: jax.Array     # int32[n]  leaves in DFS order
  start: jax.Array     # int32[m]
  stop: jax.Array      # int32[m]
  sizes: jax.Array     # int32[m]  leaves per node (0 for unused slots)
  internal: jax.Array  # bool[m]   used internal nodes
  root: jax.Array      # int32[]


def _internal_mask(parent):
  m = parent.shape[-1]
  n = (m + 1) // 2
  idx = jnp.arange(m, dtype=jnp.int32)
  return (parent != UNUSED) & (idx >= n)


def _tree_views(parent, r) -> _TreeViews:
  """Views from ``parent`` and its ``leaf_ranges`` (computed outside the kernels
  by the separately jitted ``leaf_ranges``, so every kernel for the same ``n``
  shares one compiled tree pass and compiles faster)."""
  # The one root, found with an integer sum: XLA:CPU integer min/max (and
  # argmax) reductions are 10-100x slower than sums.
  root = jnp.sum(jnp.where(parent == -1, jnp.arange(parent.shape[-1], dtype=jnp.int32), 0))
  return _TreeViews(r.order, r.start, r.stop, r.stop - r.start,
                    _internal_mask(parent), root)


def _mixed_children(parent):
  """``bool[m]``: internal nodes with both a leaf child and a non-leaf child."""
  m = parent.shape[-1]
  n = (m + 1) // 2
  idx = jnp.arange(m, dtype=jnp.int32)
  bucket = jnp.where(parent >= 0, parent, m)
  leaf_kids = jnp.zeros(m + 1, jnp.int32).at[bucket].add(
      (idx < n).astype(jnp.int32))[:m]
  inner_kids = jnp.zeros(m + 1, jnp.int32).at[bucket].add(
      (idx >= n).astype(jnp.int32))[:m]
  return (leaf_kids > 0) & (inner_kids > 0)


def _counts_lanes(tree: _TreeViews, colors, num_colors: int):
  """``int32[m, c, b]`` colour counts of ``b`` colourings ``int32[b, n]``.

  The last colour's count is ``size`` minus the others (one scan fewer).
  """
  b = colors.shape[0]
  m = tree.sizes.shape[0]
  if num_colors == 1:
    return jnp.broadcast_to(tree.sizes[:, None, None], (m, 1, b))
  x = colors.T[tree.order]                                      # [n, b]
  onehot = (x[:, None, :] == jnp.arange(num_colors - 1, dtype=x.dtype)[None, :, None]
            ).astype(jnp.int32)                                 # [n, c-1, b]

  def add_row(carry, row):
    carry = carry + row
    return carry, carry

  _, cum = jax.lax.scan(add_row, jnp.zeros((num_colors - 1, b), jnp.int32), onehot)
  cum = jnp.concatenate([jnp.zeros((1, num_colors - 1, b), jnp.int32), cum])
  part = cum[tree.stop] - cum[tree.start]                       # [m, c-1, b]
  last = tree.sizes[:, None] - jnp.sum(part, axis=1)            # [m, b]
  return jnp.concatenate([part, last[:, None, :]], axis=1)


def _map_chunks(fn, colors, chunk: int = CHUNK):
  """Applies ``fn`` (``int32[b, n]`` -> outputs with a leading ``b`` axis) by chunks.

  The ``B`` colourings are split into ``ceil(B / chunk)`` equal chunks
  (padding only when they do not divide ``B``, which costs one output copy).
  """
  total, n = colors.shape
  if total <= chunk:
    return fn(colors)
  num = -(-total // chunk)
  size = -(-total // num)
  padded = colors
  if num * size != total:
    padded = jnp.pad(colors, ((0, num * size - total), (0, 0)))
  out = jax.lax.map(fn, padded.reshape(num, size, n))
  return jax.tree_util.tree_map(
      lambda x: x.reshape((num * size,) + x.shape[2:])[:total], out)


@functools.partial(jax.jit, static_argnames="num_colors")
def _color_counts_kernel(parent, ranges, colors, num_colors):
  tree = _tree_views(parent, ranges)
  return _map_chunks(
      lambda cols: jnp.transpose(_counts_lanes(tree, cols, num_colors), (2, 0, 1)),
      colors)


def color_counts_kernel(h: Hierarchy, colors: jax.Array, num_colors: int) -> jax.Array:
  """Raw colour counts for internal callers (no input checks; jit/vmap safe).

  Args:
    h: a valid :class:`Hierarchy` on ``n`` leaves (only ``h.parent`` is used).
    colors: ``int32[n]``, one colouring with values in ``[0, num_colors)``.
    num_colors: ``c`` (static).

  Returns:
    ``int32[m, c]``: colour counts of every node (free slots 0).
  """
  parent = h.parent
  r = _hier.leaf_ranges(Hierarchy(parent=parent, height=None))
  return _color_counts_kernel(parent, r, jnp.asarray(colors, jnp.int32)[None],
                              num_colors=num_colors)[0]


def _proportional_flags(counts, sizes, totals, n, num, den):
  """(below, above) of ``|count/size - n_g/n| <= num/den``, exactly.

  Args (broadcasting): counts ``int32[m, c, b]``, sizes ``int32[m, 1, 1]``,
  totals ``int32[1, c, b]``; n, num, den uint32 scalars.
  """
  cnt = counts.astype(_U32)
  siz = sizes.astype(_U32)
  tot = totals.astype(_U32)
  x = _mul_wide(cnt, n)            # count * n
  y = _mul_wide(tot, siz)          # n_g * size
  x_ge_y = _le64(y, x)
  d1, d2 = _sub64(x, y), _sub64(y, x)
  diff = (jnp.where(x_ge_y, d1[0], d2[0]), jnp.where(x_ge_y, d1[1], d2[1]))
  lhs = _mul64x32(diff, den)
  rhs = _mul64x32(_mul_wide(siz, n), num)
  bad = ~_le64(lhs, rhs)
  return bad & ~x_ge_y, bad & x_ge_y


def _check_chunk(tree, colors, lo_node, hi_node, mixed, num, den, *, num_colors,
                 data_shares):
  """Verdicts for ``b`` colourings: (is_fair bool[b], violating bool[b, m],
  status int8[b, m, c])."""
  n = tree.order.shape[0]
  counts = _counts_lanes(tree, colors, num_colors)
  if data_shares:
    below, above = _proportional_flags(
        counts, tree.sizes[:, None, None], counts[tree.root][None],
        jnp.uint32(n), num, den)
  else:
    below = counts < lo_node[:, :, None]
    above = counts > hi_node[:, :, None]
  status = jnp.where(below, -1, jnp.where(above, 1, 0)).astype(jnp.int8)
  status = jnp.where(tree.internal[:, None, None], status, jnp.int8(0))
  violating = jnp.any(status != 0, axis=1) | mixed[:, None]     # [m, b]
  return (~jnp.any(violating, axis=0), violating.T,
          jnp.transpose(status, (2, 0, 1)))


def _check_setup(parent, ranges, lo_table, hi_table, leaf_rule):
  tree = _tree_views(parent, ranges)
  mixed = (tree.internal & _mixed_children(parent) if leaf_rule
           else jnp.zeros_like(tree.internal))
  return tree, lo_table[tree.sizes], hi_table[tree.sizes], mixed


@functools.partial(jax.jit,
                   static_argnames=("num_colors", "data_shares", "leaf_rule", "details"))
def _check_kernel(parent, ranges, colors, lo_table, hi_table, num, den, *, num_colors,
                  data_shares, leaf_rule, details=True):
  tree, lo_node, hi_node, mixed = _check_setup(parent, ranges, lo_table, hi_table, leaf_rule)
  chunk_fn = functools.partial(_check_chunk, tree, lo_node=lo_node, hi_node=hi_node,
                               mixed=mixed, num=num, den=den, num_colors=num_colors,
                               data_shares=data_shares)
  if not details:  # verdicts only: no per-node output buffers to fill
    return _map_chunks(lambda cols: chunk_fn(cols)[0], colors)
  is_fair, violating, status = _map_chunks(chunk_fn, colors)
  return is_fair, violating, status, mixed


# ---------------------------------------------------------------------------
# Validation shared by the entry points.


def _check_hierarchy(fn: str, h) -> Hierarchy:
  return _hier.check_hierarchy(fn, h)


def _prepare(fn: str, h, colors, num_colors, constraint=None):
  """Validated (h, colors int32[B, n], batched?, c)."""
  h = _check_hierarchy(fn, h)
  n = h.num_leaves
  if constraint is not None and num_colors is None:
    num_colors = constraint_num_colors(constraint)
  colors, c = _checks.check_colors(fn, "colors", colors, n, num_colors)
  batched = colors.ndim == 2
  if batched and colors.shape[0] == 0:
    _checks.fail(fn, "colors", "hold at least one colouring", "shape "
                 f"{tuple(colors.shape)}")
  return h, (colors if batched else colors[None]), batched, c


def _unbatch(tree, batched):
  return tree if batched else jax.tree_util.tree_map(lambda x: x[0], tree)


# ---------------------------------------------------------------------------
# Public API: counts and the fairness check.


def color_counts(h: Hierarchy, colors, num_colors: Optional[int] = None) -> jax.Array:
  """Colour counts of every node.

  Args:
    h: a hierarchy over ``n`` leaves (capacity ``m = 2n - 1``).
    colors: ``int[n]`` (one colouring) or ``int[B, n]`` (a batch), values in
      ``[0, num_colors)``.
    num_colors: ``c``; defaults to ``max(colors) + 1``.

  Returns:
    ``int32[m, c]`` (or ``int32[B, m, c]``): ``counts[u, g]`` is the number of
    leaves of colour ``g`` under node ``u``; unused slots hold zeros. O(n c)
    per colouring after one O(m log m) pass over the tree.
  """
  fn = "color_counts"
  h, colors, batched, c = _prepare(fn, h, colors, num_colors)
  counts = _color_counts_kernel(h.parent, _hier.leaf_ranges(h), colors, num_colors=c)
  return counts if batched else counts[0]


class FairnessCheck(NamedTuple):
  """Result of :func:`check_fairness` (leading ``B`` axis for a batch).

  Attributes:
    is_fair: ``bool[]`` (or ``bool[B]``): every internal node is fair.
    violating: ``bool[m]`` (or ``bool[B, m]``): nodes that break the
      constraint (any colour) or the leaf-children rule. Leaves and unused
      slots are never flagged.
    status: ``int8[m, c]`` (or ``int8[B, m, c]``): ``-1`` where colour ``g``
      is under-represented at the node (below its lower bound; for
      :class:`Balance`, the minority colour), ``+1`` where it is
      over-represented (above its upper bound), ``0`` otherwise.
    mixed_children: ``bool[m]`` (tree-only, never batched): the node has a
      leaf child and a non-leaf child; all False unless
      ``leaf_children_rule=True``.
  """

  is_fair: jax.Array
  violating: jax.Array
  status: jax.Array
  mixed_children: jax.Array

  @property
  def below(self) -> jax.Array:
    """``bool[..., m, c]``: colour below its lower bound at the node."""
    return self.status < 0

  @property
  def above(self) -> jax.Array:
    """``bool[..., m, c]``: colour above its upper bound at the node."""
    return self.status > 0


def check_fairness(h: Hierarchy, colors, constraint: Constraint, *,
                   num_colors: Optional[int] = None,
                   leaf_children_rule: bool = False) -> FairnessCheck:
  """Checks every internal node of ``h`` against a fairness constraint.

  A hierarchy is fair iff every non-leaf cluster is fair (Ahmadian et al.
  2020, Def. 5) and, with ``leaf_children_rule`` (Knittel et al. 2023), no
  node has both a leaf child and a non-leaf child. Verdicts are exact
  integer arithmetic (see the module docstring). The check does not raise
  when the data set as a whole breaks the constraint (the root is then
  reported); use :func:`check_feasible` to require feasibility.

  Args:
    h: a hierarchy over ``n`` leaves.
    colors: ``int[n]`` or a batch ``int[B, n]`` (checked in one vectorised call).
    constraint: a :class:`BoundedRepresentation`, :class:`RepresentationBounds`,
      :class:`Balance` or :class:`Proportional`.
    num_colors: ``c``; defaults to the constraint's vector length, 2 for
      :class:`Balance`, else ``max(colors) + 1``.
    leaf_children_rule: also require "a node with a leaf child has only leaf
      children".

  Returns:
    A :class:`FairnessCheck`.
  """
  fn = "check_fairness"
  h, colors, batched, c = _prepare(fn, h, colors, num_colors, constraint)
  if not isinstance(leaf_children_rule, (bool, np.bool_)):
    _checks.fail(fn, "leaf_children_rule", "be a bool", repr(leaf_children_rule),
                 TypeError)
  plan = _plan(fn, constraint, h.num_leaves, c)
  out = _check_kernel(h.parent, _hier.leaf_ranges(h), colors, plan.lo_table, plan.hi_table,
                      jnp.uint32(plan.num), jnp.uint32(plan.den), num_colors=c,
                      data_shares=plan.data_shares,
                      leaf_rule=bool(leaf_children_rule))
  is_fair, violating, status, mixed = out
  if not batched:
    is_fair, violating, status = is_fair[0], violating[0], status[0]
  return FairnessCheck(is_fair, violating, status, mixed)


def is_fair(h: Hierarchy, colors, constraint: Constraint, *,
            num_colors: Optional[int] = None,
            leaf_children_rule: bool = False) -> jax.Array:
  """Whether ``h`` is fair: the ``is_fair`` of :func:`check_fairness` alone.

  Same arguments and exact verdicts as :func:`check_fairness`, without the
  per-node outputs (``B * m * (c + 1)`` bytes for a batch), which makes
  audits over many colourings several times faster.

  Returns:
    ``bool[]`` (or ``bool[B]`` for a batch of colourings).
  """
  fn = "is_fair"
  h, colors, batched, c = _prepare(fn, h, colors, num_colors, constraint)
  if not isinstance(leaf_children_rule, (bool, np.bool_)):
    _checks.fail(fn, "leaf_children_rule", "be a bool", repr(leaf_children_rule),
                 TypeError)
  plan = _plan(fn, constraint, h.num_leaves, c)
  out = _check_kernel(h.parent, _hier.leaf_ranges(h), colors, plan.lo_table,
                      plan.hi_table, jnp.uint32(plan.num), jnp.uint32(plan.den),
                      num_colors=c, data_shares=plan.data_shares,
                      leaf_rule=bool(leaf_children_rule), details=False)
  return out if batched else out[0]


def check_feasible(colors, constraint: Constraint,
                   num_colors: Optional[int] = None) -> None:
  """Raises ``ValueError`` when no tree over these points can be fair.

  The root holds every point, so the data's own shares must satisfy the
  constraint (proportional fairness with the data's shares always does).
  The message names the colour and the numbers. Ill-formed constraints
  raise too.

  Args:
    colors: ``int[n]``, one colouring.
    constraint: a fairness constraint.
    num_colors: ``c``; defaults as in :func:`check_fairness`.
  """
  fn = "check_feasible"
  if num_colors is None:
    num_colors = constraint_num_colors(constraint)
  colors = _checks.as_array(fn, "colors", colors)
  if colors.ndim != 1:
    _checks.fail(fn, "colors", "be int[n] (one colouring)", f"shape {tuple(colors.shape)}")
  colors, c = _checks.check_colors(fn, "colors", colors, colors.shape[0], num_colors,
                                   batched=False)
  n = int(colors.shape[0])
  bounds = _bounds(fn, constraint, c)
  if bounds is None:
    return
  totals = np.bincount(np.asarray(colors), minlength=c)
  lo, hi = bounds
  for g in range(c):
    share = Fraction(int(totals[g]), n)
    if isinstance(constraint, Balance) and share < lo[g]:
      other = int(n - totals[g])
      _checks.fail(fn, "constraint", "be satisfiable by the whole data set",
                   f"colour {g} has {int(totals[g])} points against {other} of the "
                   f"other colour: balance {int(totals[g])}/{other} < "
                   f"{constraint.b}/{constraint.r}")
    if share < lo[g]:
      _checks.fail(fn, "constraint", "be satisfiable by the whole data set",
                   f"colour {g} makes up {int(totals[g])}/{n} = {float(share):.4g} "
                   f"of the points, less than its lower bound {_fmt(lo[g])}")
    if share > hi[g]:
      _checks.fail(fn, "constraint", "be satisfiable by the whole data set",
                   f"colour {g} makes up {int(totals[g])}/{n} = {float(share):.4g} "
                   f"of the points, more than its upper bound {_fmt(hi[g])}")


def _describe_constraint(constraint) -> str:
  f = lambda x: _fmt(as_fraction("fairness_report", "constraint", x))
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


def fairness_report(h: Hierarchy, colors, constraint: Constraint, *,
                    num_colors: Optional[int] = None,
                    leaf_children_rule: bool = False,
                    max_nodes: int = 20) -> str:
  """A readable report of :func:`check_fairness` for one colouring.

  Lists each violating node (up to ``max_nodes``, smallest clusters first)
  with its size, colour counts and the broken bound.

  Args:
    h: a hierarchy over ``n`` leaves.
    colors: ``int[n]``, one colouring.
    constraint: a fairness constraint.
    num_colors: ``c`` (see :func:`check_fairness`).
    leaf_children_rule: also apply the Knittel leaf-children rule.
    max_nodes: how many violating nodes to list.

  Returns:
    A multi-line string.
  """
  fn = "fairness_report"
  max_nodes = _checks.check_positive_int(fn, "max_nodes", max_nodes, minimum=0)
  if np.ndim(colors) != 1:
    _checks.fail(fn, "colors", "be int[n] (one colouring)", f"shape {np.shape(colors)}")
  res = check_fairness(h, colors, constraint, num_colors=num_colors,
                       leaf_children_rule=leaf_children_rule)
  counts = np.asarray(color_counts(h, colors, num_colors=res.below.shape[-1]))
  c = counts.shape[1]
  res = jax.device_get(res)
  parent = np.asarray(h.parent)
  n = (parent.shape[0] + 1) // 2
  internal = (parent != UNUSED) & (np.arange(parent.shape[0]) >= n)
  sizes = counts.sum(1)
  bad = np.flatnonzero(res.violating)
  totals = counts[int(np.flatnonzero(parent == -1)[0])]
  lines = [f"Fairness check: {_describe_constraint(constraint)}"
           + ("; leaf-children rule on" if leaf_children_rule else ""),
           f"  {n} points, {c} colours (counts {totals.tolist()}), "
           f"{int(internal.sum())} internal nodes checked: "
           + ("FAIR" if res.is_fair else f"{len(bad)} violate")]
  if isinstance(constraint, (BoundedRepresentation, RepresentationBounds)) or (
      isinstance(constraint, Proportional) and constraint.shares is not None):
    lo, hi = _bounds(fn, constraint, c)
  elif isinstance(constraint, Proportional):
    a = as_fraction(fn, "constraint.alpha", constraint.alpha)
    lo = [Fraction(int(t), n) - a for t in totals]
    hi = [Fraction(int(t), n) + a for t in totals]
  order = bad[np.lexsort((bad, sizes[bad]))]
  for u in order[:max_nodes]:
    why = []
    for g in range(c):
      share = f"{counts[u, g]}/{sizes[u]} = {counts[u, g] / sizes[u]:.3f}"
      if isinstance(constraint, Balance) and res.below[u, g]:
        why.append(f"balance {counts[u, g]}:{sizes[u] - counts[u, g]} < "
                   f"{constraint.b}:{constraint.r} (colour {g} is the minority)")
      elif res.below[u, g]:
        why.append(f"colour {g} share {share} < {_fmt(lo[g])}")
      elif res.above[u, g]:
        why.append(f"colour {g} share {share} > {_fmt(hi[g])}")
    if res.mixed_children[u]:
      why.append("has both leaf and non-leaf children")
    lines.append(f"  node {u} (size {sizes[u]}, counts {counts[u].tolist()}): "
                 + "; ".join(why))
  if len(bad) > max_nodes:
    lines.append(f"  ... and {len(bad) - max_nodes} more violating nodes")
  return "\n".join(lines)


# ---------------------------------------------------------------------------
# Balance statistics.


class BalanceStats(NamedTuple):
  """Distribution of colour shares and balance over the internal nodes.

  Leading ``B`` axis for a batch. Floats are the default float dtype.

  Attributes:
    balance: ``float[m]``: ``min_g n_g(C) / max_g n_g(C)`` over the colours
      present in the data (Chierichetti et al.'s balance for two colours),
      NaN at leaves and unused slots.
    shares: ``float[m, c]``: ``delta_g(C)``, NaN at leaves and unused slots.
    is_internal: ``bool[m]``: the nodes the statistics cover.
    min_balance: ``float[]``: the smallest balance (NaN if no internal node).
    mean_balance: ``float[]``: the mean balance over internal nodes.
    min_share: ``float[c]``: per colour, the smallest share.
    max_share: ``float[c]``: per colour, the largest share.
  """

  balance: jax.Array
  shares: jax.Array
  is_internal: jax.Array
  min_balance: jax.Array
  mean_balance: jax.Array
  min_share: jax.Array
  max_share: jax.Array

  def internal_balances(self) -> np.ndarray:
    """NumPy ``float[q]``: the balances of the internal nodes (for a histogram).

    For a batch, the balances of every colouring's internal nodes, flattened.
    """
    return np.asarray(self.balance)[np.broadcast_to(np.asarray(self.is_internal),
                                                    np.shape(self.balance))]


def _balance_one(counts, internal):
  dtype = _checks.float_dtype()
  sizes = counts.sum(-1)
  present = counts[jnp.argmax(sizes)] > 0   # the root holds every point
  big = jnp.iinfo(jnp.int32).max
  lo = jnp.min(jnp.where(present, counts, big), axis=-1)
  hi = jnp.max(jnp.where(present, counts, 0), axis=-1)
  nan = jnp.asarray(jnp.nan, dtype)
  balance = jnp.where(internal, lo.astype(dtype) / jnp.maximum(hi, 1).astype(dtype), nan)
  shares = jnp.where(internal[:, None],
                     counts.astype(dtype) / jnp.maximum(sizes, 1)[:, None].astype(dtype),
                     nan)
  q = jnp.sum(internal)
  min_b = jnp.where(q > 0, jnp.min(jnp.where(internal, balance, jnp.inf)), nan)
  mean_b = jnp.where(q > 0, jnp.sum(jnp.where(internal, balance, 0)) /
                     jnp.maximum(q, 1).astype(dtype), nan)
  min_s = jnp.where(q > 0, jnp.min(jnp.where(internal[:, None], shares, jnp.inf), 0), nan)
  max_s = jnp.where(q > 0, jnp.max(jnp.where(internal[:, None], shares, -jnp.inf), 0), nan)
  return balance, shares, min_b, mean_b, min_s, max_s


@functools.partial(jax.jit, static_argnames="num_colors")
def _balance_kernel(parent, ranges, colors, num_colors):
  tree = _tree_views(parent, ranges)

  def chunk_fn(cols):
    counts = _counts_lanes(tree, cols, num_colors)
    return jax.vmap(_balance_one, (2, None))(counts, tree.internal)

  return _map_chunks(chunk_fn, colors), tree.internal


def cluster_balance(h: Hierarchy, colors,
                    num_colors: Optional[int] = None) -> BalanceStats:
  """Colour shares and balance of every internal node, with summaries.

  For audits and the Knittel et al. figures (histogram of cluster balance).
  These are float statistics for people, not verdicts (use
  :func:`check_fairness` for those).

  Args:
    h: a hierarchy over ``n`` leaves.
    colors: ``int[n]`` or a batch ``int[B, n]``.
    num_colors: ``c``; defaults to ``max(colors) + 1``.

  Returns:
    A :class:`BalanceStats`.
  """
  fn = "cluster_balance"
  h, colors, batched, c = _prepare(fn, h, colors, num_colors)
  (bal, shares, min_b, mean_b, min_s, max_s), internal = _balance_kernel(
      h.parent, _hier.leaf_ranges(h), colors, num_colors=c)
  stats = BalanceStats(bal, shares, jnp.broadcast_to(internal, bal.shape), min_b,
                       mean_b, min_s, max_s)
  return _unbatch(stats, batched)


# ---------------------------------------------------------------------------
# Fairness costs (FC, HFC).


def _lifetimes(parent):
  """Stage at which each node's cluster appears (birth) and merges away (death).

  Internal nodes are processed in index order; one with ``r`` children does
  ``r - 1`` merges. Stages run ``0..n-1``; the root lives until stage ``n``.
  """
  m = parent.shape[-1]
  n = (m + 1) // 2
  idx = jnp.arange(m, dtype=jnp.int32)
  internal = _internal_mask(parent)
  nkids = _hier.num_children(Hierarchy(parent=parent))
  merges_after = jnp.cumsum(jnp.where(internal, nkids - 1, 0))
  birth = jnp.where(idx < n, 0, merges_after)
  death = jnp.where(parent >= 0, merges_after[jnp.maximum(parent, 0)], n)
  used = parent != UNUSED
  return birth, death, used


def _node_costs(counts, n):
  """``float[m]``: ``sum_g |delta_g(C) - phi_g|`` per node (0 for unused slots)."""
  dtype = _checks.float_dtype()
  sizes = counts.sum(-1)
  totals = counts[jnp.argmax(sizes)]   # the root
  delta = counts.astype(dtype) / jnp.maximum(sizes, 1)[:, None].astype(dtype)
  phi = totals.astype(dtype) / n
  cost = jnp.sum(jnp.abs(delta - phi), axis=-1)
  return jnp.where(sizes > 0, cost, 0)


@functools.partial(jax.jit, static_argnames="num_colors")
def _fc_kernel(parent, ranges, colors, k, num_colors):
  n = (parent.shape[-1] + 1) // 2
  tree = _tree_views(parent, ranges)
  birth, death, used = _lifetimes(parent)
  t = n - k
  alive = used & (birth <= t) & (t < death)

  def chunk_fn(cols):
    counts = _counts_lanes(tree, cols, num_colors)
    costs = jax.vmap(_node_costs, (2, None))(counts, n)       # [b, m]
    return jnp.sum(jnp.where(alive, costs, 0), axis=-1)

  return _map_chunks(chunk_fn, colors)


@functools.partial(jax.jit, static_argnames="num_colors")
def _hfc_kernel(parent, ranges, colors, num_colors):
  n = (parent.shape[-1] + 1) // 2
  tree = _tree_views(parent, ranges)
  birth, death, used = _lifetimes(parent)
  life = jnp.where(used, death - birth, 0)

  def chunk_fn(cols):
    counts = _counts_lanes(tree, cols, num_colors)
    costs = jax.vmap(_node_costs, (2, None))(counts, n)       # [b, m]
    return jnp.sum(costs * life.astype(costs.dtype), axis=-1)

  return _map_chunks(chunk_fn, colors)


def fairness_cost(h: Hierarchy, colors, k: int,
                  num_colors: Optional[int] = None) -> jax.Array:
  """Fairness Cost ``FC_k`` (Chhabra & Mohapatra, Def. 3.2).

  ``FC_k = sum_{clusters C of the k-cluster level} sum_g |delta_g(C) - phi_g|``
  with ``phi`` the colouring's shares. The levels come from the merge order
  (internal nodes by index); for non-binary trees the "level with ``k``
  clusters" is the coarsest state with at least ``k`` clusters (module
  docstring). ``FC_n = sum_i (1 - phi_{col(i)}) + sum_{g != col(i)} phi_g``
  (singletons) and ``FC_1 = 0``.

  Args:
    h: a hierarchy over ``n`` leaves.
    colors: ``int[n]`` or a batch ``int[B, n]``.
    k: number of clusters, ``1 <= k <= n``.
    num_colors: ``c``; defaults to ``max(colors) + 1`` (absent colours add
      nothing: their ``delta`` and ``phi`` are both 0).

  Returns:
    ``float[]`` (or ``float[B]``), the default float dtype; a sum of at most
    ``n`` terms each at most 2.
  """
  fn = "fairness_cost"
  h, colors, batched, c = _prepare(fn, h, colors, num_colors)
  k = _checks.check_positive_int(fn, "k", k)
  if k > h.num_leaves:
    _checks.fail(fn, "k", f"be at most n = {h.num_leaves}", k)
  out = _fc_kernel(h.parent, _hier.leaf_ranges(h), colors, jnp.int32(k), num_colors=c)
  return out if batched else out[0]


def hierarchical_fairness_cost(h: Hierarchy, colors,
                               num_colors: Optional[int] = None) -> jax.Array:
  """Hierarchical Fairness Cost (Chhabra & Mohapatra, Def. 3.3).

  The sum of the FC of the ``n`` stages (after ``0, 1, ..., n - 1`` merges),
  computed in closed form as ``sum_C lifetime(C) * sum_g |delta_g(C) - phi_g|``
  over all nodes, ``lifetime`` the number of stages the cluster is present
  (a node with ``r`` children does ``r - 1`` merges at once; module
  docstring). O(m c) after the colour counts.

  Args:
    h: a hierarchy over ``n`` leaves.
    colors: ``int[n]`` or a batch ``int[B, n]``.
    num_colors: ``c``; defaults to ``max(colors) + 1``.

  Returns:
    ``float[]`` (or ``float[B]``) in the default float dtype (float32 keeps
    about 6 significant digits of a sum over ``m`` weighted terms).
  """
  fn = "hierarchical_fairness_cost"
  h, colors, batched, c = _prepare(fn, h, colors, num_colors)
  out = _hfc_kernel(h.parent, _hier.leaf_ranges(h), colors, num_colors=c)
  return out if batched else out[0]


# ---------------------------------------------------------------------------
# Stochastic fairness.


class FairnessProbability(NamedTuple):
  """Monte-Carlo estimate of ``P(tree is fair)`` under random colours.

  Attributes:
    estimate: ``float[]``: fraction of sampled colourings under which the tree is fair.
    stderr: ``float[]``: ``sqrt(p (1 - p) / N)``.
    wilson_low: ``float[]``: lower end of the 95% Wilson score interval.
    wilson_high: ``float[]``: upper end of the 95% Wilson score interval.
    num_fair: ``int32[]``: fair samples.
    num_samples: ``int``: ``N``.
  """

  estimate: jax.Array
  stderr: jax.Array
  wilson_low: jax.Array
  wilson_high: jax.Array
  num_fair: jax.Array
  num_samples: int


@functools.partial(jax.jit, static_argnames=("num_samples", "chunk", "num_colors",
                                             "data_shares", "leaf_rule"))
def _probability_kernel(key, parent, ranges, logits, lo_table, hi_table, num, den, *,
                        num_samples, chunk, num_colors, data_shares, leaf_rule):
  n = logits.shape[0]
  tree, lo_node, hi_node, mixed = _check_setup(parent, ranges, lo_table, hi_table, leaf_rule)
  num_chunks = -(-num_samples // chunk)
  keys = jax.random.split(key, num_chunks)

  def one_chunk(args):
    i, k = args
    cols = jax.random.categorical(k, logits, axis=-1, shape=(chunk, n)).astype(jnp.int32)
    fair = _check_chunk(tree, cols, lo_node, hi_node, mixed, num, den,
                        num_colors=num_colors, data_shares=data_shares)[0]
    valid = i * chunk + jnp.arange(chunk) < num_samples
    return jnp.sum(fair & valid).astype(jnp.int32)

  return jnp.sum(jax.lax.map(one_chunk, (jnp.arange(num_chunks), keys)))


def fairness_probability(key: jax.Array, h: Hierarchy, probs, constraint: Constraint,
                         num_samples: int, *, leaf_children_rule: bool = False,
                         chunk: int = CHUNK) -> FairnessProbability:
  """Probability that ``h`` is fair when point ``i`` has colour ``g`` w.p. ``probs[i, g]``.

  Stochastic fairness (Knittel et al. 2023, Def. 2.4): colours are drawn
  independently per point; the tree is checked under ``num_samples``
  sampled colourings in one vectorised call (processed ``chunk`` colourings
  at a time to bound memory). For :class:`Proportional` without ``shares``,
  each sample is compared with its own shares.

  Args:
    key: a PRNG key (consumed).
    h: a hierarchy over ``n`` leaves.
    probs: ``float[n, c]``, non-negative rows summing to 1 (within 1e-5).
    constraint: a fairness constraint over ``c`` colours.
    num_samples: number of sampled colourings ``N``.
    leaf_children_rule: also apply the Knittel leaf-children rule.
    chunk: colourings evaluated per vectorised step.

  Returns:
    A :class:`FairnessProbability` with the estimate, its standard error
    and a 95% Wilson interval.
  """
  fn = "fairness_probability"
  h = _check_hierarchy(fn, h)
  n = h.num_leaves
  p = _checks.as_float(fn, "probs", probs)
  if p.ndim != 2 or p.shape[0] != n:
    _checks.fail(fn, "probs", f"be float[n, c] with n = {n} rows", f"shape {tuple(p.shape)}")
  c = p.shape[1]
  need_c = constraint_num_colors(constraint)
  if need_c is not None and need_c != c:
    _checks.fail(fn, "probs", f"have {need_c} columns (one per colour of the constraint)",
                 f"{c} columns")
  if _checks.is_concrete(p):
    pn = np.asarray(p, np.float64)
    if not np.all(np.isfinite(pn)) or (pn.size and pn.min() < 0):
      _checks.fail(fn, "probs", "hold finite non-negative probabilities",
                   f"minimum {np.nanmin(pn):.6g}" if np.isfinite(pn).all() else
                   "NaN or infinite entries")
    rows = pn.sum(1)
    if np.any(np.abs(rows - 1) > 1e-5):
      i = int(np.argmax(np.abs(rows - 1)))
      _checks.fail(fn, "probs", "have rows summing to 1", f"row {i} sums to {rows[i]:.6g}")
  num_samples = _checks.check_positive_int(fn, "num_samples", num_samples)
  chunk = min(_checks.check_positive_int(fn, "chunk", chunk), num_samples)
  if not isinstance(leaf_children_rule, (bool, np.bool_)):
    _checks.fail(fn, "leaf_children_rule", "be a bool", repr(leaf_children_rule),
                 TypeError)
  plan = _plan(fn, constraint, n, c)
  logits = jnp.log(p)
  fair = _probability_kernel(key, h.parent, _hier.leaf_ranges(h), logits, plan.lo_table, plan.hi_table,
                             jnp.uint32(plan.num), jnp.uint32(plan.den),
                             num_samples=num_samples, chunk=chunk, num_colors=c,
                             data_shares=plan.data_shares,
                             leaf_rule=bool(leaf_children_rule))
  dtype = _checks.float_dtype()
  nn = jnp.asarray(num_samples, dtype)
  est = fair.astype(dtype) / nn
  stderr = jnp.sqrt(est * (1 - est) / nn)
  z = jnp.asarray(1.959963984540054, dtype)
  center = (est + z**2 / (2 * nn)) / (1 + z**2 / nn)
  half = z / (1 + z**2 / nn) * jnp.sqrt(est * (1 - est) / nn + z**2 / (4 * nn**2))
  return FairnessProbability(est, stderr, jnp.maximum(center - half, 0),
                             jnp.minimum(center + half, 1), fair, num_samples)
