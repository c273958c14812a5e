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


@pytest.mark.parametrize("n", [30, 301])  # 301: slabs of 217 rows, the last one overlapping
def test_rejects_asymmetry(n):
  d = _distances(n)
  d[3, 7] += 0.5 * d.max()
  with pytest.raises(ValueError, match=r"f: D must be symmetric \(a distance matrix\), "
                     r"got max \|D\[i, j\] - D\[j, i\]\| = "):
    _checks.check_square_matrix("f", "D", d)
  # One ulp in the last row (inside the overlap of the last slab) is not
  # bitwise symmetric: the entrywise pass runs and accepts it (rounding level).
  e = _distances(n)
  e[n - 1, 0] = np.nextafter(e[n - 1, 0], np.float32(np.inf))
  assert not bool(_checks._one_pass(e, _checks._hash_weights(n, np.uint32),
                                    _checks._slab_rows(n))[0])
  _checks.check_square_matrix("f", "D", e)
  # Rounding-level asymmetry (a transposed float32 product) is accepted.
  e = _distances(n)
  e = e + np.float32(1e-7) * e.max() * np.triu(np.ones_like(e), 1)
  _checks.check_square_matrix("f", "D", e)


def _oracle_max_asymmetry(d):
  return float(np.abs(d.astype(np.float64) - d.T.astype(np.float64)).max())


@pytest.mark.parametrize("n", [1, 2, 3, 257, 600])
def test_exact_asymmetry_pass_matches_numpy(n):
  rng = np.random.default_rng(n)
  d = rng.random((n, n)).astype(np.float32)
  got = float(_checks._max_asymmetry(d))
  assert got == pytest.approx(_oracle_max_asymmetry(d), rel=1e-6)


def test_bitwise_hash_sees_one_flipped_bit_anywhere():
  n = 97
  d = _distances(n)
  r = _checks._hash_weights(n, np.uint32)
  rows = _checks._slab_rows(n)
  assert bool(_checks._one_pass(d, r, rows)[0])
  rng = np.random.default_rng(1)
  for i, j in rng.integers(0, n, size=(20, 2)):
    if i == j:
      continue
    e = d.copy()
    e[i, j] = np.nextafter(e[i, j], np.float32(0))
    assert not bool(_checks._one_pass(e, r, rows)[0]), (i, j)


def test_signed_zero_is_symmetric_within_tolerance():
  d = _distances(6)
  d[0, 1] = d[1, 0] = 0.0
  d[0, 1] = -0.0  # bitwise different from +0.0, numerically equal
  _checks.check_square_matrix("f", "D", d)


def test_validate_false_skips_value_checks_but_not_shapes():
  d = _distances(8)
  d[0, 1] = np.nan
  out = _checks.check_square_matrix("f", "D", d, validate=False)
  assert np.isnan(np.asarray(out)[0, 1])
  with pytest.raises(ValueError, match=r"f: D must be a square distance matrix"):
    _checks.check_square_matrix("f", "D", np.zeros((2, 3)), validate=False)


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


def test_float64_hash_and_rejections():
  with jax.enable_x64(True):
    d = _distances(40).astype(np.float64)
    _checks.check_square_matrix("f", "D", d, zero_diagonal=True)
    e = d.copy()
    e[5, 6] = np.nextafter(e[5, 6], 0)  # one ulp: within 1e-12 relative
    _checks.check_square_matrix("f", "D", e)
    e[7, 0] = -2.0
    with pytest.raises(ValueError, match=r"f: D must be non-negative .* minimum entry -2"):
      _checks.check_square_matrix("f", "D", e)
    d[1, 1] = 1e-3
    with pytest.raises(ValueError, match=r"f: D must have a zero diagonal, got max \|diagonal\| = 0.001"):
      _checks.check_square_matrix("f", "D", d, zero_diagonal=True)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_in_last_overlapping_slab_found(value):
  n = 301
  d = _distances(n)
  d[n - 1, 4] = value
  with pytest.raises(ValueError, match=rf"f: D must be finite .* at \[{n - 1}, 4\]"):
    _checks.check_square_matrix("f", "D", d)


