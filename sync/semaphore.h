// semaphore.h: Semaphore, a count of permits that tasks acquire and release, fair (FIFO), across workers.
//
//   surge::Semaphore in_flight(64);                       // at most 64 requests to the backend at once
//   surge::Task<surge::Result<Reply>> call(Request request) {
//     auto permit = co_await in_flight.acquire();         // Result<SemaphorePermit>; acquire(n) for n
//     if (!permit) co_return permit.error();              // ECANCELED (cancel, or timeout(d, ...))
//     co_return co_await send(request);                   // the permit goes back when it is destroyed
//   }
//
// Waiters are served in the order they asked: release() hands permits to the oldest waiter first, and a
// waiter asking for many permits holds back later ones asking for fewer (no starvation of large requests).
// acquire() and try_acquire() never overtake a waiter. Asking for more permits than will ever be released
// waits forever (until cancelled).
//
// Threads: any worker; waiters on other workers are woken through their inbox. release() and add_permits()
// may also be called from threads that are not workers.
//
// Cancellation: an acquire() still waiting leaves the queue with ECANCELED and holds nothing (the waiters
// behind it may then be served); one that was already handed its permits completes with them. A task
// destroyed while waiting (its worker's shutdown) leaves the queue, or gives back permits just handed to it.
//
// Cost: acquire + release without waiters are one compare-exchange and one fetch-add, no allocation.
// The Semaphore must outlive every permit and every waiting acquire().
#ifndef SURGE_SYNC_SEMAPHORE_H_
#define SURGE_SYNC_SEMAPHORE_H_

#include <atomic>
#include <cassert>
#include <cstdint>
#include <optional>
#include <utility>

#include "runtime/result.h"
#include "runtime/internal/waiter.h"

namespace surge {

class Semaphore;

// Permits held; released on destruction (or release()), kept forever by forget(). Move-only.
class [[nodiscard]] SemaphorePermit {
 public:
  SemaphorePermit(SemaphorePermit&& other) noexcept
      : semaphore_(std::exchange(other.semaphore_, nullptr)), count_(other.count_) {}
  SemaphorePermit& operator=(SemaphorePermit&& other) noexcept {
    if (this != &other) {
      release();
      semaphore_ = std::exchange(other.semaphore_, nullptr);
      count_ = other.count_;
    }
    return *this;
  }
  SemaphorePermit(const SemaphorePermit&) = delete;
  SemaphorePermit& operator=(const SemaphorePermit&) = delete;
  ~SemaphorePermit() { release(); }

  std::uint64_t count() const noexcept { return semaphore_ != nullptr ? count_ : 0; }
  // Gives the permits back now. Idempotent.
  void release() noexcept;
  // Keeps the permits: they are never given back (the semaphore shrinks by count()).
  void forget() noexcept { semaphore_ = nullptr; }

 private:
  friend class Semaphore;
  SemaphorePermit(Semaphore* semaphore, std::uint64_t count) noexcept : semaphore_(semaphore), count_(count) {}
  Semaphore* semaphore_;
  std::uint64_t count_;
};

class Semaphore {
 public:
  class AcquireAwaiter;

  // At most 2^62 permits.
  explicit Semaphore(std::uint64_t permits) noexcept : state_(permits << 1) { assert(permits < (1ULL << 62)); }
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // co_await semaphore.acquire(n) -> Result<SemaphorePermit>. n >= 1. Await it where it is made.
  AcquireAwaiter acquire(std::uint64_t count = 1) noexcept;

  // `count` permits if they are free and nobody waits, nullopt otherwise. Never suspends.
  std::optional<SemaphorePermit> try_acquire(std::uint64_t count = 1) noexcept {
    if (take(count)) return SemaphorePermit(this, count);
    return std::nullopt;
  }

  // Adds `count` permits (for example permits taken with forget()). Any thread.
  void add_permits(std::uint64_t count) noexcept { release(count); }

  // A snapshot, for tests and monitoring.
  std::uint64_t available_permits() const noexcept { return state_.load(std::memory_order_relaxed) >> 1; }

 private:
  friend class SemaphorePermit;

  // state_ = free permits << 1 | kWaiters. kWaiters is set exactly while waiters_ is not empty (changed
  // only under lock_); while it is set no permit is taken without lock_, which keeps the queue fair.
  static constexpr std::uint64_t kWaiters = 1;

