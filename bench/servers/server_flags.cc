#include "bench/servers/server_flags.h"

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/internal/parse.h"
#include "absl/flags/internal/usage.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(int, port, 0, "TCP port to listen on at 127.0.0.1, 0 to 65535 (0: any free port, printed as 'port N')");
ABSL_FLAG(int, cpu, -1, "CPU to pin the serving thread to, -1 to 1023 (-1: no pinning)");
ABSL_FLAG(int, buffer, 64 * 1024, "bytes of each connection's buffer, 1 to 2^26");

namespace surge::bench {
namespace {

int in_range(absl::string_view program, const absl::Flag<int>& flag, const char* name, int minimum, int maximum) {
  const int value = absl::GetFlag(flag);
  if (value < minimum || value > maximum) {
    std::cerr << absl::StrCat(program, ": --", name, " must be from ", minimum, " to ", maximum, ", got ", value,
                              "\n");
    std::exit(1);
  }
  return value;
}

}  // namespace

ServerFlags parse_server_flags(int argc, char** argv, absl::string_view usage) {
  const absl::string_view invoked = argc > 0 ? argv[0] : "server";
  const absl::string_view program = invoked.substr(invoked.rfind('/') + 1);
  absl::SetProgramUsageMessage(usage);
  // --help lists these flags (absl's default would list only those of a file named after the program),
  // not abseil's own, which --helpfull adds.
  absl::FlagsUsageConfig config;
  config.contains_helpshort_flags = [](absl::string_view file) { return !absl::StrContains(file, "absl/"); };
  config.contains_help_flags = config.contains_helpshort_flags;
  absl::SetFlagsUsageConfig(config);
  // What //flags:parse does for surge's programs, repeated here to keep the peers free of surge libraries:
  // absl::ParseCommandLine would exit 1 after the help it was asked for, so the usage flags are handled
  // with the two calls it makes itself.
  const std::vector<char*> positional = absl::flags_internal::ParseCommandLineImpl(
      argc, argv, absl::flags_internal::ArgvListAction::kRemoveParsedArgs,
      absl::flags_internal::UsageFlagsAction::kIgnoreUsage, absl::flags_internal::OnUndefinedFlag::kAbortIfUndefined);
  if (absl::flags_internal::HandleUsageFlags(std::cout, absl::ProgramUsageMessage()) != -1) {
    std::cout.flush();
    std::exit(0);
  }
  if (positional.size() > 1) {
    std::cerr << absl::StrCat(program, ": unexpected argument '", positional[1], "' (see --help)\n");
    std::exit(1);
  }
  return server_flags(program);
}

ServerFlags server_flags(absl::string_view program) {
  ServerFlags flags;
  flags.port = static_cast<std::uint16_t>(in_range(program, FLAGS_port, "port", 0, 65535));
  flags.cpu = in_range(program, FLAGS_cpu, "cpu", -1, 1023);
  flags.buffer_size = static_cast<std::size_t>(in_range(program, FLAGS_buffer, "buffer", 1, 1 << 26));
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &files) != 0) std::cerr << absl::StrCat(program, ": cannot raise the fd limit\n");
  }
  return flags;
}

}  // namespace surge::bench
