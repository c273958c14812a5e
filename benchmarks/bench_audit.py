"""Audit of a whole-data-set fair tree under many random colourings.

The tree: the fairlet tree of all of Census (gender, Balance(1, 3)) on a
random fairlet decomposition (no local search: the audit's cost depends on
the tree's shape and size, not on its quality), checked at its own scope
(every cluster a union of fairlets). ``is_fair`` then runs over
``--colourings`` random colourings (a balanced coin per point) in batches
of ``--batch``, warm (one batch compiles first, reported separately).

The table also splits one batch's time (median of ``--split`` batches):
drawing the colourings alone, ``is_fair`` alone, and the previous int32
path (``checks.check_chunk``: int32 one-hot, scanned prefix sums, lane
layout) on the same batches, whose verdicts must agree.

Usage:
  python benchmarks/bench_audit.py                       # 10^5 colourings
  python benchmarks/bench_audit.py --colourings 20000 --out /tmp/audit.txt
"""

from __future__ import annotations

import argparse
import functools
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
from fairhc_jax.fairness import checks as _checks  # noqa: E402
from fairhc_jax.fairness import counts as _counts  # noqa: E402
from fairhc_jax.fairness import scope as _scope  # noqa: E402
from fairhc_jax.fairness.constraints import plan  # noqa: E402


@functools.partial(jax.jit, static_argnames=("num_colors",))
def int32_is_fair(parent, ranges, colors, lo_table, hi_table, min_size, blocks, *,
                  num_colors):
  """The previous verdict path (int32 counts in the lane layout), for comparison."""
  tree, lo_node, hi_node, mixed, checked = _checks.check_setup(
      parent, ranges, lo_table, hi_table, min_size, blocks, False)
  return _counts.map_chunks(
      lambda cols: _checks.check_chunk(tree, cols, lo_node, hi_node, mixed, checked,
                                       jnp.uint32(1), jnp.uint32(1), num_colors=num_colors,
                                       data_shares=False)[0], colors)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--colourings", type=int, default=100_000)
  ap.add_argument("--batch", type=int, default=2_000)
  ap.add_argument("--points", type=int, default=None,
                  help="only the first N points of Census (a quick probe; default all)")
  ap.add_argument("--split", type=int, default=3,
                  help="batches timed piece by piece (draw, is_fair, int32 path)")
  ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "audit_census.txt"))
  a = ap.parse_args()
  load0 = os.getloadavg()[0]
  data_dir = os.environ.get("FAIRHC_DATA_DIR", str(ROOT.parent / "shared" / "data" / "uci"))
  ds = datasets.load_census(color="gender", data_dir=data_dir, download=False)
  X = np.asarray(ds.features, np.float32)[:a.points]
  colors = np.asarray(ds.colors, np.int32)[:a.points]
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
  int(jnp.sum(is_fair(h, jnp.zeros((a.batch, n), jnp.int32), constraint, scope=scope)))
  compile_s = time.perf_counter() - t
  # the draw compiles too: once, outside the timed loop
  jax.block_until_ready(jax.random.bernoulli(jax.random.fold_in(key, num), 0.5,
                                             (a.batch, n)).astype(jnp.int32))
  fair = 0
  t = time.perf_counter()
  for b in range(num):
    cols = jax.random.bernoulli(jax.random.fold_in(key, b), 0.5, (a.batch, n)).astype(jnp.int32)
    fair += int(jnp.sum(is_fair(h, cols, constraint, scope=scope)))
  warm = time.perf_counter() - t
  # One batch piece by piece (median over --split batches), and the int32 path.
  pl = plan("bench", constraint, n, 2)
  ranges = _counts.tree_ranges(h)
  old_args = (h.parent, ranges)
  resolved = _scope.resolve_scope("bench_audit", scope, n)
  old_tail = (pl.lo_table, pl.hi_table, jnp.int32(resolved.min_size), resolved.blocks)
  t = time.perf_counter()
  jax.block_until_ready(int32_is_fair(*old_args, jnp.zeros((a.batch, n), jnp.int32), *old_tail,
                                      num_colors=2))
  old_compile = time.perf_counter() - t
  draw_s, new_s, old_s = [], [], []
  for b in range(a.split):
    t = time.perf_counter()
    cols = jax.block_until_ready(jax.random.bernoulli(
        jax.random.fold_in(key, b), 0.5, (a.batch, n)).astype(jnp.int32))
    draw_s.append(time.perf_counter() - t)
    t = time.perf_counter()
    got = jax.block_until_ready(is_fair(h, cols, constraint, scope=scope))
    new_s.append(time.perf_counter() - t)
    t = time.perf_counter()
    ref = jax.block_until_ready(int32_is_fair(*old_args, cols, *old_tail, num_colors=2))
    old_s.append(time.perf_counter() - t)
    assert bool(jnp.all(got == ref)), "float32 and int32 verdicts differ"
  med = lambda v: float(np.median(v))  # noqa: E731
  lines = [f"# is_fair over {num * a.batch} random colourings of the whole-Census fairlet tree "
           f"(n = {n}, {constraint}, scope = unions of fairlets), batches of {a.batch}; "
           f"jax {jax.__version__} on {jax.devices()[0].platform}; load average {load0:.1f} at the "
           f"start, {os.getloadavg()[0]:.1f} at the end (2 cores)",
           "# command: python benchmarks/bench_audit.py"
           + (f" --colourings {a.colourings}" if a.colourings != 100_000 else "")
           + (f" --batch {a.batch}" if a.batch != 2_000 else "")
           + (f" --points {a.points}" if a.points else "")
           + (f" --split {a.split}" if a.split != 3 else ""),
           f"compile (first batch): {compile_s:.2f} s (the draw compiled separately, untimed)",
           f"warm, all batches (colourings drawn inside the loop): {warm:.2f} s = "
           f"{warm / (num * a.batch) * 1e6:.1f} us per colouring; {fair} fair",
           f"one batch of {a.batch}, median of {a.split}: draw (jax.random.bernoulli) "
           f"{med(draw_s):.3f} s, is_fair {med(new_s):.3f} s "
           f"({med(new_s) / a.batch * 1e6:.1f} us per colouring), previous int32 path "
           f"{med(old_s):.3f} s ({med(old_s) / a.batch * 1e6:.1f} us per colouring; "
           f"compile {old_compile:.2f} s); speed-up {med(old_s) / med(new_s):.2f}x, "
           f"verdicts identical"]
  print("\n".join(lines))
  pathlib.Path(a.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
  main()
