// epoll_backend.h: the epoll implementation of Backend, for kernels or sandboxes without io_uring.
//
// It emulates completions on top of readiness: submit() attempts the syscall at once; on EAGAIN the
// operation waits in its fd's queue for that direction (input: accept/recv/read, output:
// connect/send/write) and is retried when epoll reports the fd ready. Each fd is registered once,
// edge-triggered, for both directions. Results are delivered through poll() exactly as io_uring delivers
// them: the syscall's value or -errno, in submission order per fd and direction.
//
// Create it with EpollBackend::create().
#ifndef SURGE_RUNTIME_BACKEND_EPOLL_EPOLL_BACKEND_H_
#define SURGE_RUNTIME_BACKEND_EPOLL_EPOLL_BACKEND_H_

#include <sys/epoll.h>

#include <memory>
#include <vector>

#include "runtime/backend/backend.h"
#include "runtime/backend/internal/file_offload.h"
#include "runtime/backend/internal/lent_buffers.h"
#include "runtime/backend/internal/operation_queue.h"
#include "runtime/result.h"

namespace surge {

class EpollBackend final : public Backend {
 public:
  static Result<std::unique_ptr<EpollBackend>> create(const BackendOptions& options);

  // Precondition: in_flight() == 0.
  ~EpollBackend() override;

  BackendKind kind() const noexcept override { return BackendKind::kEpoll; }
  void submit(Operation& operation) noexcept override;
  void cancel(Operation& operation) noexcept override;
  void cancel_all() noexcept override;
  int poll(Timeout timeout) noexcept override;
  void wake() noexcept override;
  void forget_fd(int fd) noexcept override;
  Result<void> detach_fd(int fd) noexcept override;
  std::size_t in_flight() const noexcept override { return in_flight_; }
  BackendCounters counters() const noexcept override { return counters_.snapshot(); }
  BackendFeatures features() const override { return BackendFeatures{.kind = BackendKind::kEpoll}; }
  void release_buffer(std::uint32_t buffer_id) noexcept override;
  void use_blocking_pool(internal::BlockingPool& pool) noexcept override { offload_.set_pool(pool); }

  // Entries in the list of fds whose borrowed receive waits for a lent buffer (tests: it stays bounded).
  std::size_t starved_fd_entries_for_testing() const noexcept { return starved_fds_.size(); }

 private:
  // What waits on one fd. Indexed by fd number: fds are small and dense.
  struct FdState {
    internal::OperationQueue waiting_for_input;
    internal::OperationQueue waiting_for_output;
    bool registered = false;
    bool starved = false;  // listed in starved_fds_ (once, however often its receive finds no buffer)
  };

  EpollBackend() = default;

  // Moves the file operations the blocking pool has finished to completed_.
  void collect_offloaded() noexcept;

  FdState& state_for(int fd);
  // Performs the operation's syscall once; returns its result or -errno (-EAGAIN: not ready yet).
  int attempt(Operation& operation) noexcept;
  // Retries queued operations in order until one would block.
  void retry_queue(internal::OperationQueue& queue) noexcept;
  void complete_later(Operation& operation, int result) noexcept;
  // Completes every operation waiting on `state`'s fd, in either direction, with `result`.
  void fail_waiting(FdState& state, int result) noexcept;
  void register_fd(int fd, FdState& state) noexcept;

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::vector<FdState> fds_;
  internal::OperationQueue completed_;
  std::size_t in_flight_ = 0;
  std::vector<epoll_event> events_;
  unsigned max_completions_per_poll_ = 256;
  internal::BackendCounterCells counters_;
  // Borrowed receives: a pool created on first use; fds whose receive waits for a buffer to come back,
  // each listed once (FdState::starved), so the list is bounded by the open fds whatever a peer sends.
  unsigned lent_buffer_count_ = 256;
  unsigned lent_buffer_size_ = 16 * 1024;
  std::unique_ptr<internal::LentBuffers> lent_;
  std::vector<int> starved_fds_;
  // File operations (epoll cannot wait on regular files): run on the blocking pool.
  internal::FileOffload offload_{*this};
};

}  // namespace surge

#endif  // SURGE_RUNTIME_BACKEND_EPOLL_EPOLL_BACKEND_H_
