// waiter.h (internal): what every awaiter that waits to be handed something from any thread is built
// from: the sync primitives (sync/) and ctrl_c().
//
// A task that cannot take what it asks for (a lock, permits, a message, room in a channel) queues a Waiter
// on the primitive's FIFO wait list, under the primitive's SpinLock, and suspends. Whoever makes it
// possible later grants it directly (hands over the lock, the permits, the message) under that same lock,
// and wakes it once the lock is released (PendingWakes): scheduled at once on the same worker, through
// the waiter's worker's WakeList from any other thread.
// Granting at hand-over time (rather than waking the task to try again) is what makes the primitives FIFO
// and their cancellation exact: a waiter is either still queued (then cancellation takes it out, and it
// got nothing) or granted (then it completes with what it was given, even if cancelled meanwhile).
//
// WaitAwaiter<Derived> implements the protocol once; a primitive's awaiter supplies, all called with the
// primitive's lock held:
//   bool try_complete_locked(PendingWakes&); completes at once if it can (also arms "somebody waits")
//   void left_queue_locked(PendingWakes&); a queued waiter left (cancelled, or its frame destroyed):
//                                          fix the primitive's state, grant whoever that unblocks
//   void undo_grant_locked(PendingWakes&); the frame is destroyed after a grant, before it resumed: give
//                                          back what was granted (unlock, release permits, requeue a message)
// plus `internal::SpinLock& wait_lock()` and `WakeNodeList& wait_list()`.
//
// Threads: an awaiter is awaited, cancelled and destroyed on its own worker's thread; grants come from any
// thread. Frames are destroyed while waiting only by their worker's shutdown; then the destructor takes the
// waiter off whichever list holds it (the primitive's, or its worker's WakeList), so nothing ever points
// into a dead frame.
#ifndef SURGE_RUNTIME_INTERNAL_WAITER_H_
#define SURGE_RUNTIME_INTERNAL_WAITER_H_

#include <coroutine>
#include <cstdint>
#include <mutex>

#include "runtime/internal/cancel_slot.h"
#include "runtime/internal/spin_lock.h"
#include "runtime/internal/wake_list.h"
#include "runtime/worker.h"

namespace surge::internal {

enum class WaitState : std::uint8_t {
  kIdle,       // not waiting (completed at once, or resumed)
  kQueued,     // on the primitive's wait list
  kGranted,    // given what it waited for; its wake-up is scheduled or listed
  kCancelled,  // taken off the wait list by a cancellation: it got nothing
  kClosed,     // woken because the primitive was closed: it got nothing
};

struct Waiter : WakeNode {
  Worker* worker = nullptr;
  std::uintptr_t payload = 0;  // the primitive's: permits asked for, where a message goes, ...
  WaitState state = WaitState::kIdle;  // guarded by the primitive's lock while queued or granted
};

inline Waiter& as_waiter(WakeNode& node) noexcept { return static_cast<Waiter&>(node); }

// Wake-ups decided under a primitive's lock and carried out after it is released. Declare it before the
// lock guard, so that it is destroyed (and wakes) after the lock is let go: a woken task may destroy the
// primitive as soon as it runs (the last unlock of a Mutex, the last done() of a WaitGroup), so nothing
// may touch the primitive once a waiter can run, and nothing does: the lock's release is the last touch.
// The chosen waiters are chained through their (now free) list links meanwhile. A waiter on another
// worker is "in transit" until it is on its worker's WakeList: its frame is not freed before (see
// WaitAwaiter::abandon and WakeList::remove_when_pushed).
class PendingWakes {
 public:
  PendingWakes() = default;
  PendingWakes(const PendingWakes&) = delete;
  PendingWakes& operator=(const PendingWakes&) = delete;
  ~PendingWakes() { flush(); }

  // Under the primitive's lock: marks `waiter` (already off its wait list) as `outcome`, to be woken.
  void wake(Waiter& waiter, WaitState outcome = WaitState::kGranted) noexcept {
    waiter.state = outcome;
    waiter.in_transit = waiter.worker != Worker::current();
    waiter.next = nullptr;
    if (tail_ == nullptr) {
      head_ = &waiter;
    } else {
      tail_->next = &waiter;
    }
    tail_ = &waiter;
  }

