"""Whole data sets, phase by phase, with the peak memory of each phase (VmHWM).

All of Census (30,162 points) or all of Bank (45,211 points: an 8.2 GB
float32 distance matrix) through:

* ``distances``: :func:`fairhc_jax.pairwise_distances` (memory guard first);
* ``validate``: :func:`fairhc_jax.check_distances`, the one-pass check (the
  later phases pass ``validate=False``: checked once);
* ``decomposition``: the fairlet decomposition for the paper's constraint;
* ``local_search``: the fast schedule to convergence;
* ``fair_tree``: :func:`fairlet_tree`;
* ``objectives``: :func:`tree_objectives` (cost, revenue, value, both
  bounds) in one pass over the distances, no similarity matrix;
* ``audit``: ``is_fair`` of the fair tree (its own scope) over
  ``--colourings`` random colourings (balanced coin per point), in batches;
* ``average_linkage``: :func:`fairhc_jax.linkage` on the whole matrix, its
  objectives, then ``fair_hc`` (Knittel et al.) on that tree.

The peak resident memory is reset before every phase (``echo 5 >
/proc/self/clear_refs``) and read after it (``VmHWM`` of
``/proc/self/status``), so each row shows that phase's own peak, buffers
from the earlier phases included (the distance matrix stays resident).
Times are warm only where stated: a whole data set runs once, so every
phase includes its compile (reported separately where measured).

Usage:
  python benchmarks/bench_whole_data.py --data census           # all 30,162
  python benchmarks/bench_whole_data.py --data bank --skip audit
  python benchmarks/bench_whole_data.py --data census --n 4000  # a quick run
  python benchmarks/bench_whole_data.py --data census --pipeline --skip audit average_linkage
      # the public fair_hierarchical_clustering on the file's order (it sorts
      # by colour itself), phases from its stats, then res.objectives()
  Writes benchmarks/results/whole_<data>.txt (``whole_<data>_pipeline.txt``
  with ``--pipeline``; ``--out`` to change).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fairhc_jax as fh  # noqa: E402
from fairhc_jax import datasets, fairlets  # noqa: E402
from fairhc_jax.algorithms import fairlet_hc as fhc  # noqa: E402
from fairhc_jax.algorithms import reductions as red  # noqa: E402
from fairhc_jax.distances import check_distances, pairwise_distances  # noqa: E402
from fairhc_jax.fairness import Balance, is_fair  # noqa: E402
from fairhc_jax.objectives import tree_objectives  # noqa: E402

DATA_DIR = ROOT.parent / "shared" / "data" / "uci"
SETS = {"census": ("census", "gender", Balance(1, 3)),
        "bank": ("bank", "marital", Balance(1, 2))}


def status(field: str) -> int:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1]) * 1024
  return -1


def reset_peak():
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
  except OSError:
    pass


ROWS = []


def phase(name, fn):
  reset_peak()
  t = time.perf_counter()
  out = jax.block_until_ready(fn())
  dt = time.perf_counter() - t
  ROWS.append((name, dt, status("VmHWM"), status("VmRSS")))
  print(f"{name:<22} {dt:9.2f} s   peak {status('VmHWM') / 2**30:6.2f} GiB   "
        f"rss {status('VmRSS') / 2**30:6.2f} GiB", flush=True)
  return out


LOAD0 = f"{os.getloadavg()[0]:.1f}"
FIRST = []   # the first call's seconds with --warm
RUNS = {False: "one run (compile included)", True: "the second of two runs (warm)"}


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--data", choices=list(SETS), default="census")
  ap.add_argument("--n", type=int, default=None, help="first n points only (quick runs)")
  ap.add_argument("--colourings", type=int, default=100_000)
  ap.add_argument("--batch", type=int, default=2_000)
  ap.add_argument("--skip", nargs="*", default=[],
                  choices=["fairlets", "audit", "average_linkage", "fair_hc"],
                  help="phases to leave out ('fairlets': decomposition to "
                       "objectives, and the audit of their tree)")
  ap.add_argument("--keep-order", action="store_true",
                  help="keep the data set's point order (default: sorted by colour, "
                       "which the fast local search exploits)")
  ap.add_argument("--pipeline", action="store_true",
                  help="run the fairlet phases through the public "
                       "fair_hierarchical_clustering on the points in file order (it "
                       "sorts by colour itself and maps the outputs back), then "
                       "res.objectives(); phases from its stats")
  ap.add_argument("--start", choices=list(fhc.STARTS), default="random",
                  help="with --pipeline: the local search's starting decomposition")
  ap.add_argument("--warm", action="store_true",
                  help="with --pipeline: time a second call (the first compiles)")
  ap.add_argument("--out", default=None)
  a = ap.parse_args()

  loader, color, constraint = SETS[a.data]
  data_dir = os.environ.get("FAIRHC_DATA_DIR", str(DATA_DIR))
  load = datasets.load_census if loader == "census" else datasets.load_bank
  ds = load(color=color, data_dir=data_dir, download=False)
  X = np.asarray(ds.features, np.float32)
  colors = np.asarray(ds.colors, np.int32)
  if a.n:
    X, colors = X[:a.n], colors[:a.n]
  if not a.keep_order and not a.pipeline:
    # Points sorted by colour (a permutation: every phase is equivariant and
    # the objectives invariant): the fast local search then computes each
    # row over its own colour's contiguous block of columns only.
    order = np.argsort(colors, kind="stable")
    X, colors = X[order], colors[order]
  n = len(X)
  print(f"{a.data}: n = {n}, {X.shape[1]} features, colour {color}, {constraint}, "
        f"points {'in file order' if a.keep_order or a.pipeline else 'sorted by colour'}; "
        f"jax {jax.__version__} on {jax.devices()[0].platform}; free memory "
        f"{fh.memory.free_bytes() / 2**30:.1f} GiB at start", flush=True)
  key = jax.random.key(0)
  k_dec, k_ls = jax.random.split(key)

  if a.pipeline:
    return run_pipeline(a, X, colors, constraint, key)
  D = phase("distances", lambda: pairwise_distances(X))
  D = phase("validate", lambda: check_distances(D))
  obj = None
  if "fairlets" not in a.skip:
    dec = phase("decomposition", lambda: fairlets.fairlet_decomposition(k_dec, colors,
                                                                          constraint))
    state = phase("local_search", lambda: fairlets.run_local_search(
        k_ls, D, colors, dec, schedule="fast", progress=False, validate=False))
    final = fairlets.Decomposition(fairlet_of=state.fairlet_of,
                                   num_fairlets=dec.num_fairlets, max_size=dec.max_size)
    h = phase("fair_tree", lambda: fhc.fairlet_tree(D, final, validate=False))
    obj = phase("objectives", lambda: tree_objectives(h, D, validate=False))
    scope = fh.fairness.ClusterScope(blocks=final.fairlet_of)
    own = bool(is_fair(h, colors, constraint, scope=scope))
    print(f"  swaps {int(state.swaps)}, steps {int(state.steps)}, fair tree passes its "
          f"own-scope check: {own}; value/UB {float(obj.value / obj.value_upper_bound):.4f}, "
          f"revenue/UB {float(obj.revenue / obj.revenue_upper_bound):.4f}", flush=True)

  if "audit" not in a.skip and "fairlets" not in a.skip:
    def audit():
      fair = 0
      k = jax.random.key(1)
      num = -(-a.colourings // a.batch)
      for b in range(num):
        cols = jax.random.bernoulli(jax.random.fold_in(k, b), 0.5,
                                    (a.batch, n)).astype(jnp.int32)
        fair += int(jnp.sum(is_fair(h, cols, constraint, scope=scope)))
      return jnp.asarray(fair)
    # Warm the batch shape once (compile), then time all batches.
    jax.block_until_ready(is_fair(h, jnp.zeros((a.batch, n), jnp.int32), constraint,
                                  scope=scope))
    fair = phase(f"audit is_fair x{a.colourings}", audit)
    print(f"  {int(fair)} of {a.colourings} random colourings fair; "
          f"{ROWS[-1][1] / a.colourings * 1e6:.1f} us per colouring", flush=True)

  if "average_linkage" not in a.skip:
    if obj is not None:
      del state, final
    h_avg = phase("average_linkage", lambda: fh.linkage(D, "average"))
    oa = phase("objectives (average)", lambda: tree_objectives(h_avg, D, validate=False))
    if obj is not None:
      print(f"  fair/average: value {float(obj.value / oa.value):.4f}, cost "
            f"{float(obj.cost / oa.cost):.4f}", flush=True)
    if "fair_hc" not in a.skip:
      res = phase("fair_hc (Knittel)", lambda: red.fair_hc(
          h_avg, colors, 1 / 8, num_sorted=4, num_folds=2).hierarchy.parent)
      del res

  write(a, n)


def run_pipeline(a, X, colors, constraint, key):
  """The public pipeline in one call; its phases from ``res.stats``.

  ``--warm``: one untimed-for-the-table call first (same data, so every
  program is compiled), its time printed as the first call's; the table is
  then the second call's.
  """
  n = len(X)
  if a.warm:
    t0 = time.perf_counter()
    first = fhc.fair_hierarchical_clustering(key, X, colors, constraint=constraint,
                                             progress=False, start=a.start)
    jax.block_until_ready(first.objectives())
    FIRST.append(time.perf_counter() - t0)
    print(f"first call (compiles included, objectives included): {FIRST[0]:.2f} s", flush=True)
    del first
    import gc
    gc.collect()
    reset_peak()
  res = phase("fair_hierarchical_clustering", lambda: fhc.fair_hierarchical_clustering(
      key, X, colors, constraint=constraint, progress=False, start=a.start))
  call = ROWS.pop()
  s = res.stats
  hwm = call[2]
  for name, dt in (("distances", s.time_distances), ("decomposition", s.time_decomposition),
                   ("local_search", s.time_local_search), ("fair_tree", s.time_tree),
                   ("distances to caller order", s.time_order)):
    ROWS.append((name, dt, hwm, call[3]))
    print(f"{name:<26} {dt:9.2f} s", flush=True)
  rest = call[1] - (s.time_distances + s.time_decomposition + s.time_local_search
                    + s.time_tree + s.time_order)
  ROWS.append(("checks, order, mapping", rest, hwm, call[3]))
  obj = phase("objectives", lambda: res.objectives())
  own = bool(is_fair(res.hierarchy, colors, constraint, scope=res.scope))
  print(f"  swaps {s.swaps}, steps {s.steps}, phi {s.phi_after:.6g}; fair tree passes its "
        f"own-scope check: {own}; value/UB {float(obj.value / obj.value_upper_bound):.4f}, "
        f"revenue/UB {float(obj.revenue / obj.revenue_upper_bound):.4f}", flush=True)
  write(a, n)


def write(a, n):
  loader, color, constraint = SETS[a.data]
  tag = ("_pipeline" if a.pipeline else "") + ("_warm" if a.warm else "") + ("_projection" if a.start != "random" else "")
  out = pathlib.Path(a.out or ROOT / "benchmarks" / "results" / f"whole_{a.data}{tag}.txt")
  with open(out, "w") as f:
    f.write(f"{a.data}: n = {n}, {constraint}; jax {jax.__version__} on "
            f"{jax.devices()[0].platform}, float32; {RUNS[a.warm]}; "
            f"load average {LOAD0} at the start, {os.getloadavg()[0]:.1f} at the end "
            f"(2 cores: above about 2.5, other jobs ran)\n")
    f.write(f"command: python benchmarks/bench_whole_data.py --data {a.data}"
            + (f" --n {a.n}" if a.n else "") + (" --skip " + " ".join(a.skip) if a.skip else "")
            + (" --keep-order" if a.keep_order else "")
            + (" --pipeline" if a.pipeline else "")
            + (f" --start {a.start}" if a.start != "random" else "")
            + (" --warm" if a.warm else "") + "\n")
    if FIRST:
      f.write(f"first call (compiles included, objectives included): {FIRST[0]:.2f} s; "
              "the table is the second call's (warm)\n")
    f.write(f"points {'in file order' if a.keep_order or a.pipeline else 'sorted by colour'}"
            + (" (the pipeline sorts internally)" if a.pipeline else "") + "\n")
    f.write(f"{'phase':<26} {'seconds':>9} {'VmHWM GiB':>10} {'VmRSS GiB':>10}\n")
    for name, dt, hwm, rss in ROWS:
      f.write(f"{name:<26} {dt:9.2f} {hwm / 2**30:10.2f} {rss / 2**30:10.2f}\n")
    if "fairlets" not in a.skip:
      fit = sum(r[1] for r in ROWS if r[0] in (
          "distances", "validate", "decomposition", "local_search", "fair_tree",
          "objectives", "distances to caller order", "checks, order, mapping"))
      f.write(f"fairlet pipeline total (distances .. objectives): {fit:.2f} s\n")
    f.write(f"max VmHWM {max(r[2] for r in ROWS) / 2**30:.2f} GiB\n")
  print(f"wrote {out}")


if __name__ == "__main__":
  main()
