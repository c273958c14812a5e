"""The verdicts of ``is_fair`` / ``fairness_probability`` against NumPy oracles.

Written for the float32 verdict path (prefix sums by blocked triangular
matmuls, ``counts.prefix_sum_matmul``, and per-node intervals,
``checks.verdict_intervals``); since stop 19 the public functions run the
bit-sliced integer path (``checks.bit_verdicts``, tested on its own in
``test_fairness_bits.py``), so these cases, among them the exact ``3/4``
boundaries at n = 50,000 and sums at ``2^24 - 1``, now check that path.
The oracles are independent: counts by summing children into parents with
Python integers, verdicts with ``fractions.Fraction``.
"""

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairhc_jax import fairness as F
from fairhc_jax.fairness import checks as _checks
from fairhc_jax.fairness import counts as _counts
from fairhc_jax.hierarchy import from_parent
from fairness_oracles import oracle_counts, random_binary_parent


def oracle_is_fair(parent, colors, c, lower, upper, min_size):
  """Every internal node with >= min_size leaves has lower_g <= share_g <= upper_g."""
  n = (len(parent) + 1) // 2
  counts = oracle_counts(parent, colors, c)
  for u in range(n, len(parent)):
    size = int(counts[u].sum())
    if size < min_size:
      continue
    for g in range(c):
      share = Fraction(int(counts[u, g]), size)
      if share < lower[g] or share > upper[g]:
        return False
  return True


@pytest.mark.parametrize("size", [1, 2, 31, 32, 33, 1025, 2100])
def test_prefix_sum_matmul_matches_cumsum(size):
  # 1025 and 2100 need three levels of blocks (32 * 32 = 1024).
  rng = np.random.default_rng(size)
  x = rng.integers(0, 3, (2, 3, size))
  got = np.asarray(jax.jit(_counts.prefix_sum_matmul)(jnp.asarray(x, jnp.float32)))
  np.testing.assert_array_equal(got, np.cumsum(x, axis=-1))


