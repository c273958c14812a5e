"""Tests of fairhc_jax.fairlets against NumPy oracles written here.

The oracles are literal transcriptions of the definitions (Python loops over
pairs and fairlets) and share no code with the module.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairhc_jax import fairlets as fl


# ---------------------------------------------------------------------------
# Oracles.


def dist_matrix(rng, n, dim=3):
  x = rng.normal(size=(n, dim))
  return np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))


def phi_oracle(D, f):
  n = len(f)
  return sum(D[a, b] for a in range(n) for b in range(a + 1, n) if f[a] == f[b])


def fairlet_sets(f):
  out = {}
  for x, a in enumerate(np.asarray(f).tolist()):
    out.setdefault(a, []).append(x)
  return out


def balance_ok(members, colors, b, r):
  c0 = sum(1 for x in members if colors[x] == 0)
  c1 = len(members) - c0
  return min(c0, c1) * r >= max(c0, c1) * b


def cap_ok(members, colors, t):
  counts = {}
  for x in members:
    counts[colors[x]] = counts.get(colors[x], 0) + 1
  return all(c * t <= len(members) for c in counts.values())


def colors_with(rng, counts):
  c = np.concatenate([np.full(k, g) for g, k in enumerate(counts)])
  return rng.permutation(c).astype(np.int32)


# ---------------------------------------------------------------------------
# Decompositions.


@pytest.mark.parametrize("counts,bal", [
    ((10, 30), (1, 3)), ((11, 29), (1, 3)), ((30, 10), (1, 3)), ((7, 7), (1, 1)),
    ((8, 12), (2, 3)), ((2, 3), (3, 5)), ((1, 1), (1, 3)), ((5, 35), (1, 7)),
    ((13, 20), (1, 2)), ((6, 9), (2, 3)), ((9, 10), (4, 5)),
])
def test_balance_decomposition_fair_and_complete(counts, bal):
  rng = np.random.default_rng(sum(counts))
  colors = colors_with(rng, counts)
  dec = fl.balance_decomposition(jax.random.key(1), colors, bal)
  f = np.asarray(dec.fairlet_of)
  sets = fairlet_sets(f)
  assert sorted(sets) == list(range(dec.num_fairlets))
  assert sum(len(s) for s in sets.values()) == len(colors)
  b, r = bal
  for members in sets.values():
    assert balance_ok(members, colors, b, r), (members, colors[members])
    assert len(members) <= b + r
  assert dec.max_size == max(len(s) for s in sets.values())


def test_balance_decomposition_is_random_and_keyed():
  colors = colors_with(np.random.default_rng(0), (20, 40))
  f1 = np.asarray(fl.balance_decomposition(jax.random.key(1), colors, (1, 2)).fairlet_of)
  f1b = np.asarray(fl.balance_decomposition(jax.random.key(1), colors, (1, 2)).fairlet_of)
  f2 = np.asarray(fl.balance_decomposition(jax.random.key(2), colors, (1, 2)).fairlet_of)
  np.testing.assert_array_equal(f1, f1b)
  assert (f1 != f2).any()


def test_balance_exact_boundary_feasible_and_one_less_infeasible():
  rng = np.random.default_rng(0)
  # 9 : 27 is exactly 1:3 -> feasible; 9 : 28 is not.
  fl.balance_decomposition(jax.random.key(0), colors_with(rng, (9, 27)), (1, 3))
  with pytest.raises(ValueError, match=r"colour 0 with 9 of 37 points"):
    fl.balance_decomposition(jax.random.key(0), colors_with(rng, (9, 28)), (1, 3))


@pytest.mark.parametrize("colors,bal,match", [
    ([0, 0, 1, 1], (3, 2), r"balance must be \(b, r\) with b <= r"),
    ([0, 0, 1, 1], (0, 2), r"balance\[0\] must be an integer >= 1"),
    ([0, 1, 2, 1], (1, 2), r"exactly two colours"),
    ([0, 0, 0, 0], (1, 2), r"exactly two colours"),
    ([0, 0, 2, 2], (1, 1), r"no point of colour 1"),
    ([0, -1, 1, 1], (1, 1), r"colors must hold colours"),
    ([0, 1, 1, 1, 1, 1, 1], (1, 3), r"colour 0 with 1 of 7 points \(share 0.1429"),
])
def test_balance_decomposition_errors(colors, bal, match):
  with pytest.raises(ValueError, match=match):
    fl.balance_decomposition(jax.random.key(0), np.array(colors), bal)


@pytest.mark.parametrize("counts,t", [
    ((5, 5, 5, 5), 4), ((4, 4, 4, 4, 2), 4), ((10, 10), 2), ((3, 3, 3, 2), 3),
    ((1, 1, 1), 2), ((3,), 1), ((1, 1, 1), 3), ((2, 2, 1), 2), ((7, 7, 7, 7, 7), 5),
    ((1,) * 7, 4), ((3, 2, 2, 2, 2, 1), 4),
])
def test_capped_decomposition_fair_and_size_bound(counts, t):
  rng = np.random.default_rng(t + len(counts))
  colors = colors_with(rng, counts)
  dec = fl.capped_decomposition(jax.random.key(3), colors, 1 / t)
  sets = fairlet_sets(np.asarray(dec.fairlet_of))
  assert sorted(sets) == list(range(dec.num_fairlets))
  assert sum(len(s) for s in sets.values()) == len(colors)
  for members in sets.values():
    assert cap_ok(members, colors, t), (members, colors[members])
    assert len(members) <= max(2 * t - 1, 1)
    assert len(members) >= t
  assert dec.max_size == max(len(s) for s in sets.values())


def test_capped_decomposition_size_bound_reached_with_one_fairlet():
  colors = np.array([0, 1, 2], np.int32)  # t = 2: one fairlet of 3 = 2t - 1
  dec = fl.capped_decomposition(jax.random.key(0), colors, 0.5)
  assert dec.num_fairlets == 1 and dec.max_size == 3


@pytest.mark.parametrize("colors,alpha,match", [
    ([0, 0, 1, 2], 1 / 3, r"colour 0 with 2 of 4 points \(share 0.5, at most 1 allowed"),
    ([0, 1, 2], 0.25, r"at least one fairlet's worth of points \(t = 1/alpha = 4\), got 3"),
    ([0, 1, 2, 3], 0.3, r"alpha must be 1/t"),
    ([0, 1, 2, 3], 0.0, r"alpha must be in \(0, 1\]"),
    ([0, 1, 2, 3], 1.5, r"alpha must be in \(0, 1\]"),
    ([0, 2, 2, 0], 0.5, r"no point of colour 1"),
])
def test_capped_decomposition_errors(colors, alpha, match):
  with pytest.raises(ValueError, match=match):
    fl.capped_decomposition(jax.random.key(0), np.array(colors), alpha)


# ---------------------------------------------------------------------------
# Objective, table, swap kernel.


def random_instance(seed, n=24, bal=(1, 2), minority=9):
  rng = np.random.default_rng(seed)
  D = dist_matrix(rng, n)
  colors = colors_with(rng, (minority, n - minority))
  dec = fl.balance_decomposition(jax.random.key(seed), colors, bal)
  return D, colors, dec


@pytest.mark.parametrize("x64", [False, True])
def test_phi_ratio_and_table_match_oracle(x64):
  with jax.enable_x64(x64):
    D, colors, dec = random_instance(0)
    f = np.asarray(dec.fairlet_of)
    Dj = jnp.asarray(D)
    tol = 1e-12 if x64 else 1e-5
    phi = phi_oracle(D, f)
    np.testing.assert_allclose(float(fl.fairlet_objective(Dj, dec.fairlet_of)), phi, rtol=tol)
    total = sum(D[a, b] for a in range(len(f)) for b in range(a + 1, len(f)))
    np.testing.assert_allclose(float(fl.ratio_fairlets(Dj, dec.fairlet_of)), phi / total,
                               rtol=tol)
    table = np.asarray(fl.fairlet_table(Dj, dec))
    assert table.shape == (dec.num_fairlets, len(f))
    for a in range(dec.num_fairlets):
      for x in range(len(f)):
        expect = sum(D[y, x] for y in range(len(f)) if f[y] == a)
        assert abs(table[a, x] - expect) <= tol * max(1.0, expect)


def test_phi_one_point_and_zero_distances():
  assert float(fl.fairlet_objective(jnp.zeros((1, 1)), jnp.zeros(1, jnp.int32))) == 0.0
  assert float(fl.ratio_fairlets(jnp.zeros((3, 3)), jnp.zeros(3, jnp.int32))) == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_swap_deltas_equal_brute_force_phi_change(seed):
  with jax.enable_x64(True):
    D, colors, dec = random_instance(seed, n=18, minority=6)
    f = np.asarray(dec.fairlet_of)
    Dj = jnp.asarray(D)
    table = fl.fairlet_table(Dj, dec)
    delta = np.asarray(fl.swap_deltas(Dj, table, dec.fairlet_of, jnp.asarray(colors)))
    base = phi_oracle(D, f)
    n = len(f)
    for u, v in itertools.product(range(n), range(n)):
      if colors[u] != colors[v] or f[u] == f[v]:
        assert delta[u, v] == np.inf
        continue
      g = f.copy()
      g[u], g[v] = f[v], f[u]
      np.testing.assert_allclose(delta[u, v], phi_oracle(D, g) - base, atol=1e-10)
    best, partner = fl.best_swaps(Dj, table, dec.fairlet_of, jnp.asarray(colors))
    np.testing.assert_allclose(np.asarray(best), delta.min(1), atol=1e-12)
    np.testing.assert_array_equal(np.asarray(partner), delta.argmin(1))
    rows = jnp.array([3, 0, 17, 3], jnp.int32)
    b2, p2 = fl.best_swaps(Dj, table, dec.fairlet_of, jnp.asarray(colors), rows)
    np.testing.assert_allclose(np.asarray(b2), delta.min(1)[[3, 0, 17, 3]], atol=1e-12)
    np.testing.assert_array_equal(np.asarray(p2), delta.argmin(1)[[3, 0, 17, 3]])


def test_step_row_recomputation_equals_brute_force_on_the_given_rows():
  """The fast step's row pass (exact row count, strided or transposed table
  reads) writes each listed point's best swap, from the brute-force phi
  change, and leaves every other entry as it was."""
  with jax.enable_x64(True):
    D, colors, dec = random_instance(3, n=18, minority=6)
    f = np.asarray(dec.fairlet_of)
    Dj = jnp.asarray(D)
    table = fl.fairlet_table(Dj, dec)
    n = len(f)
    best, arg = best_swap_oracle(D, colors, f)
    listed = np.array([0, 4, 5, 11, 17])
    rows = jnp.asarray(np.concatenate([listed, np.full(n - len(listed), n)]), jnp.int32)
    init = (jnp.full(n, 7.0), jnp.full(n, -1, jnp.int32))
    for transposed in (False, True):
      m, p = fl._recompute_rows(Dj, table, dec.fairlet_of, jnp.asarray(colors), rows,
                                jnp.int32(len(listed)), init, transposed=transposed)
      m, p = np.asarray(m), np.asarray(p)
      np.testing.assert_allclose(m[listed], best[listed], atol=1e-10)
      np.testing.assert_array_equal(p[listed], arg[listed])
      rest = np.setdiff1d(np.arange(n), listed)
      assert np.all(m[rest] == 7.0) and np.all(p[rest] == -1)


def test_best_swaps_no_partner_for_one_colour_fairlets():
  # One colour, one fairlet: nothing to swap.
  D = jnp.asarray(dist_matrix(np.random.default_rng(0), 3))
  dec = fl.decomposition_from_assignment(np.zeros(3, np.int32))
  f = dec.fairlet_of
  table = fl.fairlet_table(D, dec)
  best, partner = fl.best_swaps(D, table, f, jnp.zeros(3, jnp.int32))
  assert np.all(np.isinf(np.asarray(best))) and np.all(np.asarray(partner) == 3)


def test_apply_swap_updates_table_and_assignment():
  with jax.enable_x64(True):
    D, colors, dec = random_instance(3, n=15, minority=5)
    Dj = jnp.asarray(D)
    f = np.asarray(dec.fairlet_of)
    table = fl.fairlet_table(Dj, dec)
    u = 0
    v = next(x for x in range(15) if colors[x] == colors[u] and f[x] != f[u])
    t2, f2 = fl.apply_swap(table, dec.fairlet_of, Dj, u, v)
    g = f.copy()
    g[u], g[v] = f[v], f[u]
    np.testing.assert_array_equal(np.asarray(f2), g)
    for a in range(dec.num_fairlets):
      for x in range(15):
        assert abs(float(t2[a, x]) - sum(D[y, x] for y in range(15) if g[y] == a)) < 1e-10


# ---------------------------------------------------------------------------
# Local search.


def locally_optimal(D, colors, f, eps):
  """Brute force: no same-colour swap lowers phi by more than 1 + eps/n."""
  n = len(f)
  base = phi_oracle(D, f)
  for u in range(n):
    for v in range(u + 1, n):
      if colors[u] == colors[v] and f[u] != f[v]:
        g = f.copy()
        g[u], g[v] = f[v], f[u]
        if phi_oracle(D, g) * (1 + eps / n) < base * (1 - 1e-9):
          return False
  return True


def composition(f, colors):
  sets = fairlet_sets(f)
  return sorted(tuple(sorted(np.bincount(colors[s], minlength=2))) for s in sets.values())


@pytest.mark.parametrize("schedule", ["fast", "random"])
def test_local_search_keeps_fairlets_and_reports_phi(schedule):
  with jax.enable_x64(True):
    D, colors, dec = random_instance(5, n=30, minority=10)
    f0 = np.asarray(dec.fairlet_of)
    st = fl.run_local_search(jax.random.key(0), D, colors, dec, schedule=schedule)
    f = np.asarray(st.fairlet_of)
    assert bool(st.done)
    # Every fairlet keeps its colour counts (swaps are same-coloured).
    for a in range(dec.num_fairlets):
      assert (np.bincount(colors[f == a], minlength=2)
              == np.bincount(colors[f0 == a], minlength=2)).all()
    np.testing.assert_allclose(float(st.phi), phi_oracle(D, f), rtol=1e-10)
    assert phi_oracle(D, f) < phi_oracle(D, f0)
    assert int(st.swaps) > 0 and int(st.steps) > 0
    if schedule == "fast":
      table = np.asarray(st.table)
      for a in range(dec.num_fairlets):
        np.testing.assert_allclose(table[a], D[f == a].sum(0), atol=1e-9)
    else:  # the member table and slots describe the final fairlets
      members, slot = np.asarray(st.members), np.asarray(st.slot)
      for a in range(dec.num_fairlets):
        assert sorted(x for x in members[a].tolist() if x < 30) == np.flatnonzero(f == a).tolist()
      for x in range(30):
        assert members[f[x], slot[x]] == x


def test_fast_schedule_reaches_a_local_optimum():
  with jax.enable_x64(True):
    for seed in range(3):
      D, colors, dec = random_instance(seed, n=24, minority=8)
      st = fl.run_local_search(jax.random.key(0), D, colors, dec, schedule="fast", eps=0.1)
      assert locally_optimal(D, colors, np.asarray(st.fairlet_of), 0.1)


@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_fast_schedule_never_worse_than_random():
  for seed in range(6):
    rng = np.random.default_rng(100 + seed)
    n = 64  # one shape: one compilation per schedule
    D = dist_matrix(rng, n, dim=2)
    colors = colors_with(rng, ((n + 2) // 3, n - (n + 2) // 3))
    dec = fl.balance_decomposition(jax.random.key(seed), colors, (1, 2))
    fast = fl.run_local_search(jax.random.key(seed), D, colors, dec, schedule="fast")
    rand = fl.run_local_search(jax.random.key(seed), D, colors, dec, schedule="random")
    assert phi_oracle(D, np.asarray(fast.fairlet_of)) <= phi_oracle(
        D, np.asarray(rand.fairlet_of)) * (1 + 1e-6)


def test_random_round_by_hand_phi_monotone_and_stops():
  D, colors, dec = random_instance(7, n=30, minority=10)
  Dj = jnp.asarray(D, jnp.float32)
  search = fl.local_search("random")
  st = search.init(Dj, dec, key=jax.random.key(1))
  assert isinstance(st, fl.RandomSearchState)
  phis = [float(st.phi)]
  while not bool(st.done):
    prev = int(st.swaps)
    st = search.step(st, Dj, colors)
    phis.append(float(st.phi))
    assert int(st.trials) == 30 * int(st.steps)
    if bool(st.done):
      assert int(st.swaps) == prev  # the last round accepted nothing
  assert all(b <= a * (1 + 1e-6) for a, b in zip(phis, phis[1:]))
  # A step after done is a no-op.
  again = search.step(st, Dj, colors)
  assert int(again.steps) == int(st.steps)


def test_stop_at_floor_when_phi_is_tiny():
  # Two tight clusters of pairs: the initial decomposition may already sit
  # below d_max / n^2 only if phi = 0; with identical points phi stays 0.
  D = np.zeros((4, 4))
  colors = np.array([0, 1, 0, 1], np.int32)
  dec = fl.balance_decomposition(jax.random.key(0), colors, (1, 1))
  st = fl.run_local_search(jax.random.key(0), D, colors, dec)
  assert bool(st.done) and int(st.swaps) == 0 and int(st.steps) == 0


@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_max_steps_and_vmap_over_decompositions():
  D, colors, _ = random_instance(2, n=24, minority=8)
  Dj = jnp.asarray(D, jnp.float32)
  decs = [fl.balance_decomposition(jax.random.key(s), colors, (1, 2)) for s in range(3)]
  st1 = fl.run_local_search(jax.random.key(0), D, colors, decs[0], max_steps=1)
  assert int(st1.steps) == 1
  batch = fl.Decomposition(fairlet_of=jnp.stack([d.fairlet_of for d in decs]),
                           num_fairlets=decs[0].num_fairlets, max_size=decs[0].max_size)
  keys = jax.random.split(jax.random.key(0), 3)
  for schedule in fl.SCHEDULES:
    search = fl.local_search(schedule)
    init = jax.vmap(lambda k, d: search.init(Dj, d, key=k))(keys, batch)
    step = jax.vmap(lambda s: search.step(s, Dj, colors))
    for _ in range(3):
      init = step(init)
    for i, d in enumerate(decs):
      s = search.init(Dj, d, key=keys[i])
      for _ in range(3):
        s = search.step(s, Dj, colors)
      np.testing.assert_array_equal(np.asarray(init.fairlet_of[i]), np.asarray(s.fairlet_of))


@pytest.mark.parametrize("kwargs,match", [
    (dict(eps=0.0), r"eps must be a positive number"),
    (dict(eps=-1.0), r"eps must be a positive number"),
    (dict(schedule="greedy"), r"schedule must be one of 'fast', 'random'"),
])
def test_local_search_errors(kwargs, match):
  D, colors, dec = random_instance(0, n=12, minority=4)
  with pytest.raises(ValueError, match=match):
    fl.run_local_search(jax.random.key(0), D, colors, dec, **kwargs)


def test_decomposition_from_assignment():
  dec = fl.decomposition_from_assignment(np.array([1, 0, 1, 0, 2]))
  assert dec.num_fairlets == 3 and dec.max_size == 2
  with pytest.raises(ValueError, match="use every fairlet id"):
    fl.decomposition_from_assignment(np.array([0, 2, 2]))
  with pytest.raises(ValueError, match="hold fairlet ids >= 0, got id -1"):
    fl.decomposition_from_assignment(np.array([0, -1, 1]))


# ---------------------------------------------------------------------------
# Constraint objects (exact reading, the same rules as the checks).


from fractions import Fraction  # noqa: E402

from fairhc_jax.fairness import Balance, BoundedRepresentation, RepresentationBounds  # noqa: E402


def test_constraint_forms_give_the_same_decomposition():
  colors = colors_with(np.random.default_rng(4), (12, 30))
  key = jax.random.key(7)
  ref = np.asarray(fl.balance_decomposition(key, colors, (1, 3)).fairlet_of)
  for c in (Balance(1, 3), Balance(2, 6), Balance(np.int64(1), 3)):
    np.testing.assert_array_equal(
        np.asarray(fl.fairlet_decomposition(key, colors, c).fairlet_of), ref)
  np.testing.assert_array_equal(
      np.asarray(fl.balance_decomposition(key, colors, Balance(3, 9)).fairlet_of), ref)
  # gcd reduction: Balance(2, 6) builds the 1:3 fairlets (at most 4 points).
  assert fl.fairlet_decomposition(key, colors, Balance(2, 6)).max_size <= 4
  colors4 = colors_with(np.random.default_rng(5), (5, 5, 5, 5))
  ref = np.asarray(fl.capped_decomposition(key, colors4, 0.25).fairlet_of)
  for c in (BoundedRepresentation(0.25), BoundedRepresentation(Fraction(1, 4)),
            BoundedRepresentation((1, 4)), BoundedRepresentation(1 / 4)):
    np.testing.assert_array_equal(
        np.asarray(fl.fairlet_decomposition(key, colors4, c).fairlet_of), ref)
  # 1/3 given as a float is exactly one third (as the checks read it).
  colors3 = colors_with(np.random.default_rng(6), (4, 4, 4))
  assert fl.capped_decomposition(key, colors3, 1 / 3).num_fairlets == 4


@pytest.mark.parametrize("constraint,exc,match", [
    (Balance(0, 3), ValueError,
     r"fairlet_decomposition: constraint.b must be an integer >= 1 for a fairlet "
     r"decomposition \(b = 0 asks for no balance at all.*got Balance\(0, 3\)"),
    (Balance(4, 3), ValueError, r"constraint must be \(b, r\) with b <= r.*Balance\(4, 3\)"),
    (Balance(1, 0), ValueError, r"constraint.r must be an integer >= 1"),
    (Balance(1.0, 3), TypeError, r"constraint.b must be an integer, got 1.0"),
    (Balance(True, 3), TypeError, r"constraint.b must be an integer"),
    (BoundedRepresentation(0.3), ValueError,
     r"constraint.alpha must be 1/t for a positive integer t.*got 0.3 = 3/10"),
    (BoundedRepresentation(0.333333), ValueError, r"constraint.alpha must be 1/t"),
    (BoundedRepresentation(Fraction(2, 5)), ValueError, r"constraint.alpha must be 1/t"),
    (BoundedRepresentation(0), ValueError, r"constraint.alpha must be in \(0, 1\]"),
    (BoundedRepresentation("1/2"), TypeError, r"constraint.alpha must be a number"),
    (RepresentationBounds([0, 0], [1, 1]), TypeError,
     r"constraint must be Balance\(b, r\) or BoundedRepresentation\(1/t\).*"
     r"got RepresentationBounds"),
    ((1, 3), TypeError, r"got tuple"),
])
def test_fairlet_decomposition_constraint_errors(constraint, exc, match):
  colors = colors_with(np.random.default_rng(0), (10, 30))
  with pytest.raises(exc, match=match):
    fl.fairlet_decomposition(jax.random.key(0), colors, constraint)


def test_infeasible_requests_name_colour_and_numbers():
  colors = colors_with(np.random.default_rng(0), (9, 28))
  with pytest.raises(ValueError, match=r"fairlet_decomposition: colors must give the "
                     r"minority colour a share of at least b/\(b\+r\) = 1/4.*colour 0 "
                     r"with 9 of 37 points \(share 0.2432, balance 9:28\)"):
    fl.fairlet_decomposition(jax.random.key(0), colors, Balance(2, 6))
  colors = colors_with(np.random.default_rng(0), (6, 3, 3))  # 6 * 3 > 12
  with pytest.raises(ValueError, match=r"colour 0 with 6 of 12 points \(share 0.5, "
                     r"at most 4 allowed\)"):
    fl.fairlet_decomposition(jax.random.key(0), colors, BoundedRepresentation(1 / 3))
  # The exact boundary is feasible (6 * 2 = 12).
  fl.fairlet_decomposition(jax.random.key(0), colors, BoundedRepresentation(0.5))


def test_decomposition_key_is_checked():
  with pytest.raises(TypeError, match=r"balance_decomposition: key must be a JAX PRNG "
                     r"key \(make one from a seed with jax.random.key\(seed\)\), got the "
                     r"integer 0: pass jax.random.key\(0\)"):
    fl.balance_decomposition(0, np.array([0, 1]), (1, 1))


# ---------------------------------------------------------------------------
# The optax-style pair.


def test_local_search_pair_types_and_errors():
  D, colors, dec = random_instance(0, n=12, minority=4)
  Dj = jnp.asarray(D, jnp.float32)
  fast, rand = fl.local_search("fast"), fl.local_search("random", eps=0.2)
  assert isinstance(fast, fl.LocalSearch) and fast.schedule == "fast" and rand.eps == 0.2
  assert isinstance(fast.init(Dj, dec), fl.FastSearchState)
  assert isinstance(rand.init(Dj, dec, key=jax.random.key(0)), fl.RandomSearchState)
  with pytest.raises(TypeError, match=r"local_search.init: key must be a PRNG key for "
                     r"the 'random' schedule"):
    rand.init(Dj, dec)
  with pytest.raises(TypeError, match=r"local_search: schedule must be one of 'fast', "
                     r"'random'.*now run_local_search"):
    fl.local_search(jax.random.key(0), Dj)
  with pytest.raises(ValueError, match=r"local_search: schedule must be one of"):
    fl.local_search("greedy")
  with pytest.raises(ValueError, match=r"local_search: eps must be a positive number"):
    fl.local_search("fast", eps=0.0)
  with pytest.raises(TypeError, match=r"run_local_search: key must be a JAX PRNG key"):
    fl.run_local_search(1, D, colors, dec)


@pytest.mark.parametrize("schedule", ["fast", "random"])
def test_step_and_run_compile_once_whatever_eps_and_cap(schedule):
  """``eps`` and ``max_steps`` are traced: new pairs and caps reuse one compile."""
  D, colors, dec = random_instance(11, n=20, minority=7)
  Dj = jnp.asarray(D, jnp.float32)
  fl._step_kernel.clear_cache()
  fl._run_kernel.clear_cache()
  for eps in (0.1, 0.05, 0.3):
    search = fl.local_search(schedule, eps)
    state = search.init(Dj, dec, key=jax.random.key(0))
    state = search.step(state, Dj, colors)
    for cap in (1, 2, None):
      search.run(state, Dj, colors, cap)
  assert fl._step_kernel._cache_size() == 1
  assert fl._run_kernel._cache_size() == 1


@pytest.mark.parametrize("schedule", ["fast", "random"])
@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_step_equals_run_and_eps_changes_the_search(schedule):
  D, colors, dec = random_instance(12, n=40, minority=14)
  Dj = jnp.asarray(D, jnp.float32)
  search = fl.local_search(schedule, 0.1)
  st = search.init(Dj, dec, key=jax.random.key(3))
  ran = search.run(st, Dj, colors)
  while not bool(st.done):
    st = search.step(st, Dj, colors)
  np.testing.assert_array_equal(np.asarray(st.fairlet_of), np.asarray(ran.fairlet_of))
  assert int(st.steps) == int(ran.steps) and int(st.swaps) == int(ran.swaps)
  # A huge eps accepts only swaps that lower phi by a factor > 1 + eps/n.
  big = fl.local_search(schedule, 1e6)
  st_big = big.run(big.init(Dj, dec, key=jax.random.key(3)), Dj, colors)
  assert int(st_big.swaps) < int(ran.swaps)


# ---------------------------------------------------------------------------
# Determinism: the same key gives the same result, bitwise.


@pytest.mark.parametrize("schedule", ["fast", "random"])
def test_same_key_same_search_bitwise_after_recompiling(schedule):
  D, colors, dec = random_instance(13, n=48, minority=16)
  Dj = jnp.asarray(D, jnp.float32)
  search = fl.local_search(schedule)

  def once():
    st = search.run(search.init(Dj, dec, key=jax.random.key(5)), Dj, colors)
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(st)
            if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)]

  a = once()
  for f in (fl._run_kernel, fl._fast_init, fl._random_init, fl._fairlet_table,
            fl.fairlet_members):
    f.clear_cache()
  b = once()
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.dtype == y.dtype and x.tobytes() == y.tobytes()


def test_fairlet_members_oracle():
  rng = np.random.default_rng(8)
  f = rng.permutation(np.arange(17) % 5).astype(np.int32)
  dec = fl.decomposition_from_assignment(f)
  members, slot = (np.asarray(x) for x in fl.fairlet_members(
      dec.fairlet_of, dec.num_fairlets, dec.max_size))
  for a in range(5):
    pts = [x for x in range(17) if f[x] == a]  # by index
    assert members[a].tolist() == pts + [17] * (dec.max_size - len(pts))
  for x in range(17):
    assert members[f[x], slot[x]] == x


def test_random_round_changes_phi_by_the_swap_formula():
  """One round by hand: replay the round's trials with the oracle."""
  with jax.enable_x64(True):
    D, colors, dec = random_instance(14, n=16, minority=6)
    Dj = jnp.asarray(D)
    search = fl.local_search("random", eps=0.1)
    st = search.init(Dj, dec, key=jax.random.key(9))
    nxt = search.step(st, Dj, colors)
    f0, f1 = np.asarray(st.fairlet_of), np.asarray(nxt.fairlet_of)
    np.testing.assert_allclose(float(st.phi), phi_oracle(D, f0), rtol=1e-12)
    np.testing.assert_allclose(float(nxt.phi), phi_oracle(D, f1), rtol=1e-12)
    assert phi_oracle(D, f1) <= phi_oracle(D, f0)
    # Same colour counts per fairlet.
    for a in range(dec.num_fairlets):
      assert (np.bincount(colors[f1 == a], minlength=2)
              == np.bincount(colors[f0 == a], minlength=2)).all()


