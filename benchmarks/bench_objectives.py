"""Benchmark: tree objectives against one plain ``jnp.sum`` over the same matrix.

For each n, builds a random similarity matrix ``S = 1 / (1 + D)`` (float32,
points in 8-D), SciPy's average-linkage tree on it, and times, warm and in the
same run (interleaved, best of ``--reps``), with ``block_until_ready``:

* ``jnp.sum(S)`` (jitted): the reference single pass over the n x n matrix;
* each objective's raw jitted kernel (``dasgupta_cost_kernel``,
  ``moseley_wang_revenue_kernel``, ``cohen_addad_value_kernel``; validation
  excluded) and the upper bounds;
* the DFS leaf order + gaps alone (``leaf_order_gaps``, included in the
  objective times), to show the fixed O(n log n) part.

Compile time (first call) is reported separately. Ratio = objective / sum.
Goal (issue 2): every objective within 3x of the sum at n >= 4,000.

Usage: python benchmarks/bench_objectives.py [--sizes 1000,2000,4000,8000,16000]
       [--reps 5] [--block-size 64]
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.cluster.hierarchy as sch

from fairhc_jax import objectives as obj
from fairhc_jax.hierarchy import from_parent


def average_linkage_tree(d_condensed, n):
  z = sch.linkage(d_condensed, "average")
  parent = np.full(2 * n - 1, -1)
  for t, (a, b) in enumerate(z[:, :2].astype(int)):
    parent[a] = parent[b] = n + t
  return from_parent(parent)


def timed(fns, args, reps):
  """Compile times and best warm times of each function, interleaved."""
  compile_s = []
  for f in fns:
    t = time.perf_counter()
    jax.block_until_ready(f(*args))
    compile_s.append(time.perf_counter() - t)
  best = [float("inf")] * len(fns)
  for _ in range(reps):
    for k, f in enumerate(fns):
      t = time.perf_counter()
      jax.block_until_ready(f(*args))
      best[k] = min(best[k], time.perf_counter() - t)
  return compile_s, best


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--sizes", default="1000,2000,4000,8000,16000")
  ap.add_argument("--reps", type=int, default=5)
  ap.add_argument("--block-size", type=int, default=obj.DEFAULT_BLOCK_SIZE)
  args = ap.parse_args()
  bs = args.block_size
  rng = np.random.default_rng(0)

  names = ["jnp.sum", "leaf order+gaps", "dasgupta_cost", "moseley_wang_revenue",
           "cohen_addad_value", "revenue_upper_bound", "value_upper_bound"]
  fns = [
      jax.jit(lambda h, s, d, w: jnp.sum(s)),
      lambda h, s, d, w: obj.leaf_order_gaps(h, w),
      lambda h, s, d, w: obj.dasgupta_cost_kernel(h, s, w, block_size=bs),
      lambda h, s, d, w: obj.moseley_wang_revenue_kernel(h, s, w, block_size=bs),
      lambda h, s, d, w: obj.cohen_addad_value_kernel(h, d, w, block_size=bs),
      lambda h, s, d, w: obj.revenue_upper_bound_kernel(s, w),
      lambda h, s, d, w: obj.value_upper_bound_kernel(d, w),
  ]
  print(f"jax {jax.__version__}, devices {jax.devices()}, block_size {bs}, "
        f"best of {args.reps} warm runs (seconds); ratio = time / jnp.sum")
  header = f"{'n':>6} | {'function':<22} | {'compile s':>9} | {'warm s':>9} | {'ratio':>6}"
  print(header)
  print("-" * len(header))
  for n in [int(v) for v in args.sizes.split(",")]:
    x = rng.normal(size=(n, 8)).astype(np.float32)
    sq = np.sum(x * x, 1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0))
    d = ((d + d.T) / 2).astype(np.float32)
    np.fill_diagonal(d, 0)
    iu = np.triu_indices(n, 1)
    h = average_linkage_tree(d[iu].astype(np.float64), n)
    del iu
    s = 1.0 / (1.0 + d)
    np.fill_diagonal(s, 0)
    s, dj = jnp.asarray(s), jnp.asarray(d)
    del d
    w = jnp.ones(n, jnp.int32)
    comp, warm = timed(fns, (h, s, dj, w), args.reps)
    for name, c, t in zip(names, comp, warm):
      print(f"{n:>6} | {name:<22} | {c:>9.3f} | {t:>9.4f} | {t / warm[0]:>6.2f}",
            flush=True)
    del s, dj


if __name__ == "__main__":
  main()
