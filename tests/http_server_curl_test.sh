#!/usr/bin/env bash
# examples/http_server on each backend, through curl: /plaintext, a static file from --root (byte for
# byte), a chunked upload to /echo, and /metrics; then SIGTERM stops it gracefully with exit status 0.
# Argument: the http_server binary. Skips (passes, saying why) where /usr/bin/curl is missing.
set -uo pipefail
server="$1"
curl_bin=/usr/bin/curl
if [ ! -x "$curl_bin" ]; then
  echo "SKIP: $curl_bin is not installed (tools/setup.sh installs it)"
  exit 0
fi
tmp="$(mktemp -d "${TEST_TMPDIR:-/tmp}/http_server_curl.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/sub"
printf '<h1>hello</h1>\n' >"$tmp/root/index.html"
head -c 200000 /dev/urandom >"$tmp/root/sub/data.bin"
head -c 100000 /dev/urandom >"$tmp/upload.bin"
printf 'outside the root\n' >"$tmp/secret.txt"
curl() { "$curl_bin" --silent --show-error --noproxy '*' --max-time 10 "$@"; }
failures=0
fail() { echo "FAIL $backend: $*"; failures=$((failures + 1)); }
for backend in io_uring epoll; do
  out="$tmp/server_$backend.out"
  "$server" --port=0 --host=127.0.0.1 --workers=2 --backend="$backend" --root="$tmp/root" >"$out" 2>&1 &
  pid=$!
  port=""
  for _ in $(seq 200); do
    port="$(grep -o 'listening on 127.0.0.1:[0-9]*' "$out" | grep -o '[0-9]*$')"
    [ -n "$port" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.05
  done
  if [ -z "$port" ]; then
    if [ "$backend" = io_uring ] && ! kill -0 "$pid" 2>/dev/null && grep -qi "io_uring" "$out"; then
      echo "SKIP io_uring: $(cat "$out")"; continue
    fi
    fail "the server did not start"; cat "$out"; kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; continue
  fi
  base="http://127.0.0.1:$port"
  [ "$(curl "$base/plaintext")" = "Hello, World!" ] || fail "/plaintext"
  [ "$(curl "$base/json")" = '{"message":"Hello, World!"}' ] || fail "/json"
  curl -o "$tmp/index.out" "$base/" && cmp -s "$tmp/index.out" "$tmp/root/index.html" || fail "/ (index.html)"
  curl -o "$tmp/data.out" "$base/sub/data.bin" && cmp -s "$tmp/data.out" "$tmp/root/sub/data.bin" || fail "/sub/data.bin"
  type="$(curl -o /dev/null -w '%{content_type}' "$base/index.html")"
  [ "$type" = "text/html; charset=utf-8" ] || fail "Content-Type of index.html: $type"
  code="$(curl -o /dev/null -w '%{http_code}' --path-as-is "$base/../secret.txt")"
  [ "$code" = 400 ] || fail "/../secret.txt: status $code, want 400"
  code="$(curl -o /dev/null -w '%{http_code}' "$base/missing")"
  [ "$code" = 404 ] || fail "/missing: status $code, want 404"
  curl -H 'Transfer-Encoding: chunked' --data-binary "@$tmp/upload.bin" -o "$tmp/echo.out" "$base/echo" &&
    cmp -s "$tmp/echo.out" "$tmp/upload.bin" || fail "chunked upload to /echo"
  curl "$base/metrics" | grep -q '^http_requests_total{worker="[01]",code="200"} [1-9]' || fail "/metrics"
  kill -TERM "$pid"
  status=""
  for _ in $(seq 200); do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    fail "still running 10 s after SIGTERM"; kill -KILL "$pid"
  fi
  wait "$pid"
  status=$?
  if [ "$status" -ne 0 ] || ! grep -q "http_server: stopped" "$out"; then
    fail "exit status $status after SIGTERM, want 0 and a 'stopped' line"; cat "$out"
  fi
done
[ "$failures" -eq 0 ] && echo PASS
exit "$failures"
