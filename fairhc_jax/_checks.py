"""Input validation shared by the public entry points.

Every public function validates its arguments here, in Python, *before* any
tracing, and raises with one message format::

    "<function>: <argument> must <expectation>, got <what came>"

Value checks (finiteness, symmetry, ranges) need concrete arrays; when an
argument is a JAX tracer (the caller wrapped our function in ``jit`` or
``vmap``) only the static checks (ndim, shape, dtype kind) run, and the
value checks are the caller's responsibility.
"""

from __future__ import annotations

import functools
import math
import weakref
from fractions import Fraction
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fairhc_jax import _parallel


def is_concrete(x: Any) -> bool:
  """True when ``x`` holds values (not a tracer inside jit/vmap/grad)."""
  return not isinstance(x, jax.core.Tracer)


def fail(fn: str, arg: str, expected: str, got: Any, exc=ValueError):
  """Raises ``exc`` with the library's message format."""
  raise exc(f"{fn}: {arg} must {expected}, got {got}")


def describe(x: Any) -> str:
  """A short description of an argument for error messages."""
  if hasattr(x, "shape") and hasattr(x, "dtype"):
    return f"array of shape {tuple(x.shape)} and dtype {x.dtype}"
  if isinstance(x, (list, tuple)):
    return f"{type(x).__name__} of length {len(x)}"
  return repr(x)


def as_array(fn: str, arg: str, x: Any):
  """Converts array-likes to a JAX array, keeping tracers as they are."""
  if isinstance(x, jax.core.Tracer):
    return x
  if x is None:
    fail(fn, arg, "be an array", "None", TypeError)
  try:
    arr = np.asarray(x) if not isinstance(x, jax.Array) else x
  except Exception:  # pragma: no cover - exotic inputs
    fail(fn, arg, "be array-like", type(x).__name__, TypeError)
  if arr.dtype == object or arr.dtype.kind not in "biuf":
    fail(fn, arg, "be a numeric array", describe(arr), TypeError)
  return jnp.asarray(arr)


def float_dtype():
  """The default float dtype: float64 under x64, else float32."""
  return jnp.result_type(float)


def as_float(fn: str, arg: str, x: Any):
  """A float array (float32, or float64 under x64; float inputs keep their dtype)."""
  arr = as_array(fn, arg, x)
  if not jnp.issubdtype(arr.dtype, jnp.floating):
    arr = arr.astype(float_dtype())
  return arr


def check_ndim(fn: str, arg: str, x, ndim: int, legend: str):
  if x.ndim != ndim:
    fail(fn, arg, f"be {ndim}-D ({legend})", f"shape {tuple(x.shape)}")


