// ring_internal.h: how the io_uring backend tags its SQEs and tracks its operations, shared by its
// source files (io_uring_backend.cc, multishot_recv.cc, multishot_acceptor.cc). Not an interface.
#ifndef SURGE_RUNTIME_BACKEND_IO_URING_RING_INTERNAL_H_
#define SURGE_RUNTIME_BACKEND_IO_URING_RING_INTERNAL_H_

#include <liburing.h>

#include <cstdint>
#include <utility>

#include "runtime/backend/io_uring/io_uring_backend.h"
#include "runtime/backend/internal/lent_buffers.h"
#include "runtime/backend/internal/operation_access.h"
#include "runtime/backend/internal/ring_queue.h"
#include "runtime/backend/operation.h"

namespace surge::internal::uring {

// user_data carries an Operation's address with a tag in the low two bits (Operations are 8-aligned).
inline constexpr std::uint64_t kTagOperation = 0;       // the operation itself
inline constexpr std::uint64_t kTagReadinessPoll = 1;   // a POLL_ADD armed for an operation that got -EAGAIN
inline constexpr std::uint64_t kTagIgnore = 2;          // cancel requests: their own result does not matter
inline constexpr std::uint64_t kTagWake = 3;            // the POLL_ADD on the wake eventfd (no operation)
inline constexpr std::uint64_t kTagMask = 3;
// user_data of the CQE another ring's MSG_RING posts here. Operations are 8-aligned, so 4 | kTagIgnore
// can never be an operation's address.
inline constexpr std::uint64_t kTagMessageWake = 4 | kTagIgnore;

// OperationAccess::state() bits.
inline constexpr std::uint32_t kStateTagMask = 3;  // the tag under which the operation is in the kernel now
inline constexpr std::uint32_t kStateInFlight = 4;
inline constexpr std::uint32_t kStateCancelRequested = 8;

static_assert(sizeof(OperationAccess::link_timeout_spec(std::declval<Operation&>())) == sizeof(__kernel_timespec));

inline std::uint64_t user_data_for(Operation& operation, std::uint64_t tag) {
  return reinterpret_cast<std::uintptr_t>(&operation) | tag;
}

// An accept waiting in a listener's multishot queue (multishot_acceptor.h), not in the kernel.
inline constexpr std::uint32_t kStateAcceptWaiter = 16;
// A borrowed receive waiting in a stream's multishot queue (multishot_recv.cc).
inline constexpr std::uint32_t kStateRecvWaiter = 32;
// A borrowed receive waiting for a pool buffer to come back (no buffer ring).
inline constexpr std::uint32_t kStateBufferWaiter = 64;
// A borrowed receive in the kernel as a plain recv into a pool buffer it holds (no buffer ring).
inline constexpr std::uint32_t kStateHoldsBuffer = 128;
// A send in the kernel as IORING_OP_SEND_ZC: its result arrives first (with F_MORE), the completion only
// with the notification (F_NOTIF) that the kernel no longer reads the buffer.
inline constexpr std::uint32_t kStateZeroCopy = 256;
inline constexpr std::uint32_t kStateZeroCopyResult = 512;  // the result CQE has been seen
// The operation's fd was forgotten (its socket closed) while it was in flight: the fd number, and its
// registered-file slot, may name another file now. It is never prepared again (no re-issue after EAGAIN
// or a readiness poll) and completes with -ECANCELED unless the kernel had already finished it. Set
// together with kStateCancelRequested.
inline constexpr std::uint32_t kStateForgotten = 1024;
// A zero-copy send cancelled after the kernel had taken its bytes: the connection was reset (connect
// AF_UNSPEC, tcp_disconnect) so that the kernel drops them and posts the notification; it completes with
// -ECANCELED.
inline constexpr std::uint32_t kStateZeroCopyAborted = 2048;
// A send whose SEND_ZC failed with ENOMEM (the kernel could not pin the pages) or EOPNOTSUPP (the socket
// has no zero-copy path): issued again as a plain send of the same bytes.
inline constexpr std::uint32_t kStatePlainSend = 4096;
// A file operation the kernel has no opcode for (or allow_file_opcodes is off): on the blocking pool.
inline constexpr std::uint32_t kStateOffloaded = 8192;

}  // namespace surge::internal::uring

namespace surge {

// One stream's multishot recv with buffer selection (multishot_recv.cc).
struct IoUringBackend::MultishotRecv : Operation {
  IoUringBackend* backend = nullptr;
  bool armed = false;
  bool forgotten = false;  // the stream was closed: go away once the kernel lets go
  bool starved = false;    // the last request ended with ENOBUFS: re-arm when a buffer comes back
  bool stopping = false;   // at the per-stream or all-streams bound: the request is being cancelled
  struct Received {
    std::int32_t result;  // bytes, 0 at end of stream, or -errno
    std::uint32_t buffer_id;
  };
  // kRecvMsgBorrowed: the msghdr of the multishot recvmsg SQE (msg_namelen reserves room for the source
  // in every buffer); read by the kernel while the request is armed.
  msghdr datagram_header{};
  internal::RingQueue<Received> ready;      // received and not yet claimed (each positive one holds a buffer)
  internal::RingQueue<Operation*> waiters;  // borrowed receives in submission order
};

}  // namespace surge

#endif  // SURGE_RUNTIME_BACKEND_IO_URING_RING_INTERNAL_H_