  // After the lock is released: wakes every chosen waiter, oldest first.
  void flush() noexcept {
    if (head_ == nullptr) return;  // the common case: nobody to wake
    Worker* const here = Worker::current();
    while (head_ != nullptr) {
      Waiter& waiter = *head_;
      head_ = static_cast<Waiter*>(waiter.next);  // read first: listing reuses the links
      Worker& home = *waiter.worker;
      if (&home == here) {
        WorkerAccess::schedule(home, waiter.coroutine);
      } else if (WorkerAccess::list_wake(home, waiter)) {  // the last touch of `waiter`
        WorkerAccess::post_wake_list(home);  // else a drain is already on its way and will see it
      }
    }
    tail_ = nullptr;
  }

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

template <typename Derived>
class WaitAwaiter {
 public:
  WaitAwaiter() = default;
  WaitAwaiter(const WaitAwaiter&) = delete;
  WaitAwaiter& operator=(const WaitAwaiter&) = delete;

  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiter) noexcept {
    slot_ = cancel_slot_of(awaiter);
    PendingWakes wakes;
    std::lock_guard guard(derived().wait_lock());
    if (derived().try_complete_locked(wakes)) return false;
    if (slot_ != nullptr && slot_->requested()) {
      // Cancelled before it could wait: it leaves as a queued waiter would, undoing what the failed
      // attempt armed for waiters (a mutex's contended mark, a semaphore's waiters bit).
      derived().left_queue_locked(wakes);
      waiter_.state = WaitState::kCancelled;
      return false;
    }
    waiter_.coroutine = awaiter;
    waiter_.worker = Worker::current();
    waiter_.state = WaitState::kQueued;
    derived().wait_list().push_back(waiter_);
    suspended_ = true;
    if (slot_ != nullptr) slot_->install(&on_cancel, this);
    return true;
  }

 protected:
  ~WaitAwaiter() = default;

  // Called by await_resume: the wait is over; returns how it ended (kIdle: completed without waiting).
  WaitState finish() noexcept {
    if (suspended_) {
      suspended_ = false;
      if (slot_ != nullptr) slot_->clear();
    }
    return waiter_.state;
  }

  // Called by the derived destructor: a frame destroyed while this awaiter waits (its worker's shutdown).
  void abandon() noexcept {
    if (suspended_) abandon_waiting();  // rare: only a worker's shutdown destroys a waiting frame
  }

 private:
  [[gnu::noinline]] void abandon_waiting() noexcept {
    suspended_ = false;
    if (slot_ != nullptr) slot_->clear();
    PendingWakes wakes;
    std::lock_guard guard(derived().wait_lock());
    if (waiter_.state == WaitState::kQueued) {
      derived().wait_list().remove(waiter_);
      waiter_.state = WaitState::kCancelled;
      derived().left_queue_locked(wakes);
      return;
    }
    // Woken (granted, or closed) but not resumed: a waker on another thread may still be about to put it
    // on this worker's wake list, or have put it there: wait for the first, undo the second. A waker on
    // this thread only scheduled it (the worker's shutdown drops it).
    WorkerAccess::unlist_wake(*waiter_.worker, waiter_);
    if (waiter_.state == WaitState::kGranted) derived().undo_grant_locked(wakes);
    waiter_.state = WaitState::kIdle;
  }

 protected:
  Waiter waiter_;

 private:
  Derived& derived() noexcept { return static_cast<Derived&>(*this); }

  static void on_cancel(void* self) noexcept {
    auto& awaiter = *static_cast<WaitAwaiter*>(self);
    PendingWakes wakes;
    std::lock_guard guard(awaiter.derived().wait_lock());
    if (awaiter.waiter_.state != WaitState::kQueued) return;  // granted first: it completes with that
    awaiter.derived().wait_list().remove(awaiter.waiter_);
    awaiter.derived().left_queue_locked(wakes);
    wakes.wake(awaiter.waiter_, WaitState::kCancelled);  // on this worker: scheduled at once
  }

  CancelSlot* slot_ = nullptr;
  bool suspended_ = false;  // between a suspending await_suspend and await_resume; owner thread only
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_INTERNAL_WAITER_H_
