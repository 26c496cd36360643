#!/usr/bin/python3
"""Compares coordination primitives (channels, oneshot, mutex, semaphore) across implementations: runs each
implementation's benchmark program over every workload in interleaved rounds and prints a Markdown table.

    bench/sync_compare.py --impl=tokio=PATH --impl=asio=PATH --impl=limit=PATH [--impl=surge=PATH] \\
        [--rounds=5] [--workloads=channel_bounded,oneshot] [--ops_scale=1] [--ops=N] [--baseline=tokio] \\
        [--out=results/sync_compare.json] [--markdown=results/sync_compare.md] [--strict]

bench/sync_compare.sh builds the peers and runs this. Needs only the standard library (Debian's python3).

THE PROTOCOL every implementation's program speaks
==================================================
    BINARY --workload=NAME --ops=N

runs workload NAME once and exits. Before timing it runs a short warm-up of the same workload in the same
process (the peers use a tenth of N, from 1 to 200,000 operations, times 4 for the two-thread workloads),
then times N operations and prints exactly ONE line on stdout, a JSON object:

    {"impl": "tokio", "workload": "channel_bounded", "ops": 3000000, "seconds": 0.31,
     "ns_per_op": 103.3, "ops_per_s": 9677419.4, "cpu_seconds": 0.30}

  impl        the implementation's own name (informational: the table uses the --impl name)
  workload    NAME, echoed
  ops         operations actually timed (a two-thread workload with 4 producers or 4 tasks may round N
              down to a multiple of 4)
  seconds     wall time of the timed part (a monotonic clock)
  ns_per_op   seconds * 1e9 / ops;  ops_per_s  ops / seconds
  cpu_seconds optional: the process's CPU time (all threads, user + system) over the timed part
              (CLOCK_PROCESS_CPUTIME_ID); the table shows it as "CPU ns/op"
  plus optional extra fields (e.g. "note", where the tasks ran), shown under the table.
Then it exits 0. Diagnostics go to stderr. A workload the program does not offer: exit status 3 and
nothing on stdout (shown as "not offered", and not asked again). Any other exit status, a timeout, or a
stdout that is not one such JSON line is a failed run (shown as a gap with the reason; the run goes on).

Pinning: one-thread workloads run on one thread pinned to CPU 0; two-thread workloads on two threads (or
runtime workers) pinned to CPU 0 and CPU 1, producers on CPU 0 and the consumer on CPU 1 where the
runtime lets a program place tasks (otherwise say in extra fields where they ran).

Workloads (names exact; "op" is what ns_per_op divides by):
  channel_bounded    one thread, one task: loop { send(i).await; recv().await } on a bounded channel of
                     capacity 1024; op = one send + one recv
  channel_unbounded  the same on an unbounded channel
  oneshot            one thread: create a oneshot channel, send, recv().await; op = all three
  mutex_uncontended  one task: lock().await, then unlock (drop the guard); op = lock + unlock
  semaphore          one task: acquire(1).await, then release; op = acquire + release
  channel_cross_1p   two threads: 1 producer sends N u64 messages into a bounded(1024) channel, 1 consumer
                     receives them on the other thread; op = one message (the table shows M msgs/s)
  channel_cross_4p   the same with 4 producers sending N/4 each (all on the producers' thread)
  mutex_contended    two threads, 4 tasks (2 per thread where the runtime allows placement), each looping
                     lock + increment + unlock N/4 times; op = one lock + unlock, ns_per_op = wall / N

surge's own program plugs in as --impl=surge=bazel-bin/bench/sync_bench once it speaks this protocol.
An --impl value is NAME=COMMAND; COMMAND is split like a shell would (shlex), so fixed extra arguments can
select a variant: --impl='tokio_x=path/to/tokio_sync_bench --some-variant'.

HOW TO READ THE TABLE
Per workload and implementation: the median of the rounds (ns per op, or M msgs/s for the channel_cross
workloads), the spread (max - min) / median of the rounds, the median CPU ns/op (process CPU time per op:
on a busy machine wall time includes waiting for a CPU, CPU time does not; on two threads it adds both
threads, spinning included), and "× BASELINE": the median over rounds of the round's speed ratio
baseline_seconds_per_op / impl_seconds_per_op (the two measured in the same round): above 1 is faster than
the baseline, below 1 slower.
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
import time

WORKLOADS = [
    "channel_bounded",
    "channel_unbounded",
    "oneshot",
    "mutex_uncontended",
    "semaphore",
    "channel_cross_1p",
    "channel_cross_4p",
    "mutex_contended",
]
THROUGHPUT_WORKLOADS = {"channel_cross_1p", "channel_cross_4p"}  # shown as M msgs/s
DEFAULT_OPS = {  # about 0.1-1.5 s per run on a 2-vCPU VM for the slowest peer
    "channel_bounded": 3_000_000,
    "channel_unbounded": 3_000_000,
    "oneshot": 3_000_000,
    "mutex_uncontended": 3_000_000,
    "semaphore": 3_000_000,
    "channel_cross_1p": 2_000_000,
    "channel_cross_4p": 2_000_000,
    "mutex_contended": 2_000_000,
}
NOT_OFFERED_STATUS = 3
REQUIRED_FIELDS = ("impl", "workload", "ops", "seconds", "ns_per_op", "ops_per_s")
STANDARD_FIELDS = set(REQUIRED_FIELDS) | {"cpu_seconds"}


def progress(message):
    print(message, file=sys.stderr, flush=True)


def parse_impl(text):
    if "=" not in text:
        raise argparse.ArgumentTypeError("--impl wants NAME=COMMAND, got %r" % text)
    name, command = text.split("=", 1)
    if not name:
        raise argparse.ArgumentTypeError("--impl wants NAME=COMMAND, got %r" % text)
    return name, command


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Runs coordination-primitive benchmark programs (the protocol is in this file's "
        "docstring) in interleaved rounds and prints a Markdown table.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--impl", action="append", type=parse_impl, default=[], metavar="NAME=COMMAND",
                        help="an implementation's program (repeat); an empty COMMAND is reported as missing")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="comma-separated workloads (default: all): " + ", ".join(WORKLOADS))
    parser.add_argument("--ops_scale", type=float, default=1.0,
                        help="multiplies each workload's default operation count (default 1)")
    parser.add_argument("--ops", type=int, default=0,
                        help="operations per run for every workload (overrides the defaults and --ops_scale)")
    parser.add_argument("--baseline", default="tokio", help="implementation the ratios are against (default tokio)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before one run counts as failed")
    parser.add_argument("--seed", type=int, default=None, help="seed of the per-round shuffle (default: random)")
    parser.add_argument("--out", default="", help="write every round and the summary as JSON here")
    parser.add_argument("--markdown", default="", help="also write the table here")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 if any run of an offered workload failed (missing programs are not failures)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.ops < 0 or args.ops_scale <= 0:
        parser.error("--ops must be >= 0 and --ops_scale > 0")
    if not args.impl:
        parser.error("give at least one --impl=NAME=COMMAND")
    names = [name for name, _ in args.impl]
    if len(set(names)) != len(names):
        parser.error("an --impl name is given twice: " + ", ".join(names))
    args.workloads = [w for w in args.workloads.split(",") if w]
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error("unknown workload(s) %s; known: %s" % (", ".join(unknown), ", ".join(WORKLOADS)))
    return args


def ops_for(workload, args):
    if args.ops:
        return args.ops
    return max(4, int(DEFAULT_OPS[workload] * args.ops_scale) // 4 * 4)


def check_command(command):
    """None when COMMAND's program exists and is executable, else why not."""
    if not command.strip():
        return "no program (its build printed no path; see the build's message above)"
    program = shlex.split(command)[0]
    if os.sep not in program:
        return None  # found on PATH, or the run fails and says so
    if not os.path.isfile(program):
        return "no such program: " + program
    if not os.access(program, os.X_OK):
        return "not executable: " + program
    return None


