// counters.h: BackendCounters, a snapshot of what a backend has done (operations, SQEs, CQEs, syscalls,
// lent-buffer exhaustion), for monitoring and for the benchmarks' per-request figures.
//
//   const surge::BackendCounters counters = worker.counters();   // any thread
//   std::printf("%llu wait syscalls\n", static_cast<unsigned long long>(counters.wait_syscalls));
#ifndef SURGE_RUNTIME_BACKEND_COUNTERS_H_
#define SURGE_RUNTIME_BACKEND_COUNTERS_H_

#include <atomic>
#include <cstdint>

namespace surge {

// Per-backend counters, read by benchmarks to report syscalls and operations per request. A snapshot:
// Backend::counters() copies it out of the live BackendCounterCells.
struct BackendCounters {
  std::uint64_t operations_submitted = 0;
  std::uint64_t operations_completed = 0;
  std::uint64_t wait_syscalls = 0;  // io_uring_enter / epoll_wait calls
  std::uint64_t io_syscalls = 0;    // epoll: accept4/connect/recv/send/read/write; io_uring: file registrations
  std::uint64_t sqes_submitted = 0;  // io_uring only: SQEs queued (operations, polls, cancels, wake-ups)
  std::uint64_t cqes_reaped = 0;     // io_uring only: CQEs taken off the completion queue
  std::uint64_t lent_buffers_exhausted = 0;  // receives that found no lent buffer free (io_uring: ENOBUFS)
  std::uint64_t fixed_table_full = 0;       // io_uring only: fds used unregistered, the file table being full
  // Wake-ups sent to the worker while it slept (another thread posted work: a spawn, a cross-worker
  // completion, a channel send). Counted by the Worker, not the backend: Worker::counters() fills it in.
  std::uint64_t wakeups = 0;
};

namespace internal {

// One counter that only its backend's thread writes and any thread may read (a server's monitoring
// thread, say). A relaxed load and store instead of an atomic add: with a single writer no increment is
// lost, and on x86 it costs what a plain increment does.
class OwnedCounter {
 public:
  OwnedCounter& operator++() noexcept { return *this += 1; }
  OwnedCounter& operator+=(std::uint64_t amount) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + amount, std::memory_order_relaxed);
    return *this;
  }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// The live counters a backend increments; field for field the same as BackendCounters.
struct BackendCounterCells {
  OwnedCounter operations_submitted;
  OwnedCounter operations_completed;
  OwnedCounter wait_syscalls;
  OwnedCounter io_syscalls;
  OwnedCounter sqes_submitted;
  OwnedCounter cqes_reaped;
  OwnedCounter lent_buffers_exhausted;
  OwnedCounter fixed_table_full;

  BackendCounters snapshot() const noexcept {
    return {operations_submitted.get(), operations_completed.get(), wait_syscalls.get(),
            io_syscalls.get(),          sqes_submitted.get(),       cqes_reaped.get(),
            lent_buffers_exhausted.get(), fixed_table_full.get()};
  }
};

}  // namespace internal
}  // namespace surge

#endif  // SURGE_RUNTIME_BACKEND_COUNTERS_H_
