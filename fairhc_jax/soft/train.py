"""Training soft hierarchies the optax way: a pure loss, any optimiser, a jitted step.

* :func:`loss` is a pure function of the parameters (normalised soft cost
  plus ``penalty`` times the fairness penalty); ``jax.vmap`` it over
  initialisations and over penalty weights.
* :func:`make_step` turns any ``optax.GradientTransformation`` into a jitted
  projected step ``(params, opt_state, problem, penalty) -> (params,
  opt_state, metrics)`` (an optax update, then :func:`~.params.project`);
  ``batched=True`` vmaps it, so a Pareto front over penalty weights (and
  random restarts) trains in one batched program: the big product ``S Anc``
  of all members becomes one matrix multiply.
* :func:`fit` and :func:`fit_front` are the conveniences: initialise
  (average linkage compressed to ``n'`` nodes by default), train with a
  progress display, decode every ``eval_every`` steps and judge the decoded
  tree with the exact :func:`~fairhc_jax.dasgupta_cost` and
  :func:`~fairhc_jax.check_fairness`, and keep a history.

Loss scale: the cost is divided by ``n * s(V)`` (``s(V) = sum_{i<j}
s(i, j)``, so every tree's normalised cost lies in ``(0, 1]``), the penalty
by ``n`` (:mod:`.fairness`). Default optimiser: ``optax.adam(0.01)``
(step sizes in probability units of the simplex rows), with ``B``'s updates
scaled by ``internal_scale = 0.1``.

The internal tree is used straight-through (:func:`straight_through`): the
forward pass uses ``one_hot(argmax B)``, for which the expected cost over
the points' random parents is exact (:mod:`.cost`), and ``B`` gets the
gradient of the relaxed formula. Measured on n = 300 Gaussian points
(n' = 32): the fully soft formula drifted to spread-out ``B`` whose decoded
trees were 5-7% worse than the start; straight-through with full-size ``B``
steps flipped parents to worse trees; ``B`` steps scaled by 0.1 kept the
start's tree and trained ``A`` on the exact expectation.
"""

from __future__ import annotations

from typing import Any, List, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairhc_jax import _checks
from fairhc_jax import hierarchy as _hier
from fairhc_jax import progress as _progress
from fairhc_jax.agglomerative import linkage_kernel
from fairhc_jax.fairness import check_fairness
from fairhc_jax.fairness import constraints as _cons
from fairhc_jax.hierarchy import Hierarchy
from fairhc_jax.objectives import dasgupta_cost_kernel
from fairhc_jax.soft import cost as _cost
from fairhc_jax.soft import decoding as _decode
from fairhc_jax.soft import fairness as _fair
from fairhc_jax.soft import params as _params
from fairhc_jax.soft import tree_step as _tree
from fairhc_jax.soft.fairness import FairnessTarget
from fairhc_jax.soft.params import SoftHierarchy

__all__ = ["FitResult", "FrontResult", "History", "Problem", "default_optimizer",
           "fit", "fit_front", "loss", "make_problem", "make_step",
           "straight_through", "tangent"]

DEFAULT_LEARNING_RATE = 0.01
DEFAULT_INTERNAL_SCALE = 0.1


def default_optimizer() -> optax.GradientTransformation:
  """``optax.adam(0.01)``, the default of :func:`fit`."""
  return optax.adam(DEFAULT_LEARNING_RATE)


class Problem(NamedTuple):
  """What a loss needs besides the parameters (a pytree, shared by a batch).

  Attributes:
    S: ``float[n, n]`` symmetric similarities.
    scale: ``float[]``: ``1 / (n * s(V))``, the cost normalisation.
    target: a :class:`~.fairness.FairnessTarget`, or ``None`` (no penalty).
  """

  S: jax.Array
  scale: jax.Array
  target: Optional[FairnessTarget] = None


