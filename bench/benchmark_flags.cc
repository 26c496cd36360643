#include "bench/benchmark_flags.h"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/match.h"
#include "flags/parse.h"

namespace surge::bench {

void parse_benchmark_command_line(int argc, char** argv, absl::string_view usage) {
  std::vector<char*> ours = {argv[0]};
  std::vector<char*> benchmarks = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    const absl::string_view argument = argv[i];
    const bool for_benchmark = absl::StartsWith(argument, "--benchmark_") || argument == "--v" ||
                               absl::StartsWith(argument, "--v=");
    (for_benchmark ? benchmarks : ours).push_back(argv[i]);
  }
  flags::parse_command_line(static_cast<int>(ours.size()), ours.data(), usage);
  int benchmark_argc = static_cast<int>(benchmarks.size());
  benchmarks.push_back(nullptr);  // argv[argc] is null, as main's is
  benchmark::Initialize(&benchmark_argc, benchmarks.data());
  if (benchmark::ReportUnrecognizedArguments(benchmark_argc, benchmarks.data())) std::exit(1);
}

}  // namespace surge::bench
