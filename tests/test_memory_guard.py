"""The memory guard (fairhc_jax.memory): O(n^2) requests beyond free memory fail fast."""

import time

import jax
import numpy as np
import pytest

from fairhc_jax import memory
from fairhc_jax.distances import pairwise_distances, similarity


def test_free_bytes_reads_a_positive_number():
  free = memory.free_bytes()
  assert free is None or free > 0
  # CPU: MemAvailable of /proc/meminfo (an independent read of the same file).
  with open("/proc/meminfo") as f:
    avail = next(int(l.split()[1]) * 1024 for l in f if l.startswith("MemAvailable:"))
  assert free <= avail * 1.5 + 2**30


def test_square_bytes():
  assert memory.square_bytes(1000, np.float32) == 4_000_000
  assert memory.square_bytes(10, np.float64, count=2) == 1600


def test_two_hundred_thousand_points_fail_fast_naming_everything():
  x = np.zeros((200_000, 4), np.float32)
  t = time.perf_counter()
  with pytest.raises(MemoryError) as err:
    pairwise_distances(x)
  elapsed = time.perf_counter() - t
  msg = str(err.value)
  assert msg.startswith("pairwise_distances: n = 200000 points need 160.00 GB for the "
                        "200000 x 200000 float32 distance matrix, but only ")
  assert "GB is free on" in msg and "subsample" in msg and "shard" in msg
  assert elapsed < 5  # the issue asks for < 1 s; generous on a loaded CI machine


def test_guard_uses_the_reported_free_memory(monkeypatch):
  monkeypatch.setattr(memory, "free_bytes", lambda device=None: 10_000)
  with pytest.raises(MemoryError, match=r"similarity: n = 60 points need 0.00 GB"):
    similarity(np.zeros((60, 60), np.float32))
  # Within the headroom: passes.
  memory.check_memory("f", 10, 8_999)
  with pytest.raises(MemoryError, match=r"f: n = 10 points"):
    memory.check_memory("f", 10, 9_001)
  monkeypatch.setattr(memory, "ENABLED", False)
  memory.check_memory("f", 10, 10**15)  # disabled: no error


def test_unknown_free_memory_passes(monkeypatch):
  monkeypatch.setattr(memory, "free_bytes", lambda device=None: None)
  memory.check_memory("f", 10, 10**15)


def test_device_statistics_are_used_when_reported():
  class Dev:
    platform = "gpu"

    def memory_stats(self):
      return {"bytes_limit": 1000, "bytes_in_use": 400}

    def __str__(self):
      return "gpu:0"

  assert memory.free_bytes(Dev()) == 600
  with pytest.raises(MemoryError, match=r"free on gpu:0"):
    memory.check_memory("f", 5, 541, devices=[Dev()])
  memory.check_memory("f", 5, 539, devices=[Dev()])


def test_linkage_is_guarded_before_its_kernel(monkeypatch):
  # Free memory below the working set (1.25 matrices of 60 x 60 float32 plus
  # the fixed 512 MiB): linkage refuses, naming it.
  from fairhc_jax.agglomerative import linkage
  monkeypatch.setattr(memory, "free_bytes", lambda device=None: 20_000)
  D = np.ones((60, 60), np.float32) - np.eye(60, dtype=np.float32)
  with pytest.raises(MemoryError, match=r"^linkage: n = 60 points need 0.54 GB for the linkage's working copies"):
    linkage(D)


def test_linkage_guard_asks_for_each_kernels_measured_working_set(monkeypatch):
  # One 60 x 60 float32 matrix is 14,400 bytes; the guard allows 90% of the free
  # memory and adds a fixed 512 MiB. Sequential needs 1.25 matrices (18,000 B),
  # rounds 1.75 (25,200 B); a donated D saves one matrix.
  import jax.numpy as jnp

  from fairhc_jax.agglomerative import WORKING_OVERHEAD_BYTES, linkage, working_matrices
  assert (working_matrices("sequential", False), working_matrices("rnn", False)) == (1.25, 1.75)
  assert (working_matrices("sequential", True), working_matrices("rnn", True)) == (0.25, 0.75)
  free = lambda usable: (lambda device=None: (WORKING_OVERHEAD_BYTES + usable) / 0.9)
  monkeypatch.setattr(memory, "free_bytes", free(20_000))
  D = np.ones((60, 60), np.float32) - np.eye(60, dtype=np.float32)
  assert linkage(D, algorithm="sequential").num_leaves == 60
  with pytest.raises(MemoryError, match=r"^linkage: n = 60 points need 0.54 GB"):
    linkage(D, algorithm="rnn")
  monkeypatch.setattr(memory, "free_bytes", free(5_000))
  with pytest.raises(MemoryError):
    linkage(D, algorithm="sequential")
  assert linkage(jnp.asarray(D), algorithm="sequential", overwrite=True).num_leaves == 60
