"""Sharded paths on 8 simulated CPU devices, in a subprocess.

The default suite keeps one device, so the checks run in a child process
started with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``
(``tests/_sharding_worker.py``): results equal to one device (and to NumPy
oracles), outputs sharded as documented. The quick run (default suite)
covers row-sharded distances, colour counts and ``is_fair``; the full run
(``--runslow``) adds ``check_fairness``, ``fairness_probability`` and the
objectives on a row-sharded matrix.
"""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "_sharding_worker.py"


def _run(*args):
  env = dict(os.environ)
  env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
  # The run's own flags (the test run's -O0, a user's) plus 8 host devices.
  env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
  env["JAX_PLATFORMS"] = "cpu"
  out = subprocess.run([sys.executable, str(WORKER), *args], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stdout + out.stderr
  assert "ALL OK" in out.stdout, out.stdout + out.stderr
  return out.stdout


def test_sharded_counts_verdicts_and_distances_equal_one_device():
  stdout = _run("--quick")
  for name in ("pairwise_distances", "color_counts", "is_fair"):
    assert f"OK {name}" in stdout


@pytest.mark.slow
def test_all_sharded_paths_equal_one_device():
  stdout = _run()
  for name in ("check_fairness", "fairness_probability", "tree_objectives", "best_swaps"):
    assert f"OK {name}" in stdout


def test_default_suite_keeps_one_device():
  import jax
  assert len(jax.devices()) == 1
