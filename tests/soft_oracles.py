"""Independent NumPy oracles shared by the soft-hierarchy test files (no library kernels)."""

import jax.numpy as jnp
import numpy as np

from fairhc_jax import soft


def one_hot(leaf_parent, node_parent, dtype=np.float64):
  """The hard tree (leaf_parent int[n], node_parent int[k]) as a one-hot SoftHierarchy."""
  n, k = len(leaf_parent), len(node_parent)
  A = np.zeros((n, k), dtype)
  A[np.arange(n), leaf_parent] = 1
  B = np.zeros((k, k), dtype)
  for z in range(k):
    if node_parent[z] >= 0:
      B[z, node_parent[z]] = 1
  return soft.SoftHierarchy(jnp.asarray(A), jnp.asarray(B))


def ancestors_or_self(node_parent, z):
  """Node z and its ancestors, bottom up, by walking parent pointers."""
  out = []
  while z >= 0:
    out.append(z)
    z = node_parent[z]
  return out


def oracle_cost(S, leaf_parent, node_parent):
  """sum_{i<j} S[i,j] |leaves(lca(i,j))| by walking parent pointers."""
  n = len(leaf_parent)
  paths = [ancestors_or_self(node_parent, leaf_parent[i]) for i in range(n)]
  under = {}
  for p in paths:
    for z in p:
      under[z] = under.get(z, 0) + 1
  total = 0.0
  for i in range(n):
    for j in range(i + 1, n):
      pj = set(paths[j])
      total += S[i, j] * under[next(z for z in paths[i] if z in pj)]
  return total


def bisect_projection(v, mask):
  """Euclidean projection of v[mask] onto the simplex by bisection on the threshold."""
  if not mask.any():
    return np.zeros_like(v)
  lo, hi = v[mask].min() - 1.0, v[mask].max()
  for _ in range(200):
    t = (lo + hi) / 2
    if np.maximum(v[mask] - t, 0).sum() > 1:
      lo = t
    else:
      hi = t
  out = np.zeros_like(v)
  out[mask] = np.maximum(v[mask] - (lo + hi) / 2, 0)
  return out


def similarity(rng, n):
  """s = 1 / (1 + d) of n random points in the plane, float64[n, n]."""
  X = rng.normal(size=(n, 2))
  D = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
  return 1 / (1 + D)
