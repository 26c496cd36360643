#!/usr/bin/env bash
# Builds the Tokio peer (bench/tokio_echo_server) offline from Debian's librust-tokio-dev and prints the
# binary's path. Prints nothing and exits 0 when cargo or the crates are missing, so the comparison runs
# without the Tokio column (and says why) rather than failing.
set -uo pipefail
cd "$(dirname "$0")/tokio_echo_server"
target="${SURGE_TOKIO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/surge/tokio_echo_server}"
if ! command -v cargo >/dev/null 2>&1; then
  echo "build_tokio_server: no cargo on PATH: Tokio is left out" >&2
  exit 0
fi
if [ ! -d /usr/share/cargo/registry ] || ! ls /usr/share/cargo/registry | grep -q '^tokio-1\.'; then
  echo "build_tokio_server: Debian's librust-tokio-dev is not installed: Tokio is left out" >&2
  exit 0
fi
if ! cargo build --release --quiet --target-dir "$target" >&2; then
  echo "build_tokio_server: cargo build failed (above): Tokio is left out" >&2
  exit 0
fi
echo "$target/release/tokio_echo_server"
