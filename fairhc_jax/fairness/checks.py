"""Exact fairness verdicts: :func:`check_fairness`, :func:`is_fair`, :func:`check_feasible`.

A hierarchy is fair iff every non-leaf cluster is fair (Ahmadian et al.
2020, Def. 5); Knittel et al. (2023) add the rule "a node with a leaf child
has only leaf children" (``leaf_children_rule``). A :class:`ClusterScope`
narrows the clusters that count (a minimum size, or "at and above these
blocks"). Verdicts are integer comparisons against tabulated thresholds (or
the emulated 64-bit test for proportional fairness with the data's shares),
never float ratios: the same inputs give the same verdicts on every backend.
The verdict-only path (:func:`bit_verdicts`, behind :func:`is_fair` and
``fairness_probability`` for tabulated thresholds) packs 32 colourings into
a word and counts with popcounts, integers only, exact for every ``n``. The
previous float32 form (:func:`verdict_chunk`, exact below 2^24) is kept for
comparison (``benchmarks/bench_audit.py``).
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax.fairness import _inputs
from fairhc_jax.fairness import counts as _counts
from fairhc_jax.fairness import scope as _scope
from fairhc_jax.fairness.proportional import proportional_flags
from fairhc_jax.fairness.constraints import (Balance, Constraint, bounds,
                                             constraint_num_colors, fmt, plan)


class FairnessCheck(NamedTuple):
  """Result of :func:`check_fairness` (leading ``B`` axis for a batch).

  Attributes:
    is_fair: ``bool[]`` (or ``bool[B]``): every checked node is fair.
    violating: ``bool[m]`` (or ``bool[B, m]``): checked nodes that break the
      constraint (any colour) or the leaf-children rule. Leaves, unused
      slots and nodes outside the scope are never flagged.
    status: ``int8[m, c]`` (or ``int8[B, m, c]``): ``-1`` where colour ``g``
      is under-represented at a checked node (below its lower bound; for
      :class:`Balance`, the minority colour), ``+1`` where it is
      over-represented (above its upper bound), ``0`` otherwise.
    mixed_children: ``bool[m]`` (tree-only, never batched): the checked node
      has a leaf child and a non-leaf child; all False unless
      ``leaf_children_rule=True``.
    checked: ``bool[m]`` (tree-only): the nodes the scope counts (used
      internal nodes by default).
  """

  is_fair: jax.Array
  violating: jax.Array
  status: jax.Array
  mixed_children: jax.Array
  checked: Optional[jax.Array] = None

  @property
  def below(self) -> jax.Array:
    """``bool[..., m, c]``: colour below its lower bound at the node."""
    return self.status < 0

  @property
  def above(self) -> jax.Array:
    """``bool[..., m, c]``: colour above its upper bound at the node."""
    return self.status > 0


def check_chunk(tree, colors, lo_node, hi_node, mixed, checked, num, den, *,
                num_colors, data_shares, prefix=_counts.prefix_sum):
  """Verdicts for ``b`` colourings ``int32[b, n]``: (is_fair ``bool[b]``,
  violating ``bool[b, m]``, status ``int8[b, m, c]``)."""
  n = tree.order.shape[0]
  counts = _counts.counts_lanes(tree, colors, num_colors, prefix)
  if data_shares:
    below, above = proportional_flags(
        counts, tree.sizes[:, None, None], counts[tree.root][None],
        jnp.uint32(n), num, den)
  else:
    below = counts < lo_node[:, :, None]
    above = counts > hi_node[:, :, None]
  status = jnp.where(below, -1, jnp.where(above, 1, 0)).astype(jnp.int8)
  status = jnp.where(checked[:, None, None], status, jnp.int8(0))
  violating = jnp.any(status != 0, axis=1) | mixed[:, None]     # [m, b]
  return (~jnp.any(violating, axis=0), violating.T,
          jnp.transpose(status, (2, 0, 1)))


VERDICT_CHUNK = 128
"""Colourings per vectorised step of the float verdict path."""


def verdict_bounds(tree, lo_node, hi_node, checked, num_colors):
  """``(low, high)``, ``int32[c', m - n]``: the fair range of each tested count per node.

  Row ``g < c - 1`` bounds colour ``g``'s count; the last row bounds the sum
  of colours ``0..c-2`` (the last colour's count is ``size`` minus it). With
  two colours both rows fold into one interval for colour 0 (``c' = 1``).
  Unchecked nodes get ``[-1, n + 1]``, which no count leaves. Only the
  slots ``n..m-1`` are returned (leaves are never checked). Integers only.
  """
  n = tree.order.shape[0]
  size = tree.sizes[n:]
  lo_node, hi_node, checked = lo_node[n:], hi_node[n:], checked[n:]
  lo = lo_node[:, :-1].T                                       # [c-1, m-n]
  hi = hi_node[:, :-1].T
  lo_sum = size - hi_node[:, -1]
  hi_sum = size - lo_node[:, -1]
  if num_colors == 2:
    low = jnp.maximum(lo[0], lo_sum)[None]
    high = jnp.minimum(hi[0], hi_sum)[None]
  else:
    low = jnp.concatenate([lo, lo_sum[None]])
    high = jnp.concatenate([hi, hi_sum[None]])
  low = jnp.where(checked[None], low, -1).astype(jnp.int32)
  high = jnp.where(checked[None], high, n + 1).astype(jnp.int32)
  return low, high


def verdict_intervals(tree, lo_node, hi_node, checked, num_colors):
  """``(low, high)``, ``float32[c', m - n]``: :func:`verdict_bounds` as floats.

  The same intervals (row ``g < c - 1`` bounds colour ``g``'s count, the
  last row the sum of colours ``0..c-2``; unchecked nodes ``[-1, n + 1]``;
  only the slots ``n..m-1``), for the float32 verdict path. Exact in
  float32 for ``n < 2^24``.
  """
  low, high = verdict_bounds(tree, lo_node, hi_node, checked, num_colors)
  return low.astype(jnp.float32), high.astype(jnp.float32)


def verdict_chunk(tree, colors, low, high, mixed, *, num_colors):
  """``bool[b]``: is_fair of ``b`` colourings ``int32[b, n]`` (no per-node outputs).

  The float32 path (:func:`fairhc_jax.fairness.counts.counts_rows`) for
  tabulated thresholds: every count is an integer below 2^24, so the
  comparisons with the ``(low, high)`` of :func:`verdict_intervals` are the
  integer comparisons of :func:`check_chunk`. The violations are counted
  with a matmul (XLA:CPU reduces far slower than it multiplies).
  """
  n = tree.order.shape[0]
  if num_colors == 1:   # the tested sum (of no colours) is 0 at every node
    bad = jnp.any((0 < low) | (0 > high))
    return jnp.broadcast_to(~(bad | jnp.any(mixed)), colors.shape[:1])
  part = _counts.counts_rows(tree, colors, num_colors, first=n)    # [b, c-1, m-n]
  if num_colors == 2:
    tested = part
  else:
    tested = jnp.concatenate([part, jnp.sum(part, axis=1, keepdims=True)], axis=1)
  tested = jax.lax.optimization_barrier(tested)
  bad = ((tested < low[None]) | (tested > high[None])).astype(jnp.float32)
  b = colors.shape[0]
  num_bad = jnp.matmul(bad.reshape(b, -1), jnp.ones((bad.shape[1] * bad.shape[2],),
                                                    jnp.float32),
                       precision=jax.lax.Precision.HIGHEST)
  return (num_bad == 0) & ~jnp.any(mixed)


def bit_verdicts(tree, colors, low, high, mixed, *, num_colors, lanes=_counts.LANES):
  """``bool[b]``: is_fair of ``b`` colourings ``int32[b, n]``, bit-sliced (no per-node outputs).

  The colourings are packed 32 to a word (:func:`fairhc_jax.fairness.counts.pack_batch`),
  gathered into DFS leaf order as packed words and bit-transposed
  (:func:`~fairhc_jax.fairness.counts.leaf_words`); then, ``lanes``
  colourings at a time with the colourings on the minor axis, each node's
  tested counts are ``count(stop) - count(start)`` from one row gather and
  a popcount per end (:func:`~fairhc_jax.fairness.counts.counts_before`),
  compared with the ``int32`` intervals of :func:`verdict_bounds`. Integers
  only (exact for every ``n < 2^31``), the same verdicts as
  :func:`check_chunk`. About one packed-word gather per 32 colourings and
  point, and two row gathers per internal node and ``lanes`` colourings.
  """
  b, n = colors.shape
  if num_colors == 1:   # the tested sum (of no colours) is 0 at every node
    bad = jnp.any((0 < low) | (0 > high))
    return jnp.broadcast_to(~(bad | jnp.any(mixed)), (b,))
  words = _counts.leaf_words(tree.order, colors, num_colors)        # [Q, p, w, 32]
  end_w, end_m = _counts.position_index(tree.stop[n:])
  start_w, start_m = _counts.position_index(tree.start[n:])
  low_t, high_t = low.T[:, :, None], high.T[:, :, None]              # [m-n, p, 1]

  def step(lane_words):                                              # [w, p, L]
    table = _counts.position_table(lane_words)
    part = (_counts.counts_before(table, end_w, end_m)
            - _counts.counts_before(table, start_w, start_m))        # [m-n, p, L]
    bad = (part < low_t) | (part > high_t)
    return ~jnp.any(bad, axis=(0, 1))

  fair = _counts.map_lanes(step, words, lanes)[:b]
  return fair & ~jnp.any(mixed)


def float_verdicts(n: int, data_shares: bool) -> bool:
  """Whether the float32 verdict path applies (tabulated thresholds, ``n < 2^24``)."""
  return not data_shares and n < _counts.EXACT_FLOAT_LIMIT


def check_setup(parent, ranges, lo_table, hi_table, min_size, blocks, leaf_rule):
  """Tree-only part of a check: views, per-node thresholds, masks."""
  tree = _counts.tree_views(parent, ranges)
  checked = _scope.checked_mask(parent, ranges, min_size, blocks)
  mixed = (checked & _counts.mixed_children(parent) if leaf_rule
           else jnp.zeros_like(checked))
  return tree, lo_table[tree.sizes], hi_table[tree.sizes], mixed, checked


@functools.partial(jax.jit,
                   static_argnames=("num_colors", "data_shares", "leaf_rule", "details",
                                    "shard", "chunk"))
def _check_batch(parent, ranges, colors, lo_table, hi_table, num, den, min_size, blocks,
                 *, num_colors, data_shares, leaf_rule, details=True, shard=None,
                 chunk=None):
  def local(parent, ranges, lo_table, hi_table, num, den, min_size, blocks, colors):
    tree, lo_node, hi_node, mixed, checked = check_setup(
        parent, ranges, lo_table, hi_table, min_size, blocks, leaf_rule)
    chunk_fn = functools.partial(check_chunk, tree, lo_node=lo_node, hi_node=hi_node,
                                 mixed=mixed, checked=checked, num=num, den=den,
                                 num_colors=num_colors, data_shares=data_shares)
    if not details:  # verdicts only: no per-node output buffers to fill
      if not data_shares:   # tabulated thresholds: the bit-sliced integer path
        low, high = verdict_bounds(tree, lo_node, hi_node, checked, num_colors)
        return bit_verdicts(tree, colors, low, high, mixed, num_colors=num_colors,
                            lanes=_counts.LANES if chunk is None else chunk)
      return _counts.map_chunks(lambda cols: chunk_fn(cols)[0], colors)
    is_fair, violating, status = _counts.map_chunks(chunk_fn, colors)
    return is_fair, violating, status, mixed, checked

  out_batched = True if not details else (True, True, True, False, False)
  return _counts.sharded_over_batch(local, shard, 8, out_batched)(
      parent, ranges, lo_table, hi_table, num, den, min_size, blocks, colors)


class Prepared(NamedTuple):
  """Everything a check needs, validated (the shared front half of the entry points)."""
  h: object
  colors: jax.Array     # int32[B, n]
  batched: bool
  c: int
  constraint: object
  plan: object
  scope: _scope.ResolvedScope
  leaf_rule: bool


def prepare_check(fn, h, colors, constraint, scope, num_colors, leaf_children_rule):
  """Validates the arguments of a check (a result object may stand for ``h``)."""
  h, constraint, scope = _inputs.resolve_target(fn, h, constraint, scope,
                                                need_constraint=True)
  h, colors, batched, c = _inputs.prepare(fn, h, colors, num_colors, constraint)
  leaf_rule = _inputs.check_bool(fn, "leaf_children_rule", leaf_children_rule)
  p = plan(fn, constraint, h.num_leaves, c)
  s = _scope.resolve_scope(fn, scope, h.num_leaves)
  return Prepared(h, colors, batched, c, constraint, p, s, leaf_rule)


def run_check(prep: Prepared, details: bool):
  """The jitted check on prepared arguments."""
  p = prep.plan
  return _check_batch(prep.h.parent, _counts.tree_ranges(prep.h), prep.colors,
                      p.lo_table, p.hi_table, jnp.uint32(p.num), jnp.uint32(p.den),
                      jnp.int32(prep.scope.min_size), prep.scope.blocks,
                      num_colors=prep.c, data_shares=p.data_shares,
                      leaf_rule=prep.leaf_rule, details=details,
                      shard=_counts.batch_sharding(prep.colors) if prep.batched else None)


def is_fair_kernel(h, colors, plan_, *, num_colors: int, min_size=2, blocks=None,
                   leaf_rule: bool = False) -> jax.Array:
  """Raw verdict for internal callers (no input checks; jit/vmap safe).

  Args:
    h: a valid :class:`Hierarchy` (only ``h.parent`` is used).
    colors: ``int32[n]``, one colouring with values in ``[0, num_colors)``.
    plan_: a :class:`~fairhc_jax.fairness.constraints.Plan`, from
      ``constraints.plan(fn, constraint, n, num_colors)`` (validated there,
      outside jit).
    num_colors: ``c`` (static).
    min_size: the scope's minimum cluster size (may be traced).
    blocks: ``None`` or ``int32[n]`` block ids in ``[0, n)``.
    leaf_rule: also apply the leaf-children rule (static).

  Returns:
    ``bool[]``: every checked node is fair.
  """
  parent = h.parent
  ranges = _counts.tree_ranges(h)
  tree, lo_node, hi_node, mixed, checked = check_setup(
      parent, ranges, jnp.asarray(plan_.lo_table), jnp.asarray(plan_.hi_table),
      jnp.asarray(min_size, jnp.int32), blocks, leaf_rule)
  cols = jnp.asarray(colors, jnp.int32)[None]
  return check_chunk(tree, cols, lo_node, hi_node, mixed, checked,
                     jnp.uint32(plan_.num), jnp.uint32(plan_.den), num_colors=num_colors,
                     data_shares=plan_.data_shares)[0][0]


_SHARED_ARGS = """
  Args:
    h: a hierarchy over ``n`` leaves, or a fair pipeline's result (anything
      with ``.hierarchy`` and ``.scope``, optionally ``.constraint``): its
      scope is used unless ``scope`` is given, and its constraint when
      ``constraint`` is omitted.
    colors: ``int[n]`` or a batch ``int[B, n]`` (checked in one vectorised
      call), values in ``[0, c)`` (recode raw labels with
      ``np.unique(groups, return_inverse=True)[1]``). A batch split over a
      mesh axis (``jax.device_put(colors, NamedSharding(mesh, P(axis)))``,
      ``B`` a multiple of the axis size) is checked on the devices holding
      it; per-colouring outputs stay split the same way along ``B`` and the
      tree-only ones (``mixed``, ``checked``) are replicated.
    constraint: a :class:`BoundedRepresentation`, :class:`RepresentationBounds`,
      :class:`Balance` or :class:`Proportional`.
    scope: which clusters count: ``None`` (every internal node), an int
      ``min_size``, or a :class:`ClusterScope` (minimum size and/or blocks).
    num_colors: ``c``; defaults to the constraint's vector length, 2 for
      :class:`Balance`, else ``max(colors) + 1``.
    leaf_children_rule: also require, at every checked node, "a node with a
      leaf child has only leaf children".
"""


def check_fairness(h, colors, constraint: Optional[Constraint] = None, *,
                   scope=None, num_colors: Optional[int] = None,
                   leaf_children_rule: bool = False) -> FairnessCheck:
  """Checks every node of ``h`` in the scope against a fairness constraint.

  A hierarchy is fair iff every checked cluster is fair (Ahmadian et al.
  2020, Def. 5: every non-leaf cluster, the default scope) and, with
  ``leaf_children_rule`` (Knittel et al. 2023), no checked node has both a
  leaf child and a non-leaf child. Verdicts are exact integer arithmetic.
  The check does not raise when the data set as a whole breaks the
  constraint (the root is then reported); use :func:`check_feasible` to
  require feasibility.
  {args}
  Returns:
    A :class:`FairnessCheck`.
  """
  prep = prepare_check("check_fairness", h, colors, constraint, scope, num_colors,
                       leaf_children_rule)
  is_fair_, violating, status, mixed, checked = run_check(prep, details=True)
  if not prep.batched:
    is_fair_, violating, status = is_fair_[0], violating[0], status[0]
  return FairnessCheck(is_fair_, violating, status, mixed, checked)


def is_fair(h, colors, constraint: Optional[Constraint] = None, *, scope=None,
            num_colors: Optional[int] = None,
            leaf_children_rule: bool = False) -> jax.Array:
  """Whether ``h`` is fair: the ``is_fair`` of :func:`check_fairness` alone.

  Same arguments and exact verdicts as :func:`check_fairness`, without the
  per-node outputs (``B * m * (c + 1)`` bytes for a batch). For tabulated
  constraints (all but :class:`Proportional` with the data's own shares)
  it runs the bit-sliced integer kernel :func:`bit_verdicts` (32
  colourings per word; exact): on a 2-core CPU at n = 30,162, 2,000
  colourings, measured while other jobs ran, 0.34 s per call (0.20 s of it
  the kernel, the rest input checks) against 1.12 s for the previous
  float32 kernel (``benchmarks/bench_audit.py`` prints both). Draw many colourings quickly with
  :func:`fairhc_jax.fairness.random_colorings`.
  {args}
  Returns:
    ``bool[]`` (or ``bool[B]`` for a batch of colourings).
  """
  prep = prepare_check("is_fair", h, colors, constraint, scope, num_colors,
                       leaf_children_rule)
  out = run_check(prep, details=False)
  return out if prep.batched else out[0]


check_fairness.__doc__ = check_fairness.__doc__.replace("{args}", _SHARED_ARGS)
is_fair.__doc__ = is_fair.__doc__.replace("{args}", _SHARED_ARGS)


def check_feasible(colors, constraint: Constraint, num_colors: Optional[int] = None,
                   *, scope=None) -> None:
  """Raises ``ValueError`` when no tree over these points can be fair.

  The root holds every point, so the data's own shares must satisfy the
  constraint (proportional fairness with the data's shares always does).
  Every scope checks the root (it is a union of any blocks) unless ``n`` is
  below the scope's ``min_size``, in which case no cluster is checked and
  every request is feasible. The message names the colour and the numbers.
  Ill-formed constraints raise too.

  Args:
    colors: ``int[n]``, one colouring.
    constraint: a fairness constraint.
    num_colors: ``c``; defaults as in :func:`check_fairness`.
    scope: ``None``, an int ``min_size`` or a :class:`ClusterScope`.
  """
  fn = "check_feasible"
  if num_colors is None:
    num_colors = constraint_num_colors(constraint)
  colors = _checks.as_array(fn, "colors", colors)
  if colors.ndim != 1:
    _checks.fail(fn, "colors", "be int[n] (one colouring)", f"shape {tuple(colors.shape)}")
  colors, c = _checks.check_colors(fn, "colors", colors, colors.shape[0], num_colors,
                                   batched=False)
  n = int(colors.shape[0])
  b = bounds(fn, constraint, c)
  s = _scope.resolve_scope(fn, scope, n)
  if b is None or (scope is not None and n < s.min_size):
    return
  totals = np.bincount(np.asarray(colors), minlength=c)
  lo, hi = b
  for g in range(c):
    share = Fraction(int(totals[g]), n)
    if isinstance(constraint, Balance) and share < lo[g]:
      other = int(n - totals[g])
      _checks.fail(fn, "constraint", "be satisfiable by the whole data set",
                   f"colour {g} has {int(totals[g])} points against {other} of the "
                   f"other colour: balance {int(totals[g])}/{other} < "
                   f"{constraint.b}/{constraint.r}")
    if share < lo[g]:
      _checks.fail(fn, "constraint", "be satisfiable by the whole data set",
                   f"colour {g} makes up {int(totals[g])}/{n} = {float(share):.4g} "
                   f"of the points, less than its lower bound {fmt(lo[g])}")
    if share > hi[g]:
      _checks.fail(fn, "constraint", "be satisfiable by the whole data set",
                   f"colour {g} makes up {int(totals[g])}/{n} = {float(share):.4g} "
                   f"of the points, more than its upper bound {fmt(hi[g])}")