def make_problem(S, colors=None, *, constraint=None, min_size: int = 2,
                 num_colors: Optional[int] = None) -> Problem:
  """Checks ``S`` (and the constraint) and compiles them into a :class:`Problem`.

  Args:
    S: ``float[n, n]`` symmetric, non-negative similarities (e.g.
      :func:`fairhc_jax.similarity` of distances).
    colors: ``int[n]`` colours (needed with a constraint).
    constraint: a fairness constraint of :mod:`fairhc_jax.fairness`, or ``None``.
    min_size: clusters below this expected size are exempt from the penalty.
    num_colors: ``c`` (default: the constraint's, else ``max(colors) + 1``).

  Returns:
    A :class:`Problem`.
  """
  fn = "make_problem"
  S = _checks.check_square_matrix(fn, "S", S, kind="similarity")
  n = S.shape[0]
  total = 0.5 * (jnp.sum(S) - jnp.trace(S))
  scale = 1.0 / (n * jnp.maximum(total, jnp.finfo(S.dtype).tiny))
  target = None
  if constraint is not None:
    if colors is None:
      _checks.fail(fn, "colors", "be given with a constraint", "None")
    target = _fair.fairness_target(colors, constraint, min_size=min_size,
                                   num_colors=num_colors, dtype=S.dtype)
  return Problem(S, scale.astype(S.dtype), target)


class Metrics(NamedTuple):
  """Per-step values of the loss (``float[]`` each; ``float[B]`` batched)."""
  loss: jax.Array
  cost: jax.Array       # normalised soft cost
  penalty: jax.Array    # soft fairness penalty (0 without a target)


def straight_through(params: SoftHierarchy) -> SoftHierarchy:
  """``B`` replaced by its most likely parents in the forward pass.

  The value is ``one_hot(argmax B)`` (the internal tree the decoder will
  build), the gradient that of ``B`` (straight-through). With a hard
  internal tree the expected cost over the points is exact
  (:mod:`.cost`), so the loss is the true expected cost of the points'
  random parents under the decoded internal tree.
  """
  k = params.B.shape[-1]
  idx = jnp.argmax(jnp.where(_params.parent_mask(k), params.B, -1), axis=-1)
  hard = jax.nn.one_hot(idx, k, dtype=params.B.dtype) * (jnp.arange(k) < k - 1)[:, None]
  return SoftHierarchy(params.A, params.B + jax.lax.stop_gradient(hard - params.B))


def _loss_and_metrics(params: SoftHierarchy, problem: Problem, penalty,
                      decoded_penalty: bool = False):
  params = straight_through(params)
  anc = _params.ancestors_kernel(params)
  cost = _cost._cost_from_ancestors(params, anc, problem.S) * problem.scale
  if problem.target is None:
    pen = jnp.zeros((), cost.dtype)
  elif decoded_penalty:
    # Straight-through points too: the value is the decoded tree's penalty.
    k = params.A.shape[-1]
    hardA = jax.nn.one_hot(jnp.argmax(params.A, axis=-1), k, dtype=params.A.dtype)
    st = SoftHierarchy(params.A + jax.lax.stop_gradient(hardA - params.A), params.B)
    pen = _fair.fairness_penalty_kernel(st, problem.target)
  else:
    pen = _fair.fairness_penalty_kernel(params, problem.target, anc)
  total = cost + penalty * pen
  return total, Metrics(total, cost, pen)


def loss(params: SoftHierarchy, problem: Problem, penalty=0.0, *,
         decoded_penalty: bool = False) -> jax.Array:
  """The training loss: normalised soft cost + ``penalty`` * fairness penalty.

  Pure and unchecked (jit / grad / vmap over ``params`` and ``penalty``).
  The cost term uses the internal tree straight-through
  (:func:`straight_through`). With ``decoded_penalty`` the penalty's value
  is that of the decoded tree (points' most likely parents too), its
  gradient that of the expected counts (straight-through); by default it is
  the penalty of the expected counts, which a fractional assignment can
  satisfy while its decoding does not.

  Args:
    params: a :class:`SoftHierarchy` over ``n`` points.
    problem: a :class:`Problem` from :func:`make_problem`.
    penalty: ``float[]`` weight of the fairness penalty (ignored without a
      target).
    decoded_penalty: static; see above.

  Returns:
    ``float[]``.
  """
  return _loss_and_metrics(params, problem, penalty, decoded_penalty)[0]


def tangent(grads: SoftHierarchy) -> SoftHierarchy:
  """Projects a gradient onto the tangent space of the simplex rows.

  Removes each row's mean over its support (all of ``A``'s columns;
  ``B``'s nodes above the row). Without it an optimiser with per-coordinate
  scaling (Adam's first steps are ``-lr * sign(g)``) moves a whole row by
  the same amount when all its partial derivatives share a sign (they do:
  more mass anywhere raises the cost), and the projection undoes the step.
  """
  gA, gB = grads
  gA = gA - jnp.mean(gA, axis=-1, keepdims=True)
  mask = _params.parent_mask(gB.shape[-1], gB.dtype)
  width = jnp.maximum(mask.sum(-1, keepdims=True), 1)
  gB = (gB - jnp.sum(gB * mask, axis=-1, keepdims=True) / width) * mask
  return SoftHierarchy(gA, gB)


