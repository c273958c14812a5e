"""Chhabra & Mohapatra's Tables 2-4 on their data, and FHAC / FP-HAC speed.

Usage (from the repository root)::

  python benchmarks/bench_fair_hac.py tables [--samples 10] [--budget 60] [--rule vectorized]
  python benchmarks/bench_fair_hac.py speed  [--sizes 1000,2000]
  python benchmarks/bench_fair_hac.py census [--n 10000]

``tables``: the paper's Table 1 data (bank1 = bank default yes/no 60/60,
bank2 = bank marital married/single/divorced 40/40/40, census = sex
female/male 40/70, creditcard = education 30/30/45/20; raw features as
Table 1 lists them, Euclidean distances), ``k = 4``, single / complete /
average linkage, ``--samples`` random samples with those exact group counts.
Per sample: vanilla HAC, FHAC tuned for FC (Table 2) and tuned for HFC
(Table 3) by :func:`tune_fhac` (``--budget`` evaluations, batches of
``--batch``), and FP-HAC at the leaves on the vanilla tree (Table 4); FC,
HFC and the Dasgupta cost (similarity ``1 / (1 + d)``) of each tree as a
ratio to vanilla's. Means and standard deviations beside the paper's values.

``speed``: one literal FHAC at n = 120 (warm), 1,000 tuned evaluations at
n = 120, the vectorised rule at larger n, each beside plain ``linkage`` at
the same n. Results go to ``benchmarks/results/fair_hac_*.txt``.
"""

from __future__ import annotations

import argparse
import csv
import os
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fairhc_jax import linkage  # noqa: E402
from fairhc_jax.agglomerative import linkage_kernel  # noqa: E402
from fairhc_jax.fairness import fairness_cost, hierarchical_fairness_cost  # noqa: E402
from fairhc_jax.objectives import dasgupta_cost  # noqa: E402
from fairhc_jax.algorithms import fair_hac as F  # noqa: E402
from fairhc_jax.algorithms.fair_hac import FHACParams, fhac, fhac_costs  # noqa: E402
from fairhc_jax.algorithms.fhac_search import tune_fhac  # noqa: E402
from fairhc_jax.algorithms.fp_hac import fp_hac  # noqa: E402

ALL = "bank1,bank2,census,creditcard"
UCI = ROOT.parent / "shared" / "data" / "uci"
RESULTS = ROOT / "benchmarks" / "results"

# Paper values: Table 2 (FC vanilla, FC FHAC), Table 3 (HFC vanilla, HFC FHAC),
# Table 4 (FC FP-HAC), per (data, linkage).
PAPER = {
    ("bank1", "single"): (3.026, 3.0172, 6747.7897, 6524.6078, 2.342),
    ("bank1", "complete"): (3.017, 2.7593, 6365.5709, 6362.5625, 2.0),
    ("bank1", "average"): (3.035, 3.0256, 6444.5359, 6441.5275, 2.0),
    ("bank2", "single"): (3.345, 3.345, 9032.1463, 8922.8608, 3.345),
    ("bank2", "complete"): (1.632, 1.493, 8492.0879, 8490.0651, 1.408),
    ("bank2", "average"): (2.684, 1.69, 8634.9503, 8550.0596, 2.0),
    ("census", "single"): (2.005, 2.005, 4817.7172, 4770.9221, 2.005),
    ("census", "complete"): (0.3084, 0.2658, 4500.9533, 4486.0487, 0.3084),
    ("census", "average"): (0.505, 0.242, 4553.1110, 4551.0302, 0.3571),
    ("creditcard", "single"): (4.59, 4.59, 11062.426, 11030.231, 4.329),
    ("creditcard", "complete"): (1.56, 1.56, 11062.426, 10314.735, 0.573),
    ("creditcard", "average"): (2.566, 2.392, 10532.545, 10506.927, 2.344),
}


def _read_csv(path, delimiter):
  with open(path, newline="") as f:
    rows = list(csv.reader(f, delimiter=delimiter))
  return rows[0], rows[1:]


