"""Knittel et al. (ICML 2023) reductions on real data: cost ratio, colour ratios, scale.

Part 1, the paper's experiment (Section 5): Census coloured by race and Bank
coloured by marital status, proportional samples of n = 256 points, 10
replications, average-linkage input tree, FairHC over a sweep of (h, k, eps).
Reported per setting: the cost ratio cost(T_out) / cost(T_in) (Dasgupta cost,
similarity 1 / (1 + Euclidean distance) on the raw numeric features as in
the papers, or z-scored ones with ``--features zscore``; mean
and range over replications) and the distribution of the minority-colour
share over the internal clusters of the input and of the output tree
(10th / 50th / 90th percentiles, and the share of clusters within 0.05 of the
data's share). Every output keeps all n points and passes validation
(asserted).

Part 2, scale (Bank, n = 4,096 and 16,384 by default): the same pipeline with
the time of each step, warm (compile time reported separately): distances,
average linkage (ours, and the peer fastcluster/SciPy on the same float64
distances), then RebalanceTree, RefineRebalanceTree, and FairHC (each of
these includes the previous ones). The goal: FairHC in total (all operators)
cheaper than building the average-linkage input. Ratio column = step time /
our linkage time.

Part 3, the jitted programs against the host-side driver they replaced
(benchmarks/reference_host_driver.py): Census, n = 4,000 and the whole
30,162, then ``jax.vmap`` of ``fair_hc_kernel`` over 8 trees against a loop
(outputs asserted equal).

Usage:
  python benchmarks/bench_reductions.py                 # all parts, default sizes
  python benchmarks/bench_reductions.py --part driver   # jitted vs host driver
  python benchmarks/bench_reductions.py --reps 2 --scale 4096   # quick
  python benchmarks/bench_reductions.py --part paper --figure out.png
"""

from __future__ import annotations

import argparse
import os
from fractions import Fraction
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import datasets
from fairhc_jax import hierarchy as hier
from fairhc_jax.algorithms import reductions as red
from fairhc_jax.distances import pairwise_distances, similarity
from fairhc_jax.agglomerative import linkage
from fairhc_jax.objectives import dasgupta_cost

SWEEP = [(4, 2, 1 / 8), (8, 2, 1 / 8), (8, 4, 1 / 8), (16, 4, 1 / 8),
         (4, 2, 1 / 16), (8, 2, 1 / 16), (16, 2, 1 / 16)]


DATA_DIR = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "uci"


def load(name: str):
  data_dir = os.environ.get("FAIRHC_DATA_DIR", str(DATA_DIR))
  if name == "census":
    return datasets.load_census(color="race", data_dir=data_dir, download=False)
  return datasets.load_bank(color="marital", data_dir=data_dir, download=False)


FEATURES = "raw"  # set by --features


def prepare(ds, idx):
  """Sample features: raw numeric fields (the papers' setting) or z-scored."""
  x = ds.features[idx]
  if FEATURES == "zscore":
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
  return jnp.asarray(x, jnp.float32), np.asarray(ds.colors[idx])


def minority_shares(tree, colors):
  """Minority-colour share of every internal cluster."""
  r = jax.device_get(hier.leaf_ranges(tree))
  parent = np.asarray(tree.parent)
  n = tree.num_leaves
  minority = int(np.argmin(np.bincount(colors, minlength=2)))
  cum = np.r_[0, np.cumsum(colors[r.order] == minority)]
  used = np.flatnonzero((parent != hier.UNUSED) & (np.arange(parent.size) >= n))
  size = r.stop[used] - r.start[used]
  return (cum[r.stop[used]] - cum[r.start[used]]) / size


def describe(shares, target):
  q = np.percentile(shares, [10, 50, 90])
  near = np.mean(np.abs(shares - target) <= 0.05)
  return q, near


