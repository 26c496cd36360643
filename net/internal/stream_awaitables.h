// stream_awaitables.h (internal): the awaitables of a connected stream socket's reads and writes, shared
// by TcpStream and UnixStream (each names them as its own nested types: TcpStream::ReadAwaitable is
// internal::StreamReadAwaitable). One recv(2) or send(2) each, or, for read_exact and write_all, as many
// as it takes (TransferAllAwaitable). Contracts (buffers borrowed until completion, cancellation,
// deadlines) are the ones written at the top of tcp_stream.h.
#ifndef SURGE_NET_INTERNAL_STREAM_AWAITABLES_H_
#define SURGE_NET_INTERNAL_STREAM_AWAITABLES_H_

#include <sys/socket.h>

#include <cerrno>
#include <cstddef>

#include "net/borrowed_buffer.h"
#include "net/buffer.h"
#include "net/internal/owned_socket.h"
#include "net/internal/transfer_all.h"
#include "runtime/internal/io_awaitable.h"
#include "runtime/result.h"

namespace surge {

enum class Shutdown { kRead = SHUT_RD, kWrite = SHUT_WR, kBoth = SHUT_RDWR };

// The error of a read() or read_exact() on a stream read with read_borrowed().
inline constexpr const char* kMixedReads = "read: the stream is read with read_borrowed() (see TcpStream::read_borrowed)";

}  // namespace surge

namespace surge::internal {

class StreamReadAwaitable : public internal::IoAwaitable {
 public:
  // `mixed`: the stream is read with read_borrowed(); the read fails at once (see read_borrowed()).
  StreamReadAwaitable(Worker& worker, int fd, MutableBuffer target, bool mixed = false) noexcept
      : internal::IoAwaitable(worker, OpCode::kRecv, fd) {
    owned_fd = true;
    buffer = target.data;
    length = target.size;
    if (mixed) refuse(-EINVAL);
  }
  Result<std::size_t> await_resume() const noexcept {
    if (refused()) return Error(EINVAL, kMixedReads);
    return to_size_result("recv");
  }
};

class StreamReadBorrowedAwaitable : public internal::IoAwaitable {
 public:
  StreamReadBorrowedAwaitable(Worker& worker, int fd) noexcept : internal::IoAwaitable(worker, OpCode::kRecvBorrowed, fd) {
    owned_fd = true;
  }
  // A receive that completed while its task was being destroyed (worker shutdown) holds a buffer
  // nobody took: give it back.
  ~StreamReadBorrowedAwaitable() {
    if (completed() && !taken_ && result > 0) internal::WorkerAccess::backend(worker()).release_buffer(buffer_id);
  }
  Result<BorrowedBuffer> await_resume() noexcept {
    if (result < 0) return error_for(result, "recv");
    taken_ = true;
    if (result == 0) return BorrowedBuffer();
    return BorrowedBuffer(worker(), buffer_id, static_cast<const std::byte*>(buffer),
                          static_cast<std::size_t>(result));
  }

 private:
  bool taken_ = false;
};

class StreamWriteAwaitable : public internal::IoAwaitable {
 public:
  StreamWriteAwaitable(Worker& worker, int fd, ConstBuffer source) noexcept : internal::IoAwaitable(worker, OpCode::kSend, fd) {
    owned_fd = true;
    buffer = const_cast<void*>(source.data);  // send only reads it
    length = source.size;
  }
  Result<std::size_t> await_resume() const noexcept { return to_size_result("send"); }
};

class StreamReadExactAwaitable : public internal::TransferAllAwaitable {
 public:
  StreamReadExactAwaitable(Worker& worker, int fd, MutableBuffer target, bool mixed = false) noexcept
      : TransferAllAwaitable(worker, OpCode::kRecv, fd, target.data, target.size) {
    if (mixed) refuse(-EINVAL);
  }
  TransferResult await_resume() const noexcept;
};

class StreamWriteAllAwaitable : public internal::TransferAllAwaitable {
 public:
  StreamWriteAllAwaitable(Worker& worker, int fd, ConstBuffer source) noexcept
      : TransferAllAwaitable(worker, OpCode::kSend, fd, const_cast<void*>(source.data), source.size) {}
  TransferResult await_resume() const noexcept;
};

// The reads and writes of a stream socket (TcpStream, UnixStream forward to these), in one place with the
// rule that ties them: once a stream is read with read_borrowed(), read() and read_exact() are refused.
inline StreamReadAwaitable stream_read(OwnedSocket& socket, MutableBuffer buffer) noexcept {
  return StreamReadAwaitable(socket.worker(), socket.fd(), buffer, socket.borrowed_reads());
}
inline StreamReadBorrowedAwaitable stream_read_borrowed(OwnedSocket& socket) noexcept {
  socket.set_borrowed_reads();
  return StreamReadBorrowedAwaitable(socket.worker(), socket.fd());
}
inline StreamReadExactAwaitable stream_read_exact(OwnedSocket& socket, MutableBuffer buffer) noexcept {
  return StreamReadExactAwaitable(socket.worker(), socket.fd(), buffer, socket.borrowed_reads());
}
inline StreamWriteAwaitable stream_write(OwnedSocket& socket, ConstBuffer buffer) noexcept {
  return StreamWriteAwaitable(socket.worker(), socket.fd(), buffer);
}
inline StreamWriteAllAwaitable stream_write_all(OwnedSocket& socket, ConstBuffer buffer) noexcept {
  return StreamWriteAllAwaitable(socket.worker(), socket.fd(), buffer);
}

// shutdown(2) on a stream socket, the error named "shutdown".
Result<void> shutdown_socket(int fd, Shutdown how) noexcept;

}  // namespace surge::internal

#endif  // SURGE_NET_INTERNAL_STREAM_AWAITABLES_H_
