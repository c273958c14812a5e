"""Entry-point validation shared by the fairness functions (runs before tracing)."""

from __future__ import annotations

import jax
import numpy as np

from fairhc_jax import _checks
from fairhc_jax import hierarchy as _hier
from fairhc_jax.fairness.constraints import constraint_num_colors
from fairhc_jax.hierarchy import Hierarchy


def is_result(x) -> bool:
  """A fair pipeline's result: anything with ``.hierarchy`` and ``.scope``."""
  return (not isinstance(x, Hierarchy) and hasattr(x, "hierarchy")
          and hasattr(x, "scope"))


def tree_of(h):
  """``h`` itself, or a result object's ``.hierarchy``."""
  return h.hierarchy if is_result(h) else h


def resolve_target(fn: str, h, constraint, scope, *, need_constraint: bool = False):
  """``(tree, constraint, scope)`` from a hierarchy or a result object.

  A result object (``.hierarchy``, ``.scope``, optionally ``.constraint``)
  stands for its tree; its scope is used when ``scope`` is ``None`` and its
  constraint when ``constraint`` is ``None``. Explicit arguments win.
  """
  if is_result(h):
    if scope is None:
      scope = h.scope
    if constraint is None:
      constraint = getattr(h, "constraint", None)
    h = h.hierarchy
  if need_constraint and constraint is None:
    _checks.fail(fn, "constraint", "be given (a BoundedRepresentation, "
                 "RepresentationBounds, Balance or Proportional) unless h is a "
                 "result carrying a .constraint", "None", TypeError)
  return h, constraint, scope


def check_bool(fn: str, arg: str, v) -> bool:
  if not isinstance(v, (bool, np.bool_)):
    _checks.fail(fn, arg, "be a bool", repr(v), TypeError)
  return bool(v)


def prepare(fn: str, h, colors, num_colors, constraint=None):
  """Validated ``(h, colors int32[B, n], batched?, c)``."""
  h = _hier.check_hierarchy(fn, h)
  n = h.num_leaves
  if constraint is not None and num_colors is None:
    num_colors = constraint_num_colors(constraint)
  colors, c = _checks.check_colors(fn, "colors", colors, n, num_colors)
  batched = colors.ndim == 2
  if batched and colors.shape[0] == 0:
    _checks.fail(fn, "colors", "hold at least one colouring", "shape "
                 f"{tuple(colors.shape)}")
  return h, (colors if batched else colors[None]), batched, c


def unbatch(tree, batched):
  return tree if batched else jax.tree_util.tree_map(lambda x: x[0], tree)
