// unix_stream.h: UnixStream, a connected Unix-domain stream socket owned by one worker, with peer
// credentials and descriptor passing (SCM_RIGHTS).
//
//   auto stream = co_await surge::UnixStream::connect(*surge::UnixAddress::parse("/run/app.sock"));
//   if (!stream) co_return stream.error();                 // e.g. "connect: Connection refused"
//   if (auto sent = co_await stream->write_all(request); !sent) co_return sent.error();
//   auto who = stream->peer_credentials();                 // pid, uid, gid of the peer
//
//   int fds[] = {pipe_write_end};                          // pass descriptors along with bytes
//   auto sent = co_await stream->send_with_fds(std::string_view("x"), fds);
//   auto message = co_await peer.recv_with_fds(buffer);    // message->size bytes, message->fds owned
//
//   auto pair = surge::UnixStream::pair();                 // socketpair(2), both ends on this worker
//
// Reads and writes are TcpStream's (the same awaitables: net/internal/stream_awaitables.h), with the
// same contracts: buffers are borrowed until the awaitable completes, also after cancellation;
// awaitables are awaited right away, on the worker that owns the stream; one read and one write may be in
// flight at once; errors are values naming the operation; destroying the stream closes the socket, and
// it must not outlive its worker.
//
// Descriptors: send_with_fds passes up to kMaxFdsPerMessage (16) descriptors with at least one byte; the
// kernel duplicates them into the receiver when the bytes are read. Read them with recv_with_fds():
// read(), read_exact() and read_borrowed() carry no control buffer, so descriptors arriving there are
// closed by the kernel (never leaked, never seen). A recv_with_fds() returns at most the bytes up to and
// including the message that carried descriptors, so they are never separated from their bytes. Every
// received descriptor is owned by the result (ReceivedFds, owned_fd.h) and has FD_CLOEXEC; one that was
// received when the awaiting frame is destroyed without being resumed (worker shutdown), or that arrived
// with more than 16 (MSG_CTRUNC), is closed; a cancelled receive either completed (it returns its bytes
// and descriptors) or received nothing.
#ifndef SURGE_NET_UNIX_STREAM_H_
#define SURGE_NET_UNIX_STREAM_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <span>
#include <utility>

#include "net/borrowed_buffer.h"
#include "net/buffer.h"
#include "net/internal/owned_socket.h"
#include "net/internal/stream_awaitables.h"
#include "net/internal/unix_messages.h"
#include "net/owned_fd.h"
#include "net/unix_address.h"
#include "runtime/result.h"
#include "runtime/task.h"

namespace surge {

// Who is at the other end of a Unix socket (SO_PEERCRED): the process that connected (or that called
// listen(), for the connecting side; socketpair(2)'s caller, for a pair), as of that moment.
struct PeerCredentials {
  pid_t pid;
  uid_t uid;
  gid_t gid;
};

class UnixStream {
 public:
  // The read and write awaitables: see TcpStream.
  using ReadAwaitable = internal::StreamReadAwaitable;
  using WriteAwaitable = internal::StreamWriteAwaitable;
  using ReadExactAwaitable = internal::StreamReadExactAwaitable;
  using WriteAllAwaitable = internal::StreamWriteAllAwaitable;
  using ReadBorrowedAwaitable = internal::StreamReadBorrowedAwaitable;
  // Awaitable of one sendmsg(2) with descriptors: Result<size_t>, the bytes sent (possibly fewer than
  // asked; the descriptors went with the first of them: send the rest with write_all).
  using SendWithFdsAwaitable = internal::SendMessageAwaitable;
  // Awaitable of one recvmsg(2): Result<Message>.
  class RecvWithFdsAwaitable;

  // What recv_with_fds() received: `size` bytes (0 at end of stream) and the descriptors that came
  // with them.
  struct Message {
    std::size_t size = 0;
    ReceivedFds fds;
  };

  // Connects to `address` (a path or an abstract name) on the current worker. ECONNREFUSED when nothing
  // listens there (a stale socket file), ENOENT when the path does not exist. Completes at once unless
  // the listener's backlog is full; then it waits (retrying every 1 to 16 ms) until the listener accepts,
  // a deadline passes or it is cancelled.
  static Task<Result<UnixStream>> connect(UnixAddress address);
  // A connected pair (socketpair(2)), both ends owned by `worker` (or the current worker).
  static Result<std::pair<UnixStream, UnixStream>> pair(Worker& worker);
  static Result<std::pair<UnixStream, UnixStream>> pair();

  // Wraps an already-connected non-blocking Unix stream socket; takes ownership of the fd.
  UnixStream(Worker& worker, int fd) noexcept : socket_(worker, fd) { socket_.set_kind(internal::SocketKind::kUnixStream); }
  UnixStream(UnixStream&&) noexcept = default;
  UnixStream& operator=(UnixStream&&) noexcept = default;

