// tcp_stream.h: TcpStream, a connected TCP socket owned by one worker.
//
//   auto stream = co_await surge::TcpStream::connect("127.0.0.1:8080");
//   if (!stream) co_return stream.error();                 // e.g. "connect: Connection refused"
//   if (auto sent = co_await stream->write_all(request); !sent) co_return sent.error();
//   std::array<std::byte, 4096> reply;
//   auto n = co_await stream->read(reply);                 // 0 means the peer closed its side
//
// Buffers: every read/write borrows the caller's buffer until the returned awaitable completes (also
// after cancellation); nothing is copied. Awaitables must be awaited right away, on the worker thread that
// owns the stream (the one that connected or accepted it). One read and one write may be in flight at
// the same time; two reads (or two writes) at once complete in submission order but interleave data.
// Errors come back as values carrying the errno and the operation ("recv", "send", "connect", ...).
// Destroying the stream closes the socket; it must not outlive its worker.
#ifndef SURGE_NET_TCP_STREAM_H_
#define SURGE_NET_TCP_STREAM_H_

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>

#include "net/borrowed_buffer.h"
#include "net/buffer.h"
#include "net/internal/owned_socket.h"
#include "net/internal/stream_awaitables.h"
#include "net/socket_address.h"
#include "runtime/internal/io_awaitable.h"
#include "runtime/result.h"
#include "runtime/task.h"

namespace surge {

class TcpStream {
 public:
  // The awaitables are shared with UnixStream (net/internal/stream_awaitables.h).
  // Awaitable of one recv(2): Result<size_t> with 1..size bytes, or 0 at end of stream.
  using ReadAwaitable = internal::StreamReadAwaitable;
  // Awaitable of one send(2): Result<size_t>, possibly fewer bytes than asked (a short write).
  using WriteAwaitable = internal::StreamWriteAwaitable;
  // Awaitable that fills the whole buffer: TransferResult (a Result<void> that says how many bytes
  // arrived); ENODATA (is_unexpected_eof) if the stream ends first.
  using ReadExactAwaitable = internal::StreamReadExactAwaitable;
  // Awaitable that sends the whole buffer, however many send(2) calls it takes: TransferResult (a
  // Result<void> that says how many bytes were sent, also when it failed, timed out or was cancelled).
  using WriteAllAwaitable = internal::StreamWriteAllAwaitable;
  // Awaitable of one receive into a buffer the runtime lends: Result<BorrowedBuffer>, empty at end of
  // stream (see borrowed_buffer.h).
  using ReadBorrowedAwaitable = internal::StreamReadBorrowedAwaitable;

  // Connects to `address` on the current worker.
  static Task<Result<TcpStream>> connect(SocketAddress address);
  // Connects to "host:port": a numeric host directly, a name ("localhost:8080") after resolving it on
  // the blocking pool, trying each address in turn.
  static Task<Result<TcpStream>> connect(std::string_view address);

  // Wraps an already-connected non-blocking socket; takes ownership of the fd.
  TcpStream(Worker& worker, int fd) noexcept : socket_(worker, fd) {}
  TcpStream(TcpStream&&) noexcept = default;
  TcpStream& operator=(TcpStream&&) noexcept = default;

  ReadAwaitable read(MutableBuffer buffer) noexcept;
  // Receives the next chunk without a buffer of the caller's: on io_uring the kernel picks one from the
  // worker's provided-buffer ring (one multishot recv per stream, no SQE per chunk); on epoll it comes
  // from a pool. Once a stream has been read this way, read() and read_exact() on it fail at once with
  // EINVAL, on every backend (the multishot request would race them for the data); move_to() lifts that.
  // Start borrowed reads only with no read() in flight.
  ReadBorrowedAwaitable read_borrowed() noexcept;
  ReadExactAwaitable read_exact(MutableBuffer buffer) noexcept;
  WriteAwaitable write(ConstBuffer buffer) noexcept;
  WriteAllAwaitable write_all(ConstBuffer buffer) noexcept;

