"""Before/after in one process: the one-pass check and the tree_objectives kernel.

Loads ``fairhc_jax/_checks.py`` and ``fairhc_jax/objectives.py`` of a
baseline checkout (default ``../main``) as separate modules beside this
checkout's, and times, warm and interleaved (best of ``--reps``, with
``block_until_ready``), on one float32 distance matrix per ``n``:

* ``jnp.sum(D)`` (jitted), the reference pass;
* ``check_square_matrix(.., zero_diagonal=True)`` (what ``check_distances``
  runs), baseline and this checkout (each one's memory of checked arrays
  cleared before each call, so every call checks);
* ``tree_objectives_kernel(h, D, w)`` (no validation), baseline and this
  checkout, and the public ``tree_objectives`` / ``cohen_addad_value`` with
  ``validate=False``, with the relative difference of the five results;
* the check in one dispatch (``_default_parts`` forced to 1), to separate
  its concurrent row ranges (one per core on CPU) from the rest.

Both wall time and process CPU time are printed (ratio = time / the sum's):
on a shared machine the CPU-time ratio is the steadier one, since the sum
runs on every core and the blocked loops mostly on one.

Usage: python benchmarks/compare_onepass.py [--sizes 4000,16000] [--reps 7]
       [--baseline ../main]
"""

import argparse
import importlib.util
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_objectives import random_tree  # noqa: E402
from fairhc_jax import _checks, objectives  # noqa: E402
from fairhc_jax.distances import pairwise_distances  # noqa: E402


def load(path, name):
  spec = importlib.util.spec_from_file_location(name, path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def best(fns, reps):
  """Best (wall, cpu) seconds of each function, interleaved, after a warm call."""
  for f in fns:
    jax.block_until_ready(f())
  out = [[float("inf"), float("inf")] for _ in fns]
  for _ in range(reps):
    for k, f in enumerate(fns):
      t, p = time.perf_counter(), time.process_time()
      jax.block_until_ready(f())
      out[k][0] = min(out[k][0], time.perf_counter() - t)
      out[k][1] = min(out[k][1], time.process_time() - p)
  return out


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--sizes", default="4000,16000")
  ap.add_argument("--reps", type=int, default=7)
  ap.add_argument("--baseline", default=str(ROOT.parent / "main"))
  args = ap.parse_args()
  base = pathlib.Path(args.baseline) / "fairhc_jax"
  old_checks = load(base / "_checks.py", "baseline_checks")
  old_obj = load(base / "objectives.py", "baseline_objectives")
  total = jax.jit(jnp.sum)
  print(f"baseline {base}, this checkout {ROOT}; best of {args.reps}; "
        f"x = time / jnp.sum (wall, cpu)")

  def fresh_check(D, mod=_checks):
    if hasattr(mod, "forget_validated"):  # both checkouts remember checked arrays
      mod.forget_validated()
    return mod.check_square_matrix("f", "D", D, zero_diagonal=True)

  def one_dispatch(f, *a):
    """``f(*a)`` with the check's pass in one dispatch (no concurrent row ranges)."""
    parts = getattr(_checks, "_default_parts", None)
    if parts is None:
      return f(*a)
    _checks._default_parts = lambda m: 1
    try:
      return f(*a)
    finally:
      _checks._default_parts = parts

  for n in [int(v) for v in args.sizes.split(",")]:
    rng = np.random.default_rng(0)
    D = pairwise_distances(rng.normal(size=(n, 8)).astype(np.float32))
    h = random_tree(n, rng)
    w = jnp.ones(n, jnp.int32)
    calls = [
        ("jnp.sum(D)", lambda: total(D)),
        ("check, baseline", lambda: fresh_check(D, old_checks)),
        ("check, this checkout", lambda: fresh_check(D)),
        ("check, this checkout, one dispatch", lambda: one_dispatch(fresh_check, D)),
        ("tree_objectives_kernel, baseline", lambda: old_obj.tree_objectives_kernel(h, D, w)),
        ("tree_objectives_kernel, this checkout",
         lambda: objectives.tree_objectives_kernel(h, D, w)),
        ("tree_objectives(validate=False), baseline",
         lambda: old_obj.tree_objectives(h, D, validate=False)),
        ("tree_objectives(validate=False), this",
         lambda: objectives.tree_objectives(h, D, validate=False)),
        ("cohen_addad_value(validate=False), base",
         lambda: old_obj.cohen_addad_value(h, D, validate=False)),
        ("cohen_addad_value(validate=False), this",
         lambda: objectives.cohen_addad_value(h, D, validate=False)),
    ]
    times = best([f for _, f in calls], args.reps)
    s_wall, s_cpu = times[0]
    for (name, _), (tw, tc) in zip(calls, times):
      print(f"{n:>6} | {name:<38} | wall {tw * 1e3:9.2f} ms {tw / s_wall:6.2f}x | "
            f"cpu {tc * 1e3:9.2f} ms {tc / s_cpu:6.2f}x", flush=True)
    a = old_obj.tree_objectives_kernel(h, D, w)
    b = objectives.tree_objectives(h, D, validate=False)
    diff = max(abs(float(x) / float(y) - 1) for x, y in zip(b, a) if float(y))
    print(f"{n:>6} | tree_objectives (this, public) vs baseline kernel: max relative "
          f"difference {diff:.2e}", flush=True)
    del D


if __name__ == "__main__":
  main()
