"""Tests for fairhc_jax.datasets: UCI loaders, download cache, subsampling, blobs.

The oracles below re-read the files with plain string splitting (not the
module's parser) and re-derive sample sizes with their own arithmetic. No
test touches the network: downloads go to ``file://`` mirrors built in
``tmp_path``, and the default base URL is pointed at a folder that does not
exist.
"""

import hashlib
import io
import math
import pathlib
import shutil
import zipfile
from fractions import Fraction

import jax
import numpy as np
import pytest

from fairhc_jax import datasets

UCI_SHA256 = {  # the UCI repository's own files
    "adult.data": "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
    "bank.csv": "dc8d576e9bda0f41ee891251bd84bab9a39ce576cba715aac08adc2374a01fde",
    "bank-full.csv": "d1513ec63b385506f7cfce9f2c5caa9fe99e7ba4e8c3fa264b3aaf0f849ed32d",
}
BANK_NUMERIC = ["age", "balance", "day", "duration", "campaign", "pdays", "previous"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
  """No data dir from the environment, a private cache, and no reachable base URL."""
  monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
  monkeypatch.setenv(datasets.CACHE_DIR_ENV, str(tmp_path / "default-cache"))
  monkeypatch.setenv(datasets.BASE_URL_ENV, (tmp_path / "no-such-mirror").as_uri())


# ---------------------------------------------------------------------------
# Oracles: literal readings of the files.


def adult_oracle(path):
  feats, female, white = [], [], []
  for line in pathlib.Path(path).read_text().splitlines():
    if not line.strip():
      continue
    f = [x.strip() for x in line.split(",")]
    assert len(f) == 15
    if "?" in f:
      continue
    feats.append([float(f[i]) for i in (0, 2, 4, 10, 11, 12)])
    female.append(f[9] == "Female")
    white.append(f[8] == "White")
  return np.array(feats), np.array(female), np.array(white)


def bank_oracle(path):
  text = pathlib.Path(path).read_text()
  sep = ";" if text.splitlines()[0].startswith('"') else ","
  lines = [ln for ln in text.splitlines() if ln.strip()]
  header = [h.strip('"') for h in lines[0].split(sep)]
  feats, married, young = [], [], []
  for ln in lines[1:]:
    rec = dict(zip(header, (v.strip('"') for v in ln.split(sep))))
    feats.append([float(rec[k]) for k in BANK_NUMERIC])
    married.append(rec["marital"] == "married")
    young.append(int(rec["age"]) < 40)
  return np.array(feats), np.array(married), np.array(young)


def credit_oracle(path):
  lines = pathlib.Path(path).read_text().splitlines()
  header = lines[0].split(",")
  assert header[:3] == ["ID", "X1", "X2"]
  feats, sex, edu, mar = [], [], [], []
  for ln in lines[1:]:
    f = [float(x) for x in ln.split(",")]
    feats.append([f[1], f[5]] + f[12:24])
    sex.append(0 if f[2] == 1 else 1)
    e = int(f[3])
    edu.append(e - 1 if e in (1, 2, 3) else 3)
    m = int(f[4])
    mar.append(m - 1 if m in (1, 2) else 2)
  return np.array(feats), np.array(sex), np.array(edu), np.array(mar)


def to_uci_bank_form(plain_text: str) -> str:
  """Plain comma form -> UCI's ';'-separated form with quoted strings, LF, final newline."""
  rows = [r.split(",") for r in plain_text.replace("\r\n", "\n").split("\n") if r]
  header = rows[0]
  out = [";".join(f'"{h}"' for h in header)]
  for r in rows[1:]:
    out.append(";".join(v if h in BANK_NUMERIC else f'"{v}"' for h, v in zip(header, r)))
  return "\n".join(out) + "\n"


def to_plain_bank_form(uci_text: str) -> str:
  return "\n".join(ln.replace('"', "").replace(";", ",") for ln in uci_text.splitlines())


def quotas_oracle(counts, n):
  """Per-colour sample sizes: ceil rule for two colours, largest remainder otherwise."""
  total = sum(counts)
  if len(counts) == 1:
    return [n]
  if len(counts) == 2:
    b, r = counts
    if b <= r:
      qb = math.ceil(Fraction(n * b, total))
      return [qb, n - qb]
    qr = math.ceil(Fraction(n * r, total))
    return [n - qr, qr]
  exact = [Fraction(n * c, total) for c in counts]
  base = [math.floor(e) for e in exact]
  frac = [e - b for e, b in zip(exact, base)]
  rank = sorted(range(len(counts)), key=lambda i: (-frac[i], counts[i], i))
  for i in rank[: n - sum(base)]:
    base[i] += 1
  return base


# ---------------------------------------------------------------------------
# Real files.


def test_census_matches_oracle(uci_dir):
  feats, female, white = adult_oracle(uci_dir / "adult.data")
  assert len(feats) == 30162
  g = datasets.load_census("gender", data_dir=uci_dir)
  r = datasets.load_census("race", data_dir=uci_dir)
  for d in (g, r):
    assert d.features.shape == (30162, 6) and d.features.dtype == np.float64
    np.testing.assert_array_equal(d.features, feats)
    assert d.colors.dtype == np.int32 and d.num_colors == 2
  np.testing.assert_array_equal(g.colors, np.where(female, 0, 1))
  np.testing.assert_array_equal(r.colors, np.where(white, 1, 0))
  assert g.color_names == ("female", "male") and g.name == "census-gender"
  assert r.color_names == ("non-white", "white")
  np.testing.assert_array_equal(g.color_counts(), [9782, 20380])
  np.testing.assert_array_equal(r.color_counts(), [4229, 25933])


@pytest.mark.parametrize("full", [False, True])
def test_bank_matches_oracle(uci_dir, full):
  name = "bank-full.csv" if full else "bank.csv"
  feats, married, young = bank_oracle(uci_dir / name)
  m = datasets.load_bank("marital", data_dir=uci_dir, full=full)
  a = datasets.load_bank("age", data_dir=uci_dir, full=full)
  for d in (m, a):
    assert d.features.shape == (len(feats), 7)
    np.testing.assert_array_equal(d.features, feats)
  np.testing.assert_array_equal(m.colors, np.where(married, 1, 0))
  np.testing.assert_array_equal(a.colors, np.where(young, 0, 1))
  # Not married is the minority; the age split is close to even.
  assert m.color_counts()[0] < m.color_counts()[1]
  if not full:
    assert m.num_points == 4521
    np.testing.assert_array_equal(m.color_counts(), [1724, 2797])
    np.testing.assert_array_equal(a.color_counts(), [2290, 2231])


def test_bank_full_has_uci_row_count(uci_dir):
  # The shared copy is UCI's file (45,211 rows, no repeated row).
  d = datasets.load_bank("marital", data_dir=uci_dir)
  assert d.num_points == 45211


def test_credit_card_matches_oracle(uci_dir):
  feats, sex, edu, mar = credit_oracle(uci_dir / "UCI_Credit_Card.csv")
  assert len(feats) == 30000
  for color, want, k in (("sex", sex, 2), ("education", edu, 4), ("marriage", mar, 3)):
    d = datasets.load_credit_card(color, data_dir=uci_dir)
    assert d.features.shape == (30000, 14) and d.num_colors == k
    np.testing.assert_array_equal(d.features, feats)
    np.testing.assert_array_equal(d.colors, want)
    assert len(d.color_names) == k and len(d.feature_names) == 14
  np.testing.assert_array_equal(np.bincount(edu), [10585, 14030, 4917, 468])
  np.testing.assert_array_equal(np.bincount(mar), [13659, 15964, 377])


def test_bank_forms_parse_identically(uci_dir, tmp_path):
  # The 10% file: UCI's ';'-quoted form vs a plain comma copy.
  uci_text = (uci_dir / "bank.csv").read_text()
  plain = tmp_path / "bank-plain.csv"
  plain.write_text(to_plain_bank_form(uci_text))
  for color in ("marital", "age"):
    a = datasets.load_bank(color, path=uci_dir / "bank.csv")
    b = datasets.load_bank(color, path=plain)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.colors, b.colors)
  # The full file: the plain shared copy vs its ';'-quoted form.
  quoted = tmp_path / "bank-full.csv"
  quoted.write_text(to_uci_bank_form((uci_dir / "bank-full.csv").read_text()))
  a = datasets.load_bank("marital", data_dir=uci_dir)
  b = datasets.load_bank("marital", data_dir=tmp_path)
  np.testing.assert_array_equal(a.features, b.features)
  np.testing.assert_array_equal(a.colors, b.colors)


