// unix_datagram.h: UnixDatagram, a Unix-domain datagram socket owned by one worker: bound to a path or an
// abstract name, unbound, or connected to one peer; datagrams keep their boundaries and may carry
// descriptors (SCM_RIGHTS).
//
//   auto server = surge::UnixDatagram::bind(*surge::UnixAddress::parse("@metrics"));
//   auto client = surge::UnixDatagram::unbound();
//   co_await client->send_to(std::string_view("hits:1"), server->local_addr().value());
//   std::array<std::byte, 2048> buffer;
//   auto datagram = co_await server->recv_from(buffer);  // Result<Datagram>
//   if (datagram->truncated()) ...                      // it had datagram_size bytes; size fitted
//
//   auto [a, b] = surge::UnixDatagram::pair().value();   // socketpair(2): connected both ways
//
// Every send and receive is one sendmsg/recvmsg through the backend (one SQE on io_uring), with its
// msghdr, address and control buffer inside the awaitable: no allocation per datagram. Buffers (and
// the descriptors a send passes) are borrowed until the awaitable completes, also after cancellation.
// Awaitables are awaited right away, on the worker that owns the socket.
//
// Truncation is never silent: a datagram longer than the buffer fills it, and the result says so
// (truncated(), datagram_size); the rest of that datagram is gone (that is what datagrams do).
// A send to a receiver whose queue is full (net.unix.max_dgram_qlen) waits: it is tried again after
// pauses of 1 to 16 ms until it fits, is cancelled, or its deadline passes (the kernel does not signal
// when an unconnected receiver drains; net/internal/unix_messages.h says why connected sends pause too).
// Descriptors as on streams (unix_stream.h): up to 16 per datagram, owned by the result, FD_CLOEXEC,
// closed if the frame is destroyed before the result is taken or if more than 16 arrived
// (Datagram::fds.truncated()). recv_from() passes no control buffer: descriptors sent to it are
// closed by the kernel.
//
// The socket file of a path-bound socket follows UnixListener's rule (net/internal/unix_path.h): unlinked
// on close if still ours; a stale file replaced only with unlink_stale.
#ifndef SURGE_NET_UNIX_DATAGRAM_H_
#define SURGE_NET_UNIX_DATAGRAM_H_

#include <sys/socket.h>

#include <cstddef>
#include <span>
#include <utility>

#include "net/buffer.h"
#include "net/internal/owned_socket.h"
#include "net/internal/unix_messages.h"
#include "net/internal/unix_path.h"
#include "net/owned_fd.h"
#include "net/unix_address.h"
#include "net/unix_stream.h"
#include "runtime/result.h"

namespace surge {

struct UnixBindOptions {
  // As UnixListenOptions (unix_listener.h).
  bool unlink_stale = false;
  bool unlink_on_close = true;
};

class UnixDatagram {
 public:
  // What a receive returns.
  struct Datagram {
    std::size_t size = 0;           // bytes placed in the buffer
    std::size_t datagram_size = 0;  // the datagram's length as sent (> size when truncated)
    UnixAddress from = UnixAddress::unnamed();  // the sender's address; unnamed if it was not bound
    ReceivedFds fds;                // recv_with_fds() only
    bool truncated() const noexcept { return datagram_size > size; }
  };

  // Awaitable of one sendmsg(2): Result<size_t> (the whole datagram, or an error).
  using SendAwaitable = internal::SendMessageAwaitable;
  // Awaitable of one recvmsg(2): Result<Datagram>.
  class RecvAwaitable;

  // Binds to `address` on `worker` (or the current worker). Binding to UnixAddress::unnamed() autobinds
  // to a fresh abstract name (local_addr() says which).
  static Result<UnixDatagram> bind(Worker& worker, const UnixAddress& address, const UnixBindOptions& options = {});
  static Result<UnixDatagram> bind(const UnixAddress& address, const UnixBindOptions& options = {});
  // An unbound socket: it can send (receivers see an unnamed sender, and cannot answer) and, once
  // connected, receive from its peer.
  static Result<UnixDatagram> unbound(Worker& worker);
  static Result<UnixDatagram> unbound();
  // A connected pair (socketpair(2)).
  static Result<std::pair<UnixDatagram, UnixDatagram>> pair(Worker& worker);
  static Result<std::pair<UnixDatagram, UnixDatagram>> pair();

  UnixDatagram(Worker& worker, int fd) noexcept : socket_(worker, fd) { socket_.set_kind(internal::SocketKind::kUnixDatagram); }
  UnixDatagram(UnixDatagram&&) noexcept = default;
  UnixDatagram& operator=(UnixDatagram&& other) noexcept {
    if (this != &other) {
      (void)close();
      socket_ = std::move(other.socket_);
      path_ = std::move(other.path_);
    }
    return *this;
  }
  ~UnixDatagram() { (void)close(); }

