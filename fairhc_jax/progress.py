"""A one-line progress display for long-running loops (no dependencies).

Loops that can run for more than a few seconds (the fairlet local search on
tens of thousands of points, for example) run their jitted body in chunks
and report between chunks. ``progress="auto"`` (the library default) stays
silent for short runs and starts a line on ``stderr`` once a run has lasted
``delay`` seconds; ``True`` always shows it, ``False`` never.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO, Union

ProgressMode = Union[bool, str]
MODES = (True, False, "auto")


def check_mode(fn: str, progress) -> ProgressMode:
  """Validates a ``progress`` argument."""
  if progress not in MODES or (progress == 1 and progress is not True) or (
      progress == 0 and progress is not False):
    raise ValueError(f"{fn}: progress must be one of True, False, 'auto', got {progress!r}")
  return progress


class Progress:
  """Writes ``"\\r<desc>: <text> [<elapsed> s]"`` to a stream, in place.

  Args:
    desc: what is running, e.g. ``"local search"``.
    mode: ``True``, ``False`` or ``"auto"`` (show once ``delay`` s have passed).
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

  @property
  def elapsed(self) -> float:
    return time.perf_counter() - self.start

  def update(self, text: str) -> None:
    if self.mode is False:
      return
    if self.mode == "auto" and self.elapsed < self.delay:
      return
    self.stream.write(f"\r{self.desc}: {text} [{self.elapsed:.1f} s]")
    self.stream.flush()
    self.shown = True

  def close(self, text: Optional[str] = None) -> None:
    """Writes the final line (if anything was shown) and a newline."""
    if self.shown:
      if text is not None:
        self.stream.write(f"\r{self.desc}: {text} [{self.elapsed:.1f} s]")
      self.stream.write("\n")
      self.stream.flush()
