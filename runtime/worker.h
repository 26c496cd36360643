// worker.h: Worker, one thread's event loop: a backend, a ready queue, timers, and the tasks it runs.
//
// A worker owns one backend instance (one io_uring ring or one epoll set) and runs coroutines on one
// thread. Each turn of its loop runs the work other threads posted, fires due timers, resumes the ready
// coroutines, and collects I/O completions; with nothing ready it sleeps in the backend (in the ring or
// in epoll_wait, never on a condition variable) until I/O, a timer, or a post from another thread.
//
//   auto worker = surge::Worker::create();                 // backend from SURGE_BACKEND or probing
//   if (!worker) { std::cerr << worker.error().message(); return 1; }
//   int answer = (*worker)->block_on(compute_answer());    // runs until the root task returns
//
// Inside a task, Worker::current() is the worker running it; spawn() starts another task on it.
// Threading: the loop runs on one thread at a time (block_on's caller, or the Runtime's thread for
// this worker); spawn(), request_stop() and counters() may be called from any thread.
//
// Scheduling and fairness: cooperative. A turn resumes the coroutines that were ready when it began,
// each until its next co_await, then polls the backend and fires timers. A task that awaits nothing
// (a busy loop) holds its worker until it does: other tasks, timers and I/O of that worker wait, other
// workers are unaffected. What is guaranteed: a due timer is acted on within one turn, i.e. after at
// most the tasks that were ready before it have run once each; a finished operation within eight turns
// (the backend is looked at every turn that has something to submit, and at least every eighth turn:
// with io_uring's DEFER_TASKRUN each look is a syscall). A task that calls co_await yield() in a loop
// delays timers and I/O by that much, never indefinitely.
//
// Shutdown (also on destruction): every in-flight operation is cancelled and its completion awaited,
// and every blocking call this worker started has returned, before any coroutine frame is destroyed,
// so neither the kernel nor a blocking thread ever writes into freed memory.
#ifndef SURGE_RUNTIME_WORKER_H_
#define SURGE_RUNTIME_WORKER_H_

#include <atomic>
#include <cassert>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>

#include "runtime/backend/backend.h"
#include "runtime/backend/backend_factory.h"
#include "runtime/internal/blocking_pool.h"
#include "runtime/internal/intrusive_list.h"
#include "runtime/join_handle.h"
#include "runtime/internal/ready_queue.h"
#include "runtime/internal/remote_inbox.h"
#include "runtime/result.h"
#include "runtime/internal/wake_handshake.h"
#include "runtime/internal/wake_list.h"
#include "runtime/task.h"
#include "timer/timer_wheel.h"

namespace surge {

class Runtime;

namespace internal {
class WorkerAccess;

// A clean-up a worker runs on its own thread when it is destroyed, after its unfinished tasks have been
// destroyed (a Runtime's worker: at the end of the Runtime's shutdown). Intrusive: lives in whatever
// registered it (a Sharded<T>'s per-worker slot), which removes it again if it goes first. Registered
// and removed on the worker's thread only (WorkerAccess::add_exit_hook / remove_exit_hook).
struct WorkerExitHook {
  void (*run)(WorkerExitHook& hook, Worker& worker) noexcept = nullptr;
  WorkerExitHook* previous = nullptr;
  WorkerExitHook* next = nullptr;
};
}  // namespace internal

struct WorkerOptions {
  BackendChoice backend = BackendChoice::kAuto;
  BackendOptions backend_options;
  // Before going to sleep with no I/O in flight, watch the inbox for this long: work posted meanwhile
  // (by another worker) is picked up without a sleep and a wake-up syscall. Bounded; zero disables it.
  // Not done with I/O in flight, where spinning would only delay completions. A hand-off to a spinning
  // worker costs a fraction of one to a sleeping worker (README, "Runtime overhead": BM_CrossWorkerRoundTrip).
  std::chrono::nanoseconds spin_before_sleep{std::chrono::microseconds(20)};
};

class Worker {
 public:
  using Clock = std::chrono::steady_clock;