# ---------------------------------------------------------------------------
# One-pass validation of an n x n matrix.
#
# XLA:CPU transposes slowly (a blocked max |D - D^T| ran 6-17x a jnp.sum at
# n = 4,000-16,000 on this machine), so symmetry is tested without one: every
# entry's bit pattern ``b[i, j]`` (an unsigned integer, W = 32 bits for
# float32, 64 for float64; 16-bit floats widened to 32) is mixed with
# ``h = b ^ (b >> (bits / 2))`` (a bijection, applied entrywise, so a
# symmetric matrix stays symmetric) and two random-weighted integer sums,
# ``y[i] = sum_j h[i, j] r[j]`` (per row) and ``z[i] = sum_j h[j, i] r[j]``
# (per column), are accumulated modulo 2^W in the same pass over contiguous
# row slabs. Integer addition is exact and order-free, so a bitwise-symmetric
# matrix gives ``y == z`` exactly, whatever the order of the sums: the test
# never rejects a symmetric matrix. False-accept probability (over the odd
# weights ``r``, drawn once per process from OS entropy, so independent of
# any input): ``y[i] - z[i] = sum_j (h[i, j] - h[j, i]) r[j]``. Where row i
# has exactly one mismatched entry the difference is an odd multiple of a
# power of two below 2^W times an odd weight, never 0: the test cannot miss
# it (one corrupted or one-sided entry is always caught). Otherwise, if
# ``2^t`` is the lowest bit at which ``h[i, j]`` and ``h[j, i]`` differ over
# the mismatched ``j`` of a row, that row misses with probability at most
# ``2^(t + 1 - W)``. Thanks to the mix, ``t < bits / 2`` unless the lowest
# differing bit ``p < bits / 2`` of the raw patterns is paired with a
# differing bit ``p + bits / 2``: float32 entries whose patterns differ only
# in their exponent (1 vs 2, 3 vs 6) or their top mantissa bits (1 vs 1.5)
# get ``t <= 15`` (miss <= 2^-16 per row); float64 entries under the same
# condition get ``t <= 31`` (miss <= 2^-32). The worst case over all patterns
# is ``t = W - 2`` for non-negative entries (miss <= 1/2 for that row).
# The rows share the weights (their misses are not independent events), so
# the bound for a matrix is that of its best row. Only matrices that pass
# the other checks matter here: a negative entry is rejected exactly. A matrix that is symmetric only up to rounding (a
# Gram-formula distance matrix, a transposed float product) fails the bitwise
# test and is then checked entry by entry against the tolerance
# (``_max_asymmetry``, tiles of D and D^T: exact, slower, run only on that
# path).
#
# The same pass keeps the elementwise maximum of the raw patterns: for
# non-negative finite entries the unsigned order of the bit patterns is the
# float order, and any negative entry (sign bit) or NaN/inf (exponent all
# ones) has a pattern at or above that of +inf. So one unsigned maximum gives
# ``max D`` when every entry is non-negative and finite, and flags every
# other matrix, which then gets an exact float pass (minimum, finiteness) to
# name what is wrong (or to accept negative zeros).
#
# Measured (XLA:CPU, 2 cores, n = 4,000 and 16,000, CPU time, other jobs
# running): the previous form (row hash, column hash by reduction, float min
# and max with a NaN select: four reductions, each its own loop over the
# slab, with 64K-entry slabs) cost 5.4-5.6x a jnp.sum; this one 2.4-3.1x.
# Integer reductions to a scalar and integer column reductions are slow on
# XLA:CPU (5-10x a sum over the whole matrix) while elementwise integer work
# is cheap, so the column hash and the maximum are accumulated elementwise
# into ``[rows, n]`` buffers (reduced once at the end), and only the row hash
# is a reduction. Slabs of 2^15 entries (about 128 KB in float32) were the
# fastest of 2^14-2^17: bigger slabs leave the L2 cache between the body's
# fusions, smaller ones pay the loop's per-iteration cost.
#
# The loop runs on one core (XLA:CPU does not split a while loop's body
# across threads), so on CPU the slabs are cut into one range per core, each
# one dispatch of the same compiled part (:func:`_pass_part`) from a thread
# pool (:mod:`fairhc_jax._parallel`), combined exactly: the parts' row hashes
# by an elementwise maximum (a row is 0 where a part did not read it, and the
# same value in every part that did), the column sums mod 2^W, the maxima by
# a maximum; so the result never depends on the number of ranges.
#
# Whole-matrix alternatives measured (issue 10 asked for a check under 2x a
# ``jnp.sum``; ``benchmarks/bench_floors.py --validation``, n = 4,096, CPU
# time, other jobs running): float ``min`` or ``max`` alone about 1.1x, both
# in one program 2.0x, ``all(0 <= D < inf)`` 2.3x; ``D == D.T`` 41x, a
# materialised ``D.T`` 11x, 64 x 64 tiles against transposed tiles 7.8x (all
# transposes are slow on XLA:CPU); integer whole-matrix reductions (row or
# column hash, maximum of bit patterns) 6-8x, and any bitcast ahead of a float
# reduction is not fused into the YNNPACK reduction (the n x n integer
# intermediate is materialised: 6.4x for ``sum(float(bits >> 14))``); an
# exact float-only hash (floor, mod 2^16) 3.0x for its sum alone. Only float
# matrix-vector products are cheap (``D @ v`` 0.6x, ``v @ D`` 0.8x), but
# float sums in different orders cannot certify bitwise or 1e-5 symmetry.

SYMMETRY_TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
"""Accepted ``max |D[i, j] - D[j, i]|`` (and ``max |diagonal|`` where a zero
diagonal is required) relative to ``max D``, by dtype; other float dtypes use
the float32 value."""

_SLAB_ELEMENTS = 1 << 15  # entries per row slab of the one-pass check (128 KB in float32)


