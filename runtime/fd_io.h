// fd_io.h: read and write on file descriptors that are not sockets (pipes, eventfds, character devices).
//
//   std::uint64_t count;
//   auto n = co_await surge::read_fd(worker, event_fd, &count, sizeof(count));   // Result<size_t>
//
// The fd should be non-blocking (the epoll backend needs it; io_uring copes either way). The caller keeps
// the fd open and the buffer alive until the awaitable completes, and calls forget_fd(worker, fd) before
// closing it.
#ifndef SURGE_RUNTIME_FD_IO_H_
#define SURGE_RUNTIME_FD_IO_H_

#include <cstddef>

#include "runtime/internal/io_awaitable.h"
#include "runtime/result.h"
#include "runtime/worker.h"

namespace surge {

class FdTransferAwaitable : public internal::IoAwaitable {
 public:
  FdTransferAwaitable(Worker& worker, OpCode code, int fd, void* data, std::size_t size) noexcept
      : internal::IoAwaitable(worker, code, fd) {
    buffer = data;
    length = size;
  }
  Result<std::size_t> await_resume() const noexcept { return to_size_result(opcode_name(opcode)); }
};

// One read(2): Result<size_t>, 0 at end of file.
inline FdTransferAwaitable read_fd(Worker& worker, int fd, void* data, std::size_t size) noexcept {
  return FdTransferAwaitable(worker, OpCode::kRead, fd, data, size);
}

// One write(2): Result<size_t>, possibly short.
inline FdTransferAwaitable write_fd(Worker& worker, int fd, const void* data, std::size_t size) noexcept {
  return FdTransferAwaitable(worker, OpCode::kWrite, fd, const_cast<void*>(data), size);
}

// Must be called, on the worker's thread, before closing an fd that read_fd/write_fd used on `worker`:
// the backend may keep per-fd state that the next file to get the number would otherwise inherit.
// Operations still in flight on it complete with -ECANCELED (or their result, if they had finished).
inline void forget_fd(Worker& worker, int fd) noexcept { internal::WorkerAccess::backend(worker).forget_fd(fd); }

}  // namespace surge

#endif  // SURGE_RUNTIME_FD_IO_H_
