#include "runtime/backend/io_uring/io_uring_backend.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "runtime/backend/io_uring/ring_internal.h"
#include "runtime/backend/io_uring/ring_setup.h"
#include "runtime/backend/internal/operation_access.h"
#include "runtime/backend/internal/syscall_limits.h"

namespace surge {

using internal::OperationAccess;
namespace {

using namespace internal::uring;  // NOLINT: the backend's own tags and states

// One line per process, the first time a ring is set up: what this kernel gave us.
void log_features_once(const BackendFeatures& features) {
  static std::once_flag logged;
  std::call_once(logged, [&features] { std::fprintf(stderr, "surge: %s\n", features.describe().c_str()); });
}

}  // namespace

Result<std::unique_ptr<IoUringBackend>> IoUringBackend::create(const BackendOptions& options) {
  std::unique_ptr<IoUringBackend> backend(new IoUringBackend());
  auto setup = internal::open_ring(backend->ring_, options);
  if (!setup) return setup.error();
  backend->ring_initialised_ = true;
  backend->setup_flags_ = setup->setup_flags;
  backend->features_.kernel_features = setup->kernel_features;
  backend->max_completions_per_poll_ = options.max_completions_per_poll > 0 ? options.max_completions_per_poll : 1;
  backend->pending_.reserve(options.completion_queue_entries);

  auto offers = internal::probe_kernel(backend->ring_);
  if (!offers) return offers.error();
  backend->has_msg_ring_ = options.allow_msg_ring && offers->msg_ring;
  backend->has_link_timeout_ = options.allow_linked_timeouts && offers->link_timeout;
  backend->native_file_operations_ = options.allow_file_opcodes ? offers->file_operations : 0;
  BackendFeatures& features = backend->features_;
  features.multishot_accept = offers->since_5_19;
  features.buffer_rings = offers->since_5_19;
  features.sparse_fixed_files = offers->since_5_19;
  features.send_zc = offers->send_zc;
  features.multishot_recv = offers->send_zc;
  backend->acceptor_.set_up(options.allow_multishot_accept && features.multishot_accept,
                            options.multishot_accept_backlog);
  backend->lent_buffer_count_ = options.lent_buffers;
  backend->lent_buffer_size_ = options.lent_buffer_size;
  backend->lent_buffers_per_stream_ = options.lent_buffers_per_stream > 0 ? options.lent_buffers_per_stream : 1;
  backend->allow_buffer_ring_ = options.allow_buffer_ring;

  // Register the ring's own fd (5.18+) so that each io_uring_enter skips the fd-table lookup; liburing
  // then passes IORING_ENTER_REGISTERED_RING by itself. Optional: failure only costs that lookup.
  // Other rings still address this one (MSG_RING) through ring_.ring_fd, which stays open.
  features.registered_ring_fd = io_uring_register_ring_fd(&backend->ring_) == 1;
  if (options.allow_fixed_files) {
    backend->fixed_files_.set_up(backend->ring_, options.fixed_file_slots, features.sparse_fixed_files);
  }
  if (features.send_zc && options.send_zero_copy_threshold > 0) {
    backend->send_zero_copy_threshold_ = options.send_zero_copy_threshold;
  }
  log_features_once(backend->features());

  backend->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (backend->wake_fd_ < 0) return Error(errno, "eventfd");
  backend->arm_wake_poll();
  return backend;
}

IoUringBackend::IoUringBackend() : acceptor_(*this) {}

void IoUringBackend::complete_soon(Operation& operation, std::int32_t result) noexcept {
  pending_.push_back({user_data_for(operation, kTagOperation), result, 0});
}

BackendFeatures IoUringBackend::features() const {
  // features_ holds what set-up found (ring flags, what the kernel offers); what is used is read from the
  // one place that decides it, so the two can never disagree.
  BackendFeatures features = features_;
  features.setup_flags = setup_flags_;
  features.msg_ring = has_msg_ring_;
  features.linked_timeouts = has_link_timeout_;
  features.uses_multishot_accept = acceptor_.enabled();
  features.uses_fixed_files = fixed_files_.enabled();
  features.uses_send_zc = send_zero_copy_threshold_ > 0;
  features.uses_file_opcodes = native_file_operations_ != 0;
  // Lent buffers are set up on first use (memory a worker that never borrows should not pay); until
  // then this says what would be used.
  const std::uint8_t lent_mode = lent_mode_.load(std::memory_order_acquire);
  features.uses_buffer_ring =
      lent_mode != 0 ? lent_mode == 1 : allow_buffer_ring_ && features.buffer_rings && features.multishot_recv;
  return features;
}

IoUringBackend::~IoUringBackend() {
  offload_.wait_idle();  // a lane still finishing calls wake()
  lent_.reset();  // unregisters the buffer ring while the io_uring is still there
  if (ring_initialised_) io_uring_queue_exit(&ring_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void IoUringBackend::expect_owner_thread(const char* call) const noexcept {
  if (std::this_thread::get_id() == owner_thread_) [[likely]] return;
  std::fprintf(stderr,
               "surge: IoUringBackend::%s called from a thread that does not own the ring (a ring is driven "
               "only by the worker thread that created it; post to the worker instead)\n",
               call);
  std::abort();
}

io_uring_sqe* IoUringBackend::next_sqe() noexcept {
  for (;;) {
    if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) {
      ++counters_.sqes_submitted;
      return sqe;
    }
    // The SQ is full: hand what is queued to the kernel and retry. Never drop the operation.
    flush_for_room();
  }
}

void IoUringBackend::flush_for_room() noexcept {
  ++counters_.wait_syscalls;
  if ((setup_flags_ & IORING_SETUP_SQPOLL) != 0) {
    // Publish the queued SQEs (and wake the kernel's thread if it sleeps); it empties the SQ by itself.
    // Then sleep until it has made room: spinning here would keep it from running on a small machine.
    io_uring_submit(&ring_);
    if (io_uring_sq_space_left(&ring_) == 0) io_uring_sqring_wait(&ring_);
    return;
  }
  const int submitted = io_uring_submit(&ring_);
  if (submitted == -EBUSY || submitted == -EAGAIN) {
    // The kernel wants room in the CQ first. Move every CQE out, past the budget (dispatching happens
    // later in poll(), so no completion callback runs inside submit()). Bounded by the CQ's size.
    collect_completions(SIZE_MAX);
  }
}

void IoUringBackend::submit(Operation& operation) noexcept {
  expect_owner_thread("submit");
  in_flight_.push_front(operation);
  count_on_fd(operation, +1);
  operation.fd_forgotten = false;
  OperationAccess::state(operation) = kStateInFlight;
  ++counters_.operations_submitted;
  if (operation.fd < 0 && operation.opcode < OpCode::kOpenAt) {
    // A closed or moved-from socket or file (path operations alone take a negative directory fd,
    // AT_FDCWD): EBADF, as epoll answers, before any per-fd table is indexed with it.
    complete_soon(operation, -EBADF);
    return;
  }
  if (operation.offset > static_cast<std::uint64_t>(INT64_MAX) &&
      (is_positional_transfer(operation.opcode) || operation.opcode == OpCode::kFallocate)) {
    // io_uring reads offset -1 (and every offset past INT64_MAX is one as off_t) as "the file's current
    // position"; pread(2) refuses such an offset with EINVAL, and so does this.
    complete_soon(operation, -EINVAL);
    return;
  }
  if (acceptor_.serves(operation)) {
    acceptor_.accept(operation);
    return;
  }
  if ((operation.opcode == OpCode::kRecvBorrowed || operation.opcode == OpCode::kRecvMsgBorrowed) &&
      !OperationAccess::multishot(operation)) {
    recv_borrowed(operation);
    return;
  }
  if (is_file_operation(operation.opcode) &&
      (native_file_operations_ & (1u << static_cast<unsigned>(operation.opcode))) == 0) {
    OperationAccess::state(operation) |= kStateOffloaded;
    offload_.submit(operation);
    return;
  }
  // A close must not overtake SQEs that still name its fd (see forget_fd()).
  if (operation.opcode == OpCode::kClose) flush_sqes_naming(operation.fd);
  prepare(operation);
  // See kSubmitAtOnce. Alone in flight, it leaves with the next poll()'s wait (one syscall for both).
  // A failed submit leaves the SQE queued: the next poll() submits it.
  if (is_positional_transfer(operation.opcode) && (operation.message_flags & kSubmitAtOnce) != 0 &&
      in_flight_.size() > 1) {
    ++counters_.wait_syscalls;
    io_uring_submit(&ring_);
  }
}

bool IoUringBackend::make_room_for_deadline(const Operation& operation) noexcept {
  if (!has_link_timeout_ || operation.link_deadline_ns <= 0) return false;
  // An operation and its linked timeout must reach the kernel in the same submission: make room for
  // both first (next_sqe() flushes a full SQ, and would send the operation without its timeout).
  while (io_uring_sq_space_left(&ring_) < 2) flush_for_room();
  return true;
}

void IoUringBackend::prepare(Operation& operation) noexcept {
  const bool linked_timeout = make_room_for_deadline(operation);
  io_uring_sqe* sqe = next_sqe();
  const unsigned length = internal::clamp_io_length(operation.length);
  switch (operation.opcode) {
    case OpCode::kAccept:
      if (OperationAccess::multishot(operation)) {
        io_uring_prep_multishot_accept(sqe, operation.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
      }
      io_uring_prep_accept(sqe, operation.fd, static_cast<sockaddr*>(operation.buffer),
                           operation.buffer != nullptr ? &operation.address_length : nullptr,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
      break;
    case OpCode::kConnect:
      io_uring_prep_connect(sqe, operation.fd, static_cast<const sockaddr*>(operation.buffer),
                            operation.address_length);
      break;
    case OpCode::kRecv:
      io_uring_prep_recv(sqe, operation.fd, operation.buffer, length, operation.message_flags);
      break;
    case OpCode::kSend:
      if (send_zero_copy_threshold_ > 0 && length >= send_zero_copy_threshold_ &&
          (OperationAccess::state(operation) & kStatePlainSend) == 0) {
        io_uring_prep_send_zc(sqe, operation.fd, operation.buffer, length, operation.message_flags | MSG_NOSIGNAL, 0);
        OperationAccess::state(operation) = (OperationAccess::state(operation) | kStateZeroCopy) & ~kStateZeroCopyResult;
        break;
      }
      io_uring_prep_send(sqe, operation.fd, operation.buffer, length, operation.message_flags | MSG_NOSIGNAL);
      break;
    case OpCode::kRead:
      // Offset -1: the file's current position (or none, for pipes and eventfds), like read(2).
      io_uring_prep_read(sqe, operation.fd, operation.buffer, length, static_cast<std::uint64_t>(-1));
      break;
    case OpCode::kWrite:
      io_uring_prep_write(sqe, operation.fd, operation.buffer, length, static_cast<std::uint64_t>(-1));
      break;
    case OpCode::kClose:
      fixed_files_.forget(operation.fd, counters_);  // the slot must not outlive the fd
      io_uring_prep_close(sqe, operation.fd);
      break;
    case OpCode::kSendMsg:
      io_uring_prep_sendmsg(sqe, operation.fd, static_cast<const msghdr*>(operation.buffer),
                            static_cast<unsigned>(operation.message_flags | MSG_NOSIGNAL));
      break;
    case OpCode::kRecvMsg:
      io_uring_prep_recvmsg(sqe, operation.fd, static_cast<msghdr*>(operation.buffer),
                            static_cast<unsigned>(operation.message_flags));
      break;
    case OpCode::kRecvMsgBorrowed:
      if (OperationAccess::multishot(operation)) {  // the socket's request (multishot_recvmsg.cc)
        io_uring_prep_recvmsg_multishot(sqe, operation.fd, static_cast<msghdr*>(operation.buffer), 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = internal::LentBufferRing::kGroup;
      } else {  // into a pool buffer, which recv_into_pool_buffer put in the caller's iovec
        io_uring_prep_recvmsg(sqe, operation.fd, static_cast<msghdr*>(operation.buffer), 0);
      }
      break;
    case OpCode::kReadAt:
      io_uring_prep_read(sqe, operation.fd, operation.buffer, length, operation.offset);
      break;
    case OpCode::kWriteAt:
      io_uring_prep_write(sqe, operation.fd, operation.buffer, length, operation.offset);
      break;
    case OpCode::kReadvAt:
      io_uring_prep_readv(sqe, operation.fd, static_cast<const iovec*>(operation.buffer),
                          static_cast<unsigned>(operation.length), operation.offset);
      break;
    case OpCode::kWritevAt:
      io_uring_prep_writev(sqe, operation.fd, static_cast<const iovec*>(operation.buffer),
                           static_cast<unsigned>(operation.length), operation.offset);
      break;
    case OpCode::kFsync:
      io_uring_prep_fsync(sqe, operation.fd,
                          (operation.message_flags & kFsyncDataOnly) != 0 ? IORING_FSYNC_DATASYNC : 0);
      break;
    case OpCode::kFallocate:
      io_uring_prep_fallocate(sqe, operation.fd, operation.message_flags, operation.offset, operation.length);
      break;
    case OpCode::kOpenAt: {
      const auto& operands = *static_cast<const PathOperands*>(operation.buffer);
      io_uring_prep_openat(sqe, operation.fd, operands.path, operands.flags | O_CLOEXEC, operands.mode);
      break;
    }
    case OpCode::kStatx: {
      const auto& operands = *static_cast<const PathOperands*>(operation.buffer);
      io_uring_prep_statx(sqe, operation.fd, operands.path, operands.flags, operands.mode, operands.statx_out);
      break;
    }
    case OpCode::kRenameAt: {
      const auto& operands = *static_cast<const PathOperands*>(operation.buffer);
      io_uring_prep_renameat(sqe, operation.fd, operands.path, operands.new_dir_fd, operands.new_path,
                             static_cast<unsigned>(operands.flags));
      break;
    }
    case OpCode::kUnlinkAt: {
      const auto& operands = *static_cast<const PathOperands*>(operation.buffer);
      io_uring_prep_unlinkat(sqe, operation.fd, operands.path, operands.flags);
      break;
    }
    case OpCode::kMkdirAt: {
      const auto& operands = *static_cast<const PathOperands*>(operation.buffer);
      io_uring_prep_mkdirat(sqe, operation.fd, operands.path, operands.mode);
      break;
    }
    case OpCode::kRecvBorrowed:
      if (OperationAccess::multishot(operation)) {
        io_uring_prep_recv_multishot(sqe, operation.fd, nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = internal::LentBufferRing::kGroup;
      } else {
        io_uring_prep_recv(sqe, operation.fd, operation.buffer, length, 0);  // into a pool buffer
      }
      break;
  }
  // Path operations name a directory fd (or AT_FDCWD), never a registered file.
  if (operation.opcode != OpCode::kClose && operation.opcode < OpCode::kOpenAt) fixed_files_.use_for(sqe, operation, counters_);
  io_uring_sqe_set_data64(sqe, user_data_for(operation, kTagOperation));
  OperationAccess::state(operation) = (OperationAccess::state(operation) & ~kStateTagMask) | kTagOperation;
  if (linked_timeout) link_deadline(sqe, operation);
}

void IoUringBackend::link_deadline(io_uring_sqe* sqe, Operation& operation) noexcept {
  sqe->flags |= IOSQE_IO_LINK;
  OperationAccess::link_timeout_spec(operation).seconds = operation.link_deadline_ns / 1'000'000'000;
  OperationAccess::link_timeout_spec(operation).nanoseconds = operation.link_deadline_ns % 1'000'000'000;
  io_uring_sqe* timeout_sqe = next_sqe();  // the caller made room for both
  // Absolute on CLOCK_MONOTONIC (the kernel's default clock for timeouts), so a resubmission keeps the
  // deadline. When it fires the operation completes with -ECANCELED, which finish() turns into -ETIME
  // unless a cancel() was asked for; the timeout's own CQE (-ETIME or -ECANCELED) is ignored.
  io_uring_prep_link_timeout(timeout_sqe, reinterpret_cast<__kernel_timespec*>(&OperationAccess::link_timeout_spec(operation)),
                             IORING_TIMEOUT_ABS);
  io_uring_sqe_set_data64(timeout_sqe, kTagIgnore);
}

void IoUringBackend::arm_readiness_poll(Operation& operation) noexcept {
  // The wait for readiness carries the operation's deadline too, or it would wait past it.
  const bool linked_timeout = make_room_for_deadline(operation);
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_poll_add(sqe, operation.fd, waits_for_input(operation.opcode) ? POLLIN : POLLOUT);
  fixed_files_.use_for(sqe, operation, counters_);
  io_uring_sqe_set_data64(sqe, user_data_for(operation, kTagReadinessPoll));
  OperationAccess::state(operation) = (OperationAccess::state(operation) & ~kStateTagMask) | kTagReadinessPoll;
  if (linked_timeout) link_deadline(sqe, operation);
}

void IoUringBackend::arm_wake_poll() noexcept {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_poll_add(sqe, wake_fd_, POLLIN);
  io_uring_sqe_set_data64(sqe, kTagWake);
}

void IoUringBackend::cancel(Operation& operation) noexcept {
  expect_owner_thread("cancel");
  if ((OperationAccess::state(operation) & kStateInFlight) == 0) return;
  if ((OperationAccess::state(operation) & kStateOffloaded) != 0) {
    // Only one no lane has started can be taken back; a running one ends with its real result.
    if (offload_.cancel(operation)) complete_soon(operation, -ECANCELED);
    return;
  }
  if (acceptor_.cancel_waiter(operation) || cancel_recv_waiter(operation)) return;
  OperationAccess::state(operation) |= kStateCancelRequested;
  if ((OperationAccess::state(operation) & kStateZeroCopyResult) != 0) {
    // The send itself is over; only its notification is awaited, which a cancel SQE cannot hurry.
    if (operation.result > 0) abort_zero_copy_send(operation);
    return;
  }
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_cancel64(sqe, user_data_for(operation, OperationAccess::state(operation) & kStateTagMask), 0);
  io_uring_sqe_set_data64(sqe, kTagIgnore);
}

void IoUringBackend::cancel_all() noexcept {
  in_flight_.for_each([this](Operation& operation) { cancel(operation); });
}

void IoUringBackend::forget_fd(int fd) noexcept {
  expect_owner_thread("forget_fd");
  // The per-fd state the fast paths keep: a stream's multishot recv, a listener's multishot accept, a
  // registered-file slot.
  forget_receiver(fd);
  acceptor_.forget(fd);
  // Contract: nothing is in flight on a closing fd. If something is (a caller closed with an operation
  // queued), fail it rather than let it run on whatever file next gets this fd number or slot.
  if (has_ops_on_fd(fd)) in_flight_.for_each([this, fd](Operation& operation) {  // the usual close skips the walk
    if (operation.fd != fd || OperationAccess::multishot(operation)) return;  // the requests above have their own forget
    // A zero-copy send's bytes would otherwise stay pinned in the closed socket's queue for as long as
    // the peer does not take them; reset it now, while the fd still names it.
    if ((OperationAccess::state(operation) & kStateZeroCopy) != 0) abort_zero_copy_send(operation);
    OperationAccess::state(operation) |= kStateForgotten;
    cancel(operation);
  });
  // An SQE still in the SQ looks its file up only when the kernel takes it: after the close, its fd
  // number (or slot) could name the next connection's file. The kernel takes it now, while it is still
  // this one's; the cancels above then find it there.
  flush_sqes_naming(fd);
  fixed_files_.forget(fd, counters_);
}

void IoUringBackend::flush_sqes_naming(int fd) noexcept {
  const int slot = fixed_files_.slot_of(fd);
  const unsigned tail = ring_.sq.sqe_tail;
  bool named = false;
  for (unsigned position = io_uring_smp_load_acquire(ring_.sq.khead); position != tail && !named; ++position) {
    const io_uring_sqe& sqe = ring_.sq.sqes[position & ring_.sq.ring_mask];  // liburing maps SQ slots 1:1
    if (sqe.opcode == IORING_OP_ASYNC_CANCEL || sqe.opcode == IORING_OP_MSG_RING) continue;  // name no file
    named = (sqe.flags & IOSQE_FIXED_FILE) != 0 ? slot >= 0 && sqe.fd == slot : sqe.fd == fd;
  }
  if (!named) return;
  ++counters_.wait_syscalls;
  io_uring_submit(&ring_);
  if ((setup_flags_ & IORING_SETUP_SQPOLL) == 0) return;  // io_uring_enter has taken every SQE
  // The kernel's thread takes them by itself (io_uring_submit woke it if it slept): wait until it has.
  while (static_cast<int>(io_uring_smp_load_acquire(ring_.sq.khead) - tail) < 0) std::this_thread::yield();
}

void IoUringBackend::wake() noexcept {
  const std::uint64_t one = 1;
  // EAGAIN means the counter is saturated: a wake-up is pending anyway.
  [[maybe_unused]] ssize_t written = write(wake_fd_, &one, sizeof(one));
}

void IoUringBackend::wake_from(Backend& sender) noexcept {
  auto* sender_ring = dynamic_cast<IoUringBackend*>(&sender);
  if (sender_ring == nullptr || !sender_ring->has_msg_ring_ || !has_msg_ring_) {
    wake();
    return;
  }
  // The message is an SQE on the sender's own ring (so the sender's thread is its one issuer) that
  // posts a CQE tagged kTagWake into this ring: the waiting io_uring_enter returns, and no eventfd is
  // written, polled or read. Submitted at once: a wake-up must not wait for the sender's next turn.
  io_uring_sqe* sqe = sender_ring->next_sqe();
  io_uring_prep_msg_ring(sqe, ring_.ring_fd, 0, kTagMessageWake, 0);
  io_uring_sqe_set_data64(sqe, kTagIgnore);
  ++sender_ring->counters_.wait_syscalls;
  io_uring_submit(&sender_ring->ring_);
}

int IoUringBackend::poll(Timeout timeout) noexcept {
  expect_owner_thread("poll");
  const std::uint64_t completed_before = counters_.operations_completed.get();
  // CQEs the budget left in the ring are as good as pending ones: do not sleep on them.
  collect_offloaded();
  const bool must_not_block = !pending_.empty() || io_uring_cq_ready(&ring_) > 0 ||
                              (timeout.has_value() && timeout->count() <= 0);
  if (must_not_block && in_flight_.size() == 0 && pending_.empty() && io_uring_sq_ready(&ring_) == 0) {
    // Nothing could complete and nothing waits to be submitted: spare the syscall (a busy loop of
    // yields or spawns would otherwise pay one per turn). A pending wake-up is seen at the next wait.
    return 0;
  }
  if (must_not_block) {
    if ((setup_flags_ & IORING_SETUP_DEFER_TASKRUN) != 0) {
      // Completions are only posted when this thread enters the kernel asking for events.
      ++counters_.wait_syscalls;
      io_uring_submit_and_get_events(&ring_);
    } else if (io_uring_sq_ready(&ring_) > 0) {
      ++counters_.wait_syscalls;
      io_uring_submit(&ring_);
    }
  } else {
    // Only a timed wait needs the clock (to resume after EINTR): spare the read otherwise.
    const auto deadline = timeout.has_value() ? std::chrono::steady_clock::now() + *timeout
                                              : std::chrono::steady_clock::time_point{};
    for (;;) {
      __kernel_timespec wait_for{};
      if (timeout.has_value()) {
        const long long nanoseconds = timeout->count() > 0 ? timeout->count() : 0;
        wait_for.tv_sec = nanoseconds / 1'000'000'000;
        wait_for.tv_nsec = nanoseconds % 1'000'000'000;
      }
      io_uring_cqe* cqe = nullptr;
      ++counters_.wait_syscalls;
      // -ETIME means the wait timed out; completions are collected below either way.
      const int status =
          io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, timeout.has_value() ? &wait_for : nullptr, nullptr);
      if (status != -EINTR) break;
      // A signal interrupted the wait: resume it for the time left.
      if (timeout.has_value()) timeout = deadline - std::chrono::steady_clock::now();
    }
  }
  collect_completions(max_completions_per_poll_);
  collect_offloaded();  // what finished on the pool while the ring waited (its lane's wake() ended the wait)
  dispatch_pending();
  return static_cast<int>(counters_.operations_completed.get() - completed_before);
}

void IoUringBackend::collect_completions(std::size_t limit) noexcept {
  io_uring_cqe* batch[64];
  while (pending_.size() - pending_head_ < limit) {
    const std::size_t room = limit - (pending_.size() - pending_head_);
    const unsigned count = io_uring_peek_batch_cqe(&ring_, batch, room < 64 ? static_cast<unsigned>(room) : 64);
    if (count == 0) return;
    for (unsigned i = 0; i < count; ++i) pending_.push_back({batch[i]->user_data, batch[i]->res, batch[i]->flags});
    io_uring_cq_advance(&ring_, count);
    counters_.cqes_reaped += count;
  }
}

void IoUringBackend::collect_offloaded() noexcept {
  if (!offload_.has_finished()) return;
  internal::OperationQueue finished;
  offload_.take_finished(finished);
  while (Operation* operation = finished.pop_front()) complete_soon(*operation, operation->result);
}

void IoUringBackend::dispatch_pending() noexcept {
  // Index-based: a completion callback may submit, and a full SQ may append to pending_ meanwhile.
  // Internal CQEs (wake-ups, cancel results) count against the budget too; they are cheap.
  const std::size_t stop = pending_head_ + max_completions_per_poll_;
  while (pending_head_ < pending_.size() && pending_head_ < stop) {
    const Completion completion = pending_[pending_head_++];
    dispatch(completion.user_data, completion.result, completion.flags);
  }
  // Drop what was dispatched, so the backlog never holds more than what waits: the budget's worth copied
  // from the ring plus completions queued by submit()/cancel() (each an operation in flight).
  if (pending_head_ == pending_.size()) {
    pending_.clear();
  } else {
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(pending_head_));
  }
  pending_head_ = 0;
}

void IoUringBackend::dispatch(std::uint64_t user_data, std::int32_t result, std::uint32_t flags) noexcept {
  const std::uint64_t tag = user_data & kTagMask;
  if (tag == kTagIgnore) return;
  if (tag == kTagWake) {
    std::uint64_t count;
    [[maybe_unused]] ssize_t drained = read(wake_fd_, &count, sizeof(count));
    arm_wake_poll();
    return;
  }
  Operation& operation = *reinterpret_cast<Operation*>(user_data & ~kTagMask);
  if (tag == kTagOperation) OperationAccess::completion_flags(operation) = flags;
  if (tag == kTagOperation && (OperationAccess::state(operation) & kStateZeroCopy) != 0) {
    if ((flags & IORING_CQE_F_NOTIF) != 0) {
      // The kernel has let go of the buffer: now it is done.
      if (zero_copy_send_done(operation, operation.result)) {
        finish(operation, (OperationAccess::state(operation) & kStateZeroCopyAborted) != 0 ? -ECANCELED : operation.result);
      }
      return;
    }
    if ((flags & IORING_CQE_F_MORE) != 0) {
      operation.result = result;  // the send's result; its notification follows
      OperationAccess::state(operation) |= kStateZeroCopyResult;
      // A cancel that came while the send was in the kernel found nothing left to cancel, or lost the
      // race: the bytes are queued now, and only a reset makes the kernel let go of them in bounded time.
      // (A forgotten operation's connection was reset when its fd was forgotten; the fd may be closed.)
      const std::uint32_t state = OperationAccess::state(operation);
      if ((state & kStateCancelRequested) != 0 && (state & kStateForgotten) == 0 && result > 0) {
        abort_zero_copy_send(operation);
      }
      return;
    }
    // No notification follows (the send failed before using the buffer): done now.
    if (zero_copy_send_done(operation, result)) finish(operation, result);
    return;
  }
  if (tag == kTagOperation && (flags & IORING_CQE_F_MORE) != 0) {
    // One of many completions of a multishot request: it stays in flight.
    operation.result = result;
    OperationAccess::set_more(operation, true);
    operation.complete(operation);
    return;
  }
  if (tag == kTagOperation && result == -EAGAIN) {
    // A file opened O_NONBLOCK (eventfd, signalfd, pipe) makes io_uring report EAGAIN instead of
    // waiting: wait for readiness ourselves, then issue the operation again.
    if ((OperationAccess::state(operation) & kStateCancelRequested) != 0) {
      finish(operation, -ECANCELED);
    } else {
      arm_readiness_poll(operation);
    }
    return;
  }
  if (tag == kTagReadinessPoll) {
    if (result < 0) {
      finish(operation, result);  // e.g. -ECANCELED: the poll was cancelled
    } else if ((OperationAccess::state(operation) & kStateCancelRequested) != 0) {
      // The cancel found only the finished poll: the operation itself was never issued, so nothing is
      // lost by not issuing it now (and after forget_fd its fd may name another file).
      finish(operation, -ECANCELED);
    } else {
      prepare(operation);
    }
    return;
  }
  finish(operation, result);
}

bool IoUringBackend::zero_copy_send_done(Operation& operation, std::int32_t result) noexcept {
  if ((result != -ENOMEM && result != -EOPNOTSUPP) || (OperationAccess::state(operation) & kStateCancelRequested) != 0) {
    return true;
  }
  // The kernel could not pin the pages (ENOMEM: RLIMIT_MEMLOCK counts them), or the socket has no
  // zero-copy path (EOPNOTSUPP: a Unix socket): send the same bytes by copying.
  OperationAccess::state(operation) = (OperationAccess::state(operation) | kStatePlainSend) & ~(kStateZeroCopy | kStateZeroCopyResult);
  prepare(operation);
  return false;
}

void IoUringBackend::abort_zero_copy_send(Operation& operation) noexcept {
  if ((OperationAccess::state(operation) & kStateZeroCopyAborted) != 0) return;
  OperationAccess::state(operation) |= kStateZeroCopyAborted;
  // connect(AF_UNSPEC) on a TCP socket is tcp_disconnect(): it sends a reset and purges the write and
  // retransmit queues, dropping the skbs that hold the caller's pages, so the notification is posted.
  // (shutdown() would keep them queued.) The connection is unusable afterwards; its fd stays open.
  sockaddr unspecified{};
  unspecified.sa_family = AF_UNSPEC;
  ++counters_.io_syscalls;
  [[maybe_unused]] const int disconnected = ::connect(operation.fd, &unspecified, sizeof(unspecified));
}

void IoUringBackend::count_on_fd(const Operation& operation, int change) noexcept {
  // Callers' operations only: the multishot requests are found through their listener or stream.
  if (OperationAccess::multishot(operation) || operation.fd < 0) return;
  const auto index = static_cast<std::size_t>(operation.fd);
  if (index >= ops_on_fd_.size()) ops_on_fd_.resize(index * 2 + 16, 0);
  ops_on_fd_[index] += static_cast<std::uint32_t>(change);
}

bool IoUringBackend::has_ops_on_fd(int fd) const noexcept {
  const auto index = static_cast<std::size_t>(fd);
  return fd >= 0 && index < ops_on_fd_.size() && ops_on_fd_[index] > 0;
}

void IoUringBackend::finish(Operation& operation, std::int32_t result) noexcept {
  in_flight_.remove(operation);
  count_on_fd(operation, -1);
  // A linked timeout that fired shows as -ECANCELED that no cancel() asked for: report the deadline.
  if (result == -ECANCELED && operation.link_deadline_ns > 0 &&
      (OperationAccess::state(operation) & kStateCancelRequested) == 0) {
    result = -ETIME;
  }
  if ((OperationAccess::state(operation) & kStateHoldsBuffer) != 0) {
    if (operation.opcode == OpCode::kRecvMsgBorrowed && result >= 0) {
      operation.buffer = lent_->buffers().data(operation.buffer_id);  // a datagram, maybe empty: lent
    } else if (result <= 0) {
      release_buffer(operation.buffer_id);  // nothing received into the pool buffer: it goes back
      operation.buffer = nullptr;
    }
  }
  if ((OperationAccess::state(operation) & kStateForgotten) != 0) operation.fd_forgotten = true;
  OperationAccess::state(operation) = 0;
  ++counters_.operations_completed;
  operation.result = result;
  OperationAccess::set_more(operation, false);
  operation.complete(operation);
}

}  // namespace surge
