"""Tests for the entry-point validation of matrices in fairhc_jax._checks."""

import jax
import numpy as np
import pytest

from fairhc_jax import _checks


def _distances(n, seed=0):
  x = np.random.default_rng(seed).normal(size=(n, 3))
  return np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)).astype(np.float32)


def test_accepts_a_distance_matrix():
  d = _distances(20)
  out = _checks.check_square_matrix("f", "D", d, zero_diagonal=True)
  np.testing.assert_array_equal(np.asarray(out), d)


@pytest.mark.parametrize("value,match", [
    (np.nan, r"f: D must be finite \(a distance matrix\), got a NaN or infinite entry at \[2, 5\]"),
    (np.inf, r"f: D must be finite .* at \[2, 5\]"),
    (-1.0, r"f: D must be non-negative .* minimum entry -1"),
])
def test_rejects_bad_entries(value, match):
  d = _distances(10)
  d[2, 5] = d[5, 2] = value
  with pytest.raises(ValueError, match=match):
    _checks.check_square_matrix("f", "D", d)


@pytest.mark.parametrize("full_max_n", [8192, 4])  # entrywise and row-sum paths
def test_rejects_asymmetry(monkeypatch, full_max_n):
  monkeypatch.setattr(_checks, "FULL_SYMMETRY_CHECK_MAX_N", full_max_n)
  d = _distances(30)
  d[3, 7] += 0.5 * d.max()
  with pytest.raises(ValueError, match="f: D must be symmetric"):
    _checks.check_square_matrix("f", "D", d)
  # Rounding-level asymmetry (a transposed float32 product) is accepted.
  e = _distances(30)
  e = e + np.float32(1e-7) * e.max() * np.triu(np.ones_like(e), 1)
  _checks.check_square_matrix("f", "D", e)


def test_rejects_nonzero_diagonal_and_shapes():
  d = _distances(5)
  d[1, 1] = 1.0
  with pytest.raises(ValueError, match=r"f: D must have a zero diagonal, got max \|diagonal\| = 1"):
    _checks.check_square_matrix("f", "D", d, zero_diagonal=True)
  with pytest.raises(ValueError, match=r"f: D must be a square distance matrix float\[n, n\], got shape \(3, 4\)"):
    _checks.check_square_matrix("f", "D", np.zeros((3, 4)))


def test_float64_tolerance_is_tight():
  with jax.enable_x64(True):
    d = _distances(12).astype(np.float64)
    d[0, 1] += 1e-9 * d.max()
    with pytest.raises(ValueError, match="must be symmetric"):
      _checks.check_square_matrix("f", "D", d)
