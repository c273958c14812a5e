"""fairhc_jax: fair hierarchical clustering as jit-compiled, vmappable JAX kernels."""

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

__version__ = "0.1.0"
