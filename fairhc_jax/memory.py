"""A memory guard for the O(n^2) allocations (distance matrices, linkage, pipelines).

Before a public entry point allocates ``n x n`` buffers it calls
:func:`check_memory`, which compares the bytes needed with what the device
has free and raises :class:`MemoryError` (naming ``n``, the bytes needed and
free, and what to do instead) rather than letting XLA fail mid-allocation.
The check reads two numbers and allocates nothing, so a request for 200,000
points fails in microseconds.

Free memory:

* GPU/TPU: ``device.memory_stats()``: ``bytes_limit - bytes_in_use``;
* CPU: ``MemAvailable`` of ``/proc/meminfo``, capped by the cgroup limit
  (``memory.max - memory.current``) where one is set; when neither can be
  read (another OS) the check passes.

Set ``fairhc_jax.memory.ENABLED = False`` (or the environment variable
``FAIRHC_MEMORY_GUARD=0``) to skip the guard, e.g. when swap space or
unified memory makes a larger request reasonable.
"""

from __future__ import annotations

import os
from typing import Optional

import jax
import numpy as np

__all__ = ["ENABLED", "HEADROOM", "check_memory", "free_bytes", "square_bytes"]

ENABLED = os.environ.get("FAIRHC_MEMORY_GUARD", "1") != "0"
"""Whether :func:`check_memory` checks (read at every call)."""

HEADROOM = 0.9
"""Fraction of the free memory a request may use (the rest is left for
XLA's temporaries, the Python process and other programs)."""


def _read_int(path: str) -> Optional[int]:
  try:
    with open(path) as f:
      text = f.read().strip()
  except OSError:
    return None
  if not text or text == "max":
    return None
  try:
    return int(text.split()[0])
  except ValueError:
    return None


def _host_free_bytes() -> Optional[int]:
  free = None
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          free = int(line.split()[1]) * 1024
          break
  except OSError:
    pass
  limit = _read_int("/sys/fs/cgroup/memory.max")
  used = _read_int("/sys/fs/cgroup/memory.current")
  if limit is not None and used is not None:
    cg = max(limit - used, 0)
    free = cg if free is None else min(free, cg)
  return free


def free_bytes(device=None) -> Optional[int]:
  """Bytes free on ``device`` (default: the first default device), or ``None``.

  Args:
    device: a ``jax.Device``; ``None`` means ``jax.devices()[0]``.

  Returns:
    ``bytes_limit - bytes_in_use`` from ``device.memory_stats()`` where the
    backend reports it (GPU, TPU), else the host's available memory (CPU),
    else ``None`` (unknown: the guard then passes).
  """
  if device is None:
    device = jax.devices()[0]
  stats = None
  if device.platform != "cpu":
    try:
      stats = device.memory_stats()
    except Exception:  # pragma: no cover - backends without statistics
      stats = None
  if stats and "bytes_limit" in stats:
    return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
  return _host_free_bytes()


def square_bytes(n: int, dtype=None, count: float = 1) -> int:
  """Bytes of ``count`` ``n x n`` matrices of ``dtype`` (default float32/float64 under x64)."""
  if dtype is None:
    dtype = jax.numpy.result_type(float)
  return int(count * n * n * np.dtype(dtype).itemsize)


def _gb(b: float) -> str:
  return f"{b / 1e9:.2f} GB"


def check_memory(fn: str, n: int, needed: int, *, what: str = "an n x n matrix",
                 devices=None, instead: Optional[str] = None) -> None:
  """Raises ``MemoryError`` when ``needed`` bytes exceed the free memory.

  Args:
    fn: the public function, for the message.
    n: the number of points.
    needed: bytes the call will allocate (per device when ``devices`` are
      several: the caller divides its sharded buffers).
    what: what the bytes are for, for the message.
    devices: the devices the buffers go to (default: the first default
      device); each is checked.
    instead: what to do instead; default: a subsample, a bigger device, the
      blocked/sharded paths.

  Raises:
    MemoryError: ``"<fn>: n = <n> points need <X> GB for <what>, but only
    <Y> GB is free on <device>; <advice>"``.
  """
  if not ENABLED:
    return
  if devices is None:
    devices = [jax.devices()[0]]
  for dev in devices:
    free = free_bytes(dev)
    if free is None:
      continue
    if needed > HEADROOM * free:
      advice = instead or (
          "use a subsample of the points (e.g. a proportional sample of a few "
          "thousand), a device with more memory, or shard the work over several "
          "devices (see 'Many devices' in fairhc_jax/README.md); set "
          "fairhc_jax.memory.ENABLED = False to try anyway")
      raise MemoryError(
          f"{fn}: n = {n} points need {_gb(needed)} for {what}, but only "
          f"{_gb(free)} is free on {dev} (the guard allows {HEADROOM:.0%} of it); "
          f"{advice}")
