"""Parameter search for FHAC: a batched cubic-RBF surrogate (CORS-style).

Chhabra & Mohapatra tune ``(alpha0, theta1, beta0, theta2)`` with CORS
(Regis & Shoemaker 2005) through Knysh & Korkolis' ``blackbox``. This module
does the same with every round's batch evaluated by one vectorised FHAC call:

1. The vanilla point ``(alpha0, theta1, beta0, theta2) = (1, 0, 0, 0)`` (plain
   HAC) plus a Latin-hypercube design of ``2 (d + 1) = 10`` points in the
   box (one batch).
2. Rounds: fit a cubic RBF ``s(x) = sum_i lam_i |x - x_i|^3 + c^T [1, x]``
   (interpolating, with a linear tail) to all evaluated points in the unit
   cube; draw candidates (Gaussian perturbations of the best point, radius
   shrinking over the run, and uniform points); pick the batch greedily as
   the candidates of lowest surrogate value at distance at least ``r`` from
   every evaluated and already picked point, ``r`` cycling through
   ``(0.2, 0.1, 0.05, 0.02, 0.01) * sqrt(d)`` (CORS' shrinking minimum
   distance); evaluate the batch in one call.

The best point is the lowest cost seen (ties: the earliest), so the result is
never worse than vanilla HAC. ``search="random"`` evaluates the vanilla point
and uniform points with the same budget and batch (the comparison baseline).

[decision] Default bounds: the paper's ``alpha0 in [0, 1]``; ``theta1 in
[0, 2 / (n - k)]`` (the paper's ``[0, 15]`` multiplies ``|C| - k >= 1``, so
every value above 1 makes ``alpha >= 1`` at every fair merge, where no pair
fails any group and fairness never binds; the scaled range lets the
tolerance fall from ``alpha0 + 2`` at the first merge to ``alpha0`` at the
last); the distance slacks ``beta0 in [0, 150 s]``,
``theta2 in [0, 15 s]`` with ``s = median(D) / 100`` (the paper's bounds are
in the units of its raw-feature distances; ``s`` rescales them to the data
at hand, so the search box covers slacks from 0 to about 1.5 median
distances at the first merge).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks
from fairhc_jax.algorithms import fair_hac as _fh
from fairhc_jax.algorithms.fair_hac import FHACParams

COSTS = ("fc", "hfc")
SEARCHES = ("cors", "random")
_RADII = (0.2, 0.1, 0.05, 0.02, 0.01)
VANILLA = FHACParams(1.0, 0.0, 0.0, 0.0)


class FHACSearchResult(NamedTuple):
  """Result of :func:`tune_fhac`.

  Attributes:
    params: the best :class:`FHACParams` (Python floats).
    cost: its FC at ``k`` (or HFC).
    vanilla_cost: the cost of plain HAC (the first evaluation).
    history: ``(float64[E, 4] params, float64[E] costs)`` in evaluation order.
    bounds: ``float64[4, 2]``, the box searched.
  """

  params: FHACParams
  cost: float
  vanilla_cost: float
  history: tuple
  bounds: np.ndarray


def default_bounds(D, k: int = 1) -> np.ndarray:
  """The box of the module docstring for distances ``D`` and FHAC's ``k``."""
  d = np.asarray(D, np.float64)
  n = d.shape[0]
  off = d[~np.eye(d.shape[0], dtype=bool)]
  s = float(np.median(off)) / 100.0 if off.size else 1.0
  s = s if s > 0 else 1.0
  return np.array([[0.0, 1.0], [0.0, 2.0 / max(n - k, 1)], [0.0, 150.0 * s],
                   [0.0, 15.0 * s]])


def _lhs(rng, m, d):
  cut = (np.arange(m)[:, None] + rng.uniform(size=(m, d))) / m
  for j in range(d):
    cut[:, j] = cut[rng.permutation(m), j]
  return cut


def _rbf_fit(x, f):
  """Cubic RBF with linear tail through ``(x_i, f_i)``; returns a predictor."""
  m, d = x.shape
  r = np.linalg.norm(x[:, None] - x[None], axis=-1)
  phi = r ** 3
  p = np.hstack([np.ones((m, 1)), x])
  a = np.zeros((m + d + 1, m + d + 1))
  a[:m, :m] = phi + 1e-10 * np.eye(m)
  a[:m, m:] = p
  a[m:, :m] = p.T
  rhs = np.concatenate([f, np.zeros(d + 1)])
  # The interpolation system is square and, for distinct points, nonsingular
  # (cubic RBF with a linear tail, points unisolvent for linear
  # polynomials): an LU solve, O(m^3 / 3), instead of the SVD of lstsq,
  # which took more time than all the FHAC evaluations of a 1,000-point
  # search. Least squares stays as the fallback for a singular system.
  try:
    coef = np.linalg.solve(a, rhs)
  except np.linalg.LinAlgError:
    coef = np.linalg.lstsq(a, rhs, rcond=None)[0]
  lam, c = coef[:m], coef[m:]

  def predict(y):
    ry = np.linalg.norm(y[:, None] - x[None], axis=-1)
    return (ry ** 3) @ lam + c[0] + y @ c[1:]

  return predict


