// tcp_listener.h: TcpListener, a listening TCP socket owned by one worker.
//
//   auto listener = surge::TcpListener::bind(*surge::SocketAddress::parse("127.0.0.1:0"));
//   if (!listener) co_return listener.error();          // e.g. "bind: Address already in use"
//   uint16_t port = listener->local_addr()->port();     // port 0 picked a free port
//   for (;;) {
//     auto stream = co_await listener->accept();
//     if (!stream) continue;                            // e.g. EMFILE: the error says so
//     worker.spawn(serve(std::move(*stream)));
//   }
//
// bind() sets SO_REUSEADDR, so a restarted server can take its port back at once. Accepted streams are
// non-blocking and close-on-exec, and belong to the listener's worker. The listener must not outlive it.
#ifndef SURGE_NET_TCP_LISTENER_H_
#define SURGE_NET_TCP_LISTENER_H_

#include <sys/socket.h>

#include "net/internal/owned_socket.h"
#include "net/socket_address.h"
#include "net/tcp_stream.h"
#include "runtime/internal/io_awaitable.h"
#include "runtime/result.h"

namespace surge {

struct ListenOptions {
  int backlog = SOMAXCONN;
  bool reuse_address = true;
  bool reuse_port = false;  // SO_REUSEPORT: several listeners (one per worker) share a port
};

class TcpListener {
 public:
  // Awaitable of one accept(2): Result<TcpStream>.
  class AcceptAwaitable;

  // Binds and listens on the current worker (call it from a task).
  static Result<TcpListener> bind(const SocketAddress& address, const ListenOptions& options = {});
  // Binds and listens on `worker`.
  static Result<TcpListener> bind(Worker& worker, const SocketAddress& address, const ListenOptions& options = {});

  TcpListener(TcpListener&&) noexcept = default;
  TcpListener& operator=(TcpListener&&) noexcept = default;

  // Waits for the next connection. Awaited on the listener's worker.
  AcceptAwaitable accept() noexcept;

  Result<SocketAddress> local_addr() const;
  Result<void> close() noexcept { return socket_.close(); }
  int native_handle() const noexcept { return socket_.fd(); }

 private:
  explicit TcpListener(internal::OwnedSocket socket) noexcept : socket_(std::move(socket)) { socket_.set_listener(); }

  internal::OwnedSocket socket_;
};

class TcpListener::AcceptAwaitable : public internal::IoAwaitable {
 public:
  AcceptAwaitable(Worker& worker, int fd) noexcept : internal::IoAwaitable(worker, OpCode::kAccept, fd) {
    owned_fd = true;
    // The peer address is not kept: TcpStream::peer_addr() asks the kernel when someone wants it.
  }
  // An accept that completed while its task was being destroyed (worker shutdown, or a cancel that lost
  // the race) still produced a connection: close it rather than leak it.
  ~AcceptAwaitable();

  Result<TcpStream> await_resume() noexcept {
    if (result < 0) return error_for(result, "accept");
    taken_ = true;
    return TcpStream(worker(), result);
  }

 private:
  bool taken_ = false;
};

inline TcpListener::AcceptAwaitable TcpListener::accept() noexcept {
  return AcceptAwaitable(socket_.worker(), socket_.fd());
}

}  // namespace surge

#endif  // SURGE_NET_TCP_LISTENER_H_
