// sync_protocol.h: what the C++ peers of bench/sync_compare.py share (the protocol itself is written down at
// the top of bench/sync_compare.py):
//
//   BINARY --workload=NAME --ops=N
//
// runs workload NAME once (a short warm-up, then N timed operations), prints exactly one JSON line on
// stdout and exits 0; a workload the binary does not offer exits 3 with nothing on stdout.
//
// Depends on abseil (through //flags:parse) only: never on a surge library.
#ifndef SURGE_BENCH_PEERS_SYNC_PROTOCOL_H_
#define SURGE_BENCH_PEERS_SYNC_PROTOCOL_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace surge::bench {

// Exit status of a binary asked for a workload it does not offer (nothing is printed on stdout).
inline constexpr int kWorkloadNotOffered = 3;

// Messages a bounded channel holds in every workload that has one.
inline constexpr std::size_t kBoundedCapacity = 1024;

struct SyncArgs {
  std::string workload;
  std::uint64_t ops = 0;
};

// Parses --workload and --ops (absl flags: --help exits 0, a bad flag exits 1). An empty --workload is an
// error; whether the workload is offered is the caller's business (exit(kWorkloadNotOffered)).
SyncArgs parse_sync_args(int argc, char** argv, absl::string_view usage);

// Operations of the warm-up run that precedes the timed one: a tenth of `ops`, from 1 to 200,000.
std::uint64_t warmup_ops(std::uint64_t ops);

// Pins the calling thread to `cpu` (modulo the CPUs there are).
void pin_current_thread(int cpu);

// A timed section: wall time (steady_clock) and the process's CPU time (every thread, user + system,
// CLOCK_PROCESS_CPUTIME_ID), which on a busy machine leaves out the time the threads waited for a CPU.
class Stopwatch {
 public:
  Stopwatch();
  double wall_seconds() const;
  double cpu_seconds() const;

 private:
  std::chrono::steady_clock::time_point wall_start_;
  double cpu_start_;
};

// Prints the result line: {"impl": ..., "workload": ..., "ops": N, "seconds": S, "ns_per_op": X,
// "ops_per_s": Y, "cpu_seconds": C<extra_fields>}. `extra_fields` is empty or starts with ", ".
void print_result(absl::string_view impl, absl::string_view workload, std::uint64_t ops, double seconds,
                  double cpu_seconds, absl::string_view extra_fields = "");

// The same, measured by `watch`.
void print_result(absl::string_view impl, absl::string_view workload, std::uint64_t ops, const Stopwatch& watch,
                  absl::string_view extra_fields = "");

}  // namespace surge::bench

#endif  // SURGE_BENCH_PEERS_SYNC_PROTOCOL_H_
