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

import math
from fractions import Fraction
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np


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


# Each statistic is its own jitted reduction: XLA:CPU runs a single-output
# reduction multi-threaded at memory speed, but fused multi-output reductions
# (and isfinite/all) ran 5-15x slower in measurements at n = 16,000.
_nan_if_not_finite = jax.jit(lambda d: jnp.sum(d * 0))  # inf * 0 = nan
_min = jax.jit(jnp.min)
_max = jax.jit(jnp.max)
_max_abs_diag = jax.jit(lambda d: jnp.max(jnp.abs(d.reshape(-1)[::d.shape[0] + 1])))
_max_asymmetry = jax.jit(lambda d: jnp.max(jnp.abs(d - d.T)))
_row_sums = jax.jit(lambda d: jnp.sum(d, axis=1))
_col_sums = jax.jit(lambda d: jnp.sum(d, axis=0))

FULL_SYMMETRY_CHECK_MAX_N = 8192
"""Up to this ``n`` symmetry is checked entry by entry (``D - D^T``); above
it, the transpose's ``n x n`` temporary costs seconds (13 s at n = 32,000),
so every row sum is compared with its column sum instead (a reduction pass),
which catches any asymmetry larger than ~1e-4 of a row's total."""


def _asymmetry(m) -> tuple[float, str]:
  """(relative asymmetry, description) of a square matrix."""
  n = m.shape[0]
  if n <= FULL_SYMMETRY_CHECK_MAX_N:
    return float(_max_asymmetry(m)), "max |{a}[i, j] - {a}[j, i]|"
  rows = np.asarray(_row_sums(m), np.float64)
  cols = np.asarray(_col_sums(m), np.float64)
  rel = np.abs(rows - cols) / np.maximum(np.maximum(np.abs(rows), np.abs(cols)), 1e-30)
  return float(rel.max()), "max relative |row sum - column sum| of {a}"


def check_square_matrix(
    fn: str,
    arg: str,
    m: Any,
    *,
    kind: str = "distance",
    zero_diagonal: bool = False,
):
  """Validates a square, symmetric, finite, non-negative matrix.

  Args:
    fn: public function name, for the message.
    arg: argument name, for the message.
    m: ``float[n, n]`` matrix.
    kind: "distance" or "similarity", for the message.
    zero_diagonal: also require a zero diagonal.

  Returns:
    The matrix as a float JAX array.
  """
  m = as_float(fn, arg, m)
  if m.ndim != 2 or m.shape[0] != m.shape[1]:
    fail(fn, arg, f"be a square {kind} matrix float[n, n]",
         f"shape {tuple(m.shape)}")
  if m.shape[0] == 0:
    fail(fn, arg, f"be a non-empty {kind} matrix", "shape (0, 0)")
  if not is_concrete(m):
    return m
  if not np.isfinite(float(_nan_if_not_finite(m))):
    bad = np.argwhere(~np.isfinite(np.asarray(m)))[0]
    fail(fn, arg, f"be finite (a {kind} matrix)",
         f"a NaN or infinite entry at [{bad[0]}, {bad[1]}]")
  lo = float(_min(m))
  if lo < 0:
    fail(fn, arg, f"be non-negative (a {kind} matrix)", f"minimum entry {lo:.6g}")
  scale = max(float(_max(m)), 1e-30)
  tol = 1e-5 if m.dtype == jnp.float32 else 1e-12
  asym, what = _asymmetry(m)
  if m.shape[0] <= FULL_SYMMETRY_CHECK_MAX_N:
    if asym > tol * scale:
      fail(fn, arg, f"be symmetric (a {kind} matrix)",
           f"{what.format(a=arg)} = {asym:.6g}")
  elif asym > max(10 * tol, 1e-4):
    fail(fn, arg, f"be symmetric (a {kind} matrix)", f"{what.format(a=arg)} = {asym:.6g}")
  if zero_diagonal and float(_max_abs_diag(m)) > tol * scale:
    diag = float(_max_abs_diag(m))
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
    # NumPy: integer min/max reductions are slow on XLA:CPU.
    cn = np.asarray(c)
    lo = int(cn.min()) if cn.size else 0
    hi = int(cn.max()) if cn.size else 0
    if num_colors is None:
      num_colors = hi + 1
    if lo < 0 or hi >= num_colors:
      bad = lo if lo < 0 else hi
      fail(fn, arg, f"hold colours in [0, {num_colors})",
           f"colour {bad}" + recode_hint(cn))
  elif num_colors is None:
    fail(fn, "num_colors", "be given when colours are traced", "None")
  return c, int(num_colors)


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
