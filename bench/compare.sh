#!/usr/bin/env bash
# The main job (./run.sh bench): builds the servers and the harness, runs //bench:echo_compare (every
# server, interleaved rounds) and the runtime microbenchmarks, and writes under results/ (or
# $SURGE_RESULTS_DIR):
#   echo_compare.json, runtime_bench.json   Google Benchmark's JSON
#   report.md, report.png                   the table (also printed) and the plot, by bench/report.py
#
#   bench/compare.sh [--quick] [echo_compare flags, e.g. --rounds=7 --servers=surge_io_uring,raw_uring]
# --quick: one short round of a few cells, to check that everything builds and runs; fails if any cell
# failed (CI uses it).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${SURGE_RESULTS_DIR:-results}"
mkdir -p "$out"

compare_flags=()
report_flags=()
runtime_flags=(--benchmark_repetitions=5 --benchmark_report_aggregates_only=true --benchmark_min_time=0.2)
for argument in "$@"; do
  if [ "$argument" = "--quick" ]; then
    compare_flags+=(--rounds=1 --window_ms=200 --warmup_ms=50 --connections=1,64 --sizes=64
                    --stream_sizes=1048576 --idle_connections=1000)
    runtime_flags=(--benchmark_repetitions=1 --benchmark_min_time=0.01)
    report_flags=(--strict)
  else
    compare_flags+=("$argument")
  fi
done

tokio_server="$(bench/build_tokio_server.sh)"
bazel build //bench:echo_compare //bench:runtime_bench
bazel-bin/bench/echo_compare --tokio_server="$tokio_server" "${compare_flags[@]}" \
  --benchmark_out="$out/echo_compare.json" --benchmark_out_format=json
bazel-bin/bench/runtime_bench "${runtime_flags[@]}" \
  --benchmark_filter='BM_SpawnJoin|BM_Yield|BM_TimerInsertCancel|BM_SleepCancelled|BM_CrossWorkerRoundTrip' \
  --benchmark_out="$out/runtime_bench.json" --benchmark_out_format=json
echo
# Debian's python3 (with python3-matplotlib), not whatever python3 comes first on PATH.
/usr/bin/python3 bench/report.py --compare "$out/echo_compare.json" --runtime "$out/runtime_bench.json" \
  --markdown "$out/report.md" --plot "$out/report.png" "${report_flags[@]}"
