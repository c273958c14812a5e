"""Which clusters a fairness check counts: :class:`ClusterScope` and its kernel.

A used internal node ``u`` is checked iff ``|u| >= min_size`` and, when
``blocks`` is given, ``u`` is a union of whole blocks: every block that meets
``u`` lies inside ``u``.

The union test runs in a kernel over the DFS leaf order: node ``u`` covers
the positions ``[start[u], stop[u])``; let ``first[p]`` and ``last[p]`` be the
smallest and largest DFS position of the block of the leaf at position
``p``. Then ``u`` is a union of blocks iff ``min first >= start[u]`` and
``max last < stop[u]`` over its range: two range-min/max queries, answered
in O(1) each from a sparse table built in O(n log n) (``ceil(log2 n)``
shifted minima, integers only).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax import hierarchy as _hier
from fairhc_jax.fairness import _inputs
from fairhc_jax.hierarchy import Hierarchy


class ClusterScope(NamedTuple):
  """Which clusters of a hierarchy a fairness check counts.

  A used internal node ``u`` is checked iff ``|u| >= min_size`` and, when
  ``blocks`` is given, ``u`` is a union of whole blocks (every block that
  meets ``u`` lies inside ``u``). The default scope checks every internal
  node. Fair pipelines return the scope their guarantee holds for (e.g. the
  fairlet tree: ``blocks = fairlet_of``, "at and above the fairlets"), so
  ``check_fairness(res.hierarchy, colors, c, scope=res.scope)`` passes, and
  so does ``check_fairness(res, colors)``.

  Attributes:
    min_size: clusters of fewer points are exempt (int ``>= 1``; 2 = every
      internal node).
    blocks: ``None`` or ``int[n]``, a block id per point (e.g. a fairlet
      decomposition's ``fairlet_of``); any integer labels.
  """

  min_size: int = 2
  blocks: Optional[object] = None


class ResolvedScope(NamedTuple):
  """A validated scope: ``min_size`` and blocks recoded to ``int32[n]`` in ``[0, n)``."""
  min_size: int
  blocks: Optional[jax.Array]
  num_blocks: Optional[int]

  @property
  def is_default(self) -> bool:
    return self.min_size <= 2 and self.blocks is None

  def describe(self) -> str:
    """``"with at least 5 points, at and above the given blocks"`` (or ``""``)."""
    parts = []
    if self.min_size > 2:
      parts.append(f"with at least {self.min_size} points")
    if self.blocks is not None:
      k = f" ({self.num_blocks} blocks)" if self.num_blocks is not None else ""
      parts.append(f"at and above the given blocks{k}")
    return ", ".join(parts)


def resolve_scope(fn: str, scope, n: int) -> ResolvedScope:
  """Validates ``scope`` (``None``, an int ``min_size`` or a :class:`ClusterScope`).

  Concrete blocks are recoded to ``0..k-1`` (any labels allowed); traced
  blocks must already hold values in ``[0, n)``.
  """
  if scope is None:
    return ResolvedScope(2, None, None)
  if isinstance(scope, (int, np.integer)) and not isinstance(scope, (bool, np.bool_)):
    scope = ClusterScope(min_size=int(scope))
  if not isinstance(scope, ClusterScope):
    _checks.fail(fn, "scope", "be a ClusterScope or an int (a minimum cluster size)",
                 _checks.describe(scope), TypeError)
  min_size = _checks.check_positive_int(fn, "scope.min_size", scope.min_size)
  if scope.blocks is None:
    return ResolvedScope(min_size, None, None)
  b = _checks.as_array(fn, "scope.blocks", scope.blocks)
  if b.ndim != 1 or b.shape[0] != n:
    _checks.fail(fn, "scope.blocks", f"be int[{n}] (one block id per point)",
                 f"shape {tuple(b.shape)}")
  if not (jnp.issubdtype(b.dtype, jnp.integer) or jnp.issubdtype(b.dtype, jnp.bool_)):
    _checks.fail(fn, "scope.blocks", "hold integer block ids", _checks.describe(b),
                 TypeError)
  if not _checks.is_concrete(b):
    return ResolvedScope(min_size, b.astype(jnp.int32), None)
  uniq, inv = np.unique(np.asarray(b), return_inverse=True)
  return ResolvedScope(min_size, jnp.asarray(inv.reshape(-1), jnp.int32), len(uniq))


def _sparse_table(x, op):
  """``[L, n]`` table: row ``k`` holds ``op`` over ``x[p : p + 2^k]`` (clipped)."""
  n = x.shape[0]
  rows = [x]
  k = 1
  while k < n:
    prev = rows[-1]
    shifted = jnp.concatenate([prev[k:], jnp.broadcast_to(prev[-1:], (k,))])
    rows.append(op(prev, shifted))
    k *= 2
  return jnp.stack(rows)


def _range_query(table, start, stop, op):
  """``op`` over ``[start, stop)`` per query (``stop > start``) from a sparse table."""
  length = jnp.maximum(stop - start, 1)
  k = 31 - jax.lax.clz(length.astype(jnp.int32))
  width = jnp.left_shift(jnp.int32(1), k)
  a = table[k, start]
  b = table[k, jnp.maximum(stop - width, start)]
  return op(a, b)


def block_union_mask(ranges: _hier.LeafRanges, blocks) -> jax.Array:
  """``bool[m]``: node ``u`` is a union of whole blocks.

  Args:
    ranges: the tree's ``leaf_ranges``.
    blocks: ``int32[n]``, block ids in ``[0, n)``.

  Returns:
    ``bool[m]`` (unused slots: True for empty ranges, masked by the caller).
  """
  n = blocks.shape[0]
  pos = ranges.start[:n]                                   # DFS position of leaf i
  first = jnp.full(n, n, jnp.int32).at[blocks].min(pos)    # integer scatter: exact
  last = jnp.full(n, -1, jnp.int32).at[blocks].max(pos)
  at = blocks[ranges.order]                                # block at position p
  lo_tab = _sparse_table(first[at], jnp.minimum)
  hi_tab = _sparse_table(last[at], jnp.maximum)
  lo = _range_query(lo_tab, ranges.start, ranges.stop, jnp.minimum)
  hi = _range_query(hi_tab, ranges.start, ranges.stop, jnp.maximum)
  return (lo >= ranges.start) & (hi < ranges.stop)


def checked_mask(parent, ranges: _hier.LeafRanges, min_size, blocks) -> jax.Array:
  """``bool[m]``: the used internal nodes a check with this scope counts.

  Args:
    parent: ``int32[m]``.
    ranges: its ``leaf_ranges``.
    min_size: ``int32[]`` (traced: no recompile per size).
    blocks: ``None`` or ``int32[n]`` with ids in ``[0, n)``.
  """
  m = parent.shape[-1]
  n = (m + 1) // 2
  idx = jnp.arange(m, dtype=jnp.int32)
  sizes = ranges.stop - ranges.start
  mask = (parent != _hier.UNUSED) & (idx >= n) & (sizes >= min_size)
  if blocks is not None:
    mask = mask & block_union_mask(ranges, blocks)
  return mask


@jax.jit
def _checked_nodes(parent, ranges, min_size, blocks):
  return checked_mask(parent, ranges, min_size, blocks)


def checked_nodes_kernel(h: Hierarchy, min_size, blocks=None) -> jax.Array:
  """Raw kernel: ``bool[m]``, the nodes a scope checks (no input checks; jit/vmap safe).

  Args:
    h: a valid hierarchy (only ``h.parent`` is used).
    min_size: int (may be traced).
    blocks: ``None`` or ``int32[n]`` with ids in ``[0, n)``.
  """
  r = _hier.leaf_ranges(Hierarchy(parent=h.parent))
  return _checked_nodes(h.parent, r, jnp.asarray(min_size, jnp.int32), blocks)


def checked_nodes(h, scope=None) -> jax.Array:
  """``bool[m]``: the internal nodes of ``h`` a check with ``scope`` counts.

  Args:
    h: a hierarchy over ``n`` leaves, or a result with ``.hierarchy`` and
      ``.scope`` (its scope is used unless ``scope`` is given).
    scope: a :class:`ClusterScope`, an int (``min_size``) or ``None``.
  """
  fn = "checked_nodes"
  h, _, scope = _inputs.resolve_target(fn, h, None, scope)
  h = _hier.check_hierarchy(fn, h)
  s = resolve_scope(fn, scope, h.num_leaves)
  return checked_nodes_kernel(h, s.min_size, s.blocks)
