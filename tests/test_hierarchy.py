"""An independent test suite for fairhc_jax/hierarchy.py.

Every check compares against plain-Python oracles written here, which walk
parent pointers one step at a time; none of them shares code with the module.
Few array shapes are used on purpose: each new capacity compiles the views.
"""

import functools
import itertools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairhc_jax.hierarchy import (
    NO_PARENT,
    UNUSED,
    Hierarchy,
    children,
    children_table,
    depth,
    from_parent,
    is_valid_hierarchy,
    leaf_counts,
    leaf_ranges,
    leaf_sets,
    num_children,
    postorder_compact,
    root,
    validate,
)

SIZES = (1, 2, 3, 24)
TABLE_WIDTHS = (1, 2, 5)  # fixed, so the table compiles once per shape and width


# ---------------------------------------------------------------------------
# Tree generators and oracles.


def random_canonical(rng, n, max_children=2, gaps=False):
  """A random valid parent array of length 2n - 1 (children before parents).

  Groups of 2..max_children active clusters are merged until one is left.
  With ``gaps``, the internal nodes are spread over slots ``n..2n-2`` in
  creation order, leaving unused slots between them.
  """
  parent = [NO_PARENT] * n
  active = list(range(n))
  while len(active) > 1:
    k = int(rng.integers(2, min(max_children, len(active)) + 1))
    pick = set(rng.choice(len(active), size=k, replace=False).tolist())
    new = len(parent)
    parent.append(NO_PARENT)
    for i in pick:
      parent[active[i]] = new
    active = [a for i, a in enumerate(active) if i not in pick] + [new]
  parent = np.array(parent, np.int64)
  q = len(parent) - n
  m = 2 * n - 1
  slots = np.arange(n, n + q)
  if gaps:
    slots = np.sort(n + rng.choice(m - n, size=q, replace=False))
  label = np.concatenate([np.arange(n), slots])
  out = np.full(m, UNUSED, np.int64)
  out[label] = np.where(parent >= 0, label[np.maximum(parent, 0)], NO_PARENT)
  return out


def shuffle_internal(rng, parent, n):
  """Relabels the internal slots by a random permutation (unused ones too)."""
  m = len(parent)
  perm = np.concatenate([np.arange(n), n + rng.permutation(m - n)])
  out = np.empty_like(parent)
  out[perm] = np.where(parent >= 0, perm[np.maximum(parent, 0)], parent)
  return out, perm


def o_children(parent):
  kids = [[] for _ in parent]
  for v, p in enumerate(parent):
    if p >= 0:
      kids[p].append(v)
  return kids  # in index order


def o_root(parent):
  return [i for i, p in enumerate(parent) if p == NO_PARENT][0]


def o_depth(parent):
  out = []
  for v, p in enumerate(parent):
    if p == UNUSED:
      out.append(-1)
      continue
    d = 0
    while parent[v] >= 0:
      v = parent[v]
      d += 1
    out.append(d)
  return np.array(out)


def o_leaf_sets(parent, n):
  sets = [None if p == UNUSED else set() for p in parent]
  for leaf in range(n):
    v = leaf
    while v >= 0:
      sets[v].add(leaf)
      v = parent[v]
  return sets


def o_dfs(parent, n):
  """DFS leaf order (children by index) and each node's [start, stop)."""
  kids = o_children(parent)
  order, start, stop = [], {}, {}
  stack = [(o_root(parent), False)]
  while stack:
    u, done = stack.pop()
    if done:
      stop[u] = len(order)
      continue
    start[u] = len(order)
    if u < n:
      order.append(u)
      stop[u] = len(order)
      continue
    stack.append((u, True))
    for c in reversed(kids[u]):
      stack.append((c, False))
  return order, start, stop


