"""Fairness of a hierarchy: colour counts per node, constraints, verdicts, costs, audits.

Notation (ALGORITHMS.md section 2): ``c`` colours, a cluster ``C`` (a node of
the hierarchy, its leaves) has colour counts ``n_g(C)`` and shares
``delta_g(C) = n_g(C) / |C|``; the data has ``n_g`` points of colour ``g`` and
shares ``phi_g = n_g / n``.

One idea per module:

* :mod:`.constraints`: the constraint types (:class:`BoundedRepresentation`,
  :class:`RepresentationBounds`, :class:`Balance`, :class:`Proportional`) and
  their exact compilation to integer threshold tables;
* :mod:`.scope`: :class:`ClusterScope`, which clusters a check counts (a
  minimum size; "at and above these blocks"), and its kernel;
* :mod:`.proportional`: the exact proportional rule (64-bit arithmetic on
  ``uint32`` pairs from :mod:`fairhc_jax._wide_int`);
* :mod:`.counts`: colour counts of every node (:func:`color_counts`,
  :func:`color_counts_kernel`);
* :mod:`.checks`: :func:`check_fairness`, :func:`is_fair`,
  :func:`check_feasible`;
* :mod:`.report`: :func:`fairness_report`;
* :mod:`.balance_stats`: :func:`cluster_balance`;
* :mod:`.costs`: :func:`fairness_cost`, :func:`hierarchical_fairness_cost`;
* :mod:`.audit`: :func:`fairness_probability`, :func:`observed_shares`;
* :mod:`.sampling`: :func:`random_colorings` (many colourings from raw random bits).

Every public function takes one colouring ``int[n]`` or a batch ``int[B, n]``,
evaluated in one vectorised call with the tree-only work done once, and a
hierarchy or a fair pipeline's result (anything with ``.hierarchy`` and
``.scope``, optionally ``.constraint``). Verdicts are exact integer
arithmetic; no verdict compares float ratios.
"""

from fairhc_jax.fairness.audit import (FairnessProbability, fairness_probability,
                                       observed_shares, wilson_interval)
from fairhc_jax.fairness.balance_stats import BalanceStats, cluster_balance
from fairhc_jax.fairness.checks import (FairnessCheck, check_fairness, check_feasible,
                                        is_fair, is_fair_kernel)
from fairhc_jax.fairness.constraints import (MAX_DENOMINATOR, Balance,
                                             BoundedRepresentation, Constraint, Plan,
                                             Proportional, Rational,
                                             RepresentationBounds, _bounds, _plan,
                                             as_fraction, constraint_num_colors,
                                             describe_constraint)
from fairhc_jax.fairness.costs import fairness_cost, hierarchical_fairness_cost
from fairhc_jax.fairness.counts import CHUNK, color_counts, color_counts_kernel
from fairhc_jax.fairness.report import fairness_report
from fairhc_jax.fairness.sampling import random_colorings
from fairhc_jax.fairness.scope import (ClusterScope, checked_nodes,
                                       checked_nodes_kernel)

__all__ = [
    "CHUNK", "MAX_DENOMINATOR", "Balance", "BalanceStats", "BoundedRepresentation",
    "ClusterScope", "Constraint", "FairnessCheck", "FairnessProbability", "Plan",
    "Proportional", "Rational", "RepresentationBounds", "as_fraction",
    "check_fairness", "check_feasible", "checked_nodes", "checked_nodes_kernel",
    "cluster_balance", "color_counts", "color_counts_kernel",
    "constraint_num_colors", "describe_constraint", "fairness_cost",
    "fairness_probability", "fairness_report", "hierarchical_fairness_cost",
    "is_fair", "is_fair_kernel", "observed_shares", "random_colorings", "wilson_interval",
]
