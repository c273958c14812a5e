"""Independent NumPy oracles shared by the fairness test files (no library code)."""

import numpy as np


def random_binary_parent(n, rng):
  """Parent array of a random binary tree over n leaves (random pairs merged)."""
  parent = np.full(2 * n - 1, -1, np.int64)
  active = list(range(n))
  nxt = n
  while len(active) > 1:
    i, j = sorted(rng.choice(len(active), 2, replace=False), reverse=True)
    a, b = active.pop(i), active.pop(j)
    parent[a] = parent[b] = nxt
    active.append(nxt)
    nxt += 1
  return parent


def oracle_counts(parent, colors, c):
  """int64[m, c] by adding every node into its parent (children precede parents)."""
  n = (len(parent) + 1) // 2
  out = np.zeros((len(parent), c), np.int64)
  out[np.arange(n), colors] = 1
  for u in range(len(parent)):
    if parent[u] >= 0:
      out[parent[u]] += out[u]
  return out