def o_valid(parent, n, allow_unary=False, index_order=True):
  """The definition of a valid hierarchy, checked literally."""
  m = len(parent)
  if any(p < UNUSED or p >= m for p in parent):
    return False
  if any(parent[i] == UNUSED for i in range(n)):
    return False
  if sum(p == NO_PARENT for p in parent) != 1:
    return False
  for v, p in enumerate(parent):
    if p >= 0 and (p < n or parent[p] == UNUSED or (index_order and p <= v)):
      return False
  for v, p in enumerate(parent):
    if p == UNUSED:
      continue
    steps = 0
    while parent[v] >= 0 and steps <= m:
      v = parent[v]
      steps += 1
    if parent[v] != NO_PARENT:
      return False
  kids = o_children(parent)
  need = 1 if allow_unary else 2
  return all(len(kids[u]) >= need for u in range(n, m) if parent[u] != UNUSED)


def set_system(parent, n):
  return sorted(tuple(sorted(s)) for s in o_leaf_sets(list(parent), n) if s is not None)


def hier(parent, height=None):
  return Hierarchy(parent=jnp.asarray(np.asarray(parent), jnp.int32),
                   height=None if height is None else jnp.asarray(height, jnp.float32))


def check_views(h, n):
  """All views of one hierarchy against the oracles."""
  parent = [int(x) for x in np.asarray(h.parent)]
  m = len(parent)
  kids = o_children(parent)
  used = [p != UNUSED for p in parent]
  # leaf_ranges: the oracle's DFS order and ranges; every range is its leaf set.
  r = jax.device_get(leaf_ranges(h))
  order, start, stop = o_dfs(parent, n)
  np.testing.assert_array_equal(r.order, order)
  sets = o_leaf_sets(parent, n)
  for u in range(m):
    if not used[u]:
      assert r.start[u] == 0 and r.stop[u] == 0
      continue
    assert (r.start[u], r.stop[u]) == (start[u], stop[u])
    assert set(r.order[r.start[u]:r.stop[u]].tolist()) == sets[u]
    if kids[u]:  # children tile the parent's range, in index order
      assert r.start[kids[u][0]] == r.start[u] and r.stop[kids[u][-1]] == r.stop[u]
      for a, b in zip(kids[u], kids[u][1:]):
        assert r.stop[a] == r.start[b]
  np.testing.assert_array_equal(
      leaf_counts(h), [len(s) if s is not None else 0 for s in sets])
  np.testing.assert_array_equal(depth(h), o_depth(parent))
  assert int(root(h)) == o_root(parent)
  counts = [len(k) for k in kids]
  np.testing.assert_array_equal(num_children(h), counts)
  ch = jax.device_get(children(h))
  np.testing.assert_array_equal(ch.count, counts)
  np.testing.assert_array_equal(ch.first, [k[0] if k else -1 for k in kids])
  nxt = [-1] * m
  for k in kids:
    for a, b in zip(k, k[1:]):
      nxt[a] = b
  np.testing.assert_array_equal(ch.next_sibling, nxt)
  assert max(counts) <= TABLE_WIDTHS[-1]
  for width in TABLE_WIDTHS:
    table = np.asarray(children_table(h, max_children=width))
    want = [(k + [-1] * width)[:width] for k in kids]
    np.testing.assert_array_equal(table, want)
  lsets = leaf_sets(h)
  for u in range(m):
    if used[u]:
      np.testing.assert_array_equal(lsets[u], sorted(sets[u]))
    else:
      assert lsets[u] is None


# ---------------------------------------------------------------------------
# Views.


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("max_children,gaps", [(2, False), (4, False), (3, True)])
def test_views_match_oracle(n, max_children, gaps):
  rng = np.random.default_rng(100 * n + max_children)
  for _ in range(3):
    parent = random_canonical(rng, n, max_children, gaps)
    assert o_valid(list(parent), n)
    check_views(hier(parent), n)


def test_every_parent_array_n2_n3_validate_and_views():
  """Brute force over all arrays with values in [-3, m]: validate == oracle."""
  seen_valid = 0
  for n in (2, 3):
    m = 2 * n - 1
    for tup in itertools.product(range(-3, m + 1), repeat=m):
      parent = list(tup)
      arr = np.array(parent, np.int32)
      for unary in (False, True):
        want = o_valid(parent, n, allow_unary=unary)
        got = is_valid_hierarchy(Hierarchy(parent=arr), allow_unary=unary)
        assert got == want, (parent, unary)
      if o_valid(parent, n):
        seen_valid += 1
        check_views(hier(arr), n)
  # n = 2: one tree; n = 3: three binary trees, one star, each at 1-2 labelings.
  assert seen_valid >= 5


