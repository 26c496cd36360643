// io_uring_backend.h: the io_uring implementation of Backend, one ring per worker thread.
//
// Each Operation becomes one SQE whose user_data is the Operation's address, so a CQE leads straight back
// to its awaiter. SQEs are queued by submit() and sent to the kernel in one batch per poll(); a full SQ is
// flushed and the SQE retried, never dropped. The CQ is sized well above the SQ and overflow is drained
// by liburing's peek (the kernel keeps overflowed CQEs since 5.5, IORING_FEAT_NODROP).
//
// Set-up tries a ladder of flag sets, best first, stepping down when the kernel answers EINVAL
// (ring_setup.h): SINGLE_ISSUER|DEFER_TASKRUN  ->  COOP_TASKRUN  ->  no flags. Each optional kernel
// facility is a class of its own, which alone knows whether it is on: FixedFileTable, MultishotAcceptor,
// LentBufferRing.
// With DEFER_TASKRUN the ring must be driven only by the thread that created it. The ring's fd is also
// registered with the creating thread (io_uring_register_ring_fd), so create, drive and destroy the
// backend on one thread in every case. That is enforced: submit(), cancel() or poll() from another thread
// aborts with a message naming the call (the kernel would otherwise answer EEXIST, or never post the
// completions). Other threads reach a worker through its inbox and wake().
//
// Create it with IoUringBackend::create(); it fails with the set-up error (EPERM under Docker's seccomp
// profile, ENOSYS or EPERM with kernel.io_uring_disabled) or ENOTSUP when a needed opcode is missing.
#ifndef SURGE_RUNTIME_BACKEND_IO_URING_IO_URING_BACKEND_H_
#define SURGE_RUNTIME_BACKEND_IO_URING_IO_URING_BACKEND_H_

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "runtime/backend/backend.h"
#include "runtime/backend/internal/file_offload.h"
#include "runtime/backend/internal/in_flight_list.h"
#include "runtime/backend/internal/ring_queue.h"
#include "runtime/backend/io_uring/fixed_file_table.h"
#include "runtime/backend/io_uring/lent_buffer_ring.h"
#include "runtime/backend/io_uring/multishot_acceptor.h"
#include "runtime/result.h"

namespace surge {

class IoUringBackend final : public Backend {
 public:
  static Result<std::unique_ptr<IoUringBackend>> create(const BackendOptions& options);

  // Precondition: in_flight() == 0 (the worker drains before it destroys its backend).
  ~IoUringBackend() override;

  BackendKind kind() const noexcept override { return BackendKind::kIoUring; }
  void submit(Operation& operation) noexcept override;
  void cancel(Operation& operation) noexcept override;
  void cancel_all() noexcept override;
  int poll(Timeout timeout) noexcept override;
  void wake() noexcept override;
  void wake_from(Backend& sender) noexcept override;
  void forget_fd(int fd) noexcept override;
  Result<void> detach_fd(int fd) noexcept override;
  void release_buffer(std::uint32_t buffer_id) noexcept override;
  std::size_t in_flight() const noexcept override { return in_flight_.size(); }
  // Under SQPOLL the kernel's thread takes SQEs by itself: nothing waits for this worker to submit (and
  // polling for it would spin the worker against that thread).
  bool has_unsubmitted() const noexcept override {
    return (setup_flags_ & IORING_SETUP_SQPOLL) == 0 && io_uring_sq_ready(&ring_) > 0;
  }
  bool supports_linked_timeouts() const noexcept override { return has_link_timeout_; }
  bool links_timeout_for(const Operation& operation) const noexcept override {
    if (!has_link_timeout_ || operation.opcode == OpCode::kRecvBorrowed ||
        operation.opcode == OpCode::kRecvMsgBorrowed) {
      return false;
    }
    // A file operation run on the blocking pool has no SQE for a timeout to link to.
    if (is_file_operation(operation.opcode) &&
        (native_file_operations_ & (1u << static_cast<unsigned>(operation.opcode))) == 0) {
      return false;
    }
    return !(operation.opcode == OpCode::kSend && send_zero_copy_threshold_ > 0 &&
             operation.length >= send_zero_copy_threshold_);
  }
  BackendCounters counters() const noexcept override { return counters_.snapshot(); }
  void use_blocking_pool(internal::BlockingPool& pool) noexcept override { offload_.set_pool(pool); }
  BackendFeatures features() const override;