  // Creates the backend as `options.backend` says (see backend_factory.h) and a worker around it.
  // The calling thread becomes the worker's thread (io_uring rings are set up for one issuer).
  static Result<std::unique_ptr<Worker>> create(const WorkerOptions& options = {});
  // A worker around a backend the caller made (for example a fault-injecting wrapper in tests).
  static std::unique_ptr<Worker> with_backend(std::unique_ptr<Backend> backend,
                                              std::chrono::nanoseconds spin_before_sleep = {});

  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The worker whose loop is running on this thread, or nullptr outside of one.
  static Worker* current() noexcept;

  // This worker's position in its Runtime (Runtime::worker(index()) is this worker); 0 for a worker
  // created on its own. Set before the worker runs anything; then any thread.
  std::size_t index() const noexcept { return index_; }
  // The Runtime this worker belongs to, or nullptr for a worker created on its own. Any thread.
  Runtime* runtime() const noexcept { return runtime_; }

  // Which backend this worker runs on, what it found at set-up, and its counters (a snapshot: SQEs,
  // CQEs, wait syscalls, lent-buffer exhaustion...). counters() may be called from any thread (a
  // monitoring thread); the others from any thread once the worker exists.
  BackendKind backend_kind() const noexcept { return backend_->kind(); }
  BackendFeatures features() const { return backend_->features(); }
  BackendCounters counters() const noexcept {
    BackendCounters counters = backend_->counters();
    counters.wakeups = wakeups_.load(std::memory_order_relaxed);
    return counters;
  }

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

  // Runs the loop on this thread until request_stop() (used by Runtime for its worker threads).
  void run_until_stopped();
  // Makes run_until_stopped() return after its current turn. Any thread; idempotent.
  void request_stop() noexcept;

  // Starts `task` on this worker; it first runs at a later turn of the loop. Any thread: from another
  // thread the task is handed over through the worker's inbox. The returned handle may be awaited for
  // the result, from any worker, or dropped to detach the task.
  template <typename T>
  JoinHandle<T> spawn(Task<T> task) {
    // One allocation, the Task's own: its header becomes the join state and the task its own root.
    internal::TaskState<T>& state = internal::TaskAccess::make_root(std::move(task), *this, &release_finished_root);
    if (std::this_thread::get_id() == owner_thread_) {
      adopt_root(state);
      schedule(std::coroutine_handle<>::from_address(state.frame_address()));
    } else {
      internal::RemoteWork& adoption = state.adoption();
      adoption.run = &adopt_posted_root;
      pending_adoptions_.fetch_add(1, std::memory_order_relaxed);  // counted by live_tasks() meanwhile
      post(adoption);
    }
    return JoinHandle<T>(state);
  }

  // Cancels every in-flight operation, waits for all their completions (and for blocking calls started
  // here), then destroys every task that has not finished (their JoinHandles report is_abandoned()).
  // The worker stays usable. Idempotent. Worker thread only, not from inside a task.
  void shutdown() noexcept;

  // Spawned tasks that have not finished yet, those spawned from other threads and not yet picked up by
  // the loop included. The worker's thread (or any thread while the worker does not run).
  std::size_t live_tasks() const noexcept {
    return roots_.size() + pending_adoptions_.load(std::memory_order_relaxed);
  }

 private:
  friend class internal::WorkerAccess;  // what awaitables and the runtime reach (internal/worker_access.h)

  // Queues `coroutine` to be resumed by this worker's loop. Worker thread only.
  void schedule(std::coroutine_handle<> coroutine) {
    if (!draining_) ready_.push(coroutine);
  }

  // Queues `coroutine` at low priority: it runs after the turn's ready tasks, one per turn while other
  // tasks are ready (so it is never starved), all of them when nothing else is. Worker thread only.
  void schedule_low(std::coroutine_handle<> coroutine) {
    if (!draining_) low_priority_.push(coroutine);
  }

  // Hands `work` to this worker: its `run` is called on the worker's thread, at the start of a turn.
  // Any thread. Wakes the worker if (and only if) it is asleep; concurrent posts share one wake-up.
  void post(internal::RemoteWork& work) noexcept;
  // post() in two halves: begin_post() pins the worker (its destructor waits until finish_post() has
  // returned), finish_post() pushes and wakes. For callers that must pin under a lock and post after it.
  void begin_post() noexcept { posts_in_progress_.fetch_add(1, std::memory_order_acq_rel); }
  void finish_post(internal::RemoteWork& work) noexcept;
  // Lists `node` on this worker's wake list (wake_list.h). Any thread. Returns true when the list's drain
  // must be posted: then this worker is pinned until the caller calls post_wake_list().
  bool list_wake(internal::WakeNode& node) noexcept {
    if (!wake_list_.push(node)) return false;
    begin_post();
    return true;
  }
  void post_wake_list() noexcept { finish_post(wake_list_work_); }

