"""The ``fairhc`` command: the library's main examples from a shell.

``fairhc demo`` builds an average-linkage tree over synthetic coloured blobs,
prints its three objectives and its fairness report, then builds the fair
tree (fairlets + local search + average linkage, Ahmadian et al. 2020) and
prints the same for it. ``fairhc fairlets --data census --color gender``
runs the fair pipeline on a proportional sample of a real UCI data set.
Integer seeds live here, at the edge; the library takes explicit keys.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional, Sequence

import jax
import numpy as np


def _parse_ratio(text: str):
  try:
    b, r = (int(v) for v in text.split(":"))
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected b:r such as 1:3, got {text!r}")
  return b, r


def _tree_summary(name: str, h, D, S, colors, constraint, scope=None) -> list[str]:
  """Objectives and fairness of one tree, as printable lines.

  With ``scope`` (a fair pipeline's ``res.scope``), fairness is counted over
  the clusters the pipeline guarantees (for the fairlet tree: every cluster
  at or above the fairlets; a fairlet cannot be split fairly, so the clusters
  inside one are unfair by construction) and over all clusters.
  """
  from fairhc_jax import fairness, objectives
  cost = float(objectives.dasgupta_cost(h, S))
  rev = float(objectives.moseley_wang_revenue(h, S))
  val = float(objectives.cohen_addad_value(h, D))
  rev_ub = float(objectives.revenue_upper_bound(S))
  val_ub = float(objectives.value_upper_bound(D))
  everywhere = fairness.check_fairness(h, colors, constraint)
  stats = fairness.cluster_balance(h, colors)
  single = int((np.asarray(stats.balance) == 0).sum())
  lines = [
      f"{name}",
      f"  Dasgupta cost        {cost:14.6g}",
      f"  Moseley-Wang revenue {rev:14.6g}   ({100 * rev / rev_ub:5.1f}% of its upper bound)",
      f"  Cohen-Addad value    {val:14.6g}   ({100 * val / val_ub:5.1f}% of its upper bound)",
      f"  {int(np.asarray(everywhere.violating).sum())} of all clusters break {constraint},"
      f" {single} are single-coloured",
  ]
  if scope is not None:
    own = fairness.check_fairness(h, colors, constraint, scope=scope)
    checked = int(np.asarray(own.checked).sum())
    lines.append(f"  in the tree's own scope (at and above the fairlets: {checked} clusters):"
                 f" {int(np.asarray(own.violating).sum())} break {constraint}")
  return lines


def _run_pair(X, colors, ratio, seed: int, out=sys.stdout) -> None:
  """Average linkage vs the fair tree on one data set, printed to ``out``."""
  from fairhc_jax import distances, fairness
  from fairhc_jax.agglomerative import linkage
  from fairhc_jax.algorithms import fairlet_hc

  b, r = ratio
  constraint = fairness.Balance(b, r)
  t0 = time.perf_counter()
  D = distances.pairwise_distances(X)
  S = distances.similarity(D)
  h_avg = linkage(D, method="average")
  jax.block_until_ready(h_avg.parent)
  t1 = time.perf_counter()
  res = fairlet_hc.fair_hierarchical_clustering(
      jax.random.key(seed), D, colors, constraint=constraint, metric="precomputed")
  jax.block_until_ready(res.hierarchy.parent)
  t2 = time.perf_counter()
  print("\n".join(_tree_summary(f"average linkage ({t1 - t0:.2f} s)", h_avg, D, S,
                                colors, constraint)), file=out)
  print("\n".join(_tree_summary(f"fair tree: fairlets + local search + average linkage "
                                f"({t2 - t1:.2f} s)", res.hierarchy, D, S, colors,
                                constraint, scope=res.scope)), file=out)
  print(f"  fairlets: {res.stats.num_fairlets}, swaps {res.stats.swaps}, "
        f"ratio_fairlets {res.stats.ratio_fairlets_before:.3g} -> "
        f"{res.stats.ratio_fairlets_after:.3g}", file=out)
  print("\nFairness report of the average-linkage tree:", file=out)
  print(fairness.fairness_report(h_avg, colors, constraint, max_nodes=5), file=out)


def _demo(args) -> int:
  from fairhc_jax import datasets
  data = datasets.synthetic_blobs(jax.random.key(args.seed), args.n, 2,
                                  proportions=(1, 2), purity=0.9)
  counts = np.bincount(data.colors, minlength=2)
  print(f"synthetic coloured blobs: n = {args.n}, colour counts {counts.tolist()}, "
        f"target balance {args.balance[0]}:{args.balance[1]}\n")
  _run_pair(data.features, data.colors, args.balance, args.seed)
  return 0


class UserError(Exception):
  """A problem with the command line or the data the user pointed at (exit code 2)."""


def _load(args):
  """The data set named on the command line, with the CLI's advice when it is missing."""
  from fairhc_jax import datasets
  try:
    return datasets.load(args.data, args.color, data_dir=args.data_dir)
  except OSError as e:
    # FileNotFoundError (not in the folder or cache, or never downloaded) and
    # failed downloads (offline) are OSErrors. (A checksum mismatch is a
    # ValueError whose message already says what to do.)
    name = {"census": "adult.data", "bank": "bank-full.csv",
            "credit_card": "UCI_Credit_Card.csv"}[args.data]
    hint = (f"put {name} in a folder and pass --data-dir FOLDER (or set "
            f"{datasets.DATA_DIR_ENV}=FOLDER)")
    if args.data != "credit_card":
      hint += (f"; without --data-dir the file is downloaded from the UCI repository "
               f"into {datasets.default_cache_dir()} and checked against its SHA-256, "
               "which needs a network connection")
    raise UserError(f"{e}\nfairhc: how to fix: {hint}") from e


def _fairlets(args) -> int:
  from fairhc_jax import datasets
  data = _load(args)
  if args.n > len(data.colors):
    raise UserError(f"--n must be at most the {len(data.colors)} rows of {data.name}, "
                    f"got {args.n}")
  idx = datasets.proportional_subsample(jax.random.key(args.seed), data.colors, args.n)
  X, colors = data.features[idx], data.colors[idx]
  counts = np.bincount(colors, minlength=data.num_colors)
  print(f"{data.name}: sample of n = {args.n} (colour counts {counts.tolist()}), "
        f"target balance {args.balance[0]}:{args.balance[1]}\n")
  _run_pair(X, colors, args.balance, args.seed)
  return 0


def _positive_int(text: str) -> int:
  try:
    v = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
  if v < 2:
    raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {v}")
  return v


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Runs the command; user errors print one message to stderr and return 2.

  Set ``FAIRHC_DEBUG=1`` to see the Python traceback of such errors.
  """
  try:
    return _main(argv)
  except (UserError, ValueError, TypeError, OSError) as e:
    if os.environ.get("FAIRHC_DEBUG"):
      raise
    print(f"fairhc: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("fairhc: interrupted", file=sys.stderr)
    return 130


def _main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog="fairhc", description="Fair hierarchical clustering with JAX.",
      epilog="Real data: fairhc fairlets --data census (downloads adult.data from "
             "the UCI repository on first use, with its SHA-256 checked; or give "
             "--data-dir FOLDER / FAIRHC_DATA_DIR).")
  sub = parser.add_subparsers(dest="command")
  demo = sub.add_parser("demo", help="average linkage vs the fair tree on synthetic blobs")
  demo.add_argument("--n", type=_positive_int, default=1200,
                    help="number of points (default 1200)")
  demo.add_argument("--seed", type=int, default=0)
  demo.add_argument("--balance", type=_parse_ratio, default=(1, 3),
                    help="target balance b:r (default 1:3)")
  demo.set_defaults(run=_demo)
  fl = sub.add_parser("fairlets", help="the fair pipeline on a UCI data set sample")
  fl.add_argument("--data", choices=("census", "bank", "credit_card"), default="census")
  fl.add_argument("--color", default=None,
                  help="census: gender|race; bank: marital|age; credit_card: "
                       "sex|education|marriage (default: the first)")
  fl.add_argument("--n", type=_positive_int, default=1600)
  fl.add_argument("--balance", type=_parse_ratio, default=(1, 3))
  fl.add_argument("--seed", type=int, default=0)
  fl.add_argument("--data-dir", default=None,
                  help="folder with the UCI files (default: $FAIRHC_DATA_DIR, else "
                       "download into the cache with a checksum)")
  fl.set_defaults(run=_fairlets)
  args = parser.parse_args(argv)
  if args.command is None:
    args = parser.parse_args(["demo"] + list(argv or []))
  return args.run(args)


if __name__ == "__main__":
  sys.exit(main())
