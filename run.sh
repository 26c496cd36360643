#!/usr/bin/env bash
# The README's quick start. Each command installs what is missing first, so both work on a fresh clone.
#   ./run.sh demo [flags]   the main job: echo server and client on io_uring, then on epoll, with figures
#   ./run.sh test [flags]   the test suite (bazel test //...)
set -euo pipefail
cd "$(dirname "$0")"
tools/setup.sh

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  demo) exec bazel run //examples:echo_demo -- "$@" ;;
  test) exec bazel test //... "$@" ;;
  *)
    echo "usage: ./run.sh demo|test [flags]" >&2
    exit 2
    ;;
esac