def tune_fhac(key, D, colors, *, k: int, method: str = "average",
              cost: str = "fc", budget: int = 200, batch: int = 20,
              bounds=None, rule: str = "literal", search: str = "cors",
              num_colors=None) -> FHACSearchResult:
  """Minimises FHAC's FC at ``k`` (or HFC) over ``(alpha0, theta1, beta0, theta2)``.

  Args:
    key: a JAX PRNG key (consumed; seeds the design and the candidates).
    D: ``float[n, n]`` distances.
    colors: ``int[n]`` groups.
    k: FHAC's ``k`` (and the FC level).
    method: linkage (see :func:`fairhc_jax.algorithms.fair_hac.fhac`).
    cost: ``"fc"`` or ``"hfc"``.
    budget: total number of FHAC evaluations (vanilla and the initial design
      included), at least ``11``.
    batch: evaluations per vectorised call (``>= 1``).
    bounds: ``float[4, 2]`` box (lower, upper per parameter), or ``None`` for
      :func:`default_bounds`.
    rule: FHAC's pair rule.
    search: ``"cors"`` (surrogate) or ``"random"`` (uniform, the baseline).
    num_colors: ``c``; defaults to ``max(colors) + 1``.

  Returns:
    :class:`FHACSearchResult`; ``cost <= vanilla_cost`` always.
  """
  fn = "tune_fhac"
  key = _checks.check_key(fn, key)
  d, col, k, c = _fh.check_inputs(fn, D, colors, k, method, rule, num_colors)
  _checks.check_choice(fn, "cost", cost, COSTS)
  _checks.check_choice(fn, "search", search, SEARCHES)
  dim = 4
  n_init = 2 * (dim + 1)
  budget = _checks.check_positive_int(fn, "budget", budget)
  if budget < n_init + 1:
    _checks.fail(fn, "budget", f"be at least the initial design (vanilla + {n_init} points = {n_init + 1})",
                 budget)
  batch = _checks.check_positive_int(fn, "batch", batch)
  if bounds is None:
    box = default_bounds(d, k)
  else:
    box = np.asarray(bounds, np.float64)
    if box.shape != (4, 2) or not np.all(np.isfinite(box)) or np.any(box[:, 0] < 0) \
        or np.any(box[:, 1] < box[:, 0]):
      _checks.fail(fn, "bounds", "be float[4, 2] finite (lower, upper) pairs with 0 <= lower <= upper",
                   _checks.describe(box))
  seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
  rng = np.random.default_rng(seed)
  lo, width = box[:, 0], box[:, 1] - box[:, 0]
  safe = np.where(width > 0, width, 1.0)
  vanilla = np.array(VANILLA, np.float64)
  cols = 1 if cost == "fc" else 2

  def run(p):
    """Costs of raw parameter rows ``p: [b, 4]``, ``b <= batch``, padded to one shape."""
    b = p.shape[0]
    full = np.vstack([p, np.repeat(p[-1:], batch - b, axis=0)])
    sched = _fh.fhac_schedules(full, d.shape[0], k, d.dtype)
    out = _fh.fhac_batch_kernel(d, col, sched, jnp.int32(k),
                                num_colors=c, method=method, rule=rule)
    return np.asarray(out[cols], np.float64)[:b]

  def evaluate(u):
    p = lo + u * width
    return p, run(p)

  vcost = float(run(vanilla[None])[0])
  hp, hc = [vanilla[None]], [np.array([vcost])]
  units = []
  first = _lhs(rng, n_init, dim) if search == "cors" else rng.uniform(size=(n_init, dim))
  done = 1
  todo = first
  round_id = 0
  while done < budget:
    take = min(len(todo), budget - done)
    for s in range(0, take, batch):
      u = todo[s:min(s + batch, take)]
      p, f = evaluate(u)
      hp.append(p)
      hc.append(f)
      units.append(u)
      done += len(u)
    if done >= budget:
      break
    m = min(batch, budget - done)
    if search == "random":
      todo = rng.uniform(size=(m, dim))
      continue
    x = np.concatenate(units)
    f = np.concatenate(hc[1:])
    fs = (f - f.min()) / max(f.max() - f.min(), 1e-12)
    model = _rbf_fit(x, fs)
    best = x[np.argmin(f)]
    frac = done / budget
    sigma = 0.2 * (1 - frac) + 0.02
    cand = np.clip(best + sigma * rng.normal(size=(400, dim)), 0, 1)
    cand = np.vstack([cand, rng.uniform(size=(200, dim))])
    pred = model(cand)
    radius = _RADII[round_id % len(_RADII)] * np.sqrt(dim)
    round_id += 1
    chosen = []
    pts = x
    for i in np.argsort(pred):
      if len(chosen) == m:
        break
      if np.min(np.linalg.norm(pts - cand[i], axis=1)) >= radius:
        chosen.append(cand[i])
        pts = np.vstack([pts, cand[i]])
    while len(chosen) < m:   # too crowded: fill with uniform points
      chosen.append(rng.uniform(size=dim))
    todo = np.array(chosen)
  params = np.concatenate(hp)
  costs = np.concatenate(hc)
  b = int(np.argmin(costs))
  return FHACSearchResult(FHACParams(*[float(v) for v in params[b]]), float(costs[b]),
                          vcost, (params, costs), box)
