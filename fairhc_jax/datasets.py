"""Data sets: the papers' UCI tables, proportional subsampling, synthetic blobs.

Three UCI tables are used by the fair hierarchical clustering papers. Each
loader returns a :class:`Dataset` (NumPy arrays) with the papers'
preprocessing: the numeric fields as features, no normalisation, one
protected attribute as an integer colour.

==================  ==============================  =========================
loader / colour     colour 0 / colour 1 (/ ...)     counts (UCI files)
==================  ==============================  =========================
census, gender      female / male                   9,782 / 20,380
census, race        non-white / white               4,229 / 25,933
bank, marital       not married / married           17,997 / 27,214 (full)
                    (single or divorced)            1,724 / 2,797 (10% file)
bank, age           age < 40 / age >= 40            23,362 / 21,849 (full)
                                                    2,290 / 2,231 (10% file)
credit_card, sex    male / female                   11,888 / 18,112
credit_card,        graduate school / university /  10,585 / 14,030 /
education           high school / others            4,917 / 468
credit_card,        married / single / others       13,659 / 15,964 / 377
marriage
==================  ==============================  =========================

Colour 0 is the minority everywhere except Bank by age: there ``age < 40``
(colour 0, the papers' "blue" class) holds 51.7% of the full table, not the
2:3 the papers report (Bank by marital status is 1:1.51, not the papers'
1:2). :func:`proportional_subsample` decides the minority from the counts,
never from the colour index. The loaders keep every row of the file they
read (no deduplication).

Where the files come from, in this order:

1. ``path=``: one explicit file (any name).
2. ``data_dir=``: a folder holding the file under its usual name
   (``adult.data``, ``bank-full.csv`` / ``bank.csv``, ``UCI_Credit_Card.csv``).
3. The environment variable ``FAIRHC_DATA_DIR``: the same, for all loaders.
4. A user cache, ``cache_dir=`` or ``$FAIRHC_CACHE_DIR`` or
   ``$XDG_CACHE_HOME/fairhc_jax`` or ``~/.cache/fairhc_jax``. A missing file
   is downloaded there from the UCI repository on first use (base URL
   :data:`UCI_BASE_URL`, overridable with ``base_url=`` or
   ``$FAIRHC_UCI_BASE_URL``, e.g. a ``file://`` mirror) and verified against
   its SHA-256 checksum; a mismatch is an error and the bad file is removed.
   Cached files are re-verified on every use.

A folder given by 1-3 is trusted as it is (no checksum) and is not searched
past: a missing file there is an error that says where the loader looked.

What the downloader fetches:

* ``adult.data``: ``adult/adult.data``, stored as is (newlines normalised to
  LF, a no-op for the UCI file).
* ``bank-full.csv`` and ``bank.csv``: extracted from ``00222/bank.zip`` (a
  zip nested one level deeper, as in UCI's newer ``bank+marketing.zip``, is
  searched too), in UCI's ``;``-separated form with quoted strings, stored
  as is. The plain comma form (as some mirrors ship it) parses as well when
  given by path or folder. The checksum of ``bank-full.csv`` is the one of
  UCI's own file (45,211 rows).
* ``UCI_Credit_Card.csv``: not downloaded. UCI ships this table only as an
  ``.xls`` workbook and fairhc_jax has no ``.xls`` reader. Export it as CSV
  with the 25 columns ``ID, X1..X23, Y`` in UCI's order (one or two header
  rows, any header names: Kaggle's ``ID, LIMIT_BAL, SEX, ...`` works too) and
  give it with ``path=``, ``data_dir=``, ``FAIRHC_DATA_DIR`` or by placing it
  in the cache folder.

Cite the tables (CC BY 4.0) as: Kohavi 1996 (Census Income / Adult); Moro,
Cortez and Rita 2014 (Bank Marketing); Yeh and Lien 2009 (Default of Credit
Card Clients).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import math
import os
import pathlib
import tempfile
import urllib.error
import urllib.request
import zipfile
from fractions import Fraction
from typing import Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from fairhc_jax import _checks

PathLike = Union[str, os.PathLike]

UCI_BASE_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/"
"""Where missing files are downloaded from (the UCI repository)."""
DATA_DIR_ENV = "FAIRHC_DATA_DIR"
"""Environment variable: a folder holding the UCI files."""
CACHE_DIR_ENV = "FAIRHC_CACHE_DIR"
"""Environment variable: the download cache folder."""
BASE_URL_ENV = "FAIRHC_UCI_BASE_URL"
"""Environment variable: replaces :data:`UCI_BASE_URL`."""

COLOR_OPTIONS = {
    "census": ("gender", "race"),
    "bank": ("marital", "age"),
    "credit_card": ("sex", "education", "marriage"),
}
"""The colour options of each loader (the first is the default)."""


class Dataset(NamedTuple):
  """Points with one protected attribute as colours.

  Attributes:
    features: ``float[n, d]`` NumPy array. The UCI loaders give float64 (the
      raw values, exact); :func:`synthetic_blobs` gives the JAX default float
      (float32, float64 under x64).
    colors: ``int32[n]`` NumPy array with values in ``[0, num_colors)``.
    num_colors: the number of colour classes.
    color_names: ``num_colors`` names, ``color_names[c]`` describes colour c.
    feature_names: ``d`` names, one per feature column.
    name: a short name, e.g. ``"census-gender"``.
  """

  features: np.ndarray
  colors: np.ndarray
  num_colors: int
  color_names: tuple
  feature_names: tuple
  name: str

  @property
  def num_points(self) -> int:
    """``n``, the number of points."""
    return int(self.features.shape[0])

  def color_counts(self) -> np.ndarray:
    """``int64[num_colors]``, the number of points of each colour."""
    return np.bincount(self.colors, minlength=self.num_colors)

  def take(self, indices) -> "Dataset":
    """The points at ``indices`` (``int[k]``), colours and names kept."""
    idx = np.asarray(indices)
    return self._replace(features=self.features[idx], colors=self.colors[idx])


# ---------------------------------------------------------------------------
# Where files come from.


class _Source(NamedTuple):
  filename: str
  url: Optional[str]          # relative to the base URL; None: never downloaded
  member: Optional[str]       # the file inside the zip at ``url``
  sha256: Optional[str]       # of the bytes as stored in the cache
  to_stored: Optional[Callable[[bytes], bytes]]  # download bytes -> stored bytes
  page: str                   # the UCI page, for messages


def _lf_newlines(data: bytes) -> bytes:
  return data.replace(b"\r\n", b"\n")


_BANK_PAGE = "https://archive.ics.uci.edu/dataset/222/bank+marketing"
_SOURCES = {
    "adult.data": _Source(
        "adult.data", "adult/adult.data", None,
        "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
        _lf_newlines, "https://archive.ics.uci.edu/dataset/2/adult"),
    "bank-full.csv": _Source(
        "bank-full.csv", "00222/bank.zip", "bank-full.csv",
        "d1513ec63b385506f7cfce9f2c5caa9fe99e7ba4e8c3fa264b3aaf0f849ed32d",
        _lf_newlines, _BANK_PAGE),
    "bank.csv": _Source(
        "bank.csv", "00222/bank.zip", "bank.csv",
        "dc8d576e9bda0f41ee891251bd84bab9a39ce576cba715aac08adc2374a01fde",
        _lf_newlines, _BANK_PAGE),
    "UCI_Credit_Card.csv": _Source(
        "UCI_Credit_Card.csv", None, None, None, None,
        "https://archive.ics.uci.edu/dataset/350/default+of+credit+card+clients"),
}


def default_cache_dir() -> pathlib.Path:
  """The download cache: ``$FAIRHC_CACHE_DIR``, else ``$XDG_CACHE_HOME/fairhc_jax``, else ``~/.cache/fairhc_jax``."""
  env = os.environ.get(CACHE_DIR_ENV)
  if env:
    return pathlib.Path(env).expanduser()
  xdg = os.environ.get("XDG_CACHE_HOME")
  base = pathlib.Path(xdg).expanduser() if xdg else pathlib.Path.home() / ".cache"
  return base / "fairhc_jax"


def _sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def _how_to_fix(src: _Source, cache: Optional[pathlib.Path]) -> str:
  where = f"pass data_dir=<folder holding {src.filename}> or path=<file>, or set {DATA_DIR_ENV}"
  if src.url is None:
    return (f"{src.filename} is never downloaded: UCI ships it as an .xls workbook "
            f"({src.page}) and fairhc_jax reads no .xls; export it as CSV with the "
            f"columns ID, X1..X23, Y, then {where}"
            + (f", or put it in the cache folder {cache}" if cache else ""))
  return (f"{where}, or allow the download (download=True) from the UCI repository "
          f"({src.page}) into the cache folder")


def _extract_member(fn: str, archive: bytes, member: str, url: str) -> bytes:
  """The bytes of ``member`` inside a zip, searching nested zips one level deep."""
  try:
    zf = zipfile.ZipFile(io.BytesIO(archive))
  except zipfile.BadZipFile:
    _checks.fail(fn, f"the download from {url}", "be a zip archive", "something else")
  with zf:
    names = [nm for nm in zf.namelist() if not nm.startswith("__MACOSX")]
    for nm in names:
      if nm.rsplit("/", 1)[-1] == member:
        return zf.read(nm)
    for nm in names:
      if nm.lower().endswith(".zip"):
        try:
          return _extract_member(fn, zf.read(nm), member, url)
        except ValueError:
          continue
  _checks.fail(fn, f"the archive {url}", f"contain {member!r}",
               f"members {', '.join(names[:8])}")


def _download(fn: str, src: _Source, dest: pathlib.Path, base_url: str) -> None:
  """Downloads ``src`` into ``dest`` after checking its SHA-256; nothing is left on failure."""
  url = base_url.rstrip("/") + "/" + src.url
  try:
    with urllib.request.urlopen(url, timeout=120) as response:
      payload = response.read()
  except (urllib.error.URLError, OSError, ValueError) as e:
    raise OSError(
        f"{fn}: could not download {src.filename} from {url} ({e}); "
        f"pass data_dir=<folder holding {src.filename}> or set {DATA_DIR_ENV} "
        f"to use a local copy") from e
  if src.member is not None:
    payload = _extract_member(fn, payload, src.member, url)
  try:
    stored = src.to_stored(payload)
  except UnicodeDecodeError:
    _checks.fail(fn, f"the download {url}", "be UTF-8 text", "undecodable bytes")
  digest = _sha256(stored)
  if digest != src.sha256:
    raise ValueError(
        f"{fn}: the downloaded {src.filename} must have SHA-256 {src.sha256}, got "
        f"{digest} (from {url}); the file was not kept (checksum mismatch: a corrupt "
        f"or changed download). Retry, or {_how_to_fix(src, None)}")
  dest.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{src.filename}.", suffix=".part")
  try:
    with os.fdopen(fd, "wb") as out:
      out.write(stored)
    os.replace(tmp, dest)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def data_path(
    filename: str,
    *,
    path: Optional[PathLike] = None,
    data_dir: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
    base_url: Optional[str] = None,
    download: bool = True,
    caller: str = "data_path",
) -> pathlib.Path:
  """The local path of one UCI file, downloading it into the cache if needed.

  Args:
    filename: one of ``adult.data``, ``bank-full.csv``, ``bank.csv``,
      ``UCI_Credit_Card.csv``.
    path: an explicit file; returned as it is when it exists.
    data_dir: a folder holding ``filename``; else ``$FAIRHC_DATA_DIR``.
    cache_dir: the cache folder; default :func:`default_cache_dir`.
    base_url: replaces :data:`UCI_BASE_URL` (else ``$FAIRHC_UCI_BASE_URL``).
    download: whether a file missing from the cache may be downloaded.
    caller: the public function named in error messages.

  Returns:
    The path of a readable file. Files from the cache passed the checksum.

  Raises:
    FileNotFoundError: the file is not where the arguments say, or not in the
      cache and it may not (or cannot) be downloaded.
    ValueError: a checksum mismatch (the bad file is removed).
    OSError: the download failed.
  """
  fn = caller
  _checks.check_choice(fn, "filename", filename, tuple(_SOURCES))
  src = _SOURCES[filename]
  if path is not None:
    p = pathlib.Path(path).expanduser()
    if not p.is_file():
      raise FileNotFoundError(f"{fn}: path must name an existing file, got {str(p)!r}")
    return p
  folder, origin = None, None
  if data_dir is not None:
    folder, origin = pathlib.Path(data_dir).expanduser(), "data_dir"
  elif os.environ.get(DATA_DIR_ENV):
    folder, origin = pathlib.Path(os.environ[DATA_DIR_ENV]).expanduser(), DATA_DIR_ENV
  if folder is not None:
    p = folder / filename
    if p.is_file():
      return p
    raise FileNotFoundError(
        f"{fn}: {origin} must be a folder holding {filename!r}, got {str(folder)!r} "
        f"(no file {str(p)!r}); {_how_to_fix(src, None)}"
        + (f", or unset {DATA_DIR_ENV} to use the download cache" if origin == DATA_DIR_ENV else ""))
  cache = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
  p = cache / filename
  if p.is_file():
    if src.sha256 is not None:
      digest = _sha256(p.read_bytes())
      if digest != src.sha256:
        p.unlink()
        raise ValueError(
            f"{fn}: the cached {filename} must have SHA-256 {src.sha256}, got {digest} "
            f"(checksum mismatch); the bad file {str(p)!r} was removed, call again to "
            f"download a fresh copy")
    return p
  if src.url is None or not download:
    raise FileNotFoundError(
        f"{fn}: {filename} was not found: no data_dir, no {DATA_DIR_ENV}, and the "
        f"cache has no {str(p)!r}"
        + ("" if src.url is None else " (download=False)")
        + f"; {_how_to_fix(src, cache)}")
  base = base_url or os.environ.get(BASE_URL_ENV) or UCI_BASE_URL
  _download(fn, src, p, base)
  return p


# ---------------------------------------------------------------------------
# Parsing.


def _read_rows(fn: str, p: pathlib.Path, delimiter: Optional[str] = None):
  """Non-empty CSV rows with their line numbers; sniffs ``;`` vs ``,`` if no delimiter."""
  try:
    text = p.read_bytes().decode("utf-8")
  except UnicodeDecodeError as e:
    _checks.fail(fn, f"file {str(p)!r}", "be UTF-8 text", f"undecodable bytes at offset {e.start}")
  if delimiter is None:
    first = text.lstrip().split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
  reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
  rows = []
  for row in reader:
    if any(v.strip() for v in row):
      rows.append((reader.line_num, [v.strip() for v in row]))
  if not rows:
    _checks.fail(fn, f"file {str(p)!r}", "hold data rows", "an empty file")
  return rows


def _numbers(fn: str, p: pathlib.Path, line: int, row, columns, names):
  try:
    values = [float(row[c]) for c in columns]
  except ValueError:
    bad = next(n for c, n in zip(columns, names) if not _is_number(row[c]))
    value = row[columns[names.index(bad)]]
    _checks.fail(fn, f"file {str(p)!r}", f"hold a number in field {bad!r}",
                 f"{value!r} on line {line}")
  if not all(math.isfinite(v) for v in values):
    _checks.fail(fn, f"file {str(p)!r}", "hold finite numbers", f"{row!r} on line {line}")
  return values


def _is_number(s: str) -> bool:
  try:
    float(s)
    return True
  except ValueError:
    return False


def _colour(fn, p, line, field, value, mapping):
  if value not in mapping:
    _checks.fail(fn, f"file {str(p)!r}", f"hold one of {', '.join(sorted(mapping))} in field {field!r}",
                 f"{value!r} on line {line}")
  return mapping[value]


def _dataset(features, colors, color_names, feature_names, name) -> Dataset:
  return Dataset(
      features=np.asarray(features, dtype=np.float64).reshape(-1, len(feature_names)),
      colors=np.asarray(colors, dtype=np.int32),
      num_colors=len(color_names),
      color_names=tuple(color_names),
      feature_names=tuple(feature_names),
      name=name)


_ADULT_FIELDS = ("age", "workclass", "fnlwgt", "education", "education-num",
                 "marital-status", "occupation", "relationship", "race", "sex",
                 "capital-gain", "capital-loss", "hours-per-week",
                 "native-country", "income")
_ADULT_FEATURES = ("age", "fnlwgt", "education-num", "capital-gain",
                   "capital-loss", "hours-per-week")
_RACES = ("White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other")


def load_census(
    color: str = "gender",
    data_dir: Optional[PathLike] = None,
    *,
    path: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
    base_url: Optional[str] = None,
    download: bool = True,
) -> Dataset:
  """Census Income (Adult, ``adult.data``) as the papers use it.

  Rows with a ``?`` in any field are dropped (32,561 -> 30,162 rows).
  Features (6, float64, raw): age, fnlwgt, education-num, capital-gain,
  capital-loss, hours-per-week.

  Args:
    color: ``"gender"`` (0 = female, 1 = male; 1:2.08) or ``"race"``
      (0 = non-white, 1 = white; 1:6.13).
    data_dir: a folder holding ``adult.data`` (see the module docstring for
      the search order and the download).
    path: an explicit file in the ``adult.data`` format.
    cache_dir: the download cache folder.
    base_url: replaces the UCI base URL (e.g. a ``file://`` mirror).
    download: whether a missing file may be downloaded.

  Returns:
    A :class:`Dataset` named ``"census-<color>"``.
  """
  fn = "load_census"
  _checks.check_choice(fn, "color", color, COLOR_OPTIONS["census"])
  p = data_path("adult.data", path=path, data_dir=data_dir, cache_dir=cache_dir,
                base_url=base_url, download=download, caller=fn)
  cols = [_ADULT_FIELDS.index(f) for f in _ADULT_FEATURES]
  sex_map = {"Female": 0, "Male": 1}
  race_map = {r: int(r == "White") for r in _RACES}
  feats, colors = [], []
  for line, row in _read_rows(fn, p, delimiter=","):
    if len(row) != len(_ADULT_FIELDS):
      _checks.fail(fn, f"file {str(p)!r}", f"have {len(_ADULT_FIELDS)} comma-separated fields per row (the adult.data format)",
                   f"{len(row)} fields on line {line}")
    if "?" in row:
      continue
    feats.append(_numbers(fn, p, line, row, cols, _ADULT_FEATURES))
    if color == "gender":
      colors.append(_colour(fn, p, line, "sex", row[9], sex_map))
    else:
      colors.append(_colour(fn, p, line, "race", row[8], race_map))
  names = ("female", "male") if color == "gender" else ("non-white", "white")
  return _dataset(feats, colors, names, _ADULT_FEATURES, f"census-{color}")


_BANK_FEATURES = ("age", "balance", "day", "duration", "campaign", "pdays", "previous")


def load_bank(
    color: str = "marital",
    data_dir: Optional[PathLike] = None,
    full: bool = True,
    *,
    path: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
    base_url: Optional[str] = None,
    download: bool = True,
) -> Dataset:
  """Bank Marketing (``bank-full.csv``, or the 10% sample ``bank.csv``).

  Both UCI's ``;``-separated, quoted form and the plain comma form parse
  (the delimiter is read off the header line; columns are found by their
  header names). Features (7, float64, raw): age, balance, day, duration,
  campaign, pdays, previous. All rows are kept (45,211 or 4,521).

  Args:
    color: ``"marital"`` (0 = not married, i.e. single or divorced, the
      minority; 1 = married) or ``"age"`` (0 = age < 40, 1 = age >= 40; age
      stays a feature). In ``bank-full.csv`` age < 40 is the slight majority
      (23,362 vs 21,849).
    data_dir: a folder holding the file (see the module docstring).
    full: ``bank-full.csv`` (45,211 rows) if True, else ``bank.csv`` (4,521).
    path: an explicit file in either form.
    cache_dir: the download cache folder.
    base_url: replaces the UCI base URL (e.g. a ``file://`` mirror).
    download: whether a missing file may be downloaded.

  Returns:
    A :class:`Dataset` named ``"bank-<color>"`` (``"bank10-<color>"`` for the
    10% file).
  """
  fn = "load_bank"
  _checks.check_choice(fn, "color", color, COLOR_OPTIONS["bank"])
  if not isinstance(full, (bool, np.bool_)):
    _checks.fail(fn, "full", "be a bool", repr(full), TypeError)
  filename = "bank-full.csv" if full else "bank.csv"
  p = data_path(filename, path=path, data_dir=data_dir, cache_dir=cache_dir,
                base_url=base_url, download=download, caller=fn)
  rows = _read_rows(fn, p)
  _, header = rows[0]
  needed = _BANK_FEATURES + ("marital",)
  missing = [f for f in needed if f not in header]
  if missing:
    _checks.fail(fn, f"file {str(p)!r}", f"start with a header naming {', '.join(needed)} (the bank-marketing format)",
                 f"a header without {', '.join(missing)}: {header[:6]!r}...")
  cols = [header.index(f) for f in _BANK_FEATURES]
  marital = header.index("marital")
  marital_map = {"married": 1, "single": 0, "divorced": 0}
  feats, colors = [], []
  for line, row in rows[1:]:
    if len(row) != len(header):
      _checks.fail(fn, f"file {str(p)!r}", f"have {len(header)} fields per row like its header",
                   f"{len(row)} fields on line {line}")
    values = _numbers(fn, p, line, row, cols, _BANK_FEATURES)
    feats.append(values)
    if color == "marital":
      colors.append(_colour(fn, p, line, "marital", row[marital], marital_map))
    else:
      colors.append(int(values[0] >= 40))
  names = ("not married", "married") if color == "marital" else ("age < 40", "age >= 40")
  prefix = "bank" if full else "bank10"
  return _dataset(feats, colors, names, _BANK_FEATURES, f"{prefix}-{color}")


_CREDIT_FEATURE_COLUMNS = (1, 5) + tuple(range(12, 24))   # X1, X5, X12..X23
_CREDIT_FEATURES = (("limit_bal", "age")
                    + tuple(f"bill_amt{i}" for i in range(1, 7))
                    + tuple(f"pay_amt{i}" for i in range(1, 7)))
_CREDIT_COLORS = {
    # option: (column, {UCI code: colour}, colour names)
    "sex": (2, {1: 0, 2: 1}, ("male", "female")),
    "education": (3, {1: 0, 2: 1, 3: 2, 4: 3, 0: 3, 5: 3, 6: 3},
                  ("graduate school", "university", "high school", "others")),
    "marriage": (4, {1: 0, 2: 1, 3: 2, 0: 2}, ("married", "single", "others")),
}


def load_credit_card(
    color: str = "sex",
    data_dir: Optional[PathLike] = None,
    *,
    path: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
) -> Dataset:
  """Default of Credit Card Clients (Yeh and Lien 2009), 30,000 rows.

  Reads a CSV with the 25 columns ``ID, X1..X23, Y`` in UCI's order (one or
  two header rows, recognised as rows whose X1 field is not a number). This
  file is never downloaded (UCI ships an ``.xls``; see the module docstring).
  Features (14, float64, raw): X1 (limit_bal), X5 (age), X12..X17
  (bill_amt1..6), X18..X23 (pay_amt1..6).

  Args:
    color: ``"sex"`` (X2: 0 = male (code 1), 1 = female (code 2)),
      ``"education"`` (X3: 0 = graduate school (1), 1 = university (2),
      2 = high school (3), 3 = others: the documented code 4 together with
      the undocumented codes 0, 5 and 6) or ``"marriage"`` (X4: 0 = married
      (1), 1 = single (2), 2 = others: the documented code 3 together with
      the undocumented code 0).
    data_dir: a folder holding ``UCI_Credit_Card.csv``.
    path: an explicit file (any name).
    cache_dir: a cache folder where the user placed ``UCI_Credit_Card.csv``.

  Returns:
    A :class:`Dataset` named ``"credit_card-<color>"``.
  """
  fn = "load_credit_card"
  _checks.check_choice(fn, "color", color, COLOR_OPTIONS["credit_card"])
  p = data_path("UCI_Credit_Card.csv", path=path, data_dir=data_dir,
                cache_dir=cache_dir, download=False, caller=fn)
  rows = _read_rows(fn, p, delimiter=",")
  header_rows = 0
  while header_rows < min(2, len(rows)) and not (
      len(rows[header_rows][1]) > 1 and _is_number(rows[header_rows][1][1])):
    header_rows += 1
  column, mapping, names = _CREDIT_COLORS[color]
  feature_labels = tuple(f"X{c}" for c in _CREDIT_FEATURE_COLUMNS)
  feats, colors = [], []
  for line, row in rows[header_rows:]:
    if len(row) != 25:
      _checks.fail(fn, f"file {str(p)!r}", "have 25 comma-separated fields per row (ID, X1..X23, Y)",
                   f"{len(row)} fields on line {line}")
    feats.append(_numbers(fn, p, line, row, _CREDIT_FEATURE_COLUMNS, feature_labels))
    code = _numbers(fn, p, line, row, (column,), (f"X{column}",))[0]
    if code != int(code) or int(code) not in mapping:
      _checks.fail(fn, f"file {str(p)!r}",
                   f"hold one of the codes {sorted(mapping)} in field X{column}",
                   f"{row[column]!r} on line {line}")
    colors.append(mapping[int(code)])
  if not feats:
    _checks.fail(fn, f"file {str(p)!r}", "hold data rows after its header", "none")
  return _dataset(feats, colors, names, _CREDIT_FEATURES, f"credit_card-{color}")


_LOADERS = {"census": load_census, "bank": load_bank, "credit_card": load_credit_card}


def load(name: str, color: Optional[str] = None, **kwargs) -> Dataset:
  """``load("census", "race")`` = ``load_census("race")``; ``color=None`` is the default option.

  Args:
    name: ``"census"``, ``"bank"`` or ``"credit_card"``.
    color: one of ``COLOR_OPTIONS[name]``.
    **kwargs: passed to the loader (``data_dir``, ``path``, ...).
  """
  _checks.check_choice("load", "name", name, tuple(_LOADERS))
  if color is None:
    color = COLOR_OPTIONS[name][0]
  return _LOADERS[name](color, **kwargs)


# ---------------------------------------------------------------------------
# Proportional subsampling.


def _allocate(counts: Sequence[int], n: int) -> list:
  """Splits ``n`` over classes of sizes ``counts`` (exact integers), summing to ``n``.

  One class: ``n``. Two classes with sizes ``B <= R``: ``ceil(n B / (B + R))``
  to the smaller (the first on a tie), the rest to the other. Three or more:
  largest remainder (Hamilton): ``floor(n N_c / N)`` each, then one more to
  the classes with the largest remainders ``n N_c mod N``, ties to the
  smaller class, then to the lower index.
  """
  counts = [int(c) for c in counts]
  total = sum(counts)
  k = len(counts)
  if k == 1:
    return [n]
  if k == 2:
    small = 0 if counts[0] <= counts[1] else 1
    q_small = -(-n * counts[small] // total)
    out = [0, 0]
    out[small] = q_small
    out[1 - small] = n - q_small
    return out
  out = [n * c // total for c in counts]
  rem = [n * c % total for c in counts]
  left = n - sum(out)
  for i in sorted(range(k), key=lambda i: (-rem[i], counts[i], i))[:left]:
    out[i] += 1
  return out


def proportional_subsample(key, colors, n: int) -> np.ndarray:
  """Indices of a random sample of ``n`` points that keeps the colour proportions.

  The per-colour sample sizes follow the papers: with two colours of sizes
  ``B <= R`` the minority gets ``ceil(n B / (B + R))`` points and the
  majority the rest; with three or more colours each gets
  ``floor(n N_c / N)`` and the remaining points go one each to the colours
  with the largest remainders ``n N_c mod N`` (ties: the smaller colour
  first, then the lower colour index). The sizes sum to ``n`` and are exact
  integer arithmetic. Only colours present in ``colors`` take part. Within a
  colour the points are drawn uniformly without replacement.

  Args:
    key: a JAX PRNG key (consumed).
    colors: ``int[N]`` colours (NumPy or JAX), values ``>= 0``.
    n: the sample size, ``1 <= n <= N``.

  Returns:
    ``int32[n]`` NumPy array of distinct indices into ``colors``, sorted
    ascending. The same key gives the same sample.

  Raises:
    ValueError: ``n`` is larger than ``N`` or so small that a colour present
      in the data would get no point (the message names the colour, its
      count and the smallest ``n`` that works).
  """
  fn = "proportional_subsample"
  key = _checks.check_key(fn, key)
  c = np.asarray(colors)
  if c.ndim != 1:
    _checks.fail(fn, "colors", "be int[N] (one colour per point)", f"shape {c.shape}")
  if c.dtype.kind == "f" and np.all(np.isfinite(c)) and np.all(c == np.round(c)):
    c = c.astype(np.int64)
  if c.dtype.kind not in "iub":
    _checks.fail(fn, "colors", "hold integer colours", _checks.describe(c), TypeError)
  if c.size == 0:
    _checks.fail(fn, "colors", "hold at least one point", "an empty array")
  if c.min() < 0:
    _checks.fail(fn, "colors", "hold colours >= 0", f"colour {int(c.min())}")
  c = c.astype(np.int64)
  total = int(c.size)
  n = _checks.check_positive_int(fn, "n", n)
  if n > total:
    _checks.fail(fn, "n", f"be at most the number of points ({total})", n)
  counts_all = np.bincount(c)
  present = np.flatnonzero(counts_all)
  counts = [int(counts_all[p]) for p in present]
  quotas = _allocate(counts, n)
  if min(quotas) == 0:
    i = quotas.index(0)
    need = next(m for m in range(n + 1, total + 1) if min(_allocate(counts, m)) > 0)
    _checks.fail(
        fn, "n", "be large enough that every colour gets a point",
        f"n = {n}: colour {int(present[i])} has {counts[i]} of {total} points and "
        f"would get 0 (the smallest n that gives every colour a point is {need})")
  perm = np.asarray(jax.random.permutation(key, total))
  grouped = perm[np.argsort(c[perm], kind="stable")]   # by colour, random within
  starts = np.concatenate([[0], np.cumsum(counts)])
  picks = [grouped[starts[j]:starts[j] + q] for j, q in enumerate(quotas)]
  return np.sort(np.concatenate(picks)).astype(np.int32)


# ---------------------------------------------------------------------------
# Synthetic data.


@functools.partial(jax.jit, static_argnames=("n", "num_blobs", "dim"))
def _blobs_kernel(key, counts, purity, spread, separation, *, n, num_blobs, dim):
  """Blob points ``float[n, dim]`` and colours ``int32[n]``; ``counts: int32[C]`` sums to ``n``."""
  num_colors = counts.shape[0]
  dtype = _checks.float_dtype()
  k_order, k_centre, k_pure, k_home, k_any, k_noise = jax.random.split(key, 6)
  colors = jnp.repeat(jnp.arange(num_colors, dtype=jnp.int32), counts, total_repeat_length=n)
  colors = jax.random.permutation(k_order, colors)
  centres = separation * jax.random.normal(k_centre, (num_blobs, dim), dtype)
  # Colour c owns blobs c, c + C, c + 2C, ... < num_blobs.
  owned = jnp.maximum(0, (num_blobs - colors + num_colors - 1) // num_colors)
  pick = jnp.floor(jax.random.uniform(k_home, (n,), dtype) * owned).astype(jnp.int32)
  home = colors + jnp.minimum(pick, jnp.maximum(owned - 1, 0)) * num_colors
  anywhere = jax.random.randint(k_any, (n,), 0, num_blobs)
  pure = (jax.random.uniform(k_pure, (n,), dtype) < purity) & (owned > 0)
  blob = jnp.where(pure, home, anywhere)
  points = centres[blob] + spread * jax.random.normal(k_noise, (n, dim), dtype)
  return points, colors


def synthetic_blobs(
    key,
    n: int,
    num_colors: int = 2,
    *,
    proportions: Optional[Sequence[float]] = None,
    num_blobs: Optional[int] = None,
    dim: int = 2,
    purity: float = 0.9,
    spread: float = 1.0,
    separation: float = 10.0,
) -> Dataset:
  """Coloured Gaussian blobs whose colours follow the blobs (so plain clustering is unfair).

  Blob ``b`` "belongs" to colour ``b mod num_colors``. The colour counts are
  fixed by ``proportions`` with the rounding of :func:`proportional_subsample`
  (a colour may get 0 points when ``n`` is tiny). A point of colour ``c``
  lies in one of colour ``c``'s blobs (uniformly) with probability
  ``purity``, else in a uniformly chosen blob of any colour; it is the blob
  centre plus ``spread`` times a standard normal vector. Centres are
  ``separation`` times standard normal vectors. Points come in random order.

  Args:
    key: a JAX PRNG key (consumed).
    n: the number of points, ``>= 1``.
    num_colors: the number of colours, ``>= 1``.
    proportions: ``num_colors`` positive weights (normalised); default equal.
    num_blobs: the number of blobs; default ``2 * num_colors``.
    dim: the dimension of the points.
    purity: in ``[0, 1]``; 1 makes every blob single-coloured (when each
      colour owns a blob), ``1 / num_blobs``-ish mixes them.
    spread: the standard deviation inside a blob, ``>= 0``.
    separation: the scale of the blob centres, ``>= 0``.

  Returns:
    A :class:`Dataset` named ``"synthetic-blobs"`` with ``float[n, dim]``
    features in the JAX default float dtype (float32, float64 under x64).
  """
  fn = "synthetic_blobs"
  key = _checks.check_key(fn, key)
  n = _checks.check_positive_int(fn, "n", n)
  num_colors = _checks.check_positive_int(fn, "num_colors", num_colors)
  num_blobs = 2 * num_colors if num_blobs is None else _checks.check_positive_int(fn, "num_blobs", num_blobs)
  dim = _checks.check_positive_int(fn, "dim", dim)
  for arg, v, lo, hi in (("purity", purity, 0.0, 1.0), ("spread", spread, 0.0, math.inf),
                         ("separation", separation, 0.0, math.inf)):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
      _checks.fail(fn, arg, "be a number", repr(v), TypeError)
    if not (math.isfinite(v) and lo <= v <= hi):
      _checks.fail(fn, arg, f"be a finite number in [{lo}, {hi}]", repr(v))
  if proportions is None:
    weights = [1] * num_colors
  else:
    props = np.asarray(proportions)
    if props.ndim != 1 or props.shape[0] != num_colors:
      _checks.fail(fn, "proportions", f"hold num_colors = {num_colors} weights", f"shape {props.shape}")
    if props.dtype.kind not in "iuf" or not np.all(np.isfinite(props)) or np.any(props <= 0):
      _checks.fail(fn, "proportions", "hold positive finite weights", repr(props.tolist()))
    fracs = [Fraction(float(p)) for p in props]
    denom = math.lcm(*(f.denominator for f in fracs))
    weights = [int(f * denom) for f in fracs]
  counts = _allocate(weights, n)

  points, colors = _blobs_kernel(
      key, jnp.asarray(counts, jnp.int32), purity, spread, separation,
      n=n, num_blobs=num_blobs, dim=dim)
  return Dataset(
      features=np.asarray(points),
      colors=np.asarray(colors, dtype=np.int32),
      num_colors=num_colors,
      color_names=tuple(f"color {c}" for c in range(num_colors)),
      feature_names=tuple(f"x{i}" for i in range(dim)),
      name="synthetic-blobs")
