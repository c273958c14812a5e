"""Writes tests/data/knittel_reference.npz: outputs of the host-side driver.

Run once, before the reductions became one jitted program (commit
"tests: reference outputs of the host-side reductions"), with the driver of
that time; kept to show how the reference was made. The cases are listed in
``cases()``; ``tests/test_reductions.py`` replays them against the jitted
implementation (parent arrays and step logs must be equal).
"""

import json
import pathlib
from fractions import Fraction

import numpy as np

from fairhc_jax import hierarchy as H

OUT = pathlib.Path(__file__).resolve().parent / "data" / "knittel_reference.npz"


def random_tree(rng, n, skew=0.0):
  parent = np.full(2 * n - 1, -2)
  alive = list(range(n))
  nxt = n
  while len(alive) > 1:
    if rng.random() < skew:
      others = rng.choice(len(alive) - 1, size=1, replace=False)
      pick = np.r_[others, len(alive) - 1]
    else:
      pick = rng.choice(len(alive), size=2, replace=False)
    for i in pick:
      parent[alive[i]] = nxt
    chosen = set(pick.tolist())
    alive = [a for j, a in enumerate(alive) if j not in chosen] + [nxt]
    nxt += 1
  parent[alive[0]] = -1
  return H.from_parent(parent)


def cases():
  """(name, n, skew, seed, algorithm, params) for every reference case."""
  out = []
  seed = 0
  for n in (1, 2, 3, 5, 16, 48, 97, 200):
    for skew in (0.0, 0.6, 0.95):
      seed += 1
      out.append(("rebalance", n, skew, seed, {}))
      out.append(("refine", n, skew, seed, {"eps": [1, 10]}))
      if n >= 16:
        out.append(("refine", n, skew, seed, {"eps": [3, 10]}))
        out.append(("stochastic", n, skew, seed, {"eps": [1, 8], "min_cluster_size": 4}))
        out.append(("stochastic", n, skew, seed, {"eps": [1, 8], "cut_depth": 2}))
      if n >= 48:
        for h, k, c in ((2, 2, 2), (4, 2, 2), (8, 2, 2), (8, 4, 3), (4, 2, 3)):
          out.append(("fair", n, skew, seed, {"eps": [1, 16], "h": h, "k": k, "c": c}))
        out.append(("fair", n, skew, seed, {"eps": [1, 8], "h": 4, "k": 2, "c": 2,
                                            "min_cluster_size": 5}))
  # operation costs on a few
  out.append(("refine", 48, 0.8, 101, {"eps": [1, 10], "track_cost": True}))
  out.append(("fair", 97, 0.3, 102, {"eps": [1, 16], "h": 4, "k": 2, "c": 2,
                                     "track_cost": True}))
  return out


def inputs(n, skew, seed, params):
  rng = np.random.default_rng(seed)
  tree = random_tree(rng, n, skew)
  colors = None
  if "c" in params:
    c = params["c"]
    colors = rng.integers(0, c, n)
    if c == 2:
      colors = (rng.random(n) < 0.3).astype(np.int64)
    colors[:c] = np.arange(c)
  return tree, colors


def run(red, name, tree, colors, params):
  eps = Fraction(*params["eps"]) if "eps" in params else None
  tc = params.get("track_cost", False)
  if name == "rebalance":
    return red.rebalance_tree(tree, track_cost=tc)
  if name == "refine":
    return red.refine_rebalance_tree(tree, eps, track_cost=tc)
  if name == "stochastic":
    kw = {k: params[k] for k in ("min_cluster_size", "cut_depth") if k in params}
    return red.stochastically_fair_hc(tree, eps, track_cost=tc, **kw)
  kw = {"min_cluster_size": params["min_cluster_size"]} if "min_cluster_size" in params else {}
  return red.fair_hc(tree, colors, h=params["h"], k=params["k"], eps=eps, track_cost=tc, **kw)


def main():
  from fairhc_jax.algorithms import reductions as red
  arrays = {}
  meta = []
  for i, (name, n, skew, seed, params) in enumerate(cases()):
    tree, colors = inputs(n, skew, seed, params)
    try:
      out, steps = run(red, name, tree, colors, params)
    except ValueError as e:
      meta.append({"error": str(e)})
      continue
    arrays[f"parent_{i}"] = np.asarray(out.parent)
    arrays[f"sizes_{i}"] = (np.concatenate([s.sizes for s in steps]) if steps
                            else np.zeros(0, np.int64))
    meta.append({"steps": [[s.operator, s.depth, s.count, s.cost] for s in steps]})
  arrays["meta"] = np.array(json.dumps(meta))
  np.savez_compressed(OUT, **arrays)
  print(f"wrote {OUT}: {len(meta)} cases, {sum('error' in m for m in meta)} errors")


if __name__ == "__main__":
  main()
