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

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

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
  // Datagrams and ancillary data. `buffer` points at a msghdr the caller owns (with its name, iovecs and
  // control buffer), alive until completion.
  kSendMsg,  // sendmsg(fd, msghdr, message_flags | MSG_NOSIGNAL) -> bytes
  kRecvMsg,  // recvmsg(fd, msghdr, message_flags) -> bytes; msghdr.msg_flags says MSG_TRUNC, MSG_CTRUNC
  // One datagram into a buffer the backend lends (io_uring: the provided-buffer ring fed by one multishot
  // recvmsg per socket; epoll and io_uring without buffer rings: a pool and a plain recvmsg). In:
  // `buffer` points at the caller's msghdr, alive until completion, with msg_name (capacity msg_namelen)
  // for the source address and msg_iov pointing at ONE iovec the backend may overwrite (msg_iovlen 1,
  // no control buffer). Out, on success (>= 0, the payload's size; 0 is an empty datagram): `buffer`
  // points at the payload, `buffer_id` names the loan (end it with Backend::release_buffer, exactly
  // once, also for an empty datagram), msg_namelen is the source's size and msg_flags has MSG_TRUNC if
  // the datagram did not fit the lent buffer (the rest is discarded, as recvmsg does).
  kRecvMsgBorrowed,
  // Files. Regular files never report readiness: io_uring runs these as its own opcodes (or, where the
  // kernel lacks one, on the blocking pool); the epoll backend always runs them on the blocking pool.
  // Either way they cannot be interrupted once they run: cancel() ends one that has not started with
  // -ECANCELED, and one already running completes with its real result.
  kReadAt,     // pread(fd, buffer, length, offset) -> bytes, 0 at end of file
  kWriteAt,    // pwrite(fd, buffer, length, offset) -> bytes
  kReadvAt,    // preadv(fd, (iovec*)buffer, length = iovec count, offset) -> bytes
  kWritevAt,   // pwritev(fd, (const iovec*)buffer, length = iovec count, offset) -> bytes
  kFsync,      // fsync(fd), or fdatasync(fd) when message_flags has kFsyncDataOnly -> 0
  kFallocate,  // fallocate(fd, mode = message_flags, offset, length) -> 0
  // Path operations: `buffer` points at PathOperands (below); `fd` is the directory fd paths are
  // relative to (AT_FDCWD for the current directory).
  kOpenAt,    // openat(fd, path, flags, mode) -> new fd (O_CLOEXEC is always added)
  kStatx,     // statx(fd, path, flags, mask, statx_out) -> 0
  kRenameAt,  // renameat2(fd, path, new_dir_fd, new_path, flags) -> 0
  kUnlinkAt,  // unlinkat(fd, path, flags: AT_REMOVEDIR for a directory) -> 0
  kMkdirAt,   // mkdirat(fd, path, mode) -> 0
};

// kFsync's message_flags: fdatasync instead of fsync.
inline constexpr int kFsyncDataOnly = 1;

// kReadAt ... kWritevAt's message_flags: io_uring hands the request to the kernel at once, in an
// io_uring_enter of its own, instead of with the rest of the loop turn's SQEs. For block-device I/O
// (O_DIRECT): on a virtio disk requests submitted together complete together, and a queue kept full one
// request at a time gave 1.2x the IOPS at depth 32 (README, "File reads"). Only while other operations
// are in flight: a request alone goes with the next wait, in the same syscall. Ignored off io_uring.
inline constexpr int kSubmitAtOnce = 1 << 30;

// Whether `opcode` moves file data at an offset (kReadAt ... kWritevAt).
constexpr bool is_positional_transfer(OpCode opcode) noexcept {
  return opcode == OpCode::kReadAt || opcode == OpCode::kWriteAt || opcode == OpCode::kReadvAt ||
         opcode == OpCode::kWritevAt;
}

// The operands of the path operations (kOpenAt ... kMkdirAt), which do not fit an Operation's fields.
// Owned by the caller, alive (with the strings it points at) until the operation completes.
struct PathOperands {
  const char* path = nullptr;      // NUL-terminated
  const char* new_path = nullptr;  // kRenameAt: the new name
  int new_dir_fd = AT_FDCWD;       // kRenameAt: the new name's directory
  int flags = 0;                   // open flags, AT_* flags, RENAME_* flags
  unsigned mode = 0;               // kOpenAt, kMkdirAt: permission bits; kStatx: the STATX_* mask
  struct statx* statx_out = nullptr;  // kStatx
};

// Whether `opcode` is a file or path operation (the ones the epoll backend runs on the blocking pool).
constexpr bool is_file_operation(OpCode opcode) noexcept { return opcode >= OpCode::kReadAt; }

// Human-readable name of the syscall an OpCode performs ("recv", "accept", ...), used in Error values.
const char* opcode_name(OpCode opcode) noexcept;

// True for the operations that wait for the fd to become readable (accept, recv, read).
constexpr bool waits_for_input(OpCode opcode) noexcept {
  return opcode == OpCode::kAccept || opcode == OpCode::kRecv || opcode == OpCode::kRead ||
         opcode == OpCode::kRecvBorrowed || opcode == OpCode::kRecvMsg || opcode == OpCode::kRecvMsgBorrowed;
}

namespace internal {
struct OperationAccess;
}  // namespace internal

// The fields are ordered so that the structure has no holes (112 bytes on 64-bit Linux, checked below):
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
  // File operations: the position in the file (kReadAt ... kFallocate).
  std::uint64_t offset = 0;
  // Called exactly once when the operation has finished. It may submit new operations.
  CompleteFn complete = nullptr;
  int fd = -1;
  // accept: capacity of `buffer` in, address size out. connect: size of the address in `buffer`.
  socklen_t address_length = 0;
  // recv/send/recvmsg/sendmsg; kFsync, kFallocate: their flags (see above). With MSG_DONTWAIT a socket
  // operation that would wait completes with -EAGAIN instead, on every backend.
  int message_flags = 0;

  // --- Outcome, set by the backend just before `complete` runs. ---
  std::int32_t result = 0;
  // kRecvBorrowed, kRecvMsgBorrowed: which lent buffer `buffer` is (see OpCode::kRecvBorrowed).
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

static_assert(sizeof(void*) != 8 || sizeof(Operation) <= 112, "Operation grew: keep it packed (see above)");

}  // namespace surge

#endif  // SURGE_RUNTIME_BACKEND_OPERATION_H_