def test_raw_group_codes_get_a_recoding_hint():
  with pytest.raises(ValueError, match=r"no point of colour 0") as e:
    fl.fairlet_decomposition(jax.random.key(0), np.array([1, 2, 1, 2]), Balance(1, 1))
  assert "np.unique(labels, return_inverse=True)[1]" in str(e.value)


@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_fixed_trip_count_form_equals_the_cpu_form_bitwise(monkeypatch):
  """The loops GPUs get (static capacities) give the CPU loops' result.

  Only the fast schedule has such loops (the random round's trip count is
  ``n``). At n = 130 the candidate scan has two capacities (64, 130).
  """
  D, colors, dec = random_instance(15, n=130, minority=44)
  assert fl._capacities(130) == [64, 130]
  Dj = jnp.asarray(D, jnp.float32)
  search = fl.local_search("fast")

  def once():
    fl._run_kernel.clear_cache()
    st = search.run(search.init(Dj, dec, key=jax.random.key(2)), Dj, colors)
    return int(st.swaps), np.asarray(st.fairlet_of).tobytes(), np.asarray(st.phi).tobytes()

  a = once()
  monkeypatch.setattr(fl, "FIXED_TRIP_COUNTS_ON_CPU", True)
  b = once()
  assert a[0] > 0 and a == b


