"""Algorithms built on the library's kernels, one module per method family.

The modules never import each other.

* :mod:`fairhc_jax.algorithms.fairlet_hc`: Ahmadian et al. (NeurIPS 2020),
  fairlet decomposition + local search + (vertex-weighted) average linkage.
* :mod:`fairhc_jax.algorithms.reductions`: Knittel et al. (ICML 2023), fair
  and relatively balanced hierarchies from any input hierarchy.
"""
