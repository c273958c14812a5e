"""The soft-hierarchy parametrisation (FPH / EPH style) and its initialisations.

A soft hierarchy over ``n`` points with ``n'`` internal nodes is a pair of
row-stochastic matrices (Zügner et al., ICLR 2022; Kollovieh et al.,
NeurIPS 2024):

* ``A: float[n, n']``: ``A[i, z]`` is the probability that internal node
  ``z`` is the parent of point ``i``;
* ``B: float[n', n']``: ``B[z, y]`` is the probability that ``y`` is the
  parent of internal node ``z``; ``B`` is strictly upper triangular (a
  parent has a larger index), so the root is the last internal node
  ``n' - 1`` and its row is zero (it has no parent).

Sampling every node's parent independently from its row gives a random
hierarchy; a one-hot ``A``, ``B`` is one hard tree (possibly with empty or
single-child internal nodes, which :func:`fairhc_jax.soft.decode` removes).

The parameters live on the simplex (not as logits): a training step is any
optax update followed by :func:`project`, the Euclidean projection of every
row onto its simplex (Duchi et al. 2008; ``B``'s rows onto the face of the
nodes above them). That is FPH's projected gradient descent; it lets a run
start exactly at a hard tree (a compressed average-linkage tree), where a
softmax parametrisation would have vanishing gradients.

Ancestor probabilities: ``R = (I - B)^{-1} = I + B + B^2 + ...`` (a finite
series: ``B`` is nilpotent) holds ``R[z, y] = P(y is z or an ancestor of
z)``, and ``Anc = A R`` (``float[n, n']``) holds the probability that ``y``
is an ancestor of point ``i``. The events of one path are disjoint (a
node's path to the root is unique once the parents are drawn), so these are
exact probabilities of the sampling model. ``R`` comes from a blocked
inverse of the unit triangular ``I - B`` made of matrix multiplies
(O(n'^3)), then ``Anc = A R`` (O(n n'^2)), differentiable by JAX.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax import hierarchy as _hier
from fairhc_jax.hierarchy import Hierarchy

__all__ = [
    "SoftHierarchy", "ancestors", "ancestors_kernel", "from_hierarchy",
    "parent_mask", "project", "random_init", "compress",
]


class SoftHierarchy(NamedTuple):
  """A soft hierarchy (a pytree; a leading batch axis for vmapped batches).

  Attributes:
    A: ``float[n, n']`` leaf-to-parent probabilities, rows on the simplex.
    B: ``float[n', n']`` internal-to-parent probabilities, strictly upper
      triangular; rows ``0..n'-2`` on the simplex, the root's row zero.
  """

  A: jax.Array
  B: jax.Array

  @property
  def num_points(self) -> int:
    return self.A.shape[-2]

  @property
  def num_internal(self) -> int:
    return self.A.shape[-1]


def parent_mask(num_internal: int, dtype=bool) -> jax.Array:
  """``dtype[n', n']``: where ``B`` may be non-zero (``y > z``; root row empty)."""
  k = num_internal
  return jnp.triu(jnp.ones((k, k), dtype), 1)


def _project_rows(V, mask=None):
  """Row-wise simplex projection of ``V: float[r, k]`` onto the masked faces.

  Exact, by Michelot's iteration on every row at once: ``theta <- (sum_{v >
  theta} v - 1) / #{v > theta}`` from ``theta_0 = max((sum v - 1) / width,
  max v - 1)`` (two lower bounds of the threshold: all entries active, and
  the largest alone), which increases to the projection's threshold and
  stops when no row's active set changes. Each round keeps the larger of
  the old and the new ``theta``, so the active sets only shrink and the
  iteration ends within ``k + 1`` rounds even when float rounding would
  step back (without that, a row could flip between two active sets until
  the cap); about 5 rounds for Dirichlet rows one Adam step away, at ``k =
  512``; near one-hot rows start at (or next to) their threshold from the
  second bound (8-10 rounds without it).

  Each round is written as ``theta + (sum_v relu(v - theta) - 1) / #{v >
  theta}`` (the same update) with the count as ``sum sign(relu(v -
  theta))``: two row sums of one clipped difference, which XLA:CPU fuses
  into its reductions. A compare-and-convert indicator used by two sums is
  written to memory first and each sum reads it back (measured 5-8x slower
  per round at ``[4000, 512]``).

  Args:
    V: ``float[r, k]``.
    mask: ``bool[r, k]`` (or broadcastable) support of every row, or
      ``None`` (every entry). Rows with an empty mask become zero.
  """
  k = V.shape[-1]
  if mask is None:
    U = V
    width = jnp.asarray(k, V.dtype)
    th0 = jnp.maximum((jnp.sum(V, -1) - 1) / width, jnp.max(V, -1) - 1)
  else:
    big = jnp.asarray(jnp.finfo(V.dtype).max / 4, V.dtype)
    on = mask.astype(V.dtype)                # products, not selects (XLA:CPU)
    U = V * on - big * (1 - on)              # masked entries are never active
    width = jnp.sum(on, axis=-1)
    th0 = jnp.maximum((jnp.sum(V * on, -1) - 1) / jnp.maximum(width, 1),
                      jnp.max(U, -1) - 1)

  def body(c):
    th, prev, it, _ = c
    excess = jnp.maximum(U - th[:, None], 0)
    cnt = jnp.sum(jnp.sign(excess), -1)
    # Monotone by construction: in float32 the new value can round below the
    # current one and re-admit an entry, and the active set then flip-flops
    # until the round cap (measured: 4 s instead of 64 ms at n = 4,000,
    # n' = 512, one Adam step after a hard tree).
    nt = jnp.maximum(th, th + (jnp.sum(excess, -1) - 1) / jnp.maximum(cnt, 1))
    return nt, cnt, it + 1, jnp.any(cnt != prev)
  init = (th0, jnp.full(th0.shape, -1, V.dtype), jnp.int32(0), jnp.bool_(True))
  theta = jax.lax.while_loop(lambda c: c[3] & (c[2] <= k + 1), body, init)[0]
  out = jnp.maximum(V - theta[:, None], 0)
  return out if mask is None else out * on


def project(params: SoftHierarchy) -> SoftHierarchy:
  """Projects every row of ``A`` and ``B`` back onto its simplex (jit, vmap safe).

  Args:
    params: a :class:`SoftHierarchy` whose rows may have left the simplex
      (after a gradient step).

  Returns:
    The nearest valid :class:`SoftHierarchy` (Euclidean distance, row by row;
    see :func:`_project_rows`).
  """
  k = params.A.shape[-1]
  A = _project_rows(params.A)
  B = _project_rows(params.B, parent_mask(k))
  return SoftHierarchy(A, B)


_LEAF_BLOCK = 64


def _unit_upper_inverse(B: jax.Array) -> jax.Array:
  """``(I - B)^{-1} = I + B + B^2 + ...`` for strictly upper-triangular ``B``.

  Blocks of at most 64 use the doubling product ``(I + B)(I + B^2)(I + B^4)
  ...`` (exact: ``B^k = 0``); larger ones recurse on 2 x 2 blocks,
  ``R12 = R11 B12 R22``. All matrix multiplies (XLA:CPU's triangular solve
  was 5-10x slower here), about ``k^3 / 3`` multiply-adds.
  """
  k = B.shape[-1]
  eye = jnp.eye(k, dtype=B.dtype)
  if k <= _LEAF_BLOCK:
    R = eye + B
    P = B
    for _ in range(max(0, int(np.ceil(np.log2(max(k, 1)))) - 1)):
      P = P @ P
      R = R + R @ P
    return R
  h = k // 2
  R11 = _unit_upper_inverse(B[:h, :h])
  R22 = _unit_upper_inverse(B[h:, h:])
  R12 = R11 @ B[:h, h:] @ R22
  top = jnp.concatenate([R11, R12], axis=1)
  bottom = jnp.concatenate([jnp.zeros((k - h, h), B.dtype), R22], axis=1)
  return jnp.concatenate([top, bottom], axis=0)


def reach_kernel(params: SoftHierarchy) -> jax.Array:
  """``float[n', n']``: ``R[z, y] = P(y is z or an ancestor of z)`` (no checks)."""
  return _unit_upper_inverse(params.B)


def ancestors_kernel(params: SoftHierarchy) -> jax.Array:
  """``float[n, n']``: ``P(internal node y is an ancestor of point i)`` (no checks).

  ``Anc = A R`` with ``R = (I - B)^{-1}`` from :func:`reach_kernel`.
  """
  return params.A @ reach_kernel(params)


def ancestors(params: SoftHierarchy) -> jax.Array:
  """Ancestor probabilities ``Anc = A (I - B)^{-1}`` of a soft hierarchy.

  Args:
    params: a :class:`SoftHierarchy` (``A: float[n, n']``, ``B: float[n', n']``).

  Returns:
    ``float[n, n']``; column ``n' - 1`` (the root) is all ones.
  """
  check_params("ancestors", params)
  return ancestors_kernel(params)


def check_params(fn: str, params, n: Optional[int] = None) -> SoftHierarchy:
  """Validates a :class:`SoftHierarchy` (shapes; values when concrete)."""
  if not isinstance(params, SoftHierarchy):
    _checks.fail(fn, "params", "be a SoftHierarchy(A, B)", type(params).__name__,
                 TypeError)
  A = _checks.as_float(fn, "params.A", params.A)
  B = _checks.as_float(fn, "params.B", params.B)
  if A.ndim != 2:
    _checks.fail(fn, "params.A", "be float[n, n']", f"shape {tuple(A.shape)}")
  k = A.shape[1]
  if B.shape != (k, k):
    _checks.fail(fn, "params.B", f"be float[n', n'] = [{k}, {k}] to match params.A",
                 f"shape {tuple(B.shape)}")
  if n is not None and A.shape[0] != n:
    _checks.fail(fn, "params.A", f"have one row per point ({n})",
                 f"{A.shape[0]} rows")
  if _checks.is_concrete(A) and _checks.is_concrete(B):
    a, b = np.asarray(A, np.float64), np.asarray(B, np.float64)
    tol = 1e-4 if A.dtype == jnp.float32 else 1e-9
    if not (np.all(np.isfinite(a)) and np.all(a >= -tol)
            and np.all(np.abs(a.sum(1) - 1) <= tol * max(1, k))):
      _checks.fail(fn, "params.A", "have non-negative rows summing to 1 "
                   "(use soft.project)", "rows off the simplex")
    if np.any(np.abs(np.tril(b)) > tol) or np.any(np.abs(b[-1]) > tol):
      _checks.fail(fn, "params.B", "be strictly upper triangular with a zero "
                   "root row (the last)", "entries at or below the diagonal")
    if not (np.all(np.isfinite(b)) and np.all(b >= -tol) and
            np.all(np.abs(b[:-1].sum(1) - 1) <= tol * max(1, k))):
      _checks.fail(fn, "params.B", "have non-negative rows 0..n'-2 summing to 1 "
                   "(use soft.project)", "rows off the simplex")
  return SoftHierarchy(A, B)


def compress(h: Hierarchy, num_internal: int) -> tuple:
  """Compresses a hierarchy to at most ``num_internal`` internal nodes (NumPy).

  Keeps the ``num_internal`` internal nodes with the most leaves (ties by
  index), an upward-closed set since a parent has more leaves than its
  child; each point's parent becomes its lowest kept ancestor, each kept
  node's parent its own (kept) parent.

  Args:
    h: a valid :class:`Hierarchy` over ``n`` points.
    num_internal: ``n' >= 1``.

  Returns:
    ``(leaf_parent: int[n], node_parent: int[n'])`` in soft-node indices
    ``0..n'-1`` (topological, root ``n' - 1``; ``node_parent[root] = -1``).
    Slots beyond the tree's internal nodes are empty nodes whose parent is
    the root.
  """
  parent = np.asarray(h.parent).astype(np.int64)
  m = parent.shape[0]
  n = (m + 1) // 2
  k = num_internal
  used = parent != _hier.UNUSED
  counts = np.zeros(m, np.int64)
  counts[:n] = 1
  for u in range(m):             # children before parents
    if used[u] and parent[u] >= 0:
      counts[parent[u]] += counts[u]
  internal = np.nonzero(used[n:])[0] + n
  if internal.size == 0:         # n = 1: a single leaf, no internal node
    return np.full(n, k - 1, np.int64), _empty_chain(k)
  order = np.lexsort((-internal, -counts[internal]))   # most leaves first
  kept = np.sort(internal[order[:k]])                  # index order = topological
  q = kept.size
  # Kept nodes take soft slots k-q..k-1 (root last); empty slots 0..k-q-1.
  slot = np.full(m, -1, np.int64)
  slot[kept] = np.arange(k - q, k)
  is_kept = slot >= 0
  # Lowest kept ancestor of every node, top-down (parents have larger index).
  low = np.full(m, -1, np.int64)
  for u in range(m - 1, -1, -1):
    if not used[u]:
      continue
    p = parent[u]
    if p < 0:
      low[u] = u if is_kept[u] else -1
    else:
      low[u] = u if is_kept[u] else low[p]
  up = np.full(m, -1, np.int64)  # lowest kept proper ancestor
  for u in range(m):
    if used[u] and parent[u] >= 0:
      up[u] = low[parent[u]]
  leaf_parent = slot[up[:n]]
  node_parent = np.full(k, k - 1, np.int64)
  node_parent[k - q:] = np.where(up[kept] >= 0, slot[np.maximum(up[kept], 0)], -1)
  node_parent[k - 1] = -1
  return leaf_parent, node_parent


def _empty_chain(k: int) -> np.ndarray:
  p = np.full(k, k - 1, np.int64)
  p[-1] = -1
  return p


def one_hot_params(leaf_parent, node_parent, dtype=None) -> SoftHierarchy:
  """The hard :class:`SoftHierarchy` of parent indices (``node_parent[-1] = -1``)."""
  dtype = dtype or _checks.float_dtype()
  k = node_parent.shape[0]
  A = jax.nn.one_hot(jnp.asarray(leaf_parent), k, dtype=dtype)
  B = jax.nn.one_hot(jnp.asarray(node_parent), k, dtype=dtype)   # -1 -> zero row
  return SoftHierarchy(A, B)


def from_hierarchy(h: Hierarchy, num_internal: int, *, smoothing: float = 0.0,
                   dtype=None) -> SoftHierarchy:
  """A soft hierarchy at (or near) a hard tree compressed to ``num_internal`` nodes.

  Args:
    h: a valid :class:`Hierarchy` over ``n`` points (e.g. average linkage).
    num_internal: ``n' >= 1`` internal nodes of the soft hierarchy (see
      :func:`compress`; a smaller tree leaves empty slots).
    smoothing: in ``[0, 1)``: mix each row with the uniform distribution on
      its support, ``(1 - smoothing) * one_hot + smoothing * uniform``.
    dtype: float dtype (default float32, float64 under x64).

  Returns:
    A :class:`SoftHierarchy`; with ``smoothing = 0`` it is exactly the
    compressed tree (its expected cost is that tree's Dasgupta cost).
  """
  fn = "from_hierarchy"
  h = _hier.check_hierarchy(fn, h)
  k = _checks.check_positive_int(fn, "num_internal", num_internal)
  smoothing = float(smoothing)
  if not 0 <= smoothing < 1:
    _checks.fail(fn, "smoothing", "lie in [0, 1)", smoothing)
  lp, npar = compress(h, k)
  params = one_hot_params(lp, npar, dtype)
  if smoothing > 0:
    params = _smooth(params, smoothing)
  return params


def _smooth(params: SoftHierarchy, smoothing: float) -> SoftHierarchy:
  A, B = params
  k = A.shape[1]
  mask = parent_mask(k, A.dtype)
  width = jnp.maximum(mask.sum(1, keepdims=True), 1)
  A = (1 - smoothing) * A + smoothing / k
  B = ((1 - smoothing) * B + smoothing * mask / width) * mask
  return SoftHierarchy(A, B)


def random_init(key, num_points: int, num_internal: int, *, dtype=None) -> SoftHierarchy:
  """A random soft hierarchy: every row uniform on its simplex (Dirichlet(1)).

  Args:
    key: PRNG key (consumed).
    num_points: ``n >= 1``.
    num_internal: ``n' >= 1``.
    dtype: float dtype (default float32, float64 under x64).

  Returns:
    A :class:`SoftHierarchy` (vmap over ``key`` for several initialisations).
  """
  fn = "random_init"
  n = _checks.check_positive_int(fn, "num_points", num_points)
  k = _checks.check_positive_int(fn, "num_internal", num_internal)
  return _random_kernel(key, n, k, dtype or _checks.float_dtype())


def _random_kernel(key, n: int, k: int, dtype) -> SoftHierarchy:
  ka, kb = jax.random.split(key)
  ea = jax.random.exponential(ka, (n, k), dtype)
  A = ea / ea.sum(1, keepdims=True)
  mask = parent_mask(k, dtype)
  eb = jax.random.exponential(kb, (k, k), dtype) * mask
  B = eb / jnp.maximum(eb.sum(1, keepdims=True), jnp.finfo(dtype).tiny)
  return SoftHierarchy(A, B)