# ---------------------------------------------------------------------------
# The one-pass check's hash, its maximum of bit patterns, and the memory of
# checked JAX arrays.


def _weights(n, seed):
  r = np.random.default_rng(seed).integers(0, 2 ** 32, size=n, dtype=np.uint64)
  return jax.numpy.asarray((r | 1).astype(np.uint32))


def test_hash_sees_exponent_only_differences_in_every_row():
  # A 3-cycle: every row has two mismatched entries, differing only in the
  # exponent (1 vs 2), the case an unmixed 32-bit hash sees worst.
  n = 6
  d = np.ones((n, n), np.float32)
  np.fill_diagonal(d, 0)
  d[0, 1] = d[1, 2] = d[2, 0] = 2.0
  for seed in range(16):
    assert not bool(_checks._one_pass(d, _weights(n, seed), 2)[0]), seed
  with pytest.raises(ValueError, match=r"f: D must be symmetric .* = 1$"):
    _checks.check_square_matrix("f", "D", d)


def test_hash_never_rejects_a_symmetric_matrix():
  rng = np.random.default_rng(3)
  n = 37
  for seed in range(8):
    a = rng.random((n, n)).astype(np.float32) * np.float32(10.0) ** rng.integers(-30, 30, (n, n))
    a = np.triu(a, 1)
    a[rng.random((n, n)) < 0.1] = 0.0
    a = a + a.T
    assert bool(_checks._one_pass(a, _weights(n, seed), 5)[0]), seed


def test_maximum_of_bit_patterns_and_negative_zero():
  d = _distances(9)
  m = _checks._one_pass(d, _weights(9, 0), 4)[1]
  assert np.asarray(m).view(np.float32) == d.max()
  # A negative zero has the sign bit: the exact float pass runs and accepts.
  e = d.copy()
  e[2, 3] = -0.0
  e[3, 2] = 0.0
  _checks.check_square_matrix("f", "D", e, zero_diagonal=True)
  e[4, 5] = -1e-30
  with pytest.raises(ValueError, match=r"f: D must be non-negative .* minimum entry -1e-30"):
    _checks.check_square_matrix("f", "D", e)


def test_float16_rejections_named():
  d = _distances(12).astype(np.float16)
  _checks.check_square_matrix("f", "D", d, zero_diagonal=True)
  e = d.copy()
  e[1, 2] = np.float16(7.0)
  with pytest.raises(ValueError, match="must be symmetric"):
    _checks.check_square_matrix("f", "D", e)
  e = d.copy()
  e[1, 2] = np.inf
  with pytest.raises(ValueError, match=r"must be finite .* at \[1, 2\]"):
    _checks.check_square_matrix("f", "D", e)


def test_checked_jax_array_is_remembered(monkeypatch):
  _checks.forget_validated()
  d = jax.numpy.asarray(_distances(10))
  _checks.check_square_matrix("f", "D", d)
  calls = []
  real = _checks._one_pass
  monkeypatch.setattr(_checks, "_one_pass", lambda *a, **k: calls.append(1) or real(*a, **k))
  _checks.check_square_matrix("g", "D", d, zero_diagonal=True)
  assert calls == []  # the same (immutable) array: no second pass
  _checks.check_square_matrix("f", "D", jax.numpy.array(d, copy=True))
  assert calls == [1]  # another array object is checked
  _checks.check_square_matrix("f", "D", np.asarray(d))
  _checks.check_square_matrix("f", "D", np.asarray(d))
  assert calls == [1, 1, 1]  # NumPy input (mutable) is checked every time
  # The zero-diagonal test still runs on a remembered array.
  e = _distances(10)
  e[4, 4] = 1.0
  e = jax.numpy.asarray(e)
  _checks.check_square_matrix("f", "D", e)
  with pytest.raises(ValueError, match=r"f: D must have a zero diagonal, got max \|diagonal\| = 1"):
    _checks.check_square_matrix("f", "D", e, zero_diagonal=True)
  # A rejected array is not remembered.
  bad = jax.numpy.asarray(np.where(np.eye(10, k=1) > 0, -1.0, _distances(10)).astype(np.float32))
  for _ in range(2):
    with pytest.raises(ValueError, match="must be non-negative"):
      _checks.check_square_matrix("f", "D", bad)
  _checks.forget_validated()
  _checks.check_square_matrix("f", "D", d)
  assert len(calls) == 7


