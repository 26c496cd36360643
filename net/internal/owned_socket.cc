#include "net/internal/owned_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace surge::internal {

Result<void> OwnedSocket::close() noexcept {
  if (fd_ < 0) return ok();
  const int fd = std::exchange(fd_, -1);
  worker_->backend().forget_fd(fd);
  // Linux releases the fd even when close(2) reports an error, so never retry it.
  if (::close(fd) < 0) return Error(errno, "close");
  return ok();
}

Result<OwnedSocket> open_stream_socket(Worker& worker, int family) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(errno, "socket");
  return OwnedSocket(worker, fd);
}

}  // namespace surge::internal
