"""A user's CSV as points and groups, with errors that name the file, column and rows.

``read_table(path, features, group, probs)`` reads a comma-separated file
with a header row (Python's ``csv`` module: quoting and ``\\r\\n`` handled),
picks the feature columns (default: every column whose cells all parse as
numbers, except the group and the probability columns), and maps the group
labels to colours ``0..c-1`` in sorted order (numeric order when every label
is an integer, else string order), so the same file always gives the same
colours; the labels are kept for the report.
"""

from __future__ import annotations

import csv
import math
import pathlib
from typing import NamedTuple, Optional, Sequence

import numpy as np


class TableError(Exception):
  """A problem with the user's table (the CLI turns it into exit code 2)."""


class Table(NamedTuple):
  """Points and groups read from a CSV.

  Attributes:
    features: ``float64[n, d]``.
    colors: ``int32[n]`` in ``[0, c)``: the index of each row's label in ``labels``.
    labels: the ``c`` distinct group labels, sorted (``labels[g]`` is colour ``g``).
    feature_names: the ``d`` feature column names.
    group: the group column name.
    probs: ``float64[n, c]`` per-point group probabilities (``None`` without ``probs``).
    path: the file read.
  """
  features: np.ndarray
  colors: np.ndarray
  labels: list
  feature_names: list
  group: str
  probs: Optional[np.ndarray]
  path: str


def _rows_text(rows: Sequence[int], limit: int = 8) -> str:
  shown = ", ".join(str(r) for r in rows[:limit])
  more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
  return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def _parse_float(text: str) -> Optional[float]:
  try:
    return float(text)
  except ValueError:
    return None


def _is_missing(text: str) -> bool:
  return text.strip() == "" or text.strip().lower() in ("nan", "na", "n/a", "null", "none")


def read_table(path, features: Optional[Sequence[str]], group: str,
               probs: Optional[Sequence[str]] = None) -> Table:
  """Reads ``path`` (rows are numbered from 1, the first line after the header).

  Raises:
    TableError: naming the file and the column or rows, for a missing file or
      column, an empty table, a non-numeric feature, missing (empty or NaN)
      cells, a group with fewer than two labels, a group column that is also
      a feature, or probability columns that do not match the labels.
  """
  p = pathlib.Path(path)
  where = f"--csv {path}"
  if not p.exists():
    raise TableError(f"{where}: no such file")
  if p.is_dir():
    raise TableError(f"{where}: is a folder, not a CSV file")
  try:
    with open(p, newline="", encoding="utf-8-sig") as f:
      rows = list(csv.reader(f))
  except (UnicodeDecodeError, csv.Error) as e:
    raise TableError(f"{where}: not a readable CSV file ({e})") from e
  rows = [r for r in rows if any(cell.strip() for cell in r)]
  if not rows:
    raise TableError(f"{where}: the file is empty (expected a header row and data rows)")
  header = [h.strip() for h in rows[0]]
  body = rows[1:]
  if not body:
    raise TableError(f"{where}: has a header but no data rows")
  if len(set(header)) != len(header):
    dup = sorted({h for h in header if header.count(h) > 1})
    raise TableError(f"{where}: duplicate column names {dup}")
  bad_len = [i + 1 for i, r in enumerate(body) if len(r) != len(header)]
  if bad_len:
    raise TableError(f"{where}: {_rows_text(bad_len)} do not have {len(header)} cells "
                     f"like the header")
  index = {h: j for j, h in enumerate(header)}

  def col(name: str, flag: str) -> int:
    if name not in index:
      raise TableError(f"{where}: {flag} column {name!r} is not in the file "
                       f"(columns: {', '.join(header)})")
    return index[name]

  g = col(group, "--group")
  prob_cols = [col(c, "--probs") for c in (probs or [])]
  if features is not None:
    if group in features:
      raise TableError(f"{where}: --group column {group!r} is also in --features; "
                       "the group must not be a feature")
    if not features:
      raise TableError(f"{where}: --features must name at least one column")
    feat_cols = [col(c, "--features") for c in features]
  else:
    skip = {g, *prob_cols}
    feat_cols = [j for j in range(len(header)) if j not in skip and all(
        _is_missing(r[j]) or _parse_float(r[j]) is not None for r in body)
        and any(not _is_missing(r[j]) for r in body)]
    if not feat_cols:
      raise TableError(f"{where}: no numeric column besides the group {group!r}; "
                       "name the features with --features a,b,c")

  X = np.empty((len(body), len(feat_cols)), np.float64)
  for k, j in enumerate(feat_cols):
    missing, bad = [], []
    for i, r in enumerate(body):
      cell = r[j]
      if _is_missing(cell):
        missing.append(i + 1)
        continue
      v = _parse_float(cell)
      if v is None:
        bad.append((i + 1, cell))
      elif not math.isfinite(v):
        missing.append(i + 1)
      else:
        X[i, k] = v
    if bad:
      r0, cell = bad[0]
      raise TableError(f"{where}: feature column {header[j]!r} is not numeric "
                       f"({_rows_text([b[0] for b in bad])}, e.g. row {r0} holds {cell!r})")
    if missing:
      raise TableError(f"{where}: feature column {header[j]!r} has empty or NaN cells "
                       f"in {_rows_text(missing)}")

  raw = [r[g].strip() for r in body]
  missing = [i + 1 for i, v in enumerate(raw) if _is_missing(v)]
  if missing:
    raise TableError(f"{where}: --group column {group!r} has empty cells in "
                     f"{_rows_text(missing)}")
  try:
    ints = [int(v) for v in raw]
    labels = sorted(set(ints))
    keyed = ints
  except ValueError:
    labels = sorted(set(raw))
    keyed = raw
  if len(labels) < 2:
    raise TableError(f"{where}: --group column {group!r} has only one label "
                     f"({labels[0]!r}); fairness needs at least two groups")
  code = {lab: c for c, lab in enumerate(labels)}
  colors = np.array([code[v] for v in keyed], np.int32)

  P = None
  if probs:
    if len(prob_cols) != len(labels):
      raise TableError(f"{where}: --probs names {len(prob_cols)} columns but --group "
                       f"{group!r} has {len(labels)} labels {labels} (one column per "
                       "label, in this order)")
    P = np.empty((len(body), len(prob_cols)), np.float64)
    for k, j in enumerate(prob_cols):
      bad = []
      for i, r in enumerate(body):
        v = _parse_float(r[j])
        if v is None or not math.isfinite(v) or v < 0 or v > 1:
          bad.append(i + 1)
        else:
          P[i, k] = v
      if bad:
        raise TableError(f"{where}: --probs column {header[j]!r} must hold numbers in "
                         f"[0, 1]; not so in {_rows_text(bad)}")
    off = np.flatnonzero(np.abs(P.sum(1) - 1) > 1e-5) + 1
    if off.size:
      raise TableError(f"{where}: --probs columns must sum to 1 in every row; not so in "
                       f"{_rows_text(off.tolist())}")
  return Table(X, colors, list(labels), [header[j] for j in feat_cols], group, P, str(path))


def write_csv(path, features: np.ndarray, feature_names: Sequence[str], group_name: str,
              groups: Sequence) -> None:
  """Writes points and group labels as a CSV (header row; the group last)."""
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(list(feature_names) + [group_name])
    for row, lab in zip(np.asarray(features).tolist(), groups):
      w.writerow([repr(float(v)) for v in row] + [lab])