def make_step(optimizer: Optional[optax.GradientTransformation] = None, *,
              batched: bool = False,
              internal_scale: float = DEFAULT_INTERNAL_SCALE,
              decoded_penalty: bool = False, mode: str = "dense"):
  """A jitted projected optimisation step for any optax optimiser.

  Args:
    optimizer: an ``optax.GradientTransformation`` (default
      :func:`default_optimizer`).
    batched: vmap the step over a leading axis of ``params``,
      ``opt_state`` and ``penalty`` (the problem is shared).
    internal_scale: factor on the optimiser's updates of ``B`` (0 freezes
      the internal tree).
    decoded_penalty: the penalty of the decoded tree, straight-through
      (see :func:`loss`).
    mode: ``"dense"`` (default): :func:`loss` (soft points, the exact
      expectation, two ``n x n`` by ``n x n'`` products per step);
      ``"tree"``: :func:`fairhc_jax.soft.tree_step.tree_loss_and_grad`,
      the loss of the decoded tree (points straight-through too, the
      penalty always that of the decoded tree) and the dense formula's
      gradient there, by tree sums in ``O(n^2 + n n' + n'^2)``.

  Returns:
    ``(init, step)``: ``init(params) -> opt_state`` and
    ``step(params, opt_state, problem, penalty) -> (params, opt_state,
    Metrics)``, where the metrics are those of the parameters before the
    step. The gradient goes through :func:`tangent` before the optimiser,
    the update through :func:`~.params.project` after it.
  """
  opt = optimizer if optimizer is not None else default_optimizer()
  if mode not in ("dense", "tree"):
    _checks.fail("make_step", "mode", "be 'dense' or 'tree'", repr(mode))

  def step(params, opt_state, problem, penalty):
    if mode == "tree":
      tm, grads = _tree.tree_loss_and_grad(params, problem.S, problem.scale,
                                           problem.target, penalty)
      metrics = Metrics(tm.loss, tm.cost, tm.penalty)
    else:
      grad_fn = jax.value_and_grad(_loss_and_metrics, has_aux=True)
      (_, metrics), grads = grad_fn(params, problem, penalty, decoded_penalty)
    grads = tangent(grads)
    updates, opt_state = opt.update(grads, opt_state, params)
    updates = SoftHierarchy(updates.A, internal_scale * updates.B)
    params = _params.project(optax.apply_updates(params, updates))
    return params, opt_state, metrics

  if batched:
    return (jax.jit(jax.vmap(opt.init)),
            jax.jit(jax.vmap(step, in_axes=(0, 0, None, 0))))
  return jax.jit(opt.init), jax.jit(step)


class History(NamedTuple):
  """What :func:`fit` recorded every ``eval_every`` steps (NumPy arrays).

  Attributes:
    step: ``int[T]`` step numbers (0 = the initialisation).
    loss: ``float[T]`` loss of the parameters at that step.
    cost: ``float[T]`` normalised soft cost.
    penalty: ``float[T]`` soft fairness penalty.
    decoded_cost: ``float[T]`` exact Dasgupta cost of the decoded tree.
    decoded_fair: ``bool[T]`` the decoded tree passes the exact check
      (True without a constraint).
    decoded_violating: ``int[T]`` checked clusters of the decoded tree that
      break the constraint.
  """

  step: np.ndarray
  loss: np.ndarray
  cost: np.ndarray
  penalty: np.ndarray
  decoded_cost: np.ndarray
  decoded_fair: np.ndarray
  decoded_violating: np.ndarray