  // connect(2): send() and send_with_fds() go to `peer`, and only its datagrams are received. For Unix
  // sockets it never waits, so it is not awaited. ECONNREFUSED/ENOENT when nothing is bound there.
  Result<void> connect(const UnixAddress& peer) noexcept;

  // Sends one datagram to `to` / to the connected peer, optionally with descriptors.
  SendAwaitable send_to(ConstBuffer data, const UnixAddress& to) noexcept;
  SendAwaitable send(ConstBuffer data) noexcept;
  SendAwaitable send_to_with_fds(ConstBuffer data, std::span<const int> fds, const UnixAddress& to) noexcept;
  SendAwaitable send_with_fds(ConstBuffer data, std::span<const int> fds) noexcept;
  // Receives one datagram and its sender's address; recv_with_fds also the descriptors it carried.
  RecvAwaitable recv_from(MutableBuffer buffer) noexcept;
  RecvAwaitable recv_with_fds(MutableBuffer buffer) noexcept;

  Result<UnixAddress> local_addr() const { return UnixAddress::local_of(native_handle()); }
  Result<UnixAddress> peer_addr() const { return UnixAddress::peer_of(native_handle()); }
  // SO_PEERCRED: set for a socketpair(2) end (Linux records no credentials for connect(2) on datagram
  // sockets: there it reports pid 0 and the overflow uid/gid).
  Result<PeerCredentials> peer_credentials() const noexcept { return peer_credentials_of(native_handle()); }

  // Unlinks the path if it is still ours (see above), then closes the socket.
  Result<void> close() noexcept {
    path_.unlink_if_ours();
    return socket_.close();
  }
  bool is_open() const noexcept { return socket_.is_open(); }
  int native_handle() const noexcept { return socket_.fd(); }
  Worker& worker() const noexcept { return socket_.worker(); }

 private:
  UnixDatagram(internal::OwnedSocket socket, internal::BoundPath path) noexcept
      : socket_(std::move(socket)), path_(std::move(path)) {
    socket_.set_kind(internal::SocketKind::kUnixDatagram);
  }

  internal::OwnedSocket socket_;
  internal::BoundPath path_;
};

class UnixDatagram::RecvAwaitable : public internal::ReceiveMessageAwaitable {
 public:
  RecvAwaitable(Worker& worker, int fd, MutableBuffer target, bool want_fds) noexcept
      : ReceiveMessageAwaitable(worker, fd, target, want_fds, /*datagram=*/true) {}
  Result<Datagram> await_resume() noexcept {
    if (result < 0) return error_for(result, "recvmsg");
    Datagram datagram;
    datagram.datagram_size = static_cast<std::size_t>(result);  // MSG_TRUNC: the full length
    datagram.size = datagram.datagram_size < capacity() ? datagram.datagram_size : capacity();
    datagram.from = sender();
    take_fds(datagram.fds);
    return datagram;
  }
};

inline UnixDatagram::SendAwaitable UnixDatagram::send_to(ConstBuffer data, const UnixAddress& to) noexcept {
  return SendAwaitable(worker(), native_handle(), data, {}, &to, /*datagram=*/true);
}
inline UnixDatagram::SendAwaitable UnixDatagram::send(ConstBuffer data) noexcept {
  return SendAwaitable(worker(), native_handle(), data, {}, nullptr, /*datagram=*/true);
}
inline UnixDatagram::SendAwaitable UnixDatagram::send_to_with_fds(ConstBuffer data, std::span<const int> fds,
                                                                  const UnixAddress& to) noexcept {
  return SendAwaitable(worker(), native_handle(), data, fds, &to, /*datagram=*/true);
}
inline UnixDatagram::SendAwaitable UnixDatagram::send_with_fds(ConstBuffer data, std::span<const int> fds) noexcept {
  return SendAwaitable(worker(), native_handle(), data, fds, nullptr, /*datagram=*/true);
}
inline UnixDatagram::RecvAwaitable UnixDatagram::recv_from(MutableBuffer buffer) noexcept {
  return RecvAwaitable(worker(), native_handle(), buffer, /*want_fds=*/false);
}
inline UnixDatagram::RecvAwaitable UnixDatagram::recv_with_fds(MutableBuffer buffer) noexcept {
  return RecvAwaitable(worker(), native_handle(), buffer, /*want_fds=*/true);
}

}  // namespace surge

#endif  // SURGE_NET_UNIX_DATAGRAM_H_
