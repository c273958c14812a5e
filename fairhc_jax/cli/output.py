"""What ``fairhc ... --out DIR`` writes: ``tree.npz``, ``report.json``, ``dendrogram.png``.

``tree.npz`` holds

* ``parent``: ``int32[2n - 1]``, the :class:`~fairhc_jax.Hierarchy` parent array;
* ``height``: ``float64[2n - 1]``, its merge heights (all NaN when the tree
  has none, e.g. the Knittel et al. reductions; ``has_height`` says which);
* ``linkage``: ``float64[n - 1, 4]``, SciPy's ``Z`` (:func:`fairhc_jax.to_linkage`,
  monotone heights), accepted by ``scipy.cluster.hierarchy.is_valid_linkage``;
* ``rows``: ``int64[n]``, the input rows the leaves are (leaf ``i`` is row
  ``rows[i]`` of the CSV, counted from 0 after the header, or of the data set);
* ``colors``: ``int32[n]``, the group of each leaf;
* ``fairlets`` (``fairhc fairlets`` only): ``int32[n]``, the fairlet of each
  leaf; the guarantee's scope is ``ClusterScope(blocks=fairlets)``.

``report.json`` is described in :func:`fairhc_jax.cli.commands.base_report`.
"""

from __future__ import annotations

import json
import pathlib
import time
from typing import Optional

import numpy as np


class OutError(Exception):
  """A problem with ``--out`` or a tree file (exit code 2)."""


def prepare_out(out: Optional[str]) -> Optional[pathlib.Path]:
  """Checks ``--out`` before any work: a folder (created) and not a file."""
  if out is None:
    return None
  p = pathlib.Path(out)
  if p.exists() and not p.is_dir():
    raise OutError(f"--out {out}: is a file, not a folder (give a folder to write "
                   "tree.npz and report.json into)")
  try:
    p.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise OutError(f"--out {out}: cannot create the folder ({e.strerror or e})") from e
  return p


def write_tree(path: pathlib.Path, h, rows: np.ndarray, colors: np.ndarray,
               extra: Optional[dict] = None) -> np.ndarray:
  """Writes ``tree.npz`` (plus the ``extra`` arrays); returns the linkage matrix ``Z``."""
  from fairhc_jax.interop import to_linkage
  parent = np.asarray(h.parent, np.int32)
  has_height = h.height is not None
  height = (np.asarray(h.height, np.float64) if has_height
            else np.full(parent.shape, np.nan, np.float64))
  Z = to_linkage(h)
  np.savez(path, parent=parent, height=height, has_height=np.bool_(has_height),
           linkage=np.asarray(Z, np.float64), rows=np.asarray(rows, np.int64),
           colors=np.asarray(colors, np.int32), **(extra or {}))
  return Z


def read_tree(path: str):
  """Reads a ``tree.npz``: ``(Hierarchy, rows or None)``; errors name the file."""
  import zipfile

  from fairhc_jax import hierarchy
  p = pathlib.Path(path)
  if not p.is_file():
    raise OutError(f"--tree {path}: no such file")
  try:
    with np.load(p, allow_pickle=False) as z:
      arrays = {k: z[k] for k in z.files}
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise OutError(f"--tree {path}: not a .npz file written by numpy ({e})") from e
  if "parent" not in arrays:
    raise OutError(f"--tree {path}: has no 'parent' array (found {sorted(arrays)}); "
                   "expected a tree.npz written by fairhc --out")
  parent = arrays["parent"]
  if parent.ndim != 1 or parent.shape[0] % 2 != 1 or not np.issubdtype(parent.dtype, np.integer):
    raise OutError(f"--tree {path}: 'parent' must be int[2n - 1], got shape "
                   f"{parent.shape} and dtype {parent.dtype}")
  height = arrays.get("height")
  if height is not None and (height.shape != parent.shape or np.isnan(height).all()):
    height = None
  try:
    h = hierarchy.from_parent(parent.astype(np.int32), height=height)
  except (ValueError, TypeError) as e:
    raise OutError(f"--tree {path}: not a valid tree ({e})") from e
  rows = arrays.get("rows")
  return h, rows


def write_report(path: pathlib.Path, report: dict) -> None:
  path.write_text(json.dumps(report, indent=2, default=_jsonable) + "\n")


def _jsonable(x):
  if isinstance(x, (np.integer,)):
    return int(x)
  if isinstance(x, (np.floating,)):
    return float(x)
  if isinstance(x, np.ndarray):
    return x.tolist()
  if isinstance(x, np.bool_):
    return bool(x)
  return str(x)


def write_dendrogram(path: pathlib.Path, h, colors, labels, title: str) -> None:
  import matplotlib
  matplotlib.use("Agg", force=False)
  import matplotlib.pyplot as plt

  from fairhc_jax import plot
  fig, ax = plt.subplots(figsize=(10, 4))
  plot.dendrogram(h, colors, num_colors=len(labels), ax=ax,
                  color_names=[str(v) for v in labels])
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


class Phases:
  """Times named phases and shows a progress bar over them (tqdm.auto).

  ``with phases("linkage"): ...`` records the phase's wall time (the body
  must block on its JAX results); the bar shows on a terminal or in a
  notebook (``show="auto"``), always (``True``) or never (``False``).
  """

  def __init__(self, names, show="auto", desc="fairhc"):
    import sys

    from fairhc_jax import progress
    self.seconds = {}
    self._bar = None
    visible = show is True or (show == "auto" and progress.is_interactive(sys.stderr))
    if visible and progress._tqdm is not None:
      self._bar = progress._tqdm(total=len(names), desc=desc, file=sys.stderr, leave=False,
                                 bar_format="{desc}: {n}/{total} phases |{bar}| {postfix} "
                                            "[{elapsed}]")
    elif visible:
      self._plain = sys.stderr
    self._visible = visible

  def __call__(self, name: str):
    return _Phase(self, name)

  def close(self):
    if self._bar is not None:
      self._bar.close()


class _Phase:
  def __init__(self, owner: Phases, name: str):
    self.owner, self.name = owner, name

  def __enter__(self):
    bar = self.owner._bar
    if bar is not None:
      bar.set_postfix_str(self.name, refresh=True)
    elif self.owner._visible:
      self.owner._plain.write(f"fairhc: {self.name}...\n")
    self.t0 = time.perf_counter()
    return self

  def __exit__(self, *exc):
    self.owner.seconds[self.name] = round(
        self.owner.seconds.get(self.name, 0.0) + time.perf_counter() - self.t0, 4)
    if self.owner._bar is not None and exc[0] is None:
      self.owner._bar.update(1)
    return False
