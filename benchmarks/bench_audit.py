"""Audit of a whole-data-set fair tree under many random colourings.

The tree: the fairlet tree of all of Census (gender, Balance(1, 3)) on a
random fairlet decomposition (no local search: the audit's cost depends on
the tree's shape and size, not on its quality), checked at its own scope
(every cluster a union of fairlets). ``is_fair`` then runs over
``--colourings`` random colourings (a balanced coin per point) in batches
of ``--batch``, warm (one batch compiles first, reported separately).

Usage:
  python benchmarks/bench_audit.py                       # 10^5 colourings
  python benchmarks/bench_audit.py --colourings 20000 --out /tmp/audit.txt
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fairhc_jax as fh  # noqa: E402
from fairhc_jax import datasets, fairlets  # noqa: E402
from fairhc_jax.algorithms import fairlet_hc as fhc  # noqa: E402
from fairhc_jax.fairness import Balance, is_fair  # noqa: E402


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--colourings", type=int, default=100_000)
  ap.add_argument("--batch", type=int, default=2_000)
  ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "audit_census.txt"))
  a = ap.parse_args()
  load0 = os.getloadavg()[0]
  data_dir = os.environ.get("FAIRHC_DATA_DIR", str(ROOT.parent / "shared" / "data" / "uci"))
  ds = datasets.load_census(color="gender", data_dir=data_dir, download=False)
  X = np.asarray(ds.features, np.float32)
  colors = np.asarray(ds.colors, np.int32)
  n = len(X)
  constraint = Balance(1, 3)
  D = fh.check_distances(fh.pairwise_distances(X))
  dec = fairlets.fairlet_decomposition(jax.random.key(0), colors, constraint)
  h = jax.block_until_ready(fhc.fairlet_tree(D, dec, validate=False))
  del D
  scope = fh.fairness.ClusterScope(blocks=dec.fairlet_of)
  assert bool(is_fair(h, colors, constraint, scope=scope))
  key = jax.random.key(1)
  num = -(-a.colourings // a.batch)
  t = time.perf_counter()
  jax.block_until_ready(is_fair(h, jnp.zeros((a.batch, n), jnp.int32), constraint, scope=scope))
  compile_s = time.perf_counter() - t
  fair = 0
  t = time.perf_counter()
  for b in range(num):
    cols = jax.random.bernoulli(jax.random.fold_in(key, b), 0.5, (a.batch, n)).astype(jnp.int32)
    fair += int(jnp.sum(is_fair(h, cols, constraint, scope=scope)))
  warm = time.perf_counter() - t
  lines = [f"# is_fair over {num * a.batch} random colourings of the whole-Census fairlet tree "
           f"(n = {n}, {constraint}, scope = unions of fairlets), batches of {a.batch}; "
           f"jax {jax.__version__} on {jax.devices()[0].platform}; load average {load0:.1f} at the "
           f"start, {os.getloadavg()[0]:.1f} at the end (2 cores)",
           "# command: python benchmarks/bench_audit.py"
           + (f" --colourings {a.colourings}" if a.colourings != 100_000 else "")
           + (f" --batch {a.batch}" if a.batch != 2_000 else ""),
           f"compile (first batch): {compile_s:.2f} s",
           f"warm, all batches (colourings drawn inside the loop): {warm:.2f} s = "
           f"{warm / (num * a.batch) * 1e6:.1f} us per colouring; {fair} fair"]
  print("\n".join(lines))
  pathlib.Path(a.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
  main()
