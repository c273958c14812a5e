"""Objectives and fairness report of SciPy's average-linkage tree on Census.

The papers' starting observation: plain average linkage builds clusters of a
single colour. This script takes a proportional sample of Census (Adult),
n = 1,600 by default, under the gender and the race colourings, builds
SciPy's average-linkage tree on the raw numeric features (Euclidean), and
prints its three objectives (with the upper bounds) and a fairness report:
single-colour clusters, the largest of them, and the clusters that break the
balance the papers ask for (CensusGender 1:3, CensusRace 1:7).

Usage::

    python benchmarks/census_average_linkage_report.py [--n 1600] [--seed 0]
        [--data-dir ../shared/data/uci]
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import numpy as np
from scipy.cluster.hierarchy import linkage as scipy_linkage
from scipy.spatial.distance import pdist, squareform

import fairhc_jax as fh

DEFAULT_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "uci"


def report(color: str, ratio: tuple[int, int], n: int, seed: int, data_dir) -> None:
  data = fh.datasets.load_census(color=color, data_dir=data_dir)
  idx = fh.datasets.proportional_subsample(jax.random.key(seed), data.colors, n)
  X, colors = data.features[idx], data.colors[idx]
  with jax.enable_x64(True):
    D = squareform(pdist(X))
    h = fh.from_linkage(scipy_linkage(pdist(X), method="average"))
    S = np.asarray(fh.similarity(D))
    cost = float(fh.dasgupta_cost(h, S))
    rev = float(fh.moseley_wang_revenue(h, S))
    val = float(fh.cohen_addad_value(h, D))
    rev_ub = float(fh.revenue_upper_bound(S))
    val_ub = float(fh.value_upper_bound(D))
  constraint = fh.Balance(*ratio)
  check = fh.check_fairness(h, colors, constraint)
  counts = np.asarray(fh.color_counts(h, colors, data.num_colors))
  sizes = counts.sum(1)
  internal = np.arange(counts.shape[0]) >= n
  mono = internal & (counts.max(1) == sizes)
  stats = fh.cluster_balance(h, colors, data.num_colors)
  names = data.color_names
  print(f"== Census, colour by {color} ({names[0]}:{names[1]} = "
        f"{np.bincount(colors)[0]}:{np.bincount(colors)[1]}), n = {n}, seed {seed}")
  print(f"  Dasgupta cost        {cost:.6g}")
  print(f"  Moseley-Wang revenue {rev:.6g}  ({100 * rev / rev_ub:.1f}% of the upper bound)")
  print(f"  Cohen-Addad value    {val:.6g}  ({100 * val / val_ub:.1f}% of the upper bound)")
  print(f"  internal clusters: {int(internal.sum())}; single-colour: {int(mono.sum())} "
        f"({100 * mono.sum() / internal.sum():.1f}%); largest single-colour cluster: "
        f"{int(sizes[mono].max()) if mono.any() else 0} points")
  for g, name in enumerate(names):
    only = mono & (counts[:, g] == sizes)
    print(f"    all-{name} clusters: {int(only.sum())}, largest {int(sizes[only].max()) if only.any() else 0}")
  print(f"  clusters breaking balance {ratio[0]}:{ratio[1]}: "
        f"{int(np.asarray(check.violating).sum())} of {int(internal.sum())}; "
        f"tree fair: {bool(check.is_fair)}; min balance {float(stats.min_balance):.3f}, "
        f"mean balance {float(stats.mean_balance):.3f}")
  print(fh.fairness_report(h, colors, constraint, max_nodes=3))
  print()


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--n", type=int, default=1600)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--data-dir", default=str(DEFAULT_DIR))
  args = parser.parse_args()
  report("gender", (1, 3), args.n, args.seed, args.data_dir)
  report("race", (1, 7), args.n, args.seed, args.data_dir)


if __name__ == "__main__":
  main()
