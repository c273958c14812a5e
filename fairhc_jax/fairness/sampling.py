"""Many random colourings at once, from raw random bits: :func:`random_colorings`.

An audit draws colourings by the hundred thousand. ``jax.random.bernoulli``
and ``jax.random.categorical`` spend a 32-bit random word (and float work)
per point; here each word is cut into ``32 / bits`` fields of ``bits`` bits,
and a point's colour is the number of (integer) cumulative thresholds its
field reaches. A balanced coin needs one bit: 32 points per random word.
Measured on the 2-core CPU (2,000 x 30,162 points, while other jobs ran):
``jax.random.bernoulli(key, 0.5, ...)`` 3.56 s, the 1-bit words alone
0.11 s and ``random_colorings`` (the words cut into ``int32`` colours)
0.15-0.32 s (``benchmarks/bench_audit.py`` prints both draws side by side).
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks

FIELD_BITS = (1, 2, 4, 8, 16)
"""Allowed ``bits`` per draw (each divides 32)."""

DEFAULT_BITS = 16
"""Resolution used when the probabilities are not all on a ``2^-bits`` grid with ``bits <= 16``."""


def exact_bits(probs) -> Optional[int]:
  """The smallest ``bits`` in :data:`FIELD_BITS` with every ``probs * 2^bits`` an integer.

  Args:
    probs: ``float[..., c]``, concrete.

  Returns:
    The number of bits, or ``None`` when no allowed resolution is exact.
  """
  p = np.asarray(probs, np.float64)
  for bits in FIELD_BITS:
    scaled = p * (1 << bits)
    if np.all(scaled == np.round(scaled)):
      return bits
  return None


def thresholds(probs, bits: int):
  """``int32[..., c - 1]``: ``round(2^bits * (p_0 + ... + p_g))`` for ``g < c - 1``.

  A field ``u`` (uniform on ``0..2^bits - 1``) gets colour ``g`` iff
  ``T_{g-1} <= u < T_g`` (``T_{-1} = 0``, ``T_{c-1} = 2^bits``), so colour
  ``g`` has probability ``(T_g - T_{g-1}) / 2^bits``: exactly ``p_g`` for
  probabilities on the ``2^-bits`` grid, otherwise within ``2^-bits`` (each
  cumulative sum rounded to the nearest grid point, clipped to ``[0,
  2^bits]`` and kept non-decreasing).
  """
  p = jnp.asarray(probs)
  cum = jnp.cumsum(p.astype(_checks.float_dtype()), axis=-1)[..., :-1]
  t = jnp.round(cum * (1 << bits))
  t = jnp.clip(t, 0, 1 << bits)
  return jax.lax.cummax(t, axis=t.ndim - 1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("num_samples", "num_points", "bits"))
def _draw(key, thresh, *, num_samples, num_points, bits):
  per_word = 32 // bits
  words = -(-num_points // per_word)
  w = jax.random.bits(key, (num_samples, words), jnp.uint32)
  shift = (jnp.arange(per_word, dtype=jnp.uint32) * bits)
  fields = (w[:, :, None] >> shift) & jnp.uint32((1 << bits) - 1)     # [S, words, per_word]
  u = fields.reshape(num_samples, words * per_word)[:, :num_points].astype(jnp.int32)
  if thresh.shape[-1] == 1:
    return (u >= thresh[..., 0]).astype(jnp.int32)
  return jnp.sum(u[:, :, None] >= thresh, axis=-1, dtype=jnp.int32)


def random_colorings(key, probs, num_samples: int, num_points: Optional[int] = None, *,
                     bits: Optional[int] = None) -> jax.Array:
  """``num_samples`` random colourings, point ``i`` of colour ``g`` w.p. ``probs[i, g]``.

  Points and colourings are independent. Each draw takes ``bits`` random
  bits (``32 / bits`` draws per random 32-bit word of ``jax.random.bits``):
  a field ``u`` uniform on ``0..2^bits - 1`` gets colour ``g`` iff
  ``T_{g-1} <= u < T_g`` with the integer thresholds ``T_g = round(2^bits *
  (p_0 + ... + p_g))`` (:func:`thresholds`). So the colour probabilities
  are exact when every ``probs * 2^bits`` is an integer (a balanced coin
  with ``bits = 1``, thirds never), and otherwise within ``2^-bits`` of
  ``probs``. ``bits=None`` takes the smallest exact resolution for concrete
  ``probs`` (1 for ``[1/2, 1/2]``, 2 for ``[1/4, 3/4]``), else
  :data:`DEFAULT_BITS` = 16 (within 1.5e-5). The draws differ from those of
  ``jax.random.bernoulli`` / ``categorical`` with the same key.

  Args:
    key: a JAX PRNG key (any implementation, e.g. ``jax.random.key(0)``).
    probs: ``float[c]`` (the same distribution for every point; then
      ``num_points`` is required) or ``float[n, c]``: non-negative rows
      summing to 1 within 1e-5.
    num_samples: ``S >= 1`` colourings (static).
    num_points: ``n`` for ``float[c]`` probabilities (static; must match
      ``probs``' rows when those are given per point).
    bits: one of :data:`FIELD_BITS` (static), or ``None`` (see above).

  Returns:
    ``int32[S, n]`` colourings with values in ``[0, c)``, ready for
    :func:`~fairhc_jax.fairness.is_fair` and the other checks.
  """
  fn = "random_colorings"
  key = _checks.check_key(fn, key)
  p = _checks.as_float(fn, "probs", probs)
  if p.ndim not in (1, 2) or p.shape[-1] < 1:
    _checks.fail(fn, "probs", "be float[c] or float[n, c] with c >= 1",
                 f"shape {tuple(p.shape)}")
  num_samples = _checks.check_positive_int(fn, "num_samples", num_samples)
  if p.ndim == 1:
    if num_points is None:
      _checks.fail(fn, "num_points", "be given (an integer >= 1) when probs is float[c]",
                   "None", TypeError)
    num_points = _checks.check_positive_int(fn, "num_points", num_points)
  else:
    if num_points is not None and int(num_points) != p.shape[0]:
      _checks.fail(fn, "num_points", f"match probs' {p.shape[0]} rows", repr(num_points))
    num_points = int(p.shape[0])
    if num_points < 1:
      _checks.fail(fn, "probs", "have at least one row", f"shape {tuple(p.shape)}")
  if _checks.is_concrete(p):
    pn = np.asarray(p, np.float64)
    if not np.all(np.isfinite(pn)) or pn.min() < 0:
      _checks.fail(fn, "probs", "hold finite non-negative probabilities",
                   "NaN or infinite entries" if not np.all(np.isfinite(pn))
                   else f"minimum {pn.min():.6g}")
    rows = pn.sum(-1).reshape(-1)
    if np.any(np.abs(rows - 1) > 1e-5):
      i = int(np.argmax(np.abs(rows - 1)))
      _checks.fail(fn, "probs", "have rows summing to 1", f"row {i} sums to {rows[i]:.6g}")
  if bits is None:
    bits = (exact_bits(p) if _checks.is_concrete(p) else None) or DEFAULT_BITS
  elif isinstance(bits, (bool, np.bool_)) or bits not in FIELD_BITS:
    _checks.fail(fn, "bits", f"be one of {FIELD_BITS}", repr(bits))
  c = p.shape[-1]
  if c == 1:
    return jnp.zeros((num_samples, num_points), jnp.int32)
  return _draw(key, thresholds(p, bits), num_samples=num_samples, num_points=num_points,
               bits=int(bits))
