"""Pairwise Euclidean distances and the papers' similarities, blocked for large n.

``pairwise_distances`` fills the ``n x n`` output one block of rows at a time
(a ``fori_loop`` writing row blocks in place), so the only ``n``-sized
temporaries are the output itself and one ``block_size x n`` block: at
``n = 30,000`` in float32 the result (3.6 GB) is the whole memory cost.

Accuracy. Two formulas are offered:

* ``method="direct"`` (default): ``sqrt(sum_f (x_f - y_f)^2)``, accumulated
  feature by feature. Every entry is within a few ulps of the exact distance,
  whatever the data (relative error about ``1e-7`` in float32), and exactly 0
  between identical points.
* ``method="gram"``: ``sqrt(|x|^2 + |y|^2 - 2 x.y)`` through a matrix product
  on centred data. Several times faster for many features, but the
  subtraction cancels: the absolute error of a squared distance is about
  ``eps * (|x|^2 + |y|^2)``, so close pairs far from the mean lose relative
  accuracy (``1e-6`` to ``1e-3`` in float32 on typical data). The diagonal is
  set to exactly 0 and negative squares are clipped.

Both return float32 by default and float64 under x64 (or for float64 input
when x64 is on).
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P

from fairhc_jax import _checks
from fairhc_jax import memory as _memory

DISTANCE_METHODS = ("direct", "gram")
"""Valid values of ``pairwise_distances``' ``method``."""

_FEATURE_CHUNK = 16  # features accumulated per fused pass of the direct formula
_BLOCK_ELEMENTS = 1 << 21  # default block: about 2M entries (8 MB in float32)


