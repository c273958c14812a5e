"""Literal NumPy transcriptions of Chhabra & Mohapatra's Algorithms 1 and 2.

Independent of the library: cluster distances are recomputed from the
members' point-to-point distances (single = min, complete = max, average =
mean, Ward from within-cluster sums of squares; weighted = WPGMA, which has
only a recursive definition, from the two merged children), and the pair
scan is the paper's double loop with a running best.
"""

from __future__ import annotations

import math

import numpy as np


def _ess(d2, members):
  """Within-cluster sum of squares from squared distances: sum_{pairs} d^2 / |A|."""
  idx = np.asarray(members)
  return d2[np.ix_(idx, idx)].sum() / (2 * len(idx))


class Clusters:
  """Slots in order of smallest point; a merge of slots i < j keeps i."""

  def __init__(self, D, method):
    self.D = np.asarray(D)
    self.d2 = self.D * self.D
    self.method = method
    n = self.D.shape[0]
    self.members = {i: [i] for i in range(n)}
    self.node = {i: i for i in range(n)}
    self.wpgma = {}   # (node_a, node_b) -> distance, for "weighted"
    self.n = n
    self.next_node = n
    self.parent = np.full(2 * n - 1, -1, np.int64)
    self.height = np.zeros(2 * n - 1, np.float64)

  def slots(self):
    return sorted(self.members)

  def dist(self, a, b):
    A, B = self.members[a], self.members[b]
    m = self.method
    block = self.D[np.ix_(A, B)]
    if m == "single":
      return float(block.min())
    if m == "complete":
      return float(block.max())
    if m == "average":
      return float(block.mean())
    if m == "ward":
      e = _ess(self.d2, A + B) - _ess(self.d2, A) - _ess(self.d2, B)
      return math.sqrt(max(2.0 * e, 0.0))
    if m == "weighted":
      return self._wpgma(self.node[a], self.node[b])
    raise ValueError(m)

  def _children(self, u):
    return [c for c in range(len(self.parent)) if self.parent[c] == u]

  def _wpgma(self, u, v):
    key = (min(u, v), max(u, v))
    if key in self.wpgma:
      return self.wpgma[key]
    if u < self.n and v < self.n:
      val = float(self.D[u, v])
    else:
      # Recurse on the later-formed node: d(a+b, c) = (d(a, c) + d(b, c)) / 2.
      w, o = (u, v) if u > v else (v, u)
      a, b = self._children(w)
      val = 0.5 * (self._wpgma(a, o) + self._wpgma(b, o))
    self.wpgma[key] = val
    return val

  def merge(self, a, b, h):
    i, j = min(a, b), max(a, b)
    t = self.next_node
    self.parent[self.node[i]] = t
    self.parent[self.node[j]] = t
    self.height[t] = h
    self.members[i] = self.members[i] + self.members[j]
    del self.members[j]
    self.node[i] = t
    del self.node[j]
    self.next_node += 1


def flag_count(colors, members, totals, alpha, dtype=np.float64):
  """sum_g [ |n_g(C) n - n_g |C|| <= alpha n |C| ] (the kernel's exact form)."""
  n = len(colors)
  c = len(totals)
  cnt = np.bincount(np.asarray(colors)[members], minlength=c).astype(np.int64)
  size = len(members)
  e = np.abs(cnt * n - totals * size).astype(dtype)
  rhs = dtype(alpha) * dtype(size * n)
  return int(np.sum(e <= rhs))


def fhac_literal(D, colors, params, k, method="average", num_colors=None,
                 dtype=np.float64, rule="literal"):
  """Algorithm 1, as the library documents it: returns (parent, height, trace).

  ``trace`` lists the (i, j) slot pair of every merge.
  """
  alpha0, theta1, beta0, theta2 = [dtype(p) for p in params]
  colors = np.asarray(colors)
  n = len(colors)
  c = int(colors.max()) + 1 if num_colors is None else num_colors
  totals = np.bincount(colors, minlength=c).astype(np.int64)
  cl = Clusters(D, method)
  trace = []
  while len(cl.members) > 1:
    slots = cl.slots()
    C = len(slots)
    if C > k:
      alpha = dtype(theta1 * dtype(C - k) + alpha0)
      beta = dtype(theta2 * dtype(n - C) + beta0)
      if rule == "literal":
        best, p_best, d_min = None, 0, dtype(np.inf)
        for x, i in enumerate(slots):
          for j in slots[x + 1:]:
            p = flag_count(colors, cl.members[i] + cl.members[j], totals, alpha, dtype)
            d = dtype(cl.dist(i, j))
            if p >= p_best and d < dtype(d_min + beta):
              best, p_best, d_min = (i, j), p, d
      else:  # vectorized: within beta of the closest, most groups, then closest, then first
        pairs = [(i, j) for x, i in enumerate(slots) for j in slots[x + 1:]]
        ds = [dtype(cl.dist(i, j)) for i, j in pairs]
        dmin = min(ds)
        cands = [(-flag_count(colors, cl.members[i] + cl.members[j], totals, alpha, dtype),
                  d, q) for q, ((i, j), d) in enumerate(zip(pairs, ds))
                 if d <= dtype(dmin + beta)]
        best = pairs[min(cands)[2]]
    else:
      best, d_min = None, np.inf
      for x, i in enumerate(slots):
        for j in slots[x + 1:]:
          d = cl.dist(i, j)
          if d < d_min:
            best, d_min = (i, j), d
    h = cl.dist(*best)
    trace.append(best)
    cl.merge(best[0], best[1], h)
  return cl.parent, cl.height, trace


