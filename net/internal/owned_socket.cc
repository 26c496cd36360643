#include "net/internal/owned_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace surge::internal {
namespace {

const char* kind_name(SocketKind kind) noexcept {
  switch (kind) {
    case SocketKind::kTcpStream: return "TcpStream";
    case SocketKind::kTcpListener: return "TcpListener";
    case SocketKind::kUnixStream: return "UnixStream";
    case SocketKind::kUnixListener: return "UnixListener";
    case SocketKind::kUnixDatagram: return "UnixDatagram";
  }
  return "socket";
}

}  // namespace

Result<void> OwnedSocket::close() noexcept {
  if (fd_ < 0) return ok();
  const int fd = std::exchange(fd_, -1);
  borrowed_reads_ = false;
  if (Worker::current() != worker_) {
    // Maybe away from home (a stream returned through a JoinHandle, or by a Runtime's block_on): the
    // backend belongs to its worker's thread, so the fd is forgotten and closed there; if the worker is
    // gone, its backend is too, and only the fd is left to close.
    const bool posted = internal::WorkerAccess::run_at_home(
        worker_, 0,  // any incarnation: the fd is still open (see run_at_home)
        [](Worker& worker, std::uint64_t home_fd) noexcept {
          internal::WorkerAccess::backend(worker).forget_fd(static_cast<int>(home_fd));
          ::close(static_cast<int>(home_fd));
        },
        static_cast<std::uint64_t>(fd));
    if (!posted) {
      internal::WorkerAccess::report_outlived(kind_name(kind_));
      if (::close(fd) < 0) return Error(errno, "close");
    }
    return ok();
  }
  internal::WorkerAccess::backend(*worker_).forget_fd(fd);
  // Linux releases the fd even when close(2) reports an error, so never retry it.
  if (::close(fd) < 0) return Error(errno, "close");
  return ok();
}

Result<OwnedSocket> OwnedSocket::move_to(Worker& target) && noexcept {
  if (fd_ < 0) return OwnedSocket(target, -1);
  if (!internal::WorkerAccess::is_own_thread(*worker_)) return Error(EXDEV, "move_to: called away from the socket's worker");
  if (auto detached = internal::WorkerAccess::backend(*worker_).detach_fd(fd_); !detached) return detached.error();
  borrowed_reads_ = false;  // detach_fd stopped them: the stream may be read either way on `target`
  OwnedSocket moved(target, std::exchange(fd_, -1));
  moved.kind_ = kind_;
  return moved;
}

Result<OwnedSocket> open_stream_socket(Worker& worker, int family) { return open_socket(worker, family, SOCK_STREAM); }

Result<OwnedSocket> open_socket(Worker& worker, int family, int type) {
  const int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(errno, "socket");
  return OwnedSocket(worker, fd);
}

}  // namespace surge::internal
