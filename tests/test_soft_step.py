"""fairhc_jax.soft.tree_step and the simplex projection: the fast step's pieces.

Oracles: ``jax.grad`` of the dense loss (:func:`fairhc_jax.soft.train`'s
relaxed formula, a different computation: matrix products, no tree sums),
and literal NumPy transcriptions (parent-pointer walks, ``np.argmax``, a
bisection simplex projection) that share no code with the package.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fairhc_jax as fh
from fairhc_jax import soft
from fairhc_jax.soft import params as sparams
from fairhc_jax.soft import train, tree_step
from soft_oracles import (ancestors_or_self, bisect_projection, one_hot, oracle_cost,
                          similarity)


# ---------------------------------------------------------------------------
# Independent oracles.


def random_tree(rng, n, k, shape="random"):
  if shape == "chain":          # every node the parent of the one below: depth k
    node_parent = np.r_[np.arange(1, k), -1]
  elif shape == "star":         # every node a child of the root
    node_parent = np.r_[np.full(k - 1, k - 1), -1]
  else:
    node_parent = np.r_[[rng.integers(z + 1, k) for z in range(k - 1)], -1].astype(int)
  leaf_parent = rng.integers(0, k, n)
  return leaf_parent, node_parent


# ---------------------------------------------------------------------------
# The step's value and gradient against the dense formula.
@pytest.fixture(scope="module")
def jitted():
  dense = jax.jit(jax.value_and_grad(train._loss_and_metrics, has_aux=True), static_argnums=3)
  tree = jax.jit(tree_step.tree_loss_and_grad)
  return dense, tree


CASES = [
    # (n, k, tree shape, number of colours, constraint)
    (13, 6, "random", 2, fh.Balance(1, 2)),
    (13, 6, "chain", 2, fh.Balance(1, 2)),
    (13, 6, "star", 3, fh.BoundedRepresentation(0.5)),
    # c > 8 (the dot path) and no penalty: a compile each, slow.
    pytest.param(13, 6, "random", 10, fh.BoundedRepresentation(0.3), marks=pytest.mark.slow),
    pytest.param(13, 6, "random", 0, None, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("n,k,shape,c,constraint", CASES)
def test_tree_step_equals_dense_gradient_on_the_support(jitted, n, k, shape, c, constraint):
  dense, tree = jitted
  rng = np.random.default_rng(hash((shape, c)) % 2**32)
  with jax.enable_x64(True):
    for _ in range(2):
      lp, npar = random_tree(rng, n, k, shape)
      p = one_hot(lp, npar)
      S = similarity(rng, n)
      if c:
        colors = np.r_[np.arange(c), rng.integers(0, c, n - c)]
        prob = soft.make_problem(jnp.asarray(S), colors, constraint=constraint, min_size=3)
      else:
        prob = soft.make_problem(jnp.asarray(S))
      (val, _), g = dense(p, prob, 0.7, True)
      tm, tg = tree(p, prob.S, prob.scale, prob.target, 0.7)
      assert float(tm.cost) == pytest.approx(oracle_cost(S, lp, npar) * float(prob.scale),
                                             rel=1e-12)
      assert float(tm.loss) == pytest.approx(float(val), rel=1e-12)
      # gA equals the dense gradient itself (not only up to a row constant).
      np.testing.assert_allclose(np.asarray(tg.A), np.asarray(g.A), atol=1e-12)
      # gB equals it on B's support and is zero off it.
      mask = np.triu(np.ones((k, k), bool), 1)
      np.testing.assert_allclose(np.asarray(tg.B)[mask], np.asarray(g.B)[mask], atol=1e-12)
      assert np.all(np.asarray(tg.B)[~mask] == 0)


@pytest.mark.slow
def test_tree_step_float32_close_to_float64(jitted):
  _, tree = jitted
  rng = np.random.default_rng(8)
  n, k = 13, 6
  lp, npar = random_tree(rng, n, k)
  S = similarity(rng, n)
  colors = np.r_[0, 1, rng.integers(0, 2, n - 2)]
  with jax.enable_x64(True):
    prob = soft.make_problem(jnp.asarray(S), colors, constraint=fh.Balance(1, 2), min_size=3)
    _, g64 = tree(one_hot(lp, npar), prob.S, prob.scale, prob.target, 0.7)
    g64 = (np.asarray(g64.A), np.asarray(g64.B))
  prob = soft.make_problem(jnp.asarray(S, jnp.float32), colors, constraint=fh.Balance(1, 2),
                           min_size=3)
  _, g32 = tree(one_hot(lp, npar, np.float32), prob.S, prob.scale, prob.target, 0.7)
  assert g32.A.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(g32.A), g64[0], atol=1e-5)
  np.testing.assert_allclose(np.asarray(g32.B), g64[1], atol=1e-5)


# ---------------------------------------------------------------------------
# Pieces.
@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (5, 37), (6, 64), (2, 33), (128, 3), (130, 5)])
def test_transpose_in_blocks(shape):
  rng = np.random.default_rng(shape[1])
  X = rng.normal(size=shape)
  with jax.enable_x64(True):
    out = np.asarray(jax.jit(tree_step._transpose)(jnp.asarray(X)))
  assert out.shape == X.T.shape
  assert np.array_equal(out, X.T)


@pytest.mark.parametrize("shape", ["random", "chain", "star"])
def test_reach_matrix_matches_parent_walks(shape):
  rng = np.random.default_rng(3)
  k = 9
  lp, npar = random_tree(rng, 7, k, shape)
  npar_j = np.where(npar < 0, k, npar)
  lay = jax.jit(tree_step.layout)(jnp.asarray(lp, jnp.int32), jnp.asarray(npar_j, jnp.int32))
  Rn = np.asarray(tree_step._reach(lay, jnp.float32))
  ref = np.zeros((k, k))
  for z in range(k):
    ref[z, ancestors_or_self(npar, z)] = 1
  assert np.array_equal(Rn, ref)


def test_first_max_breaks_ties_to_the_first_index():
  rng = np.random.default_rng(4)
  X = rng.integers(0, 3, size=(40, 7)).astype(np.float64)   # many ties
  X[0] = 1.0                                                 # all equal
  X[1, :] = -np.inf
  X[1, 3] = -1.0
  with jax.enable_x64(True):
    got64 = np.asarray(jax.jit(tree_step._first_max)(jnp.asarray(X)))
  got32 = np.asarray(jax.jit(tree_step._first_max)(jnp.asarray(X, jnp.float32)))
  # float64 values that differ only beyond float32's precision: no rounding to float32.
  Y = np.full((2, 4), 0.5)
  Y[0, 2] += 1e-12
  Y[1, 3] += 1e-15
  with jax.enable_x64(True):
    goty = np.asarray(jax.jit(tree_step._first_max)(jnp.asarray(Y)))
  assert np.array_equal(got64, np.argmax(X, axis=1))
  assert np.array_equal(got32, np.argmax(X, axis=1))
  assert np.array_equal(goty, [2, 3])


def test_outer_sum_matches_matmul():
  rng = np.random.default_rng(6)
  for c in (1, 3, 8, 9):
    L, R = rng.normal(size=(5, c)), rng.normal(size=(c, 11))
    with jax.enable_x64(True):
      got = np.asarray(tree_step._outer_sum(jnp.asarray(L), jnp.asarray(R)))
    np.testing.assert_allclose(got, L @ R, atol=1e-12)


def test_projection_unmasked_rows_and_start_bounds():
  """The all-entries path: rows where either start bound is the larger one."""
  rng = np.random.default_rng(12)
  k = 40
  hot = np.zeros((4, k))
  hot[np.arange(4), [0, 5, 17, k - 1]] = 1.0
  rows = np.r_[
      rng.normal(size=(3, k)),                                # mean bound
      hot + 0.01 * np.sign(rng.normal(size=(4, k))),          # max - 1 bound, ties
      hot,                                                    # exact one-hot
      hot * 3.0,                                              # one large entry
      np.full((1, k), 1.0 / k),                               # already on the simplex
      np.full((1, k), 7.0),                                   # all tied
  ]
  with jax.enable_x64(True):
    out = np.asarray(jax.jit(sparams._project_rows)(jnp.asarray(rows)))
  for i, v in enumerate(rows):
    np.testing.assert_allclose(out[i], bisect_projection(v, np.ones(k, bool)), atol=1e-10)
  out32 = np.asarray(jax.jit(sparams._project_rows)(jnp.asarray(rows, jnp.float32)))
  for i, v in enumerate(rows):
    np.testing.assert_allclose(out32[i], bisect_projection(v, np.ones(k, bool)), atol=2e-6)
