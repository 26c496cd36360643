#!/usr/bin/env bash
# Builds one of the Tokio 1.24 peers offline from Debian's librust-tokio-dev and prints the binary's path:
#   bench/build_tokio_peer.sh tokio_echo_server   the echo peer of //bench:echo_compare
#   bench/build_tokio_peer.sh tokio_sync_bench    the tokio::sync peer of bench/sync_compare.py
# (a Cargo project under bench/ whose package and binary have that name; Bazel 4.2.3 has no Rust rules
# here). Prints nothing and exits 0 when cargo or the crates are missing, so the comparison runs without
# the Tokio row (and says why) rather than failing. The build goes under $SURGE_TOKIO_TARGET_DIR, or
# ~/.cache/surge/NAME.
set -uo pipefail
name="${1:?usage: bench/build_tokio_peer.sh tokio_echo_server|tokio_sync_bench}"
cd "$(dirname "$0")/$name" || exit 1
target="${SURGE_TOKIO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/surge/$name}"
if ! command -v cargo >/dev/null 2>&1; then
  echo "build_tokio_peer: no cargo on PATH: Tokio is left out" >&2
  exit 0
fi
if [ ! -d /usr/share/cargo/registry ] || ! ls /usr/share/cargo/registry | grep -q '^tokio-1\.'; then
  echo "build_tokio_peer: Debian's librust-tokio-dev is not installed: Tokio is left out" >&2
  exit 0
fi
if ! cargo build --release --quiet --target-dir "$target" >&2; then
  echo "build_tokio_peer: cargo build of $name failed (above): Tokio is left out" >&2
  exit 0
fi
echo "$target/release/$name"