def _default_block(n: int) -> int:
  return int(max(1, min(n, _BLOCK_ELEMENTS // max(n, 1))))


@functools.partial(jax.jit, static_argnames=("block_size", "method"))
def _pairwise_kernel(x: jax.Array, block_size: int, method: str) -> jax.Array:
  """Blocked distance kernel for one point set ``float[n, d]`` -> ``float[n, n]``."""
  n, d = x.shape
  b = block_size
  num_blocks = -(-n // b)
  x = x - jnp.mean(x, axis=0)  # translation-invariant; shrinks |x| for "gram"
  if method == "direct":
    pad = (-d) % _FEATURE_CHUNK
    xt = jnp.pad(x, ((0, 0), (0, pad))).T  # float[d', n], features as rows
    num_chunks = xt.shape[0] // _FEATURE_CHUNK
    xt = xt.reshape(num_chunks, _FEATURE_CHUNK, n)
  else:
    sq = jnp.sum(x * x, axis=1)

  def block(t, out):
    # The last block is shifted back to end at n; it rewrites equal values.
    s = jnp.minimum(t * b, n - b)
    rows = jnp.arange(b) + s
    if method == "direct":
      def chunk(c, acc):
        xc = xt[c]  # float[F, n]
        xb = jax.lax.dynamic_slice_in_dim(xc, s, b, axis=1)  # float[F, b]
        for f in range(_FEATURE_CHUNK):
          diff = xb[f][:, None] - xc[f][None, :]
          acc = acc + diff * diff
        return acc
      sq_dist = jax.lax.fori_loop(0, num_chunks, chunk,
                                  jnp.zeros((b, n), x.dtype))
    else:
      xb = jax.lax.dynamic_slice_in_dim(x, s, b, axis=0)
      sb = jax.lax.dynamic_slice_in_dim(sq, s, b, axis=0)
      gram = jnp.matmul(xb, x.T, precision=jax.lax.Precision.HIGHEST)
      sq_dist = jnp.maximum(sb[:, None] + sq[None, :] - 2 * gram, 0)
      sq_dist = jnp.where(rows[:, None] == jnp.arange(n)[None, :], 0, sq_dist)
    return jax.lax.dynamic_update_slice(out, jnp.sqrt(sq_dist), (s, 0))

  out = jnp.zeros((n, n), x.dtype)
  return jax.lax.fori_loop(0, num_blocks, block, out)


def _row_axis(fn: str, sharding, n: int):
  """``(mesh, axis)`` of a row sharding ``NamedSharding(mesh, P(axis, None))``."""
  if not isinstance(sharding, NamedSharding):
    _checks.fail(fn, "sharding", "be a jax.sharding.NamedSharding(mesh, P(axis, None))",
                 repr(sharding), TypeError)
  spec = tuple(sharding.spec) + (None, None)
  if spec[0] is None or spec[1] is not None:
    _checks.fail(fn, "sharding", "split the rows only, P(axis, None)", repr(sharding.spec))
  axis = spec[0]
  names = axis if isinstance(axis, tuple) else (axis,)
  size = 1
  for a in names:
    size *= sharding.mesh.shape[a]
  if n % size:
    _checks.fail(fn, "sharding", f"split the {n} rows evenly (n a multiple of the "
                 f"{size} devices of axis {axis!r})", f"{n} rows")
  return sharding.mesh, axis, size


@functools.partial(jax.jit, static_argnames=("block_size", "method", "mesh", "axis"))
def _sharded_pairwise(x, block_size, method, mesh, axis):
  """Row-sharded distances: every device fills its own rows against all points."""
  x = x - jnp.mean(x, axis=0)
  n = x.shape[0]
  names = axis if isinstance(axis, tuple) else (axis,)
  size = 1
  for a in names:
    size *= mesh.shape[a]
  rows = n // size

  def local(xall):
    # X is replicated; each device takes its own rows (no resharding of X).
    i = jax.lax.axis_index(axis)
    xr = jax.lax.dynamic_slice_in_dim(xall, i * rows, rows, axis=0)
    return _rows_against(xr, xall, i * rows, block_size, method)

  return jax.shard_map(local, mesh=mesh, in_specs=(P(),),
                       out_specs=P(axis, None), check_vma=False)(x)


@functools.partial(jax.jit, static_argnames=("block_size", "method"))
def _rows_against(xr, x, offset, block_size, method):
  """``float[r, n]`` distances of the rows ``xr = x[offset:offset + r]`` to all points."""
  r = xr.shape[0]
  n, d = x.shape
  b = min(block_size, r)
  num_blocks = -(-r // b)
  if method == "direct":
    pad = (-d) % _FEATURE_CHUNK
    xt = jnp.pad(x, ((0, 0), (0, pad))).T
    xrt = jnp.pad(xr, ((0, 0), (0, pad))).T
    num_chunks = xt.shape[0] // _FEATURE_CHUNK
    xt = xt.reshape(num_chunks, _FEATURE_CHUNK, n)
    xrt = xrt.reshape(num_chunks, _FEATURE_CHUNK, r)
  else:
    sq = jnp.sum(x * x, axis=1)
    sqr = jnp.sum(xr * xr, axis=1)

  def block(t, out):
    s = jnp.minimum(t * b, r - b)
    if method == "direct":
      def chunk(c, acc):
        xc = xt[c]
        xb = jax.lax.dynamic_slice_in_dim(xrt[c], s, b, axis=1)
        for f in range(_FEATURE_CHUNK):
          diff = xb[f][:, None] - xc[f][None, :]
          acc = acc + diff * diff
        return acc
      sq_dist = jax.lax.fori_loop(0, num_chunks, chunk, jnp.zeros((b, n), x.dtype))
    else:
      xb = jax.lax.dynamic_slice_in_dim(xr, s, b, axis=0)
      sb = jax.lax.dynamic_slice_in_dim(sqr, s, b, axis=0)
      gram = jnp.matmul(xb, x.T, precision=jax.lax.Precision.HIGHEST)
      sq_dist = jnp.maximum(sb[:, None] + sq[None, :] - 2 * gram, 0)
      rows = offset + s + jnp.arange(b)
      sq_dist = jnp.where(rows[:, None] == jnp.arange(n)[None, :], 0, sq_dist)
    return jax.lax.dynamic_update_slice(out, jnp.sqrt(sq_dist), (s, 0))

  return jax.lax.fori_loop(0, num_blocks, block, jnp.zeros((r, n), x.dtype))


def pairwise_distances(X, *, block_size: Optional[int] = None,
                       method: str = "direct", sharding=None) -> jax.Array:
  """Euclidean distances between all pairs of points.

  Args:
    X: ``float[n, d]`` points (finite).
    block_size: rows computed per step (default: about 2M entries per block,
      so a block is a few MB whatever ``n``). Only speed depends on it.
    method: ``"direct"`` (accurate to a few ulps, default) or ``"gram"``
      (matrix-product formula: faster for many features, less accurate for
      close pairs; see the module docstring).
    sharding: optional ``NamedSharding(mesh, P(axis, None))``: the result is
      row-sharded over the mesh axis (``n`` a multiple of its size), each
      device computing its own ``n / size`` rows against all points
      (``X`` is replicated); equal to the one-device result (``"direct"``:
      bitwise).

  Returns:
    ``float[n, n]`` symmetric distances with a zero diagonal, in ``X``'s
    float dtype (float32 by default, float64 under x64). Compiled once per
    ``(n, d, block_size, method)``.

  Raises:
    MemoryError: the matrix does not fit in the device's free memory
      (:func:`fairhc_jax.memory.check_memory`; nothing is allocated).
  """
  fn = "pairwise_distances"
  x = _checks.check_points(fn, "X", X)
  _checks.check_choice(fn, "method", method, DISTANCE_METHODS)
  n = x.shape[0]
  if block_size is None:
    block_size = _default_block(n)
  else:
    block_size = _checks.check_positive_int(fn, "block_size", block_size)
  if sharding is None:
    _memory.check_memory(fn, n, _memory.square_bytes(n, x.dtype),
                         what=f"the {n} x {n} {x.dtype} distance matrix")
    return _pairwise_kernel(x, min(block_size, n), method)
  mesh, axis, size = _row_axis(fn, sharding, n)
  _memory.check_memory(fn, n, _memory.square_bytes(n, x.dtype) // size,
                       what=f"{n // size} rows of the {n} x {n} {x.dtype} distance "
                       f"matrix per device", devices=list(sharding.device_set))
  return _sharded_pairwise(x, min(block_size, n // size), method, mesh, axis)


def check_distances(D, *, zero_diagonal: bool = True) -> jax.Array:
  """Validates a distance matrix once, so later calls can skip it (``validate=False``).

  One blocked pass (see :func:`fairhc_jax._checks.check_square_matrix`; on
  CPU cut into concurrent row ranges, one per core): finite, non-negative,
  symmetric, and (by default) a zero diagonal. Every
  function taking a matrix accepts ``validate=False``; the pipelines check
  their matrix once this way and call the kernels directly. Example::

    D = check_distances(pairwise_distances(X))      # or your own matrix
    t = tree_objectives(h, D, validate=False)
    c = dasgupta_cost(h2, S, validate=False)

  Args:
    D: ``float[n, n]``.
    zero_diagonal: also require a zero diagonal.

  Returns:
    ``D`` as a float JAX array (no copy for a float JAX array).

  Raises:
    ValueError: naming what is wrong (``check_distances: D must be ...``).
  """
  return _checks.check_square_matrix("check_distances", "D", D,
                                     zero_diagonal=zero_diagonal)


@jax.jit
def _similarity_kernel(d: jax.Array) -> jax.Array:
  n = d.shape[0]
  s = 1 / (1 + d)
  return jnp.where(jnp.eye(n, dtype=bool), jnp.zeros((), d.dtype), s)


def similarity(D, *, validate: bool = True) -> jax.Array:
  """The papers' similarity ``s(i, j) = 1 / (1 + d(i, j))``, zero on the diagonal.

  This allocates a second ``n x n`` matrix; for the objectives use
  :func:`fairhc_jax.objectives.tree_objectives`, which computes the
  similarity on the fly from ``D``.

  Args:
    D: ``float[n, n]`` distance matrix (symmetric, finite, non-negative).
    validate: ``False`` skips the value checks of ``D``.

  Returns:
    ``float[n, n]`` similarities in ``(0, 1]`` off the diagonal, 0 on it,
    in ``D``'s float dtype.
  """
  d = _checks.check_square_matrix("similarity", "D", D, validate=validate)
  n = d.shape[0]
  _memory.check_memory("similarity", n, _memory.square_bytes(n, d.dtype),
                       what=f"the {n} x {n} similarity matrix")
  return _similarity_kernel(d)
