#!/usr/bin/env bash
# Builds the tokio::sync peer of bench/sync_compare.py (bench/tokio_sync_bench) offline from Debian's
# librust-tokio-dev, exactly as build_tokio_server.sh builds the echo peer, and prints the binary's path.
# Prints nothing (the reason on stderr) and exits 0 when cargo or the crates are missing, so
# bench/sync_compare.py runs without the Tokio row (and says why) rather than failing.
set -uo pipefail
cd "$(dirname "$0")/tokio_sync_bench"
target="${SURGE_TOKIO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/surge/tokio_sync_bench}"
if ! command -v cargo >/dev/null 2>&1; then
  echo "build_tokio_sync_bench: no cargo on PATH: Tokio is left out" >&2
  exit 0
fi
if [ ! -d /usr/share/cargo/registry ] || ! ls /usr/share/cargo/registry | grep -q '^tokio-1\.'; then
  echo "build_tokio_sync_bench: Debian's librust-tokio-dev is not installed: Tokio is left out" >&2
  exit 0
fi
if ! cargo build --release --quiet --target-dir "$target" >&2; then
  echo "build_tokio_sync_bench: cargo build failed (above): Tokio is left out" >&2
  exit 0
fi
echo "$target/release/tokio_sync_bench"
