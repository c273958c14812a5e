"""Benchmark: lower bounds for the blocked objective and check passes on this backend.

Issue 10 asks for every public objective call within 3x of one ``jnp.sum``
over the matrix and for the matrix check under 2x. This script times, warm,
interleaved (best of ``--reps``, ``block_until_ready``), the cheapest
programs that do the arithmetic those passes need, against one ``jnp.sum``,
so that the gap between the library's figures (benchmarks/bench_objectives.py)
and what the backend can do at all is measured rather than guessed:

* whole-matrix fused passes (one XLA fusion, no loop, no gather): a sum with
  a per-column weight, the similarity ``1 / (1 + d)``, the LCA-factor
  arithmetic of the value kernel (``min(max(h[i], c[j]), 2 W c[j])``);
* the same arithmetic as a ``fori_loop`` over contiguous row slabs of
  ``--rows`` rows (per-row sums written to a buffer): a plain sum, the value
  kernel's arithmetic, the five sums of ``tree_objectives`` (value, cost,
  revenue, ``d(V)``, ``s(V)`` with ``s = 1 / (1 + d)`` on the fly);
* that loop with the rows gathered (a random permutation; the objectives
  need rows in DFS leaf order);
* the integer arithmetic of the one-pass check over contiguous slabs (bit
  patterns, mix, row hash, elementwise column hash and maximum);
* the whole matrix gathered into a permuted row order and summed.

Both wall and process CPU time are printed (ratio = time / the sum's): on a
shared machine the CPU ratio is the steadier one. The first lines say
whether XLA:CPU ran the reference sum as a YNNPACK fusion (``__ynn_fusion``
in the compiled HLO): standalone float reductions are, and they are much
faster than XLA's own loop emitter, but not inside a while loop's body.

Usage: python benchmarks/bench_floors.py [--sizes 4000,8000] [--rows 512] [--reps 7]
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from compare_onepass import best  # (wall, cpu) best of interleaved warm runs


def _value_factor(h, c, W):
  """The value kernel's masked LCA factor: min(max(h, c), 2 W c) (c = 0 masks)."""
  return jnp.minimum(jnp.maximum(h, c), 2 * W * c)


def _five(slab, h, c, W):
  sim = 1 / (1 + slab)
  big = 2 * W * c
  mx = jnp.maximum(h, c)
  fac = jnp.minimum(mx, big)
  rfac = jnp.minimum(W - mx, big)
  cm = jnp.minimum(big, 1)
  return (slab * fac, sim * fac, sim * rfac, slab * cm, sim * cm)


def _row_loop(n, rows, terms, gather):
  """fori_loop over row slabs; per-row sums of ``terms`` into an [n, k] buffer."""
  steps = n // rows

  @jax.jit
  def f(D, perm, h, c):
    W = jnp.asarray(n, D.dtype)
    k = len(terms(D[:1], h[:1, None], c[None], W))

    def body(t, acc):
      if gather:
        slab = D[lax.dynamic_slice_in_dim(perm, t * rows, rows)]
      else:
        slab = lax.dynamic_slice_in_dim(D, t * rows, rows)
      hv = lax.dynamic_slice_in_dim(h, t * rows, rows)[:, None]
      r = lax.reduce(terms(slab, hv, c[None], W), (jnp.zeros((), D.dtype),) * k,
                     lambda x, y: tuple(a + b for a, b in zip(x, y)), (1,))
      return lax.dynamic_update_slice_in_dim(acc, jnp.stack(r, 1), t * rows, 0)

    return jnp.sum(lax.fori_loop(0, steps, body, jnp.zeros((n, k), D.dtype)), 0)

  return f


