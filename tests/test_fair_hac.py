"""FHAC (Chhabra & Mohapatra Algorithm 1) against a literal NumPy transcription."""

import numpy as np
import pytest
import jax
import jax.numpy as jnp

from fairhc_jax import linkage, validate
from fairhc_jax.fairness import fairness_cost, hierarchical_fairness_cost
from fairhc_jax.algorithms import fair_hac as F
from fairhc_jax.algorithms.fair_hac import FHACParams, fhac, fhac_costs

from fhac_reference import fhac_literal, fhac_vectorized_matrix

METHODS = ("average", "single", "complete", "weighted", "ward")


def _points(rng, n, dim=3):
  x = rng.normal(size=(n, dim))
  return np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))


def _random_case(rng, n=11, c=3):
  # Fixed shapes (one compilation per test); the colouring may use fewer
  # than c colours (an absent colour is satisfied by every cluster).
  D = _points(rng, n)
  col = rng.integers(0, int(rng.integers(1, c + 1)), n)
  k = int(rng.integers(1, n + 1))
  # Tolerances of the order of the shares' spread, slack of the order of the
  # distances: the fair rule departs from vanilla HAC in most cases.
  prm = (rng.uniform(0, 0.4), rng.uniform(0, 0.08), rng.uniform(0, 1.5),
         rng.uniform(0, 0.3))
  return n, c, D, col, k, prm


def _assert_same(h, parent, height):
  np.testing.assert_array_equal(np.asarray(h.parent), parent)
  np.testing.assert_allclose(np.asarray(h.height), height, rtol=1e-10, atol=1e-12)


# The vectorised rule with single / weighted / ward behind --runslow: each is
# one more compile of the cached rule; test_vectorized_large_matches_brute_force
# (slow) covers every linkage, the default run keeps average and complete and
# the n = 40 cache/compaction test.
_CASES = [pytest.param(m, r, marks=pytest.mark.slow)
          if r == "vectorized" and m in ("single", "weighted", "ward") else (m, r)
          for r in F.RULES for m in METHODS]


@pytest.mark.parametrize("method,rule", _CASES)
def test_matches_literal_transcription(method, rule):
  rng = np.random.default_rng(METHODS.index(method) + 10 * F.RULES.index(rule))
  departs = 0
  with jax.enable_x64(True):
    for _ in range(12):
      n, c, D, col, k, prm = _random_case(rng)
      parent, height, _ = fhac_literal(D, col, prm, k, method, num_colors=c, rule=rule)
      h = fhac(D, col, FHACParams(*prm), k=k, method=method, rule=rule, num_colors=c)
      _assert_same(h, parent, height)
      validate(h)
      van = np.asarray(linkage(D, method).parent)
      departs += not np.array_equal(van, parent)
  assert departs >= 2   # the cases exercise the fair rule, not vanilla HAC


