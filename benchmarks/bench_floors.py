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
* the whole matrix gathered into a permuted row order and summed;
* the check's arithmetic as two independent loops in one program (row
  halves): XLA:CPU ran them one after the other (jax 0.10), which is why the
  library dispatches row ranges from host threads instead;
* ``--terms``: two sums per loop step combined three ways (one variadic
  reduction, one ``jnp.sum`` each, one reduction of the stacked terms);
* ``--validation``: whole-matrix ingredients of a check with no loop (float
  min / max, a boolean all, matrix-vector products, row and column sums,
  integer hashes and maxima, ``D == D.T``, a transposed copy, tiles against
  transposed tiles, an exact hash from float ops only).

Both wall and process CPU time are printed (ratio = time / the sum's): on a
shared machine the CPU ratio is the steadier one. The first lines say
whether XLA:CPU ran the reference sum as a YNNPACK fusion (``__ynn_fusion``
in the compiled HLO): standalone float reductions are, and they are much
faster than XLA's own loop emitter, but not inside a while loop's body.

Usage: python benchmarks/bench_floors.py [--sizes 4000,8000] [--rows 512] [--reps 7]
       [--terms] [--validation]
"""

import argparse
import functools

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


def _row_loop(n, rows, terms, gather, combine="variadic"):
  """fori_loop over row slabs; per-row sums of ``terms`` into an [n, k] buffer.

  ``combine``: how the ``k`` per-row sums are reduced: ``"variadic"`` (one
  ``lax.reduce`` over all terms, what the objectives use), ``"separate"``
  (one ``jnp.sum`` per term) or ``"stacked"`` (the terms stacked on a new
  axis, one single-operand reduction).
  """
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
      ts = terms(slab, hv, c[None], W)
      if combine == "variadic":
        r = jnp.stack(lax.reduce(ts, (jnp.zeros((), D.dtype),) * k,
                                 lambda x, y: tuple(a + b for a, b in zip(x, y)), (1,)), 1)
      elif combine == "separate":
        r = jnp.stack([jnp.sum(x, axis=1) for x in ts], 1)
      else:
        r = jnp.sum(jnp.stack(ts, 1), axis=2)
      return lax.dynamic_update_slice_in_dim(acc, r, t * rows, 0)

    return jnp.sum(lax.fori_loop(0, steps, body, jnp.zeros((n, k), D.dtype)), 0)

  return f


def _check_loop(n, rows, parts=1):
  """The one-pass check's integer arithmetic over contiguous slabs (no overlap).

  ``parts > 1`` splits the slabs into that many independent ``fori_loop``s
  in one program (row ranges of equal size): on a quiet machine this shows
  whether XLA:CPU runs independent loops on different cores (the check's
  loop runs on one core while ``jnp.sum`` uses all of them).
  """
  steps = n // rows
  per = -(-steps // parts)

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
    outs = [lax.fori_loop(p * per, min(steps, (p + 1) * per), body, init)
            for p in range(parts)]
    y = functools.reduce(jnp.add, [o[0] for o in outs])  # disjoint rows
    z = functools.reduce(jnp.add, [o[1] for o in outs])
    top = functools.reduce(jnp.maximum, [o[2] for o in outs])
    return jnp.all(y == jnp.sum(z, 0, dtype=jnp.uint32)), jnp.max(top)

  return f


# ---------------------------------------------------------------------------
# Whole-matrix candidates for the check (issue 10, goal 1: under 2x a sum).
# Each is one jitted program with no loop; none of them is the library's
# check, they measure what the backend charges for each ingredient.


def _bits(D):
  return lax.bitcast_convert_type(D, jnp.uint32)


def _tile_views(D, b):
  """``(A, B)`` with ``A[I, J, a, c] = D[Ib + a, Jb + c]`` and ``B`` the same of ``D^T``."""
  n = D.shape[0]
  x = D.reshape(n // b, b, n // b, b)
  return x.transpose(0, 2, 1, 3), x.transpose(2, 0, 3, 1)


def _float_hash(D, k, K0):
  """An exact small-integer hash of each entry from float ops only (floor / mod 2^16)."""
  y = jnp.floor(D * ((k[:, None] + k[None, :]) * K0))
  return y - jnp.floor(y * (1 / 65536)) * 65536


def validation_calls(D, r, k):
  """``(name, thunk)`` rows: the whole-matrix ingredients of a one-pass check."""
  n = D.shape[0]
  u = jnp.uint32
  mix = lambda b: b ^ (b >> np.uint32(16))
  j = jax.jit
  minf = j(jnp.min)
  maxf = j(jnp.max)
  minmax = j(lambda D: (jnp.min(D), jnp.max(D)))
  fin = j(lambda D: jnp.all((D >= 0) & (D < jnp.inf)))
  gemv = j(lambda D, v: D @ v)
  gevm = j(lambda D, v: v @ D)
  rowf = j(lambda D, v: jnp.sum(D * v[None, :], axis=1))
  colf = j(lambda D, v: jnp.sum(D * v[:, None], axis=0))
  rowu = j(lambda D, r: jnp.sum(mix(_bits(D)) * r[None, :], axis=1, dtype=u))
  colu = j(lambda D, r: jnp.sum(mix(_bits(D)) * r[:, None], axis=0, dtype=u))
  maxu = j(lambda D: jnp.max(_bits(D)))
  shift = j(lambda D: jnp.sum((lax.bitcast_convert_type(D, jnp.int32) >> 14).astype(D.dtype)))
  symT = j(lambda D: jnp.all(D == D.T))
  tcopy = j(lambda D: D.T.copy())
  b = 64 if n % 64 == 0 else 1
  tiles = j(lambda D: (lambda A, B: jnp.all((A == B) & (A >= 0) & (A < jnp.inf)))(*_tile_views(D, b)))
  K0 = jnp.asarray(2.0 ** 21, D.dtype)
  fh = j(lambda D, k: jnp.sum(_float_hash(D, k, K0)))
  fht = j(lambda D, k: (lambda T: jnp.all(T == T.T))(
      _float_hash(D, k, K0).reshape(n // 16, 16, n // 16, 16).sum(axis=(1, 3))))
  v = (r & np.uint32(0xFFFF)).astype(D.dtype)
  return [
      ("whole: min(D)", lambda: minf(D)),
      ("whole: max(D)", lambda: maxf(D)),
      ("whole: min(D), max(D) in one program", lambda: minmax(D)),
      ("whole: all(0 <= D < inf) (bool reduce)", lambda: fin(D)),
      ("whole: D @ v (gemv)", lambda: gemv(D, v)),
      ("whole: v @ D (transposed gemv)", lambda: gevm(D, v)),
      ("whole: row sums of D * v[j]", lambda: rowf(D, v)),
      ("whole: column sums of D * v[i]", lambda: colf(D, v)),
      ("whole: uint row hash (reduction)", lambda: rowu(D, r)),
      ("whole: uint column hash (reduction)", lambda: colu(D, r)),
      ("whole: uint max of bit patterns", lambda: maxu(D)),
      ("whole: sum(float(bits >> 14))", lambda: shift(D)),
      ("whole: all(D == D.T)", lambda: symT(D)),
      ("whole: D.T copy", lambda: tcopy(D)),
      (f"whole: {b}x{b} tiles vs transposed tiles", lambda: tiles(D)),
      ("whole: float-op hash (floor, mod 2^16), sum", lambda: fh(D, k)),
      ("whole: float-op hash, 16x16 tile sums, T == T^T", lambda: fht(D, k)),
  ]


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--sizes", default="4000,8000")
  ap.add_argument("--rows", type=int, default=512)
  ap.add_argument("--reps", type=int, default=7)
  ap.add_argument("--terms", action="store_true",
                  help="also time two sums per loop step combined three ways")
  ap.add_argument("--validation", action="store_true",
                  help="also time the whole-matrix ingredients of a check (validation_calls)")
  args = ap.parse_args()
  total = jax.jit(jnp.sum)
  probe = total.lower(jnp.zeros((64, 64), jnp.float32)).compile().as_text()
  print(f"jax {jax.__version__}, devices {jax.devices()}; best of {args.reps}; "
        f"x = time / jnp.sum (wall, cpu); measured while other jobs ran unless "
        f"the machine was quiet")
  print(f"command: python benchmarks/bench_floors.py --sizes {args.sizes} "
        f"--rows {args.rows} --reps {args.reps}" + (" --terms" if args.terms else "")
        + (" --validation" if args.validation else ""))
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
    check2 = _check_loop(n_eff, min(rows, max(1, (1 << 15) // n_eff)), parts=2)
    k = jnp.asarray(rng.uniform(0.5, 1, n_eff).astype(np.float32))
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
        ("check arithmetic, two independent loops", lambda: check2(D, r)),
        ("sum(D[perm]) (whole gather)", lambda: perm_sum(D, perm)),
    ]
    if args.terms:
      two = lambda s, h, c, W: (s * _value_factor(h, c, W), s * (W - _value_factor(h, c, W)))
      for how in ("variadic", "separate", "stacked"):
        f2 = _row_loop(n_eff, rows, two, True, how)
        calls.append((f"gathered loop {rows} rows: 2 sums, {how}",
                      lambda f2=f2: f2(D, perm, h, c)))
    if args.validation:
      calls += validation_calls(D, r, k)
    times = best([f for _, f in calls], args.reps)
    s_wall, s_cpu = times[0]
    for (name, _), (tw, tc) in zip(calls, times):
      print(f"{n_eff:>6} | {name:<40} | wall {tw * 1e3:9.2f} ms {tw / s_wall:6.2f}x | "
            f"cpu {tc * 1e3:9.2f} ms {tc / s_cpu:6.2f}x", flush=True)
    del D, x


if __name__ == "__main__":
  main()
