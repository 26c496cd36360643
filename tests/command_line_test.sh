#!/usr/bin/env bash
# Every program's command line (absl flags): --help prints the usage and exits 0 without starting anything;
# an unknown flag, a bad value or an out-of-range value exits non-zero with a message naming the flag.
# Arguments: the programs' paths (see BUILD.bazel).
set -uo pipefail

failures=0
out="${TEST_TMPDIR:-/tmp}/out"
err="${TEST_TMPDIR:-/tmp}/err"

fail() {
  echo "FAIL: $*" >&2
  echo "--- stdout:" >&2; head -20 "$out" >&2
  echo "--- stderr:" >&2; head -20 "$err" >&2
  failures=$((failures + 1))
}

# run PROGRAM ARGS...: exit status in $status, output in $out and $err. Bounded: a program that starts
# serving instead of answering is killed after 10 s and counts as a failure. Stdin is closed, which also
# ends a bench server at once.
run() {
  timeout 10 "$@" </dev/null >"$out" 2>"$err"
  status=$?
}

# expect_error PROGRAM WORD ARGS...: non-zero exit, WORD in stderr.
expect_error() {
  local program="$1" word="$2"
  shift 2
  run "$program" "$@"
  if [ "$status" -eq 0 ] || [ "$status" -eq 124 ]; then fail "$(basename "$program") $*: exit $status, want an error"
  elif ! grep -q -- "$word" "$err"; then fail "$(basename "$program") $*: stderr does not name '$word'"
  fi
}

for program in "$@"; do
  name="$(basename "$program")"

  run "$program" --help
  if [ "$status" -ne 0 ]; then fail "$name --help: exit $status, want 0"
  elif ! grep -q "^Usage: $name " "$out"; then fail "$name --help: no 'Usage: $name' line"
  elif grep -qE '^port [0-9]+$|listening on|^surge: ' "$out" "$err"; then fail "$name --help: started serving"
  fi

  expect_error "$program" no_such_flag --no_such_flag=1
  expect_error "$program" prot --prot=1        # a misspelled --port
  expect_error "$program" stray stray          # positional arguments are not taken either
done

# Values: parse errors and ranges, one of each kind per program that has the flag.
for program in "$@"; do
  case "$(basename "$program")" in
    echo_server)
      expect_error "$program" backend --backend=kqueue
      expect_error "$program" host --host=localhost
      expect_error "$program" port --port=65536
      expect_error "$program" workers --workers=-1
      expect_error "$program" workers --workers=two
      expect_error "$program" grace_ms --grace_ms=-1
      expect_error "$program" udp --udp=maybe
      expect_error "$program" unix --unix="/tmp/$(printf 'x%.0s' $(seq 120))"   # longer than sockaddr_un takes
      ;;
    echo_client)
      expect_error "$program" port --port=0
      expect_error "$program" connections --connections=0
      expect_error "$program" unix --unix="/tmp/$(printf 'x%.0s' $(seq 120))"
      ;;
    http_load)
      expect_error "$program" port --port=0
      expect_error "$program" connections --connections=0
      expect_error "$program" pipeline --pipeline=1025
      expect_error "$program" path --path=plaintext
      expect_error "$program" backend --backend=kqueue
      expect_error "$program" cpu --cpu=-2
      ;;
    echo_demo)
      expect_error "$program" size --size=64x
      expect_error "$program" requests --requests=16777217
      ;;
    surge_echo_server)
      expect_error "$program" backend --backend=uringg
      expect_error "$program" sqpoll --sqpoll=2
      expect_error "$program" lent_buffer_size --lent_buffer_size=63
      expect_error "$program" cpu --cpu=-2
      expect_error "$program" udp_loops --udp_loops=-1
      ;;
    raw_uring_echo_server | raw_uring_udp_echo_server | libuv_echo_server | asio_*_echo_server)
      expect_error "$program" buffer --buffer=0
      expect_error "$program" backend --backend=io_uring  # a surge flag: the peers do not take it
      ;;
    echo_compare)
      expect_error "$program" sizes --sizes=64,x
      expect_error "$program" rounds --rounds=0
      expect_error "$program" udp_sizes --udp_sizes=4
      expect_error "$program" udp_in_flight --udp_in_flight=2000
      expect_error "$program" benchmark_flter --benchmark_flter=x
      ;;
    runtime_bench)
      expect_error "$program" benchmark_flter --benchmark_flter=x
      ;;
  esac
done

# echo_server on two workers stops gracefully on SIGINT: exit 0, "stopped" printed. Bounded: 10 s to start
# listening, 10 s to stop.
for program in "$@"; do
  [ "$(basename "$program")" = echo_server ] || continue
  "$program" --port=0 --workers=2 --backend=epoll </dev/null >"$out" 2>"$err" &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$out" && break; sleep 0.1; done
  if ! grep -q "workers: 2" "$out"; then fail "echo_server --workers=2: not listening on two workers"; fi
  kill -INT "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"
    fail "echo_server: still running 10 s after SIGINT"
  fi
  wait "$pid"
  status=$?
  if [ "$status" -ne 0 ]; then fail "echo_server: exit $status after SIGINT, want 0"
  elif ! grep -q "stopped" "$out"; then fail "echo_server: no 'stopped' line after SIGINT"
  fi
done

# echo_server --unix=PATH answers echo_client --unix=PATH; SIGINT removes the socket file; a file left by
# a server that was killed (SIGKILL: nothing unlinked it) is replaced by the next server. Bazel's
# TEST_TMPDIR is too long for a socket path: a short directory under /tmp.
client=""
for program in "$@"; do [ "$(basename "$program")" = echo_client ] && client="$program"; done
for program in "$@"; do
  [ "$(basename "$program")" = echo_server ] || continue
  [ -n "$client" ] || { fail "echo_client not among the programs"; break; }
  socket_dir="$(mktemp -d /tmp/surge-cl-XXXXXX)"
  socket="$socket_dir/echo.sock"
  for round in killed graceful; do
    "$program" --port=0 --unix="$socket" --backend=epoll </dev/null >"$out" 2>"$err" &
    pid=$!
    for _ in $(seq 100); do grep -q "listening on unix socket" "$out" && break; sleep 0.1; done
    if ! grep -q "listening on unix socket $socket" "$out"; then fail "echo_server --unix ($round round): not listening"; fi
    if ! timeout 10 "$client" --unix="$socket" --connections=2 --requests=200 --size=1000 >"$socket_dir/client" 2>&1; then
      fail "echo_client --unix ($round round): $(cat "$socket_dir/client")"
    elif ! grep -q "all bytes verified" "$socket_dir/client"; then fail "echo_client --unix: no verified round trips"
    fi
    if [ "$round" = killed ]; then
      kill -KILL "$pid"
      wait "$pid" 2>/dev/null
      [ -S "$socket" ] || fail "echo_server --unix: the socket file vanished although the server was killed"
      continue
    fi
    kill -INT "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fail "echo_server --unix: still running 10 s after SIGINT"; fi
    wait "$pid"
    status=$?
    [ "$status" -eq 0 ] || fail "echo_server --unix: exit $status after SIGINT, want 0"
    [ -e "$socket" ] && fail "echo_server --unix: the socket file is still there after SIGINT"
  done
  rm -rf "$socket_dir"
done

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "PASS: $# programs"
