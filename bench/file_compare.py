#!/usr/bin/python3
"""Compares random 4 KiB file reads across implementations: surge on io_uring and on epoll (blocking pool), a
plain pthread pool doing pread, libuv's uv_fs_read, and fio's psync and io_uring engines (the practical
limits), from one 1 GiB file, at queue depth 1 and 32, from the page cache and with O_DIRECT, everything
pinned to ONE CPU. Interleaved rounds; prints a Markdown table.

    bench/file_compare.py --impl=NAME=COMMAND ... [--file=results/cache/file_compare_1g.dat] [--size_mb=1024]
        [--rounds=3] [--seconds=1.0] [--warmup=0.2] [--workloads=cached_qd1,cached_qd32,direct_qd1,direct_qd32]
        [--cpu=0] [--out=results/file_compare.json] [--markdown=results/file_compare.md] [--strict]

bench/file_compare.sh builds the programs and runs this. Standard library only (Debian's python3).

THE PROTOCOL (bench/peers/file_protocol.h)
    COMMAND --file=PATH --depth=N --seconds=S --warmup=W [--direct] [--block=4096]
reads random block-aligned blocks of PATH with N reads in flight, a warm-up of W seconds and then S measured
seconds, and prints ONE JSON line: {"impl", "reads", "seconds", "cpu_seconds" (process CPU time, all
threads, over the window), "iops", "cpu_us_per_read", "p50_us", "p99_us", ...}. The fio rows are built in
(fio --ioengine=psync|io_uring --rw=randread --bs=4k --iodepth=N --invalidate=0 [--direct=1], JSON output;
CPU from fio's usr_cpu + sys_cpu of the job, latency from its lat_ns percentiles). Every run is started
under `taskset -c CPU`.

The file is created once (random bytes) and reused. Page-cache workloads (cached_*) read it once
sequentially first so that it is resident (fio's --invalidate=0 keeps fio from dropping it); O_DIRECT
workloads (direct_*) bypass the cache. fio psync is synchronous: at depth 32 it still has one read in
flight (iodepth has no effect on a sync engine), so its depth-32 row is its depth-1 behaviour.

HOW TO READ THE TABLE
Per workload and implementation: the median IOPS of the rounds and their spread ((max - min) / median),
the median CPU µs per read (process CPU time: on a busy machine wall time includes waiting for the CPU, CPU
time does not), the median p99 latency, and "× fio_psync", "× fio_io_uring": the median over rounds of the
round's IOPS ratio (the two measured in the same round; above 1 is faster), with the range of those ratios.
"""
import argparse
import datetime
import json
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys

WORKLOADS = {
    "cached_qd1": (False, 1),
    "cached_qd32": (False, 32),
    "direct_qd1": (True, 1),
    "direct_qd32": (True, 32),
}
LIMITS = ["fio_psync", "fio_io_uring"]


