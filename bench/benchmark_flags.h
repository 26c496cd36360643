// benchmark_flags.h: the command line of a Google Benchmark binary that also has absl flags of its own.
//
// Google Benchmark parses its flags itself: --benchmark_* and --v. Those go to benchmark::Initialize();
// everything else goes to absl (//flags:parse), so --help prints the binary's usage and exits 0, and an
// unknown flag is an error from whichever parser owns its prefix (a misspelled --benchmark_flter too).
//
//   ABSL_FLAG(int, rounds, 7, "...");
//   int main(int argc, char** argv) {
//     surge::bench::parse_benchmark_command_line(argc, argv, "echo_compare: ...\nUsage: ...");
//     ... register benchmarks ...
//     benchmark::RunSpecifiedBenchmarks();
#ifndef SURGE_BENCH_BENCHMARK_FLAGS_H_
#define SURGE_BENCH_BENCHMARK_FLAGS_H_

#include "absl/strings/string_view.h"

namespace surge::bench {

// Parses argv as described above and initializes Google Benchmark; exits 0 after --help, 1 on any bad
// flag. Call once, from main, before any other thread starts.
void parse_benchmark_command_line(int argc, char** argv, absl::string_view usage);

}  // namespace surge::bench

#endif  // SURGE_BENCH_BENCHMARK_FLAGS_H_
