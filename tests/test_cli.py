"""The ``fairhc`` command: clean messages and exit code 2 for user errors."""

import os
import pathlib
import shutil
import subprocess
import sys

import jax
import pytest

from fairhc_jax import cli

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_cli(args, env_extra=None, drop=("FAIRHC_DATA_DIR",)):
  env = {k: v for k, v in os.environ.items() if k not in drop}
  env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
  env.update(env_extra or {})
  return subprocess.run([sys.executable, "-m", "fairhc_jax"] + list(args), env=env,
                        capture_output=True, text=True, timeout=600, cwd=str(REPO))


def test_offline_without_data_says_how_and_exits_2(tmp_path):
  # A fresh machine without network: empty cache, unreachable download URL.
  out = run_cli(["fairlets", "--data", "census", "--n", "50"],
                {"FAIRHC_CACHE_DIR": str(tmp_path / "cache"),
                 "FAIRHC_UCI_BASE_URL": "http://127.0.0.1:9/unreachable"})
  assert out.returncode == 2
  assert "Traceback" not in out.stderr
  assert out.stderr.startswith("fairhc: error: load_census: could not download adult.data")
  assert "--data-dir FOLDER" in out.stderr and "FAIRHC_DATA_DIR" in out.stderr
  assert "SHA-256" in out.stderr


def test_user_errors_are_one_line_messages(capsys, monkeypatch, tmp_path):
  monkeypatch.delenv("FAIRHC_DATA_DIR", raising=False)
  monkeypatch.setenv("FAIRHC_CACHE_DIR", str(tmp_path))
  assert cli.main(["fairlets", "--data", "bank", "--color", "gender"]) == 2
  err = capsys.readouterr().err
  assert err == "fairhc: error: load_bank: color must be one of 'marital', 'age', got 'gender'\n"
  assert cli.main(["fairlets", "--data", "credit_card", "--data-dir", str(tmp_path)]) == 2
  err = capsys.readouterr().err
  assert "UCI_Credit_Card.csv" in err and "never downloaded" in err and "--data-dir" in err
  with pytest.raises(SystemExit) as e:  # argparse: usage line, exit code 2
    cli.main(["demo", "--n", "1"])
  assert e.value.code == 2
  assert "argument --n: expected an integer >= 2, got 1" in capsys.readouterr().err
  # FAIRHC_DEBUG=1 shows the traceback instead.
  monkeypatch.setenv("FAIRHC_DEBUG", "1")
  with pytest.raises(ValueError, match="color must be one of"):
    cli.main(["fairlets", "--data", "bank", "--color", "gender"])


@pytest.mark.realdata
def test_fresh_machine_downloads_with_checksum(tmp_path, uci_dir):
  # The download path of a fresh machine, served from a file:// mirror of UCI's
  # layout (no network here): the file lands in the cache after its checksum.
  mirror = tmp_path / "mirror" / "adult"
  mirror.mkdir(parents=True)
  shutil.copy(uci_dir / "adult.data", mirror / "adult.data")
  cache = tmp_path / "cache"
  out = run_cli(["linkage", "--data", "census", "--n", "120", "--progress", "never"],
                {"FAIRHC_CACHE_DIR": str(cache),
                 "FAIRHC_UCI_BASE_URL": (tmp_path / "mirror").as_uri()})
  assert out.returncode == 0, out.stderr
  assert (cache / "adult.data").is_file()
  assert "census-gender" in out.stdout and "average linkage" in out.stdout


# --------------------------------------------------------------------------- a user's CSV

import csv as _csv
import json

import numpy as np

import fairhc_jax as fh
from fairhc_jax.cli import table as cli_table

N_CSV = 36


def _write(path, header, rows):
  with open(path, "w", newline="") as f:
    w = _csv.writer(f)
    w.writerow(header)
    w.writerows(rows)
  return str(path)


@pytest.fixture(scope="module")
def people(tmp_path_factory):
  """A CSV of 36 points in two blobs with string groups ('women' 12, 'men' 24) and a text column."""
  rng = np.random.default_rng(3)
  X = np.r_[rng.normal(0, 1, (18, 2)), rng.normal(6, 1, (18, 2))]
  groups = np.array(["women"] * 12 + ["men"] * 24)
  rng.shuffle(groups)
  d = tmp_path_factory.mktemp("people")
  rows = [[f"{x:.6f}", f"{y:.6f}", g, f"city{i % 3}"] for i, ((x, y), g) in
          enumerate(zip(X, groups))]
  path = _write(d / "people.csv", ["x", "y", "sex", "city"], rows)
  colors = np.array([["men", "women"].index(g) for g in groups])   # sorted labels
  return path, X, colors, d