def _slab_rows(n: int) -> int:
  return int(max(1, min(n, _SLAB_ELEMENTS // max(n, 1))))


@functools.lru_cache(maxsize=8)
def _hash_weights(n: int, utype) -> jax.Array:
  """Random odd weights ``r: uint[n]`` of the symmetry hash (fixed per process).

  Drawn from OS entropy once per ``(n, utype)`` and process, so they are
  independent of every input (the false-accept bound above is over them).
  """
  bits = np.dtype(utype).itemsize * 8
  rng = np.random.default_rng()
  r = rng.integers(0, 2 ** bits - 1, size=n, dtype=np.uint64 if bits == 64 else np.uint32,
                   endpoint=True)
  return jnp.asarray((r | 1).astype(utype))


def _as_bits(a):
  """The bit pattern of a float slab as an unsigned integer array (16-bit widened)."""
  size = np.dtype(a.dtype).itemsize
  if size == 8:
    return lax.bitcast_convert_type(a, jnp.uint64)
  if size == 4:
    return lax.bitcast_convert_type(a, jnp.uint32)
  return lax.bitcast_convert_type(a, jnp.uint16).astype(jnp.uint32)


def _mixed(b, dtype):
  """``b ^ (b >> half)``, half the float's bit width: moves high-bit differences down."""
  half = np.dtype(dtype).itemsize * 4
  return b ^ (b >> np.asarray(half, b.dtype))


_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}  # same-width unsigned type, by bytes


def _inf_bits(dtype) -> int:
  """The bit pattern of +inf in ``dtype``: non-negative finite entries lie below it."""
  return int(np.array(np.inf, dtype=dtype).view(_UINT[np.dtype(dtype).itemsize]))


@functools.partial(jax.jit, static_argnames=("rows", "count"))
def _pass_part(m, r, first, rows: int, count: int):
  """Slabs ``first .. first + count - 1`` of the one pass (a traced ``first``).

  Slab ``t`` covers rows ``[min(t * rows, n - rows), +rows)``: the last real
  slab ends at ``n`` (overlapping the one before it, whose rows it leaves out
  of the column hash), and slabs at or past ``ceil(n / rows)`` repeat the last
  one with no fresh rows, adding nothing. Returns ``(y uint[n], z uint[n],
  top uint[])``: the row hashes of the rows this part read (0 elsewhere), the
  part's column-hash sums and its maximum bit pattern.
  """
  n = m.shape[0]
  ut = r.dtype
  idx = jnp.arange(rows)

  def body(i, carry):
    y, z, top = carry
    t = first + i
    s = jnp.minimum(t * rows, n - rows)  # the last slab ends at n (overlap)
    b = _as_bits(lax.dynamic_slice_in_dim(m, s, rows, axis=0))  # uint[rows, n]
    h = _mixed(b, m.dtype)
    rb = lax.dynamic_slice_in_dim(r, s, rows)
    fresh = (idx + s) >= t * rows  # rows not already in z
    rb = jnp.where(fresh, rb, jnp.zeros((), ut))
    y = lax.dynamic_update_slice_in_dim(y, jnp.sum(h * r[None, :], axis=1, dtype=ut), s, 0)
    z = z + h * rb[:, None]  # column hash, reduced over the slab rows at the end
    top = jnp.maximum(top, b)
    return y, z, top

  init = (jnp.zeros(n, ut), jnp.zeros((rows, n), ut), jnp.zeros((rows, n), ut))
  # Two slabs per loop step: 6-11% less CPU than one (four or eight: more).
  y, z, top = lax.fori_loop(0, count, body, init, unroll=2)
  return y, jnp.sum(z, axis=0, dtype=ut), jnp.max(top)


@jax.jit
def _combine_parts(m, ys, zs, tops):
  """``(bitwise_symmetric, max_bits, max_abs_diag)`` from the parts' outputs.

  A row's hash is 0 in the parts that did not read it and the same value in
  every part that did (the repeated last slab), so the parts' row hashes
  combine by an elementwise maximum; the column hashes add (mod 2^W).
  """
  n = m.shape[0]
  y = functools.reduce(jnp.maximum, ys)
  z = functools.reduce(jnp.add, zs)
  top = functools.reduce(jnp.maximum, tops)
  diag = jnp.max(jnp.abs(m.reshape(-1)[::n + 1]))
  return jnp.all(y == z), top, diag


def _default_parts(m) -> int:
  return _parallel.default_parts(m)


def _one_pass(m, r, rows: int, parts: Optional[int] = None):
  """One pass over ``m: float[n, n]`` in contiguous slabs of ``rows`` rows.

  The slabs are split into ``parts`` equal ranges, each one jitted dispatch
  of :func:`_pass_part` (the same compiled program, a traced first slab),
  run concurrently from a thread pool when ``parts > 1``, and combined
  exactly (:func:`_combine_parts`): the result does not depend on ``parts``.

  Args:
    m: ``float[n, n]``.
    r: ``uint[n]`` odd hash weights (:func:`_hash_weights`, uint32 or uint64
      as wide as ``m``'s bit patterns).
    rows: rows per slab.
    parts: concurrent dispatches; ``None`` picks
      :func:`fairhc_jax._parallel.default_parts` (one per core on CPU).

  Returns:
    ``(bitwise_symmetric bool[], max_bits uint[], max_abs_diag float[])``;
    ``max_bits`` is the largest bit pattern (see the comment above).
  """
  m = jnp.asarray(m)
  r = jnp.asarray(r)
  n = m.shape[0]
  rows = int(max(1, min(rows, n)))
  nb = -(-n // rows)
  if parts is None:
    parts = _default_parts(m)
  parts = int(max(1, min(parts, nb)))
  count = -(-nb // parts)
  outs = _parallel.run_parts(lambda first: _pass_part(m, r, first, rows, count),
                             [p * count for p in range(parts)])
  ys, zs, tops = zip(*outs)
  return _combine_parts(m, ys, zs, tops)


@jax.jit
def _min_finite(m):
  """``(all finite, min)`` of a float matrix (the rare path of the check)."""
  return jnp.all(jnp.isfinite(m)), jnp.min(m), jnp.max(m)


_TILE = 256


@jax.jit
def _max_asymmetry(m):
  """``max |m[i, j] - m[j, i]|``, over pairs of tiles ``(I, J)``, ``I <= J`` (exact)."""
  n = m.shape[0]
  t = min(_TILE, n)
  nb = -(-n // t)
  ti, tj = np.triu_indices(nb)
  ti = jnp.asarray(ti, jnp.int32)
  tj = jnp.asarray(tj, jnp.int32)

  def body(k, acc):
    i = jnp.minimum(ti[k] * t, n - t)
    j = jnp.minimum(tj[k] * t, n - t)
    a = lax.dynamic_slice(m, (i, j), (t, t))
    b = lax.dynamic_slice(m, (j, i), (t, t))
    return jnp.maximum(acc, jnp.max(jnp.abs(a - b.T)))

  return lax.fori_loop(0, ti.shape[0], body, jnp.zeros((), m.dtype))


def _tolerance(dtype) -> float:
  return SYMMETRY_TOLERANCE.get(np.dtype(dtype).name, SYMMETRY_TOLERANCE["float32"])


def _first_bad(m, bad):
  """``(i, j)`` of the first entry where ``bad(row)`` holds (NumPy, row by row)."""
  a = np.asarray(m)
  rows = np.flatnonzero(bad(a).any(axis=1))
  i = int(rows[0])
  return i, int(np.flatnonzero(bad(a[i]))[0])


# Matrices that passed the value checks: a JAX array is immutable, so one
# that passed stays valid for as long as it lives. Keyed by ``id``, holding a
# weak reference (an id reused after the array is freed never matches) and
# the figures the zero-diagonal test needs (``max m``, ``max |diagonal|``).
# NumPy inputs are never remembered (they can change in place).
_VALIDATED: dict = {}
_VALIDATED_MAX = 64


def _remember(m, hi: float, diag: float):
  key = id(m)
  try:
    ref = weakref.ref(m, lambda _, key=key: _VALIDATED.pop(key, None))
  except TypeError:  # pragma: no cover - not weak-referenceable
    return
  if len(_VALIDATED) >= _VALIDATED_MAX:
    _VALIDATED.pop(next(iter(_VALIDATED)))
  _VALIDATED[key] = (ref, hi, diag)


def _recalled(m):
  """``(hi, diag)`` if ``m`` itself passed the value checks before, else None."""
  hit = _VALIDATED.get(id(m))
  if hit is not None and hit[0]() is m:
    return hit[1], hit[2]
  return None


def forget_validated():
  """Forgets every matrix remembered as checked (the next calls re-check)."""
  _VALIDATED.clear()


def check_square_matrix(
    fn: str,
    arg: str,
    m: Any,
    *,
    kind: str = "distance",
    zero_diagonal: bool = False,
    validate: bool = True,
):
  """Validates a square, symmetric, finite, non-negative matrix in one pass.

  One blocked pass over the matrix (see the comment above ``_one_pass``; on
  CPU cut into concurrent row ranges, one per core):
  finiteness and non-negativity (one unsigned maximum of the bit patterns),
  bitwise symmetry (an exact integer hash of rows against columns; it never
  rejects a symmetric matrix and misses an asymmetric one with the
  probability stated there, zero when some row has a single mismatched
  entry) and the diagonal. A matrix with a negative entry, a negative zero or
  a NaN/inf gets one more, exact, float pass that names the fault.

  A JAX array that passed is remembered (weakly, by identity: JAX arrays are
  immutable), so passing the same array again, to this or any other public
  function, skips the pass; only the zero-diagonal test, from the remembered
  figures, runs again. :func:`forget_validated` clears the memory. Only a matrix that is not
  bitwise symmetric gets a second, entrywise pass
  (``max |m[i, j] - m[j, i]| <= tol * max m``, ``tol`` from
  :data:`SYMMETRY_TOLERANCE`). The messages name the first failing
  property in the order finite, non-negative, symmetric, zero diagonal.

  Args:
    fn: public function name, for the message.
    arg: argument name, for the message.
    m: ``float[n, n]`` matrix.
    kind: "distance" or "similarity", for the message.
    zero_diagonal: also require a zero diagonal (``max |diag| <= tol * max``).
    validate: ``False`` skips the value checks (the shape checks still
      run): for a matrix the caller has already checked, e.g. with
      :func:`fairhc_jax.check_distances`.

  Returns:
    The matrix as a float JAX array.
  """
  m = as_float(fn, arg, m)
  if m.ndim != 2 or m.shape[0] != m.shape[1]:
    fail(fn, arg, f"be a square {kind} matrix float[n, n]",
         f"shape {tuple(m.shape)}")
  if m.shape[0] == 0:
    fail(fn, arg, f"be a non-empty {kind} matrix", "shape (0, 0)")
  if not validate or not is_concrete(m):
    return m
  tol = _tolerance(m.dtype)
  seen = _recalled(m) if isinstance(m, jax.Array) else None
  if seen is not None:
    hi, diag = seen
    if zero_diagonal and diag > tol * max(hi, 1e-30):
      fail(fn, arg, "have a zero diagonal", f"max |diagonal| = {diag:.6g}")
    return m
  n = m.shape[0]
  bits = np.dtype(m.dtype).itemsize * 8
  utype = np.uint64 if bits == 64 else np.uint32
  r = _hash_weights(n, utype)
  sym, top, diag = (np.asarray(v) for v in _one_pass(m, r, _slab_rows(n)))
  diag = float(diag)
  if int(top) < _inf_bits(m.dtype):
    # Every entry non-negative and finite: the largest pattern is max m.
    hi = float(np.array(int(top), dtype=_UINT[np.dtype(m.dtype).itemsize]).view(m.dtype))
  else:
    finite, lo, hi = (np.asarray(v) for v in _min_finite(m))
    if not bool(finite):
      i, j = _first_bad(m, lambda a: ~np.isfinite(a))
      fail(fn, arg, f"be finite (a {kind} matrix)",
           f"a NaN or infinite entry at [{i}, {j}]")
    lo, hi = float(lo), float(hi)
    if lo < 0:
      fail(fn, arg, f"be non-negative (a {kind} matrix)", f"minimum entry {lo:.6g}")
  scale = max(hi, 1e-30)
  if not bool(sym):
    asym = float(_max_asymmetry(m))
    if asym > tol * scale:
      fail(fn, arg, f"be symmetric (a {kind} matrix)",
           f"max |{arg}[i, j] - {arg}[j, i]| = {asym:.6g}")
  _remember(m, hi, diag)
  if zero_diagonal and diag > tol * scale:
    fail(fn, arg, "have a zero diagonal", f"max |diagonal| = {diag:.6g}")
  return m


def check_points(fn: str, arg: str, x: Any):
  """Validates a finite point matrix ``float[n, d]``; returns it as floats."""
  x = as_float(fn, arg, x)
  if x.ndim != 2:
    fail(fn, arg, "be a 2-D point matrix float[n, d]", f"shape {tuple(x.shape)}")
  if x.shape[0] == 0:
    fail(fn, arg, "hold at least one point", f"shape {tuple(x.shape)}")
  if is_concrete(x) and not bool(jnp.all(jnp.isfinite(x))):
    bad = np.argwhere(~np.isfinite(np.asarray(x)))[0]
    fail(fn, arg, "be finite", f"a NaN or infinite value at row {bad[0]}, column {bad[1]}")
  return x


def check_colors(
    fn: str,
    arg: str,
    colors: Any,
    n: int,
    num_colors: Optional[int] = None,
    *,
    batched: bool = True,
):
  """Validates a colouring ``int[n]`` (or a batch ``int[B, n]`` if ``batched``).

  Returns:
    ``(colors as int32 array, num_colors)``; ``num_colors`` defaults to
    ``max(colors) + 1`` when concrete.
  """
  c = as_array(fn, arg, colors)
  if not jnp.issubdtype(c.dtype, jnp.integer) and not jnp.issubdtype(c.dtype, jnp.bool_):
    if is_concrete(c) and bool(jnp.all(c == jnp.round(c))):
      pass
    else:
      fail(fn, arg, "hold integer colours", describe(c), TypeError)
  ok_ndim = (1, 2) if batched else (1,)
  if c.ndim not in ok_ndim:
    legend = "int[n] or a batch int[B, n]" if batched else "int[n]"
    fail(fn, arg, f"be {legend}", f"shape {tuple(c.shape)}")
  if c.shape[-1] != n:
    fail(fn, arg, f"have one colour per leaf (length {n})",
         f"length {c.shape[-1]}")
  c = c.astype(jnp.int32)
  if num_colors is not None:
    num_colors = check_positive_int(fn, "num_colors", num_colors)
  if is_concrete(c):
    spread = len(getattr(getattr(c, "sharding", None), "device_set", ())) > 1
    if spread and c.size:
      # A batch split over devices: reduce where it lies (two scalars come
      # back), never gather it to the host.
      lo, hi = (int(v) for v in _min_max(c))
      cn = None
    else:
      # NumPy: integer min/max reductions are slow on XLA:CPU.
      cn = np.asarray(c)
      # One pass when the colours are in range: the bitwise OR of int32
      # values is negative iff one is, and bounds them all from above
      # (0 <= OR < c puts every value in [0, c)); else exact min and max.
      acc = int(np.bitwise_or.reduce(cn, axis=None)) if cn.size else 0
      if num_colors is not None and 0 <= acc < num_colors:
        lo, hi = 0, acc
      else:
        lo = int(cn.min()) if cn.size else 0
        hi = int(cn.max()) if cn.size else 0
    if num_colors is None:
      num_colors = hi + 1
    if lo < 0 or hi >= num_colors:
      bad = lo if lo < 0 else hi
      fail(fn, arg, f"hold colours in [0, {num_colors})",
           f"colour {bad}" + recode_hint(np.asarray(c) if cn is None else cn))
  elif num_colors is None:
    fail(fn, "num_colors", "be given when colours are traced", "None")
  return c, int(num_colors)


_min_max = jax.jit(lambda c: (jnp.min(c), jnp.max(c)))


RECODE = "np.unique(groups, return_inverse=True)[1]"
"""How the messages tell users to recode raw group labels to ``0..c-1``."""


def recode_hint(values) -> str:
  """``"; ..."`` advice to recode when ``values`` look like raw labels, else ``""``.

  Colours are codes ``0..c-1`` (their order is meaningful to the constraints,
  e.g. ``RepresentationBounds.lower[g]``), so labels are never remapped
  silently; labels that do not start at 0 (e.g. 1/2 codes) or skip codes get
  a hint.
  """
  v = np.unique(np.asarray(values).reshape(-1))
  if v.size == 0:
    return ""
  if v[0] >= 1 or (v[0] == 0 and v[-1] >= v.size):
    shown = ", ".join(str(x) for x in v[:6].tolist()) + (", ..." if v.size > 6 else "")
    return (f" (the values present are {shown}: colours are codes 0..c-1; recode raw "
            f"group labels with {RECODE})")
  return ""


def check_every_color_present(fn: str, arg: str, colors, num_colors: int):
  """Raises unless every colour ``0..num_colors-1`` has a point; returns the counts."""
  cn = np.asarray(colors).reshape(-1)
  counts = np.bincount(cn, minlength=num_colors)
  empty = np.flatnonzero(counts == 0)
  if empty.size:
    fail(fn, arg, f"give every colour in [0, {num_colors}) at least one point",
         f"no point of colour {int(empty[0])}" + recode_hint(cn))
  return counts


def check_weights(fn: str, arg: str, weights: Any, n: int):
  """Validates integer vertex weights ``int[n]`` >= 1; None means all ones."""
  if weights is None:
    return None
  w = as_array(fn, arg, weights)
  if w.ndim != 1 or w.shape[0] != n:
    fail(fn, arg, f"be int[{n}] (one weight per point)", f"shape {tuple(w.shape)}")
  if is_concrete(w):
    wn = np.asarray(w)
    if not np.all(np.isfinite(wn)) or not np.all(wn == np.round(wn)):
      fail(fn, arg, "hold positive integers", "non-integer values")
    if wn.size and wn.min() < 1:
      fail(fn, arg, "hold positive integers", f"minimum {wn.min()}")
  return w


def check_positive_int(fn: str, arg: str, v: Any, minimum: int = 1) -> int:
  if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
    fail(fn, arg, f"be an integer >= {minimum}", repr(v), TypeError)
  if v < minimum:
    fail(fn, arg, f"be an integer >= {minimum}", repr(v))
  return int(v)


def check_choice(fn: str, arg: str, v: Any, options) -> Any:
  if v not in options:
    fail(fn, arg, "be one of " + ", ".join(repr(o) for o in options), repr(v))
  return v


def as_fraction(fn: str, arg: str, x, *, max_denominator: int = 10**6) -> Fraction:
  """Converts a threshold to an exact ``Fraction``.

  ``Fraction``/``int``/``(num, den)`` are exact; floats (and 0-d arrays) are
  rounded with ``Fraction(x).limit_denominator(max_denominator)``, so ``1/3``
  given as a float means exactly one third.
  """
  if isinstance(x, Fraction):
    return x
  if isinstance(x, (bool, np.bool_)):
    fail(fn, arg, "be a rational number (Fraction, int, (num, den) or float)",
                 repr(x), TypeError)
  if isinstance(x, (int, np.integer)):
    return Fraction(int(x))
  if isinstance(x, tuple):
    if (len(x) != 2 or not all(isinstance(v, (int, np.integer))
                               and not isinstance(v, (bool, np.bool_)) for v in x)):
      fail(fn, arg, "be a (numerator, denominator) pair of integers",
                   repr(x), TypeError)
    if int(x[1]) == 0:
      fail(fn, arg, "have a non-zero denominator", repr(x))
    return Fraction(int(x[0]), int(x[1]))
  if isinstance(x, (float, np.floating)) or (
      hasattr(x, "shape") and np.ndim(x) == 0):
    v = float(x)
    if not math.isfinite(v):
      fail(fn, arg, "be finite", repr(x))
    return Fraction(v).limit_denominator(max_denominator)
  fail(fn, arg, "be a rational number (Fraction, int, (num, den) or float)",
               repr(x), TypeError)


def check_key(fn: str, key, arg: str = "key"):
  """A single PRNG key: a typed key (``jax.random.key``) or a raw ``uint32[2]``."""
  how = "be a JAX PRNG key (make one from a seed with jax.random.key(seed))"
  if isinstance(key, (bool, int, np.integer)):
    fail(fn, arg, how, f"the integer {int(key)}: pass jax.random.key({int(key)})",
         TypeError)
  if not hasattr(key, "dtype"):
    fail(fn, arg, how, repr(key), TypeError)
  if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
    if key.shape != ():
      fail(fn, arg, "be a single PRNG key (one of the keys of jax.random.split)",
           f"a key array of shape {tuple(key.shape)}")
  elif not (key.dtype == np.uint32 and tuple(key.shape) == (2,)):
    fail(fn, arg, how, describe(key), TypeError)
  return key
