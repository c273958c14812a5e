"""Peak memory of `fairhc_jax.linkage` beside the caller's distance matrix.

One process per (n, algorithm): the distances are computed, the kernel is
compiled and run once on a small matrix (so the numbers are the big call's),
the peak resident memory is reset (``/proc/self/clear_refs``), and the big
call runs. Prints the peak above the process before the call, in ``n x n``
float32 matrices; the compile of the big shape is included (about 0.4 GB),
so the figures are upper bounds for larger n. These figures size the memory
guard of :func:`fairhc_jax.linkage` (``agglomerative.working_matrices``).

Usage:
  python benchmarks/linkage_memory.py --n 16000 --algorithms sequential,rnn
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def child(n: int, algorithm: str) -> None:
  sys.path.insert(0, str(ROOT))
  import jax
  import numpy as np

  import fairhc_jax as fh

  def hwm():
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM"):
          return int(line.split()[1]) * 1024
    return -1

  X = np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32)
  D = jax.block_until_ready(fh.pairwise_distances(X))
  jax.block_until_ready(fh.linkage(D[:64, :64], "average", algorithm=algorithm).parent)
  with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
  base = hwm()
  jax.block_until_ready(fh.linkage(D, "average", algorithm=algorithm).parent)
  m = n * n * 4
  print(f"n = {n:6d}  {algorithm:<10}  before the call {base / m:5.2f} matrices (D included), "
        f"peak {hwm() / m:5.2f}, so {(hwm() - base) / m:5.2f} matrices beside D "
        f"({(hwm() - base) / 2**30:.2f} GiB)", flush=True)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--n", type=int, default=16000)
  ap.add_argument("--algorithms", default="sequential,rnn")
  ap.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
  a = ap.parse_args()
  if a._child:
    child(int(a._child[0]), a._child[1])
    return
  for algo in a.algorithms.split(","):
    subprocess.run([sys.executable, __file__, "--_child", str(a.n), algo], check=True)


if __name__ == "__main__":
  main()
