"""The bit-sliced verdict path (``is_fair``, ``fairness_probability``) and ``random_colorings``.

Oracles are independent of the kernels: counts by adding every node into
its parent with Python integers, verdicts with ``fractions.Fraction``, bit
transposes bit by bit with NumPy, and the colouring draw re-derived from
the same raw ``jax.random.bits`` words by a literal NumPy transcription.
"""

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairhc_jax import fairness as F
from fairhc_jax.fairness import checks as _checks
from fairhc_jax.fairness import counts as _counts
from fairhc_jax.fairness import sampling as _sampling
from fairhc_jax.hierarchy import from_parent
from fairness_oracles import oracle_counts, random_binary_parent


def oracle_is_fair(parent, colors, c, lower, upper, min_size, leaf_rule=False):
  n = (len(parent) + 1) // 2
  counts = oracle_counts(parent, colors, c)
  for u in range(n, len(parent)):
    size = int(counts[u].sum())
    if size < min_size or size == 0:
      continue
    for g in range(c):
      share = Fraction(int(counts[u, g]), size)
      if share < lower[g] or share > upper[g]:
        return False
    if leaf_rule:
      kids = [v for v in range(len(parent)) if parent[v] == u]
      if any(v < n for v in kids) and any(v >= n for v in kids):
        return False
  return True


def test_bit_transpose32_against_bits():
  rng = np.random.default_rng(0)
  x = rng.integers(0, 2**32, size=(4, 3, 32), dtype=np.uint64).astype(np.uint32)
  y = np.asarray(jax.jit(_counts.bit_transpose32)(jnp.asarray(x)))
  bx = (x[..., :, None] >> np.arange(32, dtype=np.uint32)) & 1     # [.., i, k]
  by = (y[..., :, None] >> np.arange(32, dtype=np.uint32)) & 1     # [.., k, i]
  np.testing.assert_array_equal(np.swapaxes(bx, -1, -2), by)


def _bit_node_counts(parent, colors, c):
  """``int[B, m, p]`` plane counts of every node through the bit-sliced kernels."""
  h = from_parent(parent)
  r = _counts.tree_ranges(h)
  b = colors.shape[0]

  @jax.jit
  def run(order, start, stop, cols):
    words = _counts.leaf_words(order, cols, c)
    ew, em = _counts.position_index(stop)
    sw, sm = _counts.position_index(start)

    def step(lane_words):
      table = _counts.position_table(lane_words)
      return (_counts.counts_before(table, ew, em)
              - _counts.counts_before(table, sw, sm))
    return _counts.map_lanes(step, words, 64)

  out = np.asarray(run(r.order, r.start, r.stop, jnp.asarray(colors, jnp.int32)))
  return np.moveaxis(out, -1, 0)[:b]                  # [B, m, p]


@pytest.mark.parametrize("n,c,b", [(1, 2, 3), (40, 2, 70), (70, 3, 37)])
def test_bit_counts_match_oracle(n, c, b):
  # b = 3, 37, 70: fewer than 32, partial last groups of 32 and of 64-lane steps;
  # n = 40, 70 span several words.
  rng = np.random.default_rng(100 * n + b)
  parent = random_binary_parent(n, rng) if n > 1 else np.array([-1])
  colors = rng.integers(0, c, (b, n))
  got = _bit_node_counts(parent, colors, c)
  for i in range(b):
    want = oracle_counts(parent, colors[i], c)
    planes = want[:, :1] if c == 2 else np.concatenate(
        [want[:, :c - 1], want[:, :c - 1].sum(1, keepdims=True)], axis=1)
    np.testing.assert_array_equal(got[i], planes, err_msg=f"colouring {i}")


@pytest.mark.parametrize("n", [1, 2, 3])
def test_is_fair_tiny_trees(n):
  rng = np.random.default_rng(n)
  parent = random_binary_parent(n, rng) if n > 1 else np.array([-1])
  h = from_parent(parent)
  batch = rng.integers(0, 2, (5, n))
  cons = F.BoundedRepresentation(Fraction(2, 3))
  got = np.asarray(F.is_fair(h, batch, cons, num_colors=2))
  want = [oracle_is_fair(parent, batch[i], 2, [0, 0], [Fraction(2, 3)] * 2, 2)
          for i in range(5)]
  np.testing.assert_array_equal(got, want)