def test_single_leaf():
  h = hier([NO_PARENT])
  validate(h)
  check_views(h, 1)
  r = leaf_ranges(h)
  assert r.order.tolist() == [0] and r.start.tolist() == [0] and r.stop.tolist() == [1]
  np.testing.assert_array_equal(postorder_compact(h).parent, [NO_PARENT])
  np.testing.assert_array_equal(from_parent([NO_PARENT]).parent, [NO_PARENT])


def caterpillar(n, top_down=False):
  """Leaves 0, 1 merge first, then leaf i joins at step i; depth n - 1.

  ``top_down`` numbers the internal nodes from the root (n) downwards, so
  parents have smaller indices than their children (not canonical).
  """
  m = 2 * n - 1
  parent = np.full(m, NO_PARENT, np.int64)
  chain = np.arange(n, m)  # bottom merge first
  if top_down:
    chain = chain[::-1]
  parent[0] = chain[0]
  parent[1:n] = chain
  parent[chain[:-1]] = chain[1:]
  return parent


def test_caterpillar_depth_n_minus_1():
  n = 2000
  parent = caterpillar(n)
  h = hier(parent)
  validate(h)
  d = np.asarray(depth(h))
  want = np.concatenate([[n - 1], n - np.arange(1, n), n - 2 - np.arange(n - 1)])
  np.testing.assert_array_equal(d, want)
  assert d.max() == n - 1
  r = jax.device_get(leaf_ranges(h))
  # Node n + k (k = 0..n-2) holds leaves 0..k+1; children by index put the
  # lone leaf first, so the DFS order is n-1, n-2, ..., 2, 0, 1.
  np.testing.assert_array_equal(r.order, np.concatenate([np.arange(n - 1, 1, -1), [0, 1]]))
  counts = np.asarray(leaf_counts(h))
  np.testing.assert_array_equal(counts, np.concatenate([np.ones(n), np.arange(2, n + 1)]))
  for k in (0, 1, 500, n - 2):
    u = n + k
    assert sorted(r.order[r.start[u]:r.stop[u]].tolist()) == list(range(k + 2))
  assert int(root(h)) == 2 * n - 2
  # The top-down labelling: from_parent relabels into the canonical one.
  top = caterpillar(n, top_down=True)
  assert not is_valid_hierarchy(Hierarchy(parent=jnp.asarray(top, jnp.int32)))
  h2 = from_parent(top)
  np.testing.assert_array_equal(h2.parent, parent)
  d2 = np.asarray(depth(hier(top)))
  assert d2[0] == n - 1 and d2[n] == 0


def test_long_cycle_is_found():
  """A cycle through 1,998 internal nodes, beside a root."""
  n = 2000
  m = 2 * n - 1
  parent = np.full(m, NO_PARENT, np.int64)
  chain = np.arange(n, 2 * n - 2)
  parent[chain] = np.roll(chain, -1)  # n -> n+1 -> ... -> 2n-3 -> n
  parent[[0, 1]] = n
  parent[2:n - 1] = chain[1:]
  parent[n - 1] = 2 * n - 2  # the root holds one leaf (reported after the cycle)
  assert not o_valid(list(parent), n)
  with pytest.raises(ValueError, match="does not reach the root.*cycle"):
    validate(Hierarchy(parent=jnp.asarray(parent, jnp.int32)))
  with pytest.raises(ValueError, match="cycle"):
    from_parent(parent)


# ---------------------------------------------------------------------------
# postorder_compact and from_parent.