def load_table1():
  """The four data sets of Table 1: {name: (features float64[N, d], groups int[N], counts)}."""
  out = {}
  header, rows = _read_csv(UCI / "bank-full.csv", ",")
  h = {name.strip('"'): i for i, name in enumerate(header)}
  feats = np.array([[float(r[h["balance"]]), float(r[h["age"]]), float(r[h["duration"]])]
                    for r in rows])
  default = np.array([0 if r[h["default"]] == "yes" else 1 for r in rows])
  out["bank1"] = (feats, default, (60, 60))
  mar = {"married": 0, "single": 1, "divorced": 2}
  marital = np.array([mar[r[h["marital"]]] for r in rows])
  out["bank2"] = (feats, marital, (40, 40, 40))
  feats, sex = [], []
  with open(UCI / "adult.data") as f:
    for line in f:
      r = [v.strip() for v in line.split(",")]
      if len(r) != 15 or "?" in r:
        continue
      feats.append([float(r[0]), float(r[4]), float(r[2]), float(r[10]), float(r[12])])
      sex.append(0 if r[9] == "Female" else 1)
  out["census"] = (np.array(feats), np.array(sex), (40, 70))
  header, rows = _read_csv(UCI / "UCI_Credit_Card.csv", ",")
  edu_map = {1: 0, 2: 1, 3: 2}
  cols = [5] + list(range(12, 18)) + [1] + list(range(18, 24))   # X5, X12-17, X1, X18-23
  feats = np.array([[float(r[c]) for c in cols] for r in rows])
  edu = np.array([edu_map.get(int(float(r[3])), 3) for r in rows])
  out["creditcard"] = (feats, edu, (30, 30, 45, 20))
  return out


def sample(rng, groups, counts):
  idx = [rng.choice(np.flatnonzero(groups == g), size=m, replace=False)
         for g, m in enumerate(counts)]
  return np.sort(np.concatenate(idx))


def distances(x):
  return np.sqrt(np.maximum(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1), 0))


def tables(args):
  data = load_table1()
  rng = np.random.default_rng(args.seed)
  lines = [f"# Chhabra & Mohapatra Tables 2-4: {args.samples} samples per row, k = 4, "
           f"tuned FHAC rule={args.rule}, budget {args.budget} (batch {args.batch}) per search",
           "# raw features, Euclidean distances; mean +- std over samples; "
           "DC = Dasgupta cost / vanilla's (similarity 1/(1+d))",
           "# measured while other jobs ran; command: python benchmarks/bench_fair_hac.py tables "
           f"--samples {args.samples} --budget {args.budget} --batch {args.batch} --rule {args.rule}",
           ""]
  head = (f"{'data':<11}{'linkage':<9}| {'FC van':>12} {'FC FHAC':>12} {'paper':>15} "
          f"| {'HFC van':>14} {'HFC FHAC':>14} {'paper':>19} | {'FC FP-HAC':>12} {'paper':>6} "
          f"| {'DC fhac-fc':>10} {'DC fhac-hfc':>11} {'DC fp':>7} | s/row")
  lines.append(head)
  print(head, flush=True)
  for name in ("bank1", "bank2", "census", "creditcard"):
    x_all, g_all, counts = data[name]
    samples = [sample(rng, g_all, counts) for _ in range(args.samples)]
    if name not in args.datasets.split(","):
      continue
    for method in ("single", "complete", "average"):
      t0 = time.perf_counter()
      rec = []
      for s_id, idx in enumerate(samples):
        x = x_all[idx]
        col = g_all[idx]
        D = distances(x).astype(np.float32)
        S = 1.0 / (1.0 + D)
        h0 = linkage(D, method)
        fc0 = float(fairness_cost(h0, col, 4))
        hfc0 = float(hierarchical_fairness_cost(h0, col))
        dc0 = float(dasgupta_cost(h0, S))
        key = jax.random.key(1000 * s_id + 7)
        r_fc = tune_fhac(key, D, col, k=4, method=method, cost="fc", budget=args.budget,
                         batch=args.batch, rule=args.rule)
        r_hfc = tune_fhac(key, D, col, k=4, method=method, cost="hfc", budget=args.budget,
                          batch=args.batch, rule=args.rule)
        h_fc = fhac(D, col, r_fc.params, k=4, method=method, rule=args.rule)
        h_hfc = fhac(D, col, r_hfc.params, k=4, method=method, rule=args.rule)
        h_fp = fp_hac(h0, col, k=4, mode="leaves")
        rec.append((fc0, float(fairness_cost(h_fc, col, 4)), hfc0,
                    float(hierarchical_fairness_cost(h_hfc, col)),
                    float(fairness_cost(h_fp, col, 4)),
                    float(dasgupta_cost(h_fc, S)) / dc0, float(dasgupta_cost(h_hfc, S)) / dc0,
                    float(dasgupta_cost(h_fp, S)) / dc0))
      a = np.array(rec)
      m, sd = a.mean(0), a.std(0)
      p = PAPER[(name, method)]
      line = (f"{name:<11}{method:<9}| {m[0]:6.3f}+-{sd[0]:4.2f} {m[1]:6.3f}+-{sd[1]:4.2f} "
              f"{p[0]:>7.3f}->{p[1]:<6.3f} | {m[2]:8.1f}+-{sd[2]:4.0f} {m[3]:8.1f}+-{sd[3]:4.0f} "
              f"{p[2]:>9.1f}->{p[3]:<8.1f} | {m[4]:6.3f}+-{sd[4]:4.2f} {p[4]:>6.3f} "
              f"| {m[5]:10.3f} {m[6]:11.3f} {m[7]:7.3f} | {time.perf_counter() - t0:.0f}")
      lines.append(line)
      print(line, flush=True)
  tag = "" if args.datasets == ALL else "_" + args.datasets.replace(",", "_")
  out = RESULTS / f"fair_hac_tables_{args.rule}{tag}.txt"
  out.write_text("\n".join(lines) + "\n")
  print("wrote", out)


