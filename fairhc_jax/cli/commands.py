"""The ``fairhc`` subcommands: each builds (or reads) a tree, reports on it, writes ``--out``.

Every command follows the same path: read the input (``--csv`` or
``--data``), check ``--out`` before any work, run its phases (timed, with a
progress bar on a terminal or in a notebook), print a summary, and with
``--out DIR`` write ``tree.npz``, ``report.json`` (and ``dendrogram.png``
with ``--plot``). Integer seeds live here, at the edge; the library takes
explicit keys.
"""

from __future__ import annotations

import hashlib
import math
import pathlib
import platform
import sys
from fractions import Fraction
from typing import Optional

import jax
import numpy as np

from fairhc_jax.cli.output import OutError, Phases, prepare_out, read_tree, write_dendrogram
from fairhc_jax.cli.output import write_report, write_tree
from fairhc_jax.cli.table import Table, TableError, read_table


class UserError(Exception):
  """A problem with the command line or the data the user pointed at (exit code 2)."""


USER_ERRORS = (UserError, TableError, OutError)

DATA_FILES = {"census": "adult.data", "bank": "bank-full.csv",
              "credit_card": "UCI_Credit_Card.csv"}


# ----------------------------------------------------------------------------- input


class Input:
  """The points, groups and provenance of one run."""

  def __init__(self, X, colors, labels, feature_names, meta, rows, probs=None):
    self.X, self.colors, self.labels = X, colors, labels
    self.feature_names, self.meta, self.rows, self.probs = feature_names, meta, rows, probs

  @property
  def n(self) -> int:
    return int(self.colors.shape[0])


def _sha256(path) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def _load_builtin(args):
  from fairhc_jax import datasets
  name = "credit_card" if args.data in ("credit", "credit_card") else args.data
  try:
    return datasets.load(name, args.color, data_dir=args.data_dir)
  except OSError as e:
    # FileNotFoundError (not in the folder or cache, or never downloaded) and
    # failed downloads (offline) are OSErrors. (A checksum mismatch is a
    # ValueError whose message already says what to do.)
    hint = (f"put {DATA_FILES[name]} in a folder and pass --data-dir FOLDER (or set "
            f"{datasets.DATA_DIR_ENV}=FOLDER)")
    if name != "credit_card":
      hint += (f"; without --data-dir the file is downloaded from the UCI repository "
               f"into {datasets.default_cache_dir()} and checked against its SHA-256, "
               "which needs a network connection")
    raise UserError(f"{e}\nfairhc: how to fix: {hint}") from e


