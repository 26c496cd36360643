// mutex.h: Mutex, an asynchronous lock for tasks, fair (FIFO) and usable across workers.
//
//   surge::Mutex mutex;
//   surge::Task<surge::Result<void>> add(Cache& cache, Entry entry) {
//     auto guard = co_await mutex.lock();        // Result<MutexGuard>: ECANCELED if cancelled while waiting
//     if (!guard) co_return guard.error();
//     cache.insert(std::move(entry));             // other tasks that lock() wait, their workers keep running
//     co_return surge::ok();                      // the guard unlocks when it goes out of scope
//   }
//
// A task that finds the mutex held suspends (its worker runs other tasks); it is never spun on and never
// blocks its thread. Waiters get the mutex in the order they asked for it: unlock() hands it straight to
// the oldest waiter, and lock() never overtakes a waiter. Holding it across co_await is what it is for.
//
// Threads: lock(), try_lock() and the guard work from any worker; a waiter on another worker is woken
// through that worker's inbox (MSG_RING or eventfd if it sleeps). The guard may be released on another
// worker than the one that locked (a task does not migrate, but a guard can be moved).
//
// Cancellation (a cancel, or timeout(d, mutex.lock())): a lock() still waiting is taken out of the queue
// and returns ECANCELED, never leaving the mutex held; a lock() that was already handed the mutex
// completes with its guard (the usual rule: the real result wins a race). A task destroyed while waiting
// (its worker shuts down) leaves the queue, or, if it had just been handed the mutex, passes it on.
//
// Cost: lock + unlock without contention are one compare-exchange each, no allocation ever.
// The Mutex must outlive every guard and every waiting lock().
#ifndef SURGE_SYNC_MUTEX_H_
#define SURGE_SYNC_MUTEX_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>

#include "runtime/result.h"
#include "runtime/internal/waiter.h"

namespace surge {

class Mutex;

// Holds a Mutex locked; unlocks it on destruction or unlock(). Move-only.
class [[nodiscard]] MutexGuard {
 public:
  MutexGuard(MutexGuard&& other) noexcept : mutex_(std::exchange(other.mutex_, nullptr)) {}
  MutexGuard& operator=(MutexGuard&& other) noexcept {
    if (this != &other) {
      unlock();
      mutex_ = std::exchange(other.mutex_, nullptr);
    }
    return *this;
  }
  MutexGuard(const MutexGuard&) = delete;
  MutexGuard& operator=(const MutexGuard&) = delete;
  ~MutexGuard() { unlock(); }

  // Unlocks now (the oldest waiter, if any, gets the mutex). Idempotent.
  void unlock() noexcept;
  bool owns_lock() const noexcept { return mutex_ != nullptr; }

 private:
  friend class Mutex;
  explicit MutexGuard(Mutex* mutex) noexcept : mutex_(mutex) {}
  Mutex* mutex_;
};

class Mutex {
 public:
  class LockAwaiter;

  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // co_await mutex.lock() -> Result<MutexGuard>. Await it in the expression that makes it.
  LockAwaiter lock() noexcept;

  // The guard if the mutex was free and nobody waited, nullopt otherwise. Never suspends.
  std::optional<MutexGuard> try_lock() noexcept {
    std::uint32_t expected = kFree;
    if (state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire, std::memory_order_relaxed)) {
      return MutexGuard(this);
    }
    return std::nullopt;
  }

  // A snapshot, for tests and monitoring.
  bool is_locked() const noexcept { return state_.load(std::memory_order_relaxed) != kFree; }

 private:
  friend class MutexGuard;

  // kFree -> kLocked and back without the spin lock (the fast paths); kLocked <-> kContended only under
  // it. kContended means waiters_ is not empty, so an unlock() that sees it must hand the mutex over.
  static constexpr std::uint32_t kFree = 0;
  static constexpr std::uint32_t kLocked = 1;
  static constexpr std::uint32_t kContended = 2;

  void unlock() noexcept {
    std::uint32_t expected = kLocked;
    if (state_.compare_exchange_strong(expected, kFree, std::memory_order_release, std::memory_order_relaxed)) {
      return;
    }
    internal::PendingWakes wakes;
    std::lock_guard guard(lock_);
    hand_over_locked(wakes);
  }

  // The holder lets go with lock_ held: to the oldest waiter if any (the mutex stays locked), else free.
  void hand_over_locked(internal::PendingWakes& wakes) noexcept {
    if (waiters_.empty()) {
      state_.store(kFree, std::memory_order_release);
      return;
    }
    internal::Waiter& next = internal::as_waiter(waiters_.pop_front());
    if (waiters_.empty()) state_.store(kLocked, std::memory_order_relaxed);
    wakes.wake(next);
  }

  std::atomic<std::uint32_t> state_{kFree};
  internal::SpinLock lock_;
  internal::WakeNodeList waiters_;  // guarded by lock_
};

class [[nodiscard]] Mutex::LockAwaiter : public internal::WaitAwaiter<LockAwaiter> {
 public:
  explicit LockAwaiter(Mutex& mutex) noexcept : mutex_(&mutex) {}
  ~LockAwaiter() { abandon(); }

  bool await_ready() noexcept {
    std::uint32_t expected = kFree;
    return mutex_->state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                                  std::memory_order_relaxed);
  }
  Result<MutexGuard> await_resume() noexcept {
    const internal::WaitState state = finish();
    if (state == internal::WaitState::kCancelled) return Error(ECANCELED, "Mutex::lock");
    return MutexGuard(mutex_);
  }

 private:
  friend class internal::WaitAwaiter<LockAwaiter>;
  internal::SpinLock& wait_lock() noexcept { return mutex_->lock_; }
  internal::WakeNodeList& wait_list() noexcept { return mutex_->waiters_; }

  bool try_complete_locked(internal::PendingWakes&) noexcept {
    std::uint32_t state = mutex_->state_.load(std::memory_order_relaxed);
    for (;;) {
      if (state == kFree) {
        if (mutex_->state_.compare_exchange_weak(state, kLocked, std::memory_order_acquire,
                                                 std::memory_order_relaxed)) {
          return true;
        }
      } else if (state == kLocked) {
        // Mark it contended before queueing, so that the holder's fast unlock fails and hands it over.
        if (mutex_->state_.compare_exchange_weak(state, kContended, std::memory_order_relaxed)) return false;
      } else {
        return false;
      }
    }
  }
  void left_queue_locked(internal::PendingWakes&) noexcept {
    if (mutex_->waiters_.empty()) mutex_->state_.store(kLocked, std::memory_order_relaxed);
  }
  void undo_grant_locked(internal::PendingWakes& wakes) noexcept { mutex_->hand_over_locked(wakes); }

  Mutex* mutex_;
};

inline Mutex::LockAwaiter Mutex::lock() noexcept { return LockAwaiter(*this); }

inline void MutexGuard::unlock() noexcept {
  if (mutex_ != nullptr) std::exchange(mutex_, nullptr)->unlock();
}

}  // namespace surge

#endif  // SURGE_SYNC_MUTEX_H_
