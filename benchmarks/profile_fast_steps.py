"""Where the fast local search spends a step: an XLA:CPU thunk profile.

Census (gender, Balance(1, 3)), the first ``n`` points sorted by colour;
runs 3 steps (compile, warm), then profiles 10 more steps with
``jax.profiler`` and prints the 25 costliest thunks by total time.

Usage:
  python benchmarks/profile_fast_steps.py 30162     # whole Census (~7 GiB)
"""

import collections
import glob
import gzip
import json
import os
import pathlib
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fairhc_jax import datasets, fairlets as fl  # noqa: E402
from fairhc_jax.distances import pairwise_distances  # noqa: E402
from fairhc_jax.fairness import Balance  # noqa: E402


def main():
  n = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
  data_dir = os.environ.get("FAIRHC_DATA_DIR", str(ROOT.parent / "shared" / "data" / "uci"))
  ds = datasets.load_census(color="gender", data_dir=data_dir, download=False)
  X = np.asarray(ds.features, np.float32)[:n]
  colors = np.asarray(ds.colors, np.int32)[:n]
  order = np.argsort(colors, kind="stable")
  X, colors = X[order], colors[order]
  D = pairwise_distances(X)
  dec = fl.fairlet_decomposition(jax.random.key(1), colors, Balance(1, 3))
  search = fl.local_search("fast", 0.1)
  c = jnp.asarray(colors)
  st = jax.block_until_ready(search.run(search.init(D, dec), D, c, 3))
  jax.block_until_ready(search.run(st, D, c, 10))  # warm
  trace = tempfile.mkdtemp()
  jax.profiler.start_trace(trace)
  t = time.perf_counter()
  st2 = jax.block_until_ready(search.run(st, D, c, 10))
  dt = time.perf_counter() - t
  jax.profiler.stop_trace()
  print(f"n = {n}: 10 steps in {dt:.2f} s, {int(st2.swaps - st.swaps)} swaps")
  path = sorted(glob.glob(f"{trace}/**/*.trace.json.gz", recursive=True))[-1]
  total, count = collections.Counter(), collections.Counter()
  for e in json.load(gzip.open(path))["traceEvents"]:
    if e.get("ph") == "X" and not e["name"].startswith("$"):
      total[e["name"]] += e.get("dur", 0)
      count[e["name"]] += 1
  for name, d in total.most_common(25):
    print(f"{d / 1e3:10.1f} ms {count[name]:8d}  {name[:90]}")


if __name__ == "__main__":
  main()