def load_input(args, *, default_n: Optional[int] = None, probs=None) -> Input:
  """``--csv`` (all rows unless ``--n``) or ``--data`` (a proportional sample of ``--n``)."""
  from fairhc_jax import datasets
  if args.csv is not None and args.data is not None:
    raise UserError("give either --csv PATH or --data NAME, not both")
  if args.csv is None and args.data is None:
    raise UserError("give the points: --csv PATH --group COLUMN (your own table) or "
                    "--data census|bank|credit")
  if args.csv is not None:
    if args.group is None:
      raise UserError(f"--csv {args.csv}: --group COLUMN is required (the column holding "
                      "each row's group)")
    if args.color is not None:
      raise UserError("--color chooses the group of a built-in --data set; with --csv use "
                      "--group COLUMN")
    features = None if args.features is None else [c.strip() for c in args.features.split(",")]
    t: Table = read_table(args.csv, features, args.group, probs)
    X, colors, labels, names, P = t.features, t.colors, t.labels, t.feature_names, t.probs
    meta = {"source": "csv", "path": str(pathlib.Path(args.csv).resolve()),
            "sha256": _sha256(args.csv), "file_rows": int(colors.shape[0]),
            "group": t.group, "features": names}
    n = args.n
  else:
    if args.features is not None or args.group is not None:
      raise UserError("--features and --group describe a --csv table; with --data use "
                      "--color to choose the group")
    data = _load_builtin(args)
    X, colors, names = data.features, data.colors, list(data.feature_names)
    labels = list(data.color_names)
    P = None
    meta = {"source": "data", "name": data.name, "file_rows": int(colors.shape[0]),
            "group": args.color or data.name.split("-", 1)[-1], "features": names}
    n = args.n if args.n is not None else default_n
  file_rows = int(colors.shape[0])
  if n is not None and n < file_rows:
    rows = np.sort(datasets.proportional_subsample(jax.random.key(args.seed), colors, n))
    meta["subsample"] = {"n": int(n), "seed": int(args.seed), "rule": "proportional"}
  elif n is not None and n > file_rows:
    raise UserError(f"--n must be at most the {file_rows} rows of the input, got {n}")
  else:
    rows = np.arange(file_rows)
  X = np.asarray(X, np.float64)[rows]
  colors = np.asarray(colors, np.int32)[rows]
  if P is not None:
    P = P[rows]
  present = np.bincount(colors, minlength=len(labels))
  if (present > 0).sum() < 2:
    raise UserError(f"the {len(rows)} rows used hold only one group; fairness needs two")
  if getattr(args, "standardize", False):
    sd = X.std(0)
    X = (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)
  meta["n"] = int(len(rows))
  meta["standardized"] = bool(getattr(args, "standardize", False))
  return Input(X.astype(np.float32), colors, labels, names, meta, rows, P)


def groups_summary(inp: Input) -> dict:
  counts = np.bincount(inp.colors, minlength=len(inp.labels))
  return {"labels": [_plain(v) for v in inp.labels],
          "colour_of_label": "index in the sorted labels",
          "counts": counts.tolist(), "shares": (counts / counts.sum()).tolist()}


def _plain(v):
  return v.item() if isinstance(v, np.generic) else v


# ----------------------------------------------------------------------------- constraints


def parse_constraint(text: Optional[str], flag: str = "--constraint"):
  """``balance:b:r`` (or ``b:r``), ``bounded:1/4``, ``proportional:0.1`` -> a constraint."""
  from fairhc_jax import fairness
  if text is None:
    return None
  t = text.strip().lower()
  try:
    if t.startswith("balance:") or (t.count(":") == 1 and not t.startswith(("bounded", "prop"))):
      b, r = (int(v) for v in t.split(":")[-2:])
      return fairness.Balance(b, r)
    kind, _, value = t.partition(":")
    if kind in ("bounded", "bounded_representation"):
      return fairness.BoundedRepresentation(Fraction(value))
    if kind in ("proportional", "prop"):
      return fairness.Proportional(Fraction(value))
  except (ValueError, ZeroDivisionError) as e:
    raise UserError(f"{flag} must be balance:B:R, bounded:A or proportional:A "
                    f"(e.g. balance:1:3, bounded:1/4), got {text!r} ({e})") from e
  raise UserError(f"{flag} must be balance:B:R, bounded:A or proportional:A "
                  f"(e.g. balance:1:3, bounded:1/4), got {text!r}")


def _scope_text(scope) -> str:
  if scope is None:
    return "every internal node"
  if isinstance(scope, int):
    return f"clusters of at least {scope} points"
  parts = [f"clusters of at least {scope.min_size} points"]
  if scope.blocks is not None:
    parts.append(f"unions of whole blocks ({int(np.unique(np.asarray(scope.blocks)).size)} blocks)")
  return ", ".join(parts)


