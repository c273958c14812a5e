"""Tree operators against literal pointer-based NumPy/Python transcriptions.

Every oracle here works on plain parent lists with Python children lists
(no code shared with fairhc_jax.operators); results are compared as sets
of clusters (each internal node's leaf set).
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairhc_jax import hierarchy as H
from fairhc_jax import operators as O


# ---------------------------------------------------------------------------
# Random trees and pointer-based helpers.


def random_tree(rng, n, max_arity=2):
  """Random agglomeration: merge 2..max_arity random clusters until one remains."""
  parent = np.full(2 * n - 1, -2)
  alive = list(range(n))
  nxt = n
  while len(alive) > 1:
    r = int(rng.integers(2, max_arity + 1)) if max_arity > 2 else 2
    r = min(r, len(alive))
    pick = rng.choice(len(alive), size=r, replace=False)
    for i in pick:
      parent[alive[i]] = nxt
    alive = [a for j, a in enumerate(alive) if j not in set(pick.tolist())] + [nxt]
    nxt += 1
  parent[alive[0]] = -1
  return H.from_parent(parent)


def to_lists(h):
  p = [int(x) for x in np.asarray(h.parent)]
  kids = {i: [] for i in range(len(p))}
  for i, q in enumerate(p):
    if q >= 0:
      kids[q].append(i)
  return p, kids


def clusters_of(parent, n):
  """Set of frozensets: the leaf set of every internal node (dict/list parent)."""
  items = parent.items() if isinstance(parent, dict) else enumerate(parent)
  par = {i: q for i, q in items if q != -2}
  out = {}
  for leaf in range(n):
    x = par[leaf]
    while x >= 0:
      out.setdefault(x, set()).add(leaf)
      x = par[x]
  return {frozenset(s) for s in out.values()}


def hier_clusters(h):
  return clusters_of([int(x) for x in np.asarray(h.parent)], h.num_leaves)


def ancestors(par, x):
  out = []
  while par[x] >= 0:
    x = par[x]
    out.append(x)
  return out


def depth_of(par, x):
  return len(ancestors(par, x))


# ---------------------------------------------------------------------------
# Oracles (literal transcriptions of Definitions 3.4-3.7).


def oracle_rebalance(h, u, v):
  par, kids = to_lists(h)
  par = dict(enumerate(par))
  p = par[v]
  if p == u:
    return par
  kids[p].remove(v)
  (s,) = kids[p]
  gp = par[p]
  kids[gp] = [s if c == p else c for c in kids[gp]]
  par[s] = gp
  del par[p]
  w = max(par) + 1 + len(par)
  par[w] = u
  for c in kids[u]:
    par[c] = w
  par[v] = u
  return par


def oracle_move(h, v, x):
  par, kids = to_lists(h)
  par = dict(enumerate(par))
  p = par[v]
  kids[p].remove(v)
  (s,) = kids[p]
  gp = par[p]
  par[s] = gp
  if gp >= 0:
    kids[gp] = [s if c == p else c for c in kids[gp]]
  del par[p]
  y = max(par) + 1 + len(par)
  par[y] = par[x]
  par[x] = y
  par[v] = y
  return par


def oracle_abstraction(h, a, b):
  par = dict(enumerate(to_lists(h)[0]))
  par = {i: q for i, q in par.items() if q != -2}
  n = h.num_leaves
  dead = {x for x in par if x >= n and a < depth_of(par, x) < b}
  out = {}
  for x, q in par.items():
    if x in dead:
      continue
    while q in dead:
      q = par[q]
    out[x] = q
  return out


def canon(kids, n, x):
  """AHU canonical string of x's subtree with leaves removed."""
  return "(" + "".join(sorted(canon(kids, n, c) for c in kids[x] if c >= n)) + ")"


def oracle_fold(h, roots):
  par, kids = to_lists(h)
  par = dict(enumerate(par))
  n = h.num_leaves
  par = {i: q for i, q in par.items() if q != -2}
  phi = {}

  def match(x, y):  # map x (folded away) onto y (kept)
    phi[x] = y
    cx = sorted((c for c in kids[x] if c >= n), key=lambda c: (canon(kids, n, c), c))
    cy = sorted((c for c in kids[y] if c >= n), key=lambda c: (canon(kids, n, c), c))
    # isomorphism: pair children class by class, in index order within a class
    for cls in sorted({canon(kids, n, c) for c in cx}):
      for a, b in zip([c for c in cx if canon(kids, n, c) == cls],
                      [c for c in cy if canon(kids, n, c) == cls]):
        match(a, b)

  for r in roots[1:]:
    match(r, roots[0])
  out = {}
  for x, q in par.items():
    if x in phi:
      continue
    out[x] = phi.get(q, q)
  # contract unary nodes
  cnt = {}
  for x, q in out.items():
    if q >= 0:
      cnt[q] = cnt.get(q, 0) + 1
  for x in [x for x in out if x >= n and cnt.get(x, 0) == 1]:
    (c,) = [y for y, q in out.items() if q == x]
    out[c] = out[x]
    del out[x]
  return out


