#include "net/unix_stream.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "net/unix_listener.h"

namespace surge {
namespace {

// Connects an already-created socket: one IoAwaitable carrying the address inside the frame.
class ConnectAwaitable : public internal::IoAwaitable {
 public:
  ConnectAwaitable(Worker& worker, int fd, const UnixAddress& target) noexcept
      : internal::IoAwaitable(worker, OpCode::kConnect, fd), address_(target) {
    buffer = const_cast<sockaddr*>(address_.data());
    address_length = address_.size();
    owned_fd = true;
  }
  Result<void> await_resume() const noexcept {
    if (result < 0) return error_for(result, "connect");
    return ok();
  }

 private:
  UnixAddress address_;
};

}  // namespace

Task<Result<UnixStream>> UnixStream::connect(UnixAddress address) {
  Worker* worker = Worker::current();
  if (worker == nullptr) co_return Error(EINVAL, "connect: not called from a task on a surge worker");
  if (address.is_unnamed()) co_return Error(EINVAL, "connect: an unnamed Unix address names no socket");
  auto socket = internal::open_socket(*worker, AF_UNIX, SOCK_STREAM);
  if (!socket) co_return socket.error();
  socket->set_kind(internal::SocketKind::kUnixStream);
  if (auto connected = co_await ConnectAwaitable(*worker, socket->fd(), address); !connected) {
    co_return connected.error();  // the socket closes as it goes out of scope
  }
  co_return UnixStream(std::move(*socket));
}

Result<std::pair<UnixStream, UnixStream>> UnixStream::pair(Worker& worker) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) return Error(errno, "socketpair");
  return std::pair<UnixStream, UnixStream>(UnixStream(worker, fds[0]), UnixStream(worker, fds[1]));
}

Result<std::pair<UnixStream, UnixStream>> UnixStream::pair() {
  Worker* worker = Worker::current();
  if (worker == nullptr) return Error(EINVAL, "socketpair: not called from a task on a surge worker");
  return pair(*worker);
}

Result<PeerCredentials> peer_credentials_of(int fd) noexcept {
  ucred credentials{};
  socklen_t size = sizeof(credentials);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &size) < 0) return Error(errno, "getsockopt(SO_PEERCRED)");
  return PeerCredentials{credentials.pid, credentials.uid, credentials.gid};
}

Result<UnixListener> UnixListener::bind(const UnixAddress& address, const UnixListenOptions& options) {
  Worker* worker = Worker::current();
  if (worker == nullptr) return Error(EINVAL, "bind: not called from a task on a surge worker");
  return bind(*worker, address, options);
}

Result<UnixListener> UnixListener::bind(Worker& worker, const UnixAddress& address, const UnixListenOptions& options) {
  if (address.is_unnamed()) return Error(EINVAL, "bind: a listener needs a path or an abstract name");
  auto socket = internal::open_socket(worker, AF_UNIX, SOCK_STREAM);
  if (!socket) return socket.error();
  if (options.unlink_stale) {
    if (auto removed = internal::BoundPath::remove_if_stale(address, SOCK_STREAM); !removed) return removed.error();
  }
  if (::bind(socket->fd(), address.data(), address.size()) < 0) return Error(errno, "bind");
  internal::BoundPath path;
  if (options.unlink_on_close) {
    auto remembered = internal::BoundPath::remember(address);
    if (!remembered) return remembered.error();
    path = std::move(*remembered);
  }
  // From here on `path` unlinks the file if listen fails.
  if (::listen(socket->fd(), options.backlog) < 0) return Error(errno, "listen");
  return UnixListener(std::move(*socket), std::move(path));
}

UnixListener::AcceptAwaitable::~AcceptAwaitable() {
  if (completed() && !taken_ && result >= 0) ::close(result);
}

}  // namespace surge
