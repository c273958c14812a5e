"""Algorithms built on the library's kernels, one module per method family.

* :mod:`fairhc_jax.algorithms.reductions`: Knittel et al. (ICML 2023), fair
  and relatively balanced hierarchies from any input hierarchy.
"""
