"""FHAC's literal rule before / after a change, timed in one process.

Usage (from the repository root)::

  python benchmarks/bench_fhac_literal_ab.py [--rev ee377cf] [--reps 15] [--batch 100] [--evals 1000]

Loads ``fairhc_jax/algorithms/fair_hac.py`` and ``fhac_search.py`` as they
were at ``--rev`` (``git show``) beside the working tree's, and times, on the
``speed`` benchmark's instance (bank2 sample, n = 120, c = 3, average
linkage, float32, ``k = 4``, parameters ``(0.1, 0.01, 50, 5)``):

* one literal tree through the raw kernel and through the public ``fhac``;
* one batched call of ``--batch`` random parameter vectors (the search's
  unit of work);
* ``tune_fhac`` with ``--evals`` evaluations in batches of ``--batch``
  (``--evals 0`` skips it), after a warm-up search that compiles.

The runs alternate between the two versions, so both see the same load;
the trees are checked equal (the change must not alter any result). Prints
median and minimum of warm runs and the ratios; compile separately.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import time
import types

import jax
import jax.numpy as jnp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_fair_hac as B  # noqa: E402
from fairhc_jax.algorithms import fair_hac as NEW  # noqa: E402
from fairhc_jax.algorithms import fhac_search as NEW_S  # noqa: E402


def _load(rev: str, path: str, name: str, extra=None):
  src = subprocess.check_output(["git", "-C", str(ROOT), "show", f"{rev}:{path}"]).decode()
  mod = types.ModuleType(name)
  mod.__file__ = f"{rev}:{path}"
  if extra:
    mod.__dict__.update(extra)
  exec(compile(src, mod.__file__, "exec"), mod.__dict__)
  return mod


def _alternate(fns, reps):
  ts = {k: [] for k in fns}
  for _ in range(reps):
    for k, f in fns.items():
      t = time.perf_counter()
      jax.block_until_ready(f())
      ts[k].append(time.perf_counter() - t)
  return {k: (float(np.median(v)), float(np.min(v))) for k, v in ts.items()}


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--rev", default="ee377cf")
  ap.add_argument("--reps", type=int, default=15)
  ap.add_argument("--batch", type=int, default=100)
  ap.add_argument("--evals", type=int, default=1000)
  args = ap.parse_args()
  OLD = _load(args.rev, "fairhc_jax/algorithms/fair_hac.py", "fair_hac_old")
  data = B.load_table1()
  x_all, g_all, counts = data["bank2"]
  idx = B.sample(np.random.default_rng(0), g_all, counts)
  D = jnp.asarray(B.distances(x_all[idx]), jnp.float32)
  col = jnp.asarray(g_all[idx], jnp.int32)
  prm = np.array([0.1, 0.01, 50.0, 5.0])
  p = NEW.fhac_schedules(prm, 120, 4, np.float32)
  print(f"# literal FHAC, n = 120, c = 3, average, float32; before = {args.rev}, after = working tree")
  print("# median (min) of warm runs, the versions alternating; measured while other jobs ran unless stated")
  for label, fns in [
      ("one tree, raw kernel", {
          "before": lambda: OLD.fhac_kernel(D, col, p, jnp.int32(4), num_colors=3,
                                            method="average", rule="literal"),
          "after": lambda: NEW.fhac_kernel(D, col, p, jnp.int32(4), num_colors=3,
                                           method="average", rule="literal")}),
      ("one tree, public fhac", {
          "before": lambda: OLD.fhac(D, col, OLD.FHACParams(*prm), k=4),
          "after": lambda: NEW.fhac(D, col, NEW.FHACParams(*prm), k=4)})]:
    comp = {}
    for k, f in fns.items():
      t = time.perf_counter()
      jax.block_until_ready(f())
      comp[k] = time.perf_counter() - t
    a, b = fns["before"](), fns["after"]()
    pa = getattr(a, "hierarchy", a).parent
    pb = getattr(b, "hierarchy", b).parent
    assert np.array_equal(np.asarray(pa), np.asarray(pb)), "the trees differ"
    r = _alternate(fns, args.reps)
    print(f"{label:<24} before {1e3 * r['before'][0]:8.2f} ms ({1e3 * r['before'][1]:.2f}), "
          f"after {1e3 * r['after'][0]:8.2f} ms ({1e3 * r['after'][1]:.2f}); "
          f"ratio {r['before'][0] / r['after'][0]:.2f}x (mins {r['before'][1] / r['after'][1]:.2f}x); "
          f"first calls {comp['before']:.1f} s / {comp['after']:.1f} s")
  rng = np.random.default_rng(1)
  box = NEW_S.default_bounds(np.asarray(D), 4)
  P = box[:, 0] + rng.uniform(size=(args.batch, 4)) * (box[:, 1] - box[:, 0])
  sb = NEW.fhac_schedules(P, 120, 4, np.float32)
  fns = {"before": lambda: OLD.fhac_batch_kernel(D, col, sb, jnp.int32(4), num_colors=3,
                                                 method="average", rule="literal"),
         "after": lambda: NEW.fhac_batch_kernel(D, col, sb, jnp.int32(4), num_colors=3,
                                                method="average", rule="literal")}
  comp = {}
  for k, f in fns.items():
    t = time.perf_counter()
    jax.block_until_ready(f())
    comp[k] = time.perf_counter() - t
  assert np.array_equal(np.asarray(fns["before"]().hierarchy.parent),
                        np.asarray(fns["after"]().hierarchy.parent)), "the batched trees differ"
  r = _alternate(fns, max(3, args.reps // 5))
  print(f"batch of {args.batch:<15} before {r['before'][0]:8.3f} s ({r['before'][1]:.3f}), "
        f"after {r['after'][0]:8.3f} s ({r['after'][1]:.3f}); ratio {r['before'][0] / r['after'][0]:.2f}x; "
        f"first calls {comp['before']:.1f} s / {comp['after']:.1f} s")
  if args.evals:
    OLD_S = _load(args.rev, "fairhc_jax/algorithms/fhac_search.py", "fhac_search_old")
    OLD_S._fh = OLD   # the old search on the old kernel
    res = {}
    for k, S in (("before", OLD_S), ("after", NEW_S)):
      S.tune_fhac(jax.random.key(0), D, col, k=4, budget=2 * args.batch, batch=args.batch)
      t = time.perf_counter()
      out = S.tune_fhac(jax.random.key(1), D, col, k=4, budget=args.evals, batch=args.batch)
      res[k] = (time.perf_counter() - t, out)
    print(f"tune_fhac {args.evals} evaluations (batch {args.batch}): before {res['before'][0]:.2f} s "
          f"(FC {res['before'][1].vanilla_cost:.3f} -> {res['before'][1].cost:.3f}), after "
          f"{res['after'][0]:.2f} s (FC {res['after'][1].vanilla_cost:.3f} -> {res['after'][1].cost:.3f}); "
          f"ratio {res['before'][0] / res['after'][0]:.2f}x")


if __name__ == "__main__":
  main()
