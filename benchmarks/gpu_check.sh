#!/usr/bin/env bash
# One command for a machine with an accelerator (or, with --small, any CPU):
# the test suite on the default device, then the key benchmarks, each
# writing its table to benchmarks/results/gpu_<name>.txt (the CPU smoke run:
# benchmarks/results/cpu_small_<name>.txt). Budget: under 8 minutes on one
# GPU; every step has its own timeout so one slow step cannot eat the rest.
#
#   bash benchmarks/gpu_check.sh            # on the GPU/TPU machine
#   bash benchmarks/gpu_check.sh --small    # smoke run on CPU (small sizes)
#   bash benchmarks/gpu_check.sh --no-tests # benchmarks only
#
# Tables: linkage, objectives (validation and every public call vs jnp.sum),
# fairness batches (is_fair / check_fairness over colouring batches),
# fairlet pipeline, reductions; plus the device and versions (gpu_machine.txt).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
SMALL=0
TESTS=1
for a in "$@"; do
  case "$a" in
    --small) SMALL=1 ;;
    --no-tests) TESTS=0 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done
OUT=benchmarks/results
if [ "$SMALL" = 1 ]; then P="$OUT/cpu_small_"; else P="$OUT/gpu_"; fi
mkdir -p "$OUT"
start=$(date +%s)
status=0

step() {  # step <name> <timeout seconds> <command...>
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  echo "== $name (limit ${limit}s)"
  { echo "# $*"; timeout "$limit" "$@"; } > "${P}${name}.txt" 2>&1
  local rc=$?
  echo "   rc=$rc in $(( $(date +%s) - t0 ))s -> ${P}${name}.txt"
  tail -n 3 "${P}${name}.txt" | sed 's/^/   | /'
  [ $rc -ne 0 ] && status=1
  return 0
}

python - > "${P}machine.txt" 2>&1 <<'PY'
import jax, platform
print("jax", jax.__version__, "backend", jax.default_backend())
for d in jax.devices():
    print(d, getattr(d, "device_kind", ""))
    try:
        print("  memory_stats:", {k: v for k, v in (d.memory_stats() or {}).items()
                                  if k in ("bytes_limit", "bytes_in_use")})
    except Exception as e:
        print("  memory_stats: n/a", e)
print(platform.platform())
PY
cat "${P}machine.txt"

if [ "$SMALL" = 1 ]; then
  [ "$TESTS" = 1 ] && step tests 300 python -m pytest -q -x -p no:cacheprovider \
      tests/test_checks.py tests/test_memory_guard.py tests/test_distances.py
  step linkage 300 python benchmarks/bench_linkage.py --sizes 1000,2000 --methods average --repeats 2
  step objectives 400 python benchmarks/bench_objectives.py --sizes 1000,2000 --reps 2
  step fairness 300 python benchmarks/bench_fairness.py --n 1000 --batches 1 100 --repeats 2
  step fairlet_hc 400 python benchmarks/bench_fairlet_hc.py --data census-gender --sizes 400 --reps 1 --no-peers
  step reductions 400 python benchmarks/bench_reductions.py --part scale --scale 1024 --repeat 1
else
  [ "$TESTS" = 1 ] && step tests 200 python -m pytest -q -p no:cacheprovider
  step linkage 60 python benchmarks/bench_linkage.py --sizes 1000,4000,16000 --methods average --repeats 2
  step objectives 60 python benchmarks/bench_objectives.py --sizes 1000,4000,16000,32000 --reps 3
  step fairness 40 python benchmarks/bench_fairness.py --n 8000 --batches 1 1000 10000 --repeats 3
  step fairlet_hc 60 python benchmarks/bench_fairlet_hc.py --data census-gender --sizes 3200 12800 --reps 1 --no-peers
  step reductions 40 python benchmarks/bench_reductions.py --part scale --scale 4096 16384 --repeat 2
fi
echo "total $(( $(date +%s) - start ))s; status $status"
exit $status
