#!/usr/bin/env bash
# File reads side by side (the `files` workload of ./run.sh bench): builds surge's rows (//bench:file_bench,
# File::read_at on io_uring and on epoll's blocking pool) and the peers (//bench/peers: a plain pthread
# pool doing pread, libuv's uv_fs_read) and runs bench/file_compare.py over them and fio (psync and
# io_uring engines, the practical limits): random 4 KiB reads of one 1 GiB file (created once under
# results/cache/, reused), queue depth 1 and 32, page cache and O_DIRECT, all pinned to CPU 0. Prints the
# Markdown table and writes, under results/ (or $SURGE_RESULTS_DIR), file_compare.json (every round) and
# file_compare.md. About 2 minutes by default (3 rounds of 1 s per cell).
#
#   bench/file_compare.sh [--quick] [file_compare.py flags, e.g. --rounds=5 --workloads=cached_qd1]
# --quick: one round of short runs (about 30 s with the file in place), to check that everything builds
# and runs; fails if any run failed.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${SURGE_RESULTS_DIR:-results}"
mkdir -p "$out/cache"

driver_flags=()
for argument in "$@"; do
  if [ "$argument" = "--quick" ]; then
    driver_flags+=(--rounds=1 --seconds=0.3 --warmup=0.1 --strict)
  else
    driver_flags+=("$argument")
  fi
done
bazel build //bench:file_bench //bench/peers:threadpool_file_bench //bench/peers:libuv_file_bench
command -v fio >/dev/null || echo "file_compare: fio is not installed (tools/setup.sh installs it): its rows are left out" >&2
/usr/bin/python3 bench/file_compare.py \
  --impl=surge_io_uring="bazel-bin/bench/file_bench --backend=io_uring" \
  --impl=surge_epoll="bazel-bin/bench/file_bench --backend=epoll" \
  --impl=threadpool=bazel-bin/bench/peers/threadpool_file_bench \
  --impl=libuv=bazel-bin/bench/peers/libuv_file_bench \
  --file="$out/cache/file_compare_1g.dat" \
  --out="$out/file_compare.json" --markdown="$out/file_compare.md" \
  "${driver_flags[@]}"
