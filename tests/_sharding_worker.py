"""Run by tests/test_sharding.py in a subprocess with 8 simulated CPU devices.

Prints one line per check, ``OK <name>`` or raises. Everything is compared
with the one-device result of the same call (colours/points moved to one
device), and with NumPy oracles where the sharded path computes something
new (counts).
"""

import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: E402

import fairhc_jax as fh  # noqa: E402
from fairhc_jax import fairness as fair  # noqa: E402
from fairhc_jax.distances import pairwise_distances  # noqa: E402
from fairhc_jax.hierarchy import from_parent  # noqa: E402


def ok(name):
  print("OK", name, flush=True)


def main():
  quick = "--quick" in sys.argv
  assert len(jax.devices()) == 8, jax.devices()
  mesh = jax.make_mesh((8,), ("batch",))
  rows = NamedSharding(mesh, P("batch"))
  rng = np.random.default_rng(0)
  n = 24
  x = rng.normal(size=(n, 3)).astype(np.float32)
  one = jax.devices()[0]

  # pairwise_distances, row-sharded.
  for method in ("direct", "gram"):
    d1 = pairwise_distances(x, method=method)
    d8 = pairwise_distances(x, method=method, sharding=NamedSharding(mesh, P("batch", None)))
    assert d8.sharding.spec == P("batch", None), d8.sharding
    assert len(d8.sharding.device_set) == 8
    np.testing.assert_array_equal(np.asarray(d8), np.asarray(d1))
  ok("pairwise_distances")

  h = fh.linkage(d1)
  parent = np.asarray(h.parent)
  B = 40
  colors = rng.integers(0, 2, size=(B, n)).astype(np.int32)
  c8 = jax.device_put(colors, rows)
  c1 = jax.device_put(colors, one)

  # color_counts: equal to one device and to a NumPy walk; stays sharded.
  k8 = fair.color_counts(h, c8, 2)
  k1 = fair.color_counts(h, c1, 2)
  assert k8.sharding.spec[0] == "batch" and len(k8.sharding.device_set) == 8, k8.sharding
  np.testing.assert_array_equal(np.asarray(k8), np.asarray(k1))
  want = np.zeros((B, 2 * n - 1, 2), np.int64)
  for b in range(B):
    for i in range(n):
      u = i
      while u >= 0:
        want[b, u, colors[b, i]] += 1
        u = parent[u]
  np.testing.assert_array_equal(np.asarray(k8), want)
  ok("color_counts")

  con = fair.BoundedRepresentation(fair.Fraction(3, 4)) if hasattr(fair, "Fraction") else \
      fair.BoundedRepresentation((3, 4))
  f8 = fair.is_fair(h, c8, con, scope=4)
  f1 = fair.is_fair(h, c1, con, scope=4)
  assert f8.sharding.spec[0] == "batch" and len(f8.sharding.device_set) == 8, f8.sharding
  np.testing.assert_array_equal(np.asarray(f8), np.asarray(f1))
  # Oracle: every node with >= 4 leaves has each colour at most 3/4.
  sizes = want.sum(-1)
  checked = (sizes[0] >= 4) & (np.arange(2 * n - 1) >= n)
  fair_np = ~np.any(checked[None, :, None] & (4 * want > 3 * sizes[..., None]), axis=(1, 2))
  np.testing.assert_array_equal(np.asarray(f8), fair_np)
  assert 0 < fair_np.sum() < B  # both verdicts occur
  ok("is_fair")
  if quick:
    print("ALL OK")
    return 0

  r8 = fair.check_fairness(h, c8, con, scope=4)
  r1 = fair.check_fairness(h, c1, con, scope=4)
  for name in ("is_fair", "violating", "status"):
    a = getattr(r8, name)
    assert a.sharding.spec[0] == "batch" and len(a.sharding.device_set) == 8, (name, a.sharding)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(getattr(r1, name)))
  for name in ("mixed_children", "checked"):
    np.testing.assert_array_equal(np.asarray(getattr(r8, name)), np.asarray(getattr(r1, name)))
  ok("check_fairness")

  probs = np.full(2, 0.5)
  key = jax.random.key(3)
  # 5 chunks of 16 over 8 devices: padded with masked chunks.
  p1 = fair.fairness_probability(h, probs, con, key=key, num_samples=70, scope=4, chunk=16)
  p8 = fair.fairness_probability(h, probs, con, key=key, num_samples=70, scope=4, chunk=16,
                                 sharding=rows)
  assert int(p8.num_fair) == int(p1.num_fair), (p8, p1)
  assert float(p8.estimate) == float(p1.estimate)
  ok("fairness_probability")

  # Objectives (validation included) on a row-sharded matrix over an Auto
  # mesh: jit partitions them (GSPMD); equal numbers.
  auto = jax.make_mesh((8,), ("batch",), axis_types=(jax.sharding.AxisType.Auto,))
  d8 = pairwise_distances(x, sharding=NamedSharding(auto, P("batch", None)))
  assert tuple(d8.sharding.spec)[0] == "batch", d8.sharding
  t8 = fh.objectives.tree_objectives(h, d8)
  t1 = fh.objectives.tree_objectives(h, d1)
  for a, b in zip(t8, t1):
    np.testing.assert_allclose(float(a), float(b), rtol=1e-6)
  ok("tree_objectives")

  # The fairlet swap kernel on the row-sharded matrix (Auto mesh): equal.
  from fairhc_jax import fairlets as fl
  cols = np.array([0, 1] * (n // 2), np.int32)
  dec = fl.fairlet_decomposition(jax.random.key(0), cols, fair.Balance(1, 1))
  table = fl.fairlet_table(d1, dec)
  m1, p1_ = fl.best_swaps(d1, table, dec.fairlet_of, jnp.asarray(cols))
  m8, p8_ = jax.jit(fl.best_swaps)(d8, table, dec.fairlet_of, jnp.asarray(cols))
  np.testing.assert_allclose(np.asarray(m8), np.asarray(m1), rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(p8_), np.asarray(p1_))
  ok("best_swaps")
  print("ALL OK")
  return 0


if __name__ == "__main__":
  sys.exit(main())