def paper_part(reps: int, n: int, sweep, figure: str | None):
  rows = []
  hist = {}
  op_costs = {}
  for name in ("census", "bank"):
    ds = load(name)
    minority = int(np.argmin(np.bincount(ds.colors)))
    target = float(np.mean(ds.colors == minority))
    ratio = {s: [] for s in sweep}
    before_sh, after_sh = [], {s: [] for s in sweep}
    for rep in range(reps):
      idx = datasets.proportional_subsample(jax.random.key(rep), ds.colors, n)
      x, cols = prepare(ds, idx)
      d = pairwise_distances(x)
      s = similarity(d)
      tree = linkage(d, "average")
      c_in = float(dasgupta_cost(tree, s))
      before_sh.append(minority_shares(tree, cols))
      for setting in sweep:
        h, k, eps = setting
        try:
          out, _ = red.fair_hc(tree, cols, eps, num_sorted=h, num_folds=k)
        except ValueError as e:  # tree too shallow for h
          print(f"  {name} rep {rep} {setting}: skipped ({e})")
          continue
        hier.validate(out)
        assert out.num_leaves == n
        ratio[setting].append(float(dasgupta_cost(out, s)) / c_in)
        if rep == 0 and setting == sweep[0]:
          _, steps = red.fair_hc(tree, cols, eps, num_sorted=h, num_folds=k, track_cost=True)
          worst = {}
          for st in steps:
            worst[st.operator] = max(worst.get(st.operator, 0.0), st.cost)
            worst[st.operator + " count"] = worst.get(st.operator + " count", 0) + st.count
          op_costs[name] = worst
        after_sh[setting].append(minority_shares(out, cols))
    bq, bnear = describe(np.concatenate(before_sh), target)
    print(f"\n{name}: n = {n}, {reps} replications, minority share of the data "
          f"{target:.3f} (1:{(1 - target) / target:.2f})")
    print(f"{'h':>3} {'k':>3} {'eps':>7} | {'cost ratio mean':>15} {'min':>6} {'max':>6} | "
          f"{'share p10':>9} {'p50':>6} {'p90':>6} {'within .05':>10}")
    print(f"{'average linkage (input)':>31} | {'':>29} | {bq[0]:9.3f} {bq[1]:6.3f} "
          f"{bq[2]:6.3f} {bnear:10.2%}")
    hist[(name, "input")] = np.concatenate(before_sh)
    for setting in sweep:
      if not ratio[setting]:
        continue
      h, k, eps = setting
      r = np.array(ratio[setting])
      aq, anear = describe(np.concatenate(after_sh[setting]), target)
      hist[(name, setting)] = np.concatenate(after_sh[setting])
      print(f"{h:3d} {k:3d} {eps:7.4f} | {r.mean():15.3f} {r.min():6.3f} {r.max():6.3f} | "
            f"{aq[0]:9.3f} {aq[1]:6.3f} {aq[2]:6.3f} {anear:10.2%}")
      rows.append((name, setting, r.mean()))
  h, k, eps = sweep[0]
  print(f"\noperators applied by FairHC h={h} k={k} eps={eps:.4g} (replication 0): "
        "count and largest operation cost of a batch")
  for name, worst in op_costs.items():
    parts = [f"{op}: {worst[op + ' count']} ops, cost {worst[op]:.3f}"
             for op in ("tree_rebalance", "subtree_move", "level_abstraction", "tree_fold")
             if op in worst]
    print(f"  {name}: " + "; ".join(parts))
  if figure:
    plot(hist, sweep, figure)
  return rows


def plot(hist, sweep, path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  names = ("census", "bank")
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
  for ax, name in zip(axes, names):
    bins = np.linspace(0, 1, 41)
    ax.hist(hist[(name, "input")], bins=bins, alpha=0.5, density=True, label="average linkage")
    setting = next((s for s in sweep if (name, s) in hist), None)
    if setting is not None:
      ax.hist(hist[(name, setting)], bins=bins, alpha=0.5, density=True,
              label=f"FairHC h={setting[0]} k={setting[1]} eps={setting[2]:.3g}")
    ax.set_title(f"{name}: minority share per cluster")
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  print(f"figure written to {path}")


def timed(fn, *args, repeat=3, **kwargs):
  """(first call seconds, median warm seconds, result)."""
  t0 = time.perf_counter()
  out = jax.block_until_ready(fn(*args, **kwargs))
  first = time.perf_counter() - t0
  warm = []
  for _ in range(repeat):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args, **kwargs))
    warm.append(time.perf_counter() - t0)
  return first, float(np.median(warm)), out