def _oracle_violations(parent, colors, b, r, blocks=None):
  """Clusters breaking balance >= b/r, counted with NumPy from the parent array alone."""
  parent = np.asarray(parent)
  n = (parent.shape[0] + 1) // 2
  members = {i: {i} for i in range(n)}
  for v in range(n, parent.shape[0]):
    members[v] = set()
  for i in range(parent.shape[0]):       # children have smaller indices than parents
    p = parent[i]
    if p >= 0:
      members[p] |= members[i]
  bad = checked = 0
  for v in range(n, parent.shape[0]):
    if parent[v] == -2 or len(members[v]) < 2:
      continue
    m = np.fromiter(members[v], int)
    if blocks is not None:
      whole = all((np.asarray(blocks) == f).sum() == (np.asarray(blocks)[m] == f).sum()
                  for f in np.unique(np.asarray(blocks)[m]))
      if not whole:
        continue
    checked += 1
    cnt = np.bincount(colors[m], minlength=2)
    if r * cnt.min() < b * cnt.max():
      bad += 1
  return checked, bad


def test_fairlets_on_a_csv_writes_a_valid_tree_and_an_honest_report(people, capsys):
  from scipy.cluster.hierarchy import is_valid_linkage, leaves_list
  path, X, colors, d = people
  out = d / "fair"
  assert cli.main(["fairlets", "--csv", path, "--group", "sex", "--features", "x,y",
                   "--constraint", "balance:1:3", "--out", str(out), "--plot",
                   "--progress", "never"]) == 0
  assert "fair tree" in capsys.readouterr().out
  assert sorted(p.name for p in out.iterdir()) == ["dendrogram.png", "report.json", "tree.npz"]
  z = np.load(out / "tree.npz")
  Z = z["linkage"]
  assert Z.shape == (N_CSV - 1, 4) and is_valid_linkage(Z, throw=True)
  assert sorted(leaves_list(Z).tolist()) == list(range(N_CSV))
  np.testing.assert_array_equal(z["rows"], np.arange(N_CSV))
  np.testing.assert_array_equal(z["colors"], colors)
  rep = json.loads((out / "report.json").read_text())
  assert rep["groups"]["labels"] == ["men", "women"]
  assert rep["groups"]["counts"] == [24, 12]
  assert rep["input"]["features"] == ["x", "y"] and rep["input"]["group"] == "sex"
  assert rep["parameters"]["start"] == "random"
  assert set(rep["phase_seconds"]) >= {"read", "distances", "fairlets + tree", "write"}
  assert rep["versions"]["jax"] and rep["versions"]["fairhc_jax"] == fh.__version__
  # The report's fairness is fairness_report's, and an independent count agrees.
  h = fh.from_parent(z["parent"])
  scope = fh.ClusterScope(blocks=z["fairlets"])
  fa = rep["fairness"]
  assert fa["report"] == fh.fairness_report(h, colors, fh.Balance(1, 3), scope=scope)
  checked, bad = _oracle_violations(z["parent"], colors, 1, 3, blocks=z["fairlets"])
  assert (fa["checked_clusters"], fa["violating_clusters"]) == (checked, bad) and bad == 0
  assert fa["is_fair"] is True
  checked, bad = _oracle_violations(z["parent"], colors, 1, 3)
  assert fa["all_clusters"] == {"checked_clusters": checked, "violating_clusters": bad}
  # audit reads the tree back with the CSV: same verdicts, plus P(fair) under random groups.
  assert cli.main(["audit", "--tree", str(out / "tree.npz"), "--csv", path, "--group", "sex",
                   "--features", "x,y", "--probs", "observed", "--samples", "64",
                   "--scope", "6", "--out", str(d / "audit"), "--progress", "never"]) == 0
  printed = capsys.readouterr().out
  arep = json.loads((d / "audit" / "report.json").read_text())
  assert arep["fairness"]["report"] == fh.fairness_report(h, colors, fh.Balance(1, 3), scope=6)
  est = fh.fairness_probability(h, fh.fairness.observed_shares(colors), fh.Balance(1, 3),
                                key=jax.random.key(0), num_samples=64, scope=6)
  assert arep["fairness_probability"]["estimate"] == pytest.approx(float(est.estimate))
  assert "P(fair)" in printed