def test_is_fair_leaf_rule_and_one_colour_match_oracle():
  rng = np.random.default_rng(5)
  # a tree with mixed children: node 5 = {0, 1} has leaf children only, node 6 = {5, 2}
  parent = np.array([5, 5, 6, 7, 7, 6, 8, 8, -1])     # n = 5
  h = from_parent(parent)
  batch = rng.integers(0, 2, (9, 5))
  cons = F.BoundedRepresentation(1)
  got = np.asarray(F.is_fair(h, batch, cons, num_colors=2, leaf_children_rule=True))
  want = [oracle_is_fair(parent, batch[i], 2, [0, 0], [1, 1], 2, leaf_rule=True)
          for i in range(9)]
  np.testing.assert_array_equal(got, want)
  assert not any(want)
  one = np.zeros((4, 5), np.int64)
  np.testing.assert_array_equal(np.asarray(F.is_fair(h, one, cons, num_colors=1)), [True] * 4)


def test_is_fair_bits_matches_check_fairness_over_many_batches():
  """B = 200 (a partial lane step), three colours, scopes with blocks, against the int32 path."""
  rng = np.random.default_rng(9)
  n = 90
  parent = random_binary_parent(n, rng)
  h = from_parent(parent)
  base = np.arange(n) % 3
  batch = np.tile(base, (200, 1))
  for i in range(200):
    idx = rng.choice(n, rng.integers(0, 6), replace=False)
    batch[i, idx] = rng.integers(0, 3, len(idx))
  cons = F.RepresentationBounds([Fraction(1, 5)] * 3, [Fraction(1, 2)] * 3)
  seen = set()
  for scope in (9, F.ClusterScope(blocks=rng.integers(0, 30, n))):
    got = np.asarray(F.is_fair(h, batch, cons, scope=scope))
    want = np.asarray(F.check_fairness(h, batch, cons, scope=scope).is_fair)
    np.testing.assert_array_equal(got, want)
    seen.update(want.tolist())
  assert seen == {True, False}


def test_bit_verdicts_under_x64():
  rng = np.random.default_rng(22)
  n = 45
  parent = random_binary_parent(n, rng)
  batch = rng.integers(0, 3, (35, n))
  lo, hi = [Fraction(1, 10)] * 3, [Fraction(3, 5)] * 3
  want = [oracle_is_fair(parent, batch[i], 3, lo, hi, 8) for i in range(35)]
  with jax.enable_x64(True):
    got = np.asarray(F.is_fair(from_parent(parent), batch, F.RepresentationBounds(lo, hi),
                               scope=8))
  np.testing.assert_array_equal(got, want)
  assert set(want) == {True, False}


# ---------------------------------------------------------------------------
# random_colorings


