// worker_access.h (internal): what awaitables and the runtime reach inside a Worker beyond its public
// surface: scheduling and posting, the backend, the timer wheel, the blocking pool and its bookkeeping.
//
// Worker's public members are what a service author calls (create, spawn, block_on, shutdown, ...). Code
// in this workspace that builds new awaitables or runtime pieces (IoAwaitable, sleep_for, spawn_blocking,
// sockets, channels) goes through this one type instead, so the internal surface is named, greppable and
// free to change. Every function forwards inline: no cost on the hot path.
//
//   void await_suspend(std::coroutine_handle<> self) {
//     Worker& worker = *Worker::current();
//     internal::WorkerAccess::backend(worker).submit(operation_);
//   }
//
// Threads: as each function says; "owner" is the worker's own thread (the one running its loop).
//
// worker.h includes this file at its end, and this file needs Worker complete, so it includes worker.h
// outside its include guard: whichever of the two a translation unit includes first, Worker is defined
// before WorkerAccess is.
#include "runtime/worker.h"

#ifndef SURGE_RUNTIME_INTERNAL_WORKER_ACCESS_H_
#define SURGE_RUNTIME_INTERNAL_WORKER_ACCESS_H_

#include <coroutine>
#include <cstddef>
#include <cstdint>

namespace surge::internal {

class WorkerAccess {
 public:
  using Clock = Worker::Clock;

  // The worker's backend. Owner only (Backend::wake() and counters() from any thread).
  static Backend& backend(Worker& worker) noexcept { return *worker.backend_; }

  // Queues `coroutine` to be resumed by the worker's loop. Owner only. Dropped while the worker drains
  // (shutdown), whose frames are about to be destroyed.
  static void schedule(Worker& worker, std::coroutine_handle<> coroutine) { worker.schedule(coroutine); }
  // Queues `coroutine` at low priority: after the turn's ready tasks, one per turn while other tasks are
  // ready (never starved), all of them when nothing else is. Owner only.
  static void schedule_low(Worker& worker, std::coroutine_handle<> coroutine) { worker.schedule_low(coroutine); }
  // Hands `work` to the worker: its `run` is called on the worker's thread at the start of a turn (or
  // during shutdown, which drains the inbox). Any thread. Wakes the worker if, and only if, it sleeps;
  // concurrent posts share one wake-up. `work` must stay alive until `run` has been called.
  static void post(Worker& worker, RemoteWork& work) noexcept { worker.post(work); }
  // Wakes a task suspended on `worker` from another thread (wake_list.h): lists `node`, whose coroutine the
  // worker schedules at its next turn. Returns true when the caller must then call post_wake_list(worker),
  // after releasing any lock it holds (the post may cost a wake-up syscall); until that call the worker is
  // pinned: it is not destroyed even if the waiter's frame is. Any thread but the worker's own.
  static bool list_wake(Worker& worker, WakeNode& node) noexcept { return worker.list_wake(node); }
  static void post_wake_list(Worker& worker) noexcept { worker.post_wake_list(); }
  // Owner thread, for a node whose frame is being destroyed after a waker on another thread chose it:
  // waits for that waker to have listed it, then takes it off the list if the drain has not run yet.
  static bool unlist_wake(Worker& worker, WakeNode& node) noexcept { return worker.wake_list_.remove_when_pushed(node); }
  // Makes the worker's wait in its backend return. Any thread.
  static void wake(Worker& worker) noexcept { worker.backend_->wake(); }

  // Whether the calling thread is the worker's own, the only one that may touch its backend.
  static bool is_own_thread(const Worker& worker) noexcept { return worker.is_own_thread(); }
  // The worker's number, unique in the process and never reused (unlike its address).
  static std::uint64_t incarnation(const Worker& worker) noexcept { return worker.incarnation_; }
  // Runs `action(*worker, argument)` on `worker`'s thread, or returns false if that worker (of that
  // incarnation; 0: any) no longer exists. Any thread; see Worker::run_at_home.
  using HomeAction = Worker::HomeAction;
  static bool run_at_home(Worker* worker, std::uint64_t incarnation, HomeAction action,
                          std::uint64_t argument) noexcept {
    return Worker::run_at_home(worker, incarnation, action, argument);
  }

  // The worker's timers, in millisecond ticks since it was created. Owner only; they fire from its loop.
  // Awaitables use sleep_for()/sleep_until() (time.h) rather than this directly.
  static TimerWheel& timers(Worker& worker) noexcept { return worker.timers_; }
  // The first tick at or after `deadline` (timers are never early), and the tick now. Any thread.
  static std::uint64_t tick_at_or_after(const Worker& worker, Clock::time_point deadline) noexcept {
    return worker.tick_at_or_after(deadline);
  }
  static std::uint64_t current_tick(const Worker& worker) noexcept { return worker.current_tick(); }

  // The pool spawn_blocking() uses: the Runtime's, or BlockingPool::shared() for a worker on its own.
  static BlockingPool& blocking_pool(Worker& worker) noexcept { return worker.blocking_pool(); }
  // Set by the Runtime before the worker runs.
  // Also the pool the backend runs the file operations it cannot run itself on.
  static void set_blocking_pool(Worker& worker, BlockingPool* pool) noexcept {
    worker.blocking_pool_ = pool;
    if (pool != nullptr) worker.backend_->use_blocking_pool(*pool);
  }
  // Makes `worker` the `index`-th of `runtime` (Worker::index(), Worker::runtime()). Set by the Runtime
  // on the worker's thread before the worker is published to other threads.
  static void set_runtime(Worker& worker, Runtime* runtime, std::size_t index) noexcept {
    worker.runtime_ = runtime;
    worker.index_ = index;
  }

  // Clean-ups run on the worker's thread when it is destroyed (see WorkerExitHook). Owner only.
  static void add_exit_hook(Worker& worker, WorkerExitHook& hook) noexcept { worker.exit_hooks_.push_front(hook); }
  static void remove_exit_hook(Worker& worker, WorkerExitHook& hook) noexcept { worker.exit_hooks_.remove(hook); }

  // An object that belongs to a worker (a socket, a SignalSet, a lent buffer) is destroyed after that
  // worker: its fd is closed all the same, but this is a bug in the program (the backend may have held
  // state for it). Prints one line to stderr naming `kind` the first time each kind is reported (`kind`
  // must be a string literal), and counts every report (surge::outlived_worker_reports()). Any thread.
  static void report_outlived(const char* kind) noexcept;
  // Marks one in-flight operation of the worker as waiting for a rare event (the Runtime's signalfd read):
  // `delta` +1 before it is awaited, -1 after. The worker's short spin for posted work before sleeping
  // (WorkerOptions::spin_before_sleep) is skipped while operations are in flight, except these. Owner only.
  static void background_operation(Worker& worker, int delta) noexcept {
    worker.background_operations_ = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(worker.background_operations_) + delta);
  }
  // Bookkeeping for calls on the blocking pool on behalf of the worker's tasks: shutdown() waits until
  // every one started has finished. Owner only.
  static void blocking_call_started(Worker& worker) noexcept { ++worker.blocking_calls_; }
  static void blocking_call_finished(Worker& worker) noexcept { --worker.blocking_calls_; }
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_INTERNAL_WORKER_ACCESS_H_
