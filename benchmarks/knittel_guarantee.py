"""What the Knittel et al. reductions cost and guarantee on the papers' data.

Census (coloured by race) and Bank (marital status), proportional samples
(default n = 2,000, 3 replications; ``--n 4000`` for larger), average-linkage
input on the raw numeric features, Dasgupta cost with similarity
``1 / (1 + d)`` (the papers' setting). Reported per algorithm / setting:

* the cost ratio ``cost(T_out) / cost(T_in)`` (mean, min, max over reps);
* for FairHC: the fold rounds ``T``, the guaranteed band half-width
  ``Delta`` of the minority colour (``result.constraint``), the largest
  observed ``|share - phi|`` over the fold roots (``result.scope``), a NumPy
  check that every fold root lies in the band, and the largest deviation
  over *all* internal clusters of at least 2 points;
* relative balance of the output at ``eps``: the number of unbalanced nodes
  and how many of them are bottom clusters (only leaf children) or nodes
  with more than two children.

Every output keeps all n points and passes validation (asserted).

Usage:
  python benchmarks/knittel_guarantee.py [--n 2000] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time
from fractions import Fraction

import jax
import numpy as np

from fairhc_jax import balance, datasets
from fairhc_jax import hierarchy as hier
from fairhc_jax.agglomerative import linkage
from fairhc_jax.algorithms import reductions as red
from fairhc_jax.distances import pairwise_distances, similarity
from fairhc_jax.objectives import dasgupta_cost

SWEEP = [(4, 2, Fraction(1, 8)), (8, 2, Fraction(1, 8)), (8, 4, Fraction(1, 8)),
         (16, 4, Fraction(1, 8)), (4, 2, Fraction(1, 16)), (8, 2, Fraction(1, 16)),
         (16, 2, Fraction(1, 16))]
DATA_DIR = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "uci"


def load(name):
  data_dir = os.environ.get("FAIRHC_DATA_DIR", str(DATA_DIR))
  if name == "census":
    return datasets.load_census(color="race", data_dir=data_dir, download=False)
  return datasets.load_bank(color="marital", data_dir=data_dir, download=False)


def node_table(tree, colors, c):
  """(parent, depth, size, counts[m, c], only_leaf_children, num_children) in NumPy."""
  parent = np.asarray(tree.parent).astype(np.int64)
  m = parent.size
  n = (m + 1) // 2
  depth = np.asarray(hier.depth(tree))
  counts = np.zeros((m, c), np.int64)
  counts[np.arange(n), colors] = 1
  order = np.argsort(depth, kind="stable")[::-1]  # deepest first
  for u in order:
    if parent[u] >= 0:
      counts[parent[u]] += counts[u]
  kids = np.bincount(parent[parent >= 0], minlength=m)
  internal_kids = np.bincount(parent[(parent >= 0) & (np.arange(m) >= n)], minlength=m)
  used = parent != -2
  internal = used & (np.arange(m) >= n)
  return parent, depth, counts.sum(1), counts, internal & (internal_kids == 0), kids, internal


def fair_report(res, colors, c, eps):
  out = res.hierarchy
  parent, depth, size, counts, bottom, kids, internal = node_table(out, colors, c)
  g = int(np.argmin(np.bincount(colors, minlength=c)))
  phi = Fraction(int(np.sum(colors == g)), colors.size)
  blocks = np.asarray(res.scope.blocks)
  rounds = int(depth[blocks_root(parent, depth, blocks)].max())
  lo, hi = res.constraint
  roots = internal & (depth <= rounds)
  ok = all(Fraction(lo[g]) * int(size[u]) <= int(counts[u, g]) <= Fraction(hi[g]) * int(size[u])
           for u in np.flatnonzero(roots))
  share = counts[:, g] / np.maximum(size, 1)
  dev_roots = float(np.max(np.abs(share[roots] - float(phi))))
  dev_all = float(np.max(np.abs(share[internal] - float(phi))))
  delta = float(max(phi - Fraction(lo[g]), Fraction(hi[g]) - phi))
  bad = balance.unbalanced_nodes(out, eps)
  return dict(rounds=rounds, delta=delta, dev_roots=dev_roots, dev_all=dev_all, band_ok=ok,
              unbalanced=len(bad), bad_bottom=int(np.sum(bottom[bad])),
              bad_wide=int(np.sum(kids[bad] > 2)))


def blocks_root(parent, depth, blocks):
  """The node of every block: from one point, walk up until all its points are below."""
  lv = np.unique(blocks, return_index=True)[1]
  return walk_to_blocks(parent, parent[lv], np.bincount(blocks)[blocks[lv]], depth)


def walk_to_blocks(parent, x, want, depth):
  m = parent.size
  n = (m + 1) // 2
  cnt = np.zeros(m, np.int64)
  cnt[:n] = 1
  for u in np.argsort(depth, kind="stable")[::-1]:
    if parent[u] >= 0:
      cnt[parent[u]] += cnt[u]
  while True:
    up = np.where(cnt[x] < want, parent[x], x)
    if np.array_equal(up, x):
      return x
    x = up


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--n", type=int, default=2000)
  p.add_argument("--reps", type=int, default=3)
  a = p.parse_args()
  print(f"jax {jax.__version__}, backend {jax.default_backend()}; n = {a.n}, {a.reps} "
        "replications, raw features, average linkage, similarity 1/(1+d)")
  for name in ("census", "bank"):
    ds = load(name)
    rows = {}
    t0 = time.time()
    for rep in range(a.reps):
      idx = datasets.proportional_subsample(jax.random.key(rep), ds.colors, a.n)
      x = jax.numpy.asarray(ds.features[idx], jax.numpy.float32)
      cols = np.asarray(ds.colors[idx])
      c = int(cols.max()) + 1
      d = pairwise_distances(x)
      s = similarity(d)
      tree = linkage(d, "average")
      c_in = float(dasgupta_cost(tree, s))
      runs = [("rebalance_tree", lambda: red.rebalance_tree(tree), None),
              ("refine_rebalance_tree eps=1/8", lambda: red.refine_rebalance_tree(tree, Fraction(1, 8)), Fraction(1, 8)),
              ("refine_rebalance_tree eps=1/16", lambda: red.refine_rebalance_tree(tree, Fraction(1, 16)), Fraction(1, 16)),
              ("stochastically_fair_hc eps=1/8 s=32",
               lambda: red.stochastically_fair_hc(tree, Fraction(1, 8), min_cluster_size=32), Fraction(1, 8))]
      for hs, k, eps in SWEEP:
        runs.append((f"fair_hc num_sorted={hs} num_folds={k} eps={eps}",
                     (lambda hs=hs, k=k, eps=eps:
                      red.fair_hc(tree, cols, eps, num_sorted=hs, num_folds=k)), eps))
      for label, fn, eps in runs:
        res = fn()
        hier.validate(res.hierarchy)
        assert res.hierarchy.num_leaves == a.n
        r = rows.setdefault(label, {"ratio": [], "fair": []})
        r["ratio"].append(float(dasgupta_cost(res.hierarchy, s)) / c_in)
        if res.constraint is not None:
          r["fair"].append(fair_report(res, cols, c, eps))
        elif eps is not None:
          r.setdefault("unbal", []).append(len(balance.unbalanced_nodes(res.hierarchy, eps)))
    phi = float(np.min(np.bincount(ds.colors)) / ds.colors.size)
    print(f"\n{name}: minority share of the data {phi:.3f}; {time.time() - t0:.0f} s")
    print(f"{'algorithm':<44} {'cost ratio':>10} {'min':>6} {'max':>6} | {'T':>2} "
          f"{'Delta':>6} {'dev roots':>9} {'band ok':>7} {'dev all':>7} | unbalanced (bottom, >2 kids)")
    for label, r in rows.items():
      v = np.array(r["ratio"])
      line = f"{label:<44} {v.mean():10.3f} {v.min():6.3f} {v.max():6.3f} |"
      if r["fair"]:
        f = r["fair"]
        line += (f" {max(x['rounds'] for x in f):2d} {max(x['delta'] for x in f):6.3f} "
                 f"{max(x['dev_roots'] for x in f):9.3f} {str(all(x['band_ok'] for x in f)):>7} "
                 f"{max(x['dev_all'] for x in f):7.3f} | "
                 f"{max(x['unbalanced'] for x in f)} ({max(x['bad_bottom'] for x in f)}, "
                 f"{max(x['bad_wide'] for x in f)})")
      elif "unbal" in r:
        line += f"{'':>37} | {max(r['unbal'])}"
      print(line, flush=True)


if __name__ == "__main__":
  main()
