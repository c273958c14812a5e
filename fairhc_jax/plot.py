"""Figures of fair hierarchies (matplotlib, the ``plot`` extra).

* :func:`dendrogram`: SciPy's dendrogram layout (``scipy.cluster.hierarchy.
  dendrogram`` on :func:`fairhc_jax.to_linkage`), each link coloured by the
  group composition of the cluster it forms, truncated to the top merges for
  large ``n``.
* :func:`balance_histogram`: the histogram of one group's share over the
  clusters of one or more trees, against the data's share (Knittel et al.
  2023, Figure 5).
* :func:`local_search_trace`: an objective against the number of swaps
  (Ahmadian et al. 2020, Figure 1).
* :func:`fairness_quality`: fairness against quality, one point per tree.

Each takes an optional ``ax`` (a new figure when omitted) and returns it.

**Link colours.** Group ``g`` has the colour ``palette[g]`` (RGB); a cluster
with group shares ``s`` (``s_g`` = its points of group ``g`` / its size) is
drawn in ``sum_g s_g * palette[g]``: a pure cluster has its group's colour, a
mixed one the proportional blend. :func:`link_color` is that rule.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

import numpy as np

# Group colours: matplotlib's tab10 with red second (two groups read as blue vs red).
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
           "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _plt():
  try:
    import matplotlib.pyplot as plt
  except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("fairhc_jax.plot needs matplotlib: pip install "
                      "'fairhc_jax[plot]'") from e
  return plt


def _axes(ax, figsize=(7, 3.5)):
  if ax is not None:
    return ax
  _, ax = _plt().subplots(figsize=figsize)
  return ax


def palette_rgb(num_colors: int, palette: Optional[Sequence] = None) -> np.ndarray:
  """``float64[c, 3]``: the RGB colour of each group."""
  from matplotlib.colors import to_rgb
  pal = list(palette) if palette is not None else list(PALETTE)
  if len(pal) < num_colors:
    raise ValueError(f"plot: palette must have at least {num_colors} colours, got {len(pal)}")
  return np.array([to_rgb(p) for p in pal[:num_colors]], np.float64)


def link_color(shares, rgb: np.ndarray) -> np.ndarray:
  """``float64[3]``: the colour of a cluster with group shares ``float[c]``."""
  return np.clip(np.asarray(shares, np.float64) @ rgb, 0.0, 1.0)


def _colors_and_c(colors, num_colors):
  colors = np.asarray(colors)
  if colors.ndim != 1:
    raise ValueError(f"plot: colors must be int[n] (one colouring), got shape {colors.shape}")
  c = int(num_colors) if num_colors is not None else int(colors.max()) + 1
  return colors.astype(np.int64), c


def _z_members_counts(Z: np.ndarray, colors: np.ndarray, c: int) -> np.ndarray:
  """``int64[n - 1, c]``: group counts of the cluster each row of ``Z`` forms."""
  n = Z.shape[0] + 1
  counts = np.zeros((2 * n - 1, c), np.int64)
  counts[np.arange(n), colors] = 1
  for t, (a, b) in enumerate(Z[:, :2].astype(np.int64)):
    counts[n + t] = counts[a] + counts[b]
  return counts[n:]


def dendrogram(h, colors=None, *, num_colors: Optional[int] = None, ax=None,
               max_leaves: Optional[int] = 48, color_names: Optional[Sequence[str]] = None,
               palette: Optional[Sequence] = None, linewidth: float = 1.2,
               legend: bool = True):
  """SciPy's dendrogram of ``h`` with each link coloured by its cluster's groups.

  Args:
    h: a :class:`~fairhc_jax.Hierarchy` over ``n`` leaves (or a result with
      ``.hierarchy``).
    colors: ``int[n]`` group of each point (``None``: every link black).
    num_colors: ``c`` (default ``max(colors) + 1``).
    ax: matplotlib axes (default: a new figure).
    max_leaves: show only the top ``max_leaves - 1`` merges when ``n`` is
      larger (SciPy's ``truncate_mode="lastp"``; each shown leaf is then a
      cluster, labelled with its size); ``None`` shows every point.
    color_names: legend names of the groups.
    palette: group colours (default :data:`PALETTE`).
    linewidth: link line width.
    legend: draw the group legend.

  Returns:
    The axes. ``ax.fairhc_dendrogram`` holds SciPy's layout dict (``icoord``,
    ``dcoord``, ``ivl``, ``leaves``) plus ``"node"`` (the ``Z`` cluster id,
    ``n + row``, of each link) and ``"rgb"`` (``float64[links, 3]``).
  """
  from matplotlib.collections import LineCollection
  from scipy.cluster import hierarchy as sch

  from fairhc_jax.interop import to_linkage

  h = getattr(h, "hierarchy", h)
  Z = to_linkage(h)
  n = Z.shape[0] + 1
  ax = _axes(ax)
  rgb_of_node = None
  if colors is not None:
    colors, c = _colors_and_c(colors, num_colors)
    if colors.shape[0] != n:
      raise ValueError(f"plot.dendrogram: colors must have one entry per leaf ({n}), "
                       f"got {colors.shape[0]}")
    rgb = palette_rgb(c, palette)
    counts = _z_members_counts(Z, colors, c)
    rgb_of_node = [link_color(row / row.sum(), rgb) for row in counts]
  nodes = []

  def color_func(k):
    nodes.append(int(k))
    return "k"

  truncate = max_leaves is not None and n > max_leaves
  kwargs = dict(truncate_mode="lastp", p=int(max_leaves)) if truncate else {}
  R = sch.dendrogram(Z, no_plot=True, link_color_func=color_func,
                     show_leaf_counts=True, **kwargs)
  # SciPy calls link_color_func once per link, in the order of icoord/dcoord.
  if len(nodes) != len(R["icoord"]):  # pragma: no cover - SciPy contract
    raise RuntimeError("plot.dendrogram: unexpected SciPy dendrogram output")
  lines = [np.column_stack([xs, ys]) for xs, ys in zip(R["icoord"], R["dcoord"])]
  link_rgb = (np.array([rgb_of_node[k - n] for k in nodes]) if rgb_of_node is not None
              else np.zeros((len(nodes), 3)))
  ax.add_collection(LineCollection(lines, colors=link_rgb, linewidths=linewidth))
  num_shown = len(R["ivl"])
  ax.set_xlim(0, 10 * num_shown)
  top = max((max(d) for d in R["dcoord"]), default=1.0)
  ax.set_ylim(0, top * 1.05 if top > 0 else 1.0)
  ax.set_xticks(5 + 10 * np.arange(num_shown))
  ax.set_xticklabels(R["ivl"], rotation=90, fontsize=7 if num_shown > 20 else 9)
  ax.set_ylabel("height")
  title = f"dendrogram (n = {n}" + (f", top {num_shown - 1} merges)" if truncate else ")")
  ax.set_title(title)
  if legend and rgb_of_node is not None:
    from matplotlib.patches import Patch
    names = list(color_names) if color_names is not None else [f"group {g}" for g in range(c)]
    ax.legend(handles=[Patch(color=rgb[g], label=str(names[g])) for g in range(c)],
              fontsize=8, loc="upper right", title="pure cluster of", title_fontsize=8)
  R = dict(R)
  R["node"] = nodes
  R["rgb"] = link_rgb
  ax.fairhc_dendrogram = R
  return ax


TreeOrTrees = Union[object, Mapping[str, object]]


def balance_histogram(trees: TreeOrTrees, colors, *, group: int = 1,
                      num_colors: Optional[int] = None, scope=None, bins: int = 20,
                      ax=None, color_names: Optional[Sequence[str]] = None):
  """Histogram of group ``group``'s share over the clusters of each tree.

  Knittel et al.'s Figure 5: how far the clusters' shares spread around the
  data's share (a vertical line). Counted over the internal nodes in
  ``scope`` (see :func:`fairhc_jax.cluster_balance`; a result object uses
  its own scope unless one is given).

  Args:
    trees: a hierarchy, a result, or ``{label: hierarchy or result}``.
    colors: ``int[n]``.
    group: the group whose share is plotted.
    num_colors: ``c``.
    scope: ``None``, an int ``min_size`` or a ``ClusterScope``.
    bins: number of bins on ``[0, 1]``.
    ax: matplotlib axes.
    color_names: names of the groups (axis label).

  Returns:
    The axes; ``ax.fairhc_shares`` maps each label to the ``float64[k]``
    shares plotted.
  """
  from fairhc_jax.fairness import cluster_balance
  colors, c = _colors_and_c(colors, num_colors)
  if not 0 <= group < c:
    raise ValueError(f"plot.balance_histogram: group must be in [0, {c}), got {group}")
  if not isinstance(trees, Mapping):
    trees = {"tree": trees}
  ax = _axes(ax)
  edges = np.linspace(0, 1, bins + 1)
  plotted = {}
  for label, h in trees.items():
    st = cluster_balance(h, colors, c, scope=scope)
    shares = np.asarray(st.shares, np.float64)[np.asarray(st.is_internal), group]
    plotted[label] = shares
    ax.hist(shares, bins=edges, histtype="step" if len(trees) > 1 else "bar",
            alpha=1.0 if len(trees) > 1 else 0.8, linewidth=1.5, label=f"{label} ({shares.size})")
  phi = float(np.mean(colors == group))
  ax.axvline(phi, color="k", linestyle="--", linewidth=1, label=f"data share {phi:.3f}")
  name = color_names[group] if color_names is not None else f"group {group}"
  ax.set(xlabel=f"share of {name} in a cluster", ylabel="clusters", xlim=(0, 1))
  ax.legend(fontsize=8)
  ax.fairhc_shares = plotted
  return ax


def local_search_trace(runs: Mapping[str, tuple], *, ax=None, ylabel: str = "ratio_fairlets",
                       logy: bool = True):
  """An objective against swaps, one line per run (Ahmadian et al. Figure 1).

  Args:
    runs: ``{label: (swaps int[T], values float[T])}``.
    ax: matplotlib axes.
    ylabel: the objective's name.
    logy: log-scale y axis.

  Returns:
    The axes.
  """
  ax = _axes(ax, figsize=(5, 3.5))
  for label, (swaps, values) in runs.items():
    swaps, values = np.asarray(swaps), np.asarray(values)
    if swaps.shape != values.shape:
      raise ValueError(f"plot.local_search_trace: run {label!r} must have as many swaps "
                       f"as values, got {swaps.shape} and {values.shape}")
    ax.plot(swaps, values, label=label, drawstyle="steps-post")
  ax.set(xlabel="swaps", ylabel=ylabel)
  if logy:
    ax.set_yscale("log")
  ax.legend(fontsize=8)
  return ax


def fairness_quality(points: Mapping[str, tuple], *, ax=None,
                     xlabel: str = "fairness cost (lower is fairer)",
                     ylabel: str = "quality (higher is better)"):
  """Fairness against quality, one labelled point per tree.

  Args:
    points: ``{label: (fairness, quality)}`` (e.g. FC at ``k`` and the
      Cohen-Addad value relative to average linkage), or ``{label:
      (float[B], float[B])}`` for a cloud of trees (a parameter sweep).
    ax: matplotlib axes.
    xlabel, ylabel: axis labels.

  Returns:
    The axes (one ``PathCollection`` per label, in order).
  """
  ax = _axes(ax, figsize=(5, 3.5))
  for label, (fx, qy) in points.items():
    fx, qy = np.atleast_1d(np.asarray(fx, np.float64)), np.atleast_1d(np.asarray(qy, np.float64))
    if fx.shape != qy.shape:
      raise ValueError(f"plot.fairness_quality: point {label!r} must have matching "
                       f"fairness and quality shapes, got {fx.shape} and {qy.shape}")
    ax.scatter(fx, qy, label=label, s=30 if fx.size == 1 else 10)
  ax.set(xlabel=xlabel, ylabel=ylabel)
  ax.legend(fontsize=8)
  return ax
