"""Fairness costs FC and HFC (Chhabra & Mohapatra, Defs. 3.2 and 3.3).

The merge order is the order of the internal nodes by index (children before
parents). A node with ``r`` children performs ``r - 1`` merges at once.
Stage ``t`` (``t = 0..n-1``) is the state after ``t`` merges: the partition
after processing every internal node whose cumulative merge count is
``<= t``; so the state a node produces lasts ``r' - 1`` stages, ``r'`` the
child count of the next internal node, and when no state has exactly ``k``
clusters, the "level with ``k`` clusters" is the coarsest state with at
least ``k`` clusters. For binary trees every state lasts one stage and stage
``t`` has exactly ``n - t`` clusters. ``FC_k = sum over clusters of stage
n - k of sum_g |delta_g - phi_g|`` and ``HFC = sum_t FC(stage t) = sum_C
lifetime(C) * sum_g |delta_g(C) - phi_g|``.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp

from fairhc_jax import _checks
from fairhc_jax import hierarchy as _hier
from fairhc_jax.fairness import _inputs
from fairhc_jax.fairness import counts as _counts
from fairhc_jax.hierarchy import UNUSED, Hierarchy


def _lifetimes(parent):
  """Stage at which each node's cluster appears (birth) and merges away (death).

  Internal nodes are processed in index order; one with ``r`` children does
  ``r - 1`` merges. Stages run ``0..n-1``; the root lives until stage ``n``.
  """
  m = parent.shape[-1]
  n = (m + 1) // 2
  idx = jnp.arange(m, dtype=jnp.int32)
  internal = _counts.internal_mask(parent)
  nkids = _hier.num_children(Hierarchy(parent=parent))
  merges_after = jnp.cumsum(jnp.where(internal, nkids - 1, 0))
  birth = jnp.where(idx < n, 0, merges_after)
  death = jnp.where(parent >= 0, merges_after[jnp.maximum(parent, 0)], n)
  used = parent != UNUSED
  return birth, death, used


def _node_costs(counts, root, n):
  """``float[m]``: ``sum_g |delta_g(C) - phi_g|`` per node (0 for unused slots)."""
  dtype = _checks.float_dtype()
  sizes = counts.sum(-1)
  totals = counts[root]
  delta = counts.astype(dtype) / jnp.maximum(sizes, 1)[:, None].astype(dtype)
  phi = totals.astype(dtype) / n
  cost = jnp.sum(jnp.abs(delta - phi), axis=-1)
  return jnp.where(sizes > 0, cost, 0)


@functools.partial(jax.jit, static_argnames="num_colors")
def _fc_batch(parent, ranges, colors, k, num_colors):
  n = (parent.shape[-1] + 1) // 2
  tree = _counts.tree_views(parent, ranges)
  birth, death, used = _lifetimes(parent)
  t = n - k
  alive = used & (birth <= t) & (t < death)

  def chunk_fn(cols):
    counts = _counts.counts_lanes(tree, cols, num_colors)
    costs = jax.vmap(_node_costs, (2, None, None))(counts, tree.root, n)   # [b, m]
    return jnp.sum(jnp.where(alive, costs, 0), axis=-1)

  return _counts.map_chunks(chunk_fn, colors)


@functools.partial(jax.jit, static_argnames="num_colors")
def _hfc_batch(parent, ranges, colors, num_colors):
  n = (parent.shape[-1] + 1) // 2
  tree = _counts.tree_views(parent, ranges)
  birth, death, used = _lifetimes(parent)
  life = jnp.where(used, death - birth, 0)

  def chunk_fn(cols):
    counts = _counts.counts_lanes(tree, cols, num_colors)
    costs = jax.vmap(_node_costs, (2, None, None))(counts, tree.root, n)   # [b, m]
    return jnp.sum(costs * life.astype(costs.dtype), axis=-1)

  return _counts.map_chunks(chunk_fn, colors)


def fairness_cost(h, colors, k: int, num_colors: Optional[int] = None) -> jax.Array:
  """Fairness Cost ``FC_k`` (Chhabra & Mohapatra, Def. 3.2).

  ``FC_k = sum_{clusters C of the k-cluster level} sum_g |delta_g(C) - phi_g|``
  with ``phi`` the colouring's shares. The levels come from the merge order
  (internal nodes by index); for non-binary trees the "level with ``k``
  clusters" is the coarsest state with at least ``k`` clusters (module
  docstring). ``FC_n = sum_i (1 - phi_{col(i)}) + sum_{g != col(i)} phi_g``
  (singletons) and ``FC_1 = 0``.

  Args:
    h: a hierarchy over ``n`` leaves (or a result with ``.hierarchy``).
    colors: ``int[n]`` or a batch ``int[B, n]``.
    k: number of clusters, ``1 <= k <= n``.
    num_colors: ``c``; defaults to ``max(colors) + 1`` (absent colours add
      nothing: their ``delta`` and ``phi`` are both 0).

  Returns:
    ``float[]`` (or ``float[B]``), the default float dtype; a sum of at most
    ``n`` terms each at most 2.
  """
  fn = "fairness_cost"
  h, colors, batched, c = _inputs.prepare(fn, _inputs.tree_of(h), colors, num_colors)
  k = _checks.check_positive_int(fn, "k", k)
  if k > h.num_leaves:
    _checks.fail(fn, "k", f"be at most n = {h.num_leaves}", k)
  out = _fc_batch(h.parent, _counts.tree_ranges(h), colors, jnp.int32(k), num_colors=c)
  return out if batched else out[0]


def hierarchical_fairness_cost(h, colors, num_colors: Optional[int] = None) -> jax.Array:
  """Hierarchical Fairness Cost (Chhabra & Mohapatra, Def. 3.3).

  The sum of the FC of the ``n`` stages (after ``0, 1, ..., n - 1`` merges),
  computed in closed form as ``sum_C lifetime(C) * sum_g |delta_g(C) - phi_g|``
  over all nodes, ``lifetime`` the number of stages the cluster is present
  (a node with ``r`` children does ``r - 1`` merges at once; module
  docstring). O(m c) after the colour counts.

  Args:
    h: a hierarchy over ``n`` leaves (or a result with ``.hierarchy``).
    colors: ``int[n]`` or a batch ``int[B, n]``.
    num_colors: ``c``; defaults to ``max(colors) + 1``.

  Returns:
    ``float[]`` (or ``float[B]``) in the default float dtype (float32 keeps
    about 6 significant digits of a sum over ``m`` weighted terms).
  """
  fn = "hierarchical_fairness_cost"
  h, colors, batched, c = _inputs.prepare(fn, _inputs.tree_of(h), colors, num_colors)
  out = _hfc_batch(h.parent, _counts.tree_ranges(h), colors, num_colors=c)
  return out if batched else out[0]