  // Whether the calling thread is this worker's own: the one that created it and runs its loop, the only
  // one that may touch its backend.
  bool is_own_thread() const noexcept { return std::this_thread::get_id() == owner_thread_; }
  // Runs `action(*worker, argument)` on `worker`'s thread: at once when called there, else at the start
  // of the worker's next turn, through its inbox (one allocation), or during its shutdown, which drains
  // the inbox. For clean-ups that must happen at home, like closing a socket whose owner was dropped on
  // another thread. Any thread, also after `worker` was destroyed (a stream returned by a Runtime's
  // block_on and dropped after its shutdown): then nothing runs and it returns false, so the caller
  // cleans up what is left without the worker (the socket's fd: close it; a lent buffer: gone with it).
  // The slow path: it takes a process-wide lock.
  // `incarnation`: the worker's incarnation() when the caller took its address, so that a new worker that
  // happens to get a destroyed one's address is not mistaken for it; 0 matches any (for a socket, whose
  // fd stays open until the action runs, so no backend can hold state for that number meanwhile).
  using HomeAction = void (*)(Worker& worker, std::uint64_t argument) noexcept;
  static bool run_at_home(Worker* worker, std::uint64_t incarnation, HomeAction action,
                          std::uint64_t argument) noexcept;

  // The first tick at or after `deadline` (timers are never early), and the tick now.
  std::uint64_t tick_at_or_after(Clock::time_point deadline) const noexcept;
  std::uint64_t current_tick() const noexcept;

  // The pool spawn_blocking() uses: the Runtime's, or BlockingPool::shared() for a worker on its own.
  internal::BlockingPool& blocking_pool() noexcept { return blocking_pool_ != nullptr ? *blocking_pool_ : internal::BlockingPool::shared(); }

  Worker(std::unique_ptr<Backend> backend, std::chrono::nanoseconds spin_before_sleep);
  // The bounded spin of WorkerOptions::spin_before_sleep; returns whether work was posted meanwhile.
  bool spin_for_posted_work() const noexcept;
  // A spawned task has returned (internal::TaskStateBase::FinishRoot).
  static bool release_finished_root(internal::TaskStateBase& state) noexcept;

  template <typename T>
  bool run_until_finished(const JoinHandle<T>& handle, std::optional<Clock::time_point> deadline) {
    return run_until(
        [](const void* context) { return static_cast<const JoinHandle<T>*>(context)->is_finished(); }, &handle,
        deadline);
  }

  // Runs the loop until `done(context)` or the deadline; returns whether `done` became true.
  bool run_until(bool (*done)(const void*), const void* context, std::optional<Clock::time_point> deadline);
  void run_ready_batch();
  void run_posted_work();
  // Sleeps in the backend for at most `timeout`, unless work was posted meanwhile.
  void sleep_in_backend(Backend::Timeout timeout);
  void adopt_root(internal::TaskStateBase& state) noexcept;
  static void adopt_posted_root(internal::RemoteWork& work, Worker& worker) noexcept;
  // How long the backend may sleep: until the earliest of the next timer and `deadline` (nullopt: no limit).
  Backend::Timeout wait_timeout(std::optional<Clock::time_point> deadline) const;

  // --- Fields, grouped by the thread that writes them. ---

  // Set at construction (index_ and runtime_ by the Runtime, before the worker runs), then only read
  // (from any thread).
  std::size_t index_ = 0;
  Runtime* runtime_ = nullptr;
  std::unique_ptr<Backend> backend_;  // the pointer; the Backend itself is the owner's, but for wake()
  const std::chrono::nanoseconds spin_before_sleep_;
  const std::thread::id owner_thread_ = std::this_thread::get_id();
  const Clock::time_point origin_ = Clock::now();
  std::uint64_t incarnation_ = 0;  // assigned in the constructor, under the live-worker registry's lock

