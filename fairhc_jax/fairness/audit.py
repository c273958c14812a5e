"""Audits: the probability that a tree is fair when the groups are random.

:func:`fairness_probability` estimates ``P(h is fair)`` by Monte Carlo when
point ``i`` has colour ``g`` with probability ``probs[i, g]`` independently
(stochastic fairness, Knittel et al. 2023, Def. 2.4). Two things make such an
audit informative:

* a **scope**: a binary tree has ``n / 2`` or so two-point clusters, and a
  random two-point cluster is one-coloured with probability about 1/2, so
  "every internal node is fair" is almost never true (the estimate is 0 for
  any ``n`` beyond a few dozen). Ask about the clusters that matter, e.g.
  ``scope=50`` (clusters of at least 50 points);
* a **null model**: ``probs=observed_shares(colors)`` draws every point's
  group with the data's observed proportions ("is this tree fair for
  groups that have nothing to do with the features?").

To *build* a tree that is fair with high probability under such groups,
use :func:`fairhc_jax.algorithms.reductions.stochastically_fair_hc`.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P
import numpy as np

from fairhc_jax import _checks
from fairhc_jax import hierarchy as _hier
from fairhc_jax.fairness import _inputs
from fairhc_jax.fairness import checks as _checks_mod
from fairhc_jax.fairness import counts as _counts
from fairhc_jax.fairness import scope as _scope
from fairhc_jax.fairness.constraints import Constraint, constraint_num_colors, plan
from fairhc_jax.hierarchy import Hierarchy

Z95 = 1.959963984540054
"""The 97.5% standard normal quantile (a two-sided 95% interval)."""


class FairnessProbability(NamedTuple):
  """Monte-Carlo estimate of ``P(tree is fair)`` under random colours.

  Attributes:
    estimate: ``float[]``: fraction of sampled colourings under which the tree is fair.
    stderr: ``float[]``: ``sqrt(p (1 - p) / N)``.
    wilson_low: ``float[]``: lower end of the 95% Wilson score interval.
    wilson_high: ``float[]``: upper end of the 95% Wilson score interval.
    num_fair: ``int32[]``: fair samples.
    num_samples: ``int``: ``N``.
  """

  estimate: jax.Array
  stderr: jax.Array
  wilson_low: jax.Array
  wilson_high: jax.Array
  num_fair: jax.Array
  num_samples: int


def wilson_interval(num_fair, num_samples, z=Z95):
  """The Wilson score interval ``(low, high)`` of a binomial proportion.

  ``(p + z^2/2N -+ z sqrt(p(1-p)/N + z^2/4N^2)) / (1 + z^2/N)`` with
  ``p = num_fair / N``, clipped to ``[0, 1]``.

  Args:
    num_fair: ``int[]`` successes.
    num_samples: ``int`` or ``int[]`` trials ``N >= 1``.
    z: the normal quantile.

  Returns:
    ``(low, high)``, default float dtype.
  """
  dtype = _checks.float_dtype()
  nn = jnp.asarray(num_samples, dtype)
  p = jnp.asarray(num_fair, dtype) / nn
  z = jnp.asarray(z, dtype)
  center = (p + z**2 / (2 * nn)) / (1 + z**2 / nn)
  half = z / (1 + z**2 / nn) * jnp.sqrt(p * (1 - p) / nn + z**2 / (4 * nn**2))
  return jnp.maximum(center - half, 0), jnp.minimum(center + half, 1)


@functools.partial(jax.jit, static_argnames=("num_chunks", "chunk", "num_colors",
                                             "data_shares", "leaf_rule", "shard"))
def _probability_batch(key, parent, ranges, logits, lo_table, hi_table, num, den,
                       min_size, blocks, num_samples, *, num_chunks, chunk, num_colors,
                       data_shares, leaf_rule, shard=None):
  """Fair samples among ``num_samples`` (traced) drawn in ``num_chunks`` chunks.

  Chunk ``i`` is drawn with ``split(key, num_chunks)[i]`` whatever the
  devices, so a sharded run (``shard = (mesh, axis)``: the chunks split
  over the axis, padded to a multiple of its size with masked chunks, the
  integer counts summed with ``psum``) returns the one-device count.
  """
  n = logits.shape[0]
  keys = jax.random.split(key, num_chunks)
  size = 1 if shard is None else _counts.axis_size(*shard)
  total = -(-num_chunks // size) * size
  if total != num_chunks:
    keys = jnp.concatenate([keys, jnp.broadcast_to(keys[:1], (total - num_chunks,)
                                                   + keys.shape[1:])])
  index = jnp.arange(total)

  def count(parent, ranges, logits, lo_table, hi_table, num, den, min_size, blocks,
            num_samples, index, keys):
    tree, lo_node, hi_node, mixed, checked = _checks_mod.check_setup(
        parent, ranges, lo_table, hi_table, min_size, blocks, leaf_rule)
    use_bits = not data_shares    # tabulated thresholds: the bit-sliced integer path
    if use_bits:
      low, high = _checks_mod.verdict_bounds(tree, lo_node, hi_node, checked, num_colors)

    def one_chunk(args):
      i, k = args
      cols = jax.random.categorical(k, logits, axis=-1, shape=(chunk, n)).astype(jnp.int32)
      if use_bits:    # the same verdicts, many times faster on CPU
        fair = _checks_mod.bit_verdicts(tree, cols, low, high, mixed,
                                        num_colors=num_colors)
      else:
        fair = _checks_mod.check_chunk(tree, cols, lo_node, hi_node, mixed, checked, num,
                                       den, num_colors=num_colors,
                                       data_shares=data_shares)[0]
      valid = i * chunk + jnp.arange(chunk) < num_samples
      return jnp.sum(fair & valid).astype(jnp.int32)

    local = jnp.sum(jax.lax.map(one_chunk, (index, keys)))
    return local if shard is None else jax.lax.psum(local, shard[1])

  args = (parent, ranges, logits, lo_table, hi_table, num, den, min_size, blocks,
          num_samples, index, keys)
  if shard is None:
    return count(*args)
  mesh, axis = shard
  per = total // size

  def local(*a):
    # The chunk indices and keys are tiny and replicated; each device takes
    # its own slice (no resharding, under Auto or Explicit mesh axes).
    start = jax.lax.axis_index(axis) * per
    index = jax.lax.dynamic_slice_in_dim(a[-2], start, per)
    keys = jax.lax.dynamic_slice_in_dim(a[-1], start, per)
    return count(*a[:-2], index, keys)

  return jax.shard_map(local, mesh=mesh, in_specs=(P(),) * 12,
                       out_specs=P(), check_vma=False)(*args)


def _probability_shard(fn, sharding):
  """``(mesh, axis)`` of ``fairness_probability``'s ``sharding`` (or ``None``)."""
  if sharding is None:
    return None
  spec = tuple(getattr(sharding, "spec", ()))
  if not isinstance(sharding, NamedSharding) or not spec or spec[0] is None:
    _checks.fail(fn, "sharding", "be None or a NamedSharding(mesh, P(axis)) naming the "
                 "mesh axis the samples are split over", repr(sharding), TypeError)
  return sharding.mesh, spec[0]