def test_environment_variable_data_dir(uci_dir, monkeypatch):
  monkeypatch.setenv(datasets.DATA_DIR_ENV, str(uci_dir))
  d = datasets.load("bank", full=False)
  assert d.name == "bank10-marital" and d.num_points == 4521


# ---------------------------------------------------------------------------
# Download into the cache from a file:// mirror.


def _zip_bytes(members):
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
    for name, data in members.items():
      zf.writestr(name, data)
  return buf.getvalue()


def _uci_bank_full(uci_dir) -> str:
  """UCI's bank-full.csv rebuilt from the shared plain copy (its exact bytes)."""
  return to_uci_bank_form((uci_dir / "bank-full.csv").read_text())


@pytest.fixture
def mirror(uci_dir, tmp_path):
  """A file:// copy of the UCI layout: adult/adult.data and 00222/bank.zip."""
  root = tmp_path / "mirror"
  (root / "adult").mkdir(parents=True)
  (root / "00222").mkdir()
  shutil.copy(uci_dir / "adult.data", root / "adult" / "adult.data")
  (root / "00222" / "bank.zip").write_bytes(_zip_bytes({
      "bank-full.csv": _uci_bank_full(uci_dir),
      "bank.csv": (uci_dir / "bank.csv").read_bytes(),
      "bank-names.txt": "names",
  }))
  return root


