// unix_listener.h: UnixListener, a listening Unix-domain stream socket owned by one worker, on a
// filesystem path or an abstract name.
//
//   auto listener = surge::UnixListener::bind(*surge::UnixAddress::parse("/run/app.sock"),
//                                             {.unlink_stale = true});   // a crashed run's file goes
//   if (!listener) co_return listener.error();         // e.g. "bind: Address already in use"
//   for (;;) {
//     auto stream = co_await listener->accept();       // Result<UnixStream>
//     if (!stream) continue;
//     worker.spawn(serve(std::move(*stream)));
//   }                                                   // closing the listener unlinks the path
//
// The socket file (net/internal/unix_path.h has the whole rule): bind() creates it; the listener
// unlinks it when closed or destroyed, if the path still names the file it created (unlink_on_close,
// default on). A file left by a process that died (connects to it are refused) fails bind() with
// EADDRINUSE unless unlink_stale is set; a live socket's file and a path that is not a socket are never
// unlinked. Abstract names have no file: the name is free again when the listener closes.
//
// Accepts go through the backend's accept (on io_uring the worker's multishot accept, as for TCP).
// Accepted streams are non-blocking and close-on-exec and belong to the listener's worker; the listener
// must not outlive it. Any thread may close or destroy it (the close is posted to its worker; the path
// is unlinked on the calling thread).
#ifndef SURGE_NET_UNIX_LISTENER_H_
#define SURGE_NET_UNIX_LISTENER_H_

#include <sys/socket.h>

#include "net/internal/owned_socket.h"
#include "net/internal/unix_path.h"
#include "net/unix_address.h"
#include "net/unix_stream.h"
#include "runtime/internal/io_awaitable.h"
#include "runtime/result.h"

namespace surge {

struct UnixListenOptions {
  int backlog = SOMAXCONN;
  // Unlink a socket file at the path that nothing is bound to before binding (see above).
  bool unlink_stale = false;
  // Unlink the path on close if it is still this listener's file (see above).
  bool unlink_on_close = true;
};

class UnixListener {
 public:
  // Awaitable of one accept(2): Result<UnixStream>.
  class AcceptAwaitable;

  // Binds and listens on the current worker (call it from a task).
  static Result<UnixListener> bind(const UnixAddress& address, const UnixListenOptions& options = {});
  // Binds and listens on `worker`.
  static Result<UnixListener> bind(Worker& worker, const UnixAddress& address, const UnixListenOptions& options = {});

  UnixListener(UnixListener&&) noexcept = default;
  UnixListener& operator=(UnixListener&& other) noexcept {
    if (this != &other) {
      (void)close();
      socket_ = std::move(other.socket_);
      path_ = std::move(other.path_);
    }
    return *this;
  }
  ~UnixListener() { (void)close(); }

  // Waits for the next connection. Awaited on the listener's worker.
  AcceptAwaitable accept() noexcept;

  Result<UnixAddress> local_addr() const { return UnixAddress::local_of(native_handle()); }
  // Unlinks the path (see above), then closes the socket; accepts in flight end with ECANCELED.
  Result<void> close() noexcept {
    path_.unlink_if_ours();
    return socket_.close();
  }
  int native_handle() const noexcept { return socket_.fd(); }
  Worker& worker() const noexcept { return socket_.worker(); }

 private:
  UnixListener(internal::OwnedSocket socket, internal::BoundPath path) noexcept
      : socket_(std::move(socket)), path_(std::move(path)) {
    socket_.set_kind(internal::SocketKind::kUnixListener);
  }

  internal::OwnedSocket socket_;
  internal::BoundPath path_;
};

class UnixListener::AcceptAwaitable : public internal::IoAwaitable {
 public:
  AcceptAwaitable(Worker& worker, int fd) noexcept : internal::IoAwaitable(worker, OpCode::kAccept, fd) { owned_fd = true; }
  // An accept that completed while its task was being destroyed still produced a connection: close it.
  ~AcceptAwaitable();

  Result<UnixStream> await_resume() noexcept {
    if (result < 0) return error_for(result, "accept");
    taken_ = true;
    return UnixStream(worker(), result);
  }

 private:
  bool taken_ = false;
};

inline UnixListener::AcceptAwaitable UnixListener::accept() noexcept { return AcceptAwaitable(worker(), native_handle()); }

}  // namespace surge

#endif  // SURGE_NET_UNIX_LISTENER_H_