def observed_shares(colors, num_colors: Optional[int] = None) -> jax.Array:
  """The observed group proportions ``phi_g = n_g / n``, as ``probs`` for an audit.

  ``fairness_probability(h, observed_shares(colors), constraint, key=k,
  num_samples=N, scope=50)`` asks how often ``h`` would be fair if every
  point's group were drawn independently with the data's proportions.

  Args:
    colors: ``int[n]``, one colouring.
    num_colors: ``c``; defaults to ``max(colors) + 1``.

  Returns:
    ``float[c]`` (default float dtype), summing to 1.
  """
  fn = "observed_shares"
  cols = _checks.as_array(fn, "colors", colors)
  if cols.ndim != 1 or cols.shape[0] == 0:
    _checks.fail(fn, "colors", "be a non-empty int[n] (one colouring)",
                 f"shape {tuple(cols.shape)}")
  cols, c = _checks.check_colors(fn, "colors", cols, cols.shape[0], num_colors,
                                 batched=False)
  if not _checks.is_concrete(cols):
    _checks.fail(fn, "colors", "be concrete", "a traced array", TypeError)
  counts = np.bincount(np.asarray(cols), minlength=c)
  return jnp.asarray(counts / counts.sum(), _checks.float_dtype())


def _looks_like_key(x) -> bool:
  if isinstance(x, (Hierarchy,)) or _inputs.is_result(x) or not hasattr(x, "dtype"):
    return False
  return (jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
          or (x.dtype == np.uint32 and tuple(x.shape) == (2,)))


def _check_probs(fn, probs, n):
  p = _checks.as_float(fn, "probs", probs)
  if p.ndim == 1:
    p = jnp.broadcast_to(p[None], (n, p.shape[0]))
  if p.ndim != 2 or p.shape[0] != n:
    _checks.fail(fn, "probs", f"be float[n, c] with n = {n} rows (or float[c], "
                 "the same for every point)", f"shape {tuple(p.shape)}")
  if _checks.is_concrete(p):
    pn = np.asarray(p, np.float64)
    if not np.all(np.isfinite(pn)) or (pn.size and pn.min() < 0):
      _checks.fail(fn, "probs", "hold finite non-negative probabilities",
                   f"minimum {np.nanmin(pn):.6g}" if np.isfinite(pn).all() else
                   "NaN or infinite entries")
    rows = pn.sum(1)
    if np.any(np.abs(rows - 1) > 1e-5):
      i = int(np.argmax(np.abs(rows - 1)))
      _checks.fail(fn, "probs", "have rows summing to 1", f"row {i} sums to {rows[i]:.6g}")
  return p