def test_download_verifies_and_caches(mirror, uci_dir, tmp_path):
  cache = tmp_path / "cache"
  url = mirror.as_uri()
  g = datasets.load_census("gender", cache_dir=cache, base_url=url)
  np.testing.assert_array_equal(g.features, datasets.load_census(data_dir=uci_dir).features)
  assert hashlib.sha256((cache / "adult.data").read_bytes()).hexdigest() == UCI_SHA256["adult.data"]

  full = datasets.load_bank("age", cache_dir=cache, base_url=url)
  assert full.num_points == 45211
  small = datasets.load_bank("age", full=False, cache_dir=cache, base_url=url)
  assert small.num_points == 4521
  for name in ("bank-full.csv", "bank.csv"):
    assert hashlib.sha256((cache / name).read_bytes()).hexdigest() == UCI_SHA256[name]
  # UCI's bank-full is the shared copy, row for row.
  shared = datasets.load_bank("age", data_dir=uci_dir)
  np.testing.assert_array_equal(full.features, shared.features)
  np.testing.assert_array_equal(full.colors, shared.colors)

  # Cached files are used without the mirror; the env var base URL works too.
  shutil.rmtree(mirror)
  again = datasets.load_bank("age", cache_dir=cache)
  np.testing.assert_array_equal(again.features, full.features)
  assert sorted(p.name for p in cache.iterdir()) == ["adult.data", "bank-full.csv", "bank.csv"]


def test_download_from_nested_zip_and_env_cache(uci_dir, tmp_path, monkeypatch):
  root = tmp_path / "m2"
  (root / "00222").mkdir(parents=True)
  inner = _zip_bytes({"bank.csv": (uci_dir / "bank.csv").read_bytes()})
  (root / "00222" / "bank.zip").write_bytes(_zip_bytes({"bank.zip": inner}))
  monkeypatch.setenv(datasets.BASE_URL_ENV, root.as_uri())
  d = datasets.load_bank(full=False)   # default cache = $FAIRHC_CACHE_DIR
  assert d.num_points == 4521
  assert (datasets.default_cache_dir() / "bank.csv").is_file()
  assert datasets.default_cache_dir() == tmp_path / "default-cache"


def test_corrupted_download_is_rejected(uci_dir, tmp_path):
  root = tmp_path / "bad"
  (root / "adult").mkdir(parents=True)
  data = bytearray((uci_dir / "adult.data").read_bytes())
  data[100] = ord("7") if data[100] != ord("7") else ord("8")
  (root / "adult" / "adult.data").write_bytes(bytes(data))
  cache = tmp_path / "cache"
  with pytest.raises(ValueError, match=r"load_census: the downloaded adult.data must have SHA-256 5b0026.*checksum mismatch"):
    datasets.load_census(cache_dir=cache, base_url=root.as_uri())
  assert not cache.exists() or list(cache.iterdir()) == []


