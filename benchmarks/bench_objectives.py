"""Benchmark: validation and every public objective call against one ``jnp.sum``.

For each n: ``D = pairwise_distances`` of random 8-D points (float32), its
similarity ``S = 1 / (1 + D)`` (zero diagonal), a random binary tree (the
objectives' cost does not depend on the tree's shape), and, warm and in the
same run (interleaved, best of ``--reps``), with ``block_until_ready``:

* ``jnp.sum(D)`` (jitted): the reference single pass over the matrix;
* ``check_distances(D)``: the one-pass validation (goal: < 2x the sum), on
  CPU cut into concurrent row ranges (one per core), and the same pass in
  one dispatch;
* every public objective call, validation included: ``tree_objectives(h, D)``
  (all five in one pass, similarity on the fly), ``dasgupta_cost(h, S)``,
  ``moseley_wang_revenue(h, S)``, ``cohen_addad_value(h, D)``,
  ``revenue_upper_bound(S)``, ``value_upper_bound(D)`` (goal: <= 3x the sum
  at n >= 4,000). The library remembers a JAX array that passed its check
  (``_checks.forget_validated``), so these rows forget before every call:
  each timed call checks its matrix;
* the same calls on a matrix already checked (``[repeat]``: the memory
  skips the pass), ``tree_objectives(h, D, validate=False)`` and the raw
  value kernel, to show the split between checking and computing.

Compile time (first call) is reported separately. Ratio = time / sum.

Usage: python benchmarks/bench_objectives.py [--sizes 1000,2000,4000,8000,16000,32000]
       [--reps 5] [--out benchmarks/results/objectives.txt]
"""

import argparse
import sys
import time
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from fairhc_jax import _checks  # noqa: E402
from fairhc_jax import objectives as obj  # noqa: E402
from fairhc_jax.distances import check_distances, pairwise_distances, similarity  # noqa: E402
from fairhc_jax.hierarchy import from_parent  # noqa: E402


def random_tree(n, rng):
  """A random binary tree: merge two random current roots, n - 1 times."""
  parent = np.full(2 * n - 1, -1)
  roots = list(range(n))
  for t in range(n - 1):
    i, j = rng.choice(len(roots), 2, replace=False)
    a, b = roots[i], roots[j]
    parent[a] = parent[b] = n + t
    for k in sorted((i, j), reverse=True):
      roots.pop(k)
    roots.append(n + t)
  return from_parent(parent)


def timed(fns, reps):
  """Compile times and best warm times of each function, interleaved."""
  compile_s = []
  for f in fns:
    t = time.perf_counter()
    jax.block_until_ready(f())
    compile_s.append(time.perf_counter() - t)
  best = [float("inf")] * len(fns)
  for _ in range(reps):
    for k, f in enumerate(fns):
      t = time.perf_counter()
      jax.block_until_ready(f())
      best[k] = min(best[k], time.perf_counter() - t)
  return compile_s, best


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--sizes", default="1000,2000,4000,8000,16000")
  ap.add_argument("--reps", type=int, default=5)
  ap.add_argument("--out", default=None)
  args = ap.parse_args()
  rng = np.random.default_rng(0)
  lines = [f"jax {jax.__version__}, devices {jax.devices()}, best of {args.reps} warm "
           f"runs (seconds); ratio = time / jnp.sum; public calls include validation; "
           f"measured while other jobs ran",
           f"command: python benchmarks/bench_objectives.py --sizes {args.sizes} "
           f"--reps {args.reps}"]
  header = f"{'n':>6} | {'call':<38} | {'compile s':>9} | {'warm s':>9} | {'ratio':>6}"
  lines += [header, "-" * len(header)]
  for line in lines:
    print(line, flush=True)
  total = jax.jit(jnp.sum)
  for n in [int(v) for v in args.sizes.split(",")]:
    x = rng.normal(size=(n, 8)).astype(np.float32)
    D = pairwise_distances(x)
    S = similarity(D, validate=False)
    h = random_tree(n, rng)
    w = jnp.ones(n, jnp.int32)
    def one_dispatch(f, *a):
      """``f(*a)`` with the check's pass in one dispatch (no concurrent ranges)."""
      parts = _checks._default_parts
      _checks._default_parts = lambda m: 1
      try:
        return f(*a)
      finally:
        _checks._default_parts = parts

    def fresh(f):
      """``f`` with the memory of checked matrices cleared first (it checks)."""
      return lambda: (_checks.forget_validated(), f())[1]

    calls = [
        ("jnp.sum(D)", lambda: total(D)),
        ("check_distances(D)", fresh(lambda: check_distances(D))),
        ("check_distances(D), one dispatch", fresh(lambda: one_dispatch(check_distances, D))),
        ("tree_objectives(h, D)", fresh(lambda: obj.tree_objectives(h, D))),
        ("dasgupta_cost(h, S)", fresh(lambda: obj.dasgupta_cost(h, S))),
        ("moseley_wang_revenue(h, S)", fresh(lambda: obj.moseley_wang_revenue(h, S))),
        ("cohen_addad_value(h, D)", fresh(lambda: obj.cohen_addad_value(h, D))),
        ("revenue_upper_bound(S)", fresh(lambda: obj.revenue_upper_bound(S))),
        ("value_upper_bound(D)", fresh(lambda: obj.value_upper_bound(D))),
        ("tree_objectives(h, D) [repeat]", lambda: obj.tree_objectives(h, D)),
        ("dasgupta_cost(h, S) [repeat]", lambda: obj.dasgupta_cost(h, S)),
        ("cohen_addad_value(h, D) [repeat]", lambda: obj.cohen_addad_value(h, D)),
        ("tree_objectives(h, D, validate=False)",
         lambda: obj.tree_objectives(h, D, validate=False)),
        ("cohen_addad_value_kernel (raw)", lambda: obj.cohen_addad_value_kernel(h, D, w)),
    ]
    comp, warm = timed([f for _, f in calls], args.reps)
    for (name, _), c, t in zip(calls, comp, warm):
      line = f"{n:>6} | {name:<38} | {c:>9.3f} | {t:>9.4f} | {t / warm[0]:>6.2f}"
      lines.append(line)
      print(line, flush=True)
    del D, S
  if args.out:
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
  main()