def oracle_separation(before, after):
  n = before.num_leaves
  pb, pa = to_lists(before)[0], to_lists(after)[0]

  def leafsets(p):
    sets = {}
    for leaf in range(n):
      x = leaf
      while x >= 0:
        sets.setdefault(x, set()).add(leaf)
        x = p[x]
    return sets

  lb, la = leafsets(pb), leafsets(pa)

  def lca(p, i, j):
    anc = set([i] + ancestors(p, i))
    x = j
    while x not in anc:
      x = p[x]
    return x

  sep = np.zeros((n, n), bool)
  ratio = np.ones((n, n))
  for i, j in itertools.combinations(range(n), 2):
    cb, ca = lb[lca(pb, i, j)], la[lca(pa, i, j)]
    sep[i, j] = sep[j, i] = not ca <= cb
    ratio[i, j] = ratio[j, i] = len(ca) / len(cb)
  cost = ratio[sep].max() if sep.any() else 1.0
  return sep, ratio, cost


def check_same(h_out, oracle_par):
  H.validate(h_out)
  n = h_out.num_leaves
  assert hier_clusters(h_out) == clusters_of(oracle_par, n)


# ---------------------------------------------------------------------------
# Tests.


def rebalance_args(h, rng):
  par, kids = to_lists(h)
  n = h.num_leaves
  cands = []
  for u in range(n, len(par)):
    if par[u] == -2 or len(kids[u]) != 2:
      continue
    for v in range(len(par)):
      if par[v] >= 0 and u in ancestors(par, v) and len(kids[par[v]]) == 2:
        cands.append((u, v))
  return cands


@pytest.mark.parametrize("n", [3, 12, 30])
def test_rebalance_matches_oracle(n):
  rng = np.random.default_rng(n)
  for _ in range(6):
    h = random_tree(rng, n)
    cands = rebalance_args(h, rng)
    for i in rng.choice(len(cands), size=min(5, len(cands)), replace=False):
      u, v = cands[i]
      out = O.tree_rebalance(h, u, v)
      check_same(out, oracle_rebalance(h, u, v))
      assert out.height is None


@pytest.mark.parametrize("n", [3, 12, 30])
def test_move_matches_oracle(n):
  rng = np.random.default_rng(100 + n)
  for _ in range(6):
    h = random_tree(rng, n)
    par, kids = to_lists(h)
    done = 0
    for _ in range(50):
      v = int(rng.integers(0, len(par) - 1))
      x = int(rng.integers(0, len(par)))
      if par[v] < 0 or x == v or v in ancestors(par, x) or x == par[v]:
        continue
      out = O.subtree_move(h, v, x)
      check_same(out, oracle_move(h, v, x))
      done += 1
      if done == 5:
        break


@pytest.mark.parametrize("arity", [2, 4])
def test_level_abstraction_matches_oracle(arity):
  rng = np.random.default_rng(arity)
  for n in (1, 2, 12, 30):
    for _ in range(4):
      h = random_tree(rng, n, arity)
      top = int(np.max(np.asarray(H.depth(h))))
      for a in range(0, top + 1):
        for b in range(a + 1, top + 2):
          if rng.random() < 0.5 and (a, b) != (0, top + 1):
            continue
          check_same(O.level_abstraction(h, a, b), oracle_abstraction(h, a, b))
      cut = int(rng.integers(0, top + 1))
      out = O.abstract_bottom_levels(h, cut)
      check_same(out, oracle_abstraction(h, cut, top + 1))
      # every internal node at the cut depth is the parent of all its leaves
      par, kids = to_lists(out)
      d = np.asarray(H.depth(out))
      for x in range(n, len(par)):
        if par[x] != -2 and d[x] >= cut:
          assert all(c < n for c in kids[x])