  // The IORING_SETUP_* flags the ring was created with (after the fallback ladder).
  unsigned setup_flags() const noexcept { return setup_flags_; }
  // Whether wake_from() can use IORING_OP_MSG_RING (probed at set-up; 5.18+).
  bool has_msg_ring() const noexcept { return has_msg_ring_; }
  // For tests: the memory held for completions taken off the ring and not yet delivered, in entries.
  std::size_t completion_backlog_capacity_for_testing() const noexcept { return pending_.capacity(); }

 private:
  friend class internal::MultishotAcceptor;  // submits, cancels and completes through the backend

  IoUringBackend();

  // Aborts unless called on the thread that created the ring.
  void expect_owner_thread(const char* call) const noexcept;
  io_uring_sqe* next_sqe() noexcept;
  void flush_for_room() noexcept;  // submits what the SQ holds (a full SQ), making room
  // Borrowed receives (multishot_recv.cc).
  struct MultishotRecv;
  void recv_borrowed(Operation& operation) noexcept;
  void set_up_lent_buffers() noexcept;  // on first use: the ring where the kernel has one, else a pool
  void recv_from_multishot(Operation& operation) noexcept;
  void recv_into_pool_buffer(Operation& operation) noexcept;
  bool cancel_recv_waiter(Operation& operation) noexcept;
  void arm(MultishotRecv& receiver) noexcept;
  static void on_recv_request(Operation& request) noexcept;
  void hand_over(Operation& waiter, std::int32_t result, std::uint32_t buffer_id) noexcept;
  // Borrowed datagrams (multishot_recvmsg.cc): what `operation` (a kRecvMsgBorrowed) gets of one
  // completion of `receiver`'s multishot recvmsg: its payload, source and flags taken out of the lent
  // buffer. Returns the result to deliver (the payload's size, or -errno having released the buffer).
  std::int32_t lend_datagram(Operation& operation, MultishotRecv& receiver, std::int32_t result,
                             std::uint32_t buffer_id) noexcept;
  // The lent buffer for a borrowed receive in pool mode: in its msghdr's iovec for a datagram, else as
  // the operation's buffer.
  void aim_at_pool_buffer(Operation& operation, std::uint32_t buffer_id) noexcept;
  // Publishes a buffer in the ring again, and lets streams that ran dry go on.
  void return_to_ring(std::uint32_t buffer_id) noexcept;
  void wake_starved() noexcept;
  // Cancels the multishot request of every stream with no reader waiting (the all-streams bound).
  void stop_unread_receivers() noexcept;
  void forget_receiver(int fd) noexcept;
  // Ends `receiver`'s multishot request before returning, keeping what it received (detach_fd).
  void stop_receiver_now(MultishotRecv& receiver) noexcept;
  void retire(MultishotRecv& receiver) noexcept;
  // Hands the SQ to the kernel now if an SQE in it names `fd` (or its slot), and returns once the kernel
  // has taken it: after that the fd may close and its number and slot be reused.
  void flush_sqes_naming(int fd) noexcept;
  // Zero-copy sends: resets the connection of a cancelled send whose bytes the kernel holds, so that it
  // lets go of them (see BackendOptions::send_zero_copy_threshold).
  void abort_zero_copy_send(Operation& operation) noexcept;
  // A SEND_ZC result (with its notification, if one followed): false if the send is issued again.
  bool zero_copy_send_done(Operation& operation, std::int32_t result) noexcept;
  // Moves the file operations the blocking pool has finished to the pending completions.
  void collect_offloaded() noexcept;
  // Delivers `result` to `operation` at the next dispatch, never inside the submit()/cancel() call.
  void complete_soon(Operation& operation, std::int32_t result) noexcept;
  void prepare(Operation& operation) noexcept;
  // Whether `operation` carries a linked deadline; if so, first makes room in the SQ for it and its SQE.
  bool make_room_for_deadline(const Operation& operation) noexcept;
  // Links the operation's deadline (Operation::link_deadline_ns) to `sqe`, its latest SQE.
  void link_deadline(io_uring_sqe* sqe, Operation& operation) noexcept;
  void arm_wake_poll() noexcept;
  void arm_readiness_poll(Operation& operation) noexcept;
  // Copies CQEs out of the ring while fewer than `limit` completions are pending. The rest stay in the
  // CQ (the kernel keeps what overflows it, IORING_FEAT_NODROP) until a poll has room for them.
  void collect_completions(std::size_t limit) noexcept;
  void dispatch_pending() noexcept;
  void dispatch(std::uint64_t user_data, std::int32_t result, std::uint32_t flags) noexcept;
  void finish(Operation& operation, std::int32_t result) noexcept;
  // Keeps ops_on_fd_ (callers' operations in flight per fd), so that forget_fd() walks the in-flight list
  // only when something is in flight on the closing fd, not on every close.
  void count_on_fd(const Operation& operation, int change) noexcept;
  bool has_ops_on_fd(int fd) const noexcept;

