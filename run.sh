#!/usr/bin/env bash
# The README's quick start. Each command installs what is missing first, so both work on a fresh clone.
#   ./run.sh bench [flags]  the main job: the backend and peer comparison, report under results/
#   ./run.sh test [flags]   the test suite (bazel test //...)
#   ./run.sh demo [flags]   a quick look: echo server and client on io_uring, then on epoll
set -euo pipefail
cd "$(dirname "$0")"
tools/setup.sh

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  bench) exec bench/compare.sh "$@" ;;
  demo) exec bazel run //examples:echo_demo -- "$@" ;;
  test) exec bazel test //... "$@" ;;
  *)
    echo "usage: ./run.sh bench|test|demo [flags]" >&2
    exit 2
    ;;
esac
