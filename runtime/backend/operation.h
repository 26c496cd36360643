// operation.h: one asynchronous I/O request as every backend sees it.
//
// An Operation is intrusive (libunifex style): it lives inside the awaiter, which lives in the awaiting
// coroutine's frame, so submitting one allocates nothing. The caller fills in the request fields and
// `complete`, calls Backend::submit(), and must keep the Operation and every buffer it points to alive
// until `complete` has been called, also after Backend::cancel() (the kernel may still be writing).
//
// Completion semantics are the same on every backend: `result` is the syscall's return value (>= 0) or
// -errno, exactly once, delivered from inside Backend::poll() on the thread that owns the backend.
//
//   struct Read : surge::Operation { std::coroutine_handle<> waiter; };
//   Read read;
//   read.opcode = surge::OpCode::kRecv;
//   read.fd = socket;
//   read.buffer = bytes;
//   read.length = sizeof(bytes);
//   read.complete = [](surge::Operation& op) noexcept { static_cast<Read&>(op).waiter.resume(); };
//   backend.submit(read);            // op.result: bytes received, 0 at end of stream, or -errno
//
// Inside surge, awaitables derive from internal::IoAwaitable (runtime/internal/io_awaitable.h), which does
// this, plus deadlines and cancellation.
#ifndef SURGE_RUNTIME_BACKEND_OPERATION_H_
#define SURGE_RUNTIME_BACKEND_OPERATION_H_

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

namespace surge {

enum class OpCode : std::uint8_t {
  kAccept,   // accept4(fd, address, &address_length, SOCK_NONBLOCK | SOCK_CLOEXEC) -> new fd
  kConnect,  // connect(fd, address, address_length) -> 0
  kRecv,     // recv(fd, buffer, length, message_flags) -> bytes, 0 at end of stream
  kSend,     // send(fd, buffer, length, message_flags | MSG_NOSIGNAL) -> bytes
  kRead,     // read(fd, buffer, length) for non-sockets (eventfd, signalfd, pipes)
  kWrite,    // write(fd, buffer, length) for non-sockets
  kClose,    // close(fd) -> 0; the backend forgets the fd first (no operation may be in flight on it)
  // recv into a buffer the backend lends (io_uring: a provided-buffer ring fed by multishot recv; epoll:
  // a pool) -> bytes, 0 at end of stream. On success `buffer` points at the bytes and `buffer_id` names
  // the loan, which the caller must end with Backend::release_buffer(buffer_id), exactly once.
  kRecvBorrowed,
};

// Human-readable name of the syscall an OpCode performs ("recv", "accept", ...), used in Error values.
const char* opcode_name(OpCode opcode) noexcept;

// True for the operations that wait for the fd to become readable (accept, recv, read).
constexpr bool waits_for_input(OpCode opcode) noexcept {
  return opcode == OpCode::kAccept || opcode == OpCode::kRecv || opcode == OpCode::kRead ||
         opcode == OpCode::kRecvBorrowed;
}

namespace internal {
struct OperationAccess;
}  // namespace internal

// The fields are ordered so that the structure has no holes (104 bytes on 64-bit Linux, checked below):
// it lives in every awaiter, and awaiters live in coroutine frames, one or two per connection.
class Operation {
 public:
  using CompleteFn = void (*)(Operation& operation) noexcept;

  // --- Request, filled in by the caller before submit(). ---
  // recv/send/read/write: the data buffer. accept: sockaddr out (may be null). connect: sockaddr in.
  void* buffer = nullptr;
  std::size_t length = 0;
  // > 0: a deadline, in nanoseconds on CLOCK_MONOTONIC (std::chrono::steady_clock), after which the
  // backend fails the operation with -ETIME, if it supports linked timeouts
  // (Backend::supports_linked_timeouts()). Absolute, so an operation submitted again (after EAGAIN) keeps
  // its original deadline. -ECANCELED always means a cancel() (the caller's, or the backend's own when the
  // fd is forgotten or the backend shuts down), never a deadline.
  std::int64_t link_deadline_ns = 0;
  // Called exactly once when the operation has finished. It may submit new operations.
  CompleteFn complete = nullptr;
  int fd = -1;
  // accept: capacity of `buffer` in, address size out. connect: size of the address in `buffer`.
  socklen_t address_length = 0;
  int message_flags = 0;  // recv/send only

  // --- Outcome, set by the backend just before `complete` runs. ---
  std::int32_t result = 0;
  // kRecvBorrowed: which lent buffer `buffer` is (see OpCode::kRecvBorrowed).
  std::uint32_t buffer_id = 0;

  OpCode opcode = OpCode::kRecv;
  // The fd belongs to a runtime socket, which calls Backend::forget_fd before it closes the fd, so a
  // backend may keep per-fd state for it across operations (io_uring: a registered-file slot). Left
  // false for fds the caller may close on its own (pipes, eventfds in tests).
  bool owned_fd = false;
  // Outcome: set when the operation's fd was forgotten (the socket closed) while it was in flight: its
  // result is real, but an operation of several steps must not submit another, since the fd number may
  // already name the next connection. Cleared by submit().
  bool fd_forgotten = false;

 private:
  friend struct internal::OperationAccess;

  // --- The backend's bookkeeping, private to the backends (through internal::OperationAccess,
  // runtime/backend/internal/operation_access.h). Meaningless to callers. ---
  // Backend-internal multishot requests only: another completion of this same request will follow
  // (IORING_CQE_F_MORE). Always false for callers' operations, which complete exactly once.
  bool more_ : 1 = false;
  // Arm this request as multishot (io_uring). Backend-internal requests only.
  bool multishot_ : 1 = false;
  Operation* queue_next_ = nullptr;      // an OperationQueue's link
  Operation* in_flight_prev_ = nullptr;  // the backend's in-flight list
  Operation* in_flight_next_ = nullptr;
  struct {
    std::int64_t seconds;
    std::int64_t nanoseconds;
  } link_timeout_spec_{};  // laid out as __kernel_timespec; must live until the kernel has read it
  std::uint32_t backend_state_ = 0;  // the backend's flags for this operation
  // The CQE's flags (IORING_CQE_F_*), for requests that read them (buffer ids).
  std::uint32_t completion_flags_ = 0;
};

static_assert(sizeof(void*) != 8 || sizeof(Operation) <= 104, "Operation grew: keep it packed (see above)");

}  // namespace surge

#endif  // SURGE_RUNTIME_BACKEND_OPERATION_H_
