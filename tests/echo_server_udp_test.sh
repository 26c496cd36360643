#!/usr/bin/env bash
# examples/echo_server --udp on each backend: the same port answers TCP and UDP; datagrams (empty, small,
# 1,400 bytes, and 64 KiB - 29, the largest over IPv4) come back whole to their senders, and SIGTERM stops
# the server cleanly, counting the datagrams. Argument: the echo_server binary.
set -uo pipefail
server="$1"
failures=0
for backend in io_uring epoll; do
  out="${TEST_TMPDIR:-/tmp}/echo_server_udp_$backend.out"
  "$server" --port=0 --udp --workers=2 --backend="$backend" >"$out" 2>&1 &
  pid=$!
  port=""
  for _ in $(seq 100); do
    port="$(grep -o 'listening on 127.0.0.1:[0-9]*' "$out" | grep -o '[0-9]*$')"
    [ -n "$port" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.05
  done
  if [ -z "$port" ]; then
    if grep -q "io_uring" "$out" && [ "$backend" = io_uring ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "SKIP io_uring: $(cat "$out")"; continue
    fi
    echo "FAIL $backend: the server did not start"; cat "$out"; failures=$((failures + 1)); kill "$pid" 2>/dev/null; continue
  fi
  if ! /usr/bin/python3 - "$port" <<'PY'
import socket, sys
port = int(sys.argv[1])
for family, host in ((socket.AF_INET, "127.0.0.1"),):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(2)
    for size in (0, 5, 1400, 65507):
        message = bytes((i * 7) % 251 for i in range(size))
        s.sendto(message, (host, port))
        reply, source = s.recvfrom(65536)
        if reply != message or source[1] != port:
            sys.exit(f"udp {size} bytes: got {len(reply)} bytes from {source}")
t = socket.create_connection(("127.0.0.1", port), timeout=2)
t.sendall(b"tcp too")
if t.recv(16) != b"tcp too":
    sys.exit("tcp echo failed")
PY
  then
    echo "FAIL $backend: echo"; failures=$((failures + 1))
  fi
  kill -TERM "$pid"
  wait "$pid"
  status=$?
  if [ "$status" -ne 0 ] || ! grep -q "4 datagrams echoed" "$out"; then
    echo "FAIL $backend: exit $status, want 0 and 4 datagrams counted"; cat "$out"; failures=$((failures + 1))
  fi
done
[ "$failures" -eq 0 ] && echo PASS
exit "$failures"
