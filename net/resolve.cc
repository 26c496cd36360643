#include "net/resolve.h"

#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>

#include "runtime/spawn_blocking.h"

namespace surge {
namespace {

Result<std::vector<SocketAddress>> lookup(const std::string& host, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // No AI_ADDRCONFIG: it hides 127.0.0.1 in network namespaces that only have loopback.
  addrinfo* found = nullptr;
  const int status = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  switch (status) {
    case 0:
      break;
    case EAI_NONAME:
    case EAI_NODATA:
      return Error(ENOENT, "getaddrinfo: host name not found");
    case EAI_AGAIN:
      return Error(EAGAIN, "getaddrinfo: temporary failure in name resolution");
    case EAI_MEMORY:
      return Error(ENOMEM, "getaddrinfo");
    case EAI_SYSTEM:
      return Error(errno, "getaddrinfo");
    default:
      return Error(EINVAL, "getaddrinfo: lookup failed");
  }
  std::vector<SocketAddress> addresses;
  for (addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    auto address = SocketAddress::from_sockaddr(entry->ai_addr, entry->ai_addrlen);
    if (address) addresses.push_back(address->with_port(port));
  }
  freeaddrinfo(found);
  if (addresses.empty()) return Error(ENOENT, "getaddrinfo: no IPv4 or IPv6 address for the host");
  return addresses;
}

}  // namespace

Task<Result<std::vector<SocketAddress>>> resolve(std::string host, std::uint16_t port) {
  co_return co_await spawn_blocking([&host, port] { return lookup(host, port); });
}

}  // namespace surge
