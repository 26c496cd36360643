#!/usr/bin/python3
"""Compares HTTP/1.1 servers against nginx: surge's http_server on io_uring and on epoll, and Debian's nginx-light,
each with one worker pinned to one CPU, serving the same /plaintext and a 4 KiB static file at 64 and 512
keep-alive connections, driven by wrk and by surge's own http_load pinned to another CPU. Interleaved rounds;
prints Markdown tables.

    bench/http_compare.py --server=NAME=COMMAND ... [--nginx=nginx] [--no_nginx] [--http_load=bazel-bin/bench/http_load]
        [--wrk=wrk] [--clients=http_load,wrk] [--paths=/plaintext,/4k.bin] [--connections=64,512] [--rounds=4]
        [--window=1.0] [--warmup=0.3] [--server_cpu=0] [--client_cpu=1]
        [--out=results/http_compare.json] [--markdown=results/http_compare.md] [--strict]

bench/http_compare.sh builds the programs and runs this. Standard library only (Debian's python3).

SERVERS
A --server COMMAND is started as `taskset -c SERVER_CPU COMMAND --host=127.0.0.1 --port=0 --root=DIR` and must
print `listening on 127.0.0.1:PORT` on stdout once it accepts; SIGTERM stops it. nginx gets a config written into
the same temporary directory DIR (which also holds 4k.bin, 4096 random bytes): worker_processes 1, master
process on, access_log off, keepalive_requests 1000000000 (nginx 1.22's default of 1000 would close each
connection every 1000 requests, inside every window), keepalive_timeout 300s, sendfile and tcp_nopush on (as
Debian's nginx.conf has them), open_file_cache max=1024 with open_file_cache_valid 1s (http_server's open-file
cache: 1 s), `location = /plaintext { return 200
"Hello, World!"; }` with default_type text/plain, `root DIR`. Every server started is stopped on exit (also on
an exception, SIGINT or SIGTERM), nginx's master and worker included.

CLIENTS (pinned to CLIENT_CPU)
- http_load (//bench:http_load, one surge io_uring worker): a warm-up of WARMUP s, then a window of WINDOW s whose
  edges it announces on stdout, where the server's CPU time is sampled; its JSON line gives requests, latency
  quantiles, errors and its own CPU time over the window.
- wrk (`wrk -t1 -c N -d S --latency`, S = WINDOW rounded up to whole seconds, wrk takes no fractions): warmed up
  by an http_load run of WARMUP s on as many connections, then the server's CPU is sampled right before wrk
  starts and right after it exits (so connection set-up and tear-down are inside wrk's figures); wrk's own CPU
  time from getrusage(RUSAGE_CHILDREN) around it.

SERVER CPU TIME PER REQUEST
The sum over every thread of every process of the server (the process, its children: nginx's master and worker)
of /proc/PID/task/TID/schedstat's first field (ns on a CPU, user + system) at the window's end minus at its start,
divided by the requests completed in the window. A thread that exits inside the window takes its schedstat along;
so when the processes' user + system time from /proc/PID/stat (which keeps what exited threads used, but in
clock ticks) says more by over 20 ms, that figure is taken instead.

HOW TO READ THE TABLES
Per cell (path × connections) and client: the median over rounds of requests/s (with spread: (max - min) /
median), p50 and p99 latency, server CPU µs per request, the server's and the client's CPU share of the window
(the server's well below 100 %: it was waiting, or other work had its CPU, which "(+N)" gives in % of the
window from /proc/stat; the client's near 100 %: the client is the limit, the figure is client-bound), and,
for each surge server, the median of the round-by-round ratios against nginx measured in the same round with the same client (range min–max): efficiency = nginx's CPU
per request ÷ ours (above 1 is better), requests/s ratio (above 1 is better), p99 ratio (below 1 is better).
"""
import argparse
import collections
import datetime
import json
import os
import platform
import random
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

