#!/usr/bin/env bash
# Coordination primitives side by side (channels, oneshot, mutex, semaphore): builds surge's row
# (//bench:sync_bench, the //sync primitives) and the peers
# (//bench/peers: Boost.Asio 1.81 and the moodycamel ConcurrentQueue limit row; bench/tokio_sync_bench:
# Tokio 1.24 by cargo, offline) and runs bench/sync_compare.py over them in interleaved rounds. Prints
# the Markdown table and writes, under results/ (or $SURGE_RESULTS_DIR), sync_compare.json (every round)
# and sync_compare.md (the table). About 1-2 minutes by default on a 2-vCPU VM.
#
#   bench/sync_compare.sh [--quick] [sync_compare.py flags, e.g. --rounds=7 --workloads=oneshot,semaphore
#                          --ops_scale=2]
# --quick: one round of small runs, to check that everything builds and runs; fails if any offered
# workload failed (a peer that could not be built, such as Tokio without cargo, is reported, not failed).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${SURGE_RESULTS_DIR:-results}"
mkdir -p "$out"

driver_flags=()
for argument in "$@"; do
  if [ "$argument" = "--quick" ]; then
    driver_flags+=(--rounds=1 --ops_scale=0.02 --strict)
  else
    driver_flags+=("$argument")
  fi
done

tokio="$(bench/build_tokio_peer.sh tokio_sync_bench)"  # empty (with the reason on stderr) when it cannot be built
# tokio: the two-thread workloads on a 2-worker multi_thread runtime, which places tasks itself (it keeps
# producer and consumer on one worker); tokio_pinned: the same on two current_thread runtimes pinned to CPU
# 0 and 1, the producers on one and the consumer on the other (the placement the other rows have).
tokio_pinned=""
[ -n "$tokio" ] && tokio_pinned="$tokio --placement=pinned_runtimes"
bazel build //bench:sync_bench //bench/peers:asio_sync_bench //bench/peers:queue_limit_bench
# Debian's python3, not whatever python3 comes first on PATH.
/usr/bin/python3 bench/sync_compare.py \
  --impl=surge=bazel-bin/bench/sync_bench \
  --impl=tokio="$tokio" \
  --impl=tokio_pinned="$tokio_pinned" \
  --impl=asio=bazel-bin/bench/peers/asio_sync_bench \
  --impl=limit=bazel-bin/bench/peers/queue_limit_bench \
  --out="$out/sync_compare.json" --markdown="$out/sync_compare.md" \
  "${driver_flags[@]}"
