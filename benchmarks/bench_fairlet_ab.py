"""Local search and fair tree alone, warm: for before/after comparisons.

Times ``run_local_search`` (or the old ``local_search`` runner, whichever
the imported package has) and the fair-tree kernel on a proportional
Census sample (gender, Balance(1, 3)), compile excluded (one warm-up call),
best of ``--reps``. Run it once per checkout, alternating, e.g.

  for d in /tmp/before /work/wt-fairlets; do
    (cd $d && PYTHONPATH=$d python /work/wt-fairlets/benchmarks/bench_fairlet_ab.py --n 3200)
  done
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

import jax
import numpy as np

import fairhc_jax
from fairhc_jax import datasets, fairlets
from fairhc_jax.algorithms import fairlet_hc as fhc
from fairhc_jax.distances import pairwise_distances

DATA_DIR = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "uci"


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--n", type=int, default=3200)
  p.add_argument("--reps", type=int, default=3)
  p.add_argument("--schedule", default="fast")
  args = p.parse_args()
  ds = datasets.load_census(color="gender", download=False,
                            data_dir=os.environ.get("FAIRHC_DATA_DIR", str(DATA_DIR)))
  idx = np.asarray(datasets.proportional_subsample(jax.random.key(0), ds.colors, args.n))
  X = np.asarray(ds.features[idx], np.float32)
  colors = np.asarray(ds.colors[idx], np.int32)
  D = jax.block_until_ready(pairwise_distances(X))
  dec = fairlets.balance_decomposition(jax.random.key(1), colors, (1, 3))
  new = hasattr(fairlets, "run_local_search")
  runner = fairlets.run_local_search if new else fairlets.local_search

  def search():
    st = runner(jax.random.key(2), D, colors, dec, schedule=args.schedule, progress=False)
    return jax.block_until_ready(st.fairlet_of), int(st.swaps)

  def tree(f):
    return jax.block_until_ready(fhc._fairlet_tree_kernel(
        D, f, dec.num_fairlets, dec.max_size, "linkage").parent)

  t = time.perf_counter()
  f, swaps = search()
  tree(f)
  compile_s = time.perf_counter() - t
  ts, tt = [], []
  for _ in range(args.reps):
    t = time.perf_counter()
    search()
    ts.append(time.perf_counter() - t)
    t = time.perf_counter()
    tree(f)
    tt.append(time.perf_counter() - t)
  print(f"{'after ' if new else 'before'} {fairhc_jax.__file__.split('/fairhc_jax')[0]:<22} "
        f"n={args.n} {args.schedule}: swaps {swaps}, search {min(ts):.3f} s, "
        f"tree {min(tt):.3f} s (best of {args.reps}), first call {compile_s:.1f} s", flush=True)


if __name__ == "__main__":
  main()
