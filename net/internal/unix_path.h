// unix_path.h (internal): who removes the socket file of a Unix socket bound to a filesystem path.
//
// The rule (UnixListener and UnixDatagram follow it; abstract names have no file and need none of this):
//   - bind() creates the file. The socket that created it remembers its device and inode, and unlinks
//     the path when it is closed or destroyed, but only if the path still names that same file: a
//     server started since (which replaced the file) keeps its own. Opt out with unlink_on_close=false.
//   - A file left behind by a process that died (nothing listens on it: a connect is refused) makes
//     bind() fail with EADDRINUSE, unless unlink_stale is set: then it is unlinked first. A file where a
//     socket is alive (a connect succeeds; a stream server sees that probe as a connection closed at
//     once) and a path that is not a socket are never unlinked: EADDRINUSE either way.
// Both checks are a stat and then an unlink: a file swapped in between by another process is not
// detected (the window is one syscall).
#ifndef SURGE_NET_INTERNAL_UNIX_PATH_H_
#define SURGE_NET_INTERNAL_UNIX_PATH_H_

#include <sys/types.h>

#include <string>
#include <utility>

#include "net/internal/owned_socket.h"
#include "net/unix_address.h"
#include "runtime/result.h"

namespace surge::internal {

class BoundPath {
 public:
  BoundPath() noexcept = default;
  BoundPath(BoundPath&& other) noexcept
      : path_(std::move(other.path_)), device_(other.device_), inode_(other.inode_),
        active_(std::exchange(other.active_, false)) {}
  BoundPath& operator=(BoundPath&& other) noexcept {
    if (this != &other) {
      unlink_if_ours();
      path_ = std::move(other.path_);
      device_ = other.device_;
      inode_ = other.inode_;
      active_ = std::exchange(other.active_, false);
    }
    return *this;
  }
  BoundPath(const BoundPath&) = delete;
  BoundPath& operator=(const BoundPath&) = delete;
  ~BoundPath() { unlink_if_ours(); }

  // Before bind(), with unlink_stale: unlinks a socket file at `address` that nothing is bound to
  // (probed with a connect from a socket of `type`). Nothing to do for abstract names or a free path.
  static Result<void> remove_if_stale(const UnixAddress& address, int type);
  // After a successful bind() to a path: remembers which file it created, to unlink it later.
  static Result<BoundPath> remember(const UnixAddress& address);

  // A new socket of `type` on `worker`, bound to `address` (with `unlink_stale`, a stale socket file is
  // removed first); with `unlink_on_close`, the returned BoundPath unlinks the file it created.
  struct Bound;
  static Result<Bound> bind(Worker& worker, const UnixAddress& address, int type, bool unlink_stale,
                            bool unlink_on_close);

  // Unlinks the path if it still names the file remembered; then forgets it. Idempotent; any thread.
  void unlink_if_ours() noexcept;

 private:
  std::string path_;
  dev_t device_ = 0;
  ino_t inode_ = 0;
  bool active_ = false;
};

struct BoundPath::Bound {
  OwnedSocket socket;
  BoundPath path;
};

}  // namespace surge::internal

#endif  // SURGE_NET_INTERNAL_UNIX_PATH_H_