  // Written by other threads (post(), request_stop()), on a cache line of their own so that posters do
  // not slow down the owner's fields below.
  alignas(64) internal::RemoteInbox inbox_;
  internal::WakeHandshake handshake_;      // the sleep/wake handshake with posters (wake_handshake.h)
  std::atomic<std::uint64_t> wakeups_{0};  // wake-ups sent (counters().wakeups); any poster adds, rarely
  std::atomic<int> posts_in_progress_{0};  // post() calls still touching this worker (see ~Worker)
  std::atomic<bool> stop_posted_{false};
  std::atomic<std::size_t> pending_adoptions_{0};  // tasks spawned from other threads, not adopted yet
  internal::WakeList wake_list_;  // tasks woken from other threads (sync primitives), drained each turn

  // The owner thread's alone.
  alignas(64) internal::ReadyQueue ready_;
  internal::ReadyQueue low_priority_;
  // The unfinished spawned tasks; the worker owns their frames.
  internal::IntrusiveList<internal::TaskStateBase, &internal::TaskStateBase::previous_, &internal::TaskStateBase::next_> roots_;
  TimerWheel timers_{0};
  // Turns run (with tasks ready) since the backend was last polled; see kMaxTurnsWithoutPoll.
  static constexpr int kMaxTurnsWithoutPoll = 8;
  int turns_without_poll_ = 0;
  std::size_t blocking_calls_ = 0;
  // In-flight operations that wait for rare events (see WorkerAccess::background_operation).
  std::size_t background_operations_ = 0;
  internal::BlockingPool* blocking_pool_ = nullptr;  // set by the Runtime before the worker runs
  internal::RemoteWork stop_work_;
  internal::RemoteWork wake_list_work_;  // posted to drain wake_list_
  // Run by the destructor (see internal::WorkerExitHook).
  internal::IntrusiveList<internal::WorkerExitHook, &internal::WorkerExitHook::previous, &internal::WorkerExitHook::next> exit_hooks_;
  bool stop_requested_ = false;
  bool running_ = false;
  bool draining_ = false;
};

// How many objects that belong to a worker (a TcpStream or TcpListener's socket, a SignalSet, a
// BorrowedBuffer) have been destroyed after their worker, in this process. Each such object still lets
// go of its fd, but it is a bug: keep such objects inside the worker's tasks (or drop them before the
// Worker or Runtime is destroyed). The first report of each kind also prints one line to stderr naming
// the type. Any thread.
std::uint64_t outlived_worker_reports() noexcept;

}  // namespace surge

#include "runtime/internal/worker_access.h"  // needs Worker complete; the definitions below need it

namespace surge {

// Suspends the calling task and lets every other ready task run first.
struct YieldAwaitable {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> self) { internal::WorkerAccess::schedule(*Worker::current(), self); }
  void await_resume() const noexcept {}
};
inline YieldAwaitable yield() noexcept { return {}; }

// Suspends the calling task behind everything else ready on its worker, I/O completions included: for
// expensive work that should give way (call it between chunks).
struct YieldLowAwaitable {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> self) { internal::WorkerAccess::schedule_low(*Worker::current(), self); }
  void await_resume() const noexcept {}
};
inline YieldLowAwaitable yield_low() noexcept { return {}; }

// --- Definitions that need Worker to be complete. ---

