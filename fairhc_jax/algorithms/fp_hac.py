"""FP-HAC: making an existing binary tree fairer (Chhabra & Mohapatra, Algorithm 2).

Given a binary hierarchy and ``k``, take the ``k`` clusters ``m_1..m_k`` of
the level with ``k`` clusters (the state after ``n - k`` merges of the merge
order, i.e. of the internal nodes by index). Descend level by level: level 0
is the ``k`` top clusters; level ``l + 1`` replaces each node of level ``l``
by its two children (a leaf stays). At each level, for every pair of top
clusters ``i < j`` (in order of their smallest point at the start), every
node ``x`` of level ``l`` inside ``m_i`` and then every node ``y`` inside
``m_j`` (nodes in order of their smallest point), the exchange of the whole
subtrees ``x`` and ``y`` is tested against the *current* top clusters:

* fairness: for both ``m_i`` and ``m_j`` the number of groups ``g`` whose
  ``|delta_g - phi_g|`` strictly decreases is at least the number whose does
  not (decided exactly in integers:
  ``|n n'_g - n_g |m'|| |m| < |n n_g(m) - n_g |m|| |m'|``);
* distance (only when ``eps`` is finite):
  ``|D(x_S, y) - D(x_S, x)| <= eps`` and ``|D(y_S, x) - D(y_S, y)| <= eps``,
  ``x_S`` the current sibling of ``x`` and ``D`` the linkage distance
  between the clusters' point sets (single = min, complete = max, average =
  mean of the point distances).

An accepted exchange is applied at once (the two subtrees swap parent
pointers, so the tree stays binary and keeps every point) and the scan
moves on to the next ``x`` (each ``x`` is exchanged at most once per pair of
top clusters and level). The first level (the top clusters themselves) is
skipped: exchanging two whole top clusters permutes the ``k`` clusters and
cannot change the FC. With ``alpha`` given, the descent stops as soon as
every top cluster is within ``alpha`` of ``phi`` for every group (checked
before each level). ``mode="leaves"`` is the paper's Table 4 variant: one
pass over single points (``x, y`` leaves), ``eps = inf``.

[decision] Theorem 4.1 (the FC at level ``k`` never rises). With two groups
``|delta_0 - phi_0| = |delta_1 - phi_1|``, so the paper's majority test
implies that both affected clusters' costs fall. With three or more groups a
majority of improving groups does not imply a lower sum, so an exchange is
also required not to raise ``cost(m_i) + cost(m_j)`` (exact rational
comparison, ``cost = sum_g |delta_g - phi_g|``): that is what the theorem
claims, and it changes nothing for two groups.

Output: the result keeps the level structure: internal nodes below the
``k``-level are relabelled in a child-before-parent order, the ``k - 1``
merges above it keep the last indices, so the ``k``-level of the result is
again the (updated) top clusters and ``fairness_cost(result, colors, k)``
is the FC the algorithm lowered. Heights move with their nodes.

``rule="vectorized"`` (:func:`fp_hac_rounds_host`): per level, rounds that
score every candidate exchange at once (with ``eps = inf`` over the classes
of equal colour-count vectors, which have equal scores; with a finite
``eps`` over the nodes, the distance test evaluated for all pairs from the
linkage distances between the level's nodes and their siblings) and apply a
set of non-conflicting ones (no two share a top cluster), each passing the
literal test on the state it changes; the same guarantees, far fewer Python
steps (the whole-Census tree takes seconds to minutes instead of hours).

This is host code (NumPy): the scan is sequential by definition (every
accepted exchange changes the state the next test sees). Work per level is
O(P f) with ``P`` the number of candidate pairs ``(x, y)``, so it is meant
for the paper's sizes (hundreds to a few thousand points).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Optional

import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax.hierarchy import Hierarchy, check_hierarchy

MODES = ("levels", "leaves")
RULES = ("literal", "vectorized")
FP_METHODS = ("average", "single", "complete")


def _top_clusters(parent: np.ndarray, n: int, k: int) -> np.ndarray:
  """Nodes alive after ``n - k`` merges of a binary tree with nodes ``n..2n-2``."""
  m = parent.shape[0]
  limit = n + (n - k)            # internal nodes n..limit-1 are merged
  idx = np.arange(m)
  used = idx < limit
  par = parent
  alive = used & ((par < 0) | (par >= limit))
  return idx[alive]


def _children(parent: np.ndarray, m: int):
  kids = [[] for _ in range(m)]
  for c, p in enumerate(parent):
    if p >= 0:
      kids[p].append(c)
  return kids


def _leaves_under(kids, n, u):
  out, stack = [], [u]
  while stack:
    v = stack.pop()
    if v < n:
      out.append(v)
    else:
      stack.extend(kids[v])
  return out


def _cost_key(cnt, size, totals, n):
  """Exact ``sum_g |delta_g - phi_g|`` as a Fraction."""
  return sum(Fraction(abs(int(cg) * n - int(tg) * size), size * n)
             for cg, tg in zip(cnt, totals)) if size else Fraction(0)


def _improves(cnt_old, size_old, cnt_new, size_new, totals, n):
  """Per group: does ``|delta_g - phi_g|`` strictly decrease? (exact integers)."""
  old = np.abs(cnt_old * n - totals * size_old) * size_new
  new = np.abs(cnt_new * n - totals * size_new) * size_old
  return new < old


def _link(D, A, B, method):
  block = D[np.ix_(A, B)]
  if method == "single":
    return float(block.min())
  if method == "complete":
    return float(block.max())
  return float(block.mean())


class _TreeState:
  """Host state both rules share: the tree, per-node colour counts and
  smallest points (fixed: a node's own subtree never changes), and the
  current counts of the ``k`` top clusters (in order of smallest point)."""

  def __init__(self, parent, colors, k: int, num_colors: int):
    self.parent = np.array(parent, np.int64)
    m = self.parent.shape[0]
    self.n = n = (m + 1) // 2
    self.k = k
    self.f = num_colors
    colors = np.asarray(colors, np.int64)
    self.totals = np.bincount(colors, minlength=num_colors).astype(np.int64)
    self.kids = _children(self.parent, m)
    cnt = np.zeros((m, num_colors), np.int64)
    low = np.full(m, n, np.int64)
    cnt[np.arange(n), colors] = 1
    low[:n] = np.arange(n)
    for u in range(n, m):
      for c in self.kids[u]:
        cnt[u] += cnt[c]
        low[u] = min(low[u], low[c])
    self.cnt, self.low, self.size = cnt, low, cnt.sum(1)
    top = _top_clusters(self.parent, n, k)
    self.top = top[np.argsort(low[top])]
    self.tcnt = cnt[self.top].copy()
    self.tsize = self.size[self.top].copy()

  def fair_enough(self, alpha) -> bool:
    """Every top cluster within ``alpha`` of ``phi`` for every group (exact)."""
    if alpha is None:
      return False
    a = Fraction(alpha).limit_denominator(10**6)
    e = np.abs(self.tcnt * self.n - self.totals[None, :] * self.tsize[:, None])
    return all(Fraction(int(v), int(s) * self.n) <= a
               for row, s in zip(e, self.tsize) for v in row)

  def after(self, i, j, x, y):
    """Counts and sizes of top clusters ``i, j`` after exchanging ``x in i`` and ``y in j``."""
    cnt, size = self.cnt, self.size
    return (self.tcnt[i] - cnt[x] + cnt[y], self.tcnt[j] - cnt[y] + cnt[x],
            int(self.tsize[i] - size[x] + size[y]), int(self.tsize[j] - size[y] + size[x]))

  def cost_ok(self, i, j, ci, cj, si, sj) -> bool:
    """``cost(m_i) + cost(m_j)`` does not rise (exact Fractions)."""
    t, n = self.totals, self.n
    return (_cost_key(ci, si, t, n) + _cost_key(cj, sj, t, n)
            <= _cost_key(self.tcnt[i], int(self.tsize[i]), t, n)
            + _cost_key(self.tcnt[j], int(self.tsize[j]), t, n))

  def sibling(self, x):
    a, b = self.kids[self.parent[x]]
    return b if a == x else a

  def leaves(self, u):
    return _leaves_under(self.kids, self.n, u)

  def distance_ok(self, x, y, D, eps, method) -> bool:
    """``|D(x_S, y) - D(x_S, x)| <= eps`` and ``|D(y_S, x) - D(y_S, y)| <= eps`` (float64)."""
    if not math.isfinite(eps):
      return True
    lx, ly = self.leaves(x), self.leaves(y)
    lxs, lys = self.leaves(self.sibling(x)), self.leaves(self.sibling(y))
    return (abs(_link(D, lxs, ly, method) - _link(D, lxs, lx, method)) <= eps
            and abs(_link(D, lys, lx, method) - _link(D, lys, ly, method)) <= eps)

  def apply(self, i, j, x, y):
    """Exchanges subtrees ``x`` (in top cluster ``i``) and ``y`` (in ``j``): swap parent pointers."""
    ci, cj, si, sj = self.after(i, j, x, y)
    px, py = self.parent[x], self.parent[y]
    self.parent[x], self.parent[y] = py, px
    self.kids[px] = [y if c == x else c for c in self.kids[px]]
    self.kids[py] = [x if c == y else c for c in self.kids[py]]
    self.tcnt[i], self.tcnt[j] = ci, cj
    self.tsize[i], self.tsize[j] = si, sj

  def descend(self, mode, alpha, run_level):
    """Calls ``run_level(members, level_id)`` per level (``members``: per top
    cluster its level nodes in smallest-point order), Algorithm 2's descent:
    ``"leaves"`` is one pass over the points; ``"levels"`` stops early once
    :meth:`fair_enough` (checked before each level) or at the leaves."""
    n = self.n
    if mode == "leaves":
      run_level([sorted(self.leaves(int(t))) for t in self.top], 0)
      return
    level = [[int(t)] for t in self.top]
    level_id = 0
    while not self.fair_enough(alpha):
      nxt = []
      for nodes in level:
        new = []
        for u in nodes:
          new.extend(self.kids[u] if u >= n else [u])
        nxt.append(sorted(new, key=lambda v: self.low[v]))
      level_id += 1
      run_level(nxt, level_id)
      level = nxt
      if all(u < n for nodes in level for u in nodes):
        break


def fp_hac_host(parent, colors, *, k: int, num_colors: int, D=None,
                eps: float = math.inf, mode: str = "levels",
                alpha: Optional[float] = None, method: str = "average"):
  """FP-HAC on NumPy arrays; returns ``(new_parent, top, exchanges)``.

  ``new_parent`` is not yet relabelled (see :func:`fp_hac`); ``top`` lists
  the top-cluster nodes; ``exchanges`` the accepted ``(level, x, y)``.
  """
  st = _TreeState(parent, colors, k, num_colors)
  n, f, totals = st.n, st.f, st.totals
  exchanges = []

  def scan(level_nodes, level_id):
    for i in range(k):
      for j in range(i + 1, k):
        xs = level_nodes[i]
        ys = level_nodes[j]
        for px in range(len(xs)):
          x = xs[px]
          for py in range(len(ys)):
            y = ys[py]
            ci_new, cj_new, si_new, sj_new = st.after(i, j, x, y)
            if si_new <= 0 or sj_new <= 0:
              continue
            imp_i = _improves(st.tcnt[i], st.tsize[i], ci_new, si_new, totals, n)
            imp_j = _improves(st.tcnt[j], st.tsize[j], cj_new, sj_new, totals, n)
            if 2 * int(imp_i.sum()) < f or 2 * int(imp_j.sum()) < f:
              continue
            if not st.cost_ok(i, j, ci_new, cj_new, si_new, sj_new):
              continue
            if not st.distance_ok(x, y, D, eps, method):
              continue
            st.apply(i, j, x, y)
            xs[px], ys[py] = y, x
            exchanges.append((level_id, int(x), int(y)))
            break

  st.descend(mode, alpha, scan)
  return st.parent, st.top, exchanges


def _linkage_between(D, sets, method):
  """``float64[U, U]``: linkage distance between the point sets (average / single / complete)."""
  u = len(sets)
  n = D.shape[0]
  if method == "average":
    M = np.zeros((u, n))
    for r, s in enumerate(sets):
      M[r, s] = 1.0 / len(s)
    return M @ D @ M.T
  red = np.min if method == "single" else np.max
  rows = np.stack([red(D[s], axis=0) for s in sets])          # [U, n]
  return np.stack([red(rows[:, s], axis=1) for s in sets], axis=1)


def fp_hac_rounds_host(parent, colors, *, k: int, num_colors: int,
                       mode: str = "levels", alpha: Optional[float] = None,
                       D=None, eps: float = math.inf, method: str = "average"):
  """The vectorised FP-HAC variant (``rule="vectorized"``).

  Per level, rounds: every candidate exchange ``(x, y)`` between two
  different top clusters (``x, y`` unused nodes of the level) is scored at
  once. With ``eps = inf``, candidates with equal colour-count vectors have
  equal scores, so the scoring runs over the classes of equal count vectors
  of each top cluster (the node used for a class is its first unused one in
  smallest-point order); with a finite ``eps`` every node is its own class
  and candidates are also filtered by the distance test, evaluated for all
  pairs at once from the linkage distances between the level's nodes and
  their current siblings (recomputed each round). For every pair of top
  clusters: the exact integer majority test of the literal rule for both
  clusters, plus the rule that ``cost(m_i) + cost(m_j)`` must not rise, and
  the FC decrease as the score. A round then applies a set of
  non-conflicting exchanges: the best candidate of each pair of top
  clusters, greedily by score over pairs that share no top cluster, each
  re-checked exactly on the current state before it is applied (the cost
  rule with Fractions; the distance test as the literal rule computes it,
  so the vectorised filter, which only ranks, may differ from it in the last
  bits without changing what is accepted, beyond a candidate the filter
  rejected within ``1e-9`` relative of ``eps``). So every applied exchange
  passes the literal rule against the state it changes, no two touch the
  same top cluster, FC at level ``k`` never rises, and each node is
  exchanged at most once per level. The level ends when a round applies
  nothing.

  Returns ``(new_parent, top, exchanges)`` like :func:`fp_hac_host`
  (``exchanges`` as ``(level, round, x, y)``).
  """
  st = _TreeState(parent, colors, k, num_colors)
  n, f, totals = st.n, st.f, st.totals
  finite = math.isfinite(eps)
  exchanges = []

  def err(t, s):          # n s * cost, per row: sum_g |n t_g - n_g s| (exact)
    return np.abs(t * n - totals * s[..., None]).sum(-1)

  def run_level(members, level_id):
    """``members``: per top cluster, its level nodes in smallest-point order."""
    queues = []           # per cluster: {class: [nodes]}
    for nodes in members:
      q = {}
      for u in nodes:
        q.setdefault((u,) if finite else tuple(st.cnt[u]), []).append(u)
      queues.append(q)
    round_id = 0
    while True:
      if finite:   # distances between the unused level nodes and their siblings
        nodes = sorted({u for q in queues for v in q.values() for u in v})
        sib = {u: st.sibling(u) for u in nodes}
        ids = sorted(set(nodes) | set(sib.values()))
        pos = {u: r for r, u in enumerate(ids)}
        L = _linkage_between(D, [st.leaves(u) for u in ids], method)
      best = []           # (score, i, j, x, y)
      for i in range(k):
        for j in range(i + 1, k):
          ci = [key for key, v in queues[i].items() if v]
          cj = [key for key, v in queues[j].items() if v]
          if not ci or not cj:
            continue
          xi = [queues[i][key][0] for key in ci]
          yj = [queues[j][key][0] for key in cj]
          a = st.cnt[xi][:, None, :]                          # [A, 1, c]
          b = st.cnt[yj][None, :, :]                          # [1, B, c]
          sa, sb = a.sum(-1), b.sum(-1)
          ti = st.tcnt[i] - a + b
          tj = st.tcnt[j] - b + a
          si = st.tsize[i] - sa + sb
          sj = st.tsize[j] - sb + sa
          ok = (si > 0) & (sj > 0)
          si_, sj_ = np.maximum(si, 1), np.maximum(sj, 1)
          old_i = np.abs(st.tcnt[i] * n - totals * st.tsize[i])
          old_j = np.abs(st.tcnt[j] * n - totals * st.tsize[j])
          imp_i = (np.abs(ti * n - totals * si_[..., None]) * st.tsize[i] < old_i * si_[..., None]).sum(-1)
          imp_j = (np.abs(tj * n - totals * sj_[..., None]) * st.tsize[j] < old_j * sj_[..., None]).sum(-1)
          ok &= (2 * imp_i >= f) & (2 * imp_j >= f)
          if finite:
            px = np.array([pos[x] for x in xi])[:, None]
            py = np.array([pos[y] for y in yj])[None, :]
            pxs = np.array([pos[sib[x]] for x in xi])[:, None]
            pys = np.array([pos[sib[y]] for y in yj])[None, :]
            tol = eps * (1 + 1e-9) + 1e-12
            ok &= (np.abs(L[pxs, py] - L[pxs, px]) <= tol) & (np.abs(L[pys, px] - L[pys, py]) <= tol)
          before = (err(st.tcnt[i], st.tsize[i]) / (n * st.tsize[i])
                    + err(st.tcnt[j], st.tsize[j]) / (n * st.tsize[j]))
          after = err(ti, si_) / (n * si_) + err(tj, sj_) / (n * sj_)
          score = np.where(ok, before - after, -np.inf)
          if not np.isfinite(score.max()):
            continue
          for flat in np.argsort(-score, axis=None, kind="stable"):
            ia, ib = np.unravel_index(flat, score.shape)
            if not np.isfinite(score[ia, ib]):
              break
            x, y = xi[ia], yj[ib]
            # Exact re-check of the literal rule (float only ranked the candidates).
            ci_new, cj_new, zi, zj = st.after(i, j, x, y)
            if (st.cost_ok(i, j, ci_new, cj_new, zi, zj)
                and st.distance_ok(x, y, D, eps, method)):
              best.append((float(score[ia, ib]), i, j, x, y))
              break
      if not best:
        return
      best.sort(key=lambda r: (-r[0], r[1], r[2]))
      busy = set()
      for _, i, j, x, y in best:
        if i in busy or j in busy:
          continue
        busy.update((i, j))
        st.apply(i, j, x, y)
        queues[i][(x,) if finite else tuple(st.cnt[x])].pop(0)
        queues[j][(y,) if finite else tuple(st.cnt[y])].pop(0)
        members[i][members[i].index(x)] = y
        members[j][members[j].index(y)] = x
        exchanges.append((level_id, round_id, int(x), int(y)))
      round_id += 1

  st.descend(mode, alpha, run_level)
  return st.parent, st.top, exchanges


def _relabel(parent: np.ndarray, height: Optional[np.ndarray], n: int, k: int):
  """Child-before-parent labels keeping the ``k - 1`` top merges last."""
  m = parent.shape[0]
  limit = n + (n - k)
  kids = _children(parent, m)
  key = np.zeros(m, np.int64)
  depth = np.zeros(m, np.int64)
  # Depth by walking up (binary trees of the paper's sizes).
  for u in range(m):
    d, v = 0, u
    while parent[v] >= 0:
      v = parent[v]
      d += 1
    depth[u] = d

  def subtree_key(u):
    best, stack = u, [u]
    while stack:
      v = stack.pop()
      if v >= n:
        best = max(best, v if v < limit else -1)
        stack.extend(kids[v])
    return best

  lower = [u for u in range(n, limit)]
  keys = {u: (subtree_key(u), -depth[u]) for u in lower}
  order = sorted(lower, key=lambda u: keys[u]) + list(range(limit, m))
  new_label = np.arange(m)
  for pos, u in enumerate(order):
    new_label[u] = n + pos
  new_parent = np.full(m, -1, np.int64)
  for u in range(m):
    if parent[u] >= 0:
      new_parent[new_label[u]] = new_label[parent[u]]
  new_height = None
  if height is not None:
    new_height = np.zeros(m, np.asarray(height).dtype)
    new_height[new_label] = np.asarray(height)
  return new_parent, new_height


def fp_hac(h: Hierarchy, colors, *, k: int, D=None, eps: float = math.inf,
           mode: str = "levels", alpha: Optional[float] = None,
           method: str = "average", num_colors=None,
           rule: str = "literal") -> Hierarchy:
  """Fair Post-HAC (Chhabra & Mohapatra Algorithm 2) on a binary hierarchy.

  Args:
    h: a binary :class:`Hierarchy` over ``n`` points (every internal node
      two children; e.g. from :func:`fairhc_jax.linkage` or FHAC). Binarise a
      non-binary tree first (e.g. ``from_linkage(to_linkage(h))``).
    colors: ``int[n]`` groups in ``[0, num_colors)``.
    k: the level with ``k`` clusters whose FC is lowered, ``1 <= k <= n``.
    D: ``float[n, n]`` point distances; needed only when ``eps`` is finite.
    eps: distance tolerance ``>= 0`` (``inf``: no distance test).
    mode: ``"levels"`` (Algorithm 2) or ``"leaves"`` (Table 4: single points).
    alpha: optional tolerance in ``[0, 1]`` for the early stop.
    method: the linkage ``D`` between clusters for the distance test:
      ``"average"``, ``"single"`` or ``"complete"``.
    num_colors: ``c``; defaults to ``max(colors) + 1``.
    rule: ``"literal"`` (the paper's sequential scan) or ``"vectorized"``
      (all candidate exchanges of a level scored at once, a set of
      non-conflicting ones applied per round; :func:`fp_hac_rounds_host`).
      Both keep every guarantee below.

  Returns:
    A binary :class:`Hierarchy` on the same points whose ``k``-level FC is
    at most the input's (Theorem 4.1); heights move with their nodes.

  Raises:
    ValueError / TypeError: a non-binary or invalid tree, ``k`` outside
      ``[1, n]``, bad colours, ``eps < 0``, ``D`` missing for a finite
      ``eps``, unknown mode or method.
  """
  fn = "fp_hac"
  h = check_hierarchy(fn, h)
  parent = np.asarray(h.parent)
  n = (parent.shape[0] + 1) // 2
  if np.any(parent == -2):
    _checks.fail(fn, "h", "be a binary tree (binarise it first, e.g. "
                 "from_linkage(to_linkage(h)))", "a tree with free slots")
  counts = np.bincount(parent[parent >= 0], minlength=parent.shape[0])
  if np.any(counts[n:] != 2):
    _checks.fail(fn, "h", "be a binary tree (binarise it first, e.g. "
                 "from_linkage(to_linkage(h)))",
                 f"an internal node with {int(counts[n:][counts[n:] != 2][0])} children")
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
    _checks.fail(fn, "k", f"be an integer in [1, {n}]", repr(k), TypeError)
  if not 1 <= int(k) <= n:
    _checks.fail(fn, "k", f"be in [1, n] = [1, {n}]", int(k))
  col, c = _checks.check_colors(fn, "colors", colors, n, num_colors, batched=False)
  _checks.check_choice(fn, "mode", mode, MODES)
  _checks.check_choice(fn, "method", method, FP_METHODS)
  try:
    eps = float(eps)
  except (TypeError, ValueError):
    _checks.fail(fn, "eps", "be a number >= 0", repr(eps), TypeError)
  if not eps >= 0:
    _checks.fail(fn, "eps", "be >= 0", repr(eps))
  if mode == "leaves":
    eps = math.inf
  Dn = None
  if math.isfinite(eps):
    if D is None:
      _checks.fail(fn, "D", "be given when eps is finite", "None")
    Dn = np.asarray(_checks.check_square_matrix(fn, "D", D), np.float64)
    if Dn.shape[0] != n:
      _checks.fail(fn, "D", f"be float[{n}, {n}]", f"shape {Dn.shape}")
  if alpha is not None:
    a = float(alpha)
    if not 0 <= a <= 1:
      _checks.fail(fn, "alpha", "be in [0, 1]", repr(alpha))
  _checks.check_choice(fn, "rule", rule, RULES)
  if rule == "vectorized":
    new_parent, _, _ = fp_hac_rounds_host(parent, np.asarray(col), k=int(k),
                                          num_colors=c, mode=mode, alpha=alpha,
                                          D=Dn, eps=eps, method=method)
  else:
    new_parent, _, _ = fp_hac_host(parent, np.asarray(col), k=int(k), num_colors=c,
                                   D=Dn, eps=eps, mode=mode, alpha=alpha,
                                   method=method)
  height = None if h.height is None else np.asarray(h.height)
  p2, h2 = _relabel(new_parent, height, n, int(k))
  return Hierarchy(parent=jnp.asarray(p2, jnp.int32),
                   height=None if h2 is None else jnp.asarray(h2))
