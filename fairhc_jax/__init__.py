"""fairhc_jax: fair hierarchical clustering as jit-compiled, vmappable JAX kernels.

The package top level re-exports the public API; each name lives in the
module that holds one idea (see README.md for the module map).
"""

from fairhc_jax import datasets
# Soft (differentiable) hierarchies trained with optax (issue 11).
from fairhc_jax import soft
from fairhc_jax.algorithms.fairlet_hc import (
    FairHCResult,
    FairHCStats,
    fair_hierarchical_clustering,
    fairlet_tree,
)
from fairhc_jax.algorithms.fair_hac import FHACOutput, FHACParams, fhac, fhac_costs
from fairhc_jax.algorithms.fhac_search import FHACSearchResult, tune_fhac
from fairhc_jax.algorithms.fp_hac import fp_hac
from fairhc_jax.algorithms.reductions import (
    ReductionResult,
    fair_hc,
    rebalance_tree,
    refine_rebalance_tree,
    stochastically_fair_hc,
)
from fairhc_jax.balance import balance_profile, is_relatively_balanced, unbalanced_nodes
from fairhc_jax.distances import pairwise_distances, similarity
from fairhc_jax.fairlets import (
    Decomposition,
    FastSearchState,
    LocalSearch,
    RandomSearchState,
    balance_decomposition,
    capped_decomposition,
    fairlet_decomposition,
    fairlet_objective,
    local_search,
    ratio_fairlets,
    run_local_search,
)
from fairhc_jax.fairness import (
    Balance,
    BalanceStats,
    BoundedRepresentation,
    ClusterScope,
    FairnessCheck,
    FairnessProbability,
    Proportional,
    RepresentationBounds,
    check_fairness,
    check_feasible,
    cluster_balance,
    color_counts,
    fairness_cost,
    fairness_probability,
    fairness_report,
    hierarchical_fairness_cost,
    is_fair,
    observed_shares,
)
from fairhc_jax.hierarchy import (
    NO_PARENT,
    UNUSED,
    Children,
    Hierarchy,
    LeafRanges,
    children,
    children_table,
    depth,
    from_parent,
    is_valid_hierarchy,
    leaf_counts,
    leaf_ranges,
    num_children,
    postorder_compact,
    root,
    validate,
)
from fairhc_jax.flat import Cut, cut
from fairhc_jax.interop import from_linkage, leaves_list, to_linkage
from fairhc_jax.agglomerative import linkage, linkage_from_points
# Linkage in rounds of reciprocal nearest neighbours (issue 12).
from fairhc_jax.agglomerative import resolve_algorithm as resolve_linkage_algorithm
from fairhc_jax.rnn_linkage import LinkageStats
from fairhc_jax.operators import (
    abstract_bottom_levels,
    contract_nodes,
    level_abstraction,
    operation_cost,
    separated_pairs,
    subtree_move,
    topology_labels,
    tree_fold,
    tree_rebalance,
)
from fairhc_jax.objectives import (
    cohen_addad_value,
    dasgupta_cost,
    moseley_wang_revenue,
    revenue_upper_bound,
    value_upper_bound,
)

# Scale: one-pass validation, all objectives in one pass, the memory guard.
from fairhc_jax import memory
from fairhc_jax.distances import check_distances
from fairhc_jax.objectives import TreeObjectives, tree_objectives

__version__ = "0.1.0"

__all__ = [
    "NO_PARENT", "UNUSED", "Balance", "BalanceStats", "BoundedRepresentation",
    "Children", "ClusterScope", "Cut", "FairnessCheck", "FairnessProbability", "Hierarchy",
    "LeafRanges", "Proportional", "RepresentationBounds", "check_fairness",
    "check_feasible", "children", "children_table", "cluster_balance",
    "cohen_addad_value", "color_counts", "cut", "dasgupta_cost", "datasets", "depth",
    "fairness_cost", "fairness_probability", "fairness_report", "from_linkage",
    "from_parent", "hierarchical_fairness_cost", "is_fair", "observed_shares",
    "is_valid_hierarchy", "leaf_counts", "leaf_ranges", "leaves_list",
    "linkage", "linkage_from_points", "moseley_wang_revenue", "num_children",
    "pairwise_distances", "postorder_compact", "revenue_upper_bound", "root",
    "similarity", "to_linkage", "validate", "value_upper_bound",
    # fairlets and the Ahmadian et al. fair tree
    "Decomposition", "FairHCResult", "FairHCStats", "FastSearchState",
    "LocalSearch", "RandomSearchState", "balance_decomposition",
    "capped_decomposition", "fair_hierarchical_clustering",
    "fairlet_decomposition", "fairlet_objective", "fairlet_tree",
    "local_search", "ratio_fairlets", "run_local_search",
    # tree operators and the Knittel et al. reductions
    "ReductionResult", "abstract_bottom_levels", "balance_profile",
    "contract_nodes", "fair_hc", "is_relatively_balanced", "level_abstraction",
    "operation_cost", "rebalance_tree", "refine_rebalance_tree",
    "separated_pairs", "stochastically_fair_hc", "subtree_move",
    "topology_labels", "tree_fold", "tree_rebalance", "unbalanced_nodes",
    # Chhabra & Mohapatra: fair agglomerative clustering and its repair
    "FHACOutput", "FHACParams", "FHACSearchResult", "fhac", "fhac_costs",
    "fp_hac", "tune_fhac",
    # soft hierarchies (a subpackage: fairhc_jax.soft.fit, ...)
    "soft",
    # linkage in rounds of reciprocal nearest neighbours
    "LinkageStats", "resolve_linkage_algorithm",
    # scale: validate once, all objectives in one pass, the memory guard
    "TreeObjectives", "check_distances", "memory", "tree_objectives",
]