# ---------------------------------------------------------------------------
# The colour-sorted fast path (colour blocks, columns from D's rows) and the
# round-based greedy matching.


def sorted_instance(seed, n=24, minority=8, bal=(1, 2)):
  """A random instance with its points sorted by colour (0s first)."""
  rng = np.random.default_rng(seed)
  D = dist_matrix(rng, n)
  colors = np.sort(colors_with(rng, (minority, n - minority))).astype(np.int32)
  dec = fl.balance_decomposition(jax.random.key(seed), colors, bal)
  return D, colors, dec


def test_color_blocks():
  assert fl.color_blocks(np.array([0, 0, 1, 1, 1])) == ((0, 2), (2, 3))
  assert fl.color_blocks(np.array([2, 2, 2])) == ((0, 3),)
  assert fl.color_blocks(np.array([0, 1, 0])) is None
  assert fl.color_blocks(np.array([0, 2, 2, 5])) == ((0, 1), (1, 2), (3, 1))


def best_swap_oracle(D, colors, f):
  """Each point's best swap change and partner (lowest index on ties)."""
  n = len(f)
  base = phi_oracle(D, f)
  best, arg = np.full(n, np.inf), np.full(n, n)
  for u in range(n):
    for v in range(n):
      if colors[u] != colors[v] or f[u] == f[v]:
        continue
      g = f.copy()
      g[u], g[v] = f[v], f[u]
      d = phi_oracle(D, g) - base
      if d < best[u] - 1e-12:
        best[u], arg[u] = d, v
  return best, arg