def shaped_subtree(rng, shape, n0, parent, next_id):
  """Builds a subtree with internal shape `shape` (nested tuples) and random leaves.

  Returns (root id, next leaf, next internal id); internal ids are assigned
  from `next_id` upward in random order of construction.
  """
  me = next_id[0]
  next_id[0] += 1
  kids = []
  for sub in shape:
    r, n0 = shaped_subtree(rng, sub, n0, parent, next_id)
    kids.append(r)
  nleaves = int(rng.integers(max(0, 2 - len(kids)), 4))
  for _ in range(nleaves):
    kids.append(n0)
    n0 += 1
  rng.shuffle(kids)
  for c in kids:
    parent[c] = me
  return me, n0


FOLD_N = 64


def fold_case(rng, shape, r, extra):
  """A root with r subtrees of internal shape `shape` plus at least `extra` leaves.

  Extra leaves under the root pad every case to FOLD_N points (one compilation).
  """
  parent = {}
  next_id = [10_000]
  n0 = 0
  roots = []
  for _ in range(r):
    root, n0 = shaped_subtree(rng, shape, n0, parent, next_id)
    roots.append(root)
  others = []
  extra = max(extra, FOLD_N - n0)
  for _ in range(extra):
    others.append(n0)
    n0 += 1
  top = next_id[0]
  for c in roots + others:
    parent[c] = top
  parent[top] = -1
  n = n0
  ids = sorted(k for k in parent if k >= 10_000)
  perm = rng.permutation(len(ids))
  relabel = {old: n + int(p) for old, p in zip(ids, perm)}
  arr = np.full(2 * n - 1, -2)
  for c, q in parent.items():
    arr[relabel.get(c, c)] = relabel.get(q, q) if q >= 0 else -1
  h = H.from_parent(arr)
  # map roots to their post-order labels: identify by leaf sets
  sets = H.leaf_sets(h)
  par0 = {relabel.get(c, c): (relabel.get(q, q) if q >= 0 else -1) for c, q in parent.items()}
  want = [frozenset(clusters_leafset(par0, relabel[rt], n)) for rt in roots]
  lab = []
  for w in want:
    lab.append(next(u for u in range(n, 2 * n - 1) if sets[u] is not None and
                    frozenset(sets[u].tolist()) == w))
  return h, lab


def clusters_leafset(par, x, n):
  return {leaf for leaf in range(n) if x == leaf or x in ancestors(par, leaf)}


SHAPES = [(), ((),), ((), ()), (((),), ()), (((), ()), ((),), ())]


@pytest.mark.parametrize("shape", SHAPES)
def test_fold_matches_oracle(shape):
  rng = np.random.default_rng(len(str(shape)))
  for r, extra in ((2, 0), (2, 2), (3, 1)):
    for _ in range(2):
      h, roots = fold_case(rng, shape, r, extra)
      for order in (roots, roots[::-1]):
        out = O.tree_fold(h, order)
        check_same(out, oracle_fold(h, order))
        assert out.num_leaves == h.num_leaves


def test_fold_rejects_different_topologies():
  rng = np.random.default_rng(7)
  h1, roots = fold_case(rng, ((), ()), 2, 1)
  par, kids = to_lists(h1)
  # siblings with different shapes: root's children of different internal shape
  rt = par.index(-1)
  # build a root with one ((),()) subtree and one (((),),()) subtree
  a_shape, b_shape = ((), ()), (((),), ())
  parent = {}
  nid = [10_000]
  ra, n0 = shaped_subtree(rng, a_shape, 0, parent, nid)
  rb, n0 = shaped_subtree(rng, b_shape, n0, parent, nid)
  top = nid[0]
  parent[ra] = parent[rb] = top
  parent[top] = -1
  ids = sorted(k for k in parent if k >= 10_000)
  relabel = {old: n0 + i for i, old in enumerate(ids)}
  arr = np.full(2 * n0 - 1, -2)
  for c, q in parent.items():
    arr[relabel.get(c, c)] = relabel.get(q, q) if q >= 0 else -1
  h = H.from_parent(arr)
  par, kids = to_lists(h)
  root = par.index(-1)
  with pytest.raises(ValueError, match="tree_fold: roots must root subtrees with the same"):
    O.tree_fold(h, kids[root])
  lab = np.asarray(O.topology_labels(h))
  assert lab[kids[root][0]] != lab[kids[root][1]]
  # not siblings / leaves / too few
  with pytest.raises(ValueError, match="siblings"):
    O.tree_fold(h1, [roots[0], rt])
  with pytest.raises(ValueError, match="internal nodes"):
    O.tree_fold(h1, [roots[0], 0])
  with pytest.raises(ValueError, match="at least two distinct"):
    O.tree_fold(h1, [roots[0]])