def run_once(command, workload, ops, timeout):
    """One run: {'status': 'ok'|'not_offered'|'failed', 'result': {...}, 'error': str, 'elapsed': s}."""
    argv = shlex.split(command) + ["--workload=" + workload, "--ops=%d" % ops]
    started = time.monotonic()
    try:
        completed = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                                   text=True)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": "timed out after %g s" % timeout, "elapsed": timeout}
    except OSError as error:
        return {"status": "failed", "error": "cannot run: %s" % error, "elapsed": 0.0}
    elapsed = time.monotonic() - started
    stderr_tail = " | ".join(completed.stderr.strip().splitlines()[-2:])
    if completed.returncode == NOT_OFFERED_STATUS and not completed.stdout.strip():
        return {"status": "not_offered", "elapsed": elapsed}
    if completed.returncode != 0:
        return {"status": "failed", "elapsed": elapsed,
                "error": "exit status %d%s" % (completed.returncode, (": " + stderr_tail) if stderr_tail else "")}
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        return {"status": "failed", "elapsed": elapsed,
                "error": "expected one JSON line on stdout, got %d lines" % len(lines)}
    try:
        result = json.loads(lines[0])
    except ValueError as error:
        return {"status": "failed", "elapsed": elapsed, "error": "stdout is not JSON: %s" % error}
    missing = [field for field in REQUIRED_FIELDS if field not in result]
    if not isinstance(result, dict) or missing:
        return {"status": "failed", "elapsed": elapsed, "error": "JSON lacks " + ", ".join(missing)}
    if result["workload"] != workload:
        return {"status": "failed", "elapsed": elapsed,
                "error": "ran workload %r, asked for %r" % (result["workload"], workload)}
    try:
        if not (result["ops"] > 0 and result["seconds"] > 0 and result["ns_per_op"] > 0):
            raise ValueError
    except (TypeError, ValueError):
        return {"status": "failed", "elapsed": elapsed, "error": "ops, seconds and ns_per_op must be positive"}
    return {"status": "ok", "result": result, "elapsed": elapsed}