def _time(f, reps=5):
  jax.block_until_ready(f())
  ts = []
  for _ in range(reps):
    t = time.perf_counter()
    jax.block_until_ready(f())
    ts.append(time.perf_counter() - t)
  return float(np.median(ts)), float(np.min(ts))


def speed(args):
  data = load_table1()
  x_all, g_all, counts = data["bank2"]
  rng = np.random.default_rng(0)
  lines = ["# FHAC speed (float32, CPU); median (min) of warm runs; compile separately",
           "# measured while other jobs ran; command: python benchmarks/bench_fair_hac.py speed "
           f"--sizes {args.sizes} --tune-rules {args.tune_rules} --evals {args.evals} "
           f"--tune-batch {args.tune_batch}", ""]

  def emit(s):
    print(s, flush=True)
    lines.append(s)

  idx = sample(rng, g_all, counts)
  D = jnp.asarray(distances(x_all[idx]), jnp.float32)
  col = jnp.asarray(g_all[idx], jnp.int32)
  prm = np.array([0.1, 0.01, 50.0, 5.0])
  p = F.fhac_schedules(prm, D.shape[0], 4, np.float32)
  for rule in F.RULES:
    t = time.perf_counter()
    f = lambda: F.fhac_kernel(D, col, p, jnp.int32(4), num_colors=3, method="average", rule=rule)
    jax.block_until_ready(f())
    comp = time.perf_counter() - t
    med, mn = _time(f)
    emit(f"fhac rule={rule:<10} n=120 one tree: {1e3 * med:8.2f} ms ({1e3 * mn:.2f}); first call {comp:.1f} s")
  # The public entry point (checks, schedule table, Hierarchy) on the same tree.
  pub = lambda: fhac(D, col, FHACParams(*prm), k=4, method="average", rule="literal")
  med, mn = _time(pub, reps=15)
  emit(f"fhac public, literal      n=120 one tree: {1e3 * med:8.2f} ms ({1e3 * mn:.2f})")
  med, mn = _time(lambda: linkage_kernel(D, method="average"), reps=15)
  emit(f"linkage (average)         n=120 one tree: {1e3 * med:8.2f} ms ({1e3 * mn:.2f})")
  for rule in [r for r in args.tune_rules.split(",") if r]:
    tb = args.tune_batch
    tune_fhac(jax.random.key(0), D, col, k=4, budget=2 * tb, batch=tb, rule=rule)  # compile
    t = time.perf_counter()
    r = tune_fhac(jax.random.key(1), D, col, k=4, budget=args.evals, batch=tb, rule=rule)
    emit(f"tune_fhac rule={rule:<10} n=120, {args.evals} evaluations (batch {tb}): "
         f"{time.perf_counter() - t:7.2f} s  (FC {r.vanilla_cost:.3f} -> {r.cost:.3f})")
  for n in [int(v) for v in args.sizes.split(",") if v]:
    x = rng.normal(size=(n, 3)).astype(np.float32)
    Dn = jnp.asarray(distances(x), jnp.float32)
    cn = jnp.asarray(rng.integers(0, 3, n), jnp.int32)
    pn = F.fhac_schedules(prm, n, 4, np.float32)
    f = lambda: F.fhac_kernel(Dn, cn, pn, jnp.int32(4), num_colors=3, method="average",
                              rule="vectorized")
    t = time.perf_counter()
    jax.block_until_ready(f())
    first = time.perf_counter() - t
    med, mn = _time(f, reps=2)
    lmed, _ = _time(lambda: linkage_kernel(Dn, method="average"), reps=3)
    emit(f"fhac rule=vectorized n={n}: {med:8.3f} s ({mn:.3f}); first call {first:.1f} s; "
         f"linkage (average) {lmed:.4f} s")
  out = RESULTS / f"fair_hac_speed{args.tag}.txt"
  out.write_text("\n".join(lines) + "\n")
  print("wrote", out)


