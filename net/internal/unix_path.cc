#include "net/internal/unix_path.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace surge::internal {

Result<void> BoundPath::remove_if_stale(const UnixAddress& address, int type) {
  if (!address.is_path()) return ok();
  struct stat status {};
  if (::lstat(address.path_c_str(), &status) < 0) {
    if (errno == ENOENT) return ok();
    return Error(errno, "bind: stat of the existing socket path");
  }
  if (!S_ISSOCK(status.st_mode)) {
    return Error(EADDRINUSE, "bind: the path exists and is not a socket (unlink_stale removes only socket files)");
  }
  const int probe = ::socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe < 0) return Error(errno, "bind: socket for probing the existing socket path");
  const int connected = ::connect(probe, address.data(), address.size());
  const int error = connected < 0 ? errno : 0;
  ::close(probe);
  if (error == 0 || error == EAGAIN || error == EINPROGRESS || error == EPROTOTYPE) {
    // Someone is bound there (EAGAIN: a listener with a full backlog; EPROTOTYPE: a socket of the
    // other type): alive, never ours to remove.
    return Error(EADDRINUSE, "bind: a live socket is bound to the path (unlink_stale removes only stale ones)");
  }
  if (error == ENOENT) return ok();  // gone meanwhile
  if (error != ECONNREFUSED) return Error(error, "bind: connect probing the existing socket path");
  if (::unlink(address.path_c_str()) < 0 && errno != ENOENT) return Error(errno, "bind: unlink of the stale socket path");
  return ok();
}

Result<BoundPath> BoundPath::remember(const UnixAddress& address) {
  BoundPath bound;
  if (!address.is_path()) return bound;
  struct stat status {};
  if (::lstat(address.path_c_str(), &status) < 0) return Error(errno, "bind: stat of the new socket path");
  bound.path_ = std::string(address.name());
  bound.device_ = status.st_dev;
  bound.inode_ = status.st_ino;
  bound.active_ = true;
  return bound;
}

void BoundPath::unlink_if_ours() noexcept {
  if (!std::exchange(active_, false)) return;
  struct stat status {};
  if (::lstat(path_.c_str(), &status) == 0 && S_ISSOCK(status.st_mode) && status.st_dev == device_ &&
      status.st_ino == inode_) {
    (void)::unlink(path_.c_str());
  }
}

Result<BoundPath::Bound> BoundPath::bind(Worker& worker, const UnixAddress& address, int type, bool unlink_stale,
                                        bool unlink_on_close) {
  auto socket = open_socket(worker, AF_UNIX, type);
  if (!socket) return socket.error();
  if (unlink_stale) {
    if (auto removed = remove_if_stale(address, type); !removed) return removed.error();
  }
  if (::bind(socket->fd(), address.data(), address.size()) < 0) return Error(errno, "bind");
  Bound bound{std::move(*socket), BoundPath()};
  if (unlink_on_close) {
    auto remembered = remember(address);
    if (!remembered) return remembered.error();
    bound.path = std::move(*remembered);
  }
  return bound;
}

}  // namespace surge::internal