class FitResult(NamedTuple):
  """Result of :func:`fit` (one member of :func:`fit_front`).

  Attributes:
    hierarchy: the best decoded :class:`~fairhc_jax.Hierarchy` over the
      evaluations (lowest exact cost among those passing the exact check;
      without any passing, fewest violating clusters, then lowest cost).
      Step 0, the decoded initialisation, is one of them.
    params: the final :class:`SoftHierarchy`.
    history: a :class:`History`.
    cost: exact Dasgupta cost of ``hierarchy``.
    is_fair: whether ``hierarchy`` passes the exact check (True without a
      constraint).
    best_step: the step whose decoded tree is ``hierarchy``.
    penalty: the penalty weight used.
    scope: the :class:`~fairhc_jax.ClusterScope` of the check
      (``min_size``), so ``check_fairness(result, colors)`` repeats it.
    constraint: the constraint (or ``None``).
  """

  hierarchy: Hierarchy
  params: SoftHierarchy
  history: History
  cost: float
  is_fair: bool
  best_step: int
  penalty: float
  scope: Any
  constraint: Any


class FrontResult(NamedTuple):
  """Result of :func:`fit_front`: one :class:`FitResult` per member.

  Attributes:
    results: list of :class:`FitResult`, in the order of ``penalties``
      (times ``num_inits`` restarts, penalty-major).
    penalties: ``float[B]`` the penalty weight of each member.
  """

  results: List[FitResult]
  penalties: np.ndarray


def _average_linkage_on_similarity(S) -> Hierarchy:
  # Average linkage on similarities (merge the pair of clusters with the
  # largest average similarity) is average linkage on max(S) - S.
  D = jnp.max(S) - S
  D = D - jnp.diag(jnp.diag(D))
  return linkage_kernel(D, method="average")


def _initial(fn, key, S, init, k: int, dtype):
  """``(params, tree)``: the initial soft hierarchy and the hard tree it came from."""
  n = S.shape[0]
  if init is None or (isinstance(init, str) and init == "average"):
    h = _average_linkage_on_similarity(S)
    return _params.one_hot_params(*_params.compress(h, k), dtype), h
  if isinstance(init, str):
    if init != "random":
      _checks.fail(fn, "init", "be None, 'average', 'random', a Hierarchy or a "
                   "SoftHierarchy", repr(init))
    return _params._random_kernel(key, n, k, dtype), None
  if isinstance(init, Hierarchy):
    h = _hier.check_hierarchy(fn, init, arg="init")
    if h.parent.shape[0] != 2 * n - 1:
      _checks.fail(fn, "init", f"be a hierarchy over the n = {n} points of S",
                   f"one over {(h.parent.shape[0] + 1) // 2} points")
    return _params.one_hot_params(*_params.compress(h, k), dtype), h
  if isinstance(init, SoftHierarchy):
    p = _params.check_params(fn, init, n)
    return SoftHierarchy(p.A.astype(dtype), p.B.astype(dtype)), None
  _checks.fail(fn, "init", "be None, 'average', 'random', a Hierarchy or a "
               "SoftHierarchy", type(init).__name__, TypeError)


def _judge(params1, S, colors, constraint, min_size, num_colors, complete=None):
  h = _decode.tree_from_parents(*_decode.hard_parents(params1))
  n = S.shape[0]
  if complete is not None:
    h = _decode.apply_completion("fit", h, complete, S, n)
  c = float(dasgupta_cost_kernel(h, S, jnp.ones(n, jnp.result_type(int))))
  if constraint is None:
    return h, c, True, 0
  chk = check_fairness(h, colors, constraint, scope=min_size, num_colors=num_colors)
  return h, c, bool(chk.is_fair), int(np.asarray(chk.violating).sum())


def _better(a, b) -> bool:
  """Whether evaluation ``a = (fair, violating, cost)`` beats ``b``."""
  if a[0] != b[0]:
    return a[0]
  if not a[0] and a[1] != b[1]:
    return a[1] < b[1]
  return a[2] < b[2]


