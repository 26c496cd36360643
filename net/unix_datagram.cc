#include "net/unix_datagram.h"

#include <sys/socket.h>

#include <cerrno>

namespace surge {
namespace {

Worker* current_worker() { return Worker::current(); }

}  // namespace

Result<UnixDatagram> UnixDatagram::bind(Worker& worker, const UnixAddress& address, const UnixBindOptions& options) {
  auto bound = internal::BoundPath::bind(worker, address, SOCK_DGRAM, options.unlink_stale, options.unlink_on_close);
  if (!bound) return bound.error();
  return UnixDatagram(std::move(bound->socket), std::move(bound->path));
}

Result<UnixDatagram> UnixDatagram::bind(const UnixAddress& address, const UnixBindOptions& options) {
  Worker* worker = current_worker();
  if (worker == nullptr) return Error(EINVAL, "bind: not called from a task on a surge worker");
  return bind(*worker, address, options);
}

Result<UnixDatagram> UnixDatagram::unbound(Worker& worker) {
  auto socket = internal::open_socket(worker, AF_UNIX, SOCK_DGRAM);
  if (!socket) return socket.error();
  return UnixDatagram(std::move(*socket), internal::BoundPath());
}

Result<UnixDatagram> UnixDatagram::unbound() {
  Worker* worker = current_worker();
  if (worker == nullptr) return Error(EINVAL, "socket: not called from a task on a surge worker");
  return unbound(*worker);
}

Result<std::pair<UnixDatagram, UnixDatagram>> UnixDatagram::pair(Worker& worker) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) return Error(errno, "socketpair");
  return std::pair<UnixDatagram, UnixDatagram>(UnixDatagram(worker, fds[0]), UnixDatagram(worker, fds[1]));
}

Result<std::pair<UnixDatagram, UnixDatagram>> UnixDatagram::pair() {
  Worker* worker = current_worker();
  if (worker == nullptr) return Error(EINVAL, "socketpair: not called from a task on a surge worker");
  return pair(*worker);
}

Result<void> UnixDatagram::connect(const UnixAddress& peer) noexcept {
  // AF_UNIX datagram connect(2) only records the peer: it never blocks, also on a blocking socket.
  if (::connect(native_handle(), peer.data(), peer.size()) < 0) return Error(errno, "connect");
  return ok();
}

}  // namespace surge
