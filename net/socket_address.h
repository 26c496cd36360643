// socket_address.h: SocketAddress, an IPv4 or IPv6 address with a port.
//
// Parsed from "host:port" with a numeric host: "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:0". Host names
// are not resolved here (that needs a blocking lookup: see resolve.h). Bad input gives an EINVAL Error
// whose operation text says what is wrong, never a crash.
//
//   auto address = surge::SocketAddress::parse("127.0.0.1:0");
//   if (!address) std::cerr << address.error().message();   // e.g. "parse socket address: ..."
#ifndef SURGE_NET_SOCKET_ADDRESS_H_
#define SURGE_NET_SOCKET_ADDRESS_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/result.h"

namespace surge {

class SocketAddress {
 public:
  // "host:port" taken apart without interpreting the host ("[v6]:port" keeps the brackets' content).
  struct HostPort {
    std::string_view host;
    std::uint16_t port;
    bool bracketed;  // the host was written as [..]: an IPv6 literal, never a name
  };
  static Result<HostPort> split_host_port(std::string_view text);

  // Parses "a.b.c.d:port" or "[ipv6]:port"; port 0 asks the kernel for a free port when binding.
  static Result<SocketAddress> parse(std::string_view text);
  // Copies a kernel-provided address; EAFNOSUPPORT unless it is AF_INET or AF_INET6.
  static Result<SocketAddress> from_sockaddr(const sockaddr* address, socklen_t size);

  // The local (getsockname) or remote (getpeername) address of a socket.
  static Result<SocketAddress> local_of(int fd);
  static Result<SocketAddress> peer_of(int fd);

  static SocketAddress ipv4_loopback(std::uint16_t port) noexcept;  // 127.0.0.1:port
  static SocketAddress ipv6_loopback(std::uint16_t port) noexcept;  // [::1]:port
  static SocketAddress ipv4_any(std::uint16_t port) noexcept;       // 0.0.0.0:port

  int family() const noexcept { return storage_.ss_family; }
  std::uint16_t port() const noexcept;
  SocketAddress with_port(std::uint16_t port) const noexcept;

  // "127.0.0.1:8080" or "[::1]:8080"; parse(to_string()) gives the same address back.
  std::string to_string() const;

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return size_; }

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  SocketAddress() = default;

  sockaddr_storage storage_{};
  socklen_t size_ = 0;
};

}  // namespace surge

#endif  // SURGE_NET_SOCKET_ADDRESS_H_
