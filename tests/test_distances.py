"""Tests for fairhc_jax.distances against literal NumPy oracles written here."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

dist_mod = importlib.import_module("fairhc_jax.distances")
pairwise_distances = dist_mod.pairwise_distances
similarity = dist_mod.similarity


def oracle_distances(x):
  """Double loop over pairs, float64: sqrt(sum_f (x_if - x_jf)^2)."""
  x = np.asarray(x, np.float64)
  n = x.shape[0]
  d = np.zeros((n, n))
  for i in range(n):
    for j in range(n):
      d[i, j] = np.sqrt(np.sum((x[i] - x[j]) ** 2))
  return d


def oracle_similarity(d):
  d = np.asarray(d, np.float64)
  n = d.shape[0]
  s = np.zeros((n, n))
  for i in range(n):
    for j in range(n):
      if i != j:
        s[i, j] = 1.0 / (1.0 + d[i, j])
  return s


@pytest.mark.parametrize("n,dim", [(1, 3), (2, 1), (3, 2), (37, 5), (50, 40)])
def test_direct_float64(n, dim):
  x = np.random.default_rng(n * dim).normal(size=(n, dim)) * 3 + 10
  with jax.enable_x64(True):
    d = pairwise_distances(x)
    assert d.dtype == jnp.float64
  ref = oracle_distances(x)
  np.testing.assert_allclose(np.asarray(d), ref, rtol=1e-13, atol=1e-13)
  assert np.all(np.diag(np.asarray(d)) == 0)


def test_direct_float32_is_accurate_for_close_points():
  # Far from the origin and close together: the Gram formula cancels here,
  # the direct formula must not.
  rng = np.random.default_rng(1)
  x = 1000.0 + rng.normal(size=(40, 4)) * 1e-2
  d = pairwise_distances(x.astype(np.float32))
  assert d.dtype == jnp.float32
  ref = oracle_distances(x.astype(np.float32))
  off = ~np.eye(40, dtype=bool)
  rel = np.abs(np.asarray(d, np.float64) - ref)[off] / ref[off]
  assert rel.max() < 1e-5


def test_gram_method_float64_and_zero_diagonal():
  x = np.random.default_rng(2).normal(size=(30, 6))
  with jax.enable_x64(True):
    d = np.asarray(pairwise_distances(x, method="gram"))
  np.testing.assert_allclose(d, oracle_distances(x), rtol=1e-9, atol=1e-9)
  assert np.all(np.diag(d) == 0)
  np.testing.assert_array_equal(d, d.T)


@pytest.mark.parametrize("block_size", [1, 3, 7, 64])
def test_block_sizes_agree(block_size):
  x = np.random.default_rng(3).normal(size=(23, 3)).astype(np.float32)
  d = np.asarray(pairwise_distances(x, block_size=block_size))
  np.testing.assert_allclose(d, oracle_distances(x), rtol=1e-5, atol=1e-5)


def test_identical_points_give_exact_zero_and_symmetry():
  x = np.array([[1.5, -2.0, 3.0], [1.5, -2.0, 3.0], [0.0, 0.0, 0.0]], np.float32)
  d = np.asarray(pairwise_distances(x))
  assert d[0, 1] == 0 and d[1, 0] == 0
  np.testing.assert_array_equal(d, d.T)


def test_integer_points_become_float():
  d = pairwise_distances(np.array([[0, 0], [3, 4]]))
  assert jnp.issubdtype(d.dtype, jnp.floating)
  np.testing.assert_allclose(np.asarray(d), [[0, 5], [5, 0]])


def test_jit_compiles_once_per_shape():
  # Cleared first, so an earlier compile of this shape cannot hide a retrace.
  kernel = dist_mod._pairwise_kernel
  kernel.clear_cache()
  for seed in range(3):
    pairwise_distances(np.random.default_rng(seed).normal(size=(11, 2)).astype(np.float32))
  assert kernel._cache_size() == 1


@pytest.mark.parametrize("n", [1, 2, 9])
def test_similarity(n):
  x = np.random.default_rng(n).normal(size=(n, 2))
  d = oracle_distances(x)
  with jax.enable_x64(True):
    s = np.asarray(similarity(d))
  np.testing.assert_allclose(s, oracle_similarity(d), rtol=1e-14)
  s32 = np.asarray(similarity(d.astype(np.float32)))
  assert s32.dtype == np.float32
  np.testing.assert_allclose(s32, oracle_similarity(d), rtol=1e-6)


def test_bad_points():
  with pytest.raises(ValueError, match="pairwise_distances: X must be finite, got a NaN"):
    pairwise_distances(np.array([[0.0, 1.0], [np.inf, 2.0]]))
  with pytest.raises(ValueError, match=r"pairwise_distances: X must be a 2-D point matrix"):
    pairwise_distances(np.zeros(5))
  with pytest.raises(ValueError, match="pairwise_distances: method must be one of 'direct', 'gram'"):
    pairwise_distances(np.zeros((2, 2)), method="cosine")
  with pytest.raises(ValueError, match="pairwise_distances: block_size must be an integer >= 1"):
    pairwise_distances(np.zeros((2, 2)), block_size=0)


def test_bad_similarity_input():
  with pytest.raises(ValueError, match="similarity: D must be symmetric"):
    similarity(np.array([[0.0, 1.0], [2.0, 0.0]]))
  with pytest.raises(ValueError, match="similarity: D must be non-negative"):
    similarity(np.array([[0.0, -1.0], [-1.0, 0.0]]))
  with pytest.raises(ValueError, match="similarity: D must be a square"):
    similarity(np.zeros((2, 3)))