def test_corrupted_cache_file_is_removed(uci_dir, tmp_path):
  cache = tmp_path / "cache"
  cache.mkdir()
  (cache / "adult.data").write_bytes((uci_dir / "adult.data").read_bytes()[:-10])
  with pytest.raises(ValueError, match="checksum mismatch.*was removed"):
    datasets.load_census(cache_dir=cache)
  assert not (cache / "adult.data").exists()


def test_missing_archive_member_and_failed_download(tmp_path):
  root = tmp_path / "m3"
  (root / "00222").mkdir(parents=True)
  (root / "00222" / "bank.zip").write_bytes(_zip_bytes({"other.csv": "x"}))
  with pytest.raises(ValueError, match="must contain 'bank.csv'"):
    datasets.load_bank(full=False, cache_dir=tmp_path / "c", base_url=root.as_uri())
  (root / "00222" / "bank.zip").write_bytes(b"not a zip")
  with pytest.raises(ValueError, match="be a zip archive"):
    datasets.load_bank(full=False, cache_dir=tmp_path / "c", base_url=root.as_uri())
  with pytest.raises(OSError, match="could not download adult.data from file://"):
    datasets.load_census(cache_dir=tmp_path / "c", base_url=(tmp_path / "none").as_uri())


# ---------------------------------------------------------------------------
# Errors.


def test_unknown_color_lists_options():
  with pytest.raises(ValueError, match=r"load_census: color must be one of 'gender', 'race', got 'sex'"):
    datasets.load_census("sex")
  with pytest.raises(ValueError, match=r"load_bank: color must be one of 'marital', 'age', got 'race'"):
    datasets.load_bank("race")
  with pytest.raises(ValueError, match=r"'sex', 'education', 'marriage', got 'age'"):
    datasets.load_credit_card("age")
  with pytest.raises(ValueError, match=r"load: name must be one of 'census', 'bank', 'credit_card'"):
    datasets.load("adult")


def test_missing_file_messages(tmp_path, monkeypatch):
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(FileNotFoundError, match=r"load_census: data_dir must be a folder holding 'adult.data'.*no file .*empty/adult.data"):
    datasets.load_census(data_dir=empty)
  with pytest.raises(FileNotFoundError, match="path must name an existing file"):
    datasets.load_bank(path=empty / "bank.csv")
  with pytest.raises(FileNotFoundError, match=r"cache has no .*bank-full.csv.*download=False.*FAIRHC_DATA_DIR"):
    datasets.load_bank(cache_dir=tmp_path / "c", download=False)
  with pytest.raises(FileNotFoundError, match=r"never downloaded.*\.xls.*ID, X1\.\.X23, Y"):
    datasets.load_credit_card(cache_dir=tmp_path / "c")
  monkeypatch.setenv(datasets.DATA_DIR_ENV, str(empty))
  with pytest.raises(FileNotFoundError, match="FAIRHC_DATA_DIR must be a folder holding 'bank.csv'.*unset FAIRHC_DATA_DIR"):
    datasets.load_bank(full=False)


def _write(tmp_path, name, text):
  p = tmp_path / name
  p.write_text(text)
  return p


ADULT_ROW = "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States, <=50K"