def fairness_stats(h, colors, constraint, scope, num_colors: int, *, k: Optional[int] = None,
                   max_nodes: int = 20) -> dict:
  """The fairness section of a report (verdicts, balance statistics, FC/HFC)."""
  from fairhc_jax import fairness
  out = {}
  if constraint is not None:
    chk = fairness.check_fairness(h, colors, constraint, scope=scope, num_colors=num_colors)
    out.update({
        "constraint": str(constraint), "scope": _scope_text(scope),
        "is_fair": bool(chk.is_fair),
        "checked_clusters": int(np.asarray(chk.checked).sum()),
        "violating_clusters": int(np.asarray(chk.violating).sum()),
        "report": fairness.fairness_report(h, colors, constraint, scope=scope,
                                           num_colors=num_colors, max_nodes=max_nodes),
    })
    if scope is not None:
      every = fairness.check_fairness(h, colors, constraint, num_colors=num_colors)
      out["all_clusters"] = {"checked_clusters": int(np.asarray(every.checked).sum()),
                             "violating_clusters": int(np.asarray(every.violating).sum())}
  st = fairness.cluster_balance(h, colors, num_colors, scope=scope)
  out["balance"] = {"min": _num(st.min_balance), "mean": _num(st.mean_balance),
                    "min_share": np.asarray(st.min_share, np.float64).tolist(),
                    "max_share": np.asarray(st.max_share, np.float64).tolist(),
                    "over": _scope_text(scope)}
  out["hfc"] = _num(fairness.hierarchical_fairness_cost(h, colors, num_colors))
  if k is not None:
    out["fc"] = {"k": int(k), "value": _num(fairness.fairness_cost(h, colors, k, num_colors))}
  return out


def _num(x) -> Optional[float]:
  v = float(np.asarray(x))
  return None if math.isnan(v) else v


def objectives(h, D, S) -> dict:
  from fairhc_jax import objectives as obj
  return {"dasgupta_cost": float(obj.dasgupta_cost(h, S)),
          "moseley_wang_revenue": float(obj.moseley_wang_revenue(h, S)),
          "revenue_upper_bound": float(obj.revenue_upper_bound(S)),
          "cohen_addad_value": float(obj.cohen_addad_value(h, D)),
          "value_upper_bound": float(obj.value_upper_bound(D))}


def versions() -> dict:
  import fairhc_jax
  out = {"fairhc_jax": fairhc_jax.__version__, "jax": jax.__version__,
         "numpy": np.__version__, "python": platform.python_version(),
         "platform": platform.platform(), "backend": jax.default_backend(),
         "devices": [str(d) for d in jax.devices()],
         "x64": bool(jax.config.jax_enable_x64)}
  try:
    import jaxlib
    out["jaxlib"] = jaxlib.__version__
  except (ImportError, AttributeError):  # pragma: no cover
    pass
  return out


def base_report(command: str, args, inp: Input, parameters: dict) -> dict:
  """The fields of ``report.json`` every command writes.

  ``command``, ``argv``; ``input`` (source, path and SHA-256 or data set name,
  rows used, features, group column, subsample); ``groups`` (sorted labels,
  colour ``g`` is ``labels[g]``, counts, shares); ``parameters``; then the
  command adds ``objectives`` (Dasgupta cost, Moseley-Wang revenue,
  Cohen-Addad value and their upper bounds), ``fairness`` (constraint,
  scope, verdict, checked and violating clusters, the text of
  :func:`fairhc_jax.fairness_report`, balance statistics, HFC, FC at ``k``),
  ``phase_seconds`` and ``versions``.
  """
  return {"command": command, "argv": list(args.argv), "input": inp.meta,
          "groups": groups_summary(inp), "parameters": parameters}