def _train(fn, key, S, colors, *, constraint, penalties, num_internal, steps,
           init, optimizer, min_size, eval_every, progress, num_colors,
           internal_scale: float = DEFAULT_INTERNAL_SCALE,
           decoded_penalty: bool = False,
           inits_per_penalty: int = 1, batched: bool, mode: str = "dense",
           complete="auto"):
  S = _checks.check_square_matrix(fn, "S", S, kind="similarity")
  n = S.shape[0]
  dtype = S.dtype
  k = _checks.check_positive_int(fn, "num_internal", num_internal)
  steps = _checks.check_positive_int(fn, "steps", steps, minimum=0)
  eval_every = _checks.check_positive_int(fn, "eval_every", eval_every)
  min_size = _checks.check_positive_int(fn, "min_size", min_size)
  _progress.check_mode(fn, progress)
  if optimizer is not None and not isinstance(optimizer, optax.GradientTransformation):
    _checks.fail(fn, "optimizer", "be an optax.GradientTransformation",
                 type(optimizer).__name__, TypeError)
  _checks.check_key(fn, key)
  if constraint is not None:
    _cons.check_constraint_type(fn, constraint)
    if colors is None:
      _checks.fail(fn, "colors", "be given with a constraint", "None")
    col, num_colors = _checks.check_colors(
        fn, "colors", colors, n,
        num_colors if num_colors is not None else _cons.constraint_num_colors(constraint),
        batched=False)
    col = np.asarray(col)
  else:
    col = None
  problem = make_problem(S, col, constraint=constraint, min_size=min_size,
                         num_colors=num_colors)
  pens = np.asarray(penalties, np.float64).reshape(-1)
  if not np.all(np.isfinite(pens)) or np.any(pens < 0):
    _checks.fail(fn, "penalty", "be finite and >= 0", pens.tolist())
  # Members: every penalty x every restart.
  members = np.repeat(pens, inits_per_penalty)
  num = members.shape[0]
  keys = jax.random.split(key, num)
  if isinstance(init, SoftHierarchy) and init.A.ndim == 3:
    if init.A.shape[0] != num:
      _checks.fail(fn, "init", f"have a leading axis of {num} members",
                   f"{init.A.shape[0]}")
    params = jax.vmap(lambda a, b: SoftHierarchy(a, b))(
        *[jnp.asarray(x, dtype) for x in init])
    start_tree = None
  elif isinstance(init, str) and init == "random":
    params = jax.vmap(lambda kk: _params._random_kernel(kk, n, k, dtype))(keys)
    start_tree = None
  else:
    one, start_tree = _initial(fn, keys[0], S, init, k, dtype)
    params = jax.tree.map(lambda x: jnp.broadcast_to(x, (num,) + x.shape), one)
  internal_scale = float(internal_scale)
  if not (np.isfinite(internal_scale) and internal_scale >= 0):
    _checks.fail(fn, "internal_scale", "be finite and >= 0", internal_scale)
  if mode not in ("dense", "tree"):
    _checks.fail(fn, "mode", "be 'dense' or 'tree'", repr(mode))
  completion = _resolve_completion(fn, complete, constraint, start_tree)
  opt_init, step = make_step(optimizer, batched=True, internal_scale=internal_scale,
                             decoded_penalty=bool(decoded_penalty), mode=mode)
  opt_state = opt_init(params)
  pen_arr = jnp.asarray(members, dtype)
  rec = [dict(step=[], loss=[], cost=[], penalty=[], decoded_cost=[],
              decoded_fair=[], decoded_violating=[]) for _ in range(num)]
  best = [None] * num
  bar = _progress.Progress(fn, progress)

  def evaluate(t, params, metrics):
    for b in range(num):
      pb = jax.tree.map(lambda x: x[b], params)
      h, c, fair, viol = _judge(pb, S, col, constraint, min_size, num_colors, completion)
      r = rec[b]
      r["step"].append(t)
      for name in ("loss", "cost", "penalty"):
        r[name].append(float(getattr(metrics, name)[b]))
      r["decoded_cost"].append(c)
      r["decoded_fair"].append(fair)
      r["decoded_violating"].append(viol)
      if best[b] is None or _better((fair, viol, c), best[b][:3]):
        best[b] = (fair, viol, c, t, h)
    m0 = rec[0]
    bar.update(f"step {t}/{steps}, loss {m0['loss'][-1]:.5g}, "
               f"decoded cost {m0['decoded_cost'][-1]:.5g}"
               + ("" if constraint is None else f", fair {sum(r['decoded_fair'][-1] for r in rec)}/{num}"))

  for t in range(steps + 1):
    # A step's metrics are those of the parameters it starts from; the last
    # evaluation runs one step only for them.
    new_params, new_state, metrics = step(params, opt_state, problem, pen_arr)
    if t == steps or t % eval_every == 0:
      evaluate(t, params, metrics)
    if t == steps:
      break
    params, opt_state = new_params, new_state
  bar.close()
  scope = _fair_scope(min_size)
  results = []
  for b in range(num):
    r = rec[b]
    hist = History(np.asarray(r["step"]), np.asarray(r["loss"]), np.asarray(r["cost"]),
                   np.asarray(r["penalty"]), np.asarray(r["decoded_cost"]),
                   np.asarray(r["decoded_fair"]), np.asarray(r["decoded_violating"]))
    fair, viol, c, t, h = best[b]
    results.append(FitResult(h, jax.tree.map(lambda x: x[b], params), hist, c, fair, t,
                             float(members[b]), scope, constraint))
  return results, members


