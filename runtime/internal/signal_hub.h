// signal_hub.h (internal): how a Runtime hands the signals it reads to the tasks awaiting ctrl_c().
//
// One task on worker 0 reads the Runtime's signalfd and calls deliver(). Waiters (CtrlCAwaitable, in
// their coroutine frames) queue here from any worker, with the waiting protocol every primitive that
// hands things across workers uses (runtime/internal/waiter.h): deliver() wakes every waiter queued at
// that moment (a broadcast), each on its own worker (through that worker's wake list from worker 0), with
// the signal's number. A signal that arrives while nobody waits is kept (at most one of each number, like
// the kernel's own pending set) and handed, oldest first, to the next waiter, which then does not suspend.
//
// Threads: the spin lock guards the waiters and the kept signals. Not a hot path.
#ifndef SURGE_RUNTIME_INTERNAL_SIGNAL_HUB_H_
#define SURGE_RUNTIME_INTERNAL_SIGNAL_HUB_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <mutex>

#include "runtime/internal/spin_lock.h"
#include "runtime/internal/wake_list.h"
#include "runtime/internal/waiter.h"

namespace surge::internal {

class SignalHub {
 public:
  SignalHub() = default;
  SignalHub(const SignalHub&) = delete;
  SignalHub& operator=(const SignalHub&) = delete;

  // Whether any task has ever awaited ctrl_c() on this hub: until then the Runtime leaves a signal to
  // its default action (the reader re-raises it). Any thread.
  bool armed() const noexcept { return armed_.load(std::memory_order_acquire); }

  // The reader, on worker 0: wakes every queued waiter with `signal` (in its payload), or keeps it for
  // the next one.
  void deliver(int signal) noexcept {
    PendingWakes wakes;
    std::lock_guard guard(lock_);
    if (waiting_.empty()) {
      const auto end = kept_.begin() + static_cast<std::ptrdiff_t>(kept_count_);
      if (std::find(kept_.begin(), end, signal) == end && kept_count_ < kept_.size()) kept_[kept_count_++] = signal;
      return;
    }
    while (!waiting_.empty()) {
      Waiter& waiter = as_waiter(waiting_.pop_front());
      waiter.payload = static_cast<std::uintptr_t>(signal);
      wakes.wake(waiter);
    }
  }

  // Signals kept for the next waiter, and waiters queued (monitoring, tests). Any thread.
  std::size_t kept() noexcept {
    std::lock_guard guard(lock_);
    return kept_count_;
  }
  std::size_t waiting() noexcept {
    std::lock_guard guard(lock_);
    return waiting_.size();
  }

  // For CtrlCAwaitable (the waiting protocol's hooks).
  SpinLock& lock() noexcept { return lock_; }
  WakeNodeList& waiting_list() noexcept { return waiting_; }
  // Under lock(): arms the hub (the first ctrl_c()) and takes the oldest kept signal, or 0.
  int arm_and_take_kept_locked() noexcept {
    armed_.store(true, std::memory_order_release);
    if (kept_count_ == 0) return 0;
    const int signal = kept_[0];
    std::copy(kept_.begin() + 1, kept_.begin() + static_cast<std::ptrdiff_t>(kept_count_), kept_.begin());
    --kept_count_;
    return signal;
  }

 private:
  SpinLock lock_;
  std::atomic<bool> armed_{false};  // set by the first ctrl_c()
  WakeNodeList waiting_;            // guarded by lock_; payload: the signal, once woken
  std::array<int, 64> kept_{};      // guarded by lock_: signal numbers, oldest first, each at most once
  std::size_t kept_count_ = 0;
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_INTERNAL_SIGNAL_HUB_H_
