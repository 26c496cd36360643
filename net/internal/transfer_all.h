// transfer_all.h: TransferAllAwaitable, the awaitable under TcpStream::read_exact and write_all: it repeats
// one recv or send until the whole buffer has moved, an error, end of stream, a deadline or a cancel.
// Internal to this workspace (net/ and the stream types built on it); the public awaitables derive from it.
//
// Contract: the buffer stays borrowed until the awaitable completes, also after cancellation; a
// deadline or cancel stops it between chunks (or in the kernel) and transferred() says how far it got.
#ifndef SURGE_NET_INTERNAL_TRANSFER_ALL_H_
#define SURGE_NET_INTERNAL_TRANSFER_ALL_H_

#include <cstddef>
#include <cstdint>

#include "runtime/backend/operation.h"
#include "runtime/internal/io_awaitable.h"

namespace surge::internal {

// Shared by read_exact and write_all: repeats one operation until `total` bytes have moved.
class TransferAllAwaitable : public internal::IoAwaitable {
 public:
  bool await_ready() const noexcept { return total_ == 0 || completed(); }

 protected:
  TransferAllAwaitable(Worker& worker, OpCode code, int fd, void* data, std::size_t size) noexcept
      : internal::IoAwaitable(worker, code, fd), base_(static_cast<std::byte*>(data)), total_(size) {
    buffer = data;
    length = size;
    complete = &on_chunk;
    owned_fd = true;
    set_multi_step();
  }

  std::size_t transferred() const noexcept { return transferred_; }
  std::size_t total() const noexcept { return total_; }
  std::int32_t last_result() const noexcept { return result; }

 private:
  static void on_chunk(Operation& operation) noexcept;

  std::byte* base_;
  std::size_t total_;
  std::size_t transferred_ = 0;
};

}  // namespace surge::internal

#endif  // SURGE_NET_INTERNAL_TRANSFER_ALL_H_
