"""Colour counts of every node of a hierarchy, for one colouring or a batch.

With the leaves in DFS order (:func:`fairhc_jax.hierarchy.leaf_ranges`) every
node's leaves are a contiguous range, so ``counts[u] = C[stop[u]] -
C[start[u]]`` with ``C`` the prefix sums of the one-hot colours in leaf
order: O(n c) per colouring, integers only (exact and identical on every
backend; no scatter-add, no floats).

Batch layout: the ``B`` colourings are processed ``CHUNK`` at a time with
the colourings on the minor ("lane") axis: the prefix sum runs over the
``n`` leaves on ``[n, c - 1, b]`` slabs and the per-node counts are row
gathers ``C[stop] - C[start]``. Measured on a 2-core CPU (n = 4,000, B =
1,000): ``jax.vmap`` of a per-colouring kernel with the batch on the leading
axis took 4-10x longer, and unchunked batches spent most of their time
faulting in fresh 16-64 MB buffers.

The prefix sum has two forms, chosen with :func:`jax.lax.platform_dependent`:

* the reference form, :func:`prefix_sum_parallel`: ``lax.associative_scan``,
  ``O(log n)`` dependent steps (used on GPU/TPU, where a sequential scan is
  ``n`` dependent kernel launches);
* on CPU, :func:`prefix_sum_sequential`: ``lax.scan`` in two levels (rows
  within ``sqrt(n)``-row blocks, all blocks at once, then the block totals),
  which XLA:CPU runs fastest (``benchmarks/bench_fairness.py`` prints both;
  ``jnp.cumsum`` lowers to a quadratic ``reduce_window`` on CPU, about 10x
  slower).

Both give the same integers (tested against NumPy).

Verdict-only checks (``is_fair``, ``fairness_probability``) use the
bit-sliced form at the end of this module (:func:`leaf_words`,
:func:`counts_before`): 32 colourings packed per word, gathered into DFS
order as packed words (one gather per 32 colourings and point), a 32 x 32
bit transpose per tile, then per node ``count(stop) - count(start)``, each
from one row gather of a per-word table (the count before the word and the
word) and a popcount, with the colourings on the minor axis. Integers
only: exact for every ``n``. Measured on the 2-core CPU at n = 30,162,
2,000 colourings of the whole-Census fairlet tree, while other jobs ran:
0.20 s for the kernel against 1.12 s for the float32 form below (whose
per-leaf gather into leaf order, matmul prefix sums over all ``n``
positions and per-node column gathers each cost 1-3 ns per leaf and
colouring); ``benchmarks/bench_audit.py`` prints both.

The previous float32 form, :func:`counts_rows` (kept for comparison): colourings on the major axis, the
one-hot column-gathered into leaf order, prefix sums by blocked triangular
matmuls (:func:`prefix_sum_matmul`) and per-node counts as column gathers.
Every count is an integer below 2^24 there (``n < 2^24``), so it is exact.
Measured on the 2-core CPU at n = 30,162, 128 colourings per chunk: the
lane layout's ``colors.T[order]`` (XLA fuses the transpose into the gather,
which then reads element by element, about 30 ns per element) took most of
``counts_lanes``' time; the column gather of the untransposed batch costs
about 1.5 ns per element.
"""

from __future__ import annotations

import collections
import functools
import math
import weakref
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P

from fairhc_jax import hierarchy as _hier
from fairhc_jax.fairness import _inputs
from fairhc_jax.hierarchy import UNUSED, Hierarchy

CHUNK = 128
"""Colourings evaluated per vectorised step (bounds the working set)."""


class TreeViews(NamedTuple):
  """Tree-only quantities, computed once per call."""
  order: jax.Array     # int32[n]  leaves in DFS order
  start: jax.Array     # int32[m]
  stop: jax.Array      # int32[m]
  sizes: jax.Array     # int32[m]  leaves per node (0 for unused slots)
  internal: jax.Array  # bool[m]   used internal nodes
  root: jax.Array      # int32[]


def internal_mask(parent):
  """``bool[m]``: used internal nodes."""
  m = parent.shape[-1]
  n = (m + 1) // 2
  idx = jnp.arange(m, dtype=jnp.int32)
  return (parent != UNUSED) & (idx >= n)


