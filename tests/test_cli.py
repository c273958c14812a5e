"""The ``fairhc`` command: clean messages and exit code 2 for user errors."""

import os
import pathlib
import shutil
import subprocess
import sys

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
  out = run_cli(["fairlets", "--data", "census", "--n", "120"],
                {"FAIRHC_CACHE_DIR": str(cache),
                 "FAIRHC_UCI_BASE_URL": (tmp_path / "mirror").as_uri()})
  assert out.returncode == 0, out.stderr
  assert (cache / "adult.data").is_file()
  assert "census" in out.stdout.lower() and "fair tree" in out.stdout