def check_same_tree(out_parent, out_height, in_parent, in_height, n):
  """Same clusters, heights attached to the same clusters, canonical labels."""
  out_parent = [int(x) for x in out_parent]
  assert o_valid(out_parent, n)  # includes children before parents
  assert set_system(out_parent, n) == set_system(in_parent, n)
  q = sum(1 for u in range(n, len(out_parent)) if out_parent[u] != UNUSED)
  assert all(p != UNUSED for p in out_parent[:n + q])
  assert all(p == UNUSED for p in out_parent[n + q:])
  in_sets = o_leaf_sets(list(in_parent), n)
  out_sets = o_leaf_sets(out_parent, n)
  for u in range(n):  # leaves keep labels: the parent's cluster is unchanged
    if in_parent[u] >= 0:
      assert out_sets[out_parent[u]] == in_sets[in_parent[u]]
  if in_height is not None:
    by_set = {frozenset(s): in_height[u] for u, s in enumerate(in_sets)
              if s is not None}
    for u, s in enumerate(out_sets):
      if s is not None:
        assert out_height[u] == by_set[frozenset(s)]
      else:
        assert out_height[u] == 0
  # Post-order: each subtree's internal nodes are the labels just below it.
  for u in range(n, n + q):
    inner = sum(1 for v in range(n, n + q) if out_sets[v] < out_sets[u])
    below = {v for v in range(u - inner, u)}
    assert all(out_sets[v] < out_sets[u] for v in below)


@pytest.mark.parametrize("n", SIZES)
def test_postorder_compact_on_shuffled_trees_with_gaps(n):
  rng = np.random.default_rng(7 * n)
  for max_children in (2, 4):
    parent = random_canonical(rng, n, max_children, gaps=True)
    shuffled, _ = shuffle_internal(rng, parent, n)
    height = rng.uniform(0, 3, size=len(parent)).astype(np.float32)
    height[shuffled == UNUSED] = 0
    out = postorder_compact(hier(shuffled, height))
    check_same_tree(np.asarray(out.parent), np.asarray(out.height),
                    shuffled, height, n)
    out0 = postorder_compact(hier(shuffled))
    assert out0.height is None
    np.testing.assert_array_equal(out0.parent, out.parent)


@pytest.mark.parametrize("n", SIZES)
def test_from_parent_shuffled_nonbinary_and_padded(n):
  rng = np.random.default_rng(11 * n)
  for max_children in (2, 3, 5):
    parent = random_canonical(rng, n, max_children)
    height = np.where(np.arange(len(parent)) >= n, rng.uniform(0, 3, len(parent)), 0)
    height[parent == UNUSED] = 0
    # Canonical input is kept as it is.
    h = from_parent(parent, height=height)
    np.testing.assert_array_equal(h.parent, parent)
    assert h.parent.dtype == jnp.int32 and h.height.dtype == jnp.float32
    # Shuffled labels are relabelled, heights travel with their clusters.
    shuffled, perm = shuffle_internal(rng, parent, n)
    h = from_parent(shuffled)
    assert h.height is None
    check_same_tree(np.asarray(h.parent), None, shuffled, None, n)
    sh_height = np.zeros(len(parent))
    sh_height[perm] = height
    h = from_parent(shuffled, height=sh_height)
    check_same_tree(np.asarray(h.parent), np.asarray(h.height, np.float64),
                    shuffled, sh_height.astype(np.float32).astype(np.float64), n)
    # Short array (only the used slots) with num_leaves: padded with UNUSED.
    q = int((parent[n:] != UNUSED).sum())
    short, perm = shuffle_internal(rng, parent[:n + q], n)
    h = from_parent(short, num_leaves=n)
    assert h.parent.shape == (2 * n - 1,)
    check_same_tree(np.asarray(h.parent), None, short, None, n)
    # Float arrays of integer values are accepted.
    h = from_parent(shuffled.astype(np.float64))
    check_same_tree(np.asarray(h.parent), None, shuffled, None, n)


def test_from_parent_under_x64_keeps_float64_heights():
  with jax.enable_x64(True):
    h = from_parent(np.array([4, 4, 5, 5, 6, 6, -1]),
                    height=np.array([0, 0, 0, 0, 0.1, 0.2, 0.3]))
    assert h.height.dtype == jnp.float64
    np.testing.assert_array_equal(h.height, [0, 0, 0, 0, 0.1, 0.2, 0.3])
    shuffled = np.array([6, 6, 4, 4, 5, -1, 5])  # root is 5, not canonical
    h = from_parent(shuffled, height=np.array([0, 0, 0, 0, 0.2, 0.3, 0.1]))
    check_same_tree(np.asarray(h.parent), np.asarray(h.height), shuffled,
                    [0, 0, 0, 0, 0.2, 0.3, 0.1], 4)