def _lance_williams_np(method, dki, dkj, dij, ni, nj, nk):
  """d(k, i + j) from the stored distances (squared for Ward), NumPy."""
  if method == "single":
    return np.minimum(dki, dkj)
  if method == "complete":
    return np.maximum(dki, dkj)
  if method == "average":
    return (ni * dki + nj * dkj) / (ni + nj)
  if method == "weighted":
    return (dki + dkj) / 2
  if method == "ward":
    return ((ni + nk) * dki + (nj + nk) * dkj - nk * dij) / (ni + nj + nk)
  raise ValueError(method)


def fhac_vectorized_matrix(D, colors, params, k, method="average", num_colors=None,
                           dtype=np.float64):
  """The vectorised rule by brute force on a full matrix: (parent, height, trace).

  For sizes where re-deriving cluster distances from the members (``fhac_literal``)
  is too slow. Each fair merge evaluates every active pair ``a < b``: ``s`` (the
  exact group test ``fl(e) <= fl(alpha fl(n|c|))``), the stored distance ``d``
  (squared for Ward) and ``D`` (its root for Ward); keeps the pairs with
  ``D <= fl(min D + beta)``; merges the one with the most groups, then the
  smallest ``d``, then the smallest ``(a, b)``. Plain merges: the smallest
  ``(d, a, b)``. ``alpha_t``, ``beta_t`` are rounded per operation in ``dtype``.
  """
  alpha0, theta1, beta0, theta2 = [dtype(p) for p in params]
  colors = np.asarray(colors)
  n = len(colors)
  c = int(colors.max()) + 1 if num_colors is None else num_colors
  totals = np.bincount(colors, minlength=c).astype(np.int64)
  d = np.asarray(D, np.float64).astype(dtype)
  if method == "ward":
    d = d * d
  cnt = np.zeros((n, c), np.int64)
  cnt[np.arange(n), colors] = 1
  size = np.ones(n, np.int64)
  node = np.arange(n)
  alive = np.ones(n, bool)
  parent = np.full(2 * n - 1, -1, np.int64)
  height = np.zeros(2 * n - 1, np.float64)
  trace = []
  for t in range(n - 1):
    C = n - t
    act = np.flatnonzero(alive)
    ia, ib = np.triu_indices(len(act), 1)
    a, b = act[ia], act[ib]
    dd = d[a, b]
    root = np.sqrt(dd) if method == "ward" else dd
    if C > k:
      alpha = dtype(dtype(theta1 * dtype(C - k)) + alpha0)
      beta = dtype(dtype(theta2 * dtype(t)) + beta0)
      sz = size[a] + size[b]
      e = np.abs((cnt[a] + cnt[b]) * n - totals[None, :] * sz[:, None]).astype(dtype)
      rhs = alpha * (sz * n).astype(dtype)
      s = np.sum(e <= rhs[:, None], axis=1)
      inwin = root <= dtype(root.min() + beta)
      q = np.lexsort((b[inwin], a[inwin], dd[inwin], -s[inwin]))[0]
      x, y = a[inwin][q], b[inwin][q]
    else:
      q = np.lexsort((b, a, dd))[0]
      x, y = a[q], b[q]
    dxy = d[x, y]
    trace.append((int(x), int(y)))
    new = _lance_williams_np(method, d[x], d[y], dxy, dtype(size[x]), dtype(size[y]),
                             size.astype(dtype))
    d[x, :] = new
    d[:, x] = new
    alive[y] = False
    u = n + t
    parent[node[x]] = parent[node[y]] = u
    height[u] = np.sqrt(dxy) if method == "ward" else dxy
    node[x] = u
    cnt[x] += cnt[y]
    size[x] += size[y]
  return parent, height, trace
