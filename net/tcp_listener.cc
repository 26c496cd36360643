#include "net/tcp_listener.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace surge {
namespace {

Result<void> enable(int fd, int option, const char* what) {
  return internal::set_socket_option(fd, SOL_SOCKET, option, 1, what);
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
