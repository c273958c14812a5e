"""The progress display and the chunked local search it drives."""

import io

import jax
import numpy as np
import pytest

from fairhc_jax import fairlets, progress


def test_progress_modes():
  out = io.StringIO()
  bar = progress.Progress("job", True, stream=out)
  bar.update("3 steps")
  bar.close()
  assert out.getvalue().startswith("\rjob: 3 steps [") and out.getvalue().endswith("\n")
  quiet = io.StringIO()
  bar = progress.Progress("job", "auto", delay=3600, stream=quiet)
  bar.update("x")
  bar.close()
  assert quiet.getvalue() == ""
  off = io.StringIO()
  bar = progress.Progress("job", False, stream=off)
  bar.update("x")
  bar.close()
  assert off.getvalue() == ""
  with pytest.raises(ValueError, match=r"f: progress must be one of True, False, 'auto', got 'yes'"):
    progress.check_mode("f", "yes")
  with pytest.raises(ValueError, match="progress must be"):
    progress.check_mode("f", 1)


@pytest.mark.parametrize("schedule", ["fast", "random"])
def test_chunked_search_equals_one_call(schedule, capsys):
  rng = np.random.default_rng(0)
  n = 60
  x = rng.normal(size=(n, 2)).astype(np.float32)
  d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)).astype(np.float32)
  colors = np.r_[np.zeros(20, int), np.ones(40, int)]
  rng.shuffle(colors)
  dec = fairlets.balance_decomposition(jax.random.key(0), colors, (1, 2))
  one = fairlets.run_local_search(jax.random.key(1), d, colors, dec, schedule=schedule,
                                  progress=False)
  chunked = fairlets.run_local_search(jax.random.key(1), d, colors, dec,
                                      schedule=schedule, progress=True)
  np.testing.assert_array_equal(np.asarray(one.fairlet_of), np.asarray(chunked.fairlet_of))
  assert int(one.swaps) == int(chunked.swaps) > 0
  assert int(one.steps) == int(chunked.steps)
  assert "local search" in capsys.readouterr().err
