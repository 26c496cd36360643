#include "net/tcp_listener.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace surge {
namespace {

Result<void> enable(int fd, int option, const char* what) {
  const int one = 1;
  if (setsockopt(fd, SOL_SOCKET, option, &one, sizeof(one)) < 0) return Error(errno, what);
  return ok();
}

}  // namespace

Result<TcpListener> TcpListener::bind(const SocketAddress& address, const ListenOptions& options) {
  Worker* worker = Worker::current();
  if (worker == nullptr) return Error(EINVAL, "bind: not called from a task on a surge worker");
  return bind(*worker, address, options);
}

Result<TcpListener> TcpListener::bind(Worker& worker, const SocketAddress& address, const ListenOptions& options) {
  auto socket = internal::open_stream_socket(worker, address.family());
  if (!socket) return socket.error();
  if (options.reuse_address) {
    if (auto set = enable(socket->fd(), SO_REUSEADDR, "setsockopt(SO_REUSEADDR)"); !set) return set.error();
  }
  if (options.reuse_port) {
    if (auto set = enable(socket->fd(), SO_REUSEPORT, "setsockopt(SO_REUSEPORT)"); !set) return set.error();
  }
  if (::bind(socket->fd(), address.data(), address.size()) < 0) return Error(errno, "bind");
  if (::listen(socket->fd(), options.backlog) < 0) return Error(errno, "listen");
  return TcpListener(std::move(*socket));
}

Result<SocketAddress> TcpListener::local_addr() const { return SocketAddress::local_of(socket_.fd()); }

TcpListener::AcceptAwaitable::~AcceptAwaitable() {
  if (completed() && !taken_ && result >= 0) ::close(result);
}

}  // namespace surge