NGINX_CONFIG = """worker_processes 1;
daemon off;
master_process on;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  # Debian's own nginx.conf turns these on; the open-file cache matches http_server's (fds, sizes and
  # modification times kept, checked again after 1 s), so that both serve the file from a cached fd.
  sendfile on;
  tcp_nopush on;
  open_file_cache max=1024 inactive=60s;
  open_file_cache_valid 1s;
  # Every temporary path in DIR: Debian's defaults under /var/lib/nginx are root's.
  client_body_temp_path {dir}/client_body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    root {dir};
    location = /plaintext {{ default_type text/plain; return 200 "Hello, World!"; }}
  }}
}}
"""
CLIENT_BOUND_SHARE = 0.90
GOAL_EFFICIENCY = 1.5


def log(message):
    sys.stderr.write(f"http_compare: {message}\n")
    sys.stderr.flush()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_busy_seconds():
    """Per CPU, the seconds it has spent busy (not idle or waiting for I/O) since boot, from /proc/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    busy = {}
    with open("/proc/stat") as handle:
        for line in handle:
            fields = line.split()
            if not fields[0].startswith("cpu") or fields[0] == "cpu":
                continue
            values = [int(v) for v in fields[1:]]
            busy[int(fields[0][3:])] = (sum(values[:8]) - values[3] - values[4]) / ticks
    return busy


def others_share(args, before, after, server_seconds, client_seconds, window):
    """The share of the window in which the server's and the client's CPUs ran something else."""
    if window <= 0:
        return float("nan"), float("nan")
    server_cpu = after[args.server_cpu] - before[args.server_cpu]
    client_cpu = after[args.client_cpu] - before[args.client_cpu]
    return max(0.0, (server_cpu - server_seconds) / window), max(0.0, (client_cpu - client_seconds) / window)


def server_cpu_seconds(before, after):
    """The server's CPU time between two Server.cpu_sample()s: schedstat's nanoseconds, unless /proc/PID/stat
    (clock ticks, so within 20 ms) says more, which happens when a thread exited in between and took its
    schedstat along."""
    precise = (after[0] - before[0]) / 1e9
    coarse = after[1] - before[1]
    return (coarse, True) if coarse > precise + 0.02 else (precise, False)


def wait_until_accepting(port, process, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before accepting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"not accepting on port {port} after {seconds} s")


class Server:
    """One server process (tree), started pinned, stopped on close(). Its stdout and stderr go to files in
    `directory` (a pipe nobody reads would stall a server that logs)."""

    def __init__(self, name, argv, directory, port=None, announces=False):
        self.name = name
        self.stdout_path = os.path.join(directory, f"{name}.stdout")
        self.stderr_path = os.path.join(directory, f"{name}.stderr")
        with open(self.stdout_path, "w") as stdout, open(self.stderr_path, "w") as stderr:
            self.process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, start_new_session=True)
        try:
            self.port = self._read_port() if announces else port
            wait_until_accepting(self.port, self.process)
        except Exception:
            self.close()
            raise

    def _read_port(self, seconds=15.0):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with open(self.stdout_path) as handle:
                for line in handle:
                    if line.startswith("listening on ") and line.endswith("\n"):
                        return int(line.strip().rsplit(":", 1)[1])
            if self.process.poll() is not None:
                raise RuntimeError(f"exited with {self.process.returncode} before 'listening on HOST:PORT': "
                                   f"{self.stderr_tail()}")
            time.sleep(0.02)
        raise RuntimeError(f"no 'listening on HOST:PORT' line within {seconds} s")

    def stderr_tail(self):
        try:
            with open(self.stderr_path) as handle:
                return handle.read()[-300:].strip()
        except OSError:
            return ""

    def pids(self):
        """The server process and all its descendants."""
        found, pending = [], [self.process.pid]
        while pending:
            pid = pending.pop()
            found.append(pid)
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as handle:
                        pending += [int(child) for child in handle.read().split()]
            except OSError:
                pass
        return found

    def cpu_sample(self):
        """(ns on a CPU summed over the live threads from schedstat, seconds of user + system time of the
        processes from /proc/PID/stat, which also holds threads that have exited but counts in clock ticks)."""
        nanoseconds, ticks = 0, 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
                tasks = os.listdir(f"/proc/{pid}/task")
            except (OSError, ValueError, IndexError):
                continue
            for task in tasks:
                try:
                    with open(f"/proc/{pid}/task/{task}/schedstat") as handle:
                        nanoseconds += int(handle.read().split()[0])
                except (OSError, ValueError, IndexError):
                    pass
        return nanoseconds, ticks / os.sysconf("SC_CLK_TCK")

    def alive(self):
        return self.process.poll() is None

    def close(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # nginx's worker could outlive a master that died: the session holds every process of the server.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def start_nginx(binary, directory, cpu):
    port = free_port()
    config = os.path.join(directory, "nginx.conf")
    with open(config, "w") as handle:
        handle.write(NGINX_CONFIG.format(dir=directory, port=port))
    argv = ["taskset", "-c", str(cpu), binary, "-c", config, "-p", directory, "-e", os.path.join(directory, "error.log")]
    return Server("nginx", argv, directory, port=port)


def start_surge(name, command, directory, cpu):
    argv = ["taskset", "-c", str(cpu)] + shlex.split(command) + ["--host=127.0.0.1", "--port=0", f"--root={directory}"]
    return Server(name, argv, directory, announces=True)


def http_load_argv(args, port, path, connections, window, warmup):
    return ["taskset", "-c", str(args.client_cpu)] + shlex.split(args.http_load) + [
        f"--port={port}", f"--path={path}", f"--connections={connections}", f"--duration_ms={round(window * 1000)}",
        f"--warmup_ms={round(warmup * 1000)}", f"--cpu={args.client_cpu}"]


def run_http_load(args, server, path, connections):
    argv = http_load_argv(args, server.port, path, connections, args.window, args.warmup)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marks = {}
    json_line = None
    try:
        for line in process.stdout:
            line = line.strip()
            if line in ("window_start", "window_end"):
                marks[line] = (server.cpu_sample(), cpu_busy_seconds())
            elif line.startswith("{"):
                json_line = line
        process.wait(timeout=args.window + args.warmup + 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read()
    if process.returncode != 0 or json_line is None or len(marks) != 2:
        raise RuntimeError(f"http_load exit {process.returncode}: {stderr.strip()[-300:]}")
    result = json.loads(json_line)
    requests = result["requests"]
    server_seconds, from_stat = server_cpu_seconds(marks["window_start"][0], marks["window_end"][0])
    other_server, other_client = others_share(args, marks["window_start"][1], marks["window_end"][1], server_seconds,
                                              result["client_cpu_seconds"], result["seconds"])
    return {
        "requests": requests, "seconds": result["seconds"], "requests_per_second": result["requests_per_second"],
        "p50_us": result["p50_us"], "p99_us": result["p99_us"], "p999_us": result["p999_us"],
        "errors": result["non_200"] + result["connection_errors"], "non_200": result["non_200"],
        "connection_errors": result["connection_errors"], "first_error": result["first_connection_error"],
        "server_cpu_seconds": server_seconds, "server_cpu_from_stat": from_stat,
        "server_cpu_us_per_request": server_seconds * 1e6 / requests if requests else float("nan"),
        "server_cpu_share": server_seconds / result["seconds"] if result["seconds"] > 0 else float("nan"),
        "client_cpu_share": result["client_cpu_share"],
        "server_cpu_others_share": other_server, "client_cpu_others_share": other_client,
        "client_cpu_us_per_request": result["client_cpu_us_per_request"],
    }


def parse_duration_us(text):
    for unit, scale in (("us", 1.0), ("ms", 1e3), ("s", 1e6), ("m", 6e7)):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * scale
    raise ValueError(f"unknown duration {text!r}")


def parse_wrk(output):
    parsed = {"non_2xx": 0, "socket_errors": 0}
    for line in output.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "50%":
            parsed["p50_us"] = parse_duration_us(words[1])
        elif words[0] == "99%":
            parsed["p99_us"] = parse_duration_us(words[1])
        elif len(words) >= 4 and words[1] == "requests" and words[2] == "in":
            parsed["requests"] = int(words[0])
            parsed["seconds"] = float(words[3].rstrip(",").rstrip("s"))
        elif words[0] == "Requests/sec:":
            parsed["requests_per_second"] = float(words[1])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            parsed["non_2xx"] = int(words[-1])
        elif line.strip().startswith("Socket errors:"):
            parsed["socket_errors"] = sum(int(words[i + 1].rstrip(",")) for i in range(2, len(words) - 1, 2))
    for key in ("p50_us", "p99_us", "requests", "requests_per_second"):
        if key not in parsed:
            raise ValueError(f"wrk's output has no {key}: {output.strip()[-300:]}")
    return parsed


def run_wrk(args, server, path, connections):
    if args.warmup > 0:  # wrk has no warm-up of its own
        warm = subprocess.run(http_load_argv(args, server.port, path, connections, 0.001, args.warmup),
                              capture_output=True, text=True, timeout=args.warmup + 30)
        if warm.returncode != 0:
            raise RuntimeError(f"warm-up (http_load) exit {warm.returncode}: {warm.stderr.strip()[-300:]}")
    seconds = max(1, int(-(-args.window // 1)))
    argv = ["taskset", "-c", str(args.client_cpu), args.wrk, "-t1", "-c", str(connections), "-d", f"{seconds}s",
            "--latency", f"http://127.0.0.1:{server.port}{path}"]
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = server.cpu_sample()
    busy_before = cpu_busy_seconds()
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    wall = time.monotonic() - started
    cpu_after = server.cpu_sample()
    busy_after = cpu_busy_seconds()
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exit {done.returncode}: {done.stderr.strip()[-300:]}")
    parsed = parse_wrk(done.stdout)
    client_cpu = (after_children.ru_utime - before_children.ru_utime) + (after_children.ru_stime - before_children.ru_stime)
    requests = parsed["requests"]
    server_seconds, from_stat = server_cpu_seconds(cpu_before, cpu_after)
    other_server, other_client = others_share(args, busy_before, busy_after, server_seconds, client_cpu, wall)
    return {
        "requests": requests, "seconds": parsed.get("seconds", seconds),
        "requests_per_second": parsed["requests_per_second"], "p50_us": parsed["p50_us"], "p99_us": parsed["p99_us"],
        "errors": parsed["non_2xx"] + parsed["socket_errors"], "non_200": parsed["non_2xx"],
        "connection_errors": parsed["socket_errors"], "first_error": "",
        "server_cpu_seconds": server_seconds, "server_cpu_from_stat": from_stat,
        "server_cpu_us_per_request": server_seconds * 1e6 / requests if requests else float("nan"),
        "server_cpu_share": server_seconds / wall if wall > 0 else float("nan"),
        "client_cpu_share": client_cpu / wall if wall > 0 else float("nan"),
        "server_cpu_others_share": other_server, "client_cpu_others_share": other_client,
        "client_cpu_us_per_request": client_cpu * 1e6 / requests if requests else float("nan"),
    }


def median_or_nan(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def spread(values):
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle else float("nan")


def ratio_cell(ours, theirs, key, invert=False):
    """Median, min and max over rounds of ours[key] / theirs[key] (theirs / ours with invert), both of a round."""
    ratios = []
    for a, b in zip(ours, theirs):
        if not a or not b or not a[key] or not b[key]:
            continue
        ratios.append(b[key] / a[key] if invert else a[key] / b[key])
    if not ratios:
        return None
    return statistics.median(ratios), min(ratios), max(ratios)


def fmt_ratio(cell):
    if cell is None:
        return "–"
    median, low, high = cell
    return f"{median:.2f} ({low:.2f}–{high:.2f})"


def fmt_us(value):
    if value != value:
        return "–"
    return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.0f} µs"


def cell_key(path, connections):
    return f"{path} × {connections}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", action="append", default=[], help="NAME=COMMAND (a server as described above)")
    parser.add_argument("--nginx", default="nginx")
    parser.add_argument("--no_nginx", action="store_true")
    parser.add_argument("--http_load", default="bazel-bin/bench/http_load")
    parser.add_argument("--wrk", default="wrk")
    parser.add_argument("--clients", default="http_load,wrk")
    parser.add_argument("--paths", default="/plaintext,/4k.bin")
    parser.add_argument("--connections", default="64,512")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--window", type=float, default=1.0, help="seconds (wrk: rounded up to whole seconds)")
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--server_cpu", type=int, default=0)
    parser.add_argument("--client_cpu", type=int, default=1)
    parser.add_argument("--out", default="results/http_compare.json")
    parser.add_argument("--markdown", default="results/http_compare.md")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any run or server failed")
    args = parser.parse_args()

    clients = [c for c in args.clients.split(",") if c]
    for client in clients:
        if client not in ("http_load", "wrk"):
            sys.exit(f"http_compare: unknown client {client} (known: http_load, wrk)")
    if "wrk" in clients and subprocess.run(["which", args.wrk], capture_output=True).returncode != 0:
        log("wrk is not installed (tools/setup.sh installs it): its runs are left out")
        clients.remove("wrk")
    use_nginx = not args.no_nginx
    if use_nginx and subprocess.run(["which", args.nginx], capture_output=True).returncode != 0:
        log("nginx is not installed (tools/setup.sh installs nginx-light): its rows are left out")
        use_nginx = False
    paths = [p for p in args.paths.split(",") if p]
    connection_counts = [int(c) for c in args.connections.split(",") if c]
    commands = {}
    for spec in args.server:
        name, _, command = spec.partition("=")
        if command:
            commands[name] = command

    directory = tempfile.mkdtemp(prefix="http_compare.")
    os.chmod(directory, 0o755)  # nginx's worker runs as an unprivileged user when started as root
    with open(os.path.join(directory, "4k.bin"), "wb") as handle:
        handle.write(os.urandom(4096))
    os.chmod(os.path.join(directory, "4k.bin"), 0o644)
    servers = {}
    errors = []

    def stop_all(*_):
        for server in servers.values():
            server.close()
        servers.clear()

    def on_signal(number, _frame):
        stop_all()
        sys.exit(128 + number)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    results = {}  # cell -> client -> server -> [run or None per round]
    started = time.monotonic()
    try:
        for name, command in commands.items():
            try:
                servers[name] = start_surge(name, command, directory, args.server_cpu)
            except (RuntimeError, OSError) as error:
                errors.append(f"{name}: did not start: {error}")
        if use_nginx:
            try:
                servers["nginx"] = start_nginx(args.nginx, directory, args.server_cpu)
            except (RuntimeError, OSError) as error:
                errors.append(f"nginx: did not start: {error}")
        names = list(servers)
        log(f"servers: {', '.join(f'{n} on port {s.port}' for n, s in servers.items()) or 'none'}; "
            f"{args.rounds} round(s) of {len(paths) * len(connection_counts) * len(clients) * len(names)} runs")
        for path in paths:
            for connections in connection_counts:
                results[cell_key(path, connections)] = {c: {n: [] for n in names} for c in clients}
        for round_index in range(args.rounds):
            for path in paths:
                for connections in connection_counts:
                    order = names[:]
                    random.shuffle(order)
                    for name in order:
                        server = servers[name]
                        for client in clients:
                            run = None
                            if not server.alive():
                                errors.append(f"{cell_key(path, connections)} {client} {name} round {round_index + 1}: "
                                              f"the server exited ({server.process.returncode}): {server.stderr_tail()}")
                            else:
                                try:
                                    if client == "http_load":
                                        run = run_http_load(args, server, path, connections)
                                    else:
                                        run = run_wrk(args, server, path, connections)
                                    if run["errors"]:
                                        errors.append(f"{cell_key(path, connections)} {client} {name} round "
                                                      f"{round_index + 1}: {run['errors']} error(s) {run['first_error']}")
                                except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError) as error:
                                    errors.append(f"{cell_key(path, connections)} {client} {name} round "
                                                  f"{round_index + 1}: {error}")
                            results[cell_key(path, connections)][client][name].append(run)
                            if run:
                                log(f"round {round_index + 1}/{args.rounds} {cell_key(path, connections)} {client:9} "
                                    f"{name:15} {run['requests_per_second']:>9,.0f} req/s  p99 {fmt_us(run['p99_us']):>9}  "
                                    f"server {run['server_cpu_us_per_request']:.2f} µs/req, CPU {100 * run['server_cpu_share']:.0f} % "
                                    f"(others {100 * run['server_cpu_others_share']:.0f} %)  client CPU "
                                    f"{100 * run['client_cpu_share']:.0f} %")
                            else:
                                log(f"round {round_index + 1}/{args.rounds} {cell_key(path, connections)} {client} "
                                    f"{name}: failed ({errors[-1]})")
    finally:
        stop_all()
        shutil.rmtree(directory, ignore_errors=True)
    elapsed = time.monotonic() - started

    names = [n for n in list(commands) + (["nginx"] if use_nginx else [])]
    lines = [f"One worker (nginx: `worker_processes 1`) pinned to CPU {args.server_cpu}, the client pinned to CPU "
             f"{args.client_cpu}; {args.rounds} interleaved round(s), windows of {args.window} s (+{args.warmup} s "
             f"warm-up; wrk: {max(1, int(-(-args.window // 1)))} s); {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, "
             f"{platform.node()}, {os.cpu_count()} CPUs, {elapsed:.0f} s. nginx-light: keepalive_requests 1000000000 "
             "(1.22's default, 1000, would recycle every connection inside a window), access_log off, sendfile and "
             "tcp_nopush on (Debian's nginx.conf), open_file_cache with open_file_cache_valid 1s (as http_server's "
             "open-file cache). Server CPU: "
             "schedstat of every thread of the server's processes over the window (user + system). Medians of rounds; ratios: median of "
             "round-by-round ratios against nginx with the same client (range). Client CPU at or above "
             f"{100 * CLIENT_BOUND_SHARE:.0f} % marks a client-bound figure (†).\n"]
    every_run = [r for by_client in results.values() for by_server in by_client.values() for runs in by_server.values()
                 for r in runs if r]
    if every_run:
        server_others = median_or_nan([r["server_cpu_others_share"] for r in every_run])
        client_others = median_or_nan([r["client_cpu_others_share"] for r in every_run])
        busiest = max(r["server_cpu_others_share"] for r in every_run)
        lines.append(f"Other work on the two CPUs during the windows (from /proc/stat, softirq and kernel threads "
                     f"included): median {100 * server_others:.0f} % of CPU {args.server_cpu} (at most "
                     f"{100 * busiest:.0f} %), {100 * client_others:.0f} % of CPU {args.client_cpu}, load average "
                     f"{' '.join(open('/proc/loadavg').read().split()[:3])} at the end."
                     + (" The machine was shared: rates and latencies are depressed and noisy; CPU per request "
                        "holds best." if server_others > 0.15 or client_others > 0.15 else "") + "\n")
    from_stat = collections.Counter(name for by_client in results.values() for by_server in by_client.values()
                                    for name, runs in by_server.items() for r in runs if r and r["server_cpu_from_stat"])
    if from_stat:
        lines.append("Server CPU from /proc/PID/stat (a thread exited inside the window) in "
                     + ", ".join(f"{count} run(s) of {name}" for name, count in sorted(from_stat.items())) + ".\n")
    goals = []
    for cell, by_client in results.items():
        lines.append(f"### {cell} connections\n")
        lines.append("| client | server | requests/s | spread | p50 | p99 | server CPU µs/req | server CPU | client CPU | "
                     "efficiency × nginx | requests/s × nginx | p99 × nginx |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for client, by_server in by_client.items():
            for name in names:
                runs = by_server.get(name, [])
                good = [r for r in runs if r]
                if not good:
                    lines.append(f"| {client} | {name} | failed | | | | | | | | | |")
                    continue
                rps = [r["requests_per_second"] for r in good]
                share = median_or_nan([r["client_cpu_share"] for r in good])
                bound = " †" if share >= CLIENT_BOUND_SHARE else ""
                nginx_runs = by_server.get("nginx", [])
                if name != "nginx" and nginx_runs:
                    efficiency = ratio_cell(runs, nginx_runs, "server_cpu_us_per_request", invert=True)
                    rate = ratio_cell(runs, nginx_runs, "requests_per_second")
                    p99 = ratio_cell(runs, nginx_runs, "p99_us")
                else:
                    efficiency = rate = p99 = None
                lines.append(
                    f"| {client} | {name} | {statistics.median(rps):,.0f}{bound} | {100 * spread(rps):.0f} % | "
                    f"{fmt_us(median_or_nan([r['p50_us'] for r in good]))} | "
                    f"{fmt_us(median_or_nan([r['p99_us'] for r in good]))} | "
                    f"{median_or_nan([r['server_cpu_us_per_request'] for r in good]):.2f} | "
                    f"{100 * median_or_nan([r['server_cpu_share'] for r in good]):.0f} % "
                    f"(+{100 * median_or_nan([r['server_cpu_others_share'] for r in good]):.0f}) | {100 * share:.0f} % | "
                    f"{fmt_ratio(efficiency)} | {fmt_ratio(rate)} | {fmt_ratio(p99)} |")
                if name != "nginx" and client == "http_load" and nginx_runs:
                    nginx_share = median_or_nan([r["client_cpu_share"] for r in nginx_runs if r])
                    client_bound = share >= CLIENT_BOUND_SHARE or nginx_share >= CLIENT_BOUND_SHARE
                    note = " (client-bound)" if client_bound else ""
                    # Judged on the figure as printed (two decimals), so that the table reads consistently.
                    for goal, measured, met in (
                            (f"efficiency ≥ {GOAL_EFFICIENCY}", efficiency,
                             efficiency is not None and round(efficiency[0], 2) >= GOAL_EFFICIENCY),
                            ("requests/s ≥ nginx", rate, rate is not None and round(rate[0], 2) >= 1.0),
                            ("p99 ≤ nginx", p99, p99 is not None and round(p99[0], 2) <= 1.0)):
                        goals.append(f"| {cell} | {name} | {goal} | {fmt_ratio(measured)} | "
                                     f"{'met' if met else 'missed'}{note if 'efficiency' not in goal else ''} |")
        lines.append("")
    # The case for http_load: against nginx, the rate each client reaches and what it costs the client.
    if use_nginx and "wrk" in clients and "http_load" in clients:
        lines.append("### The load generators against nginx\n")
        lines.append("Each client against nginx in the same rounds; the ratios are http_load's figure ÷ wrk's, median "
                     "of rounds (range).\n")
        lines.append("| cell | client | nginx requests/s | client CPU | client CPU µs/req | nginx CPU µs/req | "
                     "requests/s ÷ wrk | client CPU µs/req ÷ wrk |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for cell, by_client in results.items():
            for client in ("wrk", "http_load"):
                runs = by_client[client].get("nginx", [])
                good = [r for r in runs if r]
                if not good:
                    continue
                ratios = ["", ""]
                if client == "http_load":
                    wrk_runs = by_client["wrk"].get("nginx", [])
                    ratios = [fmt_ratio(ratio_cell(runs, wrk_runs, "requests_per_second")),
                              fmt_ratio(ratio_cell(runs, wrk_runs, "client_cpu_us_per_request"))]
                lines.append(f"| {cell} | {client} | {median_or_nan([r['requests_per_second'] for r in good]):,.0f} | "
                             f"{100 * median_or_nan([r['client_cpu_share'] for r in good]):.0f} % | "
                             f"{median_or_nan([r['client_cpu_us_per_request'] for r in good]):.2f} | "
                             f"{median_or_nan([r['server_cpu_us_per_request'] for r in good]):.2f} | "
                             f"{ratios[0]} | {ratios[1]} |")
        lines.append("")
    if goals:
        lines.append("### Goals (performance-goals.md, \"HTTP/1.1 and TLS\"; http_load's figures)\n")
        lines.append("| cell | server | goal | measured (median, range) | |")
        lines.append("|---|---|---|---|---|")
        lines += goals
        lines.append("")
        lines.append("Efficiency is server CPU per request, which the client cannot cap; requests/s and p99 marked "
                     "client-bound were limited by the client's CPU (the two processes share the loopback path's "
                     "work), not by the server.\n")
    for error in errors:
        lines.append(f"- not run or with errors: {error}")
    text = "\n".join(lines) + "\n"
    for path in (args.markdown, args.out):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(args.markdown, "w") as handle:
        handle.write(text)
    with open(args.out, "w") as handle:
        json.dump({"args": vars(args), "results": results, "errors": errors, "seconds": elapsed}, handle, indent=1)
    sys.stdout.write(text)
    if args.strict and errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