  // --- Fields, grouped by the thread that writes them. ---

  // Set at creation, then only read. wake() and other rings' wake_from() read ring_.ring_fd, wake_fd_
  // and has_msg_ring_ from any thread; the rest is read by the owner.
  io_uring ring_{};  // the SQ and CQ themselves: owner only (DEFER_TASKRUN: enforced)
  std::thread::id owner_thread_ = std::this_thread::get_id();
  bool ring_initialised_ = false;
  unsigned setup_flags_ = 0;
  // What set-up found: the kernel's features and offers. What is used is read from the fields that
  // decide it (see features()), never stored here a second time.
  BackendFeatures features_{.kind = BackendKind::kIoUring};
  bool has_msg_ring_ = false;
  bool has_link_timeout_ = false;
  int wake_fd_ = -1;
  std::size_t max_completions_per_poll_ = 256;
  unsigned lent_buffer_count_ = 256;
  unsigned lent_buffer_size_ = 16 * 1024;
  std::size_t lent_buffers_per_stream_ = 8;
  bool allow_buffer_ring_ = true;
  std::size_t send_zero_copy_threshold_ = 0;  // 0: never (also where the kernel lacks SEND_ZC)
  // The file operations run as io_uring opcodes (bit 1 << OpCode); the others go to offload_.
  std::uint32_t native_file_operations_ = 0;
  internal::FileOffload offload_{*this};

  // Written by the owner, read by any thread (a monitoring thread's counters() and features()).
  internal::BackendCounterCells counters_;
  // What lent_ turned out to be once set up (0: not yet, 1: a buffer ring, 2: a pool): lent_->is_ring()
  // published for features(), which may run on another thread while the owner sets lent_ up.
  std::atomic<std::uint8_t> lent_mode_{0};

  // The owner's alone.
  internal::InFlightList in_flight_;
  // CQEs copied out of the ring and not yet dispatched. Copying first means a callback that submits can
  // never run while the CQ is half-consumed. Only a budget's worth is copied per poll (the rest waits in
  // the CQ) and dispatched entries are dropped after each poll, so it stays O(budget + CQ size).
  struct Completion {
    std::uint64_t user_data;
    std::int32_t result;
    std::uint32_t flags;  // IORING_CQE_F_*
  };
  std::vector<Completion> pending_;
  std::size_t pending_head_ = 0;  // pending_[pending_head_..] are still to be dispatched
  std::vector<std::uint32_t> ops_on_fd_;  // by fd: callers' operations in flight on it
  internal::MultishotAcceptor acceptor_;  // enabled() says whether accepts are multishot
  // Borrowed receives: the lent buffers (created on first use), as a ring or as a pool.
  std::size_t queued_chunks_ = 0;      // received chunks waiting unclaimed in streams' queues, all streams
  std::size_t max_queued_chunks_ = 1;  // half the ring (or the per-stream bound, if larger): the rest is
                                       // kept for streams whose readers wait
  std::unique_ptr<internal::LentBufferRing> lent_;  // on first use; is_ring() says ring or pool
  std::vector<std::unique_ptr<MultishotRecv>> receivers_;  // by fd
  std::vector<std::unique_ptr<MultishotRecv>> retiring_;   // closed streams whose request is ending
  std::vector<int> starved_;                               // fds whose request ended with ENOBUFS
  internal::RingQueue<Operation*> buffer_waiters_;         // pool mode: receives waiting for a buffer
  internal::FixedFileTable fixed_files_;                   // enabled() says whether fixed files are used
};

}  // namespace surge

#endif  // SURGE_RUNTIME_BACKEND_IO_URING_IO_URING_BACKEND_H_
