// command_line.h: the flags the example programs share (--host, --port, --backend), parsed with clear
// errors on top of flags.h.
#ifndef SURGE_EXAMPLES_COMMAND_LINE_H_
#define SURGE_EXAMPLES_COMMAND_LINE_H_

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "examples/flags.h"
#include "net/socket_address.h"
#include "runtime/backend/backend_factory.h"

namespace surge::examples {

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