def describe(workload, result):
    if workload in THROUGHPUT_WORKLOADS:
        return "%.2f M msgs/s" % (result["ops_per_s"] / 1e6)
    return "%.1f ns/op" % result["ns_per_op"]


def run_all(args, impls):
    """Interleaved rounds. Returns {(workload, name): {'runs': {round: run}, 'gap': str|None}}."""
    rng = random.Random(args.seed)
    cells = {(w, name): {"runs": {}, "gap": None} for w in args.workloads for name in impls}
    for name, command in impls.items():
        problem = check_command(command)
        if problem:
            progress("sync_compare: %s is left out: %s" % (name, problem))
            for w in args.workloads:
                cells[(w, name)]["gap"] = "missing: " + problem
    total = sum(1 for cell in cells.values() if cell["gap"] is None) * args.rounds
    done = 0
    for round_number in range(1, args.rounds + 1):
        for workload in args.workloads:
            order = list(impls)
            rng.shuffle(order)
            ops = ops_for(workload, args)
            for name in order:
                cell = cells[(workload, name)]
                if cell["gap"] is not None:
                    continue
                run = run_once(impls[name], workload, ops, args.timeout)
                run["order"] = order.index(name)
                done += 1
                prefix = "[round %d/%d, %d/%d] %s %s:" % (round_number, args.rounds, done, total, workload, name)
                if run["status"] == "not_offered":
                    cell["gap"] = "not offered"
                    total -= args.rounds - round_number  # not asked again
                    progress("%s not offered" % prefix)
                    continue
                cell["runs"][round_number] = run
                if run["status"] == "ok":
                    result = run["result"]
                    cpu = result.get("cpu_seconds")
                    progress("%s %s%s (%d ops, run %.2f s)" % (
                        prefix, describe(workload, result),
                        ", CPU %.1f ns/op" % (cpu * 1e9 / result["ops"]) if isinstance(cpu, (int, float)) else "",
                        result["ops"], run["elapsed"]))
                else:
                    progress("%s FAILED: %s" % (prefix, run["error"]))
    return cells


def spread(values):
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle else 0.0


def summarise(args, impls, cells):
    """Per cell: figures over the successful rounds, and the ratio against the baseline."""
    summary = {}
    for (workload, name), cell in cells.items():
        ok = {r: run["result"] for r, run in cell["runs"].items() if run["status"] == "ok"}
        failed = {r: run["error"] for r, run in cell["runs"].items() if run["status"] == "failed"}
        entry = {"rounds_ok": len(ok), "rounds_failed": len(failed), "errors": sorted(set(failed.values())),
                 "gap": cell["gap"]}
        if ok:
            ns = [result["ns_per_op"] for result in ok.values()]
            entry["median_ns_per_op"] = statistics.median(ns)
            entry["median_ops_per_s"] = statistics.median(result["ops_per_s"] for result in ok.values())
            entry["spread"] = spread(ns)
            cpu = [result["cpu_seconds"] * 1e9 / result["ops"] for result in ok.values()
                   if isinstance(result.get("cpu_seconds"), (int, float))]
            entry["median_cpu_ns_per_op"] = statistics.median(cpu) if cpu else None
            extras = {}
            for result in ok.values():
                for key, value in result.items():
                    if key not in STANDARD_FIELDS:
                        extras.setdefault(key, [])
                        text = json.dumps(value)
                        if text not in extras[key]:
                            extras[key].append(text)
            entry["extras"] = extras
            baseline = cells.get((workload, args.baseline))
            if baseline is not None and name != args.baseline:
                ratios = []
                for r, result in ok.items():
                    base_run = baseline["runs"].get(r)
                    if base_run and base_run["status"] == "ok":
                        ratios.append(base_run["result"]["ns_per_op"] / result["ns_per_op"])
                entry["ratio_vs_baseline"] = statistics.median(ratios) if ratios else None
                entry["ratio_rounds"] = len(ratios)
        summary[(workload, name)] = entry
    return summary


