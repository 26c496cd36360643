// notify.h: Notify, a wake-up signal between tasks (Tokio's Notify): one task waits, another notifies.
//
//   surge::Notify work_ready;
//   // consumer task:                          // producer, any worker (or any thread):
//   for (;;) {                                  queue.push(item);
//     if (auto item = queue.try_pop()) { ... }  work_ready.notify_one();
//     else if (!co_await work_ready.wait()) break;   // Result<void>: ECANCELED when cancelled
//   }
//
// notify_one() wakes the oldest waiting task; if none waits, it stores one permit, which the next wait()
// consumes without suspending (permits do not add up: at most one is stored). That closes the race
// between "checked, found nothing" and "started waiting" in loops like the one above. notify_all() wakes
// every task waiting at that moment and stores nothing.
//
// Threads: wait() on any worker; notify_one() and notify_all() from any thread. Waiters on other workers
// are woken through their worker's inbox.
//
// Cancellation: a wait() still queued leaves with ECANCELED and consumes nothing; one that was already
// notified completes successfully. A notify_one() given to a task destroyed before it resumed (its
// worker's shutdown) is passed on to the next waiter, or stored as the permit; a notify_all() is not.
// The Notify must outlive every waiting wait().
#ifndef SURGE_SYNC_NOTIFY_H_
#define SURGE_SYNC_NOTIFY_H_

#include <cstdint>
#include <mutex>

#include "runtime/result.h"
#include "runtime/internal/waiter.h"

namespace surge {

class Notify {
 public:
  class WaitAwaiter;

  Notify() = default;
  Notify(const Notify&) = delete;
  Notify& operator=(const Notify&) = delete;

  // co_await notify.wait() -> Result<void>. Await it where it is made.
  WaitAwaiter wait() noexcept;

  void notify_one() noexcept {
    internal::PendingWakes wakes;
    std::lock_guard guard(lock_);
    notify_one_locked(wakes);
  }

  void notify_all() noexcept {
    internal::PendingWakes wakes;
    std::lock_guard guard(lock_);
    while (!waiters_.empty()) {
      internal::Waiter& waiter = internal::as_waiter(waiters_.pop_front());
      waiter.payload = kByNotifyAll;
      wakes.wake(waiter);
    }
  }

 private:
  // A woken waiter's payload: which call woke it (a notify_one() is passed on if its waiter dies before it
  // resumes; a notify_all() is not, it stores nothing).
  static constexpr std::uintptr_t kByNotifyOne = 1;
  static constexpr std::uintptr_t kByNotifyAll = 2;

  void notify_one_locked(internal::PendingWakes& wakes) noexcept {
    if (waiters_.empty()) {
      permit_ = true;
    } else {
      internal::Waiter& waiter = internal::as_waiter(waiters_.pop_front());
      waiter.payload = kByNotifyOne;
      wakes.wake(waiter);
    }
  }

  internal::SpinLock lock_;
  internal::WakeNodeList waiters_;  // guarded by lock_
  bool permit_ = false;             // guarded by lock_
};

class [[nodiscard]] Notify::WaitAwaiter : public internal::WaitAwaiter<WaitAwaiter> {
 public:
  explicit WaitAwaiter(Notify& notify) noexcept : notify_(&notify) {}
  ~WaitAwaiter() { abandon(); }

  bool await_ready() const noexcept { return false; }  // the permit is looked at under the lock
  Result<void> await_resume() noexcept {
    if (finish() == internal::WaitState::kCancelled) return Error(ECANCELED, "Notify::wait");
    return ok();
  }

 private:
  friend class internal::WaitAwaiter<WaitAwaiter>;
  internal::SpinLock& wait_lock() noexcept { return notify_->lock_; }
  internal::WakeNodeList& wait_list() noexcept { return notify_->waiters_; }

  bool try_complete_locked(internal::PendingWakes&) noexcept { return std::exchange(notify_->permit_, false); }
  void left_queue_locked(internal::PendingWakes&) noexcept {}
  void undo_grant_locked(internal::PendingWakes& wakes) noexcept {
    if (waiter_.payload == kByNotifyOne) notify_->notify_one_locked(wakes);
  }

  Notify* notify_;
};

inline Notify::WaitAwaiter Notify::wait() noexcept { return WaitAwaiter(*this); }

}  // namespace surge

#endif  // SURGE_SYNC_NOTIFY_H_