def _numpy_draw(key, probs, num_samples, n, bits):
  """Literal transcription: the same raw words cut into fields, thresholds by Fractions."""
  per_word = 32 // bits
  words = np.asarray(jax.random.bits(key, (num_samples, -(-n // per_word)), jnp.uint32))
  out = np.zeros((num_samples, n), np.int64)
  p = np.broadcast_to(np.asarray(probs, np.float64), (n, len(probs[0]) if np.ndim(probs) == 2
                                                      else len(probs)))
  for i in range(n):
    cum = [Fraction(0)]
    for g in range(p.shape[1]):
      cum.append(cum[-1] + Fraction(p[i, g]))
    thresh = [round(x * 2**bits) for x in cum[1:-1]]
    for s in range(num_samples):
      u = (int(words[s, i // per_word]) >> (bits * (i % per_word))) & ((1 << bits) - 1)
      out[s, i] = sum(u >= t for t in thresh)
  return out


@pytest.mark.parametrize("bits,probs", [(1, [0.5, 0.5]), (2, [0.25, 0.5, 0.25]),
                                        (16, [0.3, 0.7])])
def test_random_colorings_equal_the_numpy_transcription(bits, probs):
  key = jax.random.key(4)
  got = np.asarray(F.random_colorings(key, probs, 6, 37, bits=bits))
  np.testing.assert_array_equal(got, _numpy_draw(key, probs, 6, 37, bits))
  assert got.dtype == np.int32 and got.shape == (6, 37)


def test_random_colorings_per_point_probs():
  key = jax.random.key(5)
  probs = np.array([[0.25, 0.75], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
  got = np.asarray(F.random_colorings(key, probs, 9))
  assert got.shape == (9, 4)
  np.testing.assert_array_equal(got, _numpy_draw(key, probs, 9, 4, 2))   # 2 bits: exact
  assert (got[:, 1] == 0).all() and (got[:, 2] == 1).all()


def test_random_colorings_distribution_chi_square():
  """200,000 draws of [1/4, 1/2, 1/4] (exact with 2 bits), and of [0.3, 0.7] at 16 bits.

  Pearson's statistic against the exact probabilities has a chi-square
  law (2 and 1 degrees of freedom); the bounds 18.42 and 15.14 are its
  0.9999 quantiles, so a correct sampler fails with probability 1e-4 per
  case; the key is fixed, so the test is deterministic.
  """
  key = jax.random.key(123)
  draws = np.asarray(F.random_colorings(key, [0.25, 0.5, 0.25], 2000, 100)).ravel()
  counts = np.bincount(draws, minlength=3)
  want = draws.size * np.array([0.25, 0.5, 0.25])
  assert ((counts - want) ** 2 / want).sum() < 18.42
  draws = np.asarray(F.random_colorings(jax.random.key(7), [0.3, 0.7], 2000, 100)).ravel()
  p1 = round(0.3 * 2**16) / 2**16        # the 16-bit threshold's probability
  counts = np.bincount(draws, minlength=2)
  want = draws.size * np.array([p1, 1 - p1])
  assert ((counts - want) ** 2 / want).sum() < 15.14
  assert abs(p1 - 0.3) <= 2**-16


def test_random_colorings_picks_the_exact_resolution():
  assert _sampling.exact_bits([0.5, 0.5]) == 1
  assert _sampling.exact_bits([0.25, 0.75]) == 2
  assert _sampling.exact_bits([1 / 3, 2 / 3]) is None
  key = jax.random.key(8)
  np.testing.assert_array_equal(np.asarray(F.random_colorings(key, [0.5, 0.5], 3, 70)),
                                _numpy_draw(key, [0.5, 0.5], 3, 70, 1))


def test_random_colorings_rejects_bad_input():
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="random_colorings: probs must have rows summing to 1"):
    F.random_colorings(key, [0.5, 0.6], 3, 4)
  with pytest.raises(ValueError, match="random_colorings: probs must hold finite non-negative"):
    F.random_colorings(key, [1.5, -0.5], 3, 4)
  with pytest.raises(TypeError, match="random_colorings: num_points must be given"):
    F.random_colorings(key, [0.5, 0.5], 3)
  with pytest.raises(ValueError, match="random_colorings: bits must be one of"):
    F.random_colorings(key, [0.5, 0.5], 3, 4, bits=3)
  with pytest.raises(ValueError, match="random_colorings: num_points must match"):
    F.random_colorings(key, np.full((4, 2), 0.5), 3, 5)
  with pytest.raises(ValueError, match="random_colorings: num_samples must"):
    F.random_colorings(key, [0.5, 0.5], 0, 4)


def test_tree_ranges_cache_is_per_array():
  """The cached leaf ranges belong to the very parent array (never to another tree)."""
  from fairhc_jax.hierarchy import Hierarchy, leaf_ranges
  rng = np.random.default_rng(12)
  p1, p2 = random_binary_parent(9, rng), random_binary_parent(9, rng)
  h1 = Hierarchy(parent=jnp.asarray(p1, jnp.int32))
  h2 = Hierarchy(parent=jnp.asarray(p2, jnp.int32))
  for h, p in ((h1, p1), (h2, p2), (h1, p1)):
    got = _counts.tree_ranges(h)
    want = leaf_ranges(Hierarchy(parent=jnp.asarray(p, jnp.int32)))
    for a, b in zip(got, want):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert _counts.tree_ranges(h1) is _counts.tree_ranges(h1)        # cached
  hn = Hierarchy(parent=np.asarray(p1, np.int32))                  # NumPy: mutable, not cached
  assert _counts.tree_ranges(hn) is not _counts.tree_ranges(hn)
