// wait_group.h: WaitGroup (wait until a count of outstanding jobs drops to zero) and Gate (Seastar's
// gate: admit work until closed, then wait for what was admitted), for draining on shutdown.
//
//   surge::Gate gate;
//   // per request:                               // on shutdown:
//   auto pass = gate.enter();                     co_await gate.close();   // no new entries, then waits
//   if (!pass) co_return pass.error();  // ESHUTDOWN: closing        // until every pass is destroyed
//   co_await handle(request);           // the pass leaves the gate when destroyed
//
//   surge::WaitGroup group;
//   group.add(3); ...three jobs each call group.done()...; co_await group.wait();
//
// Threads: any worker for wait()/close(); add(), done(), enter() and passes from any thread.
// Cancellation: wait() and close() return ECANCELED when cancelled while waiting (close() stays closed).
// Both must outlive their waiters and, for Gate, every GatePass. No allocation.
#ifndef SURGE_SYNC_WAIT_GROUP_H_
#define SURGE_SYNC_WAIT_GROUP_H_

#include <atomic>
#include <cassert>
#include <cstdint>
#include <utility>

#include "runtime/result.h"
#include "runtime/internal/waiter.h"

namespace surge {
namespace internal {

// Tasks waiting for a count to reach zero; the owner decides what the count is.
//
// A task that sees the zero may destroy the owner (a WaitGroup on its stack, a Gate in a connection) at
// once. So the count only drops under the waiters' lock (drop()), and the waiters look at it only under
// that lock too: the one who dropped it lets go of the lock before anyone can see the zero, and touches
// nothing of the owner after that.
class ZeroWaiters {
 public:
  class Awaiter;

  // Runs `drop()` (which lowers the count and returns whether it reached zero) under the lock, and if it
  // did, wakes every waiter, after letting go of the lock.
  template <typename Drop>
  void drop(Drop&& drop) noexcept {
    internal::PendingWakes wakes;
    std::lock_guard guard(lock_);
    if (!drop()) return;
    while (!waiters_.empty()) wakes.wake(as_waiter(waiters_.pop_front()));
  }

 private:
  SpinLock lock_;
  WakeNodeList waiters_;
};

// Waits until `is_zero(owner)`, checked under the waiters' lock (see ZeroWaiters).
class [[nodiscard]] ZeroWaiters::Awaiter : public WaitAwaiter<ZeroWaiters::Awaiter> {
 public:
  using IsZero = bool (*)(const void* owner) noexcept;
  Awaiter(ZeroWaiters& waiters, IsZero is_zero, const void* owner, const char* operation) noexcept
      : waiters_(&waiters), is_zero_(is_zero), owner_(owner), operation_(operation) {}
  ~Awaiter() { abandon(); }

  bool await_ready() noexcept {
    std::lock_guard guard(waiters_->lock_);
    return is_zero_(owner_);
  }
  Result<void> await_resume() noexcept {
    if (finish() == WaitState::kCancelled) return Error(ECANCELED, operation_);
    return ok();
  }

 private:
  friend class WaitAwaiter<ZeroWaiters::Awaiter>;
  SpinLock& wait_lock() noexcept { return waiters_->lock_; }
  WakeNodeList& wait_list() noexcept { return waiters_->waiters_; }
  bool try_complete_locked(PendingWakes&) noexcept { return is_zero_(owner_); }
  void left_queue_locked(PendingWakes&) noexcept {}
  void undo_grant_locked(PendingWakes&) noexcept {}  // a wake-up to zero is owed to nobody else

  ZeroWaiters* waiters_;
  IsZero is_zero_;
  const void* owner_;
  const char* operation_;
};

}  // namespace internal

class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // Adds `count` outstanding jobs. Any thread.
  void add(std::int64_t count = 1) noexcept { count_.fetch_add(count, std::memory_order_relaxed); }
  // One job finished. Any thread. More done() than add() is a bug (asserted in debug builds).
  void done() noexcept {
    waiters_.drop([this]() noexcept {
      const std::int64_t before = count_.fetch_sub(1, std::memory_order_acq_rel);
      assert(before > 0 && "WaitGroup::done() without a matching add()");
      return before == 1;
    });
  }
  // co_await group.wait() -> Result<void>: once the count is zero (at once if it is).
  internal::ZeroWaiters::Awaiter wait() noexcept {
    return internal::ZeroWaiters::Awaiter(waiters_, &is_zero, this, "WaitGroup::wait");
  }
  std::int64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }

 private:
  static bool is_zero(const void* self) noexcept {
    return static_cast<const WaitGroup*>(self)->count_.load(std::memory_order_acquire) == 0;
  }
  std::atomic<std::int64_t> count_{0};
  internal::ZeroWaiters waiters_;
};

class Gate;

// Admission through a Gate; leaves it when destroyed (or leave()). Move-only.
class [[nodiscard]] GatePass {
 public:
  GatePass(GatePass&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
  GatePass& operator=(GatePass&& other) noexcept {
    if (this != &other) {
      leave();
      gate_ = std::exchange(other.gate_, nullptr);
    }
    return *this;
  }
  GatePass(const GatePass&) = delete;
  GatePass& operator=(const GatePass&) = delete;
  ~GatePass() { leave(); }
  void leave() noexcept;

 private:
  friend class Gate;
  explicit GatePass(Gate* gate) noexcept : gate_(gate) {}
  Gate* gate_;
};

class Gate {
 public:
  Gate() = default;
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  // A pass, or ESHUTDOWN once close() has been called. Any thread.
  Result<GatePass> enter() noexcept {
    std::uint64_t state = state_.load(std::memory_order_relaxed);
    do {
      if ((state & kClosed) != 0) return Error(ESHUTDOWN, "Gate::enter");
    } while (!state_.compare_exchange_weak(state, state + kOne, std::memory_order_acquire, std::memory_order_relaxed));
    return GatePass(this);
  }

  // Closes the gate (enter() fails from now on) and waits until every pass has left -> Result<void>.
  // Closing twice is fine; both wait.
  internal::ZeroWaiters::Awaiter close() noexcept {
    state_.fetch_or(kClosed, std::memory_order_acq_rel);
    return internal::ZeroWaiters::Awaiter(waiters_, &is_drained, this, "Gate::close");
  }

  bool is_closed() const noexcept { return (state_.load(std::memory_order_relaxed) & kClosed) != 0; }
  std::uint64_t inside() const noexcept { return state_.load(std::memory_order_relaxed) / kOne; }

 private:
  friend class GatePass;
  static constexpr std::uint64_t kClosed = 1;
  static constexpr std::uint64_t kOne = 2;

  void leave() noexcept {
    waiters_.drop([this]() noexcept {
      const std::uint64_t before = state_.fetch_sub(kOne, std::memory_order_acq_rel);
      return before - kOne == kClosed;  // the last one out of a closed gate
    });
  }
  static bool is_drained(const void* self) noexcept {
    return static_cast<const Gate*>(self)->state_.load(std::memory_order_acquire) < kOne;
  }

  std::atomic<std::uint64_t> state_{0};  // passes inside * kOne | kClosed
  internal::ZeroWaiters waiters_;
};

inline void GatePass::leave() noexcept {
  if (gate_ != nullptr) std::exchange(gate_, nullptr)->leave();
}

}  // namespace surge

#endif  // SURGE_SYNC_WAIT_GROUP_H_
