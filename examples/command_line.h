// command_line.h: the few "--name=value" flags the example programs take, parsed with clear errors.
#ifndef SURGE_EXAMPLES_COMMAND_LINE_H_
#define SURGE_EXAMPLES_COMMAND_LINE_H_

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "net/socket_address.h"
#include "runtime/backend/backend_factory.h"

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

// --host (default 127.0.0.1, numeric IPv4 or IPv6) and --port as one address; exits with a message that
// names `program` on bad input.
inline SocketAddress address_flags(int argc, char** argv, const char* program, long long default_port,
                                   long long minimum_port) {
  const std::string_view host = flag(argc, argv, "host", "127.0.0.1");
  const long long port = integer_flag(argc, argv, "port", default_port, minimum_port, 65535);
  const std::string joined_port = ":" + std::to_string(port);
  const std::string text = host.find(':') != std::string_view::npos ? "[" + std::string(host) + "]" + joined_port
                                                                    : std::string(host) + joined_port;
  auto address = SocketAddress::parse(text);
  if (!address) {
    std::fprintf(stderr, "%s: %s: %s\n", program, text.c_str(), address.error().message().c_str());
    std::exit(2);
  }
  return *address;
}

// --backend=auto|io_uring|epoll (default auto); exits with a message that names `program` on bad input.
inline BackendChoice backend_flag(int argc, char** argv, const char* program) {
  auto choice = parse_backend_choice(flag(argc, argv, "backend", "auto"));
  if (!choice) {
    std::fprintf(stderr, "%s: --backend: %s\n", program, choice.error().message().c_str());
    std::exit(2);
  }
  return *choice;
}

}  // namespace surge::examples

#endif  // SURGE_EXAMPLES_COMMAND_LINE_H_
