#!/usr/bin/python3
"""Turns //bench:echo_compare's (and optionally //bench:runtime_bench's) Google Benchmark JSON into a
Markdown report and a PNG plot, and prints the report.

    bench/report.py --compare results/echo_compare.json [--runtime results/runtime_bench.json] \
        --markdown results/report.md --plot results/report.png

Every figure is a median over the interleaved rounds. Ratios are taken round by round (server and
reference measured back to back) and the median of those ratios is quoted; "spread" is the range of the
rounds as a percentage of the median. Needs only the standard library; the plot needs Debian's
python3-matplotlib (skipped with a note without it).
"""
import argparse
import collections
import json
import re
import statistics
import sys

PEERS = ["asio_epoll", "asio_io_uring", "libuv", "tokio"]
RAW = "raw_uring"
OURS = ["surge_io_uring", "surge_epoll"]  # variants (surge_io_uring+borrowed, ...) sort after the peers
ORDER = OURS + [RAW] + PEERS


def load(path):
    with open(path) as handle:
        return json.load(handle)


def parse_name(name):
    """'echo/raw_uring/conns:64/bytes:64/round:2' -> ('echo', 'raw_uring', {'conns': 64, ...}, 2)."""
    parts = name.split("/")
    workload, server = parts[0], parts[1]
    fields = {}
    for part in parts[2:]:
        match = re.fullmatch(r"(\w+):(\d+)", part)
        if match:
            fields[match.group(1)] = int(match.group(2))
    round_number = fields.pop("round", 1)
    fields.pop("iterations", None)  # added by Google Benchmark, not part of the cell
    return workload, server, fields, round_number


def collect(report):
    """{(workload, cell): {server: {round: run}}} and {(workload, cell, server): error message}."""
    cells = collections.defaultdict(lambda: collections.defaultdict(dict))
    errors = {}
    for run in report.get("benchmarks", []):
        workload, server, fields, round_number = parse_name(run["run_name"] if "run_name" in run else run["name"])
        cell = tuple(sorted(fields.items()))
        if run.get("error_occurred"):
            errors[(workload, cell, server)] = run.get("error_message", "failed")
            continue
        cells[(workload, cell)][server][round_number] = run
    return cells, errors


def median_of(runs, key):
    values = [run[key] for run in runs.values() if key in run]
    return statistics.median(values) if values else None


def spread_of(runs, key):
    values = [run[key] for run in runs.values() if key in run]
    if len(values) < 2:
        return None
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle * 100 if middle else None


def ratio_of(runs, reference_runs, key, invert=False):
    """Median over rounds of runs[r][key] / reference_runs[r][key]."""
    ratios = []
    for round_number, run in runs.items():
        reference = reference_runs.get(round_number)
        if reference and key in run and key in reference and run[key] and reference[key]:
            ratios.append(reference[key] / run[key] if invert else run[key] / reference[key])
    return statistics.median(ratios) if ratios else None


def fmt(value, digits=2, suffix=""):
    if value is None:
        return "–"
    return f"{value:.{digits}f}{suffix}"


def fmt_rate(value):
    if value is None:
        return "–"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"


def cell_label(cell):
    return ", ".join(f"{key} {value}" for key, value in cell)


def best_peer(servers, key):
    candidates = [(median_of(servers[peer], key), peer) for peer in PEERS if peer in servers]
    candidates = [(value, peer) for value, peer in candidates if value is not None]
    return max(candidates)[1] if candidates else None


def ordered(servers):
    return [server for server in ORDER if server in servers] + sorted(set(servers) - set(ORDER))