def _resolve_completion(fn, complete, constraint, start_tree):
  """What :func:`fit` completes decoded trees with (see its ``complete``)."""
  if isinstance(complete, str) and complete == "auto":
    if constraint is not None:
      return None
    return start_tree if start_tree is not None else "average"
  if isinstance(complete, str) and complete == "start":
    if start_tree is None:
      _checks.fail(fn, "complete", "be 'start' only with a tree to start from "
                   "(init None, 'average' or a Hierarchy)", "a random or soft init")
    return start_tree
  if complete is None or isinstance(complete, Hierarchy) or complete == "average":
    return complete
  _checks.fail(fn, "complete", "be 'auto', 'start', 'average', None or a Hierarchy",
               repr(complete))


def _fair_scope(min_size: int):
  from fairhc_jax.fairness import ClusterScope
  return ClusterScope(min_size=min_size)


def fit(key, S, colors=None, *, constraint=None, penalty: float = 1.0,
        num_internal: int = 512, steps: int = 500, init=None,
        optimizer: Optional[optax.GradientTransformation] = None,
        min_size: int = 2, eval_every: int = 25, progress="auto",
        num_colors: Optional[int] = None,
        internal_scale: float = DEFAULT_INTERNAL_SCALE,
        decoded_penalty: bool = False, mode: str = "dense",
        complete="auto") -> FitResult:
  """Trains one soft hierarchy and decodes it into a (fair) tree.

  Example::

    S = fh.similarity(fh.pairwise_distances(X))
    res = fh.soft.fit(jax.random.key(0), S, colors, constraint=fh.Balance(1, 3),
                      penalty=10.0, num_internal=128, steps=300)
    fh.check_fairness(res, colors)          # the exact check, scope min_size
    fh.dasgupta_cost(res.hierarchy, S)

  Args:
    key: PRNG key (consumed; used by ``init="random"``).
    S: ``float[n, n]`` symmetric non-negative similarities.
    colors: ``int[n]`` colours (required with a ``constraint``).
    constraint: ``None`` (plain hierarchical clustering) or a constraint of
      :mod:`fairhc_jax.fairness` (``Balance``, ``BoundedRepresentation``,
      ``Proportional``, ``RepresentationBounds``).
    penalty: weight ``>= 0`` of the fairness penalty.
    num_internal: ``n'``, the number of soft internal nodes.
    steps: optimisation steps.
    init: ``None`` / ``"average"`` (average linkage on the similarities,
      compressed to ``n'`` nodes), ``"random"``, a :class:`Hierarchy`
      (compressed), or a :class:`SoftHierarchy`. Without a penalty, from a
      hard start, the decoded tree did not change in the measured runs
      (``mode="tree"``, the default optimiser, 200 steps, Census and Bank,
      n = 1,000 and 4,000: ``benchmarks/results/soft_plain_1000_4000.txt``),
      so the returned tree is the start's; a random start ends in a local
      optimum of the point moves: measured at n = 1,000, n' = 512, 600 steps,
      keys 1-3 (``benchmarks/bench_soft.py random``), exact cost 1.02-1.05x
      average linkage's on Bank, 1.30-1.33x on Census; a cosine
      learning-rate schedule (from 0.05, ``internal_scale`` 0.3) or
      n' = 64 moved the means by less than 0.07, neither for the better on
      Census (``benchmarks/results/soft_random_1000.txt``).
    optimizer: any ``optax.GradientTransformation`` (default
      ``optax.adam(0.01)``); every update is followed by the projection.
    min_size: clusters smaller than this are exempt from the penalty and
      from the exact check (``scope=min_size``).
    eval_every: decode and judge every this many steps (and at the end).
    progress: ``"auto"``, ``True`` or ``False`` (a tqdm bar via
      :mod:`fairhc_jax.progress`).
    num_colors: ``c`` (default: the constraint's, else ``max(colors) + 1``).
    internal_scale: factor on ``B``'s updates (see the module docstring).
    decoded_penalty: penalise the decoded tree's counts, straight-through
      (see :func:`loss`; measured on a Census sample, n = 500, n' = 64,
      100 steps: it reached a fair tree at penalty 10 where the expected
      counts' penalty left 7 unfair clusters, at a higher cost).
    mode: ``"dense"`` (the exact expectation over soft points, two dense
      ``n x n`` by ``n x n'`` products per step) or ``"tree"`` (the decoded
      tree's loss and the relaxed gradient there, by tree sums: see
      :func:`make_step` and :mod:`fairhc_jax.soft.tree_step`).
    complete: how every evaluated decoded tree is completed before it is
      judged (:func:`~fairhc_jax.soft.decode`): ``"auto"`` (default:
      without a constraint, by the start tree when there is one (init
      ``None``, ``"average"`` or a :class:`Hierarchy`), else by average
      linkage inside each node; with a constraint, not at all, since the
      added clusters are not fair in general), ``"start"``, ``"average"``,
      ``None``, or a reference :class:`Hierarchy`. Completing by the start
      tree makes step 0's evaluation the start tree itself, so the
      returned tree is never worse than the start.

  Returns:
    A :class:`FitResult` (``.hierarchy``, ``.params``, ``.history``, ...).

  Raises:
    ValueError / TypeError: bad inputs, before any tracing.
  """
  fn = "fit"
  p = _checks.as_float(fn, "penalty", penalty) if not isinstance(penalty, (int, float)) else penalty
  if np.ndim(p) != 0:
    _checks.fail(fn, "penalty", "be a scalar (use soft.fit_front for several)",
                 f"shape {np.shape(p)}")
  if isinstance(init, SoftHierarchy) and jnp.ndim(init.A) != 2:
    _checks.fail(fn, "init", "be one SoftHierarchy (use soft.fit_front for a batch)",
                 f"A of shape {tuple(jnp.shape(init.A))}")
  results, _ = _train(fn, key, S, colors, constraint=constraint, penalties=[float(p)],
                      num_internal=num_internal, steps=steps, init=init,
                      optimizer=optimizer, min_size=min_size, eval_every=eval_every,
                      progress=progress, num_colors=num_colors,
                      internal_scale=internal_scale, decoded_penalty=decoded_penalty,
                      batched=False, mode=mode, complete=complete)
  return results[0]