def test_linkage_on_a_csv(people, capsys):
  from scipy.cluster.hierarchy import is_valid_linkage
  path, X, colors, d = people
  assert cli.main(["linkage", "--csv", path, "--group", "sex", "--features", "x,y",
                   "--constraint", "balance:1:4", "--out", str(d / "avg"),
                   "--progress", "never"]) == 0
  capsys.readouterr()
  z = np.load(d / "avg" / "tree.npz")
  assert is_valid_linkage(z["linkage"]) and bool(z["has_height"])
  from scipy.cluster.hierarchy import linkage as scipy_linkage
  Zs = scipy_linkage(X, method="average")
  np.testing.assert_allclose(np.sort(z["linkage"][:, 2]), np.sort(Zs[:, 2]), rtol=1e-4)
  rep = json.loads((d / "avg" / "report.json").read_text())
  checked, bad = _oracle_violations(z["parent"], colors, 1, 4)
  assert (rep["fairness"]["checked_clusters"], rep["fairness"]["violating_clusters"]) == (
      checked, bad)


@pytest.mark.slow
def test_reduce_on_a_csv(people, capsys):
  from scipy.cluster.hierarchy import is_valid_linkage
  path, X, colors, d = people
  assert cli.main(["reduce", "--csv", path, "--group", "sex", "--features", "x,y",
                   "--reduction", "fair_hc", "--eps", "1/8", "--num-sorted", "4",
                   "--num-folds", "2", "--out", str(d / "knittel"), "--progress", "never"]) == 0
  capsys.readouterr()
  for sub in ("knittel",):
    z = np.load(d / sub / "tree.npz")
    assert is_valid_linkage(z["linkage"]) and z["linkage"].shape == (N_CSV - 1, 4)
  rep = json.loads((d / "knittel" / "report.json").read_text())
  assert rep["fairness"]["is_fair"] is True      # fair_hc's own guarantee on its fold roots
  assert not bool(np.load(d / "knittel" / "tree.npz")["has_height"])


@pytest.mark.slow
def test_fhac_and_fphac_on_a_csv(people, capsys):
  from scipy.cluster.hierarchy import is_valid_linkage
  path, X, colors, d = people
  assert cli.main(["fhac", "--csv", path, "--group", "sex", "--k", "3", "--budget", "12",
                   "--batch", "4", "--out", str(d / "fhac"), "--progress", "never"]) == 0
  assert cli.main(["fphac", "--csv", path, "--group", "sex", "--k", "3",
                   "--out", str(d / "fphac"), "--progress", "never"]) == 0
  for sub in ("fhac", "fphac"):
    z = np.load(d / sub / "tree.npz")
    assert is_valid_linkage(z["linkage"])
    rep = json.loads((d / sub / "report.json").read_text())
    h = fh.from_parent(z["parent"])
    assert rep["fairness"]["fc"]["value"] == pytest.approx(float(fh.fairness_cost(h, colors, 3)))
  rep = json.loads((d / "fphac" / "report.json").read_text())
  # Theorem 4.1: FP-HAC never raises FC at level k.
  assert rep["fairness"]["fc"]["value"] <= rep["fairness"]["input_tree"]["fc"]["value"] + 1e-6


def _err(capsys, argv):
  code = cli.main(argv)
  err = capsys.readouterr().err
  assert code == 2, err
  assert err.startswith("fairhc: error: ") and "Traceback" not in err
  return err


def test_bad_tables_name_the_file_column_and_rows(tmp_path, capsys, people):
  good = people[0]
  base = ["linkage", "--progress", "never", "--group", "g"]
  p = _write(tmp_path / "a.csv", ["x", "y", "g"], [["1", "2", "a"], ["3", "4", "b"]])
  err = _err(capsys, base + ["--csv", p, "--features", "x,z"])
  assert p in err and "'z'" in err and "columns: x, y, g" in err
  err = _err(capsys, ["linkage", "--csv", p, "--group", "sex"])
  assert "--group column 'sex' is not in the file" in err
  p = _write(tmp_path / "b.csv", ["x", "y", "g"], [["1", "2", "a"], ["3", "tall", "b"],
                                                    ["5", "6", "a"]])
  err = _err(capsys, base + ["--csv", p, "--features", "x,y"])
  assert "feature column 'y' is not numeric" in err and "row 2" in err and "'tall'" in err
  p = _write(tmp_path / "c.csv", ["x", "y", "g"], [["1", "2", "a"], ["", "4", "b"],
                                                    ["5", "6", "a"], ["nan", "1", "b"]])
  err = _err(capsys, base + ["--csv", p])
  assert "feature column 'x' has empty or NaN cells in rows 2, 4" in err
  p = _write(tmp_path / "d.csv", ["x", "g"], [["1", "a"], ["2", ""]])
  assert "'g' has empty cells in row 2" in _err(capsys, base + ["--csv", p])
  p = _write(tmp_path / "e.csv", ["x", "g"], [["1", "a"], ["2", "a"]])
  err = _err(capsys, base + ["--csv", p])
  assert "--group column 'g' has only one label ('a')" in err and p in err
  p = _write(tmp_path / "f.csv", ["x", "g"], [["1", "0"], ["2", "1"]])
  err = _err(capsys, base + ["--csv", p, "--features", "x,g"])
  assert "--group column 'g' is also in --features" in err
  err = _err(capsys, base + ["--csv", str(tmp_path / "missing.csv")])
  assert "missing.csv: no such file" in err
  p = _write(tmp_path / "g.csv", ["x", "g"], [])
  assert "no data rows" in _err(capsys, base + ["--csv", p])
  # --out that is a file, --plot without --out, a bad constraint.
  f = tmp_path / "afile"
  f.write_text("x")
  err = _err(capsys, ["linkage", "--csv", good, "--group", "sex", "--out", str(f)])
  assert f"--out {f}: is a file" in err
  assert "--plot" in _err(capsys, ["linkage", "--csv", good, "--group", "sex", "--plot"])
  err = _err(capsys, ["fairlets", "--csv", good, "--group", "sex", "--constraint", "fair"])
  assert "--constraint must be balance:B:R" in err and "'fair'" in err
  assert "--csv" in _err(capsys, ["linkage"])      # no input at all


