"""Exact 64-bit unsigned arithmetic on pairs of ``uint32`` words ``(hi, lo)``.

Used by the proportional rule with the data's own shares, whose exact test
``|count * n - n_g * size| * den <= num * size * n`` needs about
``2 log2(n) + log2(den)`` bits: exact without ``jax_enable_x64`` as long as
``n^2 * den < 2^64`` (checked by :func:`.constraints.plan`). Integer
element-wise operations only, so results are identical on every backend.
"""

from __future__ import annotations

import jax.numpy as jnp

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


def proportional_flags(counts, sizes, totals, n, num, den):
  """(below, above) of ``|count/size - n_g/n| <= num/den``, exactly.

  Args (broadcasting): counts ``int32[m, c, b]``, sizes ``int32[m, 1, 1]``,
  totals ``int32[1, c, b]``; n, num, den uint32 scalars.

  Returns:
    ``(below, above)``, ``bool`` arrays of the broadcast shape.
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
