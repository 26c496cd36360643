// file_offload.h (internal): runs file operations on the blocking pool for a backend that cannot run
// them itself (epoll, which cannot wait on regular files; io_uring on a kernel without the opcode).
//
// The owning backend hands an Operation to submit(); one of a few lanes (jobs on the BlockingPool, at
// most kMaxLanes at a time) performs its syscall and queues it as finished; the backend collects it with
// take_finished() from its poll() and delivers it like any other completion. Nothing is allocated: the
// Operation is queued through its own link (Operation::queue_next), and the lanes live in this object.
//
//   offload.submit(operation);                 // owning thread
//   ...                                        // a lane runs pread(2) and calls backend.wake()
//   offload.take_finished(completed);          // owning thread, in poll(): operation.result is set
//
// Cancellation: cancel() takes back an operation no lane has started (the backend completes it with
// -ECANCELED); one already running finishes with its real result, which the caller must accept: a file
// syscall cannot be interrupted.
//
// Threading: submit(), cancel(), take_finished() and the destructor on the owning thread; has_finished()
// anywhere. The backend must call wait_idle() before it closes what wake() uses.
#ifndef SURGE_RUNTIME_BACKEND_INTERNAL_FILE_OFFLOAD_H_
#define SURGE_RUNTIME_BACKEND_INTERNAL_FILE_OFFLOAD_H_

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>

#include "runtime/backend/backend.h"
#include "runtime/backend/internal/operation_queue.h"
#include "runtime/backend/operation.h"
#include "runtime/internal/blocking_pool.h"

namespace surge::internal {

class FileOffload {
 public:
  static constexpr unsigned kMaxLanes = 4;
  // A lane that has performed this many operations in a row goes to the back of the pool's queue.
  static constexpr int kOperationsPerTurn = 64;

  // `owner` is woken (Backend::wake) when an operation finishes.
  explicit FileOffload(Backend& owner) noexcept : owner_(owner) {}
  ~FileOffload() { wait_idle(); }
  FileOffload(const FileOffload&) = delete;
  FileOffload& operator=(const FileOffload&) = delete;

  // The pool the lanes run on (default: BlockingPool::shared()). Before the first submit().
  void set_pool(BlockingPool& pool) noexcept { pool_ = &pool; }

  void submit(Operation& operation) noexcept;
  // Takes `operation` back if no lane has started it; returns whether it did.
  bool cancel(Operation& operation) noexcept;
  // Takes back every operation on `fd` that no lane has started, into `taken`.
  void cancel_fd(int fd, OperationQueue& taken) noexcept;
  // Takes back every operation no lane has started, into `taken`.
  void cancel_all(OperationQueue& taken) noexcept;
  // Appends the finished operations (result set) to `out`, oldest first.
  void take_finished(OperationQueue& out) noexcept;
  bool has_finished() const noexcept { return has_finished_.load(std::memory_order_acquire); }
  // Blocks until no lane is running (the lanes call the owner's wake()).
  void wait_idle() noexcept;

  // Performs `operation`'s syscall on the calling thread (EINTR retried); returns its result or -errno.
  static int perform(Operation& operation) noexcept;

 private:
  struct Lane : BlockingJob {
    FileOffload* offload = nullptr;
  };
  static void run_lane(BlockingJob& job) noexcept;
  BlockingPool& pool() const noexcept { return pool_ != nullptr ? *pool_ : BlockingPool::shared(); }

  Backend& owner_;
  BlockingPool* pool_ = nullptr;
  std::mutex mutex_;
  std::condition_variable idle_;
  OperationQueue waiting_;   // guarded by mutex_
  OperationQueue finished_;  // guarded by mutex_
  unsigned running_lanes_ = 0;  // guarded by mutex_
  std::atomic<bool> has_finished_{false};
  std::array<Lane, kMaxLanes> lanes_;
  std::array<bool, kMaxLanes> lane_busy_{};  // guarded by mutex_
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_BACKEND_INTERNAL_FILE_OFFLOAD_H_