def test_from_parent_allow_unary():
  parent = np.array([4, 4, 4, 4, 5, -1])  # node 5 has the single child 4
  with pytest.raises(ValueError, match="internal node 5 has 1 child"):
    from_parent(parent, num_leaves=4)
  h = from_parent(parent, num_leaves=4, allow_unary=True)
  assert is_valid_hierarchy(h, allow_unary=True)
  assert not is_valid_hierarchy(h)


@pytest.mark.parametrize("args,kwargs,exc,msg", [
    (([2, 2, -1, -2],), {}, ValueError, r"from_parent: parent must have odd length 2n - 1.*got length 4"),
    (([3, 3, 4, 4, -1, -2],), {"num_leaves": 3}, ValueError, r"between n = 3 and 2n - 1 = 5.*got length 6"),
    (([2, -1],), {"num_leaves": 3}, ValueError, r"between n = 3 and 2n - 1 = 5.*got length 2"),
    (([2, 2, -1],), {"num_leaves": 0}, ValueError, r"num_leaves must be an integer >= 1"),
    (([2.5, 2, -1],), {}, ValueError, r"from_parent: parent must hold integers"),
    (([[2, 2, -1]],), {}, ValueError, r"from_parent: parent must be a 1-D integer array"),
    (([2, 2, -1],), {"height": [0, 0]}, ValueError, r"height must have shape \(3,\)"),
    (([2, 2, -1],), {"height": [0, 0, np.nan]}, ValueError, r"height must be finite"),
    (([3, 3, 4, 4, 3],), {}, ValueError, r"from_parent: parent must describe a valid hierarchy.*root"),
    (([4, 4, 5, 5, 5, 4, -1],), {}, ValueError, r"from_parent: parent must describe a valid hierarchy.*cycle"),
])
def test_from_parent_errors(args, kwargs, exc, msg):
  with pytest.raises(exc, match=msg):
    from_parent(*args, **kwargs)


def test_from_parent_every_labelling_n3():
  """Brute force: any valid tree in any labelling is accepted, else rejected.

  Without num_leaves, n is the number of used childless nodes when those are
  0..n-1 and the length fits n <= 5 <= 2n - 1 (non-binary trees such as a
  star over 4 leaves), else 3 (a binary tree's 2n - 1 = 5).
  """
  m = 5
  accepted = non_binary = 0
  for tup in itertools.product(range(-2, m), repeat=m):
    parent = list(tup)
    childless = [u for u in range(m) if parent[u] != UNUSED and u not in parent]
    k = len(childless)
    n = k if (k and childless == list(range(k)) and k <= m <= 2 * k - 1) else 3
    if o_valid(parent + [UNUSED] * (2 * n - 1 - m), n, index_order=False):
      h = from_parent(np.array(parent))
      assert h.num_leaves == n
      check_same_tree(np.asarray(h.parent), None, parent + [UNUSED] * (2 * n - 1 - m),
                      None, n)
      accepted += 1
      non_binary += n != 3
    else:
      with pytest.raises(ValueError, match="from_parent: parent must describe a valid"):
        from_parent(np.array(parent))
  assert accepted > 5 and non_binary > 0


# ---------------------------------------------------------------------------
# validate / is_valid_hierarchy on broken input.

#              leaves 0..3, internal 4..6
GOOD = [4, 4, 5, 5, 6, 6, -1]

BROKEN = [
    ("cycle", [4, 4, 5, 5, 5, 4, -1], r"node \d does not reach the root.*cycle"),
    ("two roots", [4, 4, 5, 5, -1, -1, -2], r"exactly one root.*found 2: nodes \[4, 5\]"),
    ("no root", [4, 4, 5, 5, 6, 6, 4], r"exactly one root.*found 0"),
    ("missing leaf", [4, 4, -2, 5, 6, 6, -1], r"leaf 2 is missing"),
    ("index too large", [4, 4, 5, 7, 6, 6, -1], r"parent\[3\] = 7 is out of range \[-2, 7\)"),
    ("index too small", [4, -3, 5, 5, 6, 6, -1], r"parent\[1\] = -3 is out of range"),
    ("unary node", [4, 4, 6, 6, 5, 6, -1], r"internal node 5 has 1 child"),
    ("leaf as parent", [4, 4, 1, 5, 5, -1, -2], r"node 2 has leaf 1 as its parent"),
    ("unused parent", [4, 4, 5, 5, 6, -2, -1], r"has the unused slot 5 as its parent"),
    ("parent before child", [6, 6, 4, 4, 5, -1, 5], r"node 6 has parent 5 with a smaller index"),
    ("childless internal", [6, 6, 6, 6, 6, -2, -1], r"internal node 4 has 0 child"),
]