def scale_part(sizes, h, k, eps, repeat):
  ds = load("bank")
  print(f"\nscale: Bank (marital), FairHC h={h} k={k} eps={eps}, warm medians of {repeat}")
  print(f"{'n':>6} {'step':<34} {'warm s':>8} {'compile s':>9} {'/ linkage':>9}")
  for n in sizes:
    idx = datasets.proportional_subsample(jax.random.key(0), ds.colors, n)
    x, cols = prepare(ds, idx)
    f_d, w_d, d = timed(pairwise_distances, x, repeat=repeat)
    f_l, w_l, tree = timed(linkage, d, "average", repeat=repeat)
    peer_name, w_p = None, None
    try:
      import fastcluster
      from scipy.spatial.distance import squareform
      cond = squareform(np.asarray(d, np.float64), checks=False)
      peer_name = "fastcluster average (float64)"
      _, w_p, _ = timed(fastcluster.linkage, cond, method="average", repeat=repeat)
    except ImportError:  # pragma: no cover
      pass
    steps = [
        ("RebalanceTree", lambda: red.rebalance_tree(tree).hierarchy.parent),
        ("RefineRebalanceTree", lambda: red.refine_rebalance_tree(tree, eps).hierarchy.parent),
        ("FairHC (all operators)",
         lambda: red.fair_hc(tree, cols, eps, num_sorted=h, num_folds=k).hierarchy.parent),
    ]
    rows = [("pairwise distances", w_d, f_d - w_d), ("average linkage (ours)", w_l, f_l - w_l)]
    if peer_name:
      rows.append((peer_name, w_p, float("nan")))
    for name, fn in steps:
      f, w, _ = timed(fn, repeat=repeat)
      rows.append((name, w, f - w))
    out, _ = red.fair_hc(tree, cols, eps, num_sorted=h, num_folds=k)
    hier.validate(out)
    assert out.num_leaves == n
    for name, w, c in rows:
      print(f"{n:6d} {name:<34} {w:8.3f} {c:9.3f} {w / w_l:9.3f}")


def _best(fn, repeat):
  """(first call s, median warm s, result) with block_until_ready."""
  return timed(fn, repeat=repeat)