def test_topology_labels_match_canonical_strings():
  rng = np.random.default_rng(3)
  for arity in (2, 3):
    for _ in range(5):
      h = random_tree(rng, 40, arity)
      h = O.abstract_bottom_levels(h, int(rng.integers(1, 4)))
      par, kids = to_lists(h)
      n = h.num_leaves
      lab = np.asarray(O.topology_labels(h))
      used = [x for x in range(n, len(par)) if par[x] != -2]
      strings = {x: canon(kids, n, x) for x in used}
      for x, y in itertools.combinations(used, 2):
        assert (lab[x] == lab[y]) == (strings[x] == strings[y])
      assert (lab[:n] == -1).all()


@pytest.mark.parametrize("op", ["rebalance", "move", "abstraction", "fold", "random"])
def test_separation_matches_bruteforce(op):
  rng = np.random.default_rng(hash(op) % 1000)
  for trial in range(4):
    n = 12 if trial else 3  # sizes shared with the tests above (fewer compilations)
    h = random_tree(rng, n)
    par, kids = to_lists(h)
    if op == "rebalance":
      cands = rebalance_args(h, rng)
      if not cands:
        continue
      after = O.tree_rebalance(h, *cands[int(rng.integers(len(cands)))])
    elif op == "move":
      pairs = [(v, x) for v in range(len(par)) for x in range(len(par))
               if par[v] >= 0 and x != v and v not in ancestors(par, x) and x != par[v]]
      if not pairs:
        continue
      after = O.subtree_move(h, *pairs[int(rng.integers(len(pairs)))])
    elif op == "abstraction":
      top = int(np.max(np.asarray(H.depth(h))))
      after = O.abstract_bottom_levels(h, int(rng.integers(0, top + 1)))
    elif op == "fold":
      h, roots = fold_case(rng, ((), ()), 2, 1)
      after = O.tree_fold(h, roots)
    else:
      after = random_tree(rng, n)
    sep, ratio, cost = oracle_separation(h, after)
    rep = O.separated_pairs(h, after)
    np.testing.assert_array_equal(np.asarray(rep.separated), sep)
    np.testing.assert_allclose(np.asarray(rep.ratio), ratio, rtol=1e-6)
    assert abs(float(rep.cost) - cost) <= 1e-6 * cost
    assert O.operation_cost(h, after) == pytest.approx(cost, rel=1e-6)


def test_separation_identity_and_float64():
  rng = np.random.default_rng(11)
  h = random_tree(rng, 12)
  rep = O.separated_pairs(h, h)
  assert not np.asarray(rep.separated).any() and float(rep.cost) == 1.0
  with jax.enable_x64(True):
    h2 = random_tree(rng, 12)
    rep = O.separated_pairs(h, h2)
    assert rep.ratio.dtype == jnp.float64
    sep, ratio, cost = oracle_separation(h, h2)
    np.testing.assert_allclose(np.asarray(rep.ratio), ratio, rtol=1e-15)
    assert float(rep.cost) == pytest.approx(cost, rel=1e-15)
  one = H.from_parent(np.array([-1]))
  assert float(O.separated_pairs(one, one).cost) == 1.0


def test_kernels_vmap_equals_loop():
  rng = np.random.default_rng(5)
  hs = [random_tree(rng, 16, 3) for _ in range(4)]
  batch = H.Hierarchy(parent=jnp.stack([h.parent for h in hs]))
  got = jax.vmap(O.level_kernel, in_axes=(0, None, None))(batch, jnp.int32(1), jnp.int32(3))
  for i, h in enumerate(hs):
    one = O.level_kernel(h, jnp.int32(1), jnp.int32(3))
    assert one.height is None
    np.testing.assert_array_equal(np.asarray(got.parent[i]), np.asarray(one.parent))
    assert hier_clusters(H.postorder_compact(H.Hierarchy(parent=got.parent[i]))) == \
        clusters_of(oracle_abstraction(h, 1, 3), 16)


