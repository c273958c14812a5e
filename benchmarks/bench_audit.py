"""Audit of a whole-data-set fair tree under many random colourings.

The tree: the fairlet tree of all of Census (gender, Balance(1, 3)) on a
random fairlet decomposition (no local search: the audit's cost depends on
the tree's shape and size, not on its quality), checked at its own scope
(every cluster a union of fairlets). ``is_fair`` then runs over
``--colourings`` random colourings (a balanced coin per point) in batches
of ``--batch``, warm (one batch compiles first, reported separately), once
with the colourings drawn by ``jax.random.bernoulli`` and once by
``fairness.random_colorings`` (1 random bit per point), both inside the loop.

The table also splits one batch's time (median of ``--split`` batches): each
draw alone (``bernoulli`` with the default and the ``rbg`` key, and
``random_colorings``), ``is_fair`` alone (and its input checks alone), the
previous float32 path (``checks.verdict_chunk``: prefix sums by triangular
matmuls) and the int32 path (``checks.check_chunk``) on the same batches,
whose verdicts must agree, and ``check_fairness`` and ``color_counts`` per
batch.

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
from fairhc_jax.fairness import Balance, is_fair, random_colorings  # noqa: E402
from fairhc_jax.fairness import checks as _checks  # noqa: E402
from fairhc_jax.fairness import counts as _counts  # noqa: E402
from fairhc_jax.fairness import scope as _scope  # noqa: E402
from fairhc_jax.fairness.constraints import plan  # noqa: E402


@functools.partial(jax.jit, static_argnames=("num_colors",))
def int32_is_fair(parent, ranges, colors, lo_table, hi_table, min_size, blocks, *,
                  num_colors):
  """The previous int32 path (scanned counts in the lane layout), for comparison."""
  tree, lo_node, hi_node, mixed, checked = _checks.check_setup(
      parent, ranges, lo_table, hi_table, min_size, blocks, False)

  def chunk(cols):
    counts = _counts.counts_lanes_scan(tree, cols, num_colors)      # [m, c, b]
    bad = (counts < lo_node[:, :, None]) | (counts > hi_node[:, :, None])
    return ~jnp.any(bad & checked[:, None, None], axis=(0, 1))
  return _counts.map_chunks(chunk, colors)


@functools.partial(jax.jit, static_argnames=("num_colors",))
def float32_is_fair(parent, ranges, colors, lo_table, hi_table, min_size, blocks, *,
                    num_colors):
  """The previous float32 verdict path (triangular-matmul prefix sums), for comparison."""
  tree, lo_node, hi_node, mixed, checked = _checks.check_setup(
      parent, ranges, lo_table, hi_table, min_size, blocks, False)
  low, high = _checks.verdict_intervals(tree, lo_node, hi_node, checked, num_colors)
  return _counts.map_chunks(
      lambda cols: _checks.verdict_chunk(tree, cols, low, high, mixed, num_colors=num_colors),
      colors, _checks.VERDICT_CHUNK)


def _timed(f):
  t = time.perf_counter()
  out = jax.block_until_ready(f())
  return out, time.perf_counter() - t


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--colourings", type=int, default=100_000)
  ap.add_argument("--batch", type=int, default=2_000)
  ap.add_argument("--points", type=int, default=None,
                  help="only the first N points of Census (a quick probe; default all)")
  ap.add_argument("--split", type=int, default=3,
                  help="batches timed piece by piece (draws, is_fair, old paths, checks)")
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
  total = num * a.batch
  draw_bern = jax.jit(lambda k: jax.random.bernoulli(k, 0.5, (a.batch, n)).astype(jnp.int32))
  draw_bits = lambda k: random_colorings(k, [0.5, 0.5], a.batch, n)  # noqa: E731
  t = time.perf_counter()
  int(jnp.sum(is_fair(h, jnp.zeros((a.batch, n), jnp.int32), constraint, scope=scope)))
  compile_s = time.perf_counter() - t
  # the draws compile too: once, outside the timed loops
  jax.block_until_ready(draw_bern(jax.random.fold_in(key, num)))
  jax.block_until_ready(draw_bits(jax.random.fold_in(key, num)))
  loops = {}
  for name, draw in (("jax.random.bernoulli", draw_bern), ("random_colorings", draw_bits)):
    fair = 0
    t = time.perf_counter()
    for b in range(num):
      cols = draw(jax.random.fold_in(key, b))
      fair += int(jnp.sum(is_fair(h, cols, constraint, scope=scope)))
    loops[name] = (time.perf_counter() - t, fair)
  # One batch piece by piece (median over --split batches), and the old paths.
  pl = plan("bench", constraint, n, 2)
  ranges = _counts.tree_ranges(h)
  old_args = (h.parent, ranges)
  resolved = _scope.resolve_scope("bench_audit", scope, n)
  old_tail = (pl.lo_table, pl.hi_table, jnp.int32(resolved.min_size), resolved.blocks)
  zeros = jnp.zeros((a.batch, n), jnp.int32)
  _, old_compile = _timed(lambda: int32_is_fair(*old_args, zeros, *old_tail, num_colors=2))
  _, f32_compile = _timed(lambda: float32_is_fair(*old_args, zeros, *old_tail, num_colors=2))
  _, cf_compile = _timed(lambda: fh.fairness.check_fairness(h, zeros, constraint,
                                                            scope=scope).status)
  _, cc_compile = _timed(lambda: fh.fairness.color_counts(h, zeros, 2))
  rbg = jax.random.key(1, impl="rbg")
  jax.block_until_ready(draw_bern(rbg))
  rows = {k: [] for k in ("bern", "rbg", "bits", "new", "prep", "f32", "old", "cf", "cc")}
  for b in range(a.split):
    cols, s_ = _timed(lambda: draw_bern(jax.random.fold_in(key, b)))
    rows["bern"].append(s_)
    rows["rbg"].append(_timed(lambda: draw_bern(jax.random.fold_in(rbg, b)))[1])
    bits_cols, s_ = _timed(lambda: draw_bits(jax.random.fold_in(key, b)))
    rows["bits"].append(s_)
    assert 0.49 < float(jnp.mean(bits_cols)) < 0.51
    del bits_cols
    got, s_ = _timed(lambda: is_fair(h, cols, constraint, scope=scope))
    rows["new"].append(s_)
    rows["prep"].append(_timed(lambda: _checks.prepare_check(
        "is_fair", h, cols, constraint, scope, None, False).colors)[1])
    ref32, s_ = _timed(lambda: float32_is_fair(*old_args, cols, *old_tail, num_colors=2))
    rows["f32"].append(s_)
    ref, s_ = _timed(lambda: int32_is_fair(*old_args, cols, *old_tail, num_colors=2))
    rows["old"].append(s_)
    assert bool(jnp.all(got == ref)) and bool(jnp.all(got == ref32)), "verdicts differ"
    res, s_ = _timed(lambda: fh.fairness.check_fairness(h, cols, constraint, scope=scope))
    rows["cf"].append(s_)
    assert bool(jnp.all(res.is_fair == got)), "check_fairness and is_fair differ"
    del res
    rows["cc"].append(_timed(lambda: fh.fairness.color_counts(h, cols, 2))[1])
  med = {k: float(np.median(v)) for k, v in rows.items()}
  per = lambda s_: s_ / a.batch * 1e6  # noqa: E731
  ext = lambda s_: s_ * total / a.batch  # noqa: E731
  lines = [f"# is_fair over {total} random colourings of the whole-Census fairlet tree "
           f"(n = {n}, {constraint}, scope = unions of fairlets), batches of {a.batch}; "
           f"jax {jax.__version__} on {jax.devices()[0].platform}; load average {load0:.1f} at the "
           f"start, {os.getloadavg()[0]:.1f} at the end (2 cores)",
           "# command: python benchmarks/bench_audit.py"
           + (f" --colourings {a.colourings}" if a.colourings != 100_000 else "")
           + (f" --batch {a.batch}" if a.batch != 2_000 else "")
           + (f" --points {a.points}" if a.points else "")
           + (f" --split {a.split}" if a.split != 3 else ""),
           f"compile (first batch): is_fair {compile_s:.2f} s, float32 path {f32_compile:.2f} s, "
           f"int32 path {old_compile:.2f} s, check_fairness {cf_compile:.2f} s, color_counts "
           f"{cc_compile:.2f} s (the draws compiled separately, untimed)"]
  for name, (warm, fair) in loops.items():
    lines.append(f"warm, all {total} colourings drawn inside the loop with {name}: "
                 f"{warm:.2f} s = {warm / total * 1e6:.1f} us per colouring; {fair} fair")
  lines += [
      f"one batch of {a.batch}, median of {a.split}:",
      f"  draw: jax.random.bernoulli {med['bern']:.3f} s (rbg key {med['rbg']:.3f} s), "
      f"random_colorings (1 bit per point) {med['bits']:.3f} s",
      f"  is_fair (bit-sliced) {med['new']:.3f} s = {per(med['new']):.1f} us per colouring "
      f"(-> {ext(med['new']):.1f} s per {total}); of which input checks {med['prep']:.3f} s",
      f"  previous float32 path {med['f32']:.3f} s ({per(med['f32']):.1f} us per colouring, "
      f"-> {ext(med['f32']):.1f} s per {total}); int32 path {med['old']:.3f} s "
      f"({per(med['old']):.1f} us per colouring); speed-up {med['f32'] / med['new']:.2f}x over "
      f"float32, {med['old'] / med['new']:.2f}x over int32; verdicts identical",
      f"  check_fairness {med['cf']:.3f} s ({per(med['cf']):.1f} us per colouring), "
      f"color_counts {med['cc']:.3f} s ({per(med['cc']):.1f} us per colouring)"]
  print("\n".join(lines))
  pathlib.Path(a.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
  main()
