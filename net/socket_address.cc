#include "net/socket_address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace surge {
namespace {

Result<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty()) return Error(EINVAL, "parse socket address: missing port after ':'");
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.size() > 5 || value > 65535) {
    return Error(EINVAL, "parse socket address: port is not a number from 0 to 65535");
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

Result<SocketAddress::HostPort> SocketAddress::split_host_port(std::string_view text) {
  if (text.empty()) return Error(EINVAL, "parse socket address: empty string");
  std::string_view host;
  std::string_view port_text;
  const bool bracketed = text.front() == '[';
  if (bracketed) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) return Error(EINVAL, "parse socket address: '[' without ']'");
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return Error(EINVAL, "parse socket address: expected ':port' after ']'");
    port_text = rest.substr(1);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return Error(EINVAL, "parse socket address: expected host:port");
    host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) {
      return Error(EINVAL, "parse socket address: IPv6 hosts need brackets, as in [::1]:8080");
    }
    port_text = text.substr(colon + 1);
  }
  if (host.empty()) return Error(EINVAL, "parse socket address: missing host before ':'");
  auto port = parse_port(port_text);
  if (!port) return port.error();
  return HostPort{host, *port, bracketed};
}

Result<SocketAddress> SocketAddress::parse(std::string_view text) {
  auto parts = split_host_port(text);
  if (!parts) return parts.error();
  const std::string_view host = parts->host;
  const bool bracketed = parts->bracketed;
  const std::uint16_t port = parts->port;

  // inet_pton wants a NUL-terminated string; longest numeric IPv6 text is 45 characters.
  char host_text[INET6_ADDRSTRLEN + 1];
  if (host.size() >= sizeof(host_text)) return Error(EINVAL, "parse socket address: host is too long");
  std::memcpy(host_text, host.data(), host.size());
  host_text[host.size()] = '\0';

  SocketAddress address;
  if (bracketed) {
    auto* ipv6 = reinterpret_cast<sockaddr_in6*>(&address.storage_);
    if (inet_pton(AF_INET6, host_text, &ipv6->sin6_addr) != 1) {
      return Error(EINVAL, "parse socket address: host is not a numeric IPv6 address");
    }
    ipv6->sin6_family = AF_INET6;
    ipv6->sin6_port = htons(port);
    address.size_ = sizeof(sockaddr_in6);
  } else {
    auto* ipv4 = reinterpret_cast<sockaddr_in*>(&address.storage_);
    if (inet_pton(AF_INET, host_text, &ipv4->sin_addr) != 1) {
      return Error(EINVAL, "parse socket address: host is not a numeric IPv4 address (names are not resolved)");
    }
    ipv4->sin_family = AF_INET;
    ipv4->sin_port = htons(port);
    address.size_ = sizeof(sockaddr_in);
  }
  return address;
}

Result<SocketAddress> SocketAddress::from_sockaddr(const sockaddr* source, socklen_t size) {
  if (source == nullptr) return Error(EINVAL, "socket address: null sockaddr");
  const bool valid = (source->sa_family == AF_INET && size >= sizeof(sockaddr_in)) ||
                     (source->sa_family == AF_INET6 && size >= sizeof(sockaddr_in6));
  if (!valid) return Error(EAFNOSUPPORT, "socket address: not an IPv4 or IPv6 address");
  SocketAddress address;
  address.size_ = source->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  std::memcpy(&address.storage_, source, address.size_);
  return address;
}

namespace {

Result<SocketAddress> name_of(int fd, bool peer) {
  sockaddr_storage storage{};
  socklen_t size = sizeof(storage);
  auto* address = reinterpret_cast<sockaddr*>(&storage);
  const int status = peer ? getpeername(fd, address, &size) : getsockname(fd, address, &size);
  if (status < 0) return Error(errno, peer ? "getpeername" : "getsockname");
  return SocketAddress::from_sockaddr(address, size);
}

}  // namespace

Result<SocketAddress> SocketAddress::local_of(int fd) { return name_of(fd, /*peer=*/false); }

Result<SocketAddress> SocketAddress::peer_of(int fd) { return name_of(fd, /*peer=*/true); }

SocketAddress SocketAddress::ipv4_loopback(std::uint16_t port) noexcept {
  SocketAddress address = ipv4_any(port);
  reinterpret_cast<sockaddr_in*>(&address.storage_)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

SocketAddress SocketAddress::ipv4_any(std::uint16_t port) noexcept {
  SocketAddress address;
  auto* ipv4 = reinterpret_cast<sockaddr_in*>(&address.storage_);
  ipv4->sin_family = AF_INET;
  ipv4->sin_port = htons(port);
  ipv4->sin_addr.s_addr = htonl(INADDR_ANY);
  address.size_ = sizeof(sockaddr_in);
  return address;
}

SocketAddress SocketAddress::ipv6_loopback(std::uint16_t port) noexcept {
  SocketAddress address;
  auto* ipv6 = reinterpret_cast<sockaddr_in6*>(&address.storage_);
  ipv6->sin6_family = AF_INET6;
  ipv6->sin6_port = htons(port);
  ipv6->sin6_addr = in6addr_loopback;
  address.size_ = sizeof(sockaddr_in6);
  return address;
}

std::uint16_t SocketAddress::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
}

SocketAddress SocketAddress::with_port(std::uint16_t port) const noexcept {
  SocketAddress copy = *this;
  if (family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&copy.storage_)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&copy.storage_)->sin6_port = htons(port);
  }
  return copy;
}

std::string SocketAddress::to_string() const {
  char host[INET6_ADDRSTRLEN] = "";
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, host, sizeof(host));
    return std::string(host) + ":" + std::to_string(port());
  }
  inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, host, sizeof(host));
  return "[" + std::string(host) + "]:" + std::to_string(port());
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  if (a.family() != b.family() || a.port() != b.port()) return false;
  if (a.family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&a.storage_)->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(&b.storage_)->sin_addr.s_addr;
  }
  return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&a.storage_)->sin6_addr,
                     &reinterpret_cast<const sockaddr_in6*>(&b.storage_)->sin6_addr, sizeof(in6_addr)) == 0;
}

}  // namespace surge
