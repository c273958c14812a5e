"""Benchmark: colour counts + fairness check over a batch of colourings.

Times ``fairhc_jax.fairness.check_fairness`` (which computes the colour
counts of every node and the exact per-node verdicts) on one tree with
``n`` leaves under ``B`` random two-colour colourings, warm (compile time
reported separately), against a vectorised NumPy implementation of the same
prefix-sum algorithm (the peer, B <= 1,000: its int64 buffers grow as
B * n) in the same run. Also times ``is_fair`` (verdicts only), the jitted
check without the Python-side validation, and the colour counts with each
prefix-sum form: ``seq`` (one ``lax.scan`` over the n leaves, the form before
issue 14 and the one chosen on CPU), ``par`` (``lax.associative_scan``,
O(log n) depth, the reference form used on GPU/TPU) and ``auto`` (what
``color_counts`` runs on this backend).

Usage::

    python benchmarks/bench_fairness.py                 # n = 4000, B = 1, 100, 1000, 10000
    python benchmarks/bench_fairness.py --n 1000 --batches 1 10 --repeats 3

Goal (issue 2): at most 50 microseconds per colouring at B = 1,000, n = 4,000.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import fairness
from fairhc_jax.fairness import checks as _chk
from fairhc_jax.fairness import counts as _counts
from fairhc_jax.hierarchy import from_parent, leaf_ranges


def random_binary_parent(n: int, rng: np.random.Generator) -> np.ndarray:
  """Parent array of a random binary tree (random merges of the active clusters)."""
  parent = np.full(2 * n - 1, -1, np.int64)
  active = list(range(n))
  for new in range(n, 2 * n - 1):
    i, j = sorted(rng.choice(len(active), 2, replace=False), reverse=True)
    a, b = active.pop(i), active.pop(j)
    parent[a] = parent[b] = new
    active.append(new)
  return parent


def numpy_check(parent, colors, cap_num, cap_den):
  """Peer: the same prefix-sum algorithm in vectorised NumPy.

  Bounded representation with cap ``cap_num / cap_den``; returns
  ``is_fair bool[B]`` and the per-node violation flags ``bool[B, m]``.
  """
  m = parent.shape[0]
  n = (m + 1) // 2
  # DFS leaf order and ranges, iteratively (tree part, once per call).
  kids = [[] for _ in range(m)]
  for u in range(m):
    if parent[u] >= 0:
      kids[parent[u]].append(u)
  start = np.zeros(m, np.int64)
  stop = np.zeros(m, np.int64)
  order = []
  root = int(np.flatnonzero(parent == -1)[0])
  stack = [(root, False)]
  while stack:
    u, done = stack.pop()
    if done:
      stop[u] = len(order)
      continue
    start[u] = len(order)
    if u < n:
      order.append(u)
      stop[u] = len(order)
      continue
    stack.append((u, True))
    stack.extend((k, False) for k in reversed(kids[u]))
  order = np.asarray(order)
  x = colors[:, order]
  cum = np.zeros((colors.shape[0], n + 1, 2), np.int64)
  cum[:, 1:, 1] = np.cumsum(x, axis=1)
  cum[:, 1:, 0] = np.arange(1, n + 1) - cum[:, 1:, 1]
  counts = cum[:, stop] - cum[:, start]
  sizes = stop - start
  internal = np.arange(m) >= n
  over = (counts * cap_den > sizes[None, :, None] * cap_num) & internal[None, :, None]
  violating = over.any(-1)
  return ~violating.any(-1), violating


def timeit(fn, repeats):
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return float(np.median(times)), float(np.min(times))


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--n", type=int, default=4000)
  ap.add_argument("--batches", type=int, nargs="+", default=[1, 100, 1000, 10000])
  ap.add_argument("--repeats", type=int, default=7)
  ap.add_argument("--seed", type=int, default=0)
  args = ap.parse_args()

  rng = np.random.default_rng(args.seed)
  h = from_parent(random_binary_parent(args.n, rng))
  cons = fairness.BoundedRepresentation((3, 4))
  print(f"jax {jax.__version__}, backend {jax.default_backend()}, "
        f"devices {jax.device_count()}; n = {args.n}, binary random tree, "
        f"2 colours, BoundedRepresentation(3/4); median of {args.repeats} warm runs")
  print("check = public check_fairness (validation + counts + verdicts); kernel = "
        "the jitted part alone; us/col = check / B; times median (min)")
  print("is_fair = public is_fair (verdicts only, no per-node outputs)")
  print("counts seq / par / auto = colour counts with the sequential scan (old), the "
        "associative scan (parallel reference) and the backend's choice")
  header = (f"{'B':>6} {'compile s':>10} {'check ms':>18} {'us/col':>8} {'is_fair ms':>18} "
            f"{'us/col':>7} {'kernel ms':>18} {'counts seq ms':>18} {'counts par ms':>18} "
            f"{'counts auto ms':>18} {'numpy ms':>18} {'numpy/ours':>11}")
  print(header)
  print("-" * len(header))
  plan = fairness.constraints.plan("bench", cons, args.n, 2)
  lo_t, hi_t = jnp.asarray(plan.lo_table), jnp.asarray(plan.hi_table)
  u0, u1 = jnp.uint32(0), jnp.uint32(1)
  ranges = leaf_ranges(h)
  two = jnp.int32(2)
  for b in args.batches:
    colors = jnp.asarray(rng.integers(0, 2, size=(b, args.n)), jnp.int32)
    colors_np = np.asarray(colors)
    t0 = time.perf_counter()
    res = fairness.check_fairness(h, colors, cons, num_colors=2)
    jax.block_until_ready(res)
    compile_s = time.perf_counter() - t0

    def kernel():
      return _chk._check_batch(h.parent, ranges, colors, lo_t, hi_t, u0, u1, two, None,
                               num_colors=2, data_shares=False, leaf_rule=False)

    def counts(sequential):
      return lambda: _counts._counts_batch(h.parent, ranges, colors, num_colors=2,
                                           sequential=sequential)

    outs = [jax.block_until_ready(counts(s)()) for s in (True, False, None)]
    assert all(np.array_equal(np.asarray(outs[0]), np.asarray(o)) for o in outs[1:])
    jax.block_until_ready(kernel())
    t_check = timeit(lambda: fairness.check_fairness(h, colors, cons, num_colors=2),
                     args.repeats)
    t_kernel = timeit(kernel, args.repeats)
    jax.block_until_ready(fairness.is_fair(h, colors, cons, num_colors=2))
    t_fair = timeit(lambda: fairness.is_fair(h, colors, cons, num_colors=2), args.repeats)
    t_seq, t_par, t_auto = (timeit(counts(s), args.repeats) for s in (True, False, None))
    f = lambda t: f"{t[0] * 1e3:8.2f} ({t[1] * 1e3:7.2f})"
    if b <= 1000:
      parent_np = np.asarray(h.parent)
      t_np = timeit(lambda: numpy_check(parent_np, colors_np, 3, 4), args.repeats)
      ok, _ = numpy_check(parent_np, colors_np, 3, 4)
      assert np.array_equal(ok, np.asarray(res.is_fair)), "verdicts differ from NumPy"
      np_text, ratio = f(t_np), f"{t_np[0] / t_check[0]:.2f}"
    else:
      np_text, ratio = "-", "-"
    print(f"{b:>6} {compile_s:>10.2f} {f(t_check):>18} "
          f"{t_check[0] / b * 1e6:>8.1f} {f(t_fair):>18} {t_fair[0] / b * 1e6:>7.1f} "
          f"{f(t_kernel):>18} {f(t_seq):>18} {f(t_par):>18} {f(t_auto):>18} "
          f"{np_text:>18} {ratio:>11}")

  # The proportional rule with each colouring's own shares uses the exact
  # 64-bit (two uint32 words) arithmetic path instead of threshold tables.
  prop = fairness.Proportional((1, 10))
  b = max(args.batches)
  colors = jnp.asarray(rng.integers(0, 2, size=(b, args.n)), jnp.int32)
  jax.block_until_ready(fairness.check_fairness(h, colors, prop, num_colors=2))
  t_prop = timeit(lambda: fairness.check_fairness(h, colors, prop, num_colors=2),
                  args.repeats)
  print(f"Proportional(1/10), data shares, B = {b}: {t_prop[0] * 1e3:.2f} ms "
        f"(min {t_prop[1] * 1e3:.2f}), {t_prop[0] / b * 1e6:.1f} us per colouring")


if __name__ == "__main__":
  main()