def test_prefix_sum_matmul_exact_just_below_two_to_the_24():
  # Row sums reach 2^24 - 1: every partial sum is an integer float32 holds.
  size = 1500
  x = np.full((1, size), (2**24 - 1) // size, np.int64)
  x[0, -1] += 2**24 - 1 - x.sum()
  got = np.asarray(jax.jit(_counts.prefix_sum_matmul)(jnp.asarray(x, jnp.float32)))
  want = np.cumsum(x, axis=-1)
  assert want[0, -1] == 2**24 - 1
  np.testing.assert_array_equal(got.astype(np.int64), want)


def test_float_path_applies_below_two_to_the_24_only():
  assert _checks.float_verdicts(2**24 - 1, data_shares=False)
  assert not _checks.float_verdicts(2**24, data_shares=False)
  assert not _checks.float_verdicts(10, data_shares=True)


def _near_fair_batch(n, c, count, rng):
  """Colourings that are round-robin (fair at every big node) with a few flips."""
  base = np.arange(n) % c
  batch = np.tile(base, (count, 1))
  for i in range(count):
    flips = rng.integers(0, 4)
    idx = rng.choice(n, flips, replace=False)
    batch[i, idx] = rng.integers(0, c, flips)
    if i % 3 == 0:
      rng.shuffle(batch[i])
  return batch


@pytest.mark.parametrize("c", [2, 3])
def test_is_fair_float_path_matches_oracle(c):
  """Over two padded chunks (B = 130 > VERDICT_CHUNK), several scopes and constraints."""
  rng = np.random.default_rng(7 + c)
  n = 60
  parent = random_binary_parent(n, rng)
  h = from_parent(parent)
  batch = _near_fair_batch(n, c, _checks.VERDICT_CHUNK + 2, rng)
  if c == 2:
    cases = [(F.Balance(1, 3), [Fraction(1, 4)] * 2, [Fraction(3, 4)] * 2),
             (F.Balance(2, 3), [Fraction(2, 5)] * 2, [Fraction(3, 5)] * 2)]
  else:
    lo = [Fraction(1, 6), Fraction(1, 5), Fraction(0)]
    hi = [Fraction(1, 2), Fraction(1, 2), Fraction(3, 5)]
    cases = [(F.RepresentationBounds(lo, hi), lo, hi),
             (F.BoundedRepresentation(Fraction(1, 2)), [Fraction(0)] * 3,
              [Fraction(1, 2)] * 3)]
  seen = set()
  for cons, lower, upper in cases:
    for min_size in (2, 6, 15):
      got = np.asarray(F.is_fair(h, batch, cons, scope=min_size, num_colors=c))
      want = np.array([oracle_is_fair(parent, batch[i], c, lower, upper, min_size)
                       for i in range(len(batch))])
      np.testing.assert_array_equal(got, want, err_msg=f"{cons} min_size={min_size}")
      seen.update(want.tolist())
  assert seen == {True, False}   # the comparison saw both verdicts


def test_is_fair_float_path_exact_at_large_n():
  """n = 50,000: a node of 40,000 leaves at exactly 3/4 is fair, one more is not."""
  n, k = 50_000, 40_000
  parent = np.full(n + 2, -1)
  parent[:k] = n
  parent[k:n] = n + 1
  parent[n] = n + 1
  h = from_parent(parent, num_leaves=n)
  cons = F.BoundedRepresentation(Fraction(3, 4))
  batch = np.zeros((3, n), np.int64)
  batch[:, k:] = np.arange(n - k) % 2          # the root stays below 3/4 of a colour
  batch[0, :30_000] = 1                        # 30,000 / 40,000 = 3/4 exactly
  batch[1, :30_001] = 1                        # 30,001 / 40,000 > 3/4
  batch[2, :10_000] = 1                        # colour 0 at exactly 3/4
  got = np.asarray(F.is_fair(h, batch, cons, scope=3))
  np.testing.assert_array_equal(got, [True, False, True])
  np.testing.assert_array_equal(
      got, np.asarray(F.check_fairness(h, batch, cons, scope=3).is_fair))


def test_fairness_probability_float_path_counts_oracle_verdicts():
  """The audit's fair count equals the oracle's verdicts on the same drawn colourings."""
  rng = np.random.default_rng(3)
  n = 24
  parent = random_binary_parent(n, rng)
  h = from_parent(parent)
  probs = np.array([0.5, 0.5])
  key = jax.random.key(11)
  chunk, num = 16, 40
  est = F.fairness_probability(h, probs, F.Balance(1, 2), key=key, num_samples=num,
                               chunk=chunk, scope=6)
  # the audit's own draw: chunk i with split(key, num_chunks)[i]
  keys = jax.random.split(key, -(-num // chunk))
  logits = jnp.log(jnp.broadcast_to(jnp.asarray(probs, jnp.float32), (n, 2)))
  fair = 0
  for i, k in enumerate(keys):
    cols = np.asarray(jax.random.categorical(k, logits, axis=-1, shape=(chunk, n)))
    for j in range(chunk):
      if i * chunk + j < num:
        fair += oracle_is_fair(parent, cols[j], 2, [Fraction(1, 3)] * 2,
                               [Fraction(2, 3)] * 2, 6)
  assert 0 < fair < num
  assert int(est.num_fair) == fair


def test_is_fair_float_path_under_x64():
  rng = np.random.default_rng(21)
  n = 60
  parent = random_binary_parent(n, rng)
  batch = _near_fair_batch(n, 2, 6, rng)
  want = [oracle_is_fair(parent, batch[i], 2, [Fraction(1, 4)] * 2, [Fraction(3, 4)] * 2, 6)
          for i in range(len(batch))]
  with jax.enable_x64(True):
    h = from_parent(parent)
    got = np.asarray(F.is_fair(h, batch, F.Balance(1, 3), scope=6))
  np.testing.assert_array_equal(got, want)
  assert set(want) == {True, False}
