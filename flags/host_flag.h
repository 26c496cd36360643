// host_flag.h: HostAddress, a numeric IPv4 or IPv6 address without a port, as an absl flag type for the
// programs' --host (which pairs with a separate --port).
//
//   #include "flags/host_flag.h"
//   ABSL_FLAG(surge::flags::HostAddress, host, surge::flags::HostAddress(), "numeric IPv4 or IPv6 address");
//   ...
//   const surge::SocketAddress address = absl::GetFlag(FLAGS_host).with_port(7000);
//
// "127.0.0.1", "::1" and "[::1]" parse; a host name or anything else is a parse error that absl reports
// with the flag's name ("Illegal value 'localhost' specified for flag 'host'; ...").
#ifndef SURGE_FLAGS_HOST_FLAG_H_
#define SURGE_FLAGS_HOST_FLAG_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "net/socket_address.h"

namespace surge::flags {

class HostAddress {
 public:
  // 127.0.0.1, the default of every --host.
  HostAddress() noexcept : address_(SocketAddress::ipv4_loopback(0)) {}

  SocketAddress with_port(std::uint16_t port) const noexcept { return address_.with_port(port); }

  // "127.0.0.1" or "::1" (no brackets, no port).
  std::string to_string() const;

  // Found by absl through argument-dependent lookup.
  friend bool AbslParseFlag(absl::string_view text, HostAddress* host, std::string* error);
  friend std::string AbslUnparseFlag(const HostAddress& host) { return host.to_string(); }

 private:
  SocketAddress address_;
};

}  // namespace surge::flags

#endif  // SURGE_FLAGS_HOST_FLAG_H_
