#include "bench/peers/sync_protocol.h"

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "flags/parse.h"

ABSL_FLAG(std::string, workload, "",
          "workload to run once: channel_bounded, channel_unbounded, oneshot, mutex_uncontended, semaphore, "
          "channel_cross_1p, channel_cross_4p or mutex_contended (one the binary does not offer exits 3)");
ABSL_FLAG(std::uint64_t, ops, 1000000, "operations to time, 1 to 10^10 (after a warm-up of a tenth of them)");

namespace surge::bench {

SyncArgs parse_sync_args(int argc, char** argv, absl::string_view usage) {
  flags::parse_command_line(argc, argv, usage);
  SyncArgs args;
  args.workload = absl::GetFlag(FLAGS_workload);
  args.ops = flags::get_in_range(FLAGS_ops, std::uint64_t{1}, std::uint64_t{10'000'000'000});
  if (args.workload.empty()) {
    std::cerr << "--workload is required (see --help)\n";
    std::exit(1);
  }
  return args;
}

std::uint64_t warmup_ops(std::uint64_t ops) { return std::clamp<std::uint64_t>(ops / 10, 1, 200'000); }

void pin_current_thread(int cpu) {
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpus > 0 ? cpu % cpus : 0, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

namespace {

double process_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

}  // namespace

Stopwatch::Stopwatch() : wall_start_(std::chrono::steady_clock::now()), cpu_start_(process_cpu_seconds()) {}

double Stopwatch::wall_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count();
}

double Stopwatch::cpu_seconds() const { return process_cpu_seconds() - cpu_start_; }

void print_result(absl::string_view impl, absl::string_view workload, std::uint64_t ops, double seconds,
                  double cpu_seconds, absl::string_view extra_fields) {
  const double n = static_cast<double>(ops);
  std::fputs(absl::StrFormat("{\"impl\": \"%s\", \"workload\": \"%s\", \"ops\": %d, \"seconds\": %.9f, "
                             "\"ns_per_op\": %.3f, \"ops_per_s\": %.1f, \"cpu_seconds\": %.9f%s}\n",
                             impl, workload, ops, seconds, seconds * 1e9 / n, n / seconds, cpu_seconds,
                             extra_fields)
                 .c_str(),
             stdout);
  std::fflush(stdout);
}

void print_result(absl::string_view impl, absl::string_view workload, std::uint64_t ops, const Stopwatch& watch,
                  absl::string_view extra_fields) {
  const double seconds = watch.wall_seconds();
  const double cpu = watch.cpu_seconds();
  print_result(impl, workload, ops, seconds, cpu, extra_fields);
}

}  // namespace surge::bench
