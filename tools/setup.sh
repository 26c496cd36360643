#!/usr/bin/env bash
# Installs the Debian packages surge builds with. Idempotent: installs only what is missing, and does
# nothing (not even `apt-get update`) when everything is there. Needs root, or sudo.
set -euo pipefail

# The first line builds surge (abseil: flags for every program, absl::Status for surge::Error) and fuzzes its HTTP parser (clang-14 with libFuzzer) and fetches through curl in a test; the second holds the peers the benchmarks compare it with (Boost.Asio,
# libuv, Tokio's crates for cargo, moodycamel's ConcurrentQueue), the plotting library of bench/report.py, fio (the file comparison's limits), and nginx and wrk (the HTTP comparison).
packages=(bazel-bootstrap g++ liburing-dev libabsl-dev libgtest-dev libbenchmark-dev clang-14 libfuzzer-14-dev libclang-rt-14-dev curl
          libssl-dev openssl
          libboost1.81-dev libuv1-dev librust-tokio-dev libconcurrentqueue-dev python3-matplotlib fio nginx-light wrk)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "setup: installing ${missing[*]}" >&2
if ! "${as_root[@]}" apt-get update -q >&2; then
  echo "setup: 'apt-get update' failed: is Debian's package archive reachable?" >&2
  exit 1
fi
if ! DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q "${missing[@]}" >&2; then
  echo "setup: 'apt-get install ${missing[*]}' failed (see above)" >&2
  exit 1
fi