def fairness_probability(h, probs=None, constraint: Optional[Constraint] = None, *args,
                         key=None, num_samples: Optional[int] = None, scope=None,
                         leaf_children_rule: bool = False,
                         chunk: int = _counts.CHUNK, sharding=None) -> FairnessProbability:
  """Probability that ``h`` is fair when point ``i`` has colour ``g`` w.p. ``probs[i, g]``.

  Stochastic fairness (Knittel et al. 2023, Def. 2.4): colours are drawn
  independently per point; the tree is checked under ``num_samples``
  sampled colourings in one vectorised call (``chunk`` colourings at a time
  to bound memory), with the same exact verdicts and scope as
  :func:`check_fairness`. For :class:`Proportional` without ``shares``, each
  sample is compared with its own shares. Only the number of chunks sets
  shapes: ``num_samples`` values with the same ``ceil(num_samples / chunk)``
  share one compilation.

  Use a scope (e.g. ``scope=50``): with every internal node checked, a
  binary tree over more than a few dozen points is almost never fair under
  random groups. For groups drawn with the data's proportions pass
  ``probs=observed_shares(colors)``. To build a tree that is fair with high
  probability, see :func:`fairhc_jax.algorithms.reductions.stochastically_fair_hc`.

  The old order ``fairness_probability(key, h, probs, constraint,
  num_samples)`` still works and warns (``DeprecationWarning``).

  Args:
    h: a hierarchy over ``n`` leaves, or a result with ``.hierarchy`` and
      ``.scope`` (optionally ``.constraint``).
    probs: ``float[n, c]`` (non-negative rows summing to 1 within 1e-5), or
      ``float[c]``, the same distribution for every point.
    constraint: a fairness constraint over ``c`` colours (omit it for a
      result carrying one).
    key: a PRNG key (``jax.random.key(0)``), keyword-only.
    num_samples: number of sampled colourings ``N``, keyword-only.
    scope: ``None`` (every internal node), an int ``min_size`` or a
      :class:`ClusterScope`.
    leaf_children_rule: also apply the Knittel leaf-children rule.
    chunk: colourings evaluated per vectorised step.
    sharding: optional ``NamedSharding(mesh, P(axis))``: the chunks of
      samples are drawn and checked on the devices of the mesh axis (each
      device its share, no colouring leaves its device; the fair counts
      are summed across devices). Chunk ``i`` uses the same key on any
      device count, so the estimate equals the one-device estimate.

  Returns:
    A :class:`FairnessProbability` with the estimate, its standard error
    and a 95% Wilson interval.
  """
  fn = "fairness_probability"
  if _looks_like_key(h) and (isinstance(probs, Hierarchy) or _inputs.is_result(probs)):
    warnings.warn("fairness_probability(key, h, probs, constraint, num_samples) is "
                  "deprecated: use fairness_probability(h, probs, constraint, key=key, "
                  "num_samples=N)", DeprecationWarning, stacklevel=2)
    if len(args) > 2:
      raise TypeError(f"{fn}: too many positional arguments")
    old = list(args) + [None] * (2 - len(args))
    key, h, probs, constraint = h, probs, constraint, old[0]
    if old[1] is not None:
      num_samples = old[1]
  elif args:
    raise TypeError(f"{fn}: key and num_samples are keyword-only "
                    "(fairness_probability(h, probs, constraint, key=..., num_samples=...))")
  h, constraint, scope = _inputs.resolve_target(fn, h, constraint, scope,
                                                need_constraint=True)
  h = _hier.check_hierarchy(fn, h)
  if key is None:
    _checks.fail(fn, "key", "be a JAX PRNG key, e.g. jax.random.key(0)", "None",
                 TypeError)
  key = _checks.check_key(fn, key)
  n = h.num_leaves
  if probs is None:
    _checks.fail(fn, "probs", "be float[n, c] or float[c] (e.g. observed_shares(colors))",
                 "None", TypeError)
  p = _check_probs(fn, probs, n)
  c = p.shape[1]
  need_c = constraint_num_colors(constraint)
  if need_c is not None and need_c != c:
    _checks.fail(fn, "probs", f"have {need_c} columns (one per colour of the constraint)",
                 f"{c} columns")
  if num_samples is None:
    _checks.fail(fn, "num_samples", "be an integer >= 1", "None", TypeError)
  num_samples = _checks.check_positive_int(fn, "num_samples", num_samples)
  chunk = min(_checks.check_positive_int(fn, "chunk", chunk), num_samples)
  leaf_rule = _inputs.check_bool(fn, "leaf_children_rule", leaf_children_rule)
  pl = plan(fn, constraint, n, c)
  s = _scope.resolve_scope(fn, scope, n)
  fair = _probability_batch(
      key, h.parent, _counts.tree_ranges(h), jnp.log(p), pl.lo_table, pl.hi_table,
      jnp.uint32(pl.num), jnp.uint32(pl.den), jnp.int32(s.min_size), s.blocks,
      jnp.int32(num_samples), num_chunks=-(-num_samples // chunk), chunk=chunk,
      num_colors=c, data_shares=pl.data_shares, leaf_rule=leaf_rule,
      shard=_probability_shard(fn, sharding))
  dtype = _checks.float_dtype()
  est = fair.astype(dtype) / jnp.asarray(num_samples, dtype)
  stderr = jnp.sqrt(est * (1 - est) / num_samples)
  low, high = wilson_interval(fair, num_samples)
  return FairnessProbability(est, stderr, low, high, fair, num_samples)