def compare(args):
  """Literal against vectorised rule on the paper's data: same random parameters."""
  from fairhc_jax.algorithms.fhac_search import default_bounds
  data = load_table1()
  rng = np.random.default_rng(args.seed)
  lines = [f"# literal vs vectorized FHAC rule: {args.samples} samples x {args.batch} random "
           "parameter vectors from the default search box per row, k = 4",
           "# same: identical trees; FC/HFC: means over all runs",
           f"# command: python benchmarks/bench_fair_hac.py compare --samples {args.samples} "
           f"--batch {args.batch} --datasets {args.datasets}" + (f" --tag {args.tag}" if args.tag else ""), "",
           f"{'data':<11}{'linkage':<9}| {'same':>5} | {'FC lit':>7} {'FC vec':>7} | "
           f"{'HFC lit':>8} {'HFC vec':>8} | {'FC van':>7}"]
  print(lines[-1], flush=True)
  for name in args.datasets.split(","):
    x_all, g_all, counts = data[name]
    samples = [sample(rng, g_all, counts) for _ in range(args.samples)]
    for method in ("single", "complete", "average"):
      acc = []
      for idx in samples:
        D = distances(x_all[idx]).astype(np.float32)
        col = g_all[idx]
        box = default_bounds(D, 4)
        u = rng.uniform(size=(args.batch, 4))
        P = FHACParams(*(box[:, 0] + u * (box[:, 1] - box[:, 0])).T)
        o_l = fhac_costs(D, col, P, k=4, method=method, rule="literal")
        o_v = fhac_costs(D, col, P, k=4, method=method, rule="vectorized")
        same = np.all(np.asarray(o_l.hierarchy.parent) == np.asarray(o_v.hierarchy.parent), axis=1)
        fc0 = float(fairness_cost(linkage(D, method), col, 4))
        acc.append((same.mean(), np.mean(o_l.fc), np.mean(o_v.fc), np.mean(o_l.hfc),
                    np.mean(o_v.hfc), fc0))
      m = np.array(acc).mean(0)
      line = (f"{name:<11}{method:<9}| {m[0]:5.2f} | {m[1]:7.3f} {m[2]:7.3f} | "
              f"{m[3]:8.1f} {m[4]:8.1f} | {m[5]:7.3f}")
      lines.append(line)
      print(line, flush=True)
  out = RESULTS / f"fair_hac_rules{args.tag}.txt"
  out.write_text("\n".join(lines) + "\n")
  print("wrote", out)


def census(args):
  """FP-HAC (vectorised rounds) at the leaves and at the levels on a whole-Census average-linkage tree."""
  from fairhc_jax import linkage_from_points
  data = load_table1()
  x, g, _ = data["census"]
  n = x.shape[0] if args.n <= 0 else args.n
  x, g = x[:n], g[:n]
  lines = [f"# FP-HAC on a Census average-linkage tree (the first n = {n} rows, sex, k = 4, Table 1 features, raw)",
           f"# load average {os.getloadavg()[0]:.1f} at the start (2 cores; above about 2.5 other jobs ran); "
           f"command: python benchmarks/bench_fair_hac.py census --n {args.n}",
           "# rule='vectorized' (all candidate exchanges of a level scored at once, non-conflicting ones",
           "# applied per round; host NumPy); the literal scan is one Python step per candidate pair",
           f"# (about {(n / 4) ** 2:.0e} per pair of top clusters at the leaves here) and was not run", ""]

  def emit(s):
    print(s, flush=True)
    lines.append(s)

  xj = jnp.asarray(x, jnp.float32)
  t = time.perf_counter()
  h = jax.block_until_ready(linkage_from_points(xj, "average"))
  first = time.perf_counter() - t
  t = time.perf_counter()
  h = jax.block_until_ready(linkage_from_points(xj, "average"))
  emit(f"linkage_from_points (average): {time.perf_counter() - t:.1f} s warm (first call {first:.1f} s)")
  fc0 = float(fairness_cost(h, g, 4))
  for mode in ("leaves", "levels"):
    t = time.perf_counter()
    out = fp_hac(h, g, k=4, mode=mode, rule="vectorized")
    dt = time.perf_counter() - t
    emit(f"fp_hac mode={mode:<6} rule=vectorized: {dt:.1f} s; FC at k = 4: {fc0:.4f} -> "
         f"{float(fairness_cost(out, g, 4)):.4f}")
  out_path = RESULTS / "fair_hac_fp_census.txt"
  out_path.write_text("\n".join(lines) + "\n")
  print("wrote", out_path)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("what", choices=("tables", "speed", "compare", "census"))
  ap.add_argument("--n", type=int, default=0)
  ap.add_argument("--samples", type=int, default=10)
  ap.add_argument("--budget", type=int, default=60)
  ap.add_argument("--batch", type=int, default=30)
  ap.add_argument("--rule", default="vectorized", choices=F.RULES)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--sizes", default="1000")
  ap.add_argument("--datasets", default=ALL)
  ap.add_argument("--tune-rules", default="literal,vectorized")
  ap.add_argument("--evals", type=int, default=1000)
  ap.add_argument("--tune-batch", type=int, default=100)
  ap.add_argument("--tag", default="")
  args = ap.parse_args()
  {"tables": tables, "speed": speed, "compare": compare, "census": census}[args.what](args)


if __name__ == "__main__":
  main()
