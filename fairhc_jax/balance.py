"""Relative balance of a hierarchy (Knittel et al., ICML 2023, Definition 3.1).

A hierarchy is ``eps``-relatively balanced when every internal node ``P``
with ``|P| >= 1/eps`` leaves splits into children ``C`` with
``(1/2 - eps) |P| <= |C| <= (1/2 + eps) |P|``. Smaller clusters are exempt:
they cannot always be split that finely (a cluster of 3 points splits 1:2).

The verdict is exact: ``eps`` is taken as a fraction ``a / b`` (a float is
read as the nearest fraction with denominator at most 10^6, so ``1/6``
means one sixth) and every comparison is made on integers
(``(b - 2a) |P| <= 2b |C| <= (b + 2a) |P|`` and ``a |P| >= b``).
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax import hierarchy as hier
from fairhc_jax.hierarchy import Hierarchy

__all__ = ["BalanceProfile", "balance_profile", "is_relatively_balanced",
           "unbalanced_nodes", "read_eps"]


class BalanceProfile(NamedTuple):
  """Per-node split sizes of a hierarchy.

  Attributes:
    size: ``int32[m]``, leaves under each node (0 on free slots).
    largest_child: ``int32[m]``, size of the largest child (0 for leaves).
    smallest_child: ``int32[m]``, size of the smallest child (0 for leaves).
    imbalance: ``float[m]``, ``max_C | |C| / |P| - 1/2 |`` over the children:
      the smallest ``eps`` for which node ``P``'s split passes (0 for leaves
      and free slots). For display; verdicts use integers.
  """

  size: jax.Array
  largest_child: jax.Array
  smallest_child: jax.Array
  imbalance: jax.Array


@jax.jit
def balance_profile(h: Hierarchy) -> BalanceProfile:
  """The :class:`BalanceProfile` of one hierarchy (``jax.vmap`` it for batches)."""
  parent = h.parent
  m = parent.shape[-1]
  size = hier.leaf_counts(h)
  bucket = jnp.where(parent >= 0, parent, m)
  big = jnp.zeros(m + 1, jnp.int32).at[bucket].max(size)[:m]
  small = jnp.full(m + 1, m + 1, jnp.int32).at[bucket].min(size)[:m]
  small = jnp.where(big > 0, small, 0)
  fdt = _checks.float_dtype()
  ps = jnp.maximum(size, 1).astype(fdt)
  dev = jnp.maximum(jnp.abs(big / ps - 0.5), jnp.abs(small / ps - 0.5))
  imbalance = jnp.where(big > 0, dev, 0).astype(fdt)
  return BalanceProfile(size=size, largest_child=big, smallest_child=small,
                        imbalance=imbalance)


def read_eps(fn: str, arg: str, eps, *, closed_upper: bool = False) -> Fraction:
  """Reads a balance parameter with :func:`fairhc_jax._checks.as_fraction`, then
  checks it lies in ``(0, 1/2)`` (``(0, 1/2]`` if ``closed_upper``).

  The one rational reader of the library does the conversion (floats become
  the nearest fraction with denominator <= 10^6); only the range check is
  specific to relative balance. Used by every entry point taking ``eps``.
  """
  rng = "(0, 1/2]" if closed_upper else "(0, 1/2)"
  if isinstance(eps, (float, np.floating)) and not np.isfinite(eps):
    _checks.fail(fn, arg, f"lie in {rng}", repr(eps))  # before reading: one message
  f = _checks.as_fraction(fn, arg, eps)
  if not (0 < f < Fraction(1, 2) or (closed_upper and f == Fraction(1, 2))):
    _checks.fail(fn, arg, f"lie in {rng}", repr(eps))
  return f


def _split_sizes(h: Hierarchy):
  prof = jax.device_get(balance_profile(h))
  return (np.asarray(prof.size, np.int64), np.asarray(prof.largest_child, np.int64),
          np.asarray(prof.smallest_child, np.int64))


def _violations(size, big, small, eps: Fraction) -> np.ndarray:
  a, b = eps.numerator, eps.denominator
  internal = big > 0
  checked = internal & (a * size >= b)
  ok = ((b - 2 * a) * size <= 2 * b * small) & (2 * b * big <= (b + 2 * a) * size)
  return np.flatnonzero(checked & ~ok)


def unbalanced_nodes(h: Hierarchy, eps) -> np.ndarray:
  """Indices of the internal nodes ``P`` with ``|P| >= 1/eps`` whose split is
  not within ``(1/2 +- eps) |P|`` (empty when ``h`` is ``eps``-relatively balanced).

  Args:
    h: a valid hierarchy.
    eps: a number (or ``fractions.Fraction``) in ``(0, 1/2]``.
  """
  fn = "unbalanced_nodes"
  hier.check_hierarchy(fn, h, allow_traced=False)
  f = read_eps(fn, "eps", eps, closed_upper=True)
  return _violations(*_split_sizes(h), f)


def is_relatively_balanced(h: Hierarchy, eps) -> bool:
  """True when ``h`` is ``eps``-relatively balanced (exact integer verdict).

  Args:
    h: a valid hierarchy.
    eps: a number (or ``fractions.Fraction``) in ``(0, 1/2]``; nodes with
      fewer than ``1/eps`` leaves are exempt.
  """
  fn = "is_relatively_balanced"
  hier.check_hierarchy(fn, h, allow_traced=False)
  f = read_eps(fn, "eps", eps, closed_upper=True)
  return _violations(*_split_sizes(h), f).size == 0