def driver_part(sizes, repeat, vmap_n, batch):
  """The jitted reductions against the host-side driver they replaced."""
  import functools
  import sys
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
  import reference_host_driver as old
  ds = load("census")
  h, k, eps = 8, 2, Fraction(1, 8)
  print(f"\njitted program vs host-side driver (benchmarks/reference_host_driver.py): "
        f"Census (race), average linkage (fairhc_jax.linkage), FairHC num_sorted={h} "
        f"num_folds={k} eps={eps}; warm medians of {repeat}, block_until_ready; "
        "compile = first call - warm")
  print(f"{'n':>6} {'algorithm':<24} {'driver':<10} {'warm s':>8} {'compile s':>9} {'old/new':>8}")
  for n in sizes:
    if n >= ds.colors.size:
      idx = np.arange(ds.colors.size)
    else:
      idx = datasets.proportional_subsample(jax.random.key(0), ds.colors, n)
    n = idx.size
    x, cols = prepare(ds, idx)
    d = pairwise_distances(x)
    t0 = time.perf_counter()
    tree = jax.block_until_ready(linkage(d, "average"))
    print(f"{n:6d} (average linkage: {time.perf_counter() - t0:.1f} s, first call)")
    del d
    algos = [
        ("rebalance_tree", lambda m: m.rebalance_tree(tree)),
        ("refine_rebalance_tree", lambda m: m.refine_rebalance_tree(tree, eps)),
        ("fair_hc", lambda m: (m.fair_hc(tree, cols, eps, num_sorted=h, num_folds=k)
                               if m is red else m.fair_hc(tree, cols, h=h, k=k, eps=eps))),
    ]
    for name, fn in algos:
      f_new, w_new, r_new = timed(lambda: fn(red).hierarchy.parent, repeat=repeat)
      f_old, w_old, r_old = timed(lambda: fn(old).hierarchy.parent, repeat=repeat)
      assert np.array_equal(np.asarray(r_new), np.asarray(r_old)), name
      print(f"{n:6d} {name:<24} {'jitted':<10} {w_new:8.3f} {f_new - w_new:9.3f} {w_old / w_new:8.2f}")
      print(f"{n:6d} {name:<24} {'host':<10} {w_old:8.3f} {f_old - w_old:9.3f}")
  # vmap over a batch of trees against a loop (same programs, same outputs)
  trees, colours = [], []
  for b in range(batch):
    idx = datasets.proportional_subsample(jax.random.key(100 + b), ds.colors, vmap_n)
    x, cols = prepare(ds, idx)
    trees.append(linkage(pairwise_distances(x), "average"))
    colours.append(cols)
  kern = jax.jit(jax.vmap(functools.partial(red.fair_hc_kernel, eps=(1, 8), num_sorted=h,
                                            num_folds=k, num_colors=2)))
  batch_h = hier.Hierarchy(parent=jnp.stack([t.parent for t in trees]))
  batch_c = jnp.asarray(np.stack(colours), jnp.int32)
  f_v, w_v, out = timed(lambda: kern(batch_h, batch_c).hierarchy.parent, repeat=repeat)
  loop_new = lambda: [red.fair_hc(t, c, eps, num_sorted=h, num_folds=k).hierarchy.parent
                      for t, c in zip(trees, colours)]
  loop_old = lambda: [old.fair_hc(t, c, h=h, k=k, eps=eps).hierarchy.parent
                      for t, c in zip(trees, colours)]
  f_l, w_l, outs = timed(loop_new, repeat=repeat)
  f_o, w_o, outs_old = timed(loop_old, repeat=repeat)
  for i in range(batch):
    assert np.array_equal(np.asarray(out[i]), np.asarray(outs[i]))
    assert np.array_equal(np.asarray(outs_old[i]), np.asarray(outs[i]))
  print(f"\nfair_hc on {batch} trees of n = {vmap_n} (Census samples):")
  print(f"  jax.vmap(fair_hc_kernel), one program: warm {w_v:.3f} s, compile {f_v - w_v:.3f} s")
  print(f"  loop of fair_hc (jitted):              warm {w_l:.3f} s")
  print(f"  loop of the host-side driver:          warm {w_o:.3f} s")


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--part", choices=["paper", "scale", "driver", "both"], default="both")
  p.add_argument("--reps", type=int, default=10)
  p.add_argument("--n", type=int, default=256)
  p.add_argument("--scale", type=int, nargs="*", default=[4096, 16384])
  p.add_argument("--driver-sizes", type=int, nargs="*", default=[4000, 30162])
  p.add_argument("--vmap-n", type=int, default=4000)
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--repeat", type=int, default=3)
  p.add_argument("--figure", default=None, help="write the colour-share histogram here")
  p.add_argument("--features", choices=["raw", "zscore"], default="raw",
                 help="raw numeric features (the papers) or z-scored")
  a = p.parse_args()
  global FEATURES
  FEATURES = a.features
  print(f"jax {jax.__version__}, backend {jax.default_backend()}, features {FEATURES}")
  if a.part in ("paper", "both"):
    paper_part(a.reps, a.n, SWEEP, a.figure)
  if a.part in ("scale", "both"):
    scale_part(a.scale, 8, 2, 1 / 8, a.repeat)
  if a.part in ("driver", "both"):
    driver_part(a.driver_sizes, a.repeat, a.vmap_n, a.batch)


if __name__ == "__main__":
  main()
