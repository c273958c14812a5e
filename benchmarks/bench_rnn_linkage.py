"""Rounds of reciprocal nearest neighbours: round statistics, CPU times, GPU model.

For each data set (6-D and 8-D Gaussians, z-scored Census and Bank samples
from fairhc_jax.datasets), size n and method, one run prints:

* the rounds kernel's statistics (``linkage(..., algorithm="rnn",
  return_stats=True)``): rounds, merges in the first round, median merges
  per round, the smallest share of active clusters merged by a round, and
  the merges left to the one-at-a-time fallback;
* warm CPU times, through the public ``linkage`` on the float32 square
  matrix, of ``algorithm="rnn"`` and ``algorithm="sequential"``, with
  ``block_until_ready`` (median of ``--repeats``; compile = first call minus
  warm), and of SciPy and fastcluster on the float64 condensed vector, all in
  the same process;
* a check that the rounds kernel's heights equal fastcluster's (float32
  rounding) and the sequential kernel's tree;
* a GPU time model: ``sum over rounds of passes * capacity^2 * 4 bytes /
  bandwidth`` with 2 full passes per round (the nearest-neighbour minimum
  and its index), plus the row traffic of the merges and a fixed cost per
  round and per fallback merge (kernel launches), for an H200 (4.8 TB/s).

With ``--peak N[,N]`` the same command ends with the peak resident memory
(VmHWM) of one average linkage at each ``N``, each kernel in its own
subprocess, from points (``linkage_from_points``: the distance buffer is
donated and is the working matrix), with fastcluster's from its float64
condensed vector; ``--memory N`` gives that table alone, also from a matrix
the caller keeps (``linkage(D)``). The mark includes the compiler's memory,
so it measures the kernel from n of about 12,000 on.

``--compare-defer`` adds, under each row, the rounds kernel's warm time with
its deferred column writes from a matrix side of 3,000 (off by default:
``rnn_linkage._DEFER_MIN_SIDE``) and without, both compiled afresh in the
same run.

``--thresholds T[,T]`` sweeps the fallback threshold ``min_round_merges``
(traced: one compile) and prints wall and process CPU time per value.

Usage (the quiet final run; each command ends with its own wall time):
  python benchmarks/bench_rnn_linkage.py --sizes 1000,2000,4000,8000 --methods average --data gauss6,gauss8,census,bank
  python benchmarks/bench_rnn_linkage.py --sizes 2000,8000 --methods complete,ward --data gauss8,census --repeats 1
  python benchmarks/bench_rnn_linkage.py --sizes 4000,8000 --methods average --data gauss8,census --no-peers --compare-defer
  python benchmarks/bench_rnn_linkage.py --sizes 16000 --methods average --data gauss6,gauss8,census,bank --repeats 1 --rounds
  python benchmarks/bench_rnn_linkage.py --sizes 32000 --methods average --data gauss6,gauss8,census,bank --repeats 1 --rounds --scipy-max 16000
  python benchmarks/bench_rnn_linkage.py --sizes 16000 --methods average --data gauss8 --repeats 1 --rounds --peak 16000
(n beyond a data set, as 32,000 for Census, uses the whole data set and
says so; ``--scipy-max`` skips SciPy above that n.)
  python benchmarks/bench_rnn_linkage.py --thresholds 1,2,4,8,16,32,64 --sizes 4000 --data gauss8,census --methods average,ward
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

DATA = ("gauss6", "gauss8", "census", "bank")
H200_BYTES_PER_S = 4.8e12
LAUNCH_S = 5e-6  # one kernel launch on a GPU
KERNELS_PER_ROUND = 30  # launches per round and per block iteration (assumed)
KERNELS_PER_MERGE = 30  # launches in one sequential merge
CUHC_20000_S = 0.41  # cuhc, exact average linkage, n = 20,000, RTX 3080


def points(name: str, n: int, seed: int = 0) -> np.ndarray:
  """``float64[n, d]``: Gaussians, or a z-scored random sample of real data."""
  rng = np.random.default_rng(seed)
  if name.startswith("gauss"):
    return rng.normal(size=(n, int(name[5:])))
  from fairhc_jax import datasets
  data_dir = os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                          "data", "uci")
  if not os.path.isdir(data_dir):
    data_dir = "/work/shared/data/uci"
  ds = (datasets.load_census(data_dir=data_dir, download=False)
        if name == "census" else
        datasets.load_bank(data_dir=data_dir, download=False))
  x = np.asarray(ds.features, np.float64)
  # n beyond the data set (the whole Census is 30,162 points): all of it.
  x = x[rng.choice(len(x), size=min(n, len(x)), replace=False)]
  sd = x.std(0)
  return (x - x.mean(0)) / np.where(sd > 0, sd, 1)


def _median_time(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def _status_bytes(key: str) -> int:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(key):
        return int(line.split()[1]) * 1024
  return 0


def _median_cpu_time(fn, repeats: int) -> float:
  """Median process CPU seconds (all threads) of ``fn``: steadier than wall
  time when other jobs share the cores."""
  times = []
  for _ in range(repeats):
    t = time.process_time()
    fn()
    times.append(time.process_time() - t)
  return statistics.median(times)


def _blocks(count: np.ndarray, cap: np.ndarray, block: int) -> np.ndarray:
  """Block iterations the kernel runs for ``count`` rows (sizes block, block/16)."""
  big = np.minimum(block, cap)
  small = np.where(cap >= 256, np.maximum(big // 16, 1), big)
  full = np.where(cap >= 256, count // big, 0)
  rest = count - full * big
  return full + -(-rest // small)


def gpu_model(stats, block: int = 256) -> tuple[float, float]:
  """``(bandwidth seconds, launch seconds)`` of the GPU model for one run.

  Bandwidth: per round two full passes over the working matrix
  (``capacity^2`` float32: the nearest-neighbour minimum and its index, as
  a GPU design would do instead of re-reading stale rows), plus the merged
  rows (read rows i and j, write row and column i), plus six row passes per
  fallback merge. Launches: ``KERNELS_PER_ROUND`` per round and per block
  iteration of the kernel's loops (merge and re-read blocks of ``block``
  rows), ``KERNELS_PER_MERGE`` per fallback merge, ``LAUNCH_S`` each.
  """
  cap = stats.capacity_per_round.astype(np.int64)
  merges = stats.merges_per_round.astype(np.int64)
  full = 2.0 * cap.astype(np.float64) ** 2 * 4
  rows = 4.0 * merges * cap * 4
  seq = stats.sequential_merges * 6.0 * (cap.min() if len(cap) else 1024) * 4
  bw = (full.sum() + rows.sum() + seq) / H200_BYTES_PER_S
  iters = (_blocks(merges, cap, block).sum()
           + _blocks(stats.rescans_per_round.astype(np.int64), cap, block).sum())
  launch = ((stats.rounds + iters) * KERNELS_PER_ROUND
            + stats.sequential_merges * KERNELS_PER_MERGE) * LAUNCH_S
  return bw, launch


def run(args) -> None:
  import fastcluster
  import jax
  import jax.numpy as jnp
  import scipy.cluster.hierarchy as sch
  import scipy.spatial.distance as ssd

  import fairhc_jax as fh
  from fairhc_jax.distances import pairwise_distances

  print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
        f"jax {jax.__version__}, fastcluster {fastcluster.__version__}, "
        f"repeats {args.repeats} (median; 1 above n = 8,000); load "
        f"{os.getloadavg()[0]:.1f}"
        + (" (measured while other jobs ran)" if os.getloadavg()[0] > 1.2
           else ""))
  print("times: warm wall seconds through the public linkage() on the float32 "
        "matrix (ours) and on the float64 condensed vector (peers); cmp = "
        "first call minus warm (compile); peak memory: the table after this "
        "one (--peak), each kernel in its own process")
  head = (f"{'data':<7} {'method':<8} {'n':>6} {'rounds':>6} {'1st':>5} "
          f"{'med':>4} {'minshare':>8} {'seq':>5} | {'rnn s':>7} "
          f"{'rnn cmp':>7} {'seq s':>7} {'seq cmp':>7} {'scipy s':>7} "
          f"{'fastc s':>7} {'rnn/seq':>7} {'rnn/fc':>6} {'seq/fc':>6} | "
          f"{'gpu model s':>11}"
          f" {'same':>4}")
  print(head)
  print("-" * len(head))
  for name in args.data:
    for n in args.sizes:
      x = points(name, n)
      if len(x) < n:
        print(f"# {name}: n = {n} exceeds the data set: the whole data set "
              f"({len(x)} points) is used, the row says n = {len(x)}",
              flush=True)
        n = len(x)
      d = pairwise_distances(jnp.asarray(x, jnp.float32))
      d.block_until_ready()
      y = None if args.no_peers else ssd.pdist(x)
      reps = args.repeats if n <= 8000 else 1
      run_scipy = args.scipy_max is None or n <= args.scipy_max
      for method in args.methods:
        row = {}
        for algo in ("rnn",) + (() if args.no_sequential else ("sequential",)):
          def call(algo=algo):
            h, st = fh.linkage(d, method, algorithm=algo, return_stats=True)
            h.parent.block_until_ready()
            return h, st
          t = time.perf_counter()
          h, st = call()
          first = time.perf_counter() - t
          warm = _median_time(call, reps)
          row[algo] = (h, st, warm, max(first - warm, 0.0))
        if args.compare_defer:
          # The rounds kernel with deferred column writes from a side of
          # 3,000 (off by default), compiled afresh, then the default
          # (per-block column writes) again, in the same process.
          from fairhc_jax import rnn_linkage as rl
          keep = rl._DEFER_MIN_SIDE

          def timed():
            rl.rounds_kernel.clear_cache()
            call = lambda: fh.linkage(d, method, algorithm="rnn")  # noqa: E731
            h = call()
            h.parent.block_until_ready()
            return h, _median_time(lambda: call().parent.block_until_ready(),
                                   reps)
          try:
            rl._DEFER_MIN_SIDE = 3000
            hd, t_def = timed()
          finally:
            rl._DEFER_MIN_SIDE = keep
          hp, t_plain = timed()
          same_plain = np.array_equal(np.asarray(hp.parent),
                                      np.asarray(hd.parent))
          defer_line = (f"   deferred column writes: {t_def:.3f} s, per-block column "
                f"writes: {t_plain:.3f} s (ratio {t_def / t_plain:.2f}; same "
                f"tree: {'yes' if same_plain else 'NO'})")
        else:
          defer_line = None
        peers = {}
        if y is not None:
          if run_scipy:
            peers["scipy"] = _median_time(lambda: sch.linkage(y, method), reps)
          zf = None

          def fc():
            nonlocal zf
            zf = fastcluster.linkage(y, method)
          peers["fastcluster"] = _median_time(fc, reps)
        h, st, t_rnn, c_rnn = row["rnn"]
        same = "-"
        if y is not None:
          hr = np.sort(np.asarray(h.height)[n:].astype(np.float64))
          ok = np.allclose(hr, np.sort(zf[:, 2]), rtol=1e-3, atol=1e-4)
          if "sequential" in row:
            hq = row["sequential"][0]
            ok &= np.allclose(hr, np.sort(np.asarray(hq.height)[n:]),
                              rtol=1e-4, atol=1e-5)
          same = "yes" if ok else "NO"
        mpr = st.merges_per_round
        share = (mpr / np.maximum(st.active_per_round, 1)).min() if st.rounds else 0
        bw, launch = gpu_model(st)
        nan = (None, None) + (float("nan"),) * 2
        _, _, t_seq, c_seq = row.get("sequential", nan)
        fc_t = peers.get("fastcluster", float("nan"))
        print(f"{name:<7} {method:<8} {n:>6} {st.rounds:>6} "
              f"{int(mpr[0]) if st.rounds else 0:>5} "
              f"{int(np.median(mpr)) if st.rounds else 0:>4} {share:>8.3f} "
              f"{st.sequential_merges:>5} | {t_rnn:>7.3f} {c_rnn:>7.1f} "
              f"{t_seq:>7.3f} {c_seq:>7.1f} "
              f"{peers.get('scipy', float('nan')):>7.3f} {fc_t:>7.3f} "
              f"{t_rnn / t_seq:>7.2f} {t_rnn / fc_t:>6.2f} {t_seq / fc_t:>6.2f} | "
              f"{bw + launch:>11.4f} {same:>4}", flush=True)
        if defer_line:
          print(defer_line, flush=True)
        if args.rounds:
          print("   merges per round:", " ".join(map(str, mpr.tolist())))
          print("   re-read rows    :", " ".join(map(str, st.rescans_per_round.tolist())))
        if args.model:
          bw2, launch2 = gpu_model(st, block=2048)
          print(f"   GPU model at n = {n}: {bw:.4f} s memory traffic + "
                f"{launch:.4f} s launches (block 256) = {bw + launch:.4f} s; "
                f"with block 2048: {bw2 + launch2:.4f} s (cuhc, average "
                f"linkage at 20,000 on an RTX 3080: {CUHC_20000_S} s; goal "
                f"< 0.1 s)", flush=True)
      del d, y  # before the next n: no two matrices or vectors at once


def thresholds(args) -> None:
  """Warm time of the rounds kernel against its fallback threshold.

  ``min_round_merges`` is a traced argument, so one compiled kernel per
  ``(n, method)`` serves every threshold; each row also gives the rounds
  and the merges left to the one-at-a-time fallback.
  """
  import jax
  import jax.numpy as jnp

  from fairhc_jax import rnn_linkage as rl
  from fairhc_jax.distances import pairwise_distances

  print(f"fallback threshold sweep (min_round_merges), warm, median of "
        f"{args.repeats}; load {os.getloadavg()[0]:.1f}")
  print(f"{'data':<7} {'method':<8} {'n':>6} {'thresh':>6} {'rounds':>6} "
        f"{'seq':>5} {'time s':>8} {'/best':>6} {'cpu s':>8} {'/best':>6}")
  for name in args.data:
    for n in args.sizes:
      x = points(name, n)
      d = pairwise_distances(jnp.asarray(x, jnp.float32))
      size = jnp.ones(n, jnp.float32)
      for method in args.methods:
        rows = []
        for t in args.thresholds:
          def call(t=t):
            h, st, _ = rl.rounds_kernel(d, size, jnp.asarray(t, jnp.int32),
                                        jnp.asarray(n, jnp.int32),
                                        method=method)
            h.parent.block_until_ready()
            return st
          st = call()
          rows.append((t, int(st.rounds), int(st.sequential_merges),
                       _median_time(call, args.repeats),
                       _median_cpu_time(call, args.repeats)))
        best = min(r[3] for r in rows)
        best_cpu = min(r[4] for r in rows)
        for t, r, sq, tm, cpu in rows:
          print(f"{name:<7} {method:<8} {n:>6} {t:>6} {r:>6} {sq:>5} "
                f"{tm:>8.3f} {tm / best:>6.2f} {cpu:>8.3f} {cpu / best_cpu:>6.2f}",
                flush=True)
      del d
      jax.clear_caches()


def _memory_child(n: int, algo: str, how: str) -> None:
  import jax
  import jax.numpy as jnp

  import fairhc_jax as fh
  from fairhc_jax.distances import pairwise_distances

  def hwm():
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM"):
          return int(line.split()[1]) * 1024
    return 0

  if algo == "fastcluster":  # the peer, from the float64 condensed vector
    import fastcluster
    import scipy.spatial.distance as ssd
    y = ssd.pdist(np.random.default_rng(0).normal(size=(n, 8)))
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
    base = hwm()
    fastcluster.linkage(y, "average")
    print(f"{base} {hwm()}")
    return
  x = jnp.asarray(np.random.default_rng(0).normal(size=(n, 8)), jnp.float32)
  if how == "points":
    def call():
      return fh.linkage_from_points(x, "average", algorithm=algo)
  else:
    d = pairwise_distances(x)
    d.block_until_ready()

    def call():
      return fh.linkage(d, "average", algorithm=algo)
  # One call, compile included: the mark is max(compiler, kernel), so it is
  # the kernel's from n of about 12,000 on, where the kernel's working set
  # exceeds the compiler's (a warm second call after resetting the mark
  # read low: XLA's allocator keeps freed buffers resident).
  base = hwm()
  h = call()
  h.parent.block_until_ready()
  del jax
  print(f"{base} {hwm()}")


def memory(n: int, hows=("points", "matrix")) -> None:
  """Peak resident memory of one average linkage at ``n`` (gauss8), each
  kernel in a fresh process: ``points`` = ``linkage_from_points`` (the
  distance buffer is donated: the working matrix), ``matrix`` =
  ``linkage(D)`` with ``D`` kept by the caller; fastcluster from the float64
  condensed vector (computed before the mark's base)."""
  gib = 2.0 ** 30
  mat = n * n * 4 / gib
  print(f"peak memory (VmHWM) of average linkage at n = {n}: one float32 "
        f"n x n matrix is {mat:.2f} GiB")
  runs = [(how, algo) for how in hows for algo in ("rnn", "sequential")]
  for how, algo in runs + [("vector", "fastcluster")]:
    out = subprocess.run(
        [sys.executable, __file__, "--_memory-child", str(n), algo, how],
        capture_output=True, text=True, check=True).stdout.split()
    base, peak = int(out[-2]), int(out[-1])
    print(f"  {how:<6} {algo:<11} peak {peak / gib:6.2f} GiB, above the "
          f"process before the call {(peak - base) / gib:6.2f} GiB "
          f"({(peak - base) / gib / mat:.2f} matrices)", flush=True)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--sizes", default="1000,2000,4000,8000,16000")
  p.add_argument("--methods", default="average,complete,ward")
  p.add_argument("--data", default=",".join(DATA))
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--no-peers", action="store_true")
  p.add_argument("--no-sequential", action="store_true")
  p.add_argument("--compare-defer", action="store_true",
                 help="also time the rounds kernel with deferred column "
                      "writes from side 3,000 against the default, in the "
                      "same run")
  p.add_argument("--scipy-max", type=int, default=None,
                 help="skip SciPy above this n (fastcluster still runs; "
                      "its column reads nan)")
  p.add_argument("--rounds", action="store_true", help="print every round")
  p.add_argument("--model", action="store_true",
                 help="print the GPU model's terms for every row")
  p.add_argument("--memory", type=int, default=0,
                 help="only the peak-memory table at this n (both modes)")
  p.add_argument("--peak", default="",
                 help="comma list of n: after the table, peak memory "
                      "(points mode, and fastcluster) at these sizes")
  p.add_argument("--thresholds", default="",
                 help="comma list: sweep min_round_merges instead of the table")
  p.add_argument("--_memory-child", nargs=3, help=argparse.SUPPRESS)
  args = p.parse_args()
  if args._memory_child:
    n, algo, how = args._memory_child
    _memory_child(int(n), algo, how)
    return
  if args.memory:
    memory(args.memory)
    return
  args.sizes = [int(s) for s in args.sizes.split(",")]
  args.methods = args.methods.split(",")
  args.data = args.data.split(",")
  if args.thresholds:
    args.thresholds = [int(t) for t in args.thresholds.split(",")]
    thresholds(args)
    return
  t0 = time.perf_counter()
  run(args)
  for n in (int(v) for v in args.peak.split(",") if v):
    memory(n, hows=("points",))
  print(f"# whole command: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
  main()
