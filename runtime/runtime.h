// runtime.h: Runtime, N workers on N threads (thread-per-core), each with its own backend.
//
//   auto runtime = surge::Runtime::create({.workers = 0});        // 0: one worker per available CPU
//   int total = (*runtime)->block_on(main_task());                 // from a thread that is not a worker
//   auto handle = (*runtime)->spawn(job());                        // round-robin over the workers
//   auto pinned = (*runtime)->spawn_on(1, job());                  // on a chosen worker
//   (*runtime)->shutdown();                                        // also done by the destructor
//
// Inside a task, Worker::current()->spawn(...) starts a task on the same worker. Sockets stay with the
// worker that created them. JoinHandles work across workers. Each worker sleeps in its own ring (or
// epoll set) when idle; work posted from another thread wakes it only if it is asleep.
//
// Shutdown stops every worker's loop, then (on each worker's own thread) cancels its in-flight
// operations, waits for them and for blocking calls, destroys unfinished tasks and closes their
// sockets, and finally joins the threads. A second shutdown is harmless. A Runtime must not be shut
// down from one of its own workers.
//
// spawn(), spawn_on() and block_on() may race with shutdown() on another thread. Each task is either
// started before the shutdown (and, if still unfinished, destroyed by it: its handle is_abandoned(),
// block_on throws std::future_error with broken_promise) or refused: from the moment shutdown() has
// begun, spawn() and spawn_on() destroy the task without running it and return a handle that is
// already is_abandoned(), and block_on() throws std::future_error (broken_promise).
//
// Signals (RuntimeOptions::signals, by default SIGINT, SIGTERM and SIGHUP): a multi-threaded process
// must have one place that takes a process-directed signal, or the kernel picks any thread that does not
// block it and the default action (terminate) runs. create() blocks these signals in the calling thread
// while it starts the worker and blocking-pool threads (which inherit that mask), then restores the
// caller's mask; worker 0 reads them from one signalfd, and surge::ctrl_c() (runtime/ctrl_c.h) awaits
// them from any task on any worker. block_on() blocks them in its calling thread while it waits (and
// restores the mask after), so a main() that runs its service through block_on is covered. Any other
// thread of the process that does not block them (the caller outside block_on, threads started before
// the Runtime) still receives them with their usual disposition: block them there too
// (pthread_sigmask) to have the Runtime see every one. Until a task first awaits ctrl_c(), a signal the
// Runtime reads gets what it would have got without the Runtime (it is re-raised on worker 0: the default
// action terminates the process, or the process's own handler runs), so a service that never awaits
// ctrl_c() still stops on Ctrl-C. From the first ctrl_c() on, a signal read while no task awaits
// ctrl_c() is kept for the next one (see ctrl_c.h). `signals = {}` opts out altogether. Only
// process-directed signals (kill(pid), a terminal's Ctrl-C, systemd's SIGTERM) are read: one sent to a
// single runtime thread (raise() or pthread_kill on a thread other than worker 0's) stays pending there.
// SIGPIPE is not among them on purpose: sockets here send with MSG_NOSIGNAL, and SIGPIPE is directed at
// the writing thread, which the signalfd on worker 0 would not see.
#ifndef SURGE_RUNTIME_RUNTIME_H_
#define SURGE_RUNTIME_RUNTIME_H_

#include <signal.h>

#include <atomic>
#include <barrier>
#include <cassert>
#include <cstddef>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "runtime/internal/blocking_pool.h"
#include "runtime/internal/signal_hub.h"
#include "runtime/result.h"
#include "runtime/task.h"
#include "runtime/worker.h"

