"""The expected Dasgupta cost of a soft hierarchy, as matrix products.

Sampling model (:mod:`.params`): every point draws its parent from its row
of ``A``, every internal node from its row of ``B``, independently.

**Hard internal tree, soft points (exact).** When ``B`` is one-hot the
internal nodes form a fixed tree and the points are independent, so for two
points ``i != j``

* ``P(lca(i, j) = u) = Anc[i,u] Anc[j,u] - sum_{c child of u} Anc[i,c] Anc[j,c]``,
* given ``lca(i, j) = u``, ``E|u| = 2 + sum_{k != i, j} Anc[k, u]``,

and ``E[cost] = sum_{i<j} s(i,j) sum_u P(lca = u) (2 + E|u| - Anc[i,u] - Anc[j,u])``.
With ``W(u) = 1/2 sum_{i != j} s(i,j) Anc[i,u] Anc[j,u]``, ``E|u| = sum_i
Anc[i,u]`` and ``M = S Anc`` (diagonal of ``S`` removed) this is

``E[cost] = sum_u W(u) (E|u| - sum_y B[u,y] E|y|) + 2 W(root)
           - sum_{i,u} Anc[i,u]^2 M[i,u] + sum_{i,c} Anc[i,c] M[i,c] (Anc B^T)[i,c]``

(the first term telescopes ``|lca|`` along the tree; the last two remove
each pair's own two points from ``E|u|``). It is the exact expectation,
multilinear in the rows of ``A``, so its minimum over ``A`` is attained at a
hard assignment (the property Kollovieh et al., NeurIPS 2024, prove for
their sampled expected cost), and it equals :func:`fairhc_jax.dasgupta_cost`
when ``A`` is one-hot too (tested on random trees, and against a brute-force
expectation over every assignment of the points).

**Soft internal tree.** The same formula with soft ``B`` treats the
ancestor events of different internal nodes as independent (two paths that
meet stay together, so they are not); it is then a first-order
relaxation, like FPH's (Zügner et al., ICLR 2022), and exact again at
one-hot ``B``. (The plain FPH-style form, the first term alone, is lower
for every spread-out tree than for any hard one: in a probe on n = 300
points its optimiser drifted away from hard trees and the decoded cost
rose by 7% from its average-linkage start; the correction terms remove
that bias over the points.)

Cost of one evaluation: one ``n x n`` by ``n x n'`` product ``S Anc``
(``2 n^2 n'`` flops: 16 GFLOP at n = 4,000, n' = 512) and a few O(n n'^2)
products; reverse-mode adds one product of the same size. Float32 sums keep
about 1e-6 relative error at these sizes; use x64 for finite differences.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fairhc_jax import _checks
from fairhc_jax.soft import params as _params
from fairhc_jax.soft.params import SoftHierarchy

__all__ = ["expected_dasgupta_cost", "expected_dasgupta_cost_kernel",
           "expected_sizes", "pair_mass"]


def _offdiag_product(anc, S):
  """``S0 Anc`` with ``S0`` = ``S`` without its diagonal (O(n n') correction)."""
  return S @ anc - jnp.diagonal(S)[:, None] * anc


def pair_mass(anc: jax.Array, S: jax.Array) -> jax.Array:
  """``float[n']``: ``W(u) = 1/2 sum_{i != j} S[i, j] Anc[i, u] Anc[j, u]``."""
  return 0.5 * jnp.sum(anc * _offdiag_product(anc, S), axis=0)


def expected_sizes(params: SoftHierarchy, anc=None) -> jax.Array:
  """``float[n']``: the expected number of points under every internal node."""
  if anc is None:
    anc = _params.ancestors_kernel(params)
  return jnp.sum(anc, axis=0)


def _cost_from_ancestors(params, anc, S):
  M = _offdiag_product(anc, S)
  W = 0.5 * jnp.sum(anc * M, axis=0)
  size = jnp.sum(anc, axis=0)
  telescoped = jnp.sum(W * (size - params.B @ size)) + 2 * W[-1]
  own_points = jnp.sum(anc * anc * M) - jnp.sum(anc * M * (anc @ params.B.T))
  return telescoped - own_points


def expected_dasgupta_cost_kernel(params: SoftHierarchy, S: jax.Array) -> jax.Array:
  """The expected Dasgupta cost with no checks (jit / vmap / grad safe).

  Args:
    params: a :class:`SoftHierarchy` (``A: float[n, n']``, ``B: float[n', n']``).
    S: ``float[n, n]`` symmetric similarities (diagonal ignored).

  Returns:
    A scalar of ``A``'s dtype.
  """
  anc = _params.ancestors_kernel(params)
  return _cost_from_ancestors(params, anc, S)


def expected_dasgupta_cost(params: SoftHierarchy, S) -> jax.Array:
  """The expected Dasgupta cost of a soft hierarchy (module docstring).

  Exact for one-hot ``B`` (any ``A``); equal to
  :func:`fairhc_jax.dasgupta_cost` of the tree when ``A``, ``B`` are one-hot.

  Args:
    params: a :class:`SoftHierarchy` over ``n`` points.
    S: ``float[n, n]`` symmetric, non-negative similarities (the diagonal is
      ignored).

  Returns:
    A scalar; differentiable in ``params`` (``jax.grad``), vmappable.

  Raises:
    ValueError / TypeError: a malformed matrix or soft hierarchy.
  """
  fn = "expected_dasgupta_cost"
  S = _checks.check_square_matrix(fn, "S", S, kind="similarity")
  params = _params.check_params(fn, params, S.shape[0])
  dtype = jnp.result_type(params.A.dtype, S.dtype)
  params = SoftHierarchy(params.A.astype(dtype), params.B.astype(dtype))
  return _cost_jit(params, S.astype(dtype))


_cost_jit = jax.jit(expected_dasgupta_cost_kernel)
