#!/usr/bin/env bash
# The main job (./run.sh bench): builds the servers and the harness, runs //bench:echo_compare (every
# server, interleaved rounds), the runtime microbenchmarks, and the coordination-primitives comparison
# (bench/sync_compare.sh: //sync against Tokio, Asio and a lock-free-queue limit), and writes under
# results/ (or $SURGE_RESULTS_DIR):
#   echo_compare.json, runtime_bench.json   Google Benchmark's JSON
#   sync_compare.json, sync_compare.md      every round of the sync comparison, and its table
#   file_compare.json, file_compare.md      every round of the file comparison (bench/file_compare.sh), and its table
#   http_compare.json, http_compare.md      every round of the HTTP comparison against nginx (bench/http_compare.sh), and its tables
#   report.md, report.png                   the tables (also printed) and the plot, by bench/report.py
#
#   bench/compare.sh [--quick] [--full] [--workloads=echo,stream,idle,udp,sync,files,http] [echo_compare flags, e.g.
#                    --rounds=7 --servers=surge_io_uring,raw_uring]
# --workloads selects (default: all seven); `sync` is the coordination comparison, `files` the file-read
# comparison (bench/file_compare.sh: surge, a pthread pool, libuv and fio), `http` the HTTP/1.1 comparison
# against nginx (bench/http_compare.sh: surge's http_server on io_uring and epoll and nginx-light, under
# http_load and wrk; about 2 minutes by default, 4 rounds of 1 s windows), the others are echo_compare's
# (`udp`: UDP echo, about 70 s by default, 5 rounds of 0.6 s cells). --full: the sync comparison with its own default of 5 rounds (3 otherwise, to keep the
# default run under 15 minutes). --quick: one short round of a few cells, to check that everything builds
# and runs; fails if any cell failed (CI uses it).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${SURGE_RESULTS_DIR:-results}"
mkdir -p "$out"

compare_flags=()
report_flags=()
sync_flags=(--rounds=3)
files_flags=()
http_flags=()
runtime_flags=(--benchmark_repetitions=5 --benchmark_report_aggregates_only=true --benchmark_min_time=0.2)
workloads="echo,stream,idle,udp,sync,files,http"
for argument in "$@"; do
  case "$argument" in
    --quick)
      compare_flags+=(--rounds=1 --window_ms=200 --warmup_ms=50 --connections=1,64 --sizes=64
                      --stream_sizes=1048576 --idle_connections=1000)
      runtime_flags=(--benchmark_repetitions=1 --benchmark_min_time=0.01)
      report_flags=(--strict)
      sync_flags=(--quick)
      files_flags=(--quick)
      http_flags=(--quick)
      ;;
    --full) sync_flags=() ;;
    --workloads=*) workloads="${argument#--workloads=}" ;;
    *) compare_flags+=("$argument") ;;
  esac
done
# echo_compare's share of --workloads (everything but sync, files and http), and whether those are asked for.
echo_workloads="$(tr ',' '\n' <<<"$workloads" | grep -vx -e sync -e files -e http | paste -sd, - || true)"
run_sync=false
tr ',' '\n' <<<"$workloads" | grep -qx sync && run_sync=true
run_files=false
tr ',' '\n' <<<"$workloads" | grep -qx files && run_files=true
run_http=false
tr ',' '\n' <<<"$workloads" | grep -qx http && run_http=true

report_inputs=()
if [ -n "$echo_workloads" ]; then
  tokio_server="$(bench/build_tokio_peer.sh tokio_echo_server)"
  bazel build //bench:echo_compare //bench:runtime_bench
  bazel-bin/bench/echo_compare --tokio_server="$tokio_server" --workloads="$echo_workloads" "${compare_flags[@]}" \
    --benchmark_out="$out/echo_compare.json" --benchmark_out_format=json
  bazel-bin/bench/runtime_bench "${runtime_flags[@]}" \
    --benchmark_filter='BM_SpawnJoin|BM_Yield|BM_TimerInsertCancel|BM_SleepCancelled|BM_CrossWorkerRoundTrip' \
    --benchmark_out="$out/runtime_bench.json" --benchmark_out_format=json
  report_inputs+=(--compare "$out/echo_compare.json" --runtime "$out/runtime_bench.json")
fi
if $run_sync; then
  echo
  echo "== coordination primitives (bench/sync_compare.sh ${sync_flags[*]}) =="
  bench/sync_compare.sh "${sync_flags[@]}"
  report_inputs+=(--sync "$out/sync_compare.md")
fi
if $run_files; then
  echo
  echo "== file reads (bench/file_compare.sh ${files_flags[*]}) =="
  bench/file_compare.sh "${files_flags[@]}"
  report_inputs+=(--files "$out/file_compare.md")
fi
if $run_http; then
  echo
  echo "== HTTP/1.1 against nginx (bench/http_compare.sh ${http_flags[*]}) =="
  bench/http_compare.sh "${http_flags[@]}"
  report_inputs+=(--http "$out/http_compare.md")
fi
echo
# Debian's python3 (with python3-matplotlib), not whatever python3 comes first on PATH.
/usr/bin/python3 bench/report.py "${report_inputs[@]}" \
  --markdown "$out/report.md" --plot "$out/report.png" "${report_flags[@]}"
