"""Expected colour counts of a soft hierarchy and a differentiable fairness penalty.

Expected counts: ``N[u, g] = sum_i Anc[i, u] [colour(i) = g]``
(``float[n', c]``, one ``n x n'`` by ``n x c`` product), the colour counts
of :func:`fairhc_jax.color_counts` when ``A``, ``B`` are one-hot.

Penalty. Every constraint of :mod:`fairhc_jax.fairness` is a pair of share
bounds per colour, ``lower_g <= n_g(C) / |C| <= upper_g``
(:class:`~fairhc_jax.fairness.BoundedRepresentation`: ``[0, alpha]``;
:class:`~fairhc_jax.fairness.Balance` ``(b, r)``: ``[b / (b + r), 1]``
for both colours, which is ``r min >= b max``;
:class:`~fairhc_jax.fairness.Proportional`: ``phi_g -+ alpha`` with the
data's shares ``phi`` unless fixed; ``RepresentationBounds`` as given). The
penalty of node ``u`` is the count by which its expected counts leave the
band,

``v(u) = sum_g relu(lower_g E|u| - N[u, g]) + relu(N[u, g] - upper_g E|u|)``

which is the share violation weighted by the expected cluster size
``E|u|``: a large unfair cluster costs more than a small one. Nodes whose
expected size is below ``min_size`` are exempt (as the exact checks exempt
clusters outside their :class:`~fairhc_jax.fairness.ClusterScope`), with a
hard gate (``E|u| >= min_size - 1/2``, so integer sizes of hard trees are
classified as the exact check does). The total ``sum_u v(u) / n`` is zero
for a hard tree iff every checked cluster is fair (up to float rounding at
the exact boundary: verdicts come from the exact check, never from this).
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax.fairness import constraints as _cons
from fairhc_jax.soft import params as _params
from fairhc_jax.soft.params import SoftHierarchy

__all__ = ["FairnessTarget", "fairness_penalty", "fairness_penalty_kernel",
           "fairness_target", "soft_color_counts", "soft_color_counts_kernel"]


class FairnessTarget(NamedTuple):
  """A constraint compiled for the soft penalty (a pytree of arrays).

  Attributes:
    onehot: ``float[n, c]`` one-hot colours.
    lower: ``float[c]`` lower share bounds.
    upper: ``float[c]`` upper share bounds.
    min_size: ``float[]``: clusters of expected size below it are exempt.
  """

  onehot: jax.Array
  lower: jax.Array
  upper: jax.Array
  min_size: jax.Array


def share_bounds(fn: str, constraint, colors: np.ndarray, c: int):
  """Exact per-colour ``(lower, upper)`` Fractions of a constraint on these colours."""
  b = _cons.bounds(fn, constraint, c)
  if b is None:          # Proportional with the data's own shares
    a = _cons.as_fraction(fn, "constraint.alpha", constraint.alpha)
    n = colors.shape[0]
    counts = np.bincount(colors, minlength=c)
    phi = [Fraction(int(x), n) for x in counts]
    b = ([max(Fraction(0), p - a) for p in phi], [min(Fraction(1), p + a) for p in phi])
  return b


def fairness_target(colors, constraint, *, min_size: int = 2,
                    num_colors: Optional[int] = None, dtype=None) -> FairnessTarget:
  """Compiles a fairness constraint for :func:`fairness_penalty`.

  Args:
    colors: ``int[n]`` colours in ``[0, c)``.
    constraint: a :class:`~fairhc_jax.fairness.BoundedRepresentation`,
      :class:`~fairhc_jax.fairness.RepresentationBounds`,
      :class:`~fairhc_jax.fairness.Balance` or
      :class:`~fairhc_jax.fairness.Proportional`.
    min_size: clusters with fewer (expected) points are exempt; the exact
      check of a decoded tree uses ``scope=min_size``.
    num_colors: ``c`` (default: the constraint's, else ``max(colors) + 1``).
    dtype: float dtype of the target (default float32 / float64 under x64).

  Returns:
    A :class:`FairnessTarget`.
  """
  fn = "fairness_target"
  _cons.check_constraint_type(fn, constraint)
  colors_np = np.asarray(colors)
  n = colors_np.shape[0] if colors_np.ndim == 1 else 0
  c = num_colors if num_colors is not None else _cons.constraint_num_colors(constraint)
  col, c = _checks.check_colors(fn, "colors", colors, n, c, batched=False)
  min_size = _checks.check_positive_int(fn, "min_size", min_size)
  col = np.asarray(col)
  lo, hi = share_bounds(fn, constraint, col, c)
  dtype = dtype or _checks.float_dtype()
  return FairnessTarget(
      jax.nn.one_hot(jnp.asarray(col), c, dtype=dtype),
      jnp.asarray([float(x) for x in lo], dtype),
      jnp.asarray([float(x) for x in hi], dtype),
      jnp.asarray(min_size, dtype))


def soft_color_counts_kernel(params: SoftHierarchy, onehot: jax.Array, anc=None) -> jax.Array:
  """``float[n', c]`` expected colour counts (no checks; jit / vmap safe)."""
  if anc is None:
    anc = _params.ancestors_kernel(params)
  return anc.T @ onehot


def soft_color_counts(params: SoftHierarchy, colors, num_colors: Optional[int] = None):
  """Expected colour counts of every internal node of a soft hierarchy.

  Args:
    params: a :class:`SoftHierarchy` over ``n`` points.
    colors: ``int[n]`` colours in ``[0, c)``.
    num_colors: ``c`` (default ``max(colors) + 1``).

  Returns:
    ``float[n', c]``: ``N[u, g] = sum_i Anc[i, u] [colour(i) = g]``.
  """
  fn = "soft_color_counts"
  params = _params.check_params(fn, params)
  col, c = _checks.check_colors(fn, "colors", colors, params.A.shape[0], num_colors,
                                batched=False)
  onehot = jax.nn.one_hot(jnp.asarray(col), c, dtype=params.A.dtype)
  return _counts_jit(params, onehot)


def node_violations(counts: jax.Array, target: FairnessTarget) -> jax.Array:
  """``float[n']``: size-weighted violation ``v(u)`` of every node, 0 when exempt."""
  size = counts.sum(-1, keepdims=True)
  under = jax.nn.relu(target.lower * size - counts)
  over = jax.nn.relu(counts - target.upper * size)
  v = jnp.sum(under + over, axis=-1)
  return jnp.where(size[..., 0] >= target.min_size - 0.5, v, 0)


def fairness_penalty_kernel(params: SoftHierarchy, target: FairnessTarget, anc=None):
  """``sum_u v(u) / n`` (no checks; jit / vmap / grad safe)."""
  counts = soft_color_counts_kernel(params, target.onehot, anc)
  return jnp.sum(node_violations(counts, target)) / target.onehot.shape[0]


def fairness_penalty(params: SoftHierarchy, target: FairnessTarget) -> jax.Array:
  """The differentiable fairness penalty of a soft hierarchy.

  Args:
    params: a :class:`SoftHierarchy` over ``n`` points.
    target: from :func:`fairness_target` on the same ``n`` points.

  Returns:
    A non-negative scalar: ``sum_u v(u) / n`` (module docstring).
  """
  fn = "fairness_penalty"
  if not isinstance(target, FairnessTarget):
    _checks.fail(fn, "target", "be a FairnessTarget (see soft.fairness_target)",
                 type(target).__name__, TypeError)
  params = _params.check_params(fn, params, target.onehot.shape[0])
  return _penalty_jit(params, target)


_counts_jit = jax.jit(soft_color_counts_kernel)
_penalty_jit = jax.jit(fairness_penalty_kernel)
