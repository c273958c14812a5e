"""Completing a decoded soft tree: a sub-tree inside every decoded internal node.

A soft hierarchy has ``n' < n - 1`` internal nodes, so its decoded tree
(:func:`fairhc_jax.soft.decode`) hangs many points directly from one node:
every pair of them has that node as its LCA. Refining such a node (splitting
its children into a binary sub-tree) can only lower the Dasgupta cost (each
pair's LCA becomes the old node or a descendant of it, with fewer leaves),
so the expected cost the soft hierarchy trains on is an upper bound of the
cost of any completion of its decoded tree.

Two completions, both applied independently inside every decoded internal
node ``z`` whose *items* are its children (child internal nodes, each
already completed, and points):

* **by a reference tree** :func:`complete_by_reference`: the items are
  merged by single linkage on the reference tree's ultrametric, i.e. two
  groups of items are joined at the lowest reference-tree node that holds a
  point of each (equal levels make one multi-way node). When the decoded
  tree is the reference tree compressed to ``n'`` nodes (every item a
  cluster of the reference tree, as at the start of :func:`~.train.fit`),
  the completion *is* the reference tree (exactly, as a set of clusters);
  :func:`~.train.fit` then never returns a tree worse than its start.
* **by average linkage** :func:`complete_by_average_linkage`: the items are
  merged by average linkage on the similarities (each item a cluster of its
  points; the next merge joins the two groups with the largest average
  similarity between their points), i.e. average linkage restricted to the
  inside of ``z``. With average linkage as the start this also reproduces
  the start (average linkage is reducible), up to ties.

Both are host (NumPy) work: O(sum_z |z| log n) for the reference completion
(``|z|`` the points under ``z``), O(sum_z m_z (|z| + n) + m_z^3) for average
linkage (``m_z`` items).
"""

from __future__ import annotations

import numpy as np

from fairhc_jax import _checks
from fairhc_jax import hierarchy as _hier
from fairhc_jax import memory as _memory
from fairhc_jax.hierarchy import Hierarchy

__all__ = ["complete_by_average_linkage", "complete_by_reference", "repair_by_blocks"]


# ---------------------------------------------------------------------------
# Tree helpers on parent arrays (NumPy).
def _structure(parent: np.ndarray, n: int):
  """Children lists (index order), DFS leaf order and leaf ranges of a tree."""
  m = parent.shape[0]
  kids = [[] for _ in range(m)]
  for u in range(m):
    p = parent[u]
    if p >= 0:
      kids[p].append(u)
  root = int(np.nonzero(parent == _hier.NO_PARENT)[0][0])
  start = np.zeros(m, np.int64)
  stop = np.zeros(m, np.int64)
  order = np.empty(n, np.int64)
  t = 0
  stack = [(root, False)]
  while stack:
    u, done = stack.pop()
    if done:
      stop[u] = t
      continue
    start[u] = t
    if u < n:
      order[t] = u
      t += 1
      stop[u] = t
      continue
    stack.append((u, True))
    for c in reversed(kids[u]):
      stack.append((c, False))
  return kids, root, order, start, stop


def _leaf_gaps(parent: np.ndarray, n: int, kids, start) -> np.ndarray:
  """``int64[n - 1]``: ``gap[t]`` = LCA (a node index; ancestors have larger
  ones) of the consecutive points ``order[t], order[t + 1]`` of the DFS leaf
  order, from :func:`_structure`'s ``kids`` and ``start``."""
  gap = np.zeros(n - 1, np.int64)
  for v in range(n, parent.shape[0]):
    if parent[v] == _hier.UNUSED:
      continue
    for c in kids[v][1:]:
      gap[start[c] - 1] = v
  return gap