RANGES_CACHE_SIZE = 8
"""Trees whose ``leaf_ranges`` :func:`tree_ranges` keeps (the most recently used)."""

_ranges_cache: "collections.OrderedDict[int, tuple]" = collections.OrderedDict()


def tree_ranges(h: Hierarchy) -> _hier.LeafRanges:
  """``leaf_ranges`` of ``h``'s parent array alone (heights never enter jit).

  Computed outside the kernels by the separately jitted ``leaf_ranges``, so
  every kernel for the same ``n`` shares one compiled tree pass. An audit
  checks one tree under batch after batch of colourings: the ranges of the
  last :data:`RANGES_CACHE_SIZE` concrete ``jax.Array`` parent arrays are
  kept, keyed by the array's identity (JAX arrays are immutable; a weak
  reference confirms the very same array), so a repeated call skips the
  tree pass (83 ms at n = 30,162 on the 2-core CPU, measured while other
  jobs ran). NumPy arrays (mutable) and tracers are never cached.
  """
  parent = h.parent
  cacheable = isinstance(parent, jax.Array) and not isinstance(parent, jax.core.Tracer)
  if cacheable:
    hit = _ranges_cache.get(id(parent))
    if hit is not None and hit[0]() is parent:
      _ranges_cache.move_to_end(id(parent))
      return hit[1]
  r = _hier.leaf_ranges(Hierarchy(parent=parent))
  if cacheable:
    try:
      ref = weakref.ref(parent)
    except TypeError:
      return r
    _ranges_cache[id(parent)] = (ref, r)
    _ranges_cache.move_to_end(id(parent))
    while len(_ranges_cache) > RANGES_CACHE_SIZE:
      _ranges_cache.popitem(last=False)
  return r


def tree_views(parent, r: _hier.LeafRanges) -> TreeViews:
  """Views from ``parent`` and its ``leaf_ranges``."""
  root = _hier.root(Hierarchy(parent=parent))
  return TreeViews(r.order, r.start, r.stop, r.stop - r.start,
                   internal_mask(parent), root)


def mixed_children(parent):
  """``bool[m]``: internal nodes with both a leaf child and a non-leaf child."""
  m = parent.shape[-1]
  n = (m + 1) // 2
  idx = jnp.arange(m, dtype=jnp.int32)
  bucket = jnp.where(parent >= 0, parent, m)
  leaf_kids = jnp.zeros(m + 1, jnp.int32).at[bucket].add(
      (idx < n).astype(jnp.int32))[:m]
  inner_kids = jnp.zeros(m + 1, jnp.int32).at[bucket].add(
      (idx >= n).astype(jnp.int32))[:m]
  return (leaf_kids > 0) & (inner_kids > 0)


