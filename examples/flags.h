// flags.h: "--name=value" command-line flags with clear errors and no dependencies, for the example
// programs and the benchmark servers (which must not link the runtime they are compared with).
//
//   const long long port = surge::examples::integer_flag(argc, argv, "port", 7000, 0, 65535);
#ifndef SURGE_EXAMPLES_FLAGS_H_
#define SURGE_EXAMPLES_FLAGS_H_

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace surge::examples {

// Returns the value of "--name=value" in argv, or `fallback` when the flag is absent.
inline std::string_view flag(int argc, char** argv, std::string_view name, std::string_view fallback) {
  for (int i = 1; i < argc; ++i) {
    std::string_view argument = argv[i];
    if (argument.size() > name.size() + 3 && argument.substr(0, 2) == "--" &&
        argument.substr(2, name.size()) == name && argument[2 + name.size()] == '=') {
      return argument.substr(3 + name.size());
    }
  }
  return fallback;
}

// Like flag(), for a whole number in [minimum, maximum]; exits with a message on anything else.
inline long long integer_flag(int argc, char** argv, std::string_view name, long long fallback, long long minimum,
                              long long maximum) {
  const std::string_view text = flag(argc, argv, name, {});
  if (text.empty()) return fallback;
  long long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < minimum || value > maximum) {
    std::fprintf(stderr, "--%.*s must be a whole number from %lld to %lld, got '%.*s'\n",
                 static_cast<int>(name.size()), name.data(), minimum, maximum, static_cast<int>(text.size()),
                 text.data());
    std::exit(2);
  }
  return value;
}

}  // namespace surge::examples

#endif  // SURGE_EXAMPLES_FLAGS_H_