  // The fast path: takes `count` if free and nobody waits.
  bool take(std::uint64_t count) noexcept {
    std::uint64_t state = state_.load(std::memory_order_relaxed);
    while ((state & kWaiters) == 0 && (state >> 1) >= count) {
      if (state_.compare_exchange_weak(state, state - (count << 1), std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }

  void release(std::uint64_t count) noexcept {
    const std::uint64_t before = state_.fetch_add(count << 1, std::memory_order_release);
    if ((before & kWaiters) == 0) return;
    internal::PendingWakes wakes;
    std::lock_guard guard(lock_);
    serve_locked(wakes);
  }

  // Hands free permits to the waiters at the head of the queue while there are enough for the oldest.
  void serve_locked(internal::PendingWakes& wakes) noexcept {
    while (!waiters_.empty()) {
      internal::Waiter& head = internal::as_waiter(*waiters_.front());
      const std::uint64_t count = head.payload;
      std::uint64_t state = state_.load(std::memory_order_relaxed);
      bool taken = false;
      while ((state >> 1) >= count) {
        std::uint64_t next = state - (count << 1);
        if (waiters_.size() == 1) next &= ~kWaiters;  // the last waiter: fast paths may take permits again
        if (state_.compare_exchange_weak(state, next, std::memory_order_acquire, std::memory_order_relaxed)) {
          taken = true;
          break;
        }
      }
      if (!taken) return;
      waiters_.remove(head);
      wakes.wake(head);
    }
  }

  std::atomic<std::uint64_t> state_;
  internal::SpinLock lock_;
  internal::WakeNodeList waiters_;  // guarded by lock_; payload: the permits each asks for
};

class [[nodiscard]] Semaphore::AcquireAwaiter : public internal::WaitAwaiter<AcquireAwaiter> {
 public:
  AcquireAwaiter(Semaphore& semaphore, std::uint64_t count) noexcept : semaphore_(&semaphore) {
    waiter_.payload = count;
  }
  ~AcquireAwaiter() { abandon(); }

  bool await_ready() noexcept { return semaphore_->take(waiter_.payload); }
  Result<SemaphorePermit> await_resume() noexcept {
    if (finish() == internal::WaitState::kCancelled) return Error(ECANCELED, "Semaphore::acquire");
    return SemaphorePermit(semaphore_, waiter_.payload);
  }

 private:
  friend class internal::WaitAwaiter<AcquireAwaiter>;
  internal::SpinLock& wait_lock() noexcept { return semaphore_->lock_; }
  internal::WakeNodeList& wait_list() noexcept { return semaphore_->waiters_; }

  bool try_complete_locked(internal::PendingWakes&) noexcept {
    const std::uint64_t count = waiter_.payload;
    std::uint64_t state = semaphore_->state_.load(std::memory_order_relaxed);
    for (;;) {
      if ((state & kWaiters) == 0 && (state >> 1) >= count) {
        if (semaphore_->state_.compare_exchange_weak(state, state - (count << 1), std::memory_order_acquire,
                                                     std::memory_order_relaxed)) {
          return true;
        }
      } else if ((state & kWaiters) != 0) {
        return false;
      } else if (semaphore_->state_.compare_exchange_weak(state, state | kWaiters, std::memory_order_relaxed)) {
        return false;  // marked: releases from now on take the lock and serve the queue
      }
    }
  }
  void left_queue_locked(internal::PendingWakes& wakes) noexcept {
    if (semaphore_->waiters_.empty()) {
      semaphore_->state_.fetch_and(~kWaiters, std::memory_order_relaxed);
    } else {
      semaphore_->serve_locked(wakes);  // the one that left may have been holding the others back
    }
  }
  void undo_grant_locked(internal::PendingWakes& wakes) noexcept {
    semaphore_->state_.fetch_add(waiter_.payload << 1, std::memory_order_release);
    semaphore_->serve_locked(wakes);
  }

  Semaphore* semaphore_;
};

inline Semaphore::AcquireAwaiter Semaphore::acquire(std::uint64_t count) noexcept {
  return AcquireAwaiter(*this, count);
}

inline void SemaphorePermit::release() noexcept {
  if (semaphore_ != nullptr) std::exchange(semaphore_, nullptr)->release(count_);
}

}  // namespace surge

#endif  // SURGE_SYNC_SEMAPHORE_H_