namespace internal {

inline bool TaskStateBase::mark_finished() noexcept {
  const std::uintptr_t previous = root_.waiter.exchange(kFinished, std::memory_order_seq_cst);
  if (previous == 0) return false;  // nobody waits yet: a later waiter sees kFinished and does not suspend
  if (previous == kDetached) return true;
  wake_waiter();
  return false;
}

inline void TaskStateBase::wake_waiter() noexcept {
  Worker* const worker = root_.waiter_worker;
  if (worker == Worker::current()) {
    WorkerAccess::schedule(*worker, root_.waiter_coroutine);
    return;
  }
  // The task's frame is gone, and with it every use of its cancel slot: the wake-up takes that storage.
  RemoteWork& wake = *std::construct_at(&root_.wake);
  wake.run = &run_wake;
  add_ref();  // the posted wake-up keeps the header alive until it has run
  WorkerAccess::post(*worker, wake);
}

inline void TaskStateBase::run_wake(RemoteWork& work, Worker& worker) noexcept {
  TaskStateBase& state = from_wake(work);
  if (!state.waiter_gone_) WorkerAccess::schedule(worker, state.root_.waiter_coroutine);
  state.release();
}

inline bool TaskStateBase::set_waiter(JoinWaiter& waiter) noexcept {
  root_.waiter_coroutine = waiter.coroutine;  // published by the store or CAS below
  root_.waiter_worker = waiter.worker;
  if (waiter.slot != nullptr) waiter.slot->install(&on_waiter_cancelled, this);
  const auto self = reinterpret_cast<std::uintptr_t>(&waiter);
  if (waiter.worker == root_.worker) {
    // On the task's own worker the task cannot finish or be abandoned meanwhile, and the handle (the
    // waiter's, being awaited) cannot be dropped: nothing else writes waiter_ now, so no locked
    // read-modify-write.
    if (root_.waiter.load(std::memory_order_relaxed) == 0 && !abandoned()) {
      root_.waiter.store(self, std::memory_order_relaxed);
      return true;
    }
  } else {
    std::uintptr_t expected = 0;
    if (root_.waiter.compare_exchange_strong(expected, self, std::memory_order_seq_cst)) {
      // abandon() stores abandoned_ and then reads waiter_, we the reverse, all seq_cst: either it sees
      // us (and wakes us), or we see it here and take ourselves out again.
      if (!abandoned_.load(std::memory_order_seq_cst)) return true;
      if (!root_.waiter.compare_exchange_strong(expected = self, 0, std::memory_order_seq_cst)) return true;
    }
  }
  if (waiter.slot != nullptr) waiter.slot->clear();  // finished or abandoned meanwhile: no wait
  return false;
}

inline void TaskStateBase::forget_waiter(JoinWaiter& waiter) noexcept {
  std::uintptr_t expected = reinterpret_cast<std::uintptr_t>(&waiter);
  if (root_.waiter.compare_exchange_strong(expected, 0, std::memory_order_seq_cst)) return;  // before any wake-up
  // The task finished (or was abandoned) and claimed this waiter: its wake-up is posted to this worker,
  // or about to be, and runs here after this. It must not resume the destroyed frame.
  waiter_gone_ = true;
}

inline void TaskStateBase::abandon() noexcept {
  abandoned_.store(true, std::memory_order_seq_cst);
  std::uintptr_t current = root_.waiter.load(std::memory_order_seq_cst);
  if (is_waiter(current) && root_.waiter.compare_exchange_strong(current, 0, std::memory_order_seq_cst)) {
    wake_waiter();  // its await throws broken_promise
  }
}

inline void TaskStateBase::request_cancel() noexcept {
  // Abandoned: the frame is gone, and the worker may be too (a Runtime's), or never was (a refused spawn).
  if (finished() || abandoned()) return;
  if (root_.worker == Worker::current()) {
    cancel_here();
    return;
  }
  if (cancel_posted_.exchange(true, std::memory_order_acq_rel)) return;  // one request is enough
  add_ref();  // the posted request keeps the block alive until it has run
  root_.remote_cancel.run = &run_remote_cancel;
  WorkerAccess::post(*root_.worker, root_.remote_cancel);
}

inline void TaskStateBase::cancel_here() noexcept {
  if (finished() || abandoned()) return;  // the frame (and what the slot's handler refers to) is gone
  if (adopted_) {
    root_.slot.request();
  } else {
    cancel_before_start_ = true;  // spawned from another thread and not adopted yet
  }
}

inline void TaskStateBase::run_remote_cancel(internal::RemoteWork& work, Worker& worker) noexcept {
  TaskStateBase& state = from_remote_cancel(work);
  state.cancel_here();
  state.release();
}

}  // namespace internal

template <typename T>
template <typename Promise>
bool JoinHandle<T>::Awaiter::await_suspend(std::coroutine_handle<Promise> awaiter) noexcept {
  waiter.coroutine = awaiter;
  waiter.worker = Worker::current();
  waiter.slot = internal::cancel_slot_of(awaiter);
  registered = state->set_waiter(waiter);
  return registered;
}

}  // namespace surge

#endif  // SURGE_RUNTIME_WORKER_H_