def echo_section(cells, errors, lines, goals):
    lines.append("## TCP echo, closed loop (round trips/s; higher is better)\n")
    lines.append("Server on CPU 0, load generator on CPU 1. `×raw` and `×peer`: median of round-by-round ratios "
                 "of round trips/s to the raw liburing loop and to the best peer of that cell (named). CPU is the "
                 "server process's user+system time per round trip; `CPU ×raw` compares it with the raw loop's "
                 "(lower is better).\n")
    lines.append("| cell | server | rt/s | spread | ×raw | ×peer | p50 µs | p99 µs | CPU µs/rt | CPU ×raw | "
                 "user share | syscalls/rt | allocs/rt |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (workload, cell), servers in sorted(cells.items()):
        if workload != "echo":
            continue
        peer = best_peer(servers, "rt_per_s")
        raw = servers.get(RAW, {})
        for server in ordered(servers):
            runs = servers[server]
            versus_raw = ratio_of(runs, raw, "rt_per_s") if raw else None
            versus_peer = ratio_of(runs, servers[peer], "rt_per_s") if peer else None
            cpu_versus_raw = ratio_of(runs, raw, "server_cpu_us_per_rt") if raw else None
            user_share = median_of(runs, "server_user_share")
            lines.append(
                f"| {cell_label(cell)} | {server} | {fmt_rate(median_of(runs, 'rt_per_s'))} | "
                f"±{fmt(spread_of(runs, 'rt_per_s'), 0)}% | {fmt(versus_raw)} | "
                f"{fmt(versus_peer)}{f' ({peer})' if peer else ''} | {fmt(median_of(runs, 'p50_us'), 0)} | "
                f"{fmt(median_of(runs, 'p99_us'), 0)} | {fmt(median_of(runs, 'server_cpu_us_per_rt'))} | "
                f"{fmt(cpu_versus_raw)} | {fmt(user_share * 100 if user_share is not None else None, 1, '%')} | "
                f"{fmt(median_of(runs, 'server_syscalls_per_rt'))} | {fmt(median_of(runs, 'server_allocs_per_rt'), 4)} |")
            if server == "surge_io_uring":
                goals.append(("echo " + cell_label(cell), "io_uring ≥ 0.97× raw rt/s", versus_raw, 0.97, True))
                goals.append(("echo " + cell_label(cell), "io_uring ≥ 1.0× best peer rt/s", versus_peer, 1.0, True))
                goals.append(("echo " + cell_label(cell), "io_uring CPU/rt ≤ 1.03× raw", cpu_versus_raw, 1.03, False))
                goals.append(("echo " + cell_label(cell), "io_uring user share ≤ 3 %",
                              user_share * 100 if user_share is not None else None, 3.0, False))
                goals.append(("echo " + cell_label(cell), "no allocation per round trip",
                              median_of(runs, "server_allocs_per_rt"), 0.001, False))
            if server == "surge_epoll" and "asio_epoll" in servers:
                goals.append(("echo " + cell_label(cell), "epoll ≥ 1.0× asio_epoll rt/s",
                              ratio_of(runs, servers["asio_epoll"], "rt_per_s"), 1.0, True))
    for (workload, cell, server), message in sorted(errors.items()):
        if workload == "echo":
            lines.append(f"| {cell_label(cell)} | {server} | not run: {message} |||||||||||")
    lines.append("")


FEATURE_NOTES = {
    "surge_io_uring+borrowed": "borrowed reads: multishot recv into the provided-buffer ring (on)",
    "surge_io_uring+borrowed-ring": "borrowed reads from a pool with plain recv (no buffer ring)",
    "surge_io_uring-defer": "without DEFER_TASKRUN (COOP_TASKRUN instead)",
    "surge_io_uring-multishot_accept": "without multishot accept",
    "surge_io_uring+borrowed64k": "borrowed reads with 64 KiB lent buffers (16 MiB per worker)",
    "surge_io_uring-fixed_files": "without registered (fixed) files",
    "surge_io_uring+send_zc": "sends of 16 KiB or more as SEND_ZC",
    "surge_io_uring+sqpoll": "SQPOLL: a kernel thread submits (no DEFER_TASKRUN)",
}


UDP_NOTES = {
    "surge_io_uring": "recv_from into each loop's own buffer (one recvmsg SQE per datagram)",
    "surge_io_uring+borrowed": "recv_borrowed: one multishot recvmsg into the lent-buffer ring",
    "surge_epoll": "recv_from (recvmsg when epoll says readable)",
    "raw_uring": "hand-written liburing loop: multishot recvmsg + buffer ring, sendmsg from the buffer",
    "asio_epoll": "Boost.Asio 1.81, async_receive_from / async_send_to",
    "asio_io_uring": "Boost.Asio 1.81 on io_uring",
}


def udp_section(cells, errors, lines, goals):
    rows = [(cell, servers) for (workload, cell), servers in sorted(cells.items()) if workload == "udp"]
    if not rows:
        return
    lines.append("## UDP echo, closed loop (datagrams/s; higher is better)\n")
    lines.append("Server on CPU 0 (receive-and-send loops on one socket: 64 for surge's borrowed receives, 16 for its copying ones and for Asio), load generator on "
                 "CPU 1: one socket keeping `inflight` datagrams outstanding with sendmmsg/recvmmsg, every echo "
                 "byte-checked. On loopback each side's send also runs the other side's receive path in the "
                 "kernel, so the client costs about what the server does: `client CPU` near 100 % means the "
                 "client, not the server, set the pace; then compare server CPU per datagram. `×raw`: median of "
                 "round-by-round ratios to the raw liburing loop.\n")
    lines.append("| cell | server | how it receives | dgrams/s | spread | ×raw | p50 µs | p99 µs | CPU µs/dgram | "
                 "CPU ×raw | syscalls/dgram | allocs/dgram | client CPU |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for cell, servers in rows:
        raw = servers.get(RAW, {})
        for server in ordered(servers):
            runs = servers[server]
            versus_raw = ratio_of(runs, raw, "dgrams_per_s") if raw else None
            cpu_versus_raw = ratio_of(runs, raw, "server_cpu_us_per_dgram") if raw else None
            client = median_of(runs, "client_cpu_share")
            lines.append(
                f"| {cell_label(cell)} | {server} | {UDP_NOTES.get(server, '')} | "
                f"{fmt_rate(median_of(runs, 'dgrams_per_s'))} | ±{fmt(spread_of(runs, 'dgrams_per_s'), 0)}% | "
                f"{fmt(versus_raw)} | {fmt(median_of(runs, 'p50_us'), 0)} | {fmt(median_of(runs, 'p99_us'), 0)} | "
                f"{fmt(median_of(runs, 'server_cpu_us_per_dgram'))} | {fmt(cpu_versus_raw)} | "
                f"{fmt(median_of(runs, 'server_syscalls_per_dgram'))} | "
                f"{fmt(median_of(runs, 'server_allocs_per_dgram'), 4)} | "
                f"{fmt(client * 100 if client is not None else None, 0, '%')} |")
            if server in ("surge_io_uring", "surge_io_uring+borrowed"):
                goals.append((f"udp {cell_label(cell)}", f"{server} ≥ 0.97× raw dgrams/s", versus_raw, 0.97, True))
            if server == "surge_io_uring+borrowed":
                goals.append((f"udp {cell_label(cell)}", "no allocation per datagram",
                              median_of(runs, "server_allocs_per_dgram"), 0.001, False))
    for (workload, cell, server), message in sorted(errors.items()):
        if workload == "udp":
            lines.append(f"| {cell_label(cell)} | {server} | not run: {message} ||||||||||||")
    lines.append("")


def feature_section(cells, lines):
    """Each surge_io_uring variant that switches one feature, against plain surge_io_uring, round by round."""
    variants = sorted({server for (workload, _), servers in cells.items() if workload in ("echo", "stream")
                       for server in servers if server.startswith("surge_io_uring") and server != "surge_io_uring"})
    if not variants:
        return
    lines.append("## io_uring features: what each one changes (against surge_io_uring, same rounds)\n")
    lines.append("Ratios are medians of round-by-round ratios to `surge_io_uring` (its defaults: DEFER_TASKRUN, "
                 "multishot accept, reads into each session's own buffer). rt/s or bytes/s above 1 and CPU "
                 "below 1 mean the variant is better.\n")
    lines.append("| variant | what it changes | cell | rt/s or bytes/s × | server CPU × | syscalls/rt |")
    lines.append("|---|---|---|---|---|---|")
    for variant in variants:
        for (workload, cell), servers in sorted(cells.items()):
            if workload not in ("echo", "stream") or variant not in servers or "surge_io_uring" not in servers:
                continue
            base = servers["surge_io_uring"]
            runs = servers[variant]
            rate = "rt_per_s" if workload == "echo" else "bytes_per_s"
            cpu = "server_cpu_us_per_rt" if workload == "echo" else "server_cpu_us_per_mib"
            syscalls = "server_syscalls_per_rt" if workload == "echo" else "server_syscalls_per_mib"
            lines.append(f"| {variant} | {FEATURE_NOTES.get(variant, '')} | {workload} {cell_label(cell)} | "
                         f"{fmt(ratio_of(runs, base, rate))} | {fmt(ratio_of(runs, base, cpu))} | "
                         f"{fmt(median_of(runs, syscalls))} |")
    lines.append("")


def before_section(cells, lines):
    """Each before_<variant> (an earlier build, --before_server) against surge_<variant>, round by round."""
    pairs = sorted({(server, "surge_" + server[len("before_"):]) for (workload, _), servers in cells.items()
                    for server in servers if server.startswith("before_")})
    if not pairs:
        return
    lines.append("## This build against the earlier one (--before_server, same rounds)\n")
    lines.append("Medians of round-by-round ratios of this build to the earlier build of the same variant: rt/s "
                 "or bytes/s above 1 and CPU below 1 mean this build is better.\n")
    lines.append("| variant | cell | rt/s or bytes/s × | server CPU × | allocs/rt now |")
    lines.append("|---|---|---|---|---|")
    for before, now in pairs:
        for (workload, cell), servers in sorted(cells.items()):
            if workload not in ("echo", "stream") or before not in servers or now not in servers:
                continue
            rate = "rt_per_s" if workload == "echo" else "bytes_per_s"
            cpu = "server_cpu_us_per_rt" if workload == "echo" else "server_cpu_us_per_mib"
            lines.append(f"| {now} | {workload} {cell_label(cell)} | {fmt(ratio_of(servers[now], servers[before], rate))} | "
                         f"{fmt(ratio_of(servers[now], servers[before], cpu))} | "
                         f"{fmt(median_of(servers[now], 'server_allocs_per_rt'), 4)} |")
    lines.append("")


def stream_section(cells, errors, lines):
    rows = [(cell, servers) for (workload, cell), servers in sorted(cells.items()) if workload == "stream"]
    if not rows:
        return
    lines.append("## Streaming, one connection (echoed bytes/s; higher is better)\n")
    lines.append("| write size | server | bytes/s | spread | ×raw | ×peer | CPU µs/MiB | syscalls/MiB |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for cell, servers in rows:
        peer = best_peer(servers, "bytes_per_s")
        raw = servers.get(RAW, {})
        for server in ordered(servers):
            runs = servers[server]
            lines.append(
                f"| {cell_label(cell)} | {server} | {fmt_rate(median_of(runs, 'bytes_per_s'))}B/s | "
                f"±{fmt(spread_of(runs, 'bytes_per_s'), 0)}% | {fmt(ratio_of(runs, raw, 'bytes_per_s') if raw else None)} | "
                f"{fmt(ratio_of(runs, servers[peer], 'bytes_per_s') if peer else None)}{f' ({peer})' if peer else ''} | "
                f"{fmt(median_of(runs, 'server_cpu_us_per_mib'), 0)} | {fmt(median_of(runs, 'server_syscalls_per_mib'), 1)} |")
    lines.append("")


def idle_section(cells, errors, lines, goals):
    rows = [(cell, servers) for (workload, cell), servers in sorted(cells.items()) if workload == "idle"]
    if not rows:
        return
    lines.append("## Idle connections (memory per connection; lower is better)\n")
    lines.append("Fresh server process, 4 KiB buffer per connection (not zeroed). Runtime state = growth of "
                 "malloc's bytes in use per connection minus that buffer (borrowed-read servers have none: "
                 "all of their growth counts, their lent buffers included); RSS = growth of the resident set.\n")
    lines.append("| connections | server | runtime state B/conn | heap B/conn | RSS B/conn |")
    lines.append("|---|---|---|---|---|")
    for cell, servers in rows:
        for server in ordered(servers):
            runs = servers[server]
            runtime_bytes = median_of(runs, "runtime_bytes_per_conn")
            lines.append(f"| {cell_label(cell)} | {server} | {fmt(runtime_bytes, 0)} | "
                         f"{fmt(median_of(runs, 'heap_bytes_per_conn'), 0)} | {fmt(median_of(runs, 'rss_bytes_per_conn'), 0)} |")
            if server == "surge_io_uring":
                goals.append(("idle " + cell_label(cell), "runtime state ≤ 256 B per connection", runtime_bytes, 256, False))
    lines.append("")


def runtime_section(report, lines):
    lines.append("## Runtime overhead, one thread, no I/O (//bench:runtime_bench)\n")
    lines.append("| benchmark | median time | counters |")
    lines.append("|---|---|---|")
    for run in report.get("benchmarks", []):
        if run.get("aggregate_name", "median") != "median" or run.get("error_occurred"):
            continue
        if not run["name"].startswith(("BM_SpawnJoin", "BM_Yield", "BM_TimerInsertCancel", "BM_CrossWorker",
                                       "BM_SleepCancelled")):
            continue
        counters = ", ".join(f"{key} {run[key]:.3g}" for key in ("syscalls/rt",) if key in run)
        lines.append(f"| {run['name']} | {run['real_time']:.1f} {run['time_unit']} | {counters} |")
    lines.append("")


def goals_section(goals, lines):
    lines.append("## Goals\n")
    lines.append("| where | goal | measured | |")
    lines.append("|---|---|---|---|")
    for where, goal, value, target, higher_is_better in goals:
        if value is None:
            verdict = "not measured"
        else:
            met = value >= target if higher_is_better else value <= target
            verdict = "met" if met else "**missed**"
        lines.append(f"| {where} | {goal} | {fmt(value, 3)} | {verdict} |")
    lines.append("")


def round_ratios(runs, reference_runs, key):
    return [run[key] / reference_runs[r][key] for r, run in runs.items()
            if r in reference_runs and run.get(key) and reference_runs[r].get(key)]


def plot(cells, path):
    """Bars of each server's value relative to the raw loop's, per cell (absolute figures are in the
    tables; cells differ by 10x in scale, ratios put them on one axis)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: python3-matplotlib is not installed"
    echo = [(cell, servers) for (workload, cell), servers in sorted(cells.items()) if workload == "echo"]
    stream = [(cell, servers) for (workload, cell), servers in sorted(cells.items()) if workload == "stream"]
    panels = [("echo round trips/s ÷ raw liburing loop (higher is better)", echo, "rt_per_s"),
              ("echo server CPU per round trip ÷ raw liburing loop (lower is better)", echo, "server_cpu_us_per_rt"),
              ("streaming bytes/s ÷ raw liburing loop (higher is better)", stream, "bytes_per_s")]
    panels = [panel for panel in panels if panel[1] and any(RAW in servers for _, servers in panel[1])]
    if not panels:
        return "plot skipped: no cell has the raw loop to compare with"
    figure, axes = plt.subplots(len(panels), 1, figsize=(13, 4.0 * len(panels)), squeeze=False)
    for axis, (title, rows, key) in zip(axes[:, 0], panels):
        servers_seen = [server for server in ORDER if server != RAW and any(server in servers for _, servers in rows)]
        width = 0.8 / max(1, len(servers_seen))
        for index, server in enumerate(servers_seen):
            xs, heights, lows, highs = [], [], [], []
            for position, (cell, servers) in enumerate(rows):
                ratios = round_ratios(servers.get(server, {}), servers.get(RAW, {}), key)
                if not ratios:
                    continue
                middle = statistics.median(ratios)
                xs.append(position + (index - (len(servers_seen) - 1) / 2) * width)
                heights.append(middle)
                lows.append(middle - min(ratios))
                highs.append(max(ratios) - middle)
            axis.bar(xs, heights, width, yerr=[lows, highs], capsize=2, label=server)
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_xticks(range(len(rows)))
        axis.set_xticklabels([cell_label(cell) for cell, _ in rows], fontsize="small")
        axis.set_ylim(bottom=0.4)
        axis.set_title(title + "; bars: median of rounds, whiskers: min–max")
        axis.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(ncol=6, fontsize="small", loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    return f"plot: {path}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", help="echo_compare's --benchmark_out JSON")
    parser.add_argument("--runtime", help="runtime_bench's --benchmark_out JSON")
    parser.add_argument("--sync", help="bench/sync_compare.sh's Markdown table (sync_compare.md), appended as it is")
    parser.add_argument("--files", help="bench/file_compare.sh's Markdown table (file_compare.md), appended as it is")
    parser.add_argument("--http", help="bench/http_compare.sh's Markdown tables (http_compare.md), appended as they are")
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--plot", required=True)
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 if any cell failed (a Tokio server that was not built excepted)")
    args = parser.parse_args()

    if not args.compare:  # only the coordination, file and/or HTTP comparisons were run
        parts = []
        if args.sync:
            parts.append("# surge: coordination primitives\n\n" + open(args.sync).read())
        if args.files:
            parts.append("# surge: file reads (bench/file_compare.sh)\n\n" + open(args.files).read())
        if args.http:
            parts.append("# surge: HTTP/1.1 against nginx (bench/http_compare.sh)\n\n" + open(args.http).read())
        text = "\n".join(parts)
        with open(args.markdown, "w") as handle:
            handle.write(text)
        sys.stdout.write(text)
        return

    compare = load(args.compare)
    cells, errors = collect(compare)
    context = compare.get("context", {})
    rounds = max((len(runs) for servers in cells.values() for runs in servers.values()), default=0)
    lines = ["# surge: backend and peer comparison\n",
             f"Run {context.get('date', '?')} on {context.get('host_name', '?')}: {context.get('num_cpus', '?')} CPUs at "
             f"{context.get('mhz_per_cpu', '?')} MHz, load average {context.get('load_avg', '?')}. "
             f"Client: {context.get('client', '?')}. {rounds} interleaved round(s) per cell.\n"]
    goals = []
    echo_section(cells, errors, lines, goals)
    feature_section(cells, lines)
    before_section(cells, lines)
    stream_section(cells, errors, lines)
    idle_section(cells, errors, lines, goals)
    udp_section(cells, errors, lines, goals)
    if args.runtime:
        runtime_section(load(args.runtime), lines)
    goals_section(goals, lines)
    if args.sync:
        lines.append("## Coordination primitives (bench/sync_compare.sh)\n")
        lines.append(open(args.sync).read())
    if args.files:
        lines.append("## File reads (bench/file_compare.sh)\n")
        lines.append(open(args.files).read())
    if args.http:
        lines.append("## HTTP/1.1 against nginx (bench/http_compare.sh)\n")
        lines.append(open(args.http).read())
    for (workload, cell, server), message in sorted(errors.items()):
        if workload not in ("echo", "udp"):
            lines.append(f"- {workload} {cell_label(cell)} {server}: not run: {message}")
    lines.append(plot(cells, args.plot))
    text = "\n".join(lines) + "\n"
    with open(args.markdown, "w") as handle:
        handle.write(text)
    sys.stdout.write(text)
    failures = [key for key, message in errors.items() if not (key[2] == "tokio" and "no --tokio_server" in message)]
    if args.strict and failures:
        sys.stderr.write(f"report: {len(failures)} cell(s) failed (see 'not run' above)\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
