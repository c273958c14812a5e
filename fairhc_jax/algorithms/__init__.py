"""Algorithms built on the library's kernels, one module per method family.

The modules never import each other.

* :mod:`fairhc_jax.algorithms.fairlet_hc`: Ahmadian et al. (NeurIPS 2020),
  fairlet decomposition + local search + (vertex-weighted) average linkage.
* :mod:`fairhc_jax.algorithms.reductions`: Knittel et al. (ICML 2023), trees
  whose top clusters keep every group's share in a proven band, from any input
  hierarchy (and relative balance above the bottom clusters).
* Chhabra & Mohapatra (2020), one family in three modules that import only
  each other: :mod:`~fairhc_jax.algorithms.fair_hac` (FHAC, Algorithm 1),
  :mod:`~fairhc_jax.algorithms.fp_hac` (FP-HAC, the post-hoc repair,
  Algorithm 2) and :mod:`~fairhc_jax.algorithms.fhac_search` (the batched
  surrogate search over FHAC's schedule parameters).
"""