def test_sliced_rows_equal_brute_force_on_the_given_rows():
  """The colour-block rows (strided columns, and columns from D's rows)
  write each listed point's brute-force best swap and nothing else."""
  with jax.enable_x64(True):
    D, colors, dec = sorted_instance(5, n=18, minority=6)
    f = np.asarray(dec.fairlet_of)
    Dj = jnp.asarray(D)
    table = fl.fairlet_table(Dj, dec)
    n = len(f)
    best, arg = best_swap_oracle(D, colors, f)
    blocks = fl.color_blocks(colors)
    assert blocks == ((0, 6), (6, 12))
    members, _ = fl.fairlet_members(dec.fairlet_of, dec.num_fairlets, dec.max_size)
    listed = np.array([0, 4, 5, 6, 11, 17])  # both colours, block edges
    rows = jnp.asarray(np.concatenate([listed, np.full(n - len(listed), n)]), jnp.int32)
    init = (jnp.full(n, 7.0), jnp.full(n, -1, jnp.int32))
    for mem in (None, members):
      m, p = fl._recompute_rows(Dj, table, dec.fairlet_of, jnp.asarray(colors), rows,
                                jnp.int32(len(listed)), init, blocks=blocks, members=mem)
      m, p = np.asarray(m), np.asarray(p)
      np.testing.assert_allclose(m[listed], best[listed], atol=1e-10)
      np.testing.assert_array_equal(p[listed], arg[listed])
      rest = np.setdiff1d(np.arange(n), listed)
      assert np.all(m[rest] == 7.0) and np.all(p[rest] == -1)