  // shutdown(2): kWrite sends FIN after the data already written; the peer's reads then return 0.
  Result<void> shutdown(Shutdown how = Shutdown::kWrite) noexcept;
  // Closes now; later reads and writes fail with EBADF. Also done by the destructor.
  Result<void> close() noexcept { return socket_.close(); }

  Result<SocketAddress> local_addr() const;
  Result<SocketAddress> peer_addr() const;
  // Abortive close: SO_LINGER with a zero timeout, then close() (through the backend, as close() does),
  // so the peer's next read or write fails with ECONNRESET and data not yet sent is discarded. Never
  // waits, also with unsent data queued. Operations in flight end as they do on close(). On a closed
  // stream it does nothing; if setsockopt fails, the socket is closed all the same and the error returned.
  // Any thread (away from the owning worker the close is posted there, as for close()).
  Result<void> abort() noexcept;

  // Socket options, each a setsockopt(2); an error names it ("setsockopt(SO_LINGER): ..."). Any thread.
  // TCP_NODELAY: send small writes at once instead of waiting to coalesce them (Nagle).
  Result<void> set_nodelay(bool enabled) noexcept;
  // SO_LINGER: with a duration, close() (and the destructor) keep trying to send what is queued for up to
  // that long; nullopt (the default) hands unsent data to the kernel and returns at once. Sockets are
  // non-blocking, so close() never waits here either way; a zero duration makes close() abortive (see
  // abort()).
  Result<void> set_linger(std::optional<std::chrono::seconds> linger) noexcept;
  // SO_SNDBUF / SO_RCVBUF, in bytes; Linux doubles the value for its bookkeeping and clamps it to
  // net.core.wmem_max / rmem_max.
  Result<void> set_send_buffer_size(int bytes) noexcept;
  Result<void> set_receive_buffer_size(int bytes) noexcept;

  // Hands the stream to another worker (to spread connections accepted on one worker, say). Call it on
  // the owning worker with nothing in flight on the stream; then use the result only on `target`, for
  // example by moving it into a task spawned there. Never loses bytes: after borrowed reads it stops the
  // stream's borrowed receiving first, and if bytes had already been received that nobody has read, the
  // move fails with EBUSY and the stream stays here, intact (read them, then move). Also EBUSY with an
  // operation in flight; EXDEV away from the owning worker's thread.
  Result<TcpStream> move_to(Worker& target) && noexcept {
    auto moved = std::move(socket_).move_to(target);
    if (!moved) return moved.error();
    return TcpStream(std::move(*moved));
  }

  bool is_open() const noexcept { return socket_.is_open(); }
  int native_handle() const noexcept { return socket_.fd(); }
  Worker& worker() const noexcept { return socket_.worker(); }

 private:
  explicit TcpStream(internal::OwnedSocket socket) noexcept : socket_(std::move(socket)) {}

  internal::OwnedSocket socket_;
};

inline TcpStream::ReadAwaitable TcpStream::read(MutableBuffer buffer) noexcept { return internal::stream_read(socket_, buffer); }
inline TcpStream::ReadBorrowedAwaitable TcpStream::read_borrowed() noexcept { return internal::stream_read_borrowed(socket_); }
inline TcpStream::ReadExactAwaitable TcpStream::read_exact(MutableBuffer buffer) noexcept {
  return internal::stream_read_exact(socket_, buffer);
}
inline TcpStream::WriteAwaitable TcpStream::write(ConstBuffer buffer) noexcept { return internal::stream_write(socket_, buffer); }
inline TcpStream::WriteAllAwaitable TcpStream::write_all(ConstBuffer buffer) noexcept {
  return internal::stream_write_all(socket_, buffer);
}

}  // namespace surge

#endif  // SURGE_NET_TCP_STREAM_H_