def test_malformed_files(tmp_path):
  p = _write(tmp_path, "a1", ADULT_ROW + "\n" + "1, 2, 3\n")
  with pytest.raises(ValueError, match=r"have 15 comma-separated fields.*got 3 fields on line 2"):
    datasets.load_census(path=p)
  p = _write(tmp_path, "a2", ADULT_ROW.replace("77516", "lots") + "\n")
  with pytest.raises(ValueError, match=r"number in field 'fnlwgt', got 'lots' on line 1"):
    datasets.load_census(path=p)
  p = _write(tmp_path, "a3", ADULT_ROW.replace("Male", "M") + "\n")
  with pytest.raises(ValueError, match=r"field 'sex', got 'M' on line 1"):
    datasets.load_census(path=p)
  p = _write(tmp_path, "a4", ADULT_ROW.replace("77516", "nan") + "\n")
  with pytest.raises(ValueError, match="finite"):
    datasets.load_census(path=p)
  p = _write(tmp_path, "a5", "\n\n")
  with pytest.raises(ValueError, match="an empty file"):
    datasets.load_census(path=p)
  p = _write(tmp_path, "b1", "age,job,balance\n30,x,1\n")
  with pytest.raises(ValueError, match=r"header naming age, balance.*without day, duration"):
    datasets.load_bank(path=p)
  header = "age,marital,balance,day,duration,campaign,pdays,previous"
  p = _write(tmp_path, "b2", header + "\n30,widowed,1,2,3,4,5,6\n")
  with pytest.raises(ValueError, match=r"field 'marital', got 'widowed' on line 2"):
    datasets.load_bank(path=p)
  p = _write(tmp_path, "b3", header + "\n30,married,1,2,3\n")
  with pytest.raises(ValueError, match="have 8 fields per row.*5 fields on line 2"):
    datasets.load_bank(path=p)
  row = ",".join(["1", "20000", "3", "2", "1", "24"] + ["0"] * 19)
  p = _write(tmp_path, "c1", row + "\n")
  with pytest.raises(ValueError, match=r"codes \[1, 2\] in field X2, got '3' on line 1"):
    datasets.load_credit_card(path=p)
  p = _write(tmp_path, "c2", "1,2,3\n")
  with pytest.raises(ValueError, match="have 25 comma-separated fields"):
    datasets.load_credit_card(path=p)


def test_credit_card_header_forms(tmp_path):
  rows = [
      ["1", "20000", "2", "0", "0", "24"] + ["1"] * 18 + ["1"],
      ["2", "50000", "1", "6", "3", "40"] + ["2"] * 18 + ["0"],
      ["3", "90000.0", "2", "3", "2", "33"] + ["3"] * 18 + ["0"],
  ]
  body = "\n".join(",".join(r) for r in rows) + "\n"
  xls_export = ",".join([""] + [f"X{i}" for i in range(1, 24)] + ["Y"]) + "\n" + \
      ",".join(["ID", "LIMIT_BAL", "SEX", "EDUCATION", "MARRIAGE", "AGE"] + ["c"] * 18 + ["default"]) + "\n"
  for name, head in (("none.csv", ""), ("two.csv", xls_export)):
    p = _write(tmp_path, name, head + body)
    edu = datasets.load_credit_card("education", path=p)
    np.testing.assert_array_equal(edu.colors, [3, 3, 2])
    np.testing.assert_array_equal(datasets.load_credit_card("marriage", path=p).colors, [2, 2, 1])
    np.testing.assert_array_equal(datasets.load_credit_card("sex", path=p).colors, [1, 0, 1])
    np.testing.assert_array_equal(edu.features[:, :2], [[20000, 24], [50000, 40], [90000, 33]])
    np.testing.assert_array_equal(edu.features[:, 2:], np.repeat([[1.0], [2.0], [3.0]], 12, axis=1))


# ---------------------------------------------------------------------------
# Proportional subsampling.


def _check_sample(idx, colors, n):
  colors = np.asarray(colors)
  assert idx.dtype == np.int32 and idx.shape == (n,)
  assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < len(colors)
  present = np.flatnonzero(np.bincount(colors))
  counts = [int(np.sum(colors == c)) for c in present]
  got = [int(np.sum(colors[idx] == c)) for c in present]
  assert got == quotas_oracle(counts, n), (counts, n, got)


