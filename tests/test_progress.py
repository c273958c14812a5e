"""The progress display and the chunked local search it drives."""

import io

import jax
import numpy as np
import pytest

from fairhc_jax import fairlets, progress


class FakeTerminal(io.StringIO):
  def isatty(self):
    return True


def test_progress_modes(monkeypatch):
  # A log (not a terminal): True writes whole lines, never a carriage return.
  out = io.StringIO()
  bar = progress.Progress("job", True, stream=out)
  bar.update("3 steps")
  bar.update("5 steps")
  bar.close("done")
  lines = out.getvalue().splitlines()
  assert "\r" not in out.getvalue() and out.getvalue().endswith("\n")
  assert [ln.split(" [")[0] for ln in lines] == ["job: 3 steps", "job: 5 steps", "job: done"]
  # "auto" stays silent in a log, even past its delay.
  quiet = io.StringIO()
  bar = progress.Progress("job", "auto", delay=0, stream=quiet)
  bar.update("x")
  bar.close("y")
  assert quiet.getvalue() == ""
  # On a terminal without tqdm: one line rewritten in place.
  monkeypatch.setattr(progress, "_tqdm", None)
  tty = FakeTerminal()
  bar = progress.Progress("job", "auto", delay=0, stream=tty)
  bar.update("3 steps")
  bar.close()
  assert tty.getvalue().startswith("\rjob: 3 steps [") and tty.getvalue().endswith("\n")
  late = FakeTerminal()
  bar = progress.Progress("job", "auto", delay=3600, stream=late)
  bar.update("x")
  bar.close()
  assert late.getvalue() == ""
  off = FakeTerminal()
  bar = progress.Progress("job", False, stream=off)
  bar.update("x")
  bar.close()
  assert off.getvalue() == ""
  with pytest.raises(ValueError, match=r"f: progress must be one of True, False, 'auto', got 'yes'"):
    progress.check_mode("f", "yes")
  with pytest.raises(ValueError, match="progress must be"):
    progress.check_mode("f", 1)


def test_progress_uses_tqdm_on_a_terminal():
  tqdm = pytest.importorskip("tqdm")
  assert tqdm is not None and progress._tqdm is not None
  tty = FakeTerminal()
  bar = progress.Progress("job", True, stream=tty)
  bar.update("3 steps")
  bar.close("done")
  text = tty.getvalue()
  assert "job: " in text and "done" in text and text.endswith("\n")
  # The text reads "job: 3 steps" (not tqdm's postfix form "job: , 3 steps").
  assert "job: 3 steps" in text and "job: done" in text and ", " not in text
  # The display is tqdm.auto's class: a widget in a Jupyter kernel with
  # ipywidgets, the text bar on a terminal.
  from tqdm.auto import tqdm as auto
  assert progress._tqdm is auto


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
