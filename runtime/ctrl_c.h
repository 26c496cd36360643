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
//   - Waiting uses the protocol every cross-worker hand-over here shares (runtime/internal/waiter.h).
// What the Runtime does with signals (which threads block them, which signals are read) is described at
// the top of runtime/runtime.h.
#ifndef SURGE_RUNTIME_CTRL_C_H_
#define SURGE_RUNTIME_CTRL_C_H_

#include <cerrno>
#include <coroutine>
#include <optional>

#include "runtime/internal/signal_hub.h"
#include "runtime/internal/waiter.h"
#include "runtime/result.h"
#include "runtime/runtime.h"
#include "runtime/worker.h"

namespace surge {

class [[nodiscard]] CtrlCAwaitable : public internal::WaitAwaiter<CtrlCAwaitable> {
 public:
  CtrlCAwaitable() noexcept = default;
  // Destroyed while waiting (its task destroyed by shutdown): leaves the hub's queue.
  ~CtrlCAwaitable() { abandon(); }

  bool await_ready() const noexcept { return false; }

  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiter) noexcept {
    Worker* const worker = Worker::current();
    Runtime* const runtime = worker != nullptr ? worker->runtime() : nullptr;
    hub_ = runtime != nullptr ? runtime->signal_hub_.get() : nullptr;
    if (hub_ == nullptr) return false;  // ENOTSUP
    return WaitAwaiter::await_suspend(awaiter);
  }

  // The signal's number, or ECANCELED / ENOTSUP.
  Result<int> await_resume() noexcept {
    if (hub_ == nullptr) return Error(ENOTSUP, "ctrl_c: not on a Runtime that handles signals");
    if (finish() == internal::WaitState::kCancelled) return Error(ECANCELED, "ctrl_c");
    return static_cast<int>(waiter_.payload);
  }

 private:
  friend class internal::WaitAwaiter<CtrlCAwaitable>;
  internal::SpinLock& wait_lock() noexcept { return hub_->lock(); }
  internal::WakeNodeList& wait_list() noexcept { return hub_->waiting_list(); }
  bool try_complete_locked(internal::PendingWakes&) noexcept {
    const int kept = hub_->arm_and_take_kept_locked();
    waiter_.payload = static_cast<std::uintptr_t>(kept);
    return kept != 0;
  }
  void left_queue_locked(internal::PendingWakes&) noexcept {}
  // A signal is a broadcast: one handed to a task that died before it resumed is not passed on.
  void undo_grant_locked(internal::PendingWakes&) noexcept {}

  internal::SignalHub* hub_ = nullptr;
};

// Waits for one of the Runtime's signals; see the top of this file.
inline CtrlCAwaitable ctrl_c() noexcept { return {}; }

}  // namespace surge

#endif  // SURGE_RUNTIME_CTRL_C_H_
