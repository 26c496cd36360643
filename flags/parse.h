// parse.h: how surge's programs read their command line: absl flags, with the two things absl 20220623
// (Debian 12's) does not do the way a command-line tool should: --help exits 0, and a value outside a
// flag's range is an error.
//
//   ABSL_FLAG(int, port, 7000, "TCP port to listen on");
//
//   int main(int argc, char** argv) {
//     surge::flags::parse_command_line(argc, argv, "echo_server: a TCP echo server ...\nUsage: ...");
//     const int port = surge::flags::get_in_range(FLAGS_port, 0, 65535);
//
// Depends on abseil only.
#ifndef SURGE_FLAGS_PARSE_H_
#define SURGE_FLAGS_PARSE_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace surge::flags {

// Sets `usage` as the program's usage message and parses every flag in argv. --help (and --helpshort,
// --helpfull, --help=substring) prints the usage and the program's flags to stdout and exits 0. An unknown
// flag, a bad value or a positional argument prints a message naming it to stderr and exits 1.
// Call once, from main, before any other thread starts.
void parse_command_line(int argc, char** argv, absl::string_view usage);

// Exits 1 with "program: --name must be from minimum to maximum, got value" on stderr.
[[noreturn]] void exit_out_of_range(absl::string_view flag_name, absl::string_view minimum,
                                    absl::string_view maximum, absl::string_view value);

// The value of `flag` when it is in [minimum, maximum]; otherwise exits through exit_out_of_range().
template <typename T>
T get_in_range(const absl::Flag<T>& flag, T minimum, T maximum) {
  const T value = absl::GetFlag(flag);
  if (value < minimum || value > maximum) {
    exit_out_of_range(absl::GetFlagReflectionHandle(flag).Name(), absl::StrCat(minimum), absl::StrCat(maximum),
                      absl::StrCat(value));
  }
  return value;
}

}  // namespace surge::flags

#endif  // SURGE_FLAGS_PARSE_H_
