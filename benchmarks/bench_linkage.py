"""Linkage benchmark: fairhc_jax.agglomerative.linkage against SciPy and fastcluster.

Times average, single and complete linkage on the same random Euclidean
distance matrix (8-D Gaussian points): the peers get SciPy's condensed
float64 ``pdist`` vector (their native input), fairhc_jax the square float32
matrix of the same points from ``pairwise_distances``, on the default JAX device (CPU or GPU; the script runs unchanged on both).
Times are warm medians; fairhc_jax's compile time (first call minus a warm
call) is reported separately. "jax s" is the public ``linkage`` call, input
validation included (a few passes over the matrix); "kernel s" is the jitted
kernel alone on the already validated matrix. The ratio columns divide them
by the faster peer's time (< 1 means fairhc_jax is faster).

With ``--memory N`` it also measures peak resident memory (VmHWM) of one
linkage call at n = N, each implementation in its own subprocess, as the
total peak and as the increment over the process after the input was built.

Usage:
  python benchmarks/bench_linkage.py                       # n = 1,000 .. 16,000
  python benchmarks/bench_linkage.py --max-n 32000 --memory 16000
  python benchmarks/bench_linkage.py --sizes 1000,2000 --methods average
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time

import numpy as np

SIZES = (1000, 2000, 4000, 8000, 16000, 32000)


def _points(n: int, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).normal(size=(n, 8))


def _time(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def run_table(sizes, methods, repeats: int) -> None:
  import fastcluster
  import jax
  import jax.numpy as jnp
  import scipy.cluster.hierarchy as sch
  import scipy.spatial.distance as ssd

  import importlib
  lk = importlib.import_module("fairhc_jax.agglomerative")
  from fairhc_jax.distances import pairwise_distances

  print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
        f"jax {jax.__version__}, repeats {repeats} (median)")
  head = (f"{'method':<9} {'n':>6} {'scipy s':>9} {'fastcl s':>9} "
          f"{'jax s':>9} {'kernel s':>9} {'compile s':>9} {'jax/best':>8} "
          f"{'kern/best':>9}")
  print(head)
  print("-" * len(head))
  for n in sizes:
    reps = repeats if n <= 8000 else max(1, min(repeats, 2))
    x = _points(n)
    # Ours first, then the peers, so that the float32 square matrix and the
    # float64 condensed vector (4 GB each at n = 32,000) are never alive together.
    d = pairwise_distances(jnp.asarray(x, jnp.float32))  # float32, on device
    d.block_until_ready()
    ones = jnp.ones(n, d.dtype)
    ours = {}
    for method in methods:
      def api():
        lk.linkage(d, method).parent.block_until_ready()

      def kernel():
        h = lk._linkage_kernel(d, ones, method=method)[0]
        h.parent.block_until_ready()

      t0 = time.perf_counter()
      api()
      first = time.perf_counter() - t0
      t_api = _time(api, reps)
      ours[method] = (t_api, _time(kernel, reps), max(first - t_api, 0))
    del d, ones
    gc.collect()
    y = ssd.pdist(x)
    for method in methods:
      t_scipy = _time(lambda: sch.linkage(y, method), reps)
      t_fc = _time(lambda: fastcluster.linkage(y, method), reps)
      best = min(t_scipy, t_fc)
      t_api, t_kernel, compile_s = ours[method]
      print(f"{method:<9} {n:>6} {t_scipy:>9.3f} {t_fc:>9.3f} {t_api:>9.3f} "
            f"{t_kernel:>9.3f} {compile_s:>9.2f} "
            f"{t_api / best:>8.2f} {t_kernel / best:>9.2f}", flush=True)
    del y
    gc.collect()


def _vm_hwm_kib() -> int:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmHWM:"):
        return int(line.split()[1])
  return -1


def memory_child(impl: str, n: int, method: str) -> None:
  """Runs in a subprocess: prints 'base_kib peak_kib' for one linkage call."""
  if impl == "jax":
    import jax.numpy as jnp

    from fairhc_jax.distances import pairwise_distances
    from fairhc_jax.agglomerative import linkage  # the function
    d = pairwise_distances(jnp.asarray(_points(n), jnp.float32))
    d.block_until_ready()
    base = _vm_hwm_kib()
    h = linkage(d, method)
    h.parent.block_until_ready()
  else:
    import scipy.spatial.distance as ssd
    y = ssd.pdist(_points(n))
    base = _vm_hwm_kib()
    if impl == "scipy":
      import scipy.cluster.hierarchy as sch
      sch.linkage(y, method)
    else:
      import fastcluster
      fastcluster.linkage(y, method)
  print(base, _vm_hwm_kib())


def run_memory(n: int, method: str) -> None:
  print(f"\npeak memory, {method} linkage, n = {n} (VmHWM, one process each)")
  print(f"{'impl':<12} {'input GiB':>10} {'peak GiB':>9} {'extra GiB':>10}")
  for impl in ("scipy", "fastcluster", "jax"):
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", impl, str(n), method],
        capture_output=True, text=True, check=True,
        env={**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"})
    base, peak = (int(v) for v in out.stdout.split()[-2:])
    gib = 1024 ** 2
    print(f"{impl:<12} {base / gib:>10.2f} {peak / gib:>9.2f} "
          f"{(peak - base) / gib:>10.2f}", flush=True)
  print("(input: process after building the input distances; jax: float32 "
        "square matrix, peers: float64 condensed vector)")


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--sizes", default=None,
                 help="comma-separated n (default 1000..max-n by doubling)")
  p.add_argument("--max-n", type=int, default=16000)
  p.add_argument("--methods", default="average,single,complete")
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--memory", type=int, default=0, metavar="N",
                 help="also measure peak memory at n = N (e.g. 16000)")
  p.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
  a = p.parse_args()
  if a.memory_child:
    impl, n, method = a.memory_child
    memory_child(impl, int(n), method)
    return
  sizes = ([int(s) for s in a.sizes.split(",")] if a.sizes
           else [s for s in SIZES if s <= a.max_n])
  methods = a.methods.split(",")
  run_table(sizes, methods, a.repeats)
  if a.memory:
    run_memory(a.memory, methods[0])


if __name__ == "__main__":
  main()