def fit_front(key, S, colors=None, *, constraint=None,
              penalties: Sequence[float] = (0.0, 1.0, 10.0), num_inits: int = 1,
              num_internal: int = 512, steps: int = 500, init=None,
              optimizer: Optional[optax.GradientTransformation] = None,
              min_size: int = 2, eval_every: int = 25, progress="auto",
              num_colors: Optional[int] = None,
              internal_scale: float = DEFAULT_INTERNAL_SCALE,
              decoded_penalty: bool = False, mode: str = "dense",
              complete="auto") -> FrontResult:
  """Trains a batch of soft hierarchies in one vmapped run (a Pareto front).

  Members are every penalty weight times ``num_inits`` initialisations
  (penalty-major); all share ``S``, so the step's big product is one matrix
  multiply for the whole batch.

  Args:
    key: PRNG key (consumed: one subkey per member, for random inits).
    S, colors, constraint, num_internal, steps, optimizer, min_size,
      eval_every, progress, num_colors, internal_scale, decoded_penalty,
      mode, complete: as in :func:`fit`.
    penalties: ``B_p`` penalty weights ``>= 0``.
    num_inits: restarts per penalty weight (distinct only with
      ``init="random"`` or a batched ``init``).
    init: as in :func:`fit`, or a :class:`SoftHierarchy` with a leading axis
      of ``B_p * num_inits`` members.

  Returns:
    A :class:`FrontResult`.
  """
  fn = "fit_front"
  num_inits = _checks.check_positive_int(fn, "num_inits", num_inits)
  results, members = _train(fn, key, S, colors, constraint=constraint,
                            penalties=penalties, num_internal=num_internal, steps=steps,
                            init=init, optimizer=optimizer, min_size=min_size,
                            eval_every=eval_every, progress=progress,
                            num_colors=num_colors, internal_scale=internal_scale,
                            decoded_penalty=decoded_penalty, inits_per_penalty=num_inits,
                            batched=True, mode=mode, complete=complete)
  return FrontResult(results, members)