  ReadAwaitable read(MutableBuffer buffer) noexcept;
  // See TcpStream::read_borrowed (the same on a Unix stream).
  ReadBorrowedAwaitable read_borrowed() noexcept;
  ReadExactAwaitable read_exact(MutableBuffer buffer) noexcept;
  WriteAwaitable write(ConstBuffer buffer) noexcept;
  WriteAllAwaitable write_all(ConstBuffer buffer) noexcept;

  // Sends `data` with the descriptors `fds` (borrowed until the awaitable completes; the kernel takes
  // its own references, so the caller may close them afterwards). EINVAL with more than 16 descriptors
  // or with descriptors and empty data.
  SendWithFdsAwaitable send_with_fds(ConstBuffer data, std::span<const int> fds) noexcept;
  // Receives bytes into `buffer` plus the descriptors sent with them (see the top of the file).
  // EINVAL on a stream read with read_borrowed().
  RecvWithFdsAwaitable recv_with_fds(MutableBuffer buffer) noexcept;

  // shutdown(2): kWrite ends the stream for the peer (its reads return 0).
  Result<void> shutdown(Shutdown how = Shutdown::kWrite) noexcept { return internal::shutdown_socket(native_handle(), how); }
  // Closes now; later reads and writes fail with EBADF. Also done by the destructor.
  Result<void> close() noexcept { return socket_.close(); }

  Result<UnixAddress> local_addr() const { return UnixAddress::local_of(native_handle()); }
  Result<UnixAddress> peer_addr() const { return UnixAddress::peer_of(native_handle()); }
  // SO_PEERCRED. Any thread.
  Result<PeerCredentials> peer_credentials() const noexcept;

  // Hands the stream to another worker: see TcpStream::move_to.
  Result<UnixStream> move_to(Worker& target) && noexcept {
    auto moved = std::move(socket_).move_to(target);
    if (!moved) return moved.error();
    return UnixStream(std::move(*moved));
  }

  bool is_open() const noexcept { return socket_.is_open(); }
  int native_handle() const noexcept { return socket_.fd(); }
  Worker& worker() const noexcept { return socket_.worker(); }

 private:
  explicit UnixStream(internal::OwnedSocket socket) noexcept : socket_(std::move(socket)) {}

  internal::OwnedSocket socket_;
};

class UnixStream::RecvWithFdsAwaitable : public internal::ReceiveMessageAwaitable {
 public:
  RecvWithFdsAwaitable(Worker& worker, int fd, MutableBuffer target, bool mixed) noexcept
      : ReceiveMessageAwaitable(worker, fd, target, /*want_fds=*/true, /*datagram=*/false, mixed) {}
  Result<Message> await_resume() noexcept {
    if (refused()) return Error(EINVAL, kMixedReads);
    if (result < 0) return error_for(result, "recvmsg");
    Message message;
    message.size = static_cast<std::size_t>(result);
    take_fds(message.fds);
    return message;
  }
};

// The same for any socket: SO_PEERCRED of `fd`.
Result<PeerCredentials> peer_credentials_of(int fd) noexcept;

inline UnixStream::ReadAwaitable UnixStream::read(MutableBuffer buffer) noexcept { return internal::stream_read(socket_, buffer); }
inline UnixStream::ReadBorrowedAwaitable UnixStream::read_borrowed() noexcept { return internal::stream_read_borrowed(socket_); }
inline UnixStream::ReadExactAwaitable UnixStream::read_exact(MutableBuffer buffer) noexcept {
  return internal::stream_read_exact(socket_, buffer);
}
inline UnixStream::WriteAwaitable UnixStream::write(ConstBuffer buffer) noexcept { return internal::stream_write(socket_, buffer); }
inline UnixStream::WriteAllAwaitable UnixStream::write_all(ConstBuffer buffer) noexcept {
  return internal::stream_write_all(socket_, buffer);
}
inline UnixStream::SendWithFdsAwaitable UnixStream::send_with_fds(ConstBuffer data, std::span<const int> fds) noexcept {
  return SendWithFdsAwaitable(worker(), native_handle(), data, fds, nullptr, /*datagram=*/false);
}
inline UnixStream::RecvWithFdsAwaitable UnixStream::recv_with_fds(MutableBuffer buffer) noexcept {
  return RecvWithFdsAwaitable(worker(), native_handle(), buffer, socket_.borrowed_reads());
}
inline Result<PeerCredentials> UnixStream::peer_credentials() const noexcept { return peer_credentials_of(native_handle()); }

}  // namespace surge

#endif  // SURGE_NET_UNIX_STREAM_H_
