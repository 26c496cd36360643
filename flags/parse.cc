#include "flags/parse.h"

#include <iostream>
#include <vector>

#include "absl/flags/internal/parse.h"
#include "absl/flags/internal/usage.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"

namespace surge::flags {
namespace {

std::string program_name = "program";

// --help lists the program's own flags wherever they are defined (absl's default lists only those of a
// file named after the program), and not abseil's own (--flagfile, --undefok, ...), which --helpfull adds.
bool is_program_flag(absl::string_view filename) { return !absl::StrContains(filename, "absl/"); }

}  // namespace

void parse_command_line(int argc, char** argv, absl::string_view usage) {
  const absl::string_view invoked = argc > 0 ? argv[0] : "program";
  program_name = std::string(invoked.substr(invoked.rfind('/') + 1));
  absl::SetProgramUsageMessage(usage);
  absl::FlagsUsageConfig config;
  config.contains_helpshort_flags = is_program_flag;
  config.contains_help_flags = is_program_flag;
  absl::SetFlagsUsageConfig(config);
  // absl::ParseCommandLine would exit 1 after printing the help it was asked for; this abseil release has
  // no public way to change that, so the usage flags are handled here with the two calls it makes itself.
  const std::vector<char*> positional = absl::flags_internal::ParseCommandLineImpl(
      argc, argv, absl::flags_internal::ArgvListAction::kRemoveParsedArgs,
      absl::flags_internal::UsageFlagsAction::kIgnoreUsage, absl::flags_internal::OnUndefinedFlag::kAbortIfUndefined);
  if (absl::flags_internal::HandleUsageFlags(std::cout, absl::ProgramUsageMessage()) != -1) {
    std::cout.flush();
    std::exit(0);
  }
  if (positional.size() > 1) {
    std::fprintf(stderr, "%s: unexpected argument '%s' (flags are --name=value; see --help)\n", program_name.c_str(),
                 positional[1]);
    std::exit(1);
  }
}

void exit_out_of_range(absl::string_view flag_name, absl::string_view minimum, absl::string_view maximum,
                       absl::string_view value) {
  const std::string message =
      absl::StrCat(program_name, ": --", flag_name, " must be from ", minimum, " to ", maximum, ", got ", value, "\n");
  std::fputs(message.c_str(), stderr);
  std::exit(1);
}

}  // namespace surge::flags