# ---------------------------------------------------------------------------
# The pass cut into concurrent row ranges (one dispatch each, on CPU).


def _one_pass_values(m, r, rows, parts):
  sym, top, diag = _checks._one_pass(m, r, rows, parts=parts)
  return bool(sym), int(top), float(diag)


def test_one_pass_in_ranges_equals_one_dispatch():
  n = 37  # 8 slabs of 5 rows; the last one overlaps the one before it
  r = _weights(n, 1)
  sym = _distances(n, 2)
  flipped = sym.copy()
  flipped[36, 3] = np.nextafter(flipped[36, 3], np.float32(10))  # in the last slab
  early = sym.copy()
  early[2, 30] *= 2  # in the first slab
  bad = sym.copy()
  bad[35, 1] = np.nan  # in the overlap of the last two slabs
  truth = {"sym": True, "flipped": False, "early": False, "bad": False}
  for name, m in {"sym": sym, "flipped": flipped, "early": early, "bad": bad}.items():
    one = _one_pass_values(m, r, 5, 1)
    assert one[0] == truth[name], name
    for parts in (2, 3, 7, 8, 20):
      assert _one_pass_values(m, r, 5, parts) == one, (name, parts)
  # The maximum bit pattern is the float maximum for a valid matrix.
  assert _one_pass_values(sym, r, 5, 3)[1] == int(np.max(sym).view(np.uint32))


def test_check_in_concurrent_ranges_names_every_rejection(monkeypatch):
  from fairhc_jax import _parallel
  monkeypatch.setattr(_parallel, "MIN_ENTRIES", 0)
  monkeypatch.setattr(_parallel, "cpu_count", lambda: 3)
  seen = []
  real = _parallel.run_parts
  monkeypatch.setattr(_parallel, "run_parts",
                      lambda f, firsts: seen.append(len(firsts)) or real(f, firsts))
  n = 301  # 3 slabs of 108 rows (the last overlapping): 3 ranges of one slab
  d = _distances(n)
  out = _checks.check_square_matrix("f", "D", d, zero_diagonal=True)
  np.testing.assert_array_equal(np.asarray(out), d)
  assert seen == [3]
  e = d.copy()
  e[n - 1, 4] = np.nan
  with pytest.raises(ValueError, match=rf"f: D must be finite .* at \[{n - 1}, 4\]"):
    _checks.check_square_matrix("f", "D", e)
  e = d.copy()
  e[200, 7] = -2.0
  e[7, 200] = -2.0
  with pytest.raises(ValueError, match=r"f: D must be non-negative .* minimum entry -2"):
    _checks.check_square_matrix("f", "D", e)
  e = d.copy()
  e[150, 250] += 1.0  # one entry, in the middle range
  with pytest.raises(ValueError, match=r"f: D must be symmetric .* = 1$"):
    _checks.check_square_matrix("f", "D", e)
  e = d.copy()
  e[299, 299] = 1.0
  with pytest.raises(ValueError, match=r"f: D must have a zero diagonal, got max \|diagonal\| = 1"):
    _checks.check_square_matrix("f", "D", e, zero_diagonal=True)
  assert seen == [3] * 5


def test_check_in_concurrent_ranges_float64(monkeypatch):
  from fairhc_jax import _parallel
  monkeypatch.setattr(_parallel, "MIN_ENTRIES", 0)
  monkeypatch.setattr(_parallel, "cpu_count", lambda: 3)
  n = 301
  d = _distances(n).astype(np.float64)
  with jax.enable_x64(True):
    out = _checks.check_square_matrix("f", "D", d, zero_diagonal=True)
    assert out.dtype == np.float64
    e = d.copy()
    e[150, 250] += 1e-9  # far above the float64 tolerance, one entry
    with pytest.raises(ValueError, match="f: D must be symmetric"):
      _checks.check_square_matrix("f", "D", e)
