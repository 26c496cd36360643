#!/usr/bin/env bash
# HTTP/1.1 against nginx (the `http` workload of ./run.sh bench): builds surge's server (//examples:http_server)
# and load generator (//bench:http_load) and runs bench/http_compare.py: surge's server on io_uring and on epoll
# and nginx-light, one worker each pinned to CPU 0, serving /plaintext and a 4 KiB file at 64 and 512 keep-alive
# connections, driven by http_load and by wrk pinned to CPU 1, interleaved rounds. Prints the Markdown tables
# and writes, under results/ (or $SURGE_RESULTS_DIR), http_compare.json (every round) and http_compare.md.
# About 130 s by default (4 rounds of 24 runs: 1 s windows after 0.3 s of warm-up, both clients).
#
#   bench/http_compare.sh [--quick] [http_compare.py flags, e.g. --rounds=5 --connections=64 --clients=http_load]
# --quick: one round of short windows (0.5 s; wrk's 1 s, its shortest), about 25 s, to check that everything
# builds and runs; fails if any run failed, saw an error or a server did not start.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${SURGE_RESULTS_DIR:-results}"
mkdir -p "$out"

driver_flags=()
for argument in "$@"; do
  if [ "$argument" = "--quick" ]; then
    driver_flags+=(--rounds=1 --window=0.5 --warmup=0.2 --strict)
  else
    driver_flags+=("$argument")
  fi
done
bazel build //examples:http_server //bench:http_load
/usr/bin/python3 bench/http_compare.py \
  --server=surge_io_uring="bazel-bin/examples/http_server --workers=1 --backend=io_uring" \
  --server=surge_epoll="bazel-bin/examples/http_server --workers=1 --backend=epoll" \
  --http_load=bazel-bin/bench/http_load \
  --out="$out/http_compare.json" --markdown="$out/http_compare.md" \
  "${driver_flags[@]}"
