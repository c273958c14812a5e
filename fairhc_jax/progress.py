"""A one-line progress display for long-running loops.

Loops that can run for more than a few seconds (the fairlet local search on
tens of thousands of points, for example) run their jitted body in chunks
and report between chunks. ``progress="auto"`` (the library default) stays
silent for short runs and starts a display once a run has lasted ``delay``
seconds, **only on a terminal or in a notebook**: piped logs and CI output
get nothing. ``True`` always reports (a live display on a terminal or in a
notebook, plain lines without carriage returns elsewhere); ``False`` never.

The live display is ``tqdm.auto`` when tqdm is installed (``pip install
"fairhc_jax[progress]"``): a text bar on a terminal, a widget in Jupyter and
Colab when ipywidgets is installed (the ``notebook`` extra; without it
tqdm falls back to its text bar, with a ``TqdmWarning``); without tqdm, a
line rewritten in place with ``"\\r"`` on the terminal.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO, Union

try:  # optional extra "progress"
  from tqdm.auto import tqdm as _tqdm
except ImportError:  # pragma: no cover - depends on the environment
  _tqdm = None

ProgressMode = Union[bool, str]
MODES = (True, False, "auto")


def check_mode(fn: str, progress) -> ProgressMode:
  """Validates a ``progress`` argument."""
  if progress not in MODES or (progress == 1 and progress is not True) or (
      progress == 0 and progress is not False):
    raise ValueError(f"{fn}: progress must be one of True, False, 'auto', got {progress!r}")
  return progress


def _in_notebook() -> bool:
  """True inside a Jupyter kernel (where stderr is not a tty but is shown live)."""
  ipython = sys.modules.get("IPython")
  if ipython is None:
    return False
  try:
    shell = ipython.get_ipython()
  except Exception:  # pragma: no cover - exotic IPython setups
    return False
  return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def is_interactive(stream: TextIO) -> bool:
  """Whether ``stream`` is shown live: a terminal, or stdout/stderr in a notebook."""
  isatty = getattr(stream, "isatty", None)
  try:
    if callable(isatty) and isatty():
      return True
  except ValueError:  # closed stream
    return False
  return stream in (sys.stderr, sys.stdout) and _in_notebook()


class Progress:
  """Reports ``"<desc>: <text> [<elapsed> s]"`` between chunks of a loop.

  Args:
    desc: what is running, e.g. ``"local search"``.
    mode: ``True``, ``False`` or ``"auto"`` (show once ``delay`` s have
      passed, and only on a terminal or in a notebook).
    delay: seconds before ``"auto"`` starts showing.
    stream: where to write (default ``sys.stderr``).
  """

  def __init__(self, desc: str, mode: ProgressMode = "auto", delay: float = 2.0,
               stream: Optional[TextIO] = None):
    self.desc = desc
    self.mode = mode
    self.delay = delay
    self.stream = stream if stream is not None else sys.stderr
    self.start = time.perf_counter()
    self.shown = False
    self.live = is_interactive(self.stream)
    self._bar = None

  @property
  def elapsed(self) -> float:
    return time.perf_counter() - self.start

  def _line(self, text: str) -> str:
    return f"{self.desc}: {text} [{self.elapsed:.1f} s]"

  def update(self, text: str) -> None:
    if self.mode is False:
      return
    if self.mode == "auto" and (not self.live or self.elapsed < self.delay):
      return
    self.shown = True
    if not self.live:  # a log: whole lines, no carriage returns
      self.stream.write(self._line(text) + "\n")
      self.stream.flush()
      return
    if _tqdm is not None:
      if self._bar is None:
        self._bar = _tqdm(total=None, desc=self.desc, file=self.stream, leave=True,
                          bar_format="{desc} [{elapsed}]")
      # The text goes in the description: tqdm writes a postfix as ", text".
      self._bar.set_description_str(f"{self.desc}: {text}", refresh=True)
      return
    self.stream.write("\r" + self._line(text))
    self.stream.flush()

  def close(self, text: Optional[str] = None) -> None:
    """Writes the final state (if anything was shown) and ends the line."""
    if not self.shown:
      return
    if self._bar is not None:
      if text is not None:
        self._bar.set_description_str(f"{self.desc}: {text}", refresh=True)
      self._bar.close()
      self._bar = None
      return
    if not self.live:
      if text is not None:
        self.stream.write(self._line(text) + "\n")
        self.stream.flush()
      return
    if text is not None:
      self.stream.write("\r" + self._line(text))
    self.stream.write("\n")
    self.stream.flush()