namespace surge {

struct RuntimeOptions {
  std::size_t workers = 0;      // 0: one per CPU this process may run on
  bool pin_workers = false;     // pin worker i to the i-th allowed CPU
  WorkerOptions worker;         // backend choice and options, for every worker
  std::size_t blocking_threads = 4;
  // Signals the Runtime takes over (see "Signals" at the top of this file): blocked in all its threads,
  // read on worker 0, awaited with surge::ctrl_c(). Empty: the Runtime leaves signals alone.
  std::vector<int> signals{SIGINT, SIGTERM, SIGHUP};
};

class CtrlCAwaitable;

class Runtime {
 public:
  // Starts the workers; fails (and starts nothing) if any worker's backend cannot be created.
  static Result<std::unique_ptr<Runtime>> create(const RuntimeOptions& options = {});

  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // The number of workers; 0 once shutdown() has run. Not concurrently with shutdown(), nor is worker().
  std::size_t size() const noexcept { return workers_.size(); }
  Worker& worker(std::size_t index) noexcept { return *workers_[index]; }

  // Starts `task` on the next worker in round-robin order. Any thread. After shutdown() has begun the
  // task is destroyed unstarted and the handle is_abandoned() (see the top of this file).
  template <typename T>
  JoinHandle<T> spawn(Task<T> task) {
    SpawnGate gate(*this);
    if (!gate.open()) return refuse(std::move(task));
    const std::size_t index = next_worker_.fetch_add(1, std::memory_order_relaxed) % workers_.size();
    return workers_[index]->spawn(std::move(task));
  }

  // Starts `task` on worker `index` (< size()). Any thread. After shutdown() as for spawn(). Tasks sent
  // from one thread to one worker start in the order they were sent (see runtime/submit_to.h, "Order");
  // submit_to() runs a plain callable there the same way.
  template <typename T>
  JoinHandle<T> spawn_on(std::size_t index, Task<T> task) {
    SpawnGate gate(*this);
    if (!gate.open()) return refuse(std::move(task));
    assert(index < workers_.size());
    return workers_[index]->spawn(std::move(task));
  }

  // Runs `task` on a worker and blocks the calling thread (which must not be a worker) until it returns.
  // If the runtime shuts down before the task has returned (or had begun to shut down when block_on was
  // called), throws std::future_error with std::future_errc::broken_promise.
  // The runtime's signals are blocked in the calling thread meanwhile (see "Signals" above).
  template <typename T>
  T block_on(Task<T> task) {
    assert(Worker::current() == nullptr && "block_on from a worker would deadlock it");
    SignalMaskGuard masked(signals_);
    std::promise<std::optional<Delivered<T>>> promise;
    std::future<std::optional<Delivered<T>>> result = promise.get_future();
    (void)spawn(deliver(std::move(task), Delivery<T>(&promise)));
    std::optional<Delivered<T>> delivered = result.get();  // rethrows what the task threw
    if (!delivered) throw std::future_error(std::future_errc::broken_promise);
    if constexpr (!std::is_void_v<T>) return std::move(*delivered);
  }

  // Stops and joins every worker (see the top of this file). Idempotent.
  void shutdown();

  internal::BlockingPool& blocking_pool() noexcept { return blocking_pool_; }

  // How many tasks await surge::ctrl_c() now, and how many signals are kept for the next one (see
  // runtime/ctrl_c.h); 0 without signal handling. For monitoring and tests. Any thread.
  std::size_t signal_waiters() const noexcept { return signal_hub_ != nullptr ? signal_hub_->waiting() : 0; }
  std::size_t kept_signals() const noexcept { return signal_hub_ != nullptr ? signal_hub_->kept() : 0; }

  // Blocks `signals` in the calling thread for its lifetime, then restores the thread's mask.
  class SignalMaskGuard {
   public:
    explicit SignalMaskGuard(const sigset_t& signals) noexcept { pthread_sigmask(SIG_BLOCK, &signals, &previous_); }
    ~SignalMaskGuard() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
    SignalMaskGuard(const SignalMaskGuard&) = delete;
    SignalMaskGuard& operator=(const SignalMaskGuard&) = delete;

   private:
    sigset_t previous_;
  };

 private:
  friend class CtrlCAwaitable;  // reaches signal_hub_
  Runtime(std::size_t blocking_threads, const sigset_t& signals) : signals_(signals), blocking_pool_(blocking_threads) {}

  template <typename T>
  using Delivered = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