class _RangeMax:
  """O(1) range maxima of a fixed integer array (sparse table)."""

  def __init__(self, a: np.ndarray):
    self.levels = [a]
    k = 1
    while 2 * k <= a.shape[0]:
      prev = self.levels[-1]
      self.levels.append(np.maximum(prev[:-k], prev[k:]))
      k *= 2

  def query(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Maxima over ``a[lo..hi]`` (inclusive, ``lo <= hi``), vectorised."""
    length = hi - lo + 1
    j = np.floor(np.log2(np.maximum(length, 1))).astype(np.int64)
    out = np.empty(lo.shape[0], np.int64)
    for lev in np.unique(j):
      sel = j == lev
      tab = self.levels[lev]
      out[sel] = np.maximum(tab[lo[sel]], tab[hi[sel] - (1 << lev) + 1])
    return out


def _merge_groups(items: list, edges_a, edges_b, levels, next_id: int, new_parent: dict):
  """Single linkage over ``items`` from weighted edges; equal levels merge at once.

  Writes the parent of every item and every new node into ``new_parent``;
  the last merge (the sub-tree's root) is returned so the caller can give
  it the decoded node's identity.
  """
  m = len(items)
  uf = list(range(m))
  node_of = list(items)         # current node representing each component root

  def find(x):
    while uf[x] != x:
      uf[x] = uf[uf[x]]
      x = uf[x]
    return x

  order = np.argsort(levels, kind="stable")
  i = 0
  components = m
  last = None
  while i < order.shape[0] and components > 1:
    lev = levels[order[i]]
    j = i
    groups = {}
    # All edges of this level: union the components they touch at once.
    touched = []
    while j < order.shape[0] and levels[order[j]] == lev:
      e = order[j]
      touched.append((edges_a[e], edges_b[e]))
      j += 1
    # Build the components of the level's edges over current components.
    local = {}

    def lfind(x):
      while local.get(x, x) != x:
        x = local[x]
      return x

    for a, b in touched:
      ra, rb = find(a), find(b)
      if ra == rb:
        continue
      la, lb = lfind(ra), lfind(rb)
      if la != lb:
        local[la] = lb
    for r in set(local) | set(local.values()):
      groups.setdefault(lfind(r), set()).add(r)
    for members in groups.values():
      if len(members) < 2:
        continue
      new = next_id
      next_id += 1
      for r in members:
        new_parent[node_of[r]] = new
      base = min(members)
      for r in members:
        uf[r] = base
      node_of[base] = new
      components -= len(members) - 1
      last = new
    i = j
  return last, next_id


def _compacted(out: np.ndarray, n: int) -> Hierarchy:
  """The :class:`Hierarchy` of a parent array with ``UNUSED`` slots dropped (renumbered)."""
  used = np.nonzero(out != _hier.UNUSED)[0]
  relabel = np.full(out.shape[0], -1, np.int64)
  relabel[used] = np.arange(used.shape[0])
  compact = np.where(out[used] >= 0, relabel[np.maximum(out[used], 0)], _hier.NO_PARENT)
  return _hier.from_parent(compact.astype(np.int32), num_leaves=n)


def _finish(n: int, parent: np.ndarray, new_parent: dict, top_of: dict) -> Hierarchy:
  """Assembles the completed tree: ``top_of[z]`` is the node that replaces ``z``.

  ``new_parent`` holds the parent of every item and every new node; a
  decoded node ``z`` whose sub-tree root is a new node ``top`` hands its own
  place (its entry in ``new_parent``, or the root) to ``top``.
  """
  total = max([parent.shape[0]] + [v + 1 for v in new_parent.values()])
  out = np.full(total, _hier.UNUSED, np.int64)
  for u, p in new_parent.items():
    out[u] = p
  root = int(np.nonzero(parent == _hier.NO_PARENT)[0][0])
  out[root] = _hier.NO_PARENT
  for z, top in top_of.items():
    if top is not None and top != z:
      out[top] = out[z]
      out[z] = _hier.UNUSED
  return _compacted(out, n)


def _items_and_leaves(kids, order, start, stop, n, z):
  """Items of node ``z`` (its children) and, for its points, their item index."""
  items = kids[z]
  leaves = order[start[z]:stop[z]]
  starts = np.asarray([start[c] for c in items])
  label = np.searchsorted(starts, np.arange(start[z], stop[z]), side="right") - 1
  return items, leaves, label


def complete_by_reference(h: Hierarchy, reference: Hierarchy) -> Hierarchy:
  """Completes every internal node of ``h`` by single linkage on ``reference``.

  Args:
    h: a valid :class:`~fairhc_jax.Hierarchy` over ``n`` points (e.g. a
      decoded soft tree).
    reference: a valid hierarchy over the same ``n`` points.

  Returns:
    A hierarchy that refines ``h`` (every cluster of ``h`` is one of its
    clusters) and, inside each node of ``h``, follows ``reference``. Equal
    to ``reference`` (as a set of clusters) when every child of every node of
    ``h`` is a cluster of ``reference``.
  """
  fn = "complete_by_reference"
  h = _hier.check_hierarchy(fn, h, allow_unary=True, allow_traced=False)
  reference = _hier.check_hierarchy(fn, reference, arg="reference", allow_unary=True,
                                    allow_traced=False)
  if reference.num_leaves != h.num_leaves:
    _checks.fail(fn, "reference", f"be a hierarchy over the same n = {h.num_leaves} points",
                 f"one over {reference.num_leaves}")
  parent = np.asarray(h.parent).astype(np.int64)
  ref = np.asarray(reference.parent).astype(np.int64)
  n = (parent.shape[0] + 1) // 2
  if n <= 2:
    return h
  rkids, _, rorder, rstart, rstop = _structure(ref, n)
  rmq = _RangeMax(_leaf_gaps(ref, n, rkids, rstart))
  rpos = np.empty(n, np.int64)
  rpos[rorder] = np.arange(n)
  kids, _, order, start, stop = _structure(parent, n)
  new_parent = {}
  top_of = {}
  next_id = parent.shape[0]
  for z in range(n, parent.shape[0]):        # children before parents
    if parent[z] == _hier.UNUSED:
      continue
    items, leaves, label = _items_and_leaves(kids, order, start, stop, n, z)
    if len(items) <= 2:
      for c in items:
        new_parent[c] = z
      top_of[z] = z
      continue
    srt = np.argsort(rpos[leaves], kind="stable")
    p = rpos[leaves][srt]
    lab = label[srt]
    cross = np.nonzero(lab[:-1] != lab[1:])[0]
    lev = rmq.query(p[cross], p[cross + 1] - 1)
    top, next_id = _merge_groups(items, lab[cross], lab[cross + 1], lev, next_id, new_parent)
    top_of[z] = top
  return _finish(n, parent, new_parent, top_of)


def _average_linkage_items(sim: np.ndarray, size: np.ndarray):
  """Average linkage on ``m`` weighted items (NumPy, O(m^3)); yields merges.

  ``sim[a, b]``: average similarity between the points of items ``a`` and
  ``b``. Returns a list of ``(a, b)`` component pairs in merge order, the
  merged component keeping index ``a`` (the larger similarity first, ties to
  the first pair in row-major order).
  """
  m = sim.shape[0]
  s = sim.astype(np.float64).copy()
  np.fill_diagonal(s, -np.inf)
  w = size.astype(np.float64).copy()
  alive = np.ones(m, bool)
  merges = []
  for _ in range(m - 1):
    flat = int(np.argmax(s))
    a, b = divmod(flat, m)
    if a > b:
      a, b = b, a
    merges.append((a, b))
    row = (w[a] * s[a] + w[b] * s[b]) / (w[a] + w[b])
    s[a, :] = row
    s[:, a] = row
    s[a, a] = -np.inf
    s[b, :] = -np.inf
    s[:, b] = -np.inf
    w[a] += w[b]
    alive[b] = False
  return merges


def complete_by_average_linkage(h: Hierarchy, S) -> Hierarchy:
  """Completes every internal node of ``h`` by average linkage on ``S`` inside it.

  Args:
    h: a valid :class:`~fairhc_jax.Hierarchy` over ``n`` points.
    S: ``float[n, n]`` symmetric similarities.

  Returns:
    A binary hierarchy refining ``h``: inside each node of ``h``, its
    children are merged by average linkage (on average similarities between
    their point sets).
  """
  fn = "complete_by_average_linkage"
  h = _hier.check_hierarchy(fn, h, allow_unary=True, allow_traced=False)
  S = np.asarray(S, np.float64)
  if S.shape != (h.num_leaves, h.num_leaves) or not np.all(np.isfinite(S)):
    _checks.fail(fn, "S", f"be a finite {h.num_leaves} x {h.num_leaves} similarity matrix",
                 f"shape {S.shape}" + ("" if S.shape != (h.num_leaves,) * 2 else " with non-finite entries"))
  parent = np.asarray(h.parent).astype(np.int64)
  n = (parent.shape[0] + 1) // 2
  if n <= 2:
    return h
  kids, _, order, start, stop = _structure(parent, n)
  rowsum = {}               # internal node -> float[n]: sum of S over its points
  new_parent = {}
  top_of = {}
  next_id = parent.shape[0]
  for z in range(n, parent.shape[0]):
    if parent[z] == _hier.UNUSED:
      continue
    items, leaves, label = _items_and_leaves(kids, order, start, stop, n, z)
    m = len(items)
    R = np.stack([S[c] if c < n else rowsum.pop(c) for c in items])   # [m, n]
    rowsum[z] = R.sum(0)
    if m <= 2:
      for c in items:
        new_parent[c] = z
      top_of[z] = z
      continue
    sub = R[:, leaves]                                          # [m, |z|]
    Q = np.zeros((m, m))
    np.add.at(Q.T, label, sub.T)                                # Q[a, b] = sum over b's points
    size = np.bincount(label, minlength=m).astype(np.float64)
    sim = Q / np.outer(size, size)
    node = list(items)
    top = None
    for a, b in _average_linkage_items(sim, size):
      new = next_id
      next_id += 1
      new_parent[node[a]] = new
      new_parent[node[b]] = new
      node[a] = new
      top = new
    top_of[z] = top
  return _finish(n, parent, new_parent, top_of)


def lca_size_matrix(h: Hierarchy) -> np.ndarray:
  """``float32[n, n]``: ``|leaves(lca(i, j))|`` of every pair (0 on the diagonal).

  The ultrametric of ``h`` measured in points: for consecutive leaves of
  the DFS order the LCA's size, and for positions ``p < q`` the largest of
  those sizes between them (ancestors are larger). Host (NumPy) work,
  ``O(n^2)`` time and one ``n x n`` float32 matrix (exact: sizes are
  integers below ``2^24``).

  Args:
    h: a valid hierarchy over ``n`` points (non-binary and unary nodes allowed).

  Returns:
    A symmetric ``float32[n, n]`` NumPy array in the points' own order.

  Raises:
    MemoryError: the matrix (and its one reordered copy) would not fit.
  """
  fn = "lca_size_matrix"
  h = _hier.check_hierarchy(fn, h, allow_unary=True, allow_traced=False)
  parent = np.asarray(h.parent).astype(np.int64)
  n = h.num_leaves
  _memory.check_memory(fn, n, _memory.square_bytes(n, np.float32, count=2),
                       what="the n x n matrix of LCA sizes (and its reordered copy)")
  return _lca_sizes(parent, n)


def _lca_sizes(parent: np.ndarray, n: int) -> np.ndarray:
  if n == 1:
    return np.zeros((1, 1), np.float32)
  kids, _, order, start, stop = _structure(parent, n)
  size = (stop - start).astype(np.float32)
  gap = size[_leaf_gaps(parent, n, kids, start)]   # [n - 1], in DFS order
  U = np.zeros((n, n), np.float32)
  for p in range(n - 1):
    U[p, p + 1:] = np.maximum.accumulate(gap[p:])
  U += U.T
  rank = np.empty(n, np.int64)
  rank[order] = np.arange(n)
  return U[np.ix_(rank, rank)]


def repair_by_blocks(h: Hierarchy, blocks, *, linkage: str = "average") -> Hierarchy:
  """A tree whose clusters are unions of ``blocks``, merged as ``h`` suggests.

  The fairlet repair of a soft tree: every block (e.g. a fairlet of
  :func:`fairhc_jax.fair_hierarchical_clustering`, ``result.fairlets``)
  becomes one flat node over its points, and the blocks are merged in one of
  two ways:

  * ``"average"`` (default): vertex-weighted average linkage over the
    blocks on ``h``'s ultrametric in points (:func:`lca_size_matrix`): the
    next merge joins the two groups of blocks whose points have the
    smallest mean LCA size in ``h`` (:func:`fairhc_jax.fairlet_tree` with
    ``inner="flat"`` on that matrix). One ``n x n`` float32 matrix.
  * ``"single"``: single linkage on the same ultrametric (two groups of
    blocks join at the lowest node of ``h`` that holds a point of each;
    equal levels make one multi-way node). No ``n x n`` matrix, but one
    block spread over ``h`` pulls everything it touches together early.

  Measured on soft trees of a Census sample (n = 1,000, ``Balance(1, 3)``,
  penalties 0 to 100; ``benchmarks/bench_soft.py front``): ``"average"``
  cost 1.15-1.76x average linkage's, ``"single"`` 1.77-2.20x.

  Every cluster is a block or a union of blocks, so with fair blocks
  (``Balance``: each block's ``min/max`` at least ``b/r``) every cluster of
  two or more points is fair; the cost is reported by the caller with the
  exact :func:`fairhc_jax.dasgupta_cost`.

  Args:
    h: a valid hierarchy over ``n`` points.
    blocks: ``int[n]`` block of every point, values ``0..b-1`` all used.
    linkage: ``"average"`` or ``"single"`` (keyword-only).

  Returns:
    The repaired :class:`~fairhc_jax.Hierarchy`.
  """
  fn = "repair_by_blocks"
  h = _hier.check_hierarchy(fn, h, allow_unary=True, allow_traced=False)
  raw = np.asarray(blocks)
  if (raw.shape != (h.num_leaves,) or not np.issubdtype(raw.dtype, np.integer)
      or (raw.size and raw.min() < 0)):
    _checks.fail(fn, "blocks", f"be non-negative integer block ids of shape ({h.num_leaves},)",
                 f"{raw.dtype} array of shape {raw.shape}")
  if linkage not in ("average", "single"):
    _checks.fail(fn, "linkage", "be 'average' or 'single'", repr(linkage))
  parent = np.asarray(h.parent).astype(np.int64)
  n = (parent.shape[0] + 1) // 2
  blocks = raw.astype(np.int64)
  used = np.unique(blocks)
  if used.shape[0] != int(blocks.max()) + 1:
    _checks.fail(fn, "blocks", "use every id 0..b-1",
                 f"{used.shape[0]} distinct ids up to {int(blocks.max())}")
  if linkage == "average":
    _memory.check_memory(fn, n, _memory.square_bytes(n, np.float32, count=2),
                         what="the n x n matrix of LCA sizes (linkage='average')",
                         instead="use linkage='single' (no n x n matrix) or a subsample")
    from fairhc_jax import fairlets as _fairlets
    from fairhc_jax.algorithms import fairlet_hc as _fairlet_hc
    U = _lca_sizes(parent, n)
    dec = _fairlets.decomposition_from_assignment(blocks.astype(np.int32))
    return _fairlet_hc.fairlet_tree(U, dec, inner="flat", validate=False)
  b = int(blocks.max()) + 1
  sizes = np.bincount(blocks, minlength=b)
  node = np.where(sizes >= 2, n + np.arange(b), -1)
  first = np.full(b, -1, np.int64)
  for i in range(n - 1, -1, -1):
    first[blocks[i]] = i
  node = np.where(sizes >= 2, node, first)
  new_parent = {}
  for i in range(n):
    if sizes[blocks[i]] >= 2:
      new_parent[i] = int(node[blocks[i]])
  if b == 1:
    out = np.full(n + 1, _hier.UNUSED, np.int64)
    for u, p in new_parent.items():
      out[u] = p
    out[n] = _hier.NO_PARENT
    return _hier.from_parent(out.astype(np.int32), num_leaves=n)
  rkids, _, rorder, rstart, rstop = _structure(parent, n)
  rmq = _RangeMax(_leaf_gaps(parent, n, rkids, rstart))
  lab = blocks[rorder]
  cross = np.nonzero(lab[:-1] != lab[1:])[0]
  lev = rmq.query(cross, cross)
  top, next_id = _merge_groups([int(x) for x in node], lab[cross], lab[cross + 1], lev,
                               n + b, new_parent)
  out = np.full(next_id, _hier.UNUSED, np.int64)
  for u, p in new_parent.items():
    out[u] = p
  out[top] = _hier.NO_PARENT
  return _compacted(out, n)
