#include "net/unix_stream.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "net/unix_listener.h"
#include "runtime/time.h"

namespace surge {
namespace {

constexpr std::chrono::milliseconds kFirstConnectPause{1};
constexpr std::chrono::milliseconds kLongestConnectPause{16};

}  // namespace

Task<Result<UnixStream>> UnixStream::connect(UnixAddress address) {
  Worker* worker = Worker::current();
  if (worker == nullptr) co_return Error(EINVAL, "connect: not called from a task on a surge worker");
  if (address.is_unnamed()) co_return Error(EINVAL, "connect: an unnamed Unix address names no socket");
  auto socket = internal::open_socket(*worker, AF_UNIX, SOCK_STREAM);
  if (!socket) co_return socket.error();
  socket->set_kind(internal::SocketKind::kUnixStream);
  // A Unix connect is done inside connect(2) itself (no handshake to wait for), so it is a direct call,
  // not a backend operation. The one case that would wait, a listener whose backlog is full, gives
  // EAGAIN and no wake-up when room appears (nothing to wait on in a backend): it is
  // tried again after pauses of 1 to 16 ms, each a cancellable sleep (cancellation and deadlines end it).
  std::chrono::milliseconds pause = kFirstConnectPause;
  for (;;) {
    if (::connect(socket->fd(), address.data(), address.size()) == 0) break;
    const int error = errno;
    if (error == EINTR) continue;
    if (error != EAGAIN) co_return Error(error, "connect");  // the socket closes as it goes out of scope
    if (auto slept = co_await sleep_for(pause); !slept) co_return Error(slept.error().code(), "connect");
    pause = std::min(pause * 2, kLongestConnectPause);
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
  auto bound = internal::BoundPath::bind(worker, address, SOCK_STREAM, options.unlink_stale, options.unlink_on_close);
  if (!bound) return bound.error();
  // From here on the bound path unlinks the file if listen fails.
  if (::listen(bound->socket.fd(), options.backlog) < 0) return Error(errno, "listen");
  return UnixListener(std::move(bound->socket), std::move(bound->path));
}

UnixListener::AcceptAwaitable::~AcceptAwaitable() {
  if (completed() && !taken_ && result >= 0) ::close(result);
}

}  // namespace surge
