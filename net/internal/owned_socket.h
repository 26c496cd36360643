// owned_socket.h (internal): a socket fd owned by one worker, closed exactly once.
//
// Closing tells the worker's backend to forget the fd first (the epoll backend keeps per-fd state), then
// calls close(2). A socket must not outlive the worker it belongs to.
#ifndef SURGE_NET_INTERNAL_OWNED_SOCKET_H_
#define SURGE_NET_INTERNAL_OWNED_SOCKET_H_

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include "runtime/result.h"
#include "runtime/worker.h"

namespace surge::internal {

// What a socket is, for the report of one that outlived its worker (WorkerAccess::report_outlived).
enum class SocketKind : std::uint8_t { kTcpStream, kTcpListener, kUnixStream, kUnixListener, kUnixDatagram };

class OwnedSocket {
 public:
  OwnedSocket() noexcept = default;
  OwnedSocket(Worker& worker, int fd) noexcept : worker_(&worker), fd_(fd) {}
  OwnedSocket(OwnedSocket&& other) noexcept
      : worker_(other.worker_), fd_(std::exchange(other.fd_, -1)),
        borrowed_reads_(std::exchange(other.borrowed_reads_, false)), kind_(other.kind_) {}
  OwnedSocket& operator=(OwnedSocket&& other) noexcept {
    if (this != &other) {
      (void)close();
      worker_ = other.worker_;
      fd_ = std::exchange(other.fd_, -1);
      borrowed_reads_ = std::exchange(other.borrowed_reads_, false);
      kind_ = other.kind_;
    }
    return *this;
  }
  OwnedSocket(const OwnedSocket&) = delete;
  OwnedSocket& operator=(const OwnedSocket&) = delete;
  ~OwnedSocket() { (void)close(); }

  int fd() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  Worker& worker() const noexcept { return *worker_; }

  // Closes the fd; a second call is a no-op that succeeds. The fd is released even if close(2) fails.
  // Any thread: away from the owning worker's thread the close is posted to that worker (and succeeds).
  // After the worker is gone the fd is closed here and the socket reported as having outlived its
  // worker (WorkerAccess::report_outlived, as a TcpStream or a TcpListener).
  Result<void> close() noexcept;

  // The same fd, now owned by `target`: this worker's backend lets go of it first (Backend::detach_fd),
  // and fails the move, keeping the socket here, if that would lose bytes already received for it.
  // Precondition: no operation in flight on it. Call on the current owner's thread; use the result on
  // `target`'s.
  Result<OwnedSocket> move_to(Worker& target) && noexcept;

  // Whether the socket has been read with borrowed reads (TcpStream::read_borrowed).
  bool borrowed_reads() const noexcept { return borrowed_reads_; }
  void set_borrowed_reads() noexcept { borrowed_reads_ = true; }
  // A listening socket (TcpListener): only what a report names.
  void set_listener() noexcept { kind_ = SocketKind::kTcpListener; }
  // What the socket is (only what a report names); a TcpStream unless set.
  void set_kind(SocketKind kind) noexcept { kind_ = kind; }

 private:
  Worker* worker_ = nullptr;
  int fd_ = -1;
  bool borrowed_reads_ = false;  // in the padding after fd_: the socket stays 16 bytes
  SocketKind kind_ = SocketKind::kTcpStream;  // likewise
};

// setsockopt(fd, level, option, &value): on failure an Error with errno, named `operation`
// ("setsockopt(SO_LINGER)").
template <typename T>
Result<void> set_socket_option(int fd, int level, int option, const T& value, const char* operation) noexcept {
  if (::setsockopt(fd, level, option, &value, sizeof(value)) < 0) return Error(errno, operation);
  return ok();
}

// socket(2) with SOCK_NONBLOCK | SOCK_CLOEXEC (both backends rely on non-blocking sockets).
Result<OwnedSocket> open_stream_socket(Worker& worker, int family);
// The same for any socket type (SOCK_STREAM, SOCK_DGRAM, ...).
Result<OwnedSocket> open_socket(Worker& worker, int family, int type);

}  // namespace surge::internal

#endif  // SURGE_NET_INTERNAL_OWNED_SOCKET_H_