@pytest.mark.parametrize("name,parent,msg", BROKEN, ids=[b[0] for b in BROKEN])
def test_validate_names_the_problem(name, parent, msg):
  assert not o_valid(parent, 4)
  h = Hierarchy(parent=np.array(parent, np.int32))
  with pytest.raises(ValueError, match=r"^validate: h must be a valid hierarchy, got .*" + msg):
    validate(h)
  assert is_valid_hierarchy(h) is False
  with pytest.raises(ValueError, match=msg):
    is_valid_hierarchy(h, throw=True)


def test_validate_good_tree_and_unary_option():
  h = Hierarchy(parent=np.array(GOOD, np.int32), height=np.zeros(7))
  validate(h)
  assert is_valid_hierarchy(h, throw=True) is True
  unary = Hierarchy(parent=np.array([4, 4, 6, 6, 5, 6, -1], np.int32))
  assert not is_valid_hierarchy(unary)
  assert is_valid_hierarchy(unary, allow_unary=True)


@pytest.mark.parametrize("h,exc,msg", [
    (Hierarchy(parent=np.array([2, 2, -1, -2], np.int32)), ValueError, r"h.parent must be int\[2n - 1\].*got shape \(4,\)"),
    (Hierarchy(parent=np.zeros(0, np.int32)), ValueError, r"h.parent must be int\[2n - 1\]"),
    (Hierarchy(parent=np.array([[2, 2, -1]], np.int32)), ValueError, r"h.parent must be int\[2n - 1\].*shape \(1, 3\)"),
    (Hierarchy(parent=np.array([2.0, 2.0, -1.0])), TypeError, r"h.parent must be an integer array, got float64"),
    (Hierarchy(parent=np.array([2, 2, -1], np.int32), height=np.zeros(2)), ValueError, r"height has shape \(2,\), expected \(3,\)"),
    (Hierarchy(parent=np.array([2, 2, -1], np.int32), height=np.array([0, 0, np.inf])), ValueError, r"height has NaN or infinite"),
])
def test_validate_shape_dtype_height(h, exc, msg):
  with pytest.raises(exc, match=msg):
    validate(h)
  assert is_valid_hierarchy(h) is False


# ---------------------------------------------------------------------------
# Batches, recompilation, dtypes.


@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_vmapped_views_equal_a_loop_and_the_oracle():
  rng = np.random.default_rng(5)
  n = 24  # a size the single-tree tests already compiled
  trees = [random_canonical(rng, n, mc, gaps=g) for mc, g in
           [(2, False), (3, True), (5, False), (4, True), (2, True)]]
  batch = Hierarchy(parent=jnp.asarray(np.stack(trees), jnp.int32))
  views = {
      "leaf_ranges": leaf_ranges, "leaf_counts": leaf_counts, "depth": depth,
      "root": root, "num_children": num_children, "children": children,
      "children_table": functools.partial(children_table, max_children=3),
  }
  for name, view in views.items():
    batched = jax.device_get(jax.vmap(view)(batch))
    for b, p in enumerate(trees):
      single = jax.device_get(view(hier(p)))
      jax.tree_util.tree_map(
          lambda x, y, b=b: np.testing.assert_array_equal(x[b], y, err_msg=name),
          batched, single)
  r = jax.device_get(jax.vmap(leaf_ranges)(batch))
  for b, p in enumerate(trees):
    order, start, stop = o_dfs([int(x) for x in p], n)
    np.testing.assert_array_equal(r.order[b], order)
  # postorder_compact over a batch of shuffled trees with heights.
  shuffled = np.stack([shuffle_internal(rng, p, n)[0] for p in trees])
  heights = rng.uniform(0, 1, shuffled.shape).astype(np.float32)
  heights[shuffled == UNUSED] = 0
  out = jax.vmap(postorder_compact)(hier(shuffled, heights))
  for b in range(len(trees)):
    check_same_tree(np.asarray(out.parent[b]), np.asarray(out.height[b]),
                    shuffled[b], heights[b], n)


