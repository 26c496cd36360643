// resolve.h: host name resolution (getaddrinfo) that does not block the worker.
//
//   auto addresses = co_await surge::resolve("localhost", 8080);   // Result<std::vector<SocketAddress>>
//
// getaddrinfo runs on the blocking pool (spawn_blocking). Numeric hosts resolve without a lookup. Errors:
// ENOENT "getaddrinfo: host name not found", EAGAIN for a temporary failure, and the errno of a system
// error. The await is not cancellable (getaddrinfo cannot be interrupted).
#ifndef SURGE_NET_RESOLVE_H_
#define SURGE_NET_RESOLVE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "net/socket_address.h"
#include "runtime/result.h"
#include "runtime/task.h"

namespace surge {

// IPv4 and IPv6 addresses for `host`, in the order getaddrinfo ranks them, each with `port`.
Task<Result<std::vector<SocketAddress>>> resolve(std::string host, std::uint16_t port);

}  // namespace surge

#endif  // SURGE_NET_RESOLVE_H_
