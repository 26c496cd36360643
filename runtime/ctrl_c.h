// ctrl_c.h: surge::ctrl_c(), await the signals a Runtime takes over (SIGINT, SIGTERM, SIGHUP by
// default; RuntimeOptions::signals), from any task on any of its workers: Tokio's ctrl_c().
//
//   surge::Task<void> serve_until_stopped(surge::TaskGroup& connections) {
//     surge::Result<int> signal = co_await surge::ctrl_c();   // SIGINT, SIGTERM or SIGHUP
//     if (!signal) co_return;                                  // cancelled, or no signal handling
//     (void)co_await surge::timeout(std::chrono::seconds(5), connections.join());  // drain, then cut
//   }
//
// Semantics:
//   - Broadcast: one signal wakes every task awaiting ctrl_c() at that moment, on every worker, each
//     with the signal's number. A task that starts awaiting afterwards waits for the next signal.
//   - Before the first ctrl_c() ever awaited on the Runtime, a signal takes its default action (the
//     process terminates, as it would without the Runtime): a service that does not use ctrl_c() still
//     stops on Ctrl-C. Await ctrl_c() early (before the service starts) to take over from the start.
//   - From then on nothing is lost while nobody waits: a signal the Runtime reads while no task awaits
//     ctrl_c() is kept, and the next ctrl_c() returns it at once (to that one awaiter only). At most one
//     of each signal number is kept (like the kernel's own pending set: two SIGINTs become one); several
//     different ones are returned oldest first, one per ctrl_c().
//   - Cancellable: a cancelled wait returns ECANCELED (unless a signal had already claimed it: then the
//     signal is returned, like any operation that completed before its cancellation took effect).
//   - Off a Runtime's worker, or on a Runtime created with `signals = {}`: ENOTSUP at once.
//   - Awaited right away, on the worker that made it; not movable once awaited (the wait lives in it).
// What the Runtime does with signals (which threads block them, which signals are read) is described at
// the top of runtime/runtime.h.
#ifndef SURGE_RUNTIME_CTRL_C_H_
#define SURGE_RUNTIME_CTRL_C_H_

#include <cerrno>
#include <coroutine>
#include <optional>

#include "runtime/internal/cancel_slot.h"
#include "runtime/internal/signal_hub.h"
#include "runtime/result.h"
#include "runtime/runtime.h"
#include "runtime/worker.h"

namespace surge {

class [[nodiscard]] CtrlCAwaitable {
 public:
  CtrlCAwaitable() noexcept = default;
  CtrlCAwaitable(const CtrlCAwaitable&) = delete;
  CtrlCAwaitable& operator=(const CtrlCAwaitable&) = delete;
  // Destroyed while waiting (its task destroyed by shutdown): leaves the hub's lists.
  ~CtrlCAwaitable() {
    if (hub_ != nullptr) hub_->forget(waiter_);  // the state is the hub's to read (under its lock)
  }

  bool await_ready() const noexcept { return false; }

  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiter) noexcept {
    Worker* const worker = Worker::current();
    Runtime* const runtime = worker != nullptr ? worker->runtime() : nullptr;
    internal::SignalHub* const hub = runtime != nullptr ? runtime->signal_hub_.get() : nullptr;
    if (hub == nullptr) {
      outcome_ = Error(ENOTSUP, "ctrl_c: not on a Runtime that handles signals");
      return false;
    }
    slot_ = internal::cancel_slot_of(awaiter);
    if (slot_ != nullptr && slot_->requested()) {
      outcome_ = Error(ECANCELED, "ctrl_c");
      return false;
    }
    waiter_.coroutine = awaiter;
    waiter_.worker = worker;
    if (const int kept = hub->wait(waiter_); kept != 0) {
      outcome_ = kept;
      return false;
    }
    hub_ = hub;
    if (slot_ != nullptr) slot_->install(&on_cancel, this);
    return true;
  }

  // The signal's number, or ECANCELED / ENOTSUP.
  Result<int> await_resume() noexcept {
    if (slot_ != nullptr) slot_->clear();
    if (outcome_) return *outcome_;
    return waiter_.signal;
  }

 private:
  static void on_cancel(void* self) noexcept {
    auto* awaitable = static_cast<CtrlCAwaitable*>(self);
    if (awaitable->hub_->cancel(awaitable->waiter_)) {
      awaitable->outcome_ = Error(ECANCELED, "ctrl_c");
      internal::WorkerAccess::schedule(*awaitable->waiter_.worker, awaitable->waiter_.coroutine);
    }
  }

  internal::SignalWaiter waiter_;
  internal::SignalHub* hub_ = nullptr;  // set once registered
  internal::CancelSlot* slot_ = nullptr;
  std::optional<Result<int>> outcome_;  // decided without a signal from the hub (or a kept one)
};

// Waits for one of the Runtime's signals; see the top of this file.
inline CtrlCAwaitable ctrl_c() noexcept { return {}; }

}  // namespace surge

#endif  // SURGE_RUNTIME_CTRL_C_H_