def test_second_call_same_shape_does_not_recompile():
  from fairhc_jax import hierarchy as H
  rng = np.random.default_rng(9)
  n = 24
  views = [leaf_ranges, leaf_counts, depth, root, num_children, children,
           postorder_compact, functools.partial(children_table, max_children=2),
           H.euler_positions]
  kernels = [H._leaf_ranges, H._leaf_counts, H._depth, H._root, H._num_children,
             H._children, H._postorder_labels, H._children_table, H._move_heights,
             H._euler_positions]
  for k in kernels:  # whatever ran before, count from zero
    k.clear_cache()
  first = hier(random_canonical(rng, n, 2))
  for view in views:
    jax.block_until_ready(view(first))
  for _ in range(3):
    parent = random_canonical(rng, n, 4, gaps=True)
    other = hier(parent)
    with_heights = Hierarchy(parent=other.parent,
                             height=jnp.asarray(rng.uniform(0, 1, parent.shape), jnp.float32))
    for view in views:
      jax.block_until_ready(view(other))
      jax.block_until_ready(view(with_heights))
  # One compile per kernel: heights present or None do not retrace the views.
  sizes = {k.__name__: k._cache_size() for k in kernels}
  assert sizes == {k.__name__: 1 for k in kernels}, sizes


def test_views_under_x64_with_int32_parent():
  rng = np.random.default_rng(13)
  with jax.enable_x64(True):
    n = 9
    parent = random_canonical(rng, n, 3, gaps=True)
    h = hier(parent)
    r = jax.device_get(leaf_ranges(h))
    order, start, stop = o_dfs([int(x) for x in parent], n)
    np.testing.assert_array_equal(r.order, order)
    used = parent != UNUSED
    np.testing.assert_array_equal(r.start[used], [start[u] for u in np.flatnonzero(used)])
    np.testing.assert_array_equal(r.stop[used], [stop[u] for u in np.flatnonzero(used)])
    np.testing.assert_array_equal(depth(h), o_depth([int(x) for x in parent]))
    height = np.linspace(0, 1, 17)
    out = postorder_compact(Hierarchy(parent=jnp.asarray(parent, jnp.int32),
                                      height=jnp.asarray(height)))
    assert out.height.dtype == jnp.float64 and out.parent.dtype == jnp.int32


def test_postorder_compact_int64_parent_under_x64_no_warning():
  with jax.enable_x64(True):
    h = Hierarchy(parent=jnp.asarray(np.array([4, 4, 6, 6, 6, -2, -1], np.int64)))
    with warnings.catch_warnings():
      warnings.simplefilter("error")
      out = postorder_compact(h)
    np.testing.assert_array_equal(out.parent, [4, 4, 5, 5, 5, -1, -2])


def test_from_parent_infers_n_from_childless_nodes():
  # Issue 10 item 7: a non-binary tree of odd length, without num_leaves.
  star = from_parent(np.array([4, 4, 4, 4, -1]))  # 4 leaves under one root
  assert star.num_leaves == 4
  np.testing.assert_array_equal(np.asarray(star.parent), [4, 4, 4, 4, -1, -2, -2])
  # Even length: 4 leaves, two internal nodes (root with three children).
  h = from_parent(np.array([4, 4, 5, 5, 5, -1]))
  assert h.num_leaves == 4
  assert is_valid_hierarchy(h)
  np.testing.assert_array_equal(np.asarray(h.parent), [4, 4, 5, 5, 5, -1, -2])
  # A binary array still reads as binary.
  b = from_parent(np.array([3, 3, 4, 4, -1]))
  assert b.num_leaves == 3
  # Childless nodes that are not 0..n-1: reported as before.
  with pytest.raises(ValueError, match="from_parent: parent must"):
    from_parent(np.array([-1, 0, 0]))
