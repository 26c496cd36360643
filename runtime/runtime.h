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
#ifndef SURGE_RUNTIME_RUNTIME_H_
#define SURGE_RUNTIME_RUNTIME_H_

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
#include <vector>

#include "runtime/blocking_pool.h"
#include "runtime/result.h"
#include "runtime/task.h"
#include "runtime/worker.h"

namespace surge {

struct RuntimeOptions {
  std::size_t workers = 0;      // 0: one per CPU this process may run on
  bool pin_workers = false;     // pin worker i to the i-th allowed CPU
  WorkerOptions worker;         // backend choice and options, for every worker
  std::size_t blocking_threads = 4;
};

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

  // Starts `task` on worker `index` (< size()). Any thread. After shutdown() as for spawn().
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
  template <typename T>
  T block_on(Task<T> task) {
    assert(Worker::current() == nullptr && "block_on from a worker would deadlock it");
    std::promise<T> promise;
    std::future<T> result = promise.get_future();
    // The promise moves into the task's frame: however that frame ends (the task returns, the shutdown
    // destroys it unfinished, or spawn refuses it), the promise is fulfilled or broken, never forgotten.
    (void)spawn(deliver(std::move(task), std::move(promise)));
    return result.get();
  }

  // Stops and joins every worker (see the top of this file). Idempotent.
  void shutdown();

  BlockingPool& blocking_pool() noexcept { return blocking_pool_; }

 private:
  explicit Runtime(std::size_t blocking_threads) : blocking_pool_(blocking_threads) {}

  // Holds `promise` in its frame: destroyed unfinished, it breaks the promise (std::promise's destructor).
  template <typename T>
  static Task<void> deliver(Task<T> task, std::promise<T> promise) {
    try {
      if constexpr (std::is_void_v<T>) {
        co_await std::move(task);
        promise.set_value();
      } else {
        promise.set_value(co_await std::move(task));
      }
    } catch (...) {
      promise.set_exception(std::current_exception());
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
    auto* state = new internal::JoinState<T>();  // its one reference is the handle's
    state->abandon();
    return JoinHandle<T>(state);
  }

  // The body of worker thread: create the worker, run it, then take part in the shutdown phases.
  void run_worker(const RuntimeOptions& options, std::promise<Result<Worker*>>* started);

  BlockingPool blocking_pool_;
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