def finish(args, report: dict, h, inp: Input, phases: Phases, out_dir, title: str) -> int:
  """Prints the summary, writes ``--out`` (and ``--plot``)."""
  report["versions"] = versions()
  src = inp.meta.get("name") or inp.meta.get("path")
  lines = [title, f"  {src}: n = {inp.n}, groups {dict(zip(map(str, inp.labels), report['groups']['counts']))}"]
  ob = report.get("objectives")
  if ob:
    lines.append(f"  Dasgupta cost {ob['dasgupta_cost']:.6g}, Cohen-Addad value "
                 f"{ob['cohen_addad_value']:.6g} "
                 f"({100 * ob['cohen_addad_value'] / ob['value_upper_bound']:.1f}% of its bound)")
  fa = report.get("fairness", {})
  if "constraint" in fa:
    lines.append(f"  fairness ({fa['constraint']}, {fa['scope']}): "
                 f"{fa['violating_clusters']} of {fa['checked_clusters']} clusters violate"
                 + (f" (all clusters: {fa['all_clusters']['violating_clusters']} of "
                    f"{fa['all_clusters']['checked_clusters']})" if "all_clusters" in fa else ""))
  if "fc" in fa:
    lines.append(f"  FC at k = {fa['fc']['k']}: {fa['fc']['value']:.4g}, HFC {fa['hfc']:.4g}")
  if out_dir is not None:
    with phases("write"):
      write_tree(out_dir / "tree.npz", h, inp.rows, inp.colors, report.pop("_arrays", None))
      written = ["tree.npz", "report.json"]
      if args.plot:
        write_dendrogram(out_dir / "dendrogram.png", h, inp.colors, inp.labels, title)
        written.append("dendrogram.png")
    report["outputs"] = written
  report["phase_seconds"] = dict(phases.seconds)
  phases.close()
  if out_dir is not None:
    write_report(out_dir / "report.json", report)
    lines.append(f"  wrote {', '.join(str(out_dir / w) for w in report['outputs'])}")
  lines.append("  phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.seconds.items()))
  print("\n".join(lines))
  return 0


def _start(args, phase_names):
  out_dir = prepare_out(args.out)
  if args.plot and out_dir is None:
    raise UserError("--plot writes dendrogram.png into --out DIR; give --out")
  if args.plot:
    try:
      import matplotlib  # noqa: F401
    except ImportError as e:
      raise UserError("--plot needs matplotlib: pip install 'fairhc_jax[plot]'") from e
  show = {"auto": "auto", "always": True, "never": False}[args.progress]
  return out_dir, Phases(phase_names, show=show, desc=f"fairhc {args.command}")


def _distances(inp: Input):
  from fairhc_jax import distances
  D = distances.pairwise_distances(inp.X)
  S = distances.similarity(D)
  return jax.block_until_ready(D), jax.block_until_ready(S)


def _c(inp: Input) -> int:
  return len(inp.labels)


# ----------------------------------------------------------------------------- commands


def run_linkage(args) -> int:
  from fairhc_jax.agglomerative import linkage
  out_dir, ph = _start(args, ["read", "distances", "linkage", "report"])
  with ph("read"):
    inp = load_input(args, default_n=1600)
  constraint = parse_constraint(args.constraint)
  with ph("distances"):
    D, S = _distances(inp)
  with ph("linkage"):
    h = jax.block_until_ready(linkage(D, method=args.method))
  with ph("report"):
    rep = base_report("linkage", args, inp, {"method": args.method,
                                              "constraint": str(constraint)})
    rep["objectives"] = objectives(h, D, S)
    rep["fairness"] = fairness_stats(h, inp.colors, constraint, args.scope, _c(inp), k=args.k)
  return finish(args, rep, h, inp, ph, out_dir, f"{args.method} linkage")


def _default_constraint(args, inp: Input):
  constraint = parse_constraint(args.constraint)
  if constraint is None:
    if _c(inp) == 2:
      from fairhc_jax import fairness
      constraint = fairness.Balance(1, 3)
    else:
      raise UserError(f"--constraint is required with {_c(inp)} groups (e.g. bounded:1/"
                      f"{_c(inp) - 1}); balance:B:R is for two groups")
  return constraint


def run_fairlets(args) -> int:
  from fairhc_jax.agglomerative import linkage
  from fairhc_jax.algorithms import fairlet_hc
  out_dir, ph = _start(args, ["read", "distances", "fairlets + tree", "baseline", "report"])
  with ph("read"):
    inp = load_input(args, default_n=1600)
  if args.balance is not None:
    if args.constraint is not None:
      raise UserError("give --balance B:R or --constraint, not both")
    args.constraint = f"balance:{args.balance}"
  constraint = _default_constraint(args, inp)
  with ph("distances"):
    D, S = _distances(inp)
  with ph("fairlets + tree"):
    res = fairlet_hc.fair_hierarchical_clustering(
        jax.random.key(args.seed), D, inp.colors, constraint=constraint,
        metric="precomputed", schedule=args.schedule, eps=args.eps,
        max_steps=args.max_steps, progress=ph._visible or False, start=args.start)
    h = jax.block_until_ready(res.hierarchy)
  with ph("baseline"):
    h_avg = jax.block_until_ready(linkage(D, method="average"))
  with ph("report"):
    rep = base_report("fairlets", args, inp, {
        "constraint": str(res.constraint), "schedule": args.schedule, "eps": args.eps,
        "max_steps": args.max_steps, "start": args.start, "seed": args.seed})
    rep["objectives"] = objectives(h, D, S)
    rep["objectives"]["baseline_average_linkage"] = objectives(h_avg, D, S)
    rep["fairness"] = fairness_stats(h, inp.colors, res.constraint, res.scope, _c(inp),
                                     k=args.k)
    rep["fairness"]["scope"] = "unions of whole fairlets (at and above the fairlet layer)"
    rep["fairness"]["baseline_average_linkage"] = fairness_stats(
        h_avg, inp.colors, res.constraint, res.scope, _c(inp), k=args.k, max_nodes=5)
    st = res.stats
    rep["fairlets"] = {"num_fairlets": int(st.num_fairlets), "swaps": int(st.swaps),
                       "ratio_fairlets_before": float(st.ratio_fairlets_before),
                       "ratio_fairlets_after": float(st.ratio_fairlets_after),
                       "max_fairlet_size": int(st.max_fairlet_size)}
    rep["_arrays"] = {"fairlets": np.asarray(res.fairlets, np.int32)}
  return finish(args, rep, h, inp, ph, out_dir,
                "fair tree: fairlets + local search + average linkage (Ahmadian et al. 2020)")


def _base_tree(args, inp: Input, D, ph):
  from fairhc_jax.agglomerative import linkage
  if args.tree is not None:
    with ph("read tree"):
      h, _ = read_tree(args.tree)
      if h.num_leaves != inp.n:
        raise UserError(f"--tree {args.tree} has {h.num_leaves} leaves but the input has "
                        f"{inp.n} rows")
    return h, f"read from {args.tree}"
  with ph("linkage"):
    h = jax.block_until_ready(linkage(D, method=args.method))
  return h, f"{args.method} linkage"


def run_reduce(args) -> int:
  from fairhc_jax.algorithms import reductions
  out_dir, ph = _start(args, ["read", "distances", "linkage", "reduction", "report"])
  with ph("read"):
    inp = load_input(args, default_n=1600)
  eps = None if args.eps is None else Fraction(args.eps)
  with ph("distances"):
    D, S = _distances(inp)
  base, base_name = _base_tree(args, inp, D, ph)
  with ph("reduction"):
    if args.reduction == "fair_hc":
      res = reductions.fair_hc(base, inp.colors, eps, num_sorted=args.num_sorted,
                               num_folds=args.num_folds, num_colors=_c(inp),
                               min_cluster_size=args.min_cluster_size)
    elif args.reduction == "stochastic":
      if eps is None:
        raise UserError("--eps is required with --reduction stochastic")
      res = reductions.stochastically_fair_hc(base, eps, min_cluster_size=args.min_cluster_size)
    elif args.reduction == "rebalance":
      res = reductions.rebalance_tree(base, eps if eps is not None else Fraction(1, 6))
    else:
      if eps is None:
        raise UserError("--eps is required with --reduction refine")
      res = reductions.refine_rebalance_tree(base, eps)
    h = jax.block_until_ready(res.hierarchy)
  constraint = res.constraint if res.constraint is not None else parse_constraint(args.constraint)
  with ph("report"):
    rep = base_report("reduce", args, inp, {
        "reduction": args.reduction, "eps": None if eps is None else str(eps),
        "num_sorted": args.num_sorted, "num_folds": args.num_folds,
        "min_cluster_size": args.min_cluster_size, "input_tree": base_name})
    rep["objectives"] = objectives(h, D, S)
    rep["objectives"]["input_tree"] = objectives(base, D, S)
    base_ob = rep["objectives"]["input_tree"]
    rep["objectives"]["dasgupta_cost_ratio_to_input"] = (
        rep["objectives"]["dasgupta_cost"] / base_ob["dasgupta_cost"])
    rep["fairness"] = fairness_stats(h, inp.colors, constraint, res.scope, _c(inp), k=args.k)
    rep["fairness"]["input_tree"] = fairness_stats(base, inp.colors, constraint, res.scope,
                                                   _c(inp), k=args.k, max_nodes=5)
  return finish(args, rep, h, inp, ph, out_dir, f"{args.reduction} over the {base_name} tree "
                "(Knittel et al. 2023)")


def _fhac_params(args):
  from fairhc_jax.algorithms.fair_hac import FHACParams
  given = [args.alpha0, args.theta1, args.beta0, args.theta2]
  if all(v is None for v in given):
    return None
  if args.tune:
    raise UserError("give --tune or the schedule (--alpha0/--theta1/--beta0/--theta2), not both")
  a0, t1, b0, t2 = (0.0 if v is None else v for v in given)
  return FHACParams(float(a0 if args.alpha0 is not None else 1.0), float(t1), float(b0),
                    float(t2))


def run_fhac(args) -> int:
  from fairhc_jax.agglomerative import linkage
  from fairhc_jax.algorithms import fair_hac, fhac_search
  out_dir, ph = _start(args, ["read", "distances", "search", "fhac", "baseline", "report"])
  with ph("read"):
    inp = load_input(args, default_n=120)
  if not 1 <= args.k <= inp.n:
    raise UserError(f"--k must be in [1, {inp.n}] (the rows used), got {args.k}")
  with ph("distances"):
    D, S = _distances(inp)
  params = _fhac_params(args)
  search = None
  with ph("search"):
    if params is None:
      search = fhac_search.tune_fhac(jax.random.key(args.seed), D, inp.colors, k=args.k,
                                     method=args.method, cost=args.cost, budget=args.budget,
                                     batch=args.batch, rule=args.rule, num_colors=_c(inp))
      params = search.params
  with ph("fhac"):
    h = jax.block_until_ready(fair_hac.fhac(D, inp.colors, params, k=args.k,
                                            method=args.method, rule=args.rule,
                                            num_colors=_c(inp)))
  with ph("baseline"):
    h0 = jax.block_until_ready(linkage(D, method=args.method))
  constraint = parse_constraint(args.constraint)
  with ph("report"):
    p = {f: float(getattr(params, f)) for f in params._fields}
    rep = base_report("fhac", args, inp, {"method": args.method, "rule": args.rule,
                                           "k": args.k, "schedule": p,
                                           "tuned": search is not None})
    if search is not None:
      rep["search"] = {"cost": args.cost, "budget": args.budget, "batch": args.batch,
                       "best_cost": float(search.cost), "vanilla_cost": float(search.vanilla_cost),
                       "bounds": np.asarray(search.bounds).tolist()}
    rep["objectives"] = objectives(h, D, S)
    rep["objectives"]["baseline_linkage"] = objectives(h0, D, S)
    rep["fairness"] = fairness_stats(h, inp.colors, constraint, args.scope, _c(inp), k=args.k)
    rep["fairness"]["baseline_linkage"] = fairness_stats(h0, inp.colors, constraint,
                                                         args.scope, _c(inp), k=args.k,
                                                         max_nodes=5)
  return finish(args, rep, h, inp, ph, out_dir,
                f"FHAC ({args.method}, rule {args.rule}, k = {args.k}; Chhabra & Mohapatra)")


def run_fphac(args) -> int:
  from fairhc_jax.algorithms import fp_hac
  out_dir, ph = _start(args, ["read", "distances", "linkage", "fp-hac", "report"])
  with ph("read"):
    inp = load_input(args, default_n=1600)
  if not 1 <= args.k <= inp.n:
    raise UserError(f"--k must be in [1, {inp.n}] (the rows used), got {args.k}")
  with ph("distances"):
    D, S = _distances(inp)
  base, base_name = _base_tree(args, inp, D, ph)
  eps = math.inf if args.eps is None else args.eps
  with ph("fp-hac"):
    h = jax.block_until_ready(fp_hac.fp_hac(base, inp.colors, k=args.k, D=D, eps=eps,
                                            mode=args.mode, alpha=args.alpha,
                                            method=args.method, num_colors=_c(inp)))
  constraint = parse_constraint(args.constraint)
  with ph("report"):
    rep = base_report("fphac", args, inp, {"k": args.k, "eps": str(eps), "mode": args.mode,
                                            "alpha": args.alpha, "method": args.method,
                                            "input_tree": base_name})
    rep["objectives"] = objectives(h, D, S)
    rep["objectives"]["input_tree"] = objectives(base, D, S)
    rep["fairness"] = fairness_stats(h, inp.colors, constraint, args.scope, _c(inp), k=args.k)
    rep["fairness"]["input_tree"] = fairness_stats(base, inp.colors, constraint, args.scope,
                                                   _c(inp), k=args.k, max_nodes=5)
  return finish(args, rep, h, inp, ph, out_dir,
                f"FP-HAC ({args.mode}, k = {args.k}) over the {base_name} tree")


def run_audit(args) -> int:
  from fairhc_jax import fairness
  out_dir = prepare_out(args.out)
  if args.plot and out_dir is None:
    raise UserError("--plot writes dendrogram.png into --out DIR; give --out")
  show = {"auto": "auto", "always": True, "never": False}[args.progress]
  ph = Phases(["read", "check", "probability"], show=show, desc="fairhc audit")
  prob_cols = None
  if args.probs not in (None, "observed"):
    prob_cols = [c.strip() for c in args.probs.split(",")]
    if args.csv is None:
      raise UserError("--probs COLUMNS reads columns of --csv; with --data use --probs observed")
  with ph("read"):
    h, rows = read_tree(args.tree)
    n_tree = h.num_leaves
    n_arg, args.n = args.n, None
    inp = load_input(args, default_n=None, probs=prob_cols)
    if n_tree != inp.n:
      if rows is not None and rows.shape == (n_tree,) and rows.size and rows.max() < inp.n \
          and n_arg is None:
        inp.X, inp.colors = inp.X[rows], inp.colors[rows]
        inp.probs = None if inp.probs is None else inp.probs[rows]
        inp.rows = rows
        inp.meta["rows_from_tree"] = True
        inp.meta["n"] = int(n_tree)
      else:
        src = f"--csv {args.csv}" if args.csv is not None else f"--data {args.data}"
        raise UserError(f"--tree {args.tree} has {n_tree} leaves but {src} has {inp.n} rows "
                        "(the tree must be built on the same rows, one leaf per row)")
  constraint = parse_constraint(args.constraint)
  if constraint is None:
    constraint = (fairness.Balance(1, 3) if _c(inp) == 2
                  else fairness.BoundedRepresentation(Fraction(1, _c(inp) - 1)))
  with ph("check"):
    rep = base_report("audit", args, inp, {"tree": str(pathlib.Path(args.tree).resolve()),
                                            "constraint": str(constraint),
                                            "scope_min_size": args.scope})
    rep["fairness"] = fairness_stats(h, inp.colors, constraint, args.scope, _c(inp), k=args.k)
  if args.probs is not None:
    with ph("probability"):
      probs = (fairness.observed_shares(inp.colors, _c(inp)) if args.probs == "observed"
               else inp.probs.astype(np.float32))
      est = fairness.fairness_probability(h, probs, constraint, key=jax.random.key(args.seed),
                                          num_samples=args.samples, scope=args.scope)
      rep["fairness_probability"] = {
          "probs": args.probs, "num_samples": int(est.num_samples),
          "estimate": float(est.estimate), "stderr": float(est.stderr),
          "wilson_95": [float(est.wilson_low), float(est.wilson_high)],
          "num_fair": int(est.num_fair), "scope": _scope_text(args.scope)}
  fp = rep.get("fairness_probability")
  code = finish(args, rep, h, inp, ph, out_dir, f"audit of {args.tree}")
  if fp:
    print(f"  P(fair) under random groups ({fp['probs']}, {fp['num_samples']} samples): "
          f"{fp['estimate']:.3f}, 95% interval [{fp['wilson_95'][0]:.3f}, "
          f"{fp['wilson_95'][1]:.3f}]")
  if args.verbose:
    print(rep["fairness"]["report"])
  return code


def run_demo(args) -> int:
  from fairhc_jax import datasets, fairness
  from fairhc_jax.agglomerative import linkage
  from fairhc_jax.algorithms import fairlet_hc
  data = datasets.synthetic_blobs(jax.random.key(args.seed), args.n, 2,
                                  proportions=(1, 2), purity=0.9)
  b, r = (int(v) for v in args.balance.split(":"))
  constraint = fairness.Balance(b, r)
  counts = np.bincount(data.colors, minlength=2)
  print(f"synthetic coloured blobs: n = {args.n}, colour counts {counts.tolist()}, "
        f"target balance {b}:{r}\n")
  from fairhc_jax import distances
  D = distances.pairwise_distances(data.features)
  S = distances.similarity(D)
  h_avg = jax.block_until_ready(linkage(D, method="average"))
  res = fairlet_hc.fair_hierarchical_clustering(
      jax.random.key(args.seed), D, data.colors, constraint=constraint, metric="precomputed")
  for name, h, scope in (("average linkage", h_avg, None),
                         ("fair tree: fairlets + local search + average linkage",
                          res.hierarchy, res.scope)):
    ob = objectives(h, D, S)
    every = fairness.check_fairness(h, data.colors, constraint)
    print(name)
    print(f"  Dasgupta cost        {ob['dasgupta_cost']:14.6g}")
    print(f"  Moseley-Wang revenue {ob['moseley_wang_revenue']:14.6g}   "
          f"({100 * ob['moseley_wang_revenue'] / ob['revenue_upper_bound']:5.1f}% of its bound)")
    print(f"  Cohen-Addad value    {ob['cohen_addad_value']:14.6g}   "
          f"({100 * ob['cohen_addad_value'] / ob['value_upper_bound']:5.1f}% of its bound)")
    print(f"  {int(np.asarray(every.violating).sum())} of all clusters break {constraint}")
    if scope is not None:
      own = fairness.check_fairness(h, data.colors, constraint, scope=scope)
      print(f"  in the tree's own scope (at and above the fairlets: "
            f"{int(np.asarray(own.checked).sum())} clusters): "
            f"{int(np.asarray(own.violating).sum())} break {constraint}")
  print("\nFairness report of the average-linkage tree:")
  print(fairness.fairness_report(h_avg, data.colors, constraint, max_nodes=5))
  sys.stdout.flush()
  return 0