@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_kernels_compile_once_with_and_without_heights():
  # Raw kernels read only h.parent: a tree with heights and one without must
  # share one compiled program. Caches are cleared first so the count cannot
  # pass because an earlier test compiled this size.
  rng = np.random.default_rng(6)
  h = random_tree(rng, 13)
  with_h = H.Hierarchy(parent=h.parent, height=jnp.arange(25, dtype=jnp.float32))
  u = jnp.array([-1], jnp.int32)
  jitted = [O._rebalance, O._move, O._level, O._contract, O._fold, O._separation, O._min_leaf]
  for f in jitted:
    f.clear_cache()
  calls = [
      lambda t: O.rebalance_kernel(t, u, u),
      lambda t: O.move_kernel(t, u, u),
      lambda t: O.level_kernel(t, jnp.int32(0), jnp.int32(2)),
      lambda t: O.contract_kernel(t, jnp.zeros(25, bool)),
      lambda t: O.fold_kernel(t, jnp.full((2, 2), -1, jnp.int32), 2),
      lambda t: O.separation_kernel(t, t),
      lambda t: O.min_leaf_kernel(t),
  ]
  for call in calls:
    call(with_h)
    call(h)
  sizes = [f._cache_size() for f in jitted]
  assert sizes == [1] * len(jitted)


def test_min_leaf_kernel_matches_oracle():
  rng = np.random.default_rng(7)
  for arity in (2, 3):
    h = random_tree(rng, 30, arity)
    got = np.asarray(O.min_leaf_kernel(h))
    par = [int(x) for x in np.asarray(h.parent)]
    for u in range(len(par)):
      if par[u] == -2:
        continue
      leaves = [leaf for leaf in range(30) if u in [leaf] + ancestors(par, leaf)]
      assert got[u] == min(leaves)


def test_bad_input():
  rng = np.random.default_rng(0)
  h = random_tree(rng, 8)
  par, kids = to_lists(h)
  root = par.index(-1)
  bad = H.Hierarchy(parent=jnp.asarray(np.r_[par[:-1], 0]).astype(jnp.int32))
  with pytest.raises(ValueError, match="tree_rebalance: h must be a valid hierarchy"):
    O.tree_rebalance(bad, root, 0)
  with pytest.raises(TypeError, match="tree_rebalance: h must be a Hierarchy"):
    O.tree_rebalance(np.asarray(par), root, 0)
  with pytest.raises(ValueError, match="v must be a strict descendant"):
    O.tree_rebalance(h, kids[root][0] if kids[root][0] >= 8 else kids[root][1], root)
  with pytest.raises(ValueError, match="u must be a used node"):
    O.tree_rebalance(h, 99, 0)
  with pytest.raises(TypeError, match="u must be an integer node index"):
    O.tree_rebalance(h, 1.5, 0)
  with pytest.raises(ValueError, match="subtree_move: v must be a non-root node"):
    O.subtree_move(h, root, 0)
  with pytest.raises(ValueError, match="x must lie outside the subtree"):
    O.subtree_move(h, root - 1 if par[0] != root - 1 else par[0], 0)
  with pytest.raises(ValueError, match="x must differ from v's parent"):
    O.subtree_move(h, 0, par[0])
  top = int(np.max(np.asarray(H.depth(h))))
  with pytest.raises(ValueError, match=f"level_abstraction: a must be at most the tree's depth {top}"):
    O.level_abstraction(h, top + 1, top + 2)
  with pytest.raises(ValueError, match="level_abstraction: b must satisfy"):
    O.level_abstraction(h, 1, 1)
  with pytest.raises(ValueError, match="abstract_bottom_levels: cut_depth must be at most"):
    O.abstract_bottom_levels(h, top + 1)
  with pytest.raises(ValueError, match="contract_nodes: mask must be bool"):
    O.contract_nodes(h, np.zeros(3, bool))
  with pytest.raises(ValueError, match="separated_pairs: after must have the same capacity"):
    O.separated_pairs(h, random_tree(rng, 5))


def test_contract_nodes_matches_oracle():
  rng = np.random.default_rng(9)
  for _ in range(5):
    h = random_tree(rng, 20, 3)
    par = to_lists(h)[0]
    mask = rng.random(len(par)) < 0.4
    out = O.contract_nodes(h, mask)
    p = {i: q for i, q in enumerate(par) if q != -2}
    dead = {x for x in p if x >= 20 and mask[x] and p[x] >= 0}
    want = {}
    for x, q in p.items():
      if x in dead:
        continue
      while q in dead:
        q = p[q]
      want[x] = q
    check_same(out, want)
