"""The ``fairhc`` command: fair hierarchical clustering of a user's own table.

Subcommands (``fairhc <command> --help`` shows each one's flags and an example):

* ``linkage``: plain agglomerative clustering (a baseline to audit);
* ``fairlets``: the Ahmadian et al. (2020) fair tree (fairlets, local search,
  average linkage);
* ``reduce``: the Knittel et al. (2023) reductions over a linkage tree
  (``fair_hc``, ``stochastic``, ``rebalance``, ``refine``);
* ``fhac`` / ``fphac``: Chhabra & Mohapatra's fair agglomerative clustering
  (tuned by the surrogate search unless a schedule is given) and its repair of
  any tree;
* ``audit``: the fairness of a saved ``tree.npz`` on a table, and with
  per-point group probabilities the probability of fairness under random
  groups;
* ``demo``: average linkage against the fair tree on synthetic blobs.

Input: ``--csv PATH --group COLUMN [--features a,b,c]`` (a header row; group
labels may be strings or integers; colour ``g`` is the ``g``-th of the sorted
distinct labels, recorded in ``report.json``) or ``--data census|bank|credit
[--color ...]``. Output: ``--out DIR`` writes ``tree.npz`` and ``report.json``
(and ``dendrogram.png`` with ``--plot``); see :mod:`fairhc_jax.cli.output`.
Every mistake in a flag or a file is one line naming it on stderr and exit
code 2 (``FAIRHC_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from fairhc_jax.cli.commands import USER_ERRORS, UserError

__all__ = ["main", "build_parser", "UserError"]


def _ratio(text: str) -> str:
  try:
    b, r = (int(v) for v in text.split(":"))
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected b:r such as 1:3, got {text!r}")
  if b < 1 or r < b:
    raise argparse.ArgumentTypeError(f"expected 1 <= b <= r, got {text!r}")
  return f"{b}:{r}"


def _int_at_least(minimum: int):
  def parse(text: str) -> int:
    try:
      v = int(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    if v < minimum:
      raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {v}")
    return v
  return parse


def _nonneg_float(text: str) -> float:
  try:
    v = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
  if not v >= 0:
    raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
  return v


EXAMPLES = {
    "linkage": "fairhc linkage --csv people.csv --group sex --method average --out runs/avg",
    "fairlets": "fairhc fairlets --csv people.csv --group sex --constraint balance:1:3 "
                "--out runs/fair --plot",
    "reduce": "fairhc reduce --csv people.csv --group sex --reduction fair_hc --eps 1/8 "
              "--num-sorted 8 --num-folds 2 --out runs/knittel",
    "fhac": "fairhc fhac --data bank --color marital --n 120 --k 4 --budget 200 --out runs/fhac",
    "fphac": "fairhc fphac --csv people.csv --group sex --k 4 --method average --out runs/fphac",
    "audit": "fairhc audit --tree runs/avg/tree.npz --csv people.csv --group sex "
             "--scope 50 --probs observed --samples 1000",
    "demo": "fairhc demo --n 1200 --balance 1:3",
}


def _input_args(p: argparse.ArgumentParser, *, tree: bool = False) -> None:
  g = p.add_argument_group("input (a CSV table, or a built-in UCI data set)")
  g.add_argument("--csv", metavar="PATH", help="a CSV file with a header row")
  g.add_argument("--features", metavar="A,B,C",
                 help="feature columns (default: every numeric column except the group)")
  g.add_argument("--group", metavar="COLUMN",
                 help="the column of group labels (strings or integers)")
  g.add_argument("--data", choices=("census", "bank", "credit", "credit_card"),
                 help="a built-in UCI data set (downloaded with a checksum, or --data-dir)")
  g.add_argument("--color", default=None,
                 help="the group of --data: census gender|race; bank marital|age; credit "
                      "sex|education|marriage (default: the first)")
  g.add_argument("--data-dir", metavar="FOLDER", default=None,
                 help="folder with the UCI files (default: $FAIRHC_DATA_DIR, else download)")
  g.add_argument("--n", type=_int_at_least(2), default=None,
                 help="a proportional random sample of N rows (default: every CSV row; "
                      "--data: 1600, fhac: 120)")
  g.add_argument("--seed", type=int, default=0, help="seed of the sample and the algorithm")
  g.add_argument("--standardize", action="store_true",
                 help="z-score each feature before computing distances (default: raw values)")
  o = p.add_argument_group("output")
  o.add_argument("--out", metavar="DIR", help="write tree.npz and report.json into DIR")
  o.add_argument("--plot", action="store_true", help="also write DIR/dendrogram.png")
  o.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                 help="progress bar over the phases (auto: on a terminal or in a notebook)")
  o.add_argument("--k", type=_int_at_least(1), default=4,
                 help="the level whose fairness cost FC is reported (default 4)")
  if tree:
    p.add_argument("--tree", metavar="TREE.NPZ", default=None,
                   help="start from this tree (default: a linkage tree of the input)")


def build_parser() -> argparse.ArgumentParser:
  """The ``fairhc`` argument parser (subcommands with an example each)."""
  fmt = argparse.RawDescriptionHelpFormatter
  parser = argparse.ArgumentParser(
      prog="fairhc", formatter_class=fmt,
      description="Fair hierarchical clustering with JAX, on your own CSV or a UCI data set.",
      epilog="examples:\n" + "\n".join(f"  {v}" for v in EXAMPLES.values())
             + "\n\nfairhc COMMAND --help shows the flags of each command.")
  sub = parser.add_subparsers(dest="command", metavar="COMMAND")

  def add(name, help_text):
    p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=fmt,
                       epilog=f"example:\n  {EXAMPLES[name]}")
    return p

  methods = ("average", "single", "complete", "weighted", "ward")
  p = add("linkage", "plain agglomerative clustering (a baseline tree)")
  _input_args(p)
  p.add_argument("--method", choices=methods, default="average")
  p.add_argument("--constraint", default=None,
                 help="check this fairness target: balance:B:R, bounded:A, proportional:A")
  p.add_argument("--scope", type=_int_at_least(2), default=None,
                 help="check only clusters of at least this many points")
  p.set_defaults(run="run_linkage")

  p = add("fairlets", "the Ahmadian et al. fair tree: fairlets + local search + average linkage")
  _input_args(p)
  p.add_argument("--constraint", default=None,
                 help="balance:B:R (two groups, default balance:1:3) or bounded:A (any "
                      "number of groups, e.g. bounded:1/4)")
  p.add_argument("--balance", type=_ratio, default=None, help="shorthand for balance:B:R")
  p.add_argument("--schedule", choices=("fast", "random"), default="fast",
                 help="local search schedule (default fast)")
  p.add_argument("--eps", type=_nonneg_float, default=0.1,
                 help="a swap is kept if it lowers the objective by a factor (1 + eps/n)")
  p.add_argument("--max-steps", type=_int_at_least(0), default=None,
                 help="cap on local search steps")
  p.add_argument("--start", choices=("random", "projection"), default="random",
                 help="the local search's starting decomposition: random (the paper's, "
                      "default) or projection (points placed in fairlets by a 1-D "
                      "projection: fewer swaps on large sets)")
  p.set_defaults(run="run_fairlets")

  p = add("reduce", "the Knittel et al. reductions of a linkage tree")
  _input_args(p, tree=True)
  p.add_argument("--reduction", choices=("fair_hc", "stochastic", "rebalance", "refine"),
                 default="fair_hc")
  p.add_argument("--method", choices=methods, default="average",
                 help="linkage of the input tree (without --tree)")
  p.add_argument("--eps", default=None, help="the reduction's epsilon, e.g. 1/8")
  p.add_argument("--num-sorted", type=_int_at_least(2), default=None,
                 help="fair_hc: children sorted per fold (a power of two)")
  p.add_argument("--num-folds", type=_int_at_least(2), default=None,
                 help="fair_hc: folds per node (a power of two)")
  p.add_argument("--min-cluster-size", type=_int_at_least(1), default=None)
  p.add_argument("--constraint", default=None,
                 help="target to check when the reduction carries none (rebalance, refine)")
  p.set_defaults(run="run_reduce", scope=None)

  p = add("fhac", "Chhabra & Mohapatra FHAC, its schedule tuned unless given")
  _input_args(p)
  p.add_argument("--method", choices=methods, default="average")
  p.add_argument("--rule", choices=("literal", "vectorized"), default="literal")
  for f in ("alpha0", "theta1", "beta0", "theta2"):
    p.add_argument(f"--{f}", type=_nonneg_float, default=None,
                   help="schedule parameter (all four omitted: tune them)")
  p.add_argument("--tune", action="store_true", help="tune the schedule (the default)")
  p.add_argument("--cost", choices=("fc", "hfc"), default="fc", help="what the search minimises")
  p.add_argument("--budget", type=_int_at_least(2), default=200, help="search evaluations")
  p.add_argument("--batch", type=_int_at_least(1), default=20, help="evaluations per round")
  p.add_argument("--constraint", default=None, help="also check this fairness target")
  p.add_argument("--scope", type=_int_at_least(2), default=None)
  p.set_defaults(run="run_fhac")

  p = add("fphac", "Chhabra & Mohapatra FP-HAC: repair the top k clusters of a tree")
  _input_args(p, tree=True)
  p.add_argument("--method", choices=methods, default="average",
                 help="linkage of the input tree and of D in the exchange rule")
  p.add_argument("--mode", choices=("levels", "leaves"), default="levels")
  p.add_argument("--eps", type=_nonneg_float, default=None,
                 help="distance tolerance of an exchange (default: infinite)")
  p.add_argument("--alpha", type=_nonneg_float, default=None,
                 help="stop once every top cluster is within alpha of the data's shares")
  p.add_argument("--constraint", default=None, help="also check this fairness target")
  p.add_argument("--scope", type=_int_at_least(2), default=None)
  p.set_defaults(run="run_fphac")

  p = add("audit", "fairness of a saved tree on a table (and under random groups)")
  _input_args(p)
  p.add_argument("--tree", metavar="TREE.NPZ", required=True,
                 help="a tree.npz written by fairhc --out (one leaf per row)")
  p.add_argument("--constraint", default=None,
                 help="balance:B:R (default balance:1:3 for two groups), bounded:A, "
                      "proportional:A")
  p.add_argument("--scope", type=_int_at_least(2), default=None,
                 help="check only clusters of at least this many points")
  p.add_argument("--probs", default=None, metavar="observed|COL,COL",
                 help="also estimate P(fair) with random groups: 'observed' (the data's "
                      "shares for every point) or one CSV column of probabilities per label, "
                      "in sorted label order")
  p.add_argument("--samples", type=_int_at_least(1), default=1000,
                 help="random colourings for --probs")
  p.add_argument("--verbose", action="store_true", help="print the full fairness report")
  p.set_defaults(run="run_audit")

  p = add("demo", "average linkage vs the fair tree on synthetic blobs")
  p.add_argument("--n", type=_int_at_least(2), default=1200, help="number of points (default 1200)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--balance", type=_ratio, default="1:3", help="target balance b:r (default 1:3)")
  p.set_defaults(run="run_demo")
  return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Runs the command; user errors print one message to stderr and return 2.

  Set ``FAIRHC_DEBUG=1`` to see the Python traceback of such errors.
  """
  try:
    return _main(argv)
  except USER_ERRORS + (ValueError, TypeError, OSError) as e:
    if os.environ.get("FAIRHC_DEBUG"):
      raise
    print(f"fairhc: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("fairhc: interrupted", file=sys.stderr)
    return 130


def _main(argv: Optional[Sequence[str]] = None) -> int:
  from fairhc_jax.cli import commands
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
    argv = ["demo"] + argv  # bare ``fairhc`` (or ``fairhc --n 500``) runs the demo
  args = parser.parse_args(argv)
  args.argv = argv
  return getattr(commands, args.run)(args)


if __name__ == "__main__":
  sys.exit(main())
