"""Which ``inner`` should the fairlet tree default to? Both, measured.

On proportional samples of Census (gender, Balance(1, 3)) and Bank
(marital, Balance(1, 2)), the pipeline runs once (fast schedule) and the
fair tree is built on the same searched fairlets both ways:
``inner="linkage"`` (the paper's average-linkage subtree in each fairlet)
and ``inner="flat"`` (one node per fairlet). Reported, as means over the
samples: Dasgupta cost on the similarity ``1 / (1 + d)`` (lower is better)
and Cohen-Addad value on the distances (higher is better), each over plain
average linkage's; the share of internal nodes that the default scope
(every internal node) finds fair; and the number of nodes whose raw height
is below one of its children's (non-monotone nodes).

Usage:
  python benchmarks/fairlet_inner_compare.py                 # n = 3200, 3 samples
  python benchmarks/fairlet_inner_compare.py --n 1600 --samples 2
"""

from __future__ import annotations

import argparse
import os
import pathlib

import jax
import numpy as np

from fairhc_jax import datasets
from fairhc_jax.agglomerative import linkage
from fairhc_jax.algorithms import fairlet_hc as fhc
from fairhc_jax.distances import similarity
from fairhc_jax.fairlets import Decomposition
from fairhc_jax.fairness import Balance
from fairhc_jax.objectives import cohen_addad_value, dasgupta_cost

DATA_DIR = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "uci"
SETS = {"census-gender": ("census", "gender", Balance(1, 3)),
        "bank-marriage": ("bank", "marital", Balance(1, 2))}


def fair_share(parent, colors, b, r):
  """Share of used internal nodes with balance >= b/r (NumPy, exact ints)."""
  parent = np.asarray(parent)
  n = len(colors)
  m = len(parent)
  counts = np.zeros((m, 2), np.int64)
  counts[np.arange(n), colors] = 1
  # Children have smaller ids than parents in these trees: one pass.
  for u in range(m):
    if parent[u] >= 0:
      counts[parent[u]] += counts[u]
  internal = np.zeros(m, bool)
  internal[parent[parent >= 0]] = True
  c = counts[internal]
  ok = c.min(1) * r >= c.max(1) * b
  return ok.mean()


def non_monotone(parent, height):
  parent, height = np.asarray(parent), np.asarray(height)
  kids = np.flatnonzero(parent >= 0)
  bad = height[parent[kids]] < height[kids]
  return int(len(np.unique(parent[kids][bad])))


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--n", type=int, default=3200)
  p.add_argument("--samples", type=int, default=3)
  args = p.parse_args()
  data_dir = os.environ.get("FAIRHC_DATA_DIR", str(DATA_DIR))
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, n = {args.n}, "
        f"{args.samples} samples, fast schedule, float32")
  print(f"{'data':<14} {'inner':<8} {'cost/avg':>9} {'value/avg':>9} "
        f"{'fair nodes':>10} {'non-monotone':>12}")
  for name, (loader, color, constraint) in SETS.items():
    load = datasets.load_census if loader == "census" else datasets.load_bank
    ds = load(color=color, data_dir=data_dir, download=False)
    rows = {"linkage": [], "flat": []}
    for s in range(args.samples):
      idx = np.asarray(datasets.proportional_subsample(jax.random.key(s), ds.colors, args.n))
      X = np.asarray(ds.features[idx], np.float32)
      colors = np.asarray(ds.colors[idx], np.int32)
      res = fhc.fair_hierarchical_clustering(jax.random.key(100 + s), X, colors,
                                             constraint=constraint, progress=False)
      D = res.distances
      S = similarity(D)
      avg = linkage(D, "average")
      cost_avg = float(dasgupta_cost(avg, S))
      val_avg = float(cohen_addad_value(avg, D))
      dec = Decomposition(fairlet_of=res.fairlets, num_fairlets=res.stats.num_fairlets,
                          max_size=res.stats.max_fairlet_size)
      for inner in rows:
        h = res.hierarchy if inner == "linkage" else fhc.fairlet_tree(D, dec, inner="flat")
        rows[inner].append((float(dasgupta_cost(h, S)) / cost_avg,
                            float(cohen_addad_value(h, D)) / val_avg,
                            fair_share(h.parent, colors, constraint.b, constraint.r),
                            non_monotone(h.parent, h.height)))
    for inner, vals in rows.items():
      m = np.mean(np.array(vals, np.float64), 0)
      print(f"{name:<14} {inner:<8} {m[0]:>9.4f} {m[1]:>9.4f} {m[2]:>10.1%} {m[3]:>12.1f}",
            flush=True)


if __name__ == "__main__":
  main()
