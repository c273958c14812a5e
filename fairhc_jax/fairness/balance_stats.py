"""Float statistics of cluster balance and colour shares (for people, not verdicts)."""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax.fairness import _inputs
from fairhc_jax.fairness import counts as _counts
from fairhc_jax.fairness import scope as _scope


class BalanceStats(NamedTuple):
  """Distribution of colour shares and balance over the checked internal nodes.

  Leading ``B`` axis for a batch. Floats are the default float dtype.

  Attributes:
    balance: ``float[m]``: ``min_g n_g(C) / max_g n_g(C)`` over the colours
      present in the data (Chierichetti et al.'s balance for two colours),
      NaN at leaves, unused slots and nodes outside the scope.
    shares: ``float[m, c]``: ``delta_g(C)``, NaN where ``balance`` is.
    is_internal: ``bool[m]``: the nodes the statistics cover (the internal
      nodes in the scope; every internal node by default).
    min_balance: ``float[]``: the smallest balance (NaN if no node is covered).
    mean_balance: ``float[]``: the mean balance over covered nodes.
    min_share: ``float[c]``: per colour, the smallest share.
    max_share: ``float[c]``: per colour, the largest share.
  """

  balance: jax.Array
  shares: jax.Array
  is_internal: jax.Array
  min_balance: jax.Array
  mean_balance: jax.Array
  min_share: jax.Array
  max_share: jax.Array

  def internal_balances(self) -> np.ndarray:
    """NumPy ``float[q]``: the balances of the covered nodes (for a histogram).

    For a batch, the balances of every colouring's covered nodes, flattened.
    """
    return np.asarray(self.balance)[np.broadcast_to(np.asarray(self.is_internal),
                                                    np.shape(self.balance))]


def _balance_one(counts, covered, root):
  dtype = _checks.float_dtype()
  sizes = counts.sum(-1)
  present = counts[root] > 0        # the root holds every point
  big = jnp.iinfo(jnp.int32).max
  lo = jnp.min(jnp.where(present, counts, big), axis=-1)
  hi = jnp.max(jnp.where(present, counts, 0), axis=-1)
  nan = jnp.asarray(jnp.nan, dtype)
  balance = jnp.where(covered, lo.astype(dtype) / jnp.maximum(hi, 1).astype(dtype), nan)
  shares = jnp.where(covered[:, None],
                     counts.astype(dtype) / jnp.maximum(sizes, 1)[:, None].astype(dtype),
                     nan)
  q = jnp.sum(covered)
  min_b = jnp.where(q > 0, jnp.min(jnp.where(covered, balance, jnp.inf)), nan)
  mean_b = jnp.where(q > 0, jnp.sum(jnp.where(covered, balance, 0)) /
                     jnp.maximum(q, 1).astype(dtype), nan)
  min_s = jnp.where(q > 0, jnp.min(jnp.where(covered[:, None], shares, jnp.inf), 0), nan)
  max_s = jnp.where(q > 0, jnp.max(jnp.where(covered[:, None], shares, -jnp.inf), 0), nan)
  return balance, shares, min_b, mean_b, min_s, max_s


@functools.partial(jax.jit, static_argnames="num_colors")
def _balance_batch(parent, ranges, colors, min_size, blocks, num_colors):
  tree = _counts.tree_views(parent, ranges)
  covered = _scope.checked_mask(parent, ranges, min_size, blocks)

  def chunk_fn(cols):
    counts = _counts.counts_lanes(tree, cols, num_colors)
    return jax.vmap(_balance_one, (2, None, None))(counts, covered, tree.root)

  return _counts.map_chunks(chunk_fn, colors), covered


def cluster_balance(h, colors, num_colors: Optional[int] = None, *,
                    scope=None) -> BalanceStats:
  """Colour shares and balance of every internal node in the scope, with summaries.

  For audits and the Knittel et al. figures (histogram of cluster balance).
  These are float statistics for people, not verdicts (use
  :func:`check_fairness` for those).

  Args:
    h: a hierarchy over ``n`` leaves, or a result with ``.hierarchy`` and
      ``.scope`` (its scope is used unless ``scope`` is given).
    colors: ``int[n]`` or a batch ``int[B, n]``.
    num_colors: ``c``; defaults to ``max(colors) + 1``.
    scope: ``None`` (every internal node), an int ``min_size`` or a
      :class:`ClusterScope`.

  Returns:
    A :class:`BalanceStats`.
  """
  fn = "cluster_balance"
  h, _, scope = _inputs.resolve_target(fn, h, None, scope)
  h, colors, batched, c = _inputs.prepare(fn, h, colors, num_colors)
  s = _scope.resolve_scope(fn, scope, h.num_leaves)
  (bal, shares, min_b, mean_b, min_s, max_s), covered = _balance_batch(
      h.parent, _counts.tree_ranges(h), colors, jnp.int32(s.min_size), s.blocks,
      num_colors=c)
  stats = BalanceStats(bal, shares, jnp.broadcast_to(covered, bal.shape), min_b,
                       mean_b, min_s, max_s)
  return _inputs.unbatch(stats, batched)