def _cases_for_cache(rng, n, c, grid):
  """Inputs that stress the cached rule: long windows, tight tolerances, ties."""
  if grid:   # L1 distances on a small grid: many exact ties (single / complete)
    x = rng.integers(0, 5, size=(n, 2)).astype(float)
    D = np.abs(x[:, None] - x[None]).sum(-1)
  else:
    D = _points(rng, n)
  col = rng.integers(0, c, n)
  k = int(rng.integers(1, n // 2))
  scale = np.median(D)
  prm = (rng.uniform(0, 0.3), rng.uniform(0, 0.02), rng.uniform(0, 2) * scale,
         rng.uniform(0, 0.05) * scale)
  return D, col, k, prm


@pytest.mark.parametrize("method", ["complete", pytest.param("average", marks=pytest.mark.slow)])
def test_vectorized_cache_and_compaction_match_brute_force(method, monkeypatch):
  """The cached rule (with compaction down to 16 slots: phases 40 -> 20 -> 1)
  against the brute-force matrix transcription of its stated semantics;
  complete linkage on grid distances (ties everywhere) in the default run."""
  monkeypatch.setitem(F._MIN_CAPACITY, "vectorized", 16)
  kern = jax.jit(F._fhac_one, static_argnames=F._STATIC)   # traced with the patch
  rng = np.random.default_rng(21)
  n, c = 40, 4
  grid = method == "complete"
  departs = 0
  with jax.enable_x64(True):
    for _ in range(6):
      D, col, k, prm = _cases_for_cache(rng, n, c, grid)
      parent, height, _ = fhac_vectorized_matrix(D, col, prm, k, method, num_colors=c)
      out = kern(D, jnp.asarray(col, jnp.int32), F.fhac_schedules(prm, n, k, np.float64),
                 jnp.int32(k), num_colors=c, method=method, rule="vectorized")
      _assert_same(out.hierarchy, parent, height)
      vanilla = fhac_vectorized_matrix(D, col, (1, 0, 0, 0), k, method, num_colors=c)[0]
      departs += not np.array_equal(vanilla, parent)
  assert departs >= 4


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_vectorized_large_matches_brute_force(method):
  """n = 600 (default compaction: phases 600 -> 300 -> 1), float32 and float64."""
  rng = np.random.default_rng(METHODS.index(method))
  n, c = 600, 3
  for x64 in (False, True):
    dt = np.float64 if x64 else np.float32
    with jax.enable_x64(x64):
      D, col, k, prm = _cases_for_cache(rng, n, c, method in ("single", "complete"))
      parent, height, _ = fhac_vectorized_matrix(D, col, prm, k, method, num_colors=c,
                                                 dtype=dt)
      h = fhac(D.astype(dt), col, FHACParams(*prm), k=k, method=method,
               rule="vectorized", num_colors=c)
      np.testing.assert_array_equal(np.asarray(h.parent), parent)
      np.testing.assert_allclose(np.asarray(h.height), height, rtol=1e-5 if dt == np.float32 else 1e-10)
      if method not in ("single", "complete"):   # grid data: may equal vanilla
        vanilla = fhac_vectorized_matrix(D, col, (1, 0, 0, 0), k, method, num_colors=c, dtype=dt)[0]
        assert not np.array_equal(vanilla, parent)


@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_literal_long_chains_and_many_groups():
  """Large slack (long replacement chains), 1-5 groups, n = 24."""
  rng = np.random.default_rng(7)
  with jax.enable_x64(True):
    for trial in range(4):
      n, c = 24, 5
      D = _points(rng, n)
      col = rng.integers(0, 1 + trial, n)   # 1 to 4 colours present of 5
      prm = (rng.uniform(0, 0.2), rng.uniform(0, 0.02), rng.uniform(1, 4),
             rng.uniform(0, 0.1))
      for method in ("average", "complete"):
        parent, height, _ = fhac_literal(D, col, prm, 3, method, num_colors=c)
        h = fhac(D, col, FHACParams(*prm), k=3, method=method, num_colors=c)
        _assert_same(h, parent, height)


def test_literal_float32_matches_transcription_in_float32():
  rng = np.random.default_rng(3)
  for _ in range(4):
    n, c, D, col, k, prm = _random_case(rng, 16)
    D32 = D.astype(np.float32)
    parent, height, _ = fhac_literal(D32.astype(np.float64), col, prm, k, "single",
                                     num_colors=c, dtype=np.float32)
    h = fhac(D32, col, FHACParams(*prm), k=k, method="single", num_colors=c)
    np.testing.assert_array_equal(np.asarray(h.parent), parent)
    assert h.height.dtype == jnp.float32


def test_ties_follow_scan_order():
  """Integer distances (many ties): single/complete are exact, so the scan's
  strict '<' and row-major order decide, as in the transcription. The
  kernel runs in float32, so the transcription does too: the thresholds sit
  on rounding boundaries (alpha * n|C| equal to an integer e in exact
  arithmetic), where the float32 and float64 roundings differ. (This test
  used to compare with the float64 transcription and passed by luck of
  FMA contraction at LLVM -O2; at -O0 it failed.)"""
  rng = np.random.default_rng(11)
  for _ in range(5):
    n = 10
    x = rng.integers(0, 4, size=(n, 2)).astype(float)
    D = np.abs(x[:, None] - x[None]).sum(-1)   # L1 distances on a grid: ties
    col = rng.integers(0, 2, n)
    for method in ("single", "complete"):
      for prm in [(0.1, 0.02, 0.0, 0.0), (0.0, 0.05, 1.0, 0.25), (1.0, 0.0, 0.0, 0.0)]:
        parent, height, _ = fhac_literal(D, col, prm, 2, method, num_colors=2,
                                         dtype=np.float32)
        h = fhac(D.astype(np.float32), col, FHACParams(*prm), k=2, method=method,
                 num_colors=2)
        _assert_same(h, parent, height)


def test_schedule_table_is_rounded_per_operation():
  """fhac_schedules against exact rationals rounded once per operation."""
  from fractions import Fraction
  rng = np.random.default_rng(9)
  prm = np.column_stack([rng.uniform(0, 1, 6), rng.uniform(0, 15, 6),
                         rng.uniform(0, 150, 6), rng.uniform(0, 15, 6)])
  n, k = 9, 3
  for dtype in (np.float32, np.float64):
    tab = F.fhac_schedules(prm, n, k, dtype)
    assert tab.shape == (6, 2, n - 1) and tab.dtype == dtype
    for b in range(6):
      a0, t1, b0, t2 = (Fraction(float(dtype(v))) for v in prm[b])
      # float(Fraction) is correctly rounded to float64; for float32 the
      # exact float32 product/sum then rounds once more, which is innocuous
      # (53 >= 2 * 24 + 2).
      rnd = lambda q: Fraction(float(dtype(float(q))))
      for t in range(n - 1):
        assert Fraction(float(tab[b, 0, t])) == rnd(rnd(t1 * (n - t - k)) + a0)
        assert Fraction(float(tab[b, 1, t])) == rnd(rnd(t2 * t) + b0)


# One linkage in the default run (each compiles its own FHAC program, about
# 9 s); all five with --runslow.
@pytest.mark.parametrize("method", [m if m == "average" else pytest.param(m, marks=pytest.mark.slow)
                                    for m in METHODS])
def test_vanilla_parameters_equal_linkage_exactly(method):
  rng = np.random.default_rng(5)
  for x64 in (False, True):
    with jax.enable_x64(x64):
      D = _points(rng, 16).astype(np.float64 if x64 else np.float32)
      col = rng.integers(0, 3, 16)
      ref = linkage(D, method)
      for rule in F.RULES:
        for theta1 in (0.0, 0.37):
          h = fhac(D, col, FHACParams(1.0, theta1, 0.0, 0.0), k=4, method=method,
                   rule=rule, num_colors=3)
          np.testing.assert_array_equal(np.asarray(h.parent), np.asarray(ref.parent))
          np.testing.assert_array_equal(np.asarray(h.height), np.asarray(ref.height))


# Parameters at which alpha_0 = fl(fl(theta1 (n - 1)) + alpha0) and the fused
# fma(theta1, n - 1, alpha0) fall on the two sides of a same-colour pair's
# group-test boundary (found by search; n, dtype and method chosen so that the
# kernels compiled by the tests above are reused).
_FMA_SPLIT = {np.float32: (16, "average", 0.021595094352960587, 0.1760735660791397),
              np.float64: (11, "single", 0.04454692462626913, 0.09998529919185406)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thresholds_are_rounded_separately_never_fused(dtype):
  """alpha_t = fl(fl(theta1 (|C| - k)) + alpha0), whatever the compiler does.

  Points on a line, two colours in halves (a third absent; for n = 11 the
  boundary is that of colour 1's pairs, 12/22), k = 1, a slack
  larger than every distance: the first merges depend on whether
  same-colour pairs pass at alpha_0. The transcription run with the fused
  value (theta1 = 0, alpha0 = the fused alpha) builds another tree, for both
  rules; the kernel must build the separately rounded one.
  """
  from fractions import Fraction
  n, method, theta1, alpha0 = _FMA_SPLIT[dtype]
  exact = Fraction(theta1) * (n - 1) + Fraction(alpha0)   # what an FMA rounds once
  assert Fraction(float(exact)) == exact or dtype == np.float64
  fused = float(dtype(float(exact)))
  sep = dtype(dtype(dtype(theta1) * dtype(n - 1)) + dtype(alpha0))
  assert sep != fused and F.fhac_schedules([alpha0, theta1, 0, 0], n, 1, dtype)[0, 0] == sep
  rng = np.random.default_rng(13)
  x = np.sort(rng.uniform(0, 10, n))
  D = np.abs(x[:, None] - x[None])
  col = (np.arange(n) >= n - n // 2).astype(int)   # the last n // 2 points: colour 1
  with jax.enable_x64(dtype == np.float64):
    for rule in F.RULES:
      ref = fhac_literal(D, col, (alpha0, theta1, 100.0, 0.0), 1, method, num_colors=3,
                         dtype=dtype, rule=rule)
      other = fhac_literal(D, col, (fused, 0.0, 100.0, 0.0), 1, method, num_colors=3,
                           dtype=dtype, rule=rule)
      assert ref[2] != other[2]          # the case does discriminate
      h = fhac(D.astype(dtype), col, FHACParams(alpha0, theta1, 100.0, 0.0), k=1,
               method=method, rule=rule, num_colors=3)
      np.testing.assert_array_equal(np.asarray(h.parent), ref[0])


def test_vectorized_loop_has_no_matrix_copy():
  """Whole-matrix copies in the merge loop would cost O(n^2) per merge (it had two)."""
  n = 16
  D = jnp.ones((n, n), jnp.float32)
  sched = F.fhac_schedules([0.1, 0.01, 0.5, 0.0], n, 4, np.float32)
  hlo = F.fhac_kernel.lower(D, jnp.zeros(n, jnp.int32), sched, jnp.int32(4), num_colors=3,
                            method="average", rule="vectorized").compile().as_text()
  # The kernel is not donated, and its start (agglomerative.init_state) writes
  # the diagonal in place, so it makes one working copy of the caller's matrix
  # at the entry; any other n x n copy would be one per merge.
  lines = hlo.splitlines()
  start = next(i for i, ln in enumerate(lines) if ln.startswith("ENTRY"))
  stop = next(i for i in range(start, len(lines)) if lines[i].startswith("}"))
  body = lines[start:stop]
  params = {ln.split("=")[0].strip() for ln in body if " parameter(" in ln}
  copies = [ln for ln in lines if " copy(" in ln and f"f32[{n},{n}]" in ln]
  entry = [ln for ln in copies if ln in body
           and ln.split("copy(")[1].split(")")[0].strip() in params]
  assert len(entry) <= 1 and copies == entry, copies
  assert f"f32[{n},{n}]" in hlo  # the check looks at the right buffers


def test_corner_cases():
  with jax.enable_x64(True):
    h = fhac(np.zeros((1, 1)), [0], FHACParams(0, 0, 0, 0), k=1)
    np.testing.assert_array_equal(np.asarray(h.parent), [-1])
    D = np.array([[0.0, 2.0], [2.0, 0.0]])
    for k in (1, 2):
      h = fhac(D, [0, 1], FHACParams(0, 0, 0, 0), k=k)
      np.testing.assert_array_equal(np.asarray(h.parent), [2, 2, -1])
      assert float(h.height[2]) == 2.0
    rng = np.random.default_rng(0)
    D = _points(rng, 11)
    for col, c in ((np.zeros(11, int), 1), (rng.integers(0, 2, 11), 3)):   # one colour / two
      for k in (1, 11):
        prm = (0.05, 0.01, 0.3, 0.1)
        parent, height, _ = fhac_literal(D, col, prm, k, "average", num_colors=c)
        _assert_same(fhac(D, col, FHACParams(*prm), k=k, num_colors=c), parent, height)


def test_costs_equal_fairness_module():
  rng = np.random.default_rng(2)
  with jax.enable_x64(True):
    for _ in range(5):
      n, c, D, col, k, prm = _random_case(rng)
      for rule in F.RULES:
        out = fhac_costs(D, col, FHACParams(*prm), k=k, rule=rule, num_colors=c)
        fc = float(fairness_cost(out.hierarchy, col, k, c))
        hfc = float(hierarchical_fairness_cost(out.hierarchy, col, c))
        assert abs(float(out.fc) - fc) <= 1e-9 * max(1, fc)
        assert abs(float(out.hfc) - hfc) <= 1e-9 * max(1, hfc)


def test_batched_parameters_equal_a_loop():
  rng = np.random.default_rng(4)
  D = _points(rng, 16).astype(np.float32)
  col = rng.integers(0, 3, 16)
  a0 = rng.uniform(0, 0.3, 5)
  t1 = rng.uniform(0, 0.05, 5)
  b0 = rng.uniform(0, 1, 5)
  for rule in F.RULES:
    hb = fhac(D, col, FHACParams(a0, t1, b0, 0.05), k=4, rule=rule, num_colors=3)
    assert hb.parent.shape == (5, 31)
    for b in range(5):
      h = fhac(D, col, FHACParams(a0[b], t1[b], b0[b], 0.05), k=4, rule=rule, num_colors=3)
      np.testing.assert_array_equal(np.asarray(hb.parent[b]), np.asarray(h.parent))
      np.testing.assert_array_equal(np.asarray(hb.height[b]), np.asarray(h.height))


def test_no_recompilation_across_parameters_and_k():
  rng = np.random.default_rng(6)
  D = _points(rng, 16).astype(np.float32)
  col = rng.integers(0, 3, 16)
  for kern in (F.fhac_kernel, F.fhac_batch_kernel):
    kern.clear_cache()
  for prm, k in [((0.1, 0.01, 0.2, 0.0), 2), ((0.5, 0.0, 1.0, 0.3), 5),
                 ((1.0, 2.0, 0.0, 0.0), 1)]:
    fhac(D, col, FHACParams(*prm), k=k, num_colors=3)
    fhac(D, col, FHACParams(*[np.full(5, v) for v in prm]), k=k, num_colors=3)
  assert F.fhac_kernel._cache_size() == 1
  assert F.fhac_batch_kernel._cache_size() == 1


def test_bad_input():
  D = _points(np.random.default_rng(0), 5)
  col = [0, 1, 0, 1, 0]
  ok = FHACParams(0.1, 0.0, 0.0, 0.0)
  with pytest.raises(ValueError, match=r"fhac: k must be in \[1, n\] = \[1, 5\], got 6"):
    fhac(D, col, ok, k=6)
  with pytest.raises(ValueError, match="fhac: k must"):
    fhac(D, col, ok, k=0)
  with pytest.raises(TypeError, match="fhac: k must be an integer"):
    fhac(D, col, ok, k=2.5)
  with pytest.raises(ValueError, match="fhac: params.beta0 must be non-negative"):
    fhac(D, col, FHACParams(0.1, 0.0, -1.0, 0.0), k=2)
  with pytest.raises(ValueError, match="fhac: params.theta1 must be finite"):
    fhac(D, col, FHACParams(0.1, np.inf, 0.0, 0.0), k=2)
  with pytest.raises(ValueError, match="fhac: params.alpha0 must be finite"):
    fhac(D, col, FHACParams(np.nan, 0.0, 0.0, 0.0), k=2)
  with pytest.raises(ValueError, match="fhac: method must be one of"):
    fhac(D, col, ok, k=2, method="centroid")
  with pytest.raises(ValueError, match="fhac: rule must be one of"):
    fhac(D, col, ok, k=2, rule="fast")
  with pytest.raises(ValueError, match=r"fhac: colors must hold colours in \[0, 2\), got colour 2"):
    fhac(D, [0, 1, 2, 1, 0], ok, k=2, num_colors=2)
  with pytest.raises(ValueError, match=r"fhac: colors must hold colours in \[0, 3\), got colour -1"):
    fhac(D, [0, 1, -1, 1, 0], ok, k=2, num_colors=3)
  with pytest.raises(ValueError, match="fhac: colors must have one colour per leaf"):
    fhac(D, [0, 1, 0], ok, k=2)
  with pytest.raises(ValueError, match="fhac: params must have fields of one batch length"):
    fhac(D, col, FHACParams(np.zeros(2), np.zeros(3), 0.0, 0.0), k=2)
  with pytest.raises(TypeError, match="fhac: params must be FHACParams"):
    fhac(D, col, {"alpha0": 1}, k=2)
  with pytest.raises(ValueError, match="fhac: D must be symmetric"):
    fhac(D + np.triu(np.ones((5, 5)), 1), col, ok, k=2)


def test_batch_over_several_lane_groups_matches_transcription():
  # Under vmap the literal scan runs its lanes in groups of F._LANES; a batch
  # of 2 * _LANES + 3 lanes has two full groups and a partial one. Every
  # lane against the NumPy transcription of Algorithm 1 (float64).
  rng = np.random.default_rng(21)
  n, c, k = 12, 3, 3
  D = _points(rng, n)
  col = rng.integers(0, c, n)
  B = 2 * F._LANES + 3
  prm = np.stack([rng.uniform(0, 0.4, B), rng.uniform(0, 0.08, B),
                  rng.uniform(0, 1.5, B), rng.uniform(0, 0.3, B)], axis=1)
  with jax.enable_x64(True):
    hb = fhac(D, col, FHACParams(*prm.T), k=k, rule="literal", num_colors=c)
    van = linkage(D, "average")
    departs = 0
    for b in range(B):
      parent, height, _ = fhac_literal(D, col, tuple(prm[b]), k, "average",
                                       num_colors=c, rule="literal")
      np.testing.assert_array_equal(np.asarray(hb.parent[b]), parent)
      np.testing.assert_allclose(np.asarray(hb.height[b]), height, rtol=1e-10, atol=1e-12)
      departs += not np.array_equal(parent, np.asarray(van.parent))
  assert departs >= B // 2   # the fair rule is exercised in most lanes