def test_audit_rejects_a_tree_of_another_size(tmp_path, capsys, people):
  path = people[0]
  parent = np.array([3, 3, 4, 4, -1], np.int32)          # a tree over 3 leaves
  np.savez(tmp_path / "tree.npz", parent=parent)
  err = _err(capsys, ["audit", "--tree", str(tmp_path / "tree.npz"), "--csv", path,
                      "--group", "sex"])
  assert "has 3 leaves but --csv" in err and f"{N_CSV} rows" in err
  (tmp_path / "junk.npz").write_text("not a zip")
  assert "junk.npz: not a .npz file" in _err(
      capsys, ["audit", "--tree", str(tmp_path / "junk.npz"), "--csv", path, "--group", "sex"])
  np.savez(tmp_path / "noparent.npz", x=np.zeros(3))
  assert "has no 'parent' array" in _err(
      capsys, ["audit", "--tree", str(tmp_path / "noparent.npz"), "--csv", path,
               "--group", "sex"])


def test_groups_are_the_sorted_labels(tmp_path):
  p = _write(tmp_path / "a.csv", ["v", "g", "note"],
             [["1", "10", "x"], ["2", "2", "y"], ["3", "10", "z"], ["4", "9", "w"]])
  t = cli_table.read_table(p, None, "g")
  assert t.labels == [2, 9, 10]                      # numeric order, not "10" < "2"
  np.testing.assert_array_equal(t.colors, [2, 0, 2, 1])
  assert t.feature_names == ["v"]                    # the text column is not a feature
  p = _write(tmp_path / "b.csv", ["v", "g"], [["1", "b"], ["2", "A"], ["3", "a"]])
  assert cli_table.read_table(p, None, "g").labels == ["A", "a", "b"]
  p = _write(tmp_path / "c.csv", ["v", "g", "p0", "p1"],
             [["1", "a", "0.2", "0.8"], ["2", "b", "0.5", "0.6"]])
  with pytest.raises(cli_table.TableError, match="must sum to 1 in every row; not so in row 2"):
    cli_table.read_table(p, None, "g", ["p0", "p1"])


def test_help_has_an_example_per_subcommand(capsys):
  for sub in ("linkage", "fairlets", "reduce", "fhac", "fphac", "audit", "demo"):
    with pytest.raises(SystemExit) as e:
      cli.main([sub, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "example:" in text and f"fairhc {sub}" in text, sub
  with pytest.raises(SystemExit) as e:
    cli.main(["fairlets", "--schedule", "slow"])
  assert e.value.code == 2
  assert "argument --schedule: invalid choice: 'slow'" in capsys.readouterr().err


def test_fairlets_start_option(capsys):
  p = cli.build_parser()
  args = p.parse_args(["fairlets", "--csv", "p.csv", "--group", "sex", "--start", "projection"])
  assert args.start == "projection"
  assert p.parse_args(["fairlets", "--csv", "p.csv", "--group", "sex"]).start == "random"
  with pytest.raises(SystemExit):
    p.parse_args(["fairlets", "--csv", "p.csv", "--group", "sex", "--start", "pca"])
  assert "invalid choice: 'pca'" in capsys.readouterr().err