  // block_on's promise, as the task's frame sees it. A parameter of deliver(), so it lives in the frame
  // from the start: if the frame is destroyed before the task has delivered (the shutdown destroys it
  // unfinished, or spawn refuses it unstarted), its destructor delivers nullopt, which block_on reports
  // as std::future_error(broken_promise), on its own thread. The promise itself stays on block_on's
  // stack: the caller, not the worker, drops the shared state last and frees what it holds.
  template <typename T>
  class Delivery {
   public:
    explicit Delivery(std::promise<std::optional<Delivered<T>>>* promise) noexcept : promise_(promise) {}
    Delivery(Delivery&& other) noexcept : promise_(std::exchange(other.promise_, nullptr)) {}
    Delivery(const Delivery&) = delete;
    Delivery& operator=(const Delivery&) = delete;
    ~Delivery() {
      if (promise_ != nullptr) promise_->set_value(std::nullopt);
    }
    // Once either has returned, block_on may return and destroy the promise: no access after that.
    void set_value(Delivered<T>&& value) {
      promise_->set_value(std::optional<Delivered<T>>(std::move(value)));
      promise_ = nullptr;
    }
    void set_exception(std::exception_ptr exception) {
      promise_->set_exception(std::move(exception));
      promise_ = nullptr;
    }

   private:
    std::promise<std::optional<Delivered<T>>>* promise_;
  };

  template <typename T>
  static Task<void> deliver(Task<T> task, Delivery<T> delivery) {
    try {
      if constexpr (std::is_void_v<T>) {
        co_await std::move(task);
        delivery.set_value(std::monostate{});
      } else {
        delivery.set_value(co_await std::move(task));
      }
    } catch (...) {
      delivery.set_exception(std::current_exception());
    }
  }

  // Admits a spawn unless shutdown() has begun; shutdown() waits for every admitted spawn to have handed
  // its task to a worker before it stops them. The Dekker-style handshake (each side writes its own
  // atomic, then reads the other's, all seq_cst) means that either the spawn sees shut_down_, or
  // shutdown() sees it in spawns_in_progress_ and waits: a task is never posted to a stopped worker,
  // and workers_ is never read while shutdown() clears it.
  class SpawnGate {
   public:
    explicit SpawnGate(Runtime& runtime) noexcept : runtime_(runtime) {
      runtime_.spawns_in_progress_.fetch_add(1, std::memory_order_seq_cst);
      open_ = !runtime_.shut_down_.load(std::memory_order_seq_cst);
    }
    ~SpawnGate() { runtime_.spawns_in_progress_.fetch_sub(1, std::memory_order_release); }
    SpawnGate(const SpawnGate&) = delete;
    SpawnGate& operator=(const SpawnGate&) = delete;
    bool open() const noexcept { return open_; }

   private:
    Runtime& runtime_;
    bool open_;
  };

  // A spawn after shutdown: the task is destroyed here, unstarted, and its handle reports abandoned.
  template <typename T>
  static JoinHandle<T> refuse(Task<T> task) {
    { Task<T> destroyed = std::move(task); }
    return JoinHandle<T>(internal::TaskState<T>::make_abandoned());  // its one reference is the handle's
  }

  // The body of worker thread: create the worker, run it, then take part in the shutdown phases.
  void run_worker(const RuntimeOptions& options, std::size_t index, std::promise<Result<Worker*>>* started);

  // The signals this Runtime takes over (empty if none), and what hands them to ctrl_c() (null if none).
  // Set by create() before the runtime is shared; the hub outlives the workers.
  sigset_t signals_;
  std::unique_ptr<internal::SignalHub> signal_hub_;
  internal::BlockingPool blocking_pool_;
  std::vector<Worker*> workers_;  // owned by their threads, which destroy them after shutdown
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> next_worker_{0};
  std::atomic<bool> shut_down_{false};
  std::atomic<std::size_t> spawns_in_progress_{0};  // see SpawnGate
  // Shutdown phases, so that no worker is destroyed while another could still post to it.
  std::unique_ptr<std::barrier<>> all_stopped_;
  std::unique_ptr<std::barrier<>> all_drained_;
};

}  // namespace surge

#endif  // SURGE_RUNTIME_RUNTIME_H_