@pytest.mark.parametrize("seed", range(6))
def test_subsample_proportions_random(seed):
  rng = np.random.default_rng(seed)
  k = [1, 2, 2, 3, 4, 5][seed]
  size = int(rng.integers(5, 400))
  probs = rng.dirichlet(np.ones(k) * 0.7)
  colors = rng.choice(k, size=size, p=probs)
  colors[:k] = np.arange(k)          # every colour present
  present = len(np.unique(colors))
  key = jax.random.key(seed)
  for n in sorted({present * 3, size // 3, size // 2, size - 1, size} & set(range(1, size + 1))):
    if min(quotas_oracle(list(np.bincount(colors)[np.bincount(colors) > 0]), n)) == 0:
      continue
    _check_sample(datasets.proportional_subsample(key, colors, n), colors, n)


def test_subsample_two_colour_ceil_rule_and_ties():
  colors = np.array([1] * 7 + [0] * 3)            # minority is colour 0 (3 of 10)
  for n in range(2, 11):
    idx = datasets.proportional_subsample(jax.random.key(n), colors, n)
    assert np.sum(colors[idx] == 0) == math.ceil(3 * n / 10)
  swapped = 1 - colors                              # minority is colour 1
  idx = datasets.proportional_subsample(jax.random.key(0), swapped, 4)
  assert np.sum(swapped[idx] == 1) == 2            # ceil(4 * 3 / 10) = 2
  tie = np.array([0, 1] * 3)
  idx = datasets.proportional_subsample(jax.random.key(0), tie, 3)
  assert np.sum(tie[idx] == 0) == 2 and np.sum(tie[idx] == 1) == 1
  one = np.zeros(5, int)
  np.testing.assert_array_equal(datasets.proportional_subsample(jax.random.key(0), one, 5), np.arange(5))
  assert datasets.proportional_subsample(jax.random.key(0), one, 1).shape == (1,)


def test_subsample_three_colours_largest_remainder():
  colors = np.repeat([0, 1, 2], [5, 3, 2])   # n = 5: exact 2.5, 1.5, 1.0 -> tie on .5 goes to the smaller
  idx = datasets.proportional_subsample(jax.random.key(1), colors, 5)
  np.testing.assert_array_equal(np.bincount(colors[idx], minlength=3), [2, 2, 1])
  colors = np.repeat([0, 1, 2, 3], [40, 30, 20, 10])
  idx = datasets.proportional_subsample(jax.random.key(1), colors, 7)  # 2.8 2.1 1.4 .7
  np.testing.assert_array_equal(np.bincount(colors[idx], minlength=4), [3, 2, 1, 1])


def test_subsample_deterministic_and_key_dependent():
  colors = np.random.default_rng(0).integers(0, 2, 500)
  a = datasets.proportional_subsample(jax.random.key(3), colors, 100)
  b = datasets.proportional_subsample(jax.random.key(3), jax.numpy.asarray(colors), 100)
  c = datasets.proportional_subsample(jax.random.key(4), colors, 100)
  raw = datasets.proportional_subsample(jax.random.PRNGKey(3), colors, 100)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  _check_sample(raw, colors, 100)


def test_subsample_uniform_within_colour():
  colors = np.array([0] * 4 + [1] * 8)
  hits = np.zeros(12)
  trials = 300
  for s in range(trials):
    hits[datasets.proportional_subsample(jax.random.key(s), colors, 6)] += 1
  # ceil(6 * 4 / 12) = 2 of 4 reds, 4 of 8 blues: every point has probability 1/2.
  freq = hits / trials
  assert np.all(np.abs(freq - 0.5) < 0.12), freq


def test_subsample_errors():
  key = jax.random.key(0)
  colors = np.array([0] * 7 + [1] * 3)
  with pytest.raises(ValueError, match=r"n must be at most the number of points \(10\), got 11"):
    datasets.proportional_subsample(key, colors, 11)
  with pytest.raises(ValueError, match=r"n must be large enough that every colour gets a point.*colour 0 has 7 of 10 points and would get 0.*smallest n .* is 2"):
    datasets.proportional_subsample(key, colors, 1)
  three = np.repeat([0, 1, 2], [90, 9, 1])
  need = next(m for m in range(21, 101) if min(quotas_oracle([90, 9, 1], m)) > 0)
  assert need == 37                                 # 33.3, 3.33, 0.37: the .37 wins
  with pytest.raises(ValueError, match=rf"colour 2 has 1 of 100 points.*smallest n .* is {need}\)"):
    datasets.proportional_subsample(key, three, 20)
  with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
    datasets.proportional_subsample(key, colors, 0)
  with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
    datasets.proportional_subsample(0, colors, 3)
  with pytest.raises(ValueError, match="key must be a single PRNG key"):
    datasets.proportional_subsample(jax.random.split(key, 2), colors, 3)
  with pytest.raises(ValueError, match=r"colors must be int\[N\]"):
    datasets.proportional_subsample(key, colors.reshape(2, 5), 3)
  with pytest.raises(TypeError, match="colors must hold integer colours"):
    datasets.proportional_subsample(key, colors + 0.5, 3)
  with pytest.raises(ValueError, match="colors must hold colours >= 0, got colour -1"):
    datasets.proportional_subsample(key, colors - 1, 3)


def test_subsample_census_1600(uci_dir):
  d = datasets.load_census("gender", data_dir=uci_dir)
  idx = datasets.proportional_subsample(jax.random.key(0), d.colors, 1600)
  sample = d.take(idx)
  assert sample.num_points == 1600 and sample.name == d.name
  assert sample.color_counts()[0] == math.ceil(1600 * 9782 / 30162)   # 519
  np.testing.assert_array_equal(sample.features, d.features[idx])


# ---------------------------------------------------------------------------
# Synthetic blobs.


@pytest.mark.slow  # default run over its 10-minute budget; runs with --runslow
def test_blobs_shapes_counts_and_determinism():
  key = jax.random.key(0)
  d = datasets.synthetic_blobs(key, 101, 3, proportions=[1, 2, 3.5], dim=4)
  assert d.features.shape == (101, 4) and d.features.dtype == np.float32
  assert d.colors.dtype == np.int32 and d.num_colors == 3
  assert np.all(np.isfinite(d.features))
  np.testing.assert_array_equal(np.bincount(d.colors, minlength=3),
                                quotas_oracle([2, 4, 7], 101))
  e = datasets.synthetic_blobs(key, 101, 3, proportions=[1, 2, 3.5], dim=4)
  np.testing.assert_array_equal(d.features, e.features)
  np.testing.assert_array_equal(d.colors, e.colors)
  f = datasets.synthetic_blobs(jax.random.key(1), 101, 3, proportions=[1, 2, 3.5], dim=4)
  assert not np.array_equal(d.features, f.features)
  tiny = datasets.synthetic_blobs(key, 1, proportions=[1, 3])
  assert tiny.features.shape == (1, 2)
  np.testing.assert_array_equal(tiny.colors, [0])      # the minority gets ceil(1 / 4) = 1
  with jax.enable_x64(True):
    wide = datasets.synthetic_blobs(key, 101, 3, proportions=[1, 2, 3.5], dim=4)
  assert wide.features.dtype == np.float64


def _neighbour_colours(d, radius):
  """For each point, whether some point within ``radius`` has another colour, and the neighbour count."""
  x = d.features.astype(np.float64)
  dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
  near = dist < radius
  other = near & (d.colors[:, None] != d.colors[None, :])
  return other.any(1), near.sum(1)


def test_blobs_colours_follow_blobs():
  key = jax.random.key(2)
  kw = dict(proportions=[1, 2, 3.5], dim=4, spread=0.01, separation=50.0)
  pure = datasets.synthetic_blobs(key, 101, 3, purity=1.0, **kw)
  mixed_with, near = _neighbour_colours(pure, 1.0)
  assert not mixed_with.any()                     # every blob holds one colour
  assert near.mean() > 5                          # ... and the blobs are tight
  mixed = datasets.synthetic_blobs(key, 101, 3, purity=0.0, **kw)
  mixed_with, _ = _neighbour_colours(mixed, 1.0)
  assert mixed_with.mean() > 0.5                  # colours spread over the blobs


def test_blobs_errors():
  key = jax.random.key(0)
  with pytest.raises(ValueError, match=r"synthetic_blobs: purity must be a finite number in \[0.0, 1.0\], got 1.5"):
    datasets.synthetic_blobs(key, 10, purity=1.5)
  with pytest.raises(ValueError, match="proportions must hold num_colors = 3 weights"):
    datasets.synthetic_blobs(key, 10, 3, proportions=[1, 2])
  with pytest.raises(ValueError, match="proportions must hold positive finite weights"):
    datasets.synthetic_blobs(key, 10, 2, proportions=[1, -1])
  with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
    datasets.synthetic_blobs(key, 0)
  with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
    datasets.synthetic_blobs(7, 10)
