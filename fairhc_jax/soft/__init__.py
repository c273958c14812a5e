"""Soft (differentiable) hierarchies trained with optax, with a fairness penalty.

A research prototyping kit: an FPH/EPH-style soft hierarchy (Zügner et al.,
ICLR 2022; Kollovieh et al., NeurIPS 2024), its expected Dasgupta cost and
expected colour counts as matrix products, a differentiable penalty for the
library's fairness constraints, decoding to a valid
:class:`~fairhc_jax.Hierarchy` judged with the exact kernels, and optax
training (pure loss, jitted projected step, vmapped Pareto fronts).

One idea per module:

* :mod:`.params`: :class:`SoftHierarchy` ``(A, B)``, the simplex
  projection, ancestor probabilities, initialisation from a compressed tree
  or at random;
* :mod:`.cost`: :func:`expected_dasgupta_cost`;
* :mod:`.fairness`: :func:`soft_color_counts`, :class:`FairnessTarget`,
  :func:`fairness_penalty`;
* :mod:`.decoding`: :func:`decode` (optionally completed);
* :mod:`.completion`: :func:`complete_by_reference`,
  :func:`complete_by_average_linkage` (a sub-tree inside every decoded
  node: the decoded start becomes the start tree itself);
* :mod:`.tree_step`: the decoded-tree loss and its gradient by tree sums
  (``make_step(mode="tree")``, ``fit(mode="tree")``), no ``n^2 n'`` product;
* :mod:`.train`: :func:`loss`, :func:`make_step`, :func:`fit`,
  :func:`fit_front`.

HypHC (Chami et al. 2020) is not included; see ``benchmarks/bench_soft.py``
and the notes in ``benchmarks/results/soft_hyphc_note.txt``.
"""

from fairhc_jax.soft import completion, tree_step
from fairhc_jax.soft.completion import (complete_by_average_linkage, complete_by_reference,
                                        repair_by_blocks)
from fairhc_jax.soft.cost import expected_dasgupta_cost, expected_dasgupta_cost_kernel
from fairhc_jax.soft.decoding import decode
from fairhc_jax.soft.fairness import (FairnessTarget, fairness_penalty,
                                      fairness_penalty_kernel, fairness_target,
                                      soft_color_counts, soft_color_counts_kernel)
from fairhc_jax.soft.params import (SoftHierarchy, ancestors, ancestors_kernel,
                                    compress, from_hierarchy, project, random_init)
from fairhc_jax.soft.train import (FitResult, FrontResult, History, Problem,
                                   default_optimizer, fit, fit_front, loss,
                                   make_problem, make_step)

__all__ = [
    "complete_by_average_linkage", "complete_by_reference", "completion", "repair_by_blocks",
    "tree_step",
    "FairnessTarget", "FitResult", "FrontResult", "History", "Problem",
    "SoftHierarchy", "ancestors", "ancestors_kernel", "compress",
    "default_optimizer", "decode", "expected_dasgupta_cost",
    "expected_dasgupta_cost_kernel", "fairness_penalty", "fairness_penalty_kernel",
    "fairness_target", "fit", "fit_front", "loss", "make_problem", "make_step",
    "project", "random_init", "soft_color_counts", "soft_color_counts_kernel",
]
