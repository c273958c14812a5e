"""The proportional rule with the data's own shares, decided exactly.

``|count * n - n_g * size| * den <= num * size * n`` needs about
``2 log2(n) + log2(den)`` bits: exact without ``jax_enable_x64`` as long as
``n^2 * den < 2^64`` (checked by :func:`.constraints.plan`), in the 64-bit
arithmetic on ``uint32`` pairs of :mod:`fairhc_jax._wide_int`.
"""

from __future__ import annotations

import jax.numpy as jnp

from fairhc_jax._wide_int import le64, mul64x32, mul_wide, sub64

_U32 = jnp.uint32


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
  x = mul_wide(cnt, n)            # count * n
  y = mul_wide(tot, siz)          # n_g * size
  x_ge_y = le64(y, x)
  d1, d2 = sub64(x, y), sub64(y, x)
  diff = (jnp.where(x_ge_y, d1[0], d2[0]), jnp.where(x_ge_y, d1[1], d2[1]))
  lhs = mul64x32(diff, den)
  rhs = mul64x32(mul_wide(siz, n), num)
  bad = ~le64(lhs, rhs)
  return bad & ~x_ge_y, bad & x_ge_y
