"""Soft hierarchies (fairhc_jax.soft) against average linkage and the fair combinatorial methods.

Three parts, each writing ``benchmarks/results/soft_<part>.txt``:

* ``step``: time of one training step (``make_step``, Adam, warm, with
  ``block_until_ready``; compile time separately) at ``--n`` points and
  ``--num-internal`` soft nodes (at the random start, at the compressed
  average-linkage start, and the median over ``--trajectory`` steps of a
  run from the random start, wall and CPU time), next to one ``S @ Anc``
  product (the step's floor), and the whole fit.
* ``plain`` (``soft_plain_<sizes>.txt``): no penalty, on Census (gender) and Bank (marital) proportional
  samples: the decoded tree's exact Dasgupta cost from the average-linkage
  start (average linkage on the similarities, compressed to ``n'`` nodes)
  and from random starts (``--seeds``: one run per key, the table shows
  their mean), against the full average-linkage tree.
* ``random`` (``soft_random_<sizes>.txt``): random starts only, under
  several optimiser settings (``--variants``: learning-rate schedule, rate,
  ``internal_scale``, ``n'``), one run per key of ``--seeds``: whether a
  setting, not a lucky key, brings the random start near average linkage.
* ``front``: with the penalty (``Balance(b, r)``, every cluster of at least
  ``--min-size`` points) on a Census sample: a front of penalty weights in
  one batched ``fit_front`` run, against fairlets + average linkage
  (``fair_hierarchical_clustering``, inner ``"flat"`` so that every cluster
  is checked), the same fairlets merged by average linkage on the
  similarities (``1 - s``), FHAC (vectorised rule, tuned for its fairness
  cost at k = 8 with 60 evaluations) and ``fair_hc`` over average linkage;
  every tree judged with
  the exact ``dasgupta_cost`` and ``check_fairness`` under the same scope.
  Each soft tree is also repaired with exact operators and judged again:
  ``fair_hc`` 8/2 over its binary completion, and the fairlet repair
  (``soft.completion.repair_by_blocks`` with the fairlets of the fairlet
  pipeline above, merged by average and by single linkage on the soft
  tree's ultrametric: every cluster a union of fairlets).
  Also writes ``soft_front.png``.

Usage::

    python benchmarks/bench_soft.py step  [--n 4000] [--num-internal 512] [--trajectory 50]
    python benchmarks/bench_soft.py plain [--sizes 1000 4000] [--steps 200] [--seeds 1 2 3]
    python benchmarks/bench_soft.py random [--sizes 1000] [--steps 600] [--seeds 1 2 3] [--variants ...]
    python benchmarks/bench_soft.py front [--n 1000] [--steps 200]

Timings on the shared 2-core machine are noisy (other jobs run at the same
time); the output records the load average.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import fairhc_jax as fh
from fairhc_jax import soft
from fairhc_jax.soft import completion as _completion  # noqa: F401 (soft.completion)
from fairhc_jax.soft import train as _train

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "uci"


def load(name: str, n: int, seed: int = 0):
  data_dir = os.environ.get("FAIRHC_DATA_DIR", str(DATA))
  if name == "census":
    data = fh.datasets.load_census(color="gender", data_dir=data_dir)
  else:
    data = fh.datasets.load_bank(color="marital", data_dir=data_dir)
  idx = fh.datasets.proportional_subsample(jax.random.key(seed), data.colors, n)
  X, colors = data.features[idx], np.asarray(data.colors[idx])
  D = fh.pairwise_distances(X)
  S = fh.similarity(D)
  return D, S, colors


def header(out, title):
  out.append(f"# {title}")
  out.append(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, jax {jax.__version__}, "
             f"{jax.devices()[0].platform}, load average {os.getloadavg()[0]:.1f} "
             "(measured while other jobs ran)")


def write(name, out):
  RESULTS.mkdir(exist_ok=True)
  text = "\n".join(out) + "\n"
  (RESULTS / f"soft_{name}.txt").write_text(text)
  print(text)


def timed(f, *args, repeat=5):
  t = time.perf_counter()
  r = f(*args)
  jax.block_until_ready(r)
  first = time.perf_counter() - t
  ts = []
  for _ in range(repeat):
    t = time.perf_counter()
    r = f(*args)
    jax.block_until_ready(r)
    ts.append(time.perf_counter() - t)
  return first, float(np.median(ts)), r


def part_step(args):
  out = []
  header(out, f"soft step time, n = {args.n}, n' = {args.num_internal}")
  D, S, colors = load("census", args.n)
  problem = soft.make_problem(S, colors, constraint=fh.Balance(1, 3))
  p = soft.random_init(jax.random.key(0), args.n, args.num_internal)
  init, step = soft.make_step(mode="tree")
  st = init(p)
  first_t, med_t, _ = timed(step, p, st, problem, 1.0)
  out.append(f"step mode='tree' (Adam, penalty on; decoded-tree loss, tree sums): "
             f"compile+first {first_t:.2f} s, warm median {med_t * 1e3:.1f} ms")
  # The fit's own regime: a hard start (the compressed average-linkage tree),
  # whose first projection needs more rounds than a Dirichlet start's.
  p_hard = soft.from_hierarchy(_train._average_linkage_on_similarity(S), args.num_internal)
  _, med_h, _ = timed(step, p_hard, init(p_hard), problem, 1.0)
  out.append(f"step mode='tree' from the compressed average-linkage start: "
             f"warm median {med_h * 1e3:.1f} ms")
  # Steps along a training run from the random start (each step's own
  # inputs, as fit runs them): wall and process CPU time (all threads), the
  # latter less sensitive to other jobs on a shared machine.
  q, sq = p, init(p)
  walls, cpus = [], []
  for t in range(args.trajectory):
    w0, c0 = time.perf_counter(), time.process_time()
    q, sq, _ = jax.block_until_ready(step(q, sq, problem, 1.0))
    walls.append(time.perf_counter() - w0)
    cpus.append(time.process_time() - c0)
  out.append(f"steps 1-{args.trajectory} of a run from the random start: median "
             f"{np.median(walls) * 1e3:.1f} ms wall, {np.median(cpus) * 1e3:.1f} ms CPU (all threads)")
  init, step = soft.make_step()
  st = init(p)
  first, med, _ = timed(step, p, st, problem, 1.0, repeat=2)
  anc = soft.ancestors(p)
  mm = jax.jit(lambda S, a: S @ a)
  _, med_mm, _ = timed(mm, S, anc)
  flops = 2 * args.n ** 2 * args.num_internal
  out.append(f"step mode='dense' (Adam, penalty on): compile+first {first:.2f} s, warm median {med * 1e3:.1f} ms")
  out.append(f"one S @ Anc product ({flops / 1e9:.1f} GFLOP): {med_mm * 1e3:.1f} ms "
             f"({flops / med_mm / 1e9:.0f} GFLOP/s); a step needs two (forward, reverse)")
  # HypHC's decoding is single linkage on the n x n matrix of LCA depths: its floor.
  first_sl, med_sl, _ = timed(lambda d: fh.linkage(d, method="single").parent, D, repeat=2)
  out.append(f"HypHC decode floor (single linkage on an n x n matrix): "
             f"first {first_sl:.2f} s, warm {med_sl:.2f} s")
  t = time.perf_counter()
  res = soft.fit(jax.random.key(0), S, colors, constraint=fh.Balance(1, 3), penalty=1.0,
                 num_internal=args.num_internal, steps=args.steps, eval_every=args.steps,
                 progress=False, mode="tree")
  out.append(f"whole fit mode='tree' ({args.steps} steps, 2 evaluations, includes compiles "
             f"and the average-linkage start): {time.perf_counter() - t:.1f} s")
  out.append(f"command: python benchmarks/bench_soft.py step --n {args.n} "
             f"--num-internal {args.num_internal} --steps {args.steps} "
             f"--trajectory {args.trajectory}")
  write("step", out)


def part_plain(args):
  out = []
  header(out, "soft hierarchies without a penalty: decoded exact cost vs average linkage")
  seeds = args.seeds
  out.append(f"# n' = {args.num_internal}, {args.steps} steps, Adam(0.01), internal_scale 0.1, "
             f"mode={args.mode!r}; decoded trees completed (complete='auto': by the start "
             "tree from average linkage, by average linkage inside each node from random); "
             f"random starts: keys {', '.join(map(str, seeds))} (ratio: their mean)")
  out.append(f"{'data':>7} {'n':>5} {'avg-link':>12} {'compressed':>12} "
             f"{'soft(avg)':>12} {'ratio':>7} {'soft(rand)':>12} {'ratio':>7} {'fit s':>7}")
  for name in args.data:
    for n in args.sizes:
      D, S, colors = load(name, n)
      h = _train._average_linkage_on_similarity(S)
      full = float(fh.dasgupta_cost(h, S))
      comp = float(fh.dasgupta_cost(soft.decode(soft.from_hierarchy(h, args.num_internal)), S))
      t = time.perf_counter()
      ra = soft.fit(jax.random.key(0), S, num_internal=args.num_internal, steps=args.steps,
                    eval_every=max(1, args.steps // 10), progress=False, mode=args.mode)
      ta = time.perf_counter() - t
      rrs = [soft.fit(jax.random.key(seed), S, num_internal=args.num_internal, steps=args.steps,
                      init="random", eval_every=max(1, args.steps // 10), progress=False,
                      mode=args.mode) for seed in seeds]
      rand = float(np.mean([r.cost for r in rrs]))
      out.append(f"{name:>7} {n:>5} {full:>12.6g} {comp:>12.6g} {ra.cost:>12.6g} "
                 f"{ra.cost / full:>7.4f} {rand:>12.6g} {rand / full:>7.4f} {ta:>7.1f}")
      improved = int(np.sum(ra.history.decoded_cost[1:] < ra.history.decoded_cost[0]))
      out.append(f"#   average start: best step {ra.best_step}, {improved} of "
                 f"{len(ra.history.decoded_cost) - 1} later evaluations below the start; "
                 "history / avg-link: "
                 + ", ".join(f"{c / full:.4f}" for c in ra.history.decoded_cost))
      if len(seeds) > 1:
        out.append("#   random starts, best / avg-link per key: "
                   + ", ".join(f"{seed}: {r.cost / full:.4f}" for seed, r in zip(seeds, rrs)))
      out.append(f"#   random start (key {seeds[0]}) history / avg-link: "
                 + ", ".join(f"{c / full:.4f}" for c in rrs[0].history.decoded_cost))
      print("\n".join(out[-3:]), flush=True)
  out.append(f"command: python benchmarks/bench_soft.py plain --sizes "
             + " ".join(map(str, args.sizes)) + f" --steps {args.steps} "
             f"--num-internal {args.num_internal} --mode {args.mode} --data " + " ".join(args.data)
             + " --seeds " + " ".join(map(str, seeds)))
  write("plain_" + "_".join(map(str, args.sizes)), out)


def part_random(args):
  """Random starts under several optimiser settings, several keys each (no penalty)."""
  import optax
  out = []
  header(out, "soft hierarchies from random starts: optimiser variants (no penalty)")
  out.append(f"# {args.steps} steps, mode={args.mode!r}, complete='auto' (average linkage inside "
             f"every decoded node); keys {', '.join(map(str, args.seeds))}; a variant is "
             "schedule:learning rate:internal_scale:n' (schedule 'const' = optax.adam(lr), "
             "'cos' = optax.adam(optax.cosine_decay_schedule(lr, steps)))")
  out.append(f"{'data':>7} {'n':>5} {'variant':>22} {'mean':>7}  best / avg-link per key  {'s':>6}")
  for name in args.data:
    for n in args.sizes:
      D, S, colors = load(name, n)
      full = float(fh.dasgupta_cost(_train._average_linkage_on_similarity(S), S))
      for v in args.variants:
        sched, lr, isc, k = v.split(":")
        lr, isc, k = float(lr), float(isc), int(k)
        t = time.perf_counter()
        ratios = []
        for seed in args.seeds:
          rate = optax.cosine_decay_schedule(lr, args.steps) if sched == "cos" else lr
          r = soft.fit(jax.random.key(seed), S, num_internal=k, steps=args.steps, init="random",
                       optimizer=optax.adam(rate), internal_scale=isc,
                       eval_every=max(1, args.steps // 10), progress=False, mode=args.mode)
          ratios.append(r.cost / full)
        out.append(f"{name:>7} {n:>5} {v:>22} {np.mean(ratios):>7.4f}  "
                   + " ".join(f"{x:.4f}" for x in ratios) + f"  {time.perf_counter() - t:>6.1f}")
        print(out[-1], flush=True)
  out.append(f"command: python benchmarks/bench_soft.py random --sizes "
             + " ".join(map(str, args.sizes)) + f" --steps {args.steps} --mode {args.mode} "
             "--data " + " ".join(args.data) + " --seeds " + " ".join(map(str, args.seeds))
             + " --variants " + " ".join(args.variants))
  write("random_" + "_".join(map(str, args.sizes)), out)


def judge(h, S, colors, constraint, min_size):
  chk = fh.check_fairness(h, colors, constraint, scope=min_size)
  checked = np.asarray(chk.checked)
  viol = np.asarray(chk.violating)
  return (float(fh.dasgupta_cost(h, S)), bool(chk.is_fair),
          float(viol.sum() / max(1, checked.sum())))


def part_front(args):
  out = []
  constraint = fh.Balance(args.b, args.r)
  header(out, f"Pareto front on Census (gender), n = {args.n}, {constraint}, "
         f"clusters >= {args.min_size} points checked")
  D, S, colors = load("census", args.n)
  h_avg = _train._average_linkage_on_similarity(S)
  base = float(fh.dasgupta_cost(h_avg, S))
  rows = []
  c, fair, frac = judge(h_avg, S, colors, constraint, args.min_size)
  rows.append(("average linkage (similarities)", c, fair, frac, 0.0))
  h_avgd = fh.linkage(D)
  c, fair, frac = judge(h_avgd, S, colors, constraint, args.min_size)
  rows.append(("average linkage (distances)", c, fair, frac, 0.0))
  t = time.perf_counter()
  res = fh.fair_hierarchical_clustering(jax.random.key(0), D, colors, constraint=constraint,
                                        metric="precomputed", inner="flat", progress=False)
  dt = time.perf_counter() - t
  c, fair, frac = judge(res.hierarchy, S, colors, constraint, args.min_size)
  rows.append(("fairlets + average linkage (flat)", c, fair, frac, dt))
  # The same fairlets, merged by average linkage on the similarities (1 - s as
  # the dissimilarity: the linkage the soft trees start from).
  t = time.perf_counter()
  dis = 1.0 - np.asarray(S, np.float32)
  np.fill_diagonal(dis, 0.0)
  dec = fh.fairlets.decomposition_from_assignment(np.asarray(res.fairlets))
  h_sim = fh.fairlet_tree(jnp.asarray(dis), dec, inner="flat")
  c, fair, frac = judge(h_sim, S, colors, constraint, args.min_size)
  rows.append(("same fairlets + avg linkage on 1 - s (flat)", c, fair, frac,
               time.perf_counter() - t))
  # FHAC (Chhabra & Mohapatra), its schedule tuned for FC at k = 8 (its own notion).
  t = time.perf_counter()
  tuned = fh.tune_fhac(jax.random.key(0), D, colors, k=8, budget=60, batch=20, rule="vectorized")
  h_fhac = fh.fhac(D, colors, tuned.params, k=8, rule="vectorized")
  c, fair, frac = judge(h_fhac, S, colors, constraint, args.min_size)
  rows.append(("FHAC (vectorized, tuned for FC at k = 8)", c, fair, frac,
               time.perf_counter() - t))
  for ns, nf in ((4, 2), (8, 2)):
    t = time.perf_counter()
    r = fh.fair_hc(h_avgd, colors, fractions_eps(), num_sorted=ns, num_folds=nf)
    dt = time.perf_counter() - t
    c, fair, frac = judge(r.hierarchy, S, colors, constraint, args.min_size)
    rows.append((f"fair_hc {ns}/{nf} over average linkage", c, fair, frac, dt))
  soft_rows = []
  repaired_rows = []
  dts = []
  # mode="tree" always penalises the decoded tree's counts: one pass suffices.
  for decoded in ((False,) if args.mode == "tree" else (False, True)):
    t = time.perf_counter()
    front = soft.fit_front(jax.random.key(0), S, colors, constraint=constraint,
                           penalties=args.penalties, num_internal=args.num_internal,
                           steps=args.steps, eval_every=max(1, args.steps // 8),
                           min_size=args.min_size, progress=False, decoded_penalty=decoded,
                           mode=args.mode)
    dts.append(time.perf_counter() - t)
    for r in front.results:
      c, fair, frac = judge(r.hierarchy, S, colors, constraint, args.min_size)
      kind = "decoded" if decoded else "expected"
      soft_rows.append((f"soft {kind}-count penalty {r.penalty:g} (step {r.best_step})", c,
                        fair, frac, dts[-1] / len(front.results), decoded))
      # Repair with the library's exact operator: complete the decoded tree
      # to a binary one (average linkage inside each node), then fair_hc 8/2.
      t = time.perf_counter()
      full = soft.completion.complete_by_average_linkage(r.hierarchy, np.asarray(S))
      rep = fh.fair_hc(full, colors, fractions_eps(), num_sorted=8, num_folds=2)
      c2, fair2, frac2 = judge(rep.hierarchy, S, colors, constraint, args.min_size)
      repaired_rows.append((f"  + fair_hc 8/2 repair of the above", c2, fair2, frac2,
                            time.perf_counter() - t, decoded))
      # Fairlet repairs: the fairlets above as flat nodes, merged by average
      # (default) or single linkage on the soft tree's ultrametric.
      for link in ("average", "single"):
        t = time.perf_counter()
        rep = _completion.repair_by_blocks(full, np.asarray(res.fairlets), linkage=link)
        c3, fair3, frac3 = judge(rep, S, colors, constraint, args.min_size)
        repaired_rows.append((f"  + fairlet repair ({link}) of the above", c3, fair3, frac3,
                              time.perf_counter() - t, decoded))
  dt = sum(dts)
  out.append(f"# soft: n' = {args.num_internal}, {args.steps} steps, each penalty mode's "
             f"{len(args.penalties)} weights in one batched run: "
             + ", ".join(f"{d:.1f} s" for d in dts) + " (includes compiles and evaluations)")
  out.append(f"{'method':<44} {'cost':>12} {'/avg':>7} {'fair':>5} {'viol%':>7} {'s':>7}")
  merged = []
  for i, row in enumerate(soft_rows):
    merged += [row] + repaired_rows[3 * i:3 * i + 3]
  for name, c, fair, frac, dt_, *_ in rows + merged:
    out.append(f"{name:<44} {c:>12.6g} {c / base:>7.4f} {str(fair):>5} {100 * frac:>7.2f} "
               f"{dt_:>7.1f}")
  out.append(f"command: python benchmarks/bench_soft.py front --n {args.n} --steps {args.steps} "
             f"--num-internal {args.num_internal} --mode {args.mode} --penalties "
             + " ".join(f"{p:g}" for p in args.penalties))
  write("front", out)
  try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
  except ImportError:
    return
  fig, ax = plt.subplots(figsize=(6, 4))
  for name, c, fair, frac, *_ in rows:
    ax.scatter(100 * frac, c / base, marker="s", label=name)
  for decoded, style in ((False, "o--"), (True, "o-")):
    sel = [r for r in soft_rows if r[5] == decoded]
    if not sel:
      continue
    for tag, marker in (("fair_hc", "x"), ("(average)", "^"), ("(single)", "v")):
      rsel = [r for r in repaired_rows if r[5] == decoded and tag in r[0]]
      ax.scatter([100 * r[3] for r in rsel], [r[1] / base for r in rsel], marker=marker,
                 label=f"soft + {'fair_hc' if tag == 'fair_hc' else 'fairlet ' + tag[1:-1]} repair")
    ax.plot([100 * r[3] for r in sel], [r[1] / base for r in sel], style,
            label=f"soft, {'decoded' if decoded else 'expected'}-count penalty")
  ax.set(xlabel=f"clusters violating {constraint} (%)", ylabel="Dasgupta cost / average linkage",
         title=f"Census gender, n = {args.n}")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(RESULTS / "soft_front.png", dpi=120)


def fractions_eps():
  from fractions import Fraction
  return Fraction(1, 8)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("part", choices=["step", "plain", "random", "front"])
  ap.add_argument("--n", type=int, default=None)
  ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000])
  ap.add_argument("--data", nargs="+", default=["census", "bank"])
  ap.add_argument("--num-internal", type=int, default=None)
  ap.add_argument("--steps", type=int, default=None)
  ap.add_argument("--penalties", type=float, nargs="+", default=[0, 1, 3, 10, 30, 100])
  ap.add_argument("--b", type=int, default=1)
  ap.add_argument("--r", type=int, default=3)
  ap.add_argument("--min-size", type=int, default=2)
  ap.add_argument("--mode", choices=["dense", "tree"], default="tree")
  ap.add_argument("--seeds", type=int, nargs="+", default=[1],
                  help="plain: PRNG keys of the random starts (the table shows their mean)")
  ap.add_argument("--variants", nargs="+",
                  default=["const:0.01:0.1:512", "cos:0.05:0.3:512", "cos:0.02:0.3:512",
                           "const:0.01:0.1:64", "const:0.01:0.1:16"],
                  help="random: schedule:lr:internal_scale:n' of every variant")
  ap.add_argument("--trajectory", type=int, default=50,
                  help="step: how many steps of a run from the random start to time")
  args = ap.parse_args()
  if args.steps is None:
    args.steps = 20 if args.part == "step" else 200
  if args.part == "step":
    args.n = args.n or 4000
    args.num_internal = args.num_internal or 512
    part_step(args)
  elif args.part == "plain":
    args.num_internal = args.num_internal or 512
    part_plain(args)
  elif args.part == "random":
    part_random(args)
  else:
    args.n = args.n or 1000
    args.num_internal = args.num_internal or 128
    part_front(args)


if __name__ == "__main__":
  main()