def greedy_oracle(delta, partner, f, threshold, phi, floor):
  """Sequential greedy: candidates by (delta, index), disjoint fairlets."""
  n = len(delta)
  used, out = set(), []
  for u in sorted(range(n), key=lambda x: (delta[x], x)):
    if not delta[u] < threshold or partner[u] >= n:
      continue
    i, j = f[u], f[partner[u]]
    if i in used or j in used:
      continue
    if not phi > floor:
      break
    used |= {i, j}
    out.append((u, partner[u]))
    phi += delta[u]
  return out


@pytest.mark.parametrize("seed", range(4))
def test_greedy_swaps_equal_the_sequential_greedy(seed):
  rng = np.random.default_rng(seed)
  n, k = 40, 12
  f = rng.integers(0, k, n).astype(np.int32)
  partner = rng.integers(0, n, n).astype(np.int32)
  partner = np.where(f[partner] == f, n, partner).astype(np.int32)  # some none
  delta = np.round(rng.normal(size=n), 1)  # ties
  delta[rng.random(n) < 0.2] = np.inf
  floor = 0.0 if seed < 2 else 9.0  # seed 2, 3: the floor cuts the greedy
  with jax.enable_x64(True):
    count, acc_u, acc_v, used = fl._greedy_swaps(
        jnp.asarray(delta), jnp.asarray(partner), jnp.asarray(f), k, k // 2 + 1,
        -0.05, jnp.asarray(10.0), jnp.asarray(floor))
  want = greedy_oracle(delta, partner, f, -0.05, 10.0, floor)
  count = int(count)
  got = list(zip(np.asarray(acc_u)[:count].tolist(), np.asarray(acc_v)[:count].tolist()))
  assert got == want
  assert set(np.flatnonzero(np.asarray(used)).tolist()) == {
      int(f[x]) for pair in want for x in pair}


def test_sorted_colours_fast_search_reaches_a_local_optimum():
  """Through the public runner (colour blocks and columns from D's rows)."""
  with jax.enable_x64(True):
    for seed in range(2):
      D, colors, dec = sorted_instance(seed, n=24, minority=8)
      st = fl.run_local_search(jax.random.key(0), D, colors, dec, schedule="fast", eps=0.1)
      f = np.asarray(st.fairlet_of)
      assert locally_optimal(D, colors, f, 0.1)
      np.testing.assert_allclose(float(st.phi), phi_oracle(D, f), rtol=1e-9)
      assert composition(f, colors) == composition(np.asarray(dec.fairlet_of), colors)
