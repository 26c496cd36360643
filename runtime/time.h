// time.h: sleeping and periodic ticks on the current worker's timer wheel.
//
//   co_await surge::sleep_for(std::chrono::milliseconds(50));     // Result<void>; ECANCELED if cancelled
//   surge::Interval ticker(std::chrono::seconds(1));
//   for (;;) { co_await ticker.tick(); ... }                      // fixed rate: no drift
//
// Resolution is one millisecond and timers are never early: a sleep ends at the first loop turn after
// its deadline (later if the worker is busy: the loop turns at least once per `WorkerOptions`' batch of
// ready tasks). Timers fire on the worker whose task set them. Sleeps are cancellable (see CancelSlot):
// a cancelled sleep resumes at once with ECANCELED. Awaitables must be awaited right away.
// A duration too long for the clock to count (nanoseconds::max(), hours::max()) saturates to
// time_point::max(): such a sleep (or timeout, when.h) never ends by itself, it is not wrapped into the
// past.
#ifndef SURGE_RUNTIME_TIME_H_
#define SURGE_RUNTIME_TIME_H_

#include <chrono>
#include <coroutine>
#include <type_traits>

#include "runtime/internal/cancel_slot.h"
#include "runtime/result.h"
#include "runtime/worker.h"
#include "timer/timer_wheel.h"

namespace surge {

// `base + duration`, rounded up to the clock's resolution (a deadline is never earlier than asked), and
// clamped to [time_point::min(), time_point::max()] where it would overflow: a deadline further away than
// the clock can count is time_point::max(), "never". Any duration type, floating-point ones included.
template <typename Rep, typename Period>
Worker::Clock::time_point saturating_add(Worker::Clock::time_point base,
                                         std::chrono::duration<Rep, Period> duration) noexcept {
  using Point = Worker::Clock::time_point;
  using Ticks = Worker::Clock::duration;
  if constexpr (std::is_same_v<std::chrono::duration<Rep, Period>, Ticks>) {
    typename Ticks::rep sum;
    if (!__builtin_add_overflow(base.time_since_epoch().count(), duration.count(), &sum)) {
      return Point(Ticks(sum));
    }
    return duration.count() > 0 ? Point::max() : Point::min();
  } else {
    // Decided in seconds as long double, whose range no duration type exceeds; within a second of the
    // clock's end counts as its end, so that the precise sum below cannot overflow on a rounding error.
    using Seconds = std::chrono::duration<long double>;
    const long double limit = Seconds(Ticks::max()).count() - 1;
    const long double step = Seconds(duration).count();
    const long double from = Seconds(base.time_since_epoch()).count();
    if (step >= limit || step + from >= limit) return Point::max();
    if (step <= -limit || step + from <= -limit) return Point::min();
    return base + std::chrono::ceil<Ticks>(duration);
  }
}

class SleepAwaitable {
 public:
  explicit SleepAwaitable(Worker::Clock::time_point deadline) noexcept : deadline_(deadline) {}
  SleepAwaitable(const SleepAwaitable&) = delete;
  SleepAwaitable& operator=(const SleepAwaitable&) = delete;
  // A sleep destroyed while pending (its task destroyed by shutdown) takes its timer with it.
  ~SleepAwaitable() {
    if (worker_ != nullptr) internal::WorkerAccess::timers(*worker_).cancel(timer_);
  }

  bool await_ready() const noexcept { return deadline_ <= Worker::Clock::now(); }

  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiter) noexcept {
    slot_ = internal::cancel_slot_of(awaiter);
    if (slot_ != nullptr && slot_->requested()) {
      cancelled_ = true;
      return false;
    }
    awaiter_ = awaiter;
    worker_ = Worker::current();
    timer_ = internal::WorkerAccess::timers(*worker_).insert(internal::WorkerAccess::tick_at_or_after(*worker_, deadline_), &on_expiry, this);
    if (slot_ != nullptr) slot_->install(&on_cancel, this);
    return true;
  }

  Result<void> await_resume() const noexcept {
    if (cancelled_) return Error(ECANCELED, "sleep");
    return ok();
  }

 private:
  static void on_expiry(void* self) noexcept {
    auto* sleep = static_cast<SleepAwaitable*>(self);
    if (sleep->slot_ != nullptr) sleep->slot_->clear();
    internal::WorkerAccess::schedule(*sleep->worker_, sleep->awaiter_);
  }
  static void on_cancel(void* self) noexcept {
    auto* sleep = static_cast<SleepAwaitable*>(self);
    internal::WorkerAccess::timers(*sleep->worker_).cancel(sleep->timer_);
    sleep->cancelled_ = true;
    internal::WorkerAccess::schedule(*sleep->worker_, sleep->awaiter_);
  }

  Worker::Clock::time_point deadline_;
  Worker* worker_ = nullptr;
  TimerId timer_;
  internal::CancelSlot* slot_ = nullptr;
  std::coroutine_handle<> awaiter_ = nullptr;
  bool cancelled_ = false;
};

// Suspends the calling task until `deadline`.
inline SleepAwaitable sleep_until(Worker::Clock::time_point deadline) noexcept { return SleepAwaitable(deadline); }

// Suspends the calling task for at least `duration`.
template <typename Rep, typename Period>
SleepAwaitable sleep_for(std::chrono::duration<Rep, Period> duration) noexcept {
  return SleepAwaitable(saturating_add(Worker::Clock::now(), duration));
}

// Fixed-rate ticks: the k-th tick is due at start + k * period, whatever the previous tick cost, so the
// schedule does not drift. A consumer that falls behind gets the missed ticks back to back.
class Interval {
 public:
  explicit Interval(Worker::Clock::duration period, Worker::Clock::time_point start = Worker::Clock::now())
      : period_(period), next_(saturating_add(start, period)) {}

  // Waits for the next tick; Result<void> as for sleeps.
  SleepAwaitable tick() noexcept {
    const auto due = next_;
    next_ = saturating_add(next_, period_);
    return SleepAwaitable(due);
  }

  Worker::Clock::duration period() const noexcept { return period_; }

 private:
  Worker::Clock::duration period_;
  Worker::Clock::time_point next_;
};

}  // namespace surge

#endif  // SURGE_RUNTIME_TIME_H_
