"""A readable fairness report: which clusters were checked, which fail and why."""

from __future__ import annotations

from fractions import Fraction
from typing import Optional

import jax
import numpy as np

from fairhc_jax import _checks
from fairhc_jax import hierarchy as _hier
from fairhc_jax.fairness import checks as _checks_mod
from fairhc_jax.fairness import counts as _counts
from fairhc_jax.fairness.constraints import (Balance, BoundedRepresentation, Constraint,
                                             Proportional, RepresentationBounds,
                                             as_fraction, bounds, describe_constraint,
                                             fmt)


def fairness_report(h, colors, constraint: Optional[Constraint] = None, *, scope=None,
                    num_colors: Optional[int] = None,
                    leaf_children_rule: bool = False,
                    max_nodes: int = 20) -> str:
  """A readable report of :func:`check_fairness` for one colouring.

  States the constraint and the scope (which clusters were checked, e.g.
  "812 internal nodes with at least 5 points, at and above the given blocks
  (200 blocks), checked (1187 exempt by the scope)"), then lists each
  violating node (up to ``max_nodes``, smallest clusters first) with its
  size, colour counts and the broken bound.

  Args:
    h: a hierarchy over ``n`` leaves, or a result with ``.hierarchy`` and
      ``.scope`` (see :func:`check_fairness`).
    colors: ``int[n]``, one colouring.
    constraint: a fairness constraint (omit it for a result carrying one).
    scope: ``None``, an int ``min_size`` or a :class:`ClusterScope`.
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
  prep = _checks_mod.prepare_check(fn, h, colors, constraint, scope, num_colors,
                                   leaf_children_rule)
  h, constraint, c = prep.h, prep.constraint, prep.c
  is_fair, violating, status, mixed, checked = jax.device_get(
      _checks_mod.run_check(prep, details=True))
  violating, status = violating[0], status[0]
  counts = np.asarray(_counts.color_counts_kernel(h, prep.colors[0], c))
  parent = np.asarray(h.parent)
  n = h.num_leaves
  internal = (parent != _hier.UNUSED) & (np.arange(parent.shape[0]) >= n)
  sizes = counts.sum(1)
  bad = np.flatnonzero(violating)
  totals = counts[int(_hier.root(_hier.Hierarchy(parent=h.parent)))]
  q, total = int(checked.sum()), int(internal.sum())
  where = prep.scope.describe()
  checked_text = f"{q} internal nodes" + (f" {where}" if where else "") + " checked"
  if q != total:
    checked_text += f" ({total - q} exempt by the scope)"
  lines = [f"Fairness check: {describe_constraint(constraint)}"
           + ("; leaf-children rule on" if prep.leaf_rule else ""),
           f"  {n} points, {c} colours (counts {totals.tolist()}), {checked_text}: "
           + ("FAIR" if bool(is_fair[0]) else f"{len(bad)} violate")]
  if isinstance(constraint, (BoundedRepresentation, RepresentationBounds)) or (
      isinstance(constraint, Proportional) and constraint.shares is not None):
    lo, hi = bounds(fn, constraint, c)
  elif isinstance(constraint, Proportional):
    a = as_fraction(fn, "constraint.alpha", constraint.alpha)
    lo = [Fraction(int(t), n) - a for t in totals]
    hi = [Fraction(int(t), n) + a for t in totals]
  order = bad[np.lexsort((bad, sizes[bad]))]
  for u in order[:max_nodes]:
    why = []
    for g in range(c):
      share = f"{counts[u, g]}/{sizes[u]} = {counts[u, g] / sizes[u]:.3f}"
      if isinstance(constraint, Balance) and status[u, g] < 0:
        why.append(f"balance {counts[u, g]}:{sizes[u] - counts[u, g]} < "
                   f"{constraint.b}:{constraint.r} (colour {g} is the minority)")
      elif status[u, g] < 0:
        why.append(f"colour {g} share {share} < {fmt(lo[g])}")
      elif status[u, g] > 0:
        why.append(f"colour {g} share {share} > {fmt(hi[g])}")
    if mixed[u]:
      why.append("has both leaf and non-leaf children")
    lines.append(f"  node {u} (size {sizes[u]}, counts {counts[u].tolist()}): "
                 + "; ".join(why))
  if len(bad) > max_nodes:
    lines.append(f"  ... and {len(bad) - max_nodes} more violating nodes")
  return "\n".join(lines)