def prefix_sum_sequential(x):
  """Inclusive prefix sums along axis 0 by scans in two levels (the CPU form).

  The ``n`` rows go in ``ceil(sqrt(n))``-row blocks: one ``lax.scan`` over
  the rows of a block, all blocks at once (each step adds a whole slab),
  then one over the block totals; about ``2 sqrt(n)`` dependent steps
  instead of ``n`` (at n = 30,162: 348 instead of 30,162, and a
  ``lax.scan`` step on XLA:CPU costs about a microsecond however little it
  does). Integers only, so the result is exact.

  Args:
    x: ``int32[n, ...]``.

  Returns:
    ``int32[n, ...]``.
  """
  def add_row(carry, row):
    carry = carry + row
    return carry, carry

  n, rest = x.shape[0], x.shape[1:]
  block = max(1, math.isqrt(max(n - 1, 0)) + 1)
  if block >= n:
    return jax.lax.scan(add_row, jnp.zeros(rest, x.dtype), x)[1]
  num = -(-n // block)
  xp = jnp.pad(x, [(0, num * block - n)] + [(0, 0)] * len(rest))
  rows = jnp.moveaxis(xp.reshape((num, block) + rest), 1, 0)        # [block, num, ...]
  within = jax.lax.scan(add_row, jnp.zeros((num,) + rest, x.dtype), rows)[1]
  totals = within[-1]                                               # [num, ...]
  before = jax.lax.scan(lambda c, t: (c + t, c), jnp.zeros(rest, x.dtype), totals)[1]
  out = within + before[None]
  return jnp.moveaxis(out, 0, 1).reshape((num * block,) + rest)[:n]


def prefix_sum_parallel(x):
  """Inclusive prefix sums along axis 0, ``O(log n)`` depth (the reference form).

  Args:
    x: ``int32[n, ...]``.

  Returns:
    ``int32[n, ...]``.
  """
  return jax.lax.associative_scan(jnp.add, x, axis=0)


def prefix_sum(x):
  """Inclusive integer prefix sums along axis 0, the fastest form per backend."""
  return jax.lax.platform_dependent(x, cpu=prefix_sum_sequential,
                                    default=prefix_sum_parallel)


def counts_lanes(tree: TreeViews, colors, num_colors: int, prefix=prefix_sum):
  """``int32[m, c, b]`` colour counts of ``b`` colourings ``int32[b, n]``.

  Bit-sliced (:func:`leaf_words`, :func:`counts_before`): the batch's
  colour planes packed 32 colourings to a word and gathered into DFS order
  as words, then every node's counts from one row gather and a popcount
  at each end of its leaf range, the colourings on the minor axis. The
  last colour's count is ``size`` minus the others. Integers only (exact).
  ``prefix`` computes the per-word prefix sums (:func:`prefix_sum` picks
  the backend's fastest form).
  """
  b = colors.shape[0]
  m = tree.sizes.shape[0]
  n = tree.order.shape[0]
  if num_colors == 1:
    return jnp.broadcast_to(tree.sizes[:, None, None], (m, 1, b))
  lane_words = lanes_of(leaf_words(tree.order, colors, num_colors))      # [w, p, 32 Q]
  table = position_table(lane_words, prefix)
  stop_w, stop_m = position_index(jnp.clip(tree.stop, 0, n))
  start_w, start_m = position_index(jnp.clip(tree.start, 0, n))
  part = (counts_before(table, stop_w, stop_m)
          - counts_before(table, start_w, start_m))[:, :, :b]           # [m, p, b]
  size = tree.sizes[:, None]
  if num_colors == 2:
    return jnp.stack([part[:, 0], size - part[:, 0]], axis=1)
  return jnp.concatenate([part[:, :-1], (size - part[:, -1])[:, None]], axis=1)


def counts_lanes_scan(tree: TreeViews, colors, num_colors: int, prefix=prefix_sum):
  """``int32[m, c, b]``: the previous form of :func:`counts_lanes` (for comparison).

  The batch transposed and gathered into leaf order element by element
  (``colors.T[order]``, about 30 ns per element on XLA:CPU), one-hot int32
  prefix sums over all ``n`` positions, row gathers at ``stop`` and ``start``.
  """
  b = colors.shape[0]
  m = tree.sizes.shape[0]
  if num_colors == 1:
    return jnp.broadcast_to(tree.sizes[:, None, None], (m, 1, b))
  x = colors.T[tree.order]                                      # [n, b]
  onehot = (x[:, None, :] == jnp.arange(num_colors - 1, dtype=x.dtype)[None, :, None]
            ).astype(jnp.int32)                                 # [n, c-1, b]
  cum = prefix(onehot)
  cum = jnp.concatenate([jnp.zeros((1, num_colors - 1, b), jnp.int32), cum])
  part = cum[tree.stop] - cum[tree.start]                       # [m, c-1, b]
  last = tree.sizes[:, None] - jnp.sum(part, axis=1)            # [m, b]
  return jnp.concatenate([part, last[:, None, :]], axis=1)


PREFIX_BLOCK = 32
"""Rows of the triangular blocks of :func:`prefix_sum_matmul`."""

EXACT_FLOAT_LIMIT = 2**24
"""Integers below this are exact in float32 (the float verdict path needs ``n`` below it)."""


def _inclusive_triangle(k: int):
  """``float32[k, k]`` with ones on and above the diagonal: ``x @ U`` is ``x``'s prefix sums."""
  i = jnp.arange(k, dtype=jnp.int32)
  return (i[:, None] <= i[None, :]).astype(jnp.float32)


def prefix_sum_matmul(x, block: int = PREFIX_BLOCK):
  """Inclusive prefix sums along the last axis of ``x`` by blocked triangular matmuls.

  The ``L`` entries of each row go in ``block``-entry blocks; one matmul with
  the ``block x block`` upper-triangular ones matrix gives the prefix sums
  within every block (about ``2 block`` flops per entry, where XLA's dot is
  fast on every backend), and the block totals get the same treatment
  recursively (``L / block`` entries, then ``L / block^2``...). Exact for
  non-negative integer inputs whose row sums stay below 2^24: every partial
  sum is then an integer below 2^24, exact in float32. ``Precision.HIGHEST``
  keeps GPUs and TPUs from rounding the operands to TF32 / bfloat16.

  Args:
    x: ``float32[..., L]`` (non-negative integers, row sums below 2^24).
    block: the block size.

  Returns:
    ``float32[..., L]``.
  """
  hi = jax.lax.Precision.HIGHEST
  lead, size = x.shape[:-1], x.shape[-1]
  if size <= block:
    return jnp.matmul(x, _inclusive_triangle(size), precision=hi)
  num = -(-size // block)
  xp = jnp.pad(x, [(0, 0)] * len(lead) + [(0, num * block - size)])
  within = jnp.matmul(xp.reshape(lead + (num, block)), _inclusive_triangle(block),
                      precision=hi)                               # [..., num, block]
  totals = within[..., -1]
  before = prefix_sum_matmul(totals, block) - totals              # exclusive, [..., num]
  out = within + before[..., None]
  return out.reshape(lead + (num * block,))[..., :size]


def counts_rows(tree: TreeViews, colors, num_colors: int, first: int = 0):
  """``float32[b, c - 1, m - first]``: counts of colours ``0..c-2`` at nodes ``first..m-1``.

  For ``b`` colourings ``int32[b, n]``; ``first = n`` skips the leaves (the
  checks never test a leaf), halving the gathers.

  The float form behind the verdict-only checks (:func:`fairhc_jax.fairness.is_fair`,
  :func:`fairhc_jax.fairness.fairness_probability`): the colourings stay on
  the major axis (no transpose: a transposed ``[n, b]`` view gathered in
  leaf order costs XLA:CPU about 30 ns per element, a column gather of the
  untransposed batch about 2 ns), the one-hot is float32, the prefix sums
  are :func:`prefix_sum_matmul` and the per-node counts are column gathers
  ``C[:, stop] - C[:, start]``. Exact (integers below 2^24) for ``n <
  2^24``. The last colour's count is ``size`` minus these (not computed).
  """
  b, n = colors.shape
  g = jnp.arange(num_colors - 1, dtype=colors.dtype)
  onehot = (colors[:, None, :] == g[None, :, None]).astype(jnp.float32)   # [b, c-1, n]
  # The barrier keeps XLA from fusing the one-hot into the gather below
  # (an element-wise fused gather, several times slower).
  x = jax.lax.optimization_barrier(onehot)[:, :, tree.order]
  cum = prefix_sum_matmul(x)
  # (A leading zero column concatenated after the prefix sum measured faster
  # than one padded before it.)
  cum = jnp.concatenate([jnp.zeros((b, num_colors - 1, 1), jnp.float32), cum], axis=-1)
  cum = jax.lax.optimization_barrier(cum)
  return cum[:, :, tree.stop[first:]] - cum[:, :, tree.start[first:]]


def map_chunks(fn, colors, chunk: int = CHUNK):
  """Applies ``fn`` (``int32[b, n]`` -> outputs with a leading ``b`` axis) by chunks.

  The ``B`` colourings are split into ``ceil(B / chunk)`` equal chunks
  (padding only when they do not divide ``B``, which costs one output copy).
  """
  total, n = colors.shape
  if total <= chunk:
    return fn(colors)
  num = -(-total // chunk)
  size = -(-total // num)
  padded = colors
  if num * size != total:
    padded = jnp.pad(colors, ((0, num * size - total), (0, 0)))
  out = jax.lax.map(fn, padded.reshape(num, size, n))
  return jax.tree_util.tree_map(
      lambda x: x.reshape((num * size,) + x.shape[2:])[:total], out)


def batch_sharding(colors):
  """``(mesh, axis)`` when ``colors: int[B, n]`` is split over a mesh axis along ``B``.

  A batch placed with ``jax.device_put(colors, NamedSharding(mesh, P(axis)))``
  (or ``P(axis, None)``) on several devices; ``None`` otherwise (one device,
  a replicated batch, or a tracer).
  """
  sh = getattr(colors, "sharding", None)
  if not isinstance(sh, NamedSharding) or len(sh.device_set) < 2:
    return None
  spec = tuple(sh.spec)
  if not spec or spec[0] is None:
    return None
  return sh.mesh, spec[0]


def axis_size(mesh, axis) -> int:
  names = axis if isinstance(axis, tuple) else (axis,)
  size = 1
  for a in names:
    size *= mesh.shape[a]
  return size


def sharded_over_batch(local, shard, num_replicated: int, out_batched):
  """``local`` run per device on its slice of the batch (``jax.shard_map``).

  Args:
    local: ``f(*replicated, colors)`` on one device's colourings.
    shard: ``(mesh, axis)`` from :func:`batch_sharding`, or ``None`` (then
      ``local`` itself).
    num_replicated: the number of leading (tree-only) arguments, replicated.
    out_batched: a pytree of bools matching ``local``'s outputs: ``True`` for
      outputs with a leading batch axis (kept sharded over ``axis``),
      ``False`` for tree-only outputs (replicated).
  """
  if shard is None:
    return local
  mesh, axis = shard
  out_specs = jax.tree_util.tree_map(lambda b: P(axis) if b else P(), out_batched)
  return jax.shard_map(local, mesh=mesh,
                       in_specs=(P(),) * num_replicated + (P(axis, None),),
                       out_specs=out_specs, check_vma=False)


@functools.partial(jax.jit, static_argnames=("num_colors", "sequential", "shard"))
def _counts_batch(parent, ranges, colors, num_colors, sequential=None, shard=None):
  prefix = {None: prefix_sum, True: prefix_sum_sequential,
            False: prefix_sum_parallel}[sequential]

  def local(parent, ranges, colors):
    tree = tree_views(parent, ranges)
    return map_chunks(
        lambda cols: jnp.transpose(counts_lanes(tree, cols, num_colors, prefix), (2, 0, 1)),
        colors)

  return sharded_over_batch(local, shard, 2, True)(parent, ranges, colors)


def color_counts_kernel(h: Hierarchy, colors: jax.Array, num_colors: int) -> jax.Array:
  """Raw colour counts for internal callers (no input checks; jit/vmap safe).

  Args:
    h: a valid :class:`Hierarchy` on ``n`` leaves (only ``h.parent`` is used,
      so trees with and without heights share one compilation).
    colors: ``int32[n]``, one colouring with values in ``[0, num_colors)``.
    num_colors: ``c`` (static).

  Returns:
    ``int32[m, c]``: colour counts of every node (free slots 0).
  """
  parent = h.parent
  r = tree_ranges(h)
  # shard=None spelled out as in color_counts: jit keys an omitted static
  # keyword and an explicit default differently (one compile, not two).
  return _counts_batch(parent, r, jnp.asarray(colors, jnp.int32)[None],
                       num_colors=num_colors, shard=None)[0]


def color_counts(h, colors, num_colors: Optional[int] = None) -> jax.Array:
  """Colour counts of every node.

  Args:
    h: a hierarchy over ``n`` leaves (capacity ``m = 2n - 1``), or a result
      object with a ``.hierarchy``.
    colors: ``int[n]`` (one colouring) or ``int[B, n]`` (a batch), values in
      ``[0, num_colors)``.
    num_colors: ``c``; defaults to ``max(colors) + 1``.

  Returns:
    ``int32[m, c]`` (or ``int32[B, m, c]``): ``counts[u, g]`` is the number of
    leaves of colour ``g`` under node ``u``; unused slots hold zeros. O(n c)
    per colouring after one O(m log m) pass over the tree. A batch split
    over a mesh axis (``NamedSharding(mesh, P(axis))``, ``B`` a multiple of
    the axis size) is counted where it lies, and the result is split the
    same way along ``B`` (no gather).
  """
  fn = "color_counts"
  h = _inputs.tree_of(h)
  h, colors, batched, c = _inputs.prepare(fn, h, colors, num_colors)
  counts = _counts_batch(h.parent, tree_ranges(h), colors, num_colors=c,
                         shard=batch_sharding(colors) if batched else None)
  return counts if batched else counts[0]


# ---------------------------------------------------------------------------
# Bit-sliced counts: 32 colourings per word, counts by popcounts.

WORD = 32
"""Bits per packed word (colourings per word, then leaf positions per word)."""

LANES = 64
"""Colourings per step of the bit-sliced path (a multiple of ``WORD``)."""

_TRANSPOSE_MASKS = ((16, 0x0000FFFF), (8, 0x00FF00FF), (4, 0x0F0F0F0F),
                    (2, 0x33333333), (1, 0x55555555))


def num_planes(num_colors: int) -> int:
  """Bit planes of the bit-sliced path: colour 0 for two colours; else ``c``.

  With ``c > 2`` colours the planes are "colour ``g``" for ``g < c - 1`` and
  "colour below ``c - 1``" (the rows of :func:`fairhc_jax.fairness.checks.verdict_bounds`).
  """
  return 1 if num_colors <= 2 else num_colors


def plane_bits(colors, num_colors: int):
  """``bool[p, ...]``: the planes of :func:`num_planes` of ``colors: int[...]``."""
  if num_colors <= 2:
    return (colors == 0)[None]
  g = jnp.arange(num_colors - 1, dtype=colors.dtype).reshape((-1,) + (1,) * colors.ndim)
  return jnp.concatenate([colors[None] == g, (colors < num_colors - 1)[None]])


def pack_batch(colors, num_colors: int):
  """``uint32[Q, p, n]``: the planes of ``b`` colourings packed 32 to a word.

  Bit ``k`` of word ``[q, g, i]`` is plane ``g`` of colouring ``32 q + k`` at
  point ``i``; ``Q = ceil(b / 32)`` (missing colourings are zero bits).
  The 32-row groups are packed one per step of a ``lax.map``, so that the
  packed words are materialised before anything gathers them (fused into a
  gather, the packing re-reads 32 rows ``n`` apart per gathered word, about
  ten times slower).

  Args:
    colors: ``int32[b, n]``, values in ``[0, num_colors)``.
    num_colors: ``c >= 2`` (static).
  """
  b, n = colors.shape
  q = -(-b // WORD)
  if b < WORD:   # a small copy; the pad colour is arbitrary (those verdicts are dropped)
    colors = jnp.pad(colors, ((0, WORD - b), (0, 0)))
    b = WORD
  shift = jnp.arange(WORD, dtype=jnp.uint32)[:, None]

  def pack(i):                                      # -> [p, n]
    # Group i is colourings 32 i .. 32 i + 31; the last group of a batch that
    # is not a multiple of 32 is read from row b - 32 (no padded copy of the
    # batch) and shifted down so that bit k is still colouring 32 i + k.
    first = jnp.minimum(i * WORD, b - WORD)
    rows = jax.lax.dynamic_slice_in_dim(colors, first, WORD)
    bits = plane_bits(rows, num_colors).astype(jnp.uint32)      # [p, 32, n]
    word = jnp.sum(bits << shift[None], axis=1, dtype=jnp.uint32)
    return word >> (i * WORD - first).astype(jnp.uint32)

  return jax.lax.map(pack, jnp.arange(q, dtype=jnp.int32))


def bit_transpose32(x):
  """Transposes the ``32 x 32`` bit matrix in the last axis of ``x: uint32[..., 32]``.

  Bit ``i`` of ``out[..., k]`` is bit ``k`` of ``x[..., i]`` (five rounds
  of masked shifts and exclusive ors, Hacker's Delight 7-3).
  """
  lead = x.shape[:-1]
  for s, mask in _TRANSPOSE_MASKS:
    y = x.reshape(lead + (WORD // (2 * s), 2, s))
    a, b = y[..., 0, :], y[..., 1, :]            # rows with bit s of the index clear / set
    t = ((a >> s) ^ b) & jnp.uint32(mask)
    x = jnp.stack([a ^ (t << s), b ^ t], axis=-2).reshape(lead + (WORD,))
  return x


def num_words(n: int) -> int:
  """Words per plane of :func:`leaf_words`: positions ``0..n`` all fall in one (``n // 32 + 1``)."""
  return n // WORD + 1


def leaf_words(order, colors, num_colors: int):
  """``uint32[Q, p, w, 32]``: the batch's planes in DFS leaf order, 32 positions a word.

  Bit ``i`` of word ``[q, g, j, k]`` is plane ``g`` of colouring ``32 q + k``
  at DFS position ``32 j + i`` (zero past ``n``); ``w = num_words(n)``.
  One gather per 32 colourings and point (on packed words), then a bit
  transpose of every ``32 x 32`` tile.

  Args:
    order: ``int32[n]``, the leaves in DFS order.
    colors: ``int32[b, n]``.
    num_colors: ``c >= 2``.
  """
  n = colors.shape[1]
  w = num_words(n)
  packed = pack_batch(colors, num_colors)[..., order]           # [Q, p, n]
  packed = jnp.pad(packed, ((0, 0), (0, 0), (0, w * WORD - n)))
  q, p = packed.shape[:2]
  return bit_transpose32(packed.reshape(q, p, w, WORD))


def position_table(words, prefix=None):
  """``int32[w, p, 2, L]``: per word and lane, the count before it and the word itself.

  Args:
    words: ``uint32[w, p, L]``: lane ``l`` of word ``j`` holds the plane's bits
      at positions ``32 j .. 32 j + 31`` of one colouring.
    prefix: the inclusive integer prefix sum along axis 0 (default
      :func:`prefix_sum`).
  """
  pc = jax.lax.population_count(words).astype(jnp.int32)
  before = (prefix or prefix_sum)(pc) - pc                        # exclusive, exact
  return jnp.stack([before, jax.lax.bitcast_convert_type(words, jnp.int32)], axis=2)


def position_index(pos):
  """``(word, mask)`` of DFS positions ``pos: int32[K]`` for :func:`counts_before`."""
  pos = pos.astype(jnp.int32)
  low = (pos & (WORD - 1)).astype(jnp.uint32)
  return pos >> 5, (jnp.uint32(1) << low) - jnp.uint32(1)


def counts_before(table, word, mask):
  """``int32[K, p, L]``: plane bits at DFS positions below each of ``K`` positions.

  ``count(pos) = before[pos // 32] + popcount(word[pos // 32] & (2^(pos % 32) - 1))``:
  one row gather of the table per position, integers only (exact).
  """
  rows = table[word]                                              # [K, p, 2, L]
  bits = jax.lax.bitcast_convert_type(rows[:, :, 1], jnp.uint32) & mask[:, None, None]
  return rows[:, :, 0] + jax.lax.population_count(bits).astype(jnp.int32)


def lanes_of(tq):
  """``uint32[w, p, L]`` from ``tq: uint32[g, p, w, 32]`` (``L = 32 g`` colourings)."""
  g, p, w, _ = tq.shape
  return jnp.transpose(tq, (2, 1, 0, 3)).reshape(w, p, g * WORD)


def map_lanes(fn, words, lanes: int = LANES):
  """Applies ``fn`` (``uint32[w, p, L]`` -> ``[..., L]``) to ``lanes`` colourings at a time.

  Args:
    words: ``uint32[Q, p, w, 32]`` from :func:`leaf_words`.

  Returns:
    ``fn``'s outputs for all ``32 Q`` colourings (padded up to a multiple of
    ``lanes``), the colourings on the last axis.
  """
  q, p, w, _ = words.shape
  g = max(1, min(lanes // WORD, q))
  steps = -(-q // g)
  if steps * g != q:
    words = jnp.pad(words, ((0, steps * g - q), (0, 0), (0, 0), (0, 0)))
  out = jax.lax.map(lambda tq: fn(lanes_of(tq)), words.reshape((steps, g) + words.shape[1:]))
  return jax.tree_util.tree_map(
      lambda x: jnp.moveaxis(x, 0, -2).reshape(x.shape[1:-1] + (steps * x.shape[-1],)), out)