def _check_loop(n, rows):
  """The one-pass check's integer arithmetic over contiguous slabs (no overlap)."""
  steps = n // rows

  @jax.jit
  def f(D, r):
    def body(t, carry):
      y, z, top = carry
      b = lax.bitcast_convert_type(lax.dynamic_slice_in_dim(D, t * rows, rows), jnp.uint32)
      hm = b ^ (b >> np.uint32(16))
      rb = lax.dynamic_slice_in_dim(r, t * rows, rows)
      y = lax.dynamic_update_slice_in_dim(
          y, jnp.sum(hm * r[None, :], axis=1, dtype=jnp.uint32), t * rows, 0)
      return y, z + hm * rb[:, None], jnp.maximum(top, b)

    init = (jnp.zeros(n, jnp.uint32), jnp.zeros((rows, n), jnp.uint32),
            jnp.zeros((rows, n), jnp.uint32))
    y, z, top = lax.fori_loop(0, steps, body, init)
    return jnp.all(y == jnp.sum(z, 0, dtype=jnp.uint32)), jnp.max(top)

  return f


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--sizes", default="4000,8000")
  ap.add_argument("--rows", type=int, default=512)
  ap.add_argument("--reps", type=int, default=7)
  args = ap.parse_args()
  total = jax.jit(jnp.sum)
  probe = total.lower(jnp.zeros((64, 64), jnp.float32)).compile().as_text()
  print(f"jax {jax.__version__}, devices {jax.devices()}; best of {args.reps}; "
        f"x = time / jnp.sum (wall, cpu); measured while other jobs ran unless "
        f"the machine was quiet")
  print(f"command: python benchmarks/bench_floors.py --sizes {args.sizes} "
        f"--rows {args.rows} --reps {args.reps}")
  print(f"jnp.sum compiled as a YNNPACK fusion: {'__ynn_fusion' in probe}")
  for n in [int(v) for v in args.sizes.split(",")]:
    rows = min(args.rows, n)
    n_eff = (n // rows) * rows  # whole slabs only
    rng = np.random.default_rng(0)
    x = rng.random((n_eff, n_eff), dtype=np.float32)
    D = jnp.asarray((x + x.T) / 2)
    perm = jnp.asarray(rng.permutation(n_eff).astype(np.int32))
    h = jnp.asarray(rng.integers(1, n_eff, n_eff).astype(np.float32))
    c = jnp.asarray(rng.integers(0, n_eff, n_eff).astype(np.float32))
    W = float(n_eff)
    r = jnp.asarray(rng.integers(0, 2**32, n_eff, dtype=np.uint64).astype(np.uint32) | 1)
    whole_col = jax.jit(lambda D, c: jnp.sum(D * c[None, :]))
    whole_sim = jax.jit(lambda D: jnp.sum(1 / (1 + D)))
    whole_val = jax.jit(lambda D, h, c: jnp.sum(D * _value_factor(h[:, None], c[None], W)))
    whole_five = jax.jit(lambda D, h, c: [jnp.sum(t) for t in _five(D, h[:, None], c[None], W)])
    perm_sum = jax.jit(lambda D, p: jnp.sum(D[p]))
    loop_sum = _row_loop(n_eff, rows, lambda s, h, c, W: (s,), False)
    loop_val = _row_loop(n_eff, rows, lambda s, h, c, W: (s * _value_factor(h, c, W),), False)
    loop_five = _row_loop(n_eff, rows, _five, False)
    gloop_sum = _row_loop(n_eff, rows, lambda s, h, c, W: (s,), True)
    gloop_five = _row_loop(n_eff, rows, _five, True)
    check = _check_loop(n_eff, min(rows, max(1, (1 << 15) // n_eff)))
    calls = [
        ("jnp.sum(D)", lambda: total(D)),
        ("whole: sum(D * c[j])", lambda: whole_col(D, c)),
        ("whole: sum(1 / (1 + D))", lambda: whole_sim(D)),
        ("whole: value factor arithmetic", lambda: whole_val(D, h, c)),
        ("whole: five sums, five fusions", lambda: whole_five(D, h, c)),
        (f"loop {rows} rows: plain row sums", lambda: loop_sum(D, perm, h, c)),
        (f"loop {rows} rows: value arithmetic", lambda: loop_val(D, perm, h, c)),
        (f"loop {rows} rows: five sums", lambda: loop_five(D, perm, h, c)),
        (f"gathered loop {rows} rows: row sums", lambda: gloop_sum(D, perm, h, c)),
        (f"gathered loop {rows} rows: five sums", lambda: gloop_five(D, perm, h, c)),
        ("check arithmetic, 2^15-entry slabs", lambda: check(D, r)),
        ("sum(D[perm]) (whole gather)", lambda: perm_sum(D, perm)),
    ]
    times = best([f for _, f in calls], args.reps)
    s_wall, s_cpu = times[0]
    for (name, _), (tw, tc) in zip(calls, times):
      print(f"{n_eff:>6} | {name:<40} | wall {tw * 1e3:9.2f} ms {tw / s_wall:6.2f}x | "
            f"cpu {tc * 1e3:9.2f} ms {tc / s_cpu:6.2f}x", flush=True)
    del D, x


if __name__ == "__main__":
  main()
