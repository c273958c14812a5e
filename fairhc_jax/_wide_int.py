"""Exact 64-bit unsigned arithmetic on pairs of ``uint32`` words ``(hi, lo)``.

Integer element-wise operations only, so results are identical on every
backend and need no ``jax_enable_x64``. Used by the proportional fairness rule
(``fairness.checks``) and by the exact ``eps`` comparisons of the Knittel et
al. reductions.
"""

from __future__ import annotations

import jax.numpy as jnp

_U32 = jnp.uint32


def mul_wide(a, b):
  """Exact ``a * b`` of two uint32 arrays as a (hi, lo) pair of uint32 words."""
  m16 = _U32(0xFFFF)
  a0, a1 = a & m16, a >> 16
  b0, b1 = b & m16, b >> 16
  p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
  mid = (p00 >> 16) + (p01 & m16) + (p10 & m16)
  lo = (p00 & m16) | ((mid & m16) << 16)
  hi = p11 + (p01 >> 16) + (p10 >> 16) + (mid >> 16)
  return hi, lo


def sub64(x, y):
  """``x - y`` for (hi, lo) pairs with ``x >= y``."""
  lo = x[1] - y[1]
  borrow = (x[1] < y[1]).astype(_U32)
  return x[0] - y[0] - borrow, lo


def le64(x, y):
  """``x <= y`` for (hi, lo) pairs."""
  return (x[0] < y[0]) | ((x[0] == y[0]) & (x[1] <= y[1]))


def mul64x32(x, b):
  """``x * b`` for a (hi, lo) pair and uint32 ``b``; exact when it fits 64 bits."""
  hi, lo = mul_wide(x[1], b)
  return hi + x[0] * b, lo


def gt64(x, y):
  """``x > y`` for (hi, lo) pairs."""
  return (x[0] > y[0]) | ((x[0] == y[0]) & (x[1] > y[1]))

