"""Tests for fairhc_jax.rnn_linkage (rounds of reciprocal nearest neighbours).

Oracles: SciPy's linkage, the sequential kernel (a different algorithm: one
closest pair per step) and, for the round statistics, a NumPy simulation of
the rounds written here from the cluster-distance definitions (mean, max,
min of point distances; Ward's centroid formula), sharing no code with the
kernel. Every main case runs at n = 40 in float64, so each method compiles
once for the rounds kernel.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.cluster.hierarchy as sch
import scipy.spatial.distance as ssd

import fairhc_jax as fh
import fairhc_jax.agglomerative as lk
from fairhc_jax import rnn_linkage as rl
from fairhc_jax.hierarchy import NO_PARENT, validate

METHODS = ("average", "single", "complete", "weighted", "ward")
N = 40
# Each method is one more compile of the rounds kernel: two run by default,
# the other three with --runslow.
_SLOW = pytest.mark.slow
ALL_METHODS = [m if m in ("average", "ward") else pytest.param(m, marks=_SLOW)
               for m in METHODS]


def to_z(h):
  """Test-local Hierarchy -> SciPy Z (node n + t = merge t)."""
  parent = np.asarray(h.parent)
  height = np.asarray(h.height, np.float64)
  n = (parent.shape[0] + 1) // 2
  z = np.zeros((n - 1, 4))
  count = np.ones(2 * n - 1)
  for t in range(n - 1):
    kids = np.flatnonzero(parent == n + t)
    assert len(kids) == 2, f"node {n + t} has children {kids}"
    count[n + t] = count[kids].sum()
    z[t] = [kids[0], kids[1], height[n + t], count[n + t]]
  return z


def random_points(n=N, seed=0):
  return np.random.default_rng(seed).normal(size=(n, 3))


def grid_points():
  # 5 x 8 integer grid: many exactly equal distances.
  return np.array([[i, j] for i in range(5) for j in range(8)], np.float64)


def line_with_growing_gaps(n=N):
  # Gaps grow by 1.5x: every cluster's nearest neighbour is the cluster to
  # its left, so each round has one reciprocal pair (adversarial input).
  return np.cumsum(1.5 ** np.arange(n))[:, None]


def rnn(d, method, **kw):
  with jax.enable_x64(True):
    return rl.rounds_linkage_kernel(jnp.asarray(d, jnp.float64), method=method, **kw)


def sequential(d, method, weights=None):
  with jax.enable_x64(True):
    return lk.linkage(np.asarray(d, np.float64), method, weights=weights,
                      algorithm="sequential")


def assert_same_dendrogram(z, zs, rtol=1e-10):
  np.testing.assert_allclose(z[:, 2], zs[:, 2], rtol=rtol, atol=1e-12)
  np.testing.assert_allclose(sch.cophenet(z), sch.cophenet(zs), rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_equals_scipy_and_sequential(method):
  data = {"random": random_points(), "grid": grid_points(),
          "line": line_with_growing_gaps()}
  for name, x in data.items():
    y = ssd.pdist(x)
    d = ssd.squareform(y)
    h, stats = rnn(d, method)
    validate(h)
    z = to_z(h)
    assert_same_dendrogram(z, sch.linkage(y, method))
    zq = to_z(sequential(d, method))
    if name == "random" or method != "single":
      # Same merges in the same order as the sequential kernel.
      np.testing.assert_array_equal(z[:, [0, 1, 3]], zq[:, [0, 1, 3]], err_msg=name)
    np.testing.assert_allclose(z[:, 2], zq[:, 2], rtol=1e-12, err_msg=name)
    merged = int(np.asarray(stats.merges_per_round).sum())
    assert merged + int(stats.sequential_merges) == N - 1
    if name == "line":  # one pair per round: the fallback does the work
      assert int(stats.sequential_merges) > N - 10


@pytest.mark.parametrize("method", ALL_METHODS)
def test_weights_equal_expanded_points_and_sequential(method):
  x = random_points(seed=3)
  w = np.random.default_rng(4).integers(1, 4, size=N)
  d = ssd.squareform(ssd.pdist(x))
  h, _ = rnn(d, method, weights=w)
  validate(h)
  z = to_z(h)
  zq = to_z(sequential(d, method, weights=w))
  np.testing.assert_array_equal(z[:, [0, 1, 3]], zq[:, [0, 1, 3]])
  np.testing.assert_allclose(z[:, 2], zq[:, 2], rtol=1e-12)
  if method in ("average", "ward"):
    # Point i repeated w[i] times: SciPy's tree, minus the zero-height
    # merges among the copies, has our heights and cophenetic distances.
    xe = np.repeat(x, w, axis=0)
    ze = sch.linkage(ssd.pdist(xe), method)
    np.testing.assert_allclose(z[:, 2], ze[ze[:, 2] > 1e-12, 2], rtol=1e-10)
    first = np.concatenate([[0], np.cumsum(w)[:-1]])
    ce = ssd.squareform(sch.cophenet(ze))[np.ix_(first, first)]
    np.testing.assert_allclose(ssd.squareform(sch.cophenet(z)), ce, rtol=1e-10)


def numpy_rounds(x, method):
  """Reciprocal pairs merged per round, simulated from the definitions.

  Clusters are lists of point indices ordered by their smallest point; the
  nearest neighbour of a cluster is the first cluster (in that order) at
  the minimum distance.
  """
  d = ssd.squareform(ssd.pdist(x))
  clusters = [[i] for i in range(len(x))]

  def dist(a, b):
    if method == "ward":
      ca, cb = x[a].mean(0), x[b].mean(0)
      return np.sqrt(2 * len(a) * len(b) / (len(a) + len(b))) * np.linalg.norm(ca - cb)
    block = d[np.ix_(a, b)]
    return {"average": block.mean, "complete": block.max, "single": block.min}[method]()

  counts = []
  while len(clusters) > 1:
    k = len(clusters)
    dm = np.full((k, k), np.inf)
    for i in range(k):
      for j in range(i + 1, k):
        dm[i, j] = dm[j, i] = dist(clusters[i], clusters[j])
    nn = [int(np.flatnonzero(dm[i] == dm[i].min())[0]) for i in range(k)]
    pairs = [(i, nn[i]) for i in range(k) if i < nn[i] and nn[nn[i]] == i]
    counts.append(len(pairs))
    gone = set()
    for i, j in pairs:
      clusters[i] = sorted(clusters[i] + clusters[j])
      gone.add(j)
    clusters = sorted((c for t, c in enumerate(clusters) if t not in gone),
                      key=lambda c: c[0])
  return counts


@pytest.mark.parametrize("method", ["average", "ward",
                                    pytest.param("complete", marks=_SLOW),
                                    pytest.param("single", marks=_SLOW)])
def test_round_stats_match_numpy_simulation(method):
  x = random_points(seed=5)
  d = ssd.squareform(ssd.pdist(x))
  # min_round_merges = 1: no fallback, every merge is in a round (traced:
  # same compiled kernel as the default threshold).
  h, stats = rnn(d, method, min_round_merges=1)
  expect = numpy_rounds(x, method)
  r = int(stats.rounds)
  assert r == len(expect)
  np.testing.assert_array_equal(np.asarray(stats.merges_per_round)[:r], expect)
  assert int(stats.sequential_merges) == 0
  active = N - np.concatenate([[0], np.cumsum(expect)[:-1]])
  np.testing.assert_array_equal(np.asarray(stats.active_per_round)[:r], active)


def test_round_cap_and_fallback_threshold():
  x = random_points(seed=6)
  y = ssd.pdist(x)
  d = ssd.squareform(y)
  zs = sch.linkage(y, "average")
  _, free = rnn(d, "average", min_round_merges=1)
  assert int(free.rounds) > 3
  # Capped at 2 rounds: the rest one at a time, same tree.
  h, st = rnn(d, "average", max_rounds=2)
  assert int(st.rounds) == 2
  np.testing.assert_array_equal(np.asarray(st.merges_per_round)[:2],
                                np.asarray(free.merges_per_round)[:2])
  assert int(st.sequential_merges) == N - 1 - int(np.asarray(st.merges_per_round).sum())
  assert_same_dendrogram(to_z(h), zs)
  # A threshold above every round's pair count: all merges one at a time.
  h, st = rnn(d, "average", min_round_merges=N)
  assert int(st.rounds) == 0 and int(st.sequential_merges) == N - 1
  assert_same_dendrogram(to_z(h), zs)
  # A threshold that stops the rounds part-way.
  m = np.asarray(free.merges_per_round)[:int(free.rounds)]
  thr = int(np.sort(m)[len(m) // 2]) + 1
  h, st = rnn(d, "average", min_round_merges=thr)
  r = int(st.rounds)
  assert 0 < r < int(free.rounds)
  assert np.all(np.asarray(st.merges_per_round)[:r] >= min(thr, 1))
  assert_same_dendrogram(to_z(h), zs)


@pytest.mark.slow
def test_small_blocks_and_element_writes(monkeypatch):
  # Many blocks per round (cross distances between blocks go through the
  # written columns, within a block through the second Lance-Williams
  # step) and the element-wise column writes of large matrices, at n = 24
  # (a shape used nowhere else, so the patched constant is traced).
  monkeypatch.setattr(rl, "_ELEMENT_WRITE_MIN", 2)
  x = random_points(24, seed=7)
  y = ssd.pdist(x)
  for method in ("average", "ward"):
    h, st = rnn(ssd.squareform(y), method, block=2)
    validate(h)
    assert int(np.asarray(st.merges_per_round)[0]) > 2  # several blocks
    assert_same_dendrogram(to_z(h), sch.linkage(y, method))


@pytest.mark.slow
def test_one_and_two_points():
  for n in (1, 2):
    d = np.zeros((n, n)) + (1 - np.eye(n)) * 2.5
    h, st = rnn(d, "average")
    if n == 1:
      np.testing.assert_array_equal(np.asarray(h.parent), [NO_PARENT])
    else:
      np.testing.assert_array_equal(np.asarray(h.parent), [2, 2, NO_PARENT])
      np.testing.assert_allclose(np.asarray(h.height)[2], 2.5)
      assert int(st.rounds) == 1


def test_public_linkage_algorithm_and_stats():
  x = random_points(seed=8)
  d = ssd.squareform(ssd.pdist(x))
  with jax.enable_x64(True):
    h, st = fh.linkage(d, "average", algorithm="rnn", return_stats=True)
    hq, sq = fh.linkage(d, "average", algorithm="sequential", return_stats=True)
    hp, sp = fh.linkage_from_points(x, "average", algorithm="rnn",
                                    return_stats=True)
  assert isinstance(st, rl.LinkageStats)
  assert st.algorithm == "rnn" and sq.algorithm == "sequential"
  assert sq.rounds == 0 and sq.sequential_merges == N - 1
  assert st.rounds == len(st.merges_per_round) > 0
  assert int(st.merges_per_round.sum()) + st.sequential_merges == N - 1
  assert "rounds merged" in str(st)
  np.testing.assert_array_equal(to_z(h)[:, :2], to_z(hq)[:, :2])
  np.testing.assert_array_equal(np.asarray(hp.parent), np.asarray(h.parent))
  assert sp.rounds == st.rounds


def test_auto_rule():
  assert lk.resolve_algorithm("auto", lk._RNN_MIN_N - 1, "average") == "sequential"
  big = lk._RNN_MIN_N
  on_cpu = jax.default_backend() == "cpu"
  for method in METHODS:
    assert lk.resolve_algorithm("auto", big, method) == (
        "sequential" if on_cpu else "rnn")
  assert lk.resolve_algorithm("rnn", 5, "single") == "rnn"
  assert lk.resolve_algorithm("sequential", 10**6, "ward") == "sequential"


def test_bad_algorithm_and_stats_flag():
  d = ssd.squareform(ssd.pdist(random_points(5)))
  with pytest.raises(ValueError, match="linkage: algorithm must be one of .*'rnn'"):
    fh.linkage(d, algorithm="fast")
  with pytest.raises(TypeError, match="linkage: return_stats must be a bool"):
    fh.linkage(d, return_stats=1)
  with pytest.raises(ValueError, match="linkage_from_points: algorithm must"):
    fh.linkage_from_points(random_points(5), algorithm="RNN")


@pytest.mark.slow
def test_kernel_under_vmap_equals_single_calls():
  # linkage_kernel is vmapped by the fairlet method; the rounds kernel's
  # data-dependent loops must batch.
  xs = [random_points(seed=s) for s in (10, 11)]
  ds = np.stack([ssd.squareform(ssd.pdist(x)) for x in xs])
  with jax.enable_x64(True):
    batch = jax.vmap(lambda d: lk.linkage_kernel(d, method="average",
                                                 algorithm="rnn"))(jnp.asarray(ds))
  for b, x in enumerate(xs):
    one = jax.tree_util.tree_map(lambda a, b=b: a[b], batch)
    assert_same_dendrogram(to_z(one), sch.linkage(ssd.pdist(x), "average"))


@pytest.mark.slow
def test_float32_matches_scipy():
  x = random_points(seed=12)
  y = ssd.pdist(x)
  h = fh.linkage(ssd.squareform(y).astype(np.float32), "average", algorithm="rnn")
  assert h.height.dtype == jnp.float32
  np.testing.assert_allclose(to_z(h)[:, 2], sch.linkage(y, "average")[:, 2], rtol=2e-5)


def test_compiled_rounds_kernel_has_no_matrix_copy():
  # A whole-matrix copy per block or round would cost O(n^2) each time.
  # (block=16, so that the 16 x 16 cross-distance block of a merge block,
  # which is transposed, cannot be mistaken for the 48 x 48 matrix.) The
  # kernel with the input donated (as linkage_from_points runs it) must
  # have none at all; the non-donated one differs only by the working copy
  # of the caller's matrix at the entry (the same loops).
  n = 48
  d = jnp.ones((n, n), jnp.float32)
  hlo = rl.rounds_kernel_donating.lower(
      d, jnp.ones(n, jnp.float32), 4, n, method="average",
      block=16).compile().as_text()
  copies = [line for line in hlo.splitlines()
            if " copy(" in line and f"f32[{n},{n}]" in line]
  assert not copies, copies
  assert f"f32[{n},{n}]" in hlo  # the check looks at the right buffers


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_shrinking_phases_and_larger_n(method, monkeypatch):
  # Compaction between phases forced at n = 300 (300 -> 150 -> 75 -> ...).
  monkeypatch.setattr(lk, "_MIN_CAPACITY", 8)
  x = random_points(300, seed=13)
  y = ssd.pdist(x)
  h, st = rnn(ssd.squareform(y), method)
  validate(h)
  assert_same_dendrogram(to_z(h), sch.linkage(y, method))
  # Rounds ran in packed matrices too (single linkage's rounds hand over
  # to the fallback after the second phase, so ask for two sides only).
  assert len(set(np.asarray(st.capacity_per_round)[:int(st.rounds)])) >= 2


def _count_flush_traces(monkeypatch):
  """Deferred column writes for every phase side, with a trace counter."""
  monkeypatch.setattr(rl, "_DEFER_MIN_SIDE", 2)
  traced = []
  flush = rl._flush

  def counting(*a):
    traced.append(1)
    return flush(*a)

  monkeypatch.setattr(rl, "_flush", counting)
  return traced


def _deferred_case(method, traced):
  # block=4 (a static argument used nowhere else, so the patched constants
  # are traced): at n = 40 a round of 11 pairs runs as segments of 4 pairs
  # in blocks of 1, each segment ending with a flush; rounds under
  # 40 / 16 pairs write their columns per block.
  data = {"random": random_points(seed=21), "grid": grid_points(),
          "line": line_with_growing_gaps()}
  w = np.random.default_rng(22).integers(1, 4, size=N)
  for name, x in data.items():
    y = ssd.pdist(x)
    d = ssd.squareform(y)
    for weights in (None, w):
      h, st = rnn(d, method, block=4, weights=weights)
      validate(h)
      z = to_z(h)
      zq = to_z(sequential(d, method, weights=weights))
      np.testing.assert_array_equal(z[:, [0, 1, 3]], zq[:, [0, 1, 3]],
                                    err_msg=name)
      np.testing.assert_allclose(z[:, 2], zq[:, 2], rtol=1e-12, err_msg=name)
      if weights is None:
        assert_same_dendrogram(z, sch.linkage(y, method))
        if name == "random":  # its first round takes the deferred path
          assert int(np.asarray(st.merges_per_round)[0]) * rl._DEFER_SHARE >= N
  assert traced  # the deferred path was compiled


def test_deferred_column_writes_equal_sequential(monkeypatch):
  _deferred_case("average", _count_flush_traces(monkeypatch))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ward", "complete", "single", "weighted"])
def test_deferred_column_writes_other_methods(method, monkeypatch):
  _deferred_case(method, _count_flush_traces(monkeypatch))


def test_deferred_flush_oracle():
  # _flush against a literal NumPy transcription: column s of row k takes
  # stage[k, pos[s]] where s was merged in the segment and k was not merged
  # later in it (pos[k] < pos[s]); everything else is kept.
  rng = np.random.default_rng(23)
  c, w = 37, 9
  dist = rng.normal(size=(c, c))
  stage = rng.normal(size=(c, w))
  pos = np.full(c, -1)
  pos[rng.choice(c, size=6, replace=False)] = rng.permutation(6)
  expect = dist.copy()
  for k in range(c):
    for s in range(c):
      if pos[s] >= 0 and pos[k] < pos[s]:
        expect[k, s] = stage[k, pos[s]]
  with jax.enable_x64(True):
    got = jax.jit(rl._flush)(jnp.asarray(dist), jnp.asarray(stage),
                             jnp.asarray(pos, jnp.int32))
  np.testing.assert_array_equal(np.asarray(got), expect)


def test_compiled_deferred_kernel_has_no_matrix_copy(monkeypatch):
  # The deferred path runs its segments and flushes inside zero-or-one-step
  # loops: XLA:CPU copied the matrix into and out of a lax.cond.
  monkeypatch.setattr(rl, "_DEFER_MIN_SIDE", 2)
  n = 48
  d = jnp.ones((n, n), jnp.float32)
  hlo = rl.rounds_kernel_donating.lower(
      d, jnp.ones(n, jnp.float32), 4, n, method="average",
      block=8).compile().as_text()
  assert "f32[48,16]" in hlo  # the stage: 48 x (segment cap 8 + block 8)
  copies = [line for line in hlo.splitlines()
            if " copy(" in line and f"f32[{n},{n}]" in line]
  assert not copies, copies
