"""First call (compile + run) vs second call of the README's main calls at n = 2,000.

Usage: python benchmarks/compile_time.py   (prints the README's compile-time table rows)
"""
import sys, time; sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
import numpy as np, jax, fairhc_jax as fh
def t(f):
  t0 = time.perf_counter(); jax.block_until_ready(f()); return time.perf_counter() - t0
n = 2000
data = fh.datasets.synthetic_blobs(jax.random.key(0), n, proportions=(1, 2))
rows = []
D = None
def dist(): 
  global D; D = fh.pairwise_distances(data.features); return D
rows.append(("pairwise_distances", t(dist), t(dist)))
S = fh.similarity(D)
tree = None
def lk():
  global tree; tree = fh.linkage(D); return tree.parent
rows.append(("linkage (average)", t(lk), t(lk)))
rows.append(("dasgupta_cost", t(lambda: fh.dasgupta_cost(tree, S)), t(lambda: fh.dasgupta_cost(tree, S))))
rows.append(("fairness_report", t(lambda: fh.fairness_report(tree, data.colors, fh.Balance(1, 3)) and 0), t(lambda: fh.fairness_report(tree, data.colors, fh.Balance(1, 3)) and 0)))
for name, a, b in rows:
  print(f"| `{name}` | {a:.2f} s | {1000*b:.0f} ms |")