def ensure_file(path, size_mb):
    size = size_mb << 20
    if os.path.exists(path) and os.path.getsize(path) == size:
        return False
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "wb") as out:
        chunk = 8 << 20
        for _ in range(size // chunk):
            out.write(os.urandom(chunk))
    os.replace(temporary, path)
    return True


def warm_cache(path):
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def run_program(command, args, direct, depth, cpu, timeout):
    argv = ["taskset", "-c", str(cpu)] + shlex.split(command) + [
        f"--file={args.file}", f"--depth={depth}", f"--seconds={args.seconds}", f"--warmup={args.warmup}"]
    if direct:
        argv.append("--direct")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip()[-300:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if len(lines) != 1:
        raise RuntimeError(f"expected one JSON line, got: {done.stdout.strip()[-300:]}")
    return json.loads(lines[0])


def run_fio(engine, args, direct, depth, cpu, timeout):
    argv = ["taskset", "-c", str(cpu), "fio", "--name=files", f"--filename={args.file}", "--rw=randread",
            "--bs=4k", f"--ioengine={engine}", f"--iodepth={depth}", "--invalidate=0", "--time_based",
            # Whole milliseconds: fio reads "0.3s" as 0, which with time_based means forever.
            f"--runtime={max(1, round(args.seconds * 1000))}ms", f"--ramp_time={round(args.warmup * 1000)}ms", f"--size={args.size_mb}M",
            "--norandommap", "--randrepeat=0", "--thread", "--lat_percentiles=1", "--clat_percentiles=0",
            "--percentile_list=50:99", "--output-format=json"]
    if direct:
        argv.append("--direct=1")
    if engine == "io_uring" and depth > 1:
        argv += [f"--iodepth_batch_submit={depth // 4}", "--iodepth_batch_complete_min=1"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"fio exit {done.returncode}: {done.stderr.strip()[-300:]}")
    text = done.stdout[done.stdout.index("{"):]
    job = json.loads(text)["jobs"][0]
    read = job["read"]
    seconds = read["runtime"] / 1000.0
    ios = read["total_ios"]
    cpu_seconds = (job["usr_cpu"] + job["sys_cpu"]) / 100.0 * seconds
    percentiles = read.get("lat_ns", {}).get("percentile", {})
    def quantile(q):
        for key, value in percentiles.items():
            if abs(float(key) - q) < 1e-6:
                return value / 1000.0
        return float("nan")
    return {"impl": f"fio_{engine}", "reads": ios, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "iops": read["iops"], "cpu_us_per_read": cpu_seconds * 1e6 / ios if ios else float("nan"),
            "p50_us": quantile(50.0), "p99_us": quantile(99.0)}


def spread(values):
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle else float("nan")


def ratio_cell(runs, name, baseline):
    ratios = [a["iops"] / b["iops"] for a, b in zip(runs[name], runs[baseline]) if a and b and b["iops"] > 0]
    if not ratios:
        return None
    return statistics.median(ratios), min(ratios), max(ratios)


def fmt_ratio(cell):
    if cell is None:
        return "–"
    median, low, high = cell
    return f"{median:.2f} ({low:.2f}–{high:.2f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", action="append", default=[], help="NAME=COMMAND (a program speaking the protocol)")
    parser.add_argument("--file", default="results/cache/file_compare_1g.dat")
    parser.add_argument("--size_mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=0.2)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--no_fio", action="store_true", help="leave out the fio rows")
    parser.add_argument("--out", default="results/file_compare.json")
    parser.add_argument("--markdown", default="results/file_compare.md")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any run failed")
    args = parser.parse_args()

    impls = {}
    for spec in args.impl:
        name, _, command = spec.partition("=")
        if command:
            impls[name] = command
    fio = not args.no_fio and subprocess.run(["which", "fio"], capture_output=True).returncode == 0
    names = list(impls) + (LIMITS if fio else [])
    workloads = [w for w in args.workloads.split(",") if w]
    for workload in workloads:
        if workload not in WORKLOADS:
            sys.exit(f"file_compare: unknown workload {workload} (known: {', '.join(WORKLOADS)})")

    if ensure_file(args.file, args.size_mb):
        sys.stderr.write(f"file_compare: created {args.file} ({args.size_mb} MiB)\n")
    timeout = args.seconds + args.warmup + 30
    results = {}  # workload -> name -> [run or None per round]
    errors = []
    for workload in workloads:
        direct, depth = WORKLOADS[workload]
        if not direct:
            warm_cache(args.file)
        runs = {name: [] for name in names}
        for round_index in range(args.rounds):
            order = names[:]
            random.shuffle(order)
            for name in order:
                try:
                    if name in impls:
                        run = run_program(impls[name], args, direct, depth, args.cpu, timeout)
                    else:
                        run = run_fio(name[len("fio_"):], args, direct, depth, args.cpu, timeout)
                except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError) as error:
                    errors.append(f"{workload} {name} round {round_index + 1}: {error}")
                    run = None
                runs[name].append(run)
            sys.stderr.write(f"file_compare: {workload} round {round_index + 1}/{args.rounds} done\n")
        results[workload] = runs

    lines = [f"Random 4 KiB reads of one {args.size_mb} MiB file, everything pinned to CPU {args.cpu} "
             f"(`taskset`); {args.rounds} interleaved round(s) of {args.seconds} s (+{args.warmup} s warm-up); "
             f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs. "
             "IOPS: median of rounds (spread); × columns: median of round-by-round IOPS ratios (range).\n"]
    goals = []
    for workload in workloads:
        runs = results[workload]
        lines.append(f"### {workload} ({'O_DIRECT' if WORKLOADS[workload][0] else 'page cache'}, "
                     f"queue depth {WORKLOADS[workload][1]})\n")
        lines.append("| impl | IOPS | spread | CPU µs/read | p50 µs | p99 µs | × fio_psync | × fio_io_uring | notes |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for name in names:
            good = [run for run in runs[name] if run]
            if not good:
                lines.append(f"| {name} | failed | | | | | | | |")
                continue
            iops = [run["iops"] for run in good]
            notes = []
            if "inline_reads" in good[-1]:
                last = good[-1]
                total = last["inline_reads"] + last["misses"] + last["skipped"]
                if total:
                    notes.append(f"inline {100.0 * last['inline_reads'] / total:.0f} %")
            if name == "fio_psync" and WORKLOADS[workload][1] > 1:
                notes.append("sync engine: depth 1")
            vs_psync = ratio_cell(runs, name, "fio_psync") if fio and name != "fio_psync" else None
            vs_uring = ratio_cell(runs, name, "fio_io_uring") if fio and name != "fio_io_uring" else None
            lines.append(
                f"| {name} | {statistics.median(iops):,.0f} | {100 * spread(iops):.0f} % | "
                f"{statistics.median(r['cpu_us_per_read'] for r in good):.2f} | "
                f"{statistics.median(r['p50_us'] for r in good):.1f} | {statistics.median(r['p99_us'] for r in good):.1f} | "
                f"{fmt_ratio(vs_psync)} | {fmt_ratio(vs_uring)} | {', '.join(notes)} |")
        lines.append("")
        direct = WORKLOADS[workload][0]
        for surge in ("surge_io_uring", "surge_epoll"):
            if surge not in runs:
                continue
            checks = []
            if fio and not direct:
                checks += [("fio_psync", 1.0), ("fio_io_uring", 1.0)]
            if fio and direct:
                checks += [("fio_io_uring", 0.9)]
            checks += [("threadpool", 1.5), ("libuv", 1.0)]
            for baseline, goal in checks:
                if baseline not in runs:
                    continue
                cell = ratio_cell(runs, surge, baseline)
                if cell is None:
                    continue
                met = cell[0] >= goal if baseline != "libuv" else cell[0] > goal
                goals.append(f"| {workload} | {surge} | × {baseline} {'≥' if baseline != 'libuv' else '>'} {goal} | "
                             f"{cell[0]:.2f} | {'met' if met else 'missed'} |")
    if goals:
        lines.append("### Goals (performance-goals.md, \"Files and UDP\")\n")
        lines.append("| workload | row | goal | measured | |")
        lines.append("|---|---|---|---|---|")
        lines += goals
        lines.append("")
    for error in errors:
        lines.append(f"- not run: {error}")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
    with open(args.markdown, "w") as handle:
        handle.write(text)
    with open(args.out, "w") as handle:
        json.dump({"args": vars(args), "results": results, "errors": errors}, handle, indent=1)
    sys.stdout.write(text)
    if args.strict and errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