def table(args, impls, summary):
    names = list(impls)
    if "surge" in names:  # ours first, then the peers in the order given
        names.remove("surge")
        names.insert(0, "surge")
    ratio_header = "× %s" % args.baseline
    lines = [
        "| workload | impl | median | spread | CPU ns/op | %s | rounds |" % ratio_header,
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for workload in args.workloads:
        for name in names:
            entry = summary[(workload, name)]
            if entry["gap"] and not entry["rounds_ok"] and not entry["rounds_failed"]:
                lines.append("| %s | %s | %s | | | | |" % (workload, name, entry["gap"]))
                continue
            if not entry["rounds_ok"]:
                lines.append("| %s | %s | failed: %s | | | | 0/%d |" % (
                    workload, name, "; ".join(entry["errors"])[:120], entry["rounds_failed"]))
                continue
            if workload in THROUGHPUT_WORKLOADS:
                figure = "%.2f M msgs/s" % (entry["median_ops_per_s"] / 1e6)
            else:
                figure = "%.1f ns" % entry["median_ns_per_op"]
            cpu = entry.get("median_cpu_ns_per_op")
            if name == args.baseline:
                ratio = "1 (baseline)"
            elif entry.get("ratio_vs_baseline") is not None:
                ratio = "%.2f" % entry["ratio_vs_baseline"]
            else:
                ratio = "–"
            rounds = "%d/%d" % (entry["rounds_ok"], entry["rounds_ok"] + entry["rounds_failed"])
            lines.append("| %s | %s | %s | %.0f %% | %s | %s | %s |" % (
                workload, name, figure, 100 * entry["spread"], "%.1f" % cpu if cpu is not None else "–",
                ratio, rounds))
            if entry["rounds_failed"]:
                notes.append("- %s / %s: %d round(s) failed: %s" % (
                    workload, name, entry["rounds_failed"], "; ".join(entry["errors"])))
            extras = entry.get("extras", {})
            if extras:
                notes.append("- %s / %s: %s" % (workload, name, "; ".join(
                    "%s = %s" % (key, " or ".join(values)) for key, values in sorted(extras.items()))))
    text = "\n".join(lines) + "\n"
    text += ("\nmedian: of the rounds, ns per op (M msgs/s for channel_cross_*); spread: (max - min) / median of "
             "ns/op; CPU ns/op: process CPU time (all threads) per op; %s: median of round-by-round speed ratios "
             "(baseline time / impl time; > 1 is faster than %s).\n" % (ratio_header, args.baseline))
    if notes:
        text += "\nNotes (extra fields the programs reported, failures):\n\n" + "\n".join(notes) + "\n"
    return text


def main(argv):
    args = parse_args(argv)
    impls = dict(args.impl)
    started = datetime.datetime.now(datetime.timezone.utc)
    progress("sync_compare: %d round(s) of %s over %s" % (args.rounds, ", ".join(args.workloads), ", ".join(impls)))
    cells = run_all(args, impls)
    summary = summarise(args, impls, cells)
    text = table(args, impls, summary)
    heading = "Coordination primitives, %s UTC, %d interleaved round(s), %s, %d CPUs\n\n" % (
        started.strftime("%Y-%m-%d %H:%M"), args.rounds, platform.node() or "this machine", os.cpu_count() or 0)
    print()
    print(heading + text, end="")
    if args.markdown:
        os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
        with open(args.markdown, "w") as handle:
            handle.write(heading + text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        report = {
            "date": started.isoformat(),
            "command": [sys.argv[0]] + list(argv),
            "host": {"node": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
                     "loadavg_at_start": os.getloadavg()},
            "rounds": args.rounds,
            "ops": {w: ops_for(w, args) for w in args.workloads},
            "baseline": args.baseline,
            "impls": impls,
            "runs": [dict(workload=w, impl=name, round=r, **run)
                     for (w, name), cell in cells.items() for r, run in sorted(cell["runs"].items())],
            "summary": [dict(workload=w, impl=name, **entry) for (w, name), entry in summary.items()],
        }
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=1)
        progress("sync_compare: wrote %s" % args.out)
    failures = sum(entry["rounds_failed"] for entry in summary.values())
    if failures:
        progress("sync_compare: %d run(s) failed (see the notes under the table)" % failures)
        if args.strict:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
