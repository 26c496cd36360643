// worker.h: Worker, one thread's event loop: a backend, a ready queue, and the tasks it runs.
//
// A worker owns one backend instance (one io_uring ring or one epoll set) and runs coroutines on the
// thread that calls block_on(). The loop resumes ready coroutines, submits their operations in a batch,
// waits for completions (sleeping in the ring or in epoll_wait, never spinning), and resumes the
// coroutines those completions belong to.
//
//   auto worker = surge::Worker::create();                 // backend from SURGE_BACKEND or probing
//   if (!worker) { std::cerr << worker.error().message(); return 1; }
//   int answer = (*worker)->block_on(compute_answer());    // runs until the root task returns
//
// Inside a task, Worker::current() is the worker running it; spawn() starts another task on it.
// Threading: a worker is used from one thread; only wake() may be called from others.
// Shutdown (also on destruction): every in-flight operation is cancelled and its completion awaited
// before any coroutine frame is destroyed, so the kernel never writes into freed memory.
#ifndef SURGE_RUNTIME_WORKER_H_
#define SURGE_RUNTIME_WORKER_H_

#include <cassert>
#include <chrono>
#include <coroutine>
#include <memory>
#include <optional>
#include <type_traits>

#include "runtime/backend/backend.h"
#include "runtime/backend/backend_factory.h"
#include "runtime/intrusive_list.h"
#include "runtime/join_handle.h"
#include "runtime/ready_queue.h"
#include "runtime/result.h"
#include "runtime/root_task.h"
#include "runtime/task.h"
#include "timer/timer_wheel.h"

namespace surge {

struct WorkerOptions {
  BackendChoice backend = BackendChoice::kAuto;
  BackendOptions backend_options;
};

class Worker {
 public:
  using Clock = std::chrono::steady_clock;

  // Creates the backend as `options.backend` says (see backend_factory.h) and a worker around it.
  static Result<std::unique_ptr<Worker>> create(const WorkerOptions& options = {});
  // A worker around a backend the caller made (for example a fault-injecting wrapper in tests).
  static std::unique_ptr<Worker> with_backend(std::unique_ptr<Backend> backend);

  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The worker whose loop is running on this thread, or nullptr outside of one.
  static Worker* current() noexcept;

  Backend& backend() noexcept { return *backend_; }
  BackendKind backend_kind() const noexcept { return backend_->kind(); }

  // Runs `task` (and whatever it spawns) on this thread until it returns, and returns its value.
  // Spawned tasks still unfinished then stay suspended: they run again during the next block_on, or
  // are destroyed by shutdown(). Must not be called from inside a task.
  template <typename T>
  T block_on(Task<T> task) {
    JoinHandle<T> handle = spawn(std::move(task));
    run_until_finished(handle, std::nullopt);
    return handle.take_result();
  }

  // Like block_on, but gives up after `limit`: then every task on this worker is cancelled and destroyed
  // (see shutdown()) and nullopt is returned. For tests and tools that must never hang.
  template <typename T>
    requires(!std::is_void_v<T>)
  std::optional<T> block_on_for(Task<T> task, std::chrono::nanoseconds limit) {
    JoinHandle<T> handle = spawn(std::move(task));
    if (!run_until_finished(handle, Clock::now() + limit)) {
      shutdown();
      return std::nullopt;
    }
    return handle.take_result();
  }

  // Starts `task` on this worker; it first runs at the next turn of the loop. The returned handle may be
  // awaited for the result or dropped to detach the task.
  template <typename T>
  JoinHandle<T> spawn(Task<T> task) {
    auto* state = new internal::JoinState<T>();
    state->add_ref();  // one reference for the root, one for the handle
    internal::RootTask root = run_to_join_state(std::move(task), state);
    adopt_root(root.handle.promise(), state);
    schedule(root.handle);
    return JoinHandle<T>(state);
  }

  // Queues `coroutine` to be resumed by this worker's loop. Worker thread only.
  void schedule(std::coroutine_handle<> coroutine) {
    if (!draining_) ready_.push(coroutine);
  }

  // Makes the loop's wait return. Safe from any thread.
  void wake() noexcept { backend_->wake(); }

  // Cancels every in-flight operation, waits for all their completions, then destroys every task that
  // has not finished (their JoinHandles report is_abandoned()). The worker stays usable. Idempotent.
  void shutdown() noexcept;

  // Spawned tasks that have not finished yet.
  std::size_t live_tasks() const noexcept { return roots_.size(); }

  // This worker's timers (millisecond ticks since the worker was created). Worker thread only; timers
  // fire on this worker, from its loop. Use sleep_for()/sleep_until() (time.h) rather than this directly.
  TimerWheel& timers() noexcept { return timers_; }
  // The first tick at or after `deadline` (timers are never early), and the tick now.
  std::uint64_t tick_at_or_after(Clock::time_point deadline) const noexcept;
  std::uint64_t current_tick() const noexcept;

 private:
  explicit Worker(std::unique_ptr<Backend> backend);
  friend void internal::release_finished_root(internal::RootPromise& promise) noexcept;

  template <typename T>
  static internal::RootTask run_to_join_state(Task<T> task, internal::JoinState<T>* state) {
    try {
      if constexpr (std::is_void_v<T>) {
        co_await std::move(task);
        state->finish();
      } else {
        state->finish(co_await std::move(task));
      }
    } catch (...) {
      state->fail(std::current_exception());
    }
    // The root's reference to `state` is released by the worker when it destroys this frame.
  }

  template <typename T>
  bool run_until_finished(const JoinHandle<T>& handle, std::optional<Clock::time_point> deadline) {
    return run_until(
        [](const void* context) { return static_cast<const JoinHandle<T>*>(context)->is_finished(); }, &handle,
        deadline);
  }

  // Runs the loop until `done(context)` or the deadline; returns whether `done` became true.
  bool run_until(bool (*done)(const void*), const void* context, std::optional<Clock::time_point> deadline);
  void run_ready_batch();
  void adopt_root(internal::RootPromise& promise, internal::JoinStateBase* state) noexcept;

  // How long the backend may sleep: until the earliest of the next timer and `deadline` (nullopt: no limit).
  Backend::Timeout wait_timeout(std::optional<Clock::time_point> deadline) const;

  std::unique_ptr<Backend> backend_;
  internal::ReadyQueue ready_;
  const Clock::time_point origin_ = Clock::now();
  TimerWheel timers_{0};
  // The unfinished spawned tasks; the worker owns their frames.
  IntrusiveList<internal::RootPromise, &internal::RootPromise::previous, &internal::RootPromise::next> roots_;
  bool running_ = false;
  bool draining_ = false;
};

// Suspends the calling task and lets every other ready task run first.
struct YieldAwaitable {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> self) { Worker::current()->schedule(self); }
  void await_resume() const noexcept {}
};
inline YieldAwaitable yield() noexcept { return {}; }

// --- Definitions that need Worker to be complete. ---

inline void internal::JoinStateBase::mark_finished() noexcept {
  finished_ = true;
  task_slot_ = nullptr;
  if (waiter_slot_ != nullptr) waiter_slot_->clear();
  if (waiter_ != nullptr) waiter_worker_->schedule(std::exchange(waiter_, nullptr));
}

template <typename T>
template <typename Promise>
void JoinHandle<T>::Awaiter::await_suspend(std::coroutine_handle<Promise> awaiter) noexcept {
  state->set_waiter(awaiter, Worker::current(), cancel_slot_of(awaiter));
}

}  // namespace surge

#endif  // SURGE_RUNTIME_WORKER_H_
