// sharded.h: Sharded<T>, one instance of T per worker of a Runtime (Seastar's sharded<T>): per-worker
// state (caches, counters, connection pools) that each worker's tasks use without locks.
//
//   surge::Sharded<Stats> stats;
//   co_await stats.start(runtime, [](std::size_t index) { return Stats(index); });  // each on its worker
//   stats.local().requests++;                                // in any task: this worker's instance
//   auto total = co_await stats.invoke_on(1, [](Stats& s) { return s.requests; });  // run on worker 1
//   co_await stats.stop();                                   // each destroyed on its own worker
//
// Construction: start() runs factory(index) on worker `index`'s thread for every worker (so what T sets
// up there, thread-local or registered with that worker, is where it is used) and returns once all have
// been built. If a factory throws, start() rethrows the first exception after every worker has tried;
// the instances that were built stay until stop() or destruction. start() once per Sharded.
//
// Access: local() is the instance of the worker running the calling task (of the same Runtime). on(i)
// is worker i's instance: it belongs to worker i's thread, so touch it only there (invoke_on(i, f) runs
// f(instance) on worker i and returns a JoinHandle of its result, like submit_to).
//
// Destruction, each instance on its own worker's thread, at the first of:
//   - stop(), awaited from a task (of any worker) while the Runtime runs;
//   - the Runtime's shutdown: each worker destroys its instance after its unfinished tasks, before the
//     worker itself goes (internal::WorkerExitHook), so no task can still be using it;
//   - the Sharded's destructor, if still running instances exist: it posts each destruction to its
//     worker and blocks the calling thread until all are done (the calling worker's own, inline). Prefer
//     stop(): a blocked worker runs nothing else meanwhile.
// The Sharded object itself must outlive every task that uses it, and must not be destroyed while its
// Runtime's shutdown() runs on another thread.
#ifndef SURGE_RUNTIME_SHARDED_H_
#define SURGE_RUNTIME_SHARDED_H_

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/runtime.h"
#include "runtime/task.h"
#include "runtime/worker.h"

namespace surge {

template <typename T>
class Sharded {
 public:
  Sharded() = default;
  ~Sharded() { destroy_blocking(); }
  Sharded(const Sharded&) = delete;
  Sharded& operator=(const Sharded&) = delete;

  // Builds one T per worker of `runtime`, with factory(index) on that worker's thread. From a task (of
  // any worker, or through runtime.block_on from a plain thread).
  template <typename Factory>
    requires std::is_convertible_v<std::invoke_result_t<Factory&, std::size_t>, T>
  Task<void> start(Runtime& runtime, Factory factory) {
    assert(runtime_ == nullptr && "Sharded::start once");
    runtime_ = &runtime;
    count_ = runtime.size();
    slots_.reset(new Slot[count_]);
    std::vector<JoinHandle<void>> building;
    building.reserve(count_);
    for (std::size_t i = 0; i < count_; ++i) building.push_back(runtime.spawn_on(i, construct(&slots_[i], i, factory)));
    co_await await_all(building);
  }

  // This worker's instance. From a task on a worker of the Runtime given to start().
  T& local() noexcept {
    Worker* const worker = Worker::current();
    assert(worker != nullptr && worker->runtime() == runtime_ && "Sharded::local outside its Runtime");
    return *slots_[worker->index()].value;
  }
  // Worker `index`'s instance: use it on that worker's thread only.
  T& on(std::size_t index) noexcept { return *slots_[index].value; }
  std::size_t size() const noexcept { return count_; }

  // Runs function(instance) on worker `index` and returns a JoinHandle of its result. Any thread.
  template <typename F>
  JoinHandle<std::invoke_result_t<F&, T&>> invoke_on(std::size_t index, F function) {
    return runtime_->spawn_on(index, invoke(&slots_[index], std::move(function)));
  }

  // Destroys every instance, each on its worker's thread, and returns once all are gone. From a task.
  Task<void> stop() {
    std::vector<JoinHandle<void>> destroying;
    destroying.reserve(count_);
    for (std::size_t i = 0; i < count_; ++i) {
      if (slots_[i].live.load(std::memory_order_acquire)) destroying.push_back(runtime_->spawn_on(i, destroy(&slots_[i])));
    }
    co_await await_all(destroying);
  }

 private:
  // One per worker, on cache lines of its own (each is written by its worker).
  struct alignas(64) Slot {
    std::optional<T> value;
    struct Hook : internal::WorkerExitHook {
      Slot* slot = nullptr;
    } hook;
    Worker* worker = nullptr;
    std::uint64_t incarnation = 0;
    std::atomic<bool> live{false};        // value is set; written on the worker's thread
    std::atomic<std::size_t>* pending = nullptr;  // destroy_blocking's count, while it waits
  };

  // On the slot's worker: destroys the instance (once) and unregisters the exit hook.
  static void destroy_here(Slot& slot, bool hook_registered) noexcept {
    if (!slot.live.load(std::memory_order_relaxed)) return;
    if (hook_registered) internal::WorkerAccess::remove_exit_hook(*slot.worker, slot.hook);
    slot.value.reset();
    slot.live.store(false, std::memory_order_release);
  }

  static Task<void> construct(Slot* slot, std::size_t index, auto factory) {
    slot->value.emplace(factory(index));
    slot->worker = Worker::current();
    slot->incarnation = internal::WorkerAccess::incarnation(*slot->worker);
    slot->hook.slot = slot;
    slot->hook.run = [](internal::WorkerExitHook& hook, Worker&) noexcept {
      destroy_here(*static_cast<typename Slot::Hook&>(hook).slot, false);  // already off the worker's list
    };
    internal::WorkerAccess::add_exit_hook(*slot->worker, slot->hook);
    slot->live.store(true, std::memory_order_release);
    co_return;
  }
  static Task<void> destroy(Slot* slot) {
    destroy_here(*slot, true);
    co_return;
  }
  template <typename F>
  static Task<std::invoke_result_t<F&, T&>> invoke(Slot* slot, F function) {
    co_return function(*slot->value);
  }
  static Task<void> await_all(std::vector<JoinHandle<void>>& handles) {
    std::exception_ptr first;
    for (auto& handle : handles) {
      try {
        co_await std::move(handle);
      } catch (...) {
        if (!first) first = std::current_exception();
      }
    }
    if (first) std::rethrow_exception(first);
  }

  void destroy_blocking() noexcept {
    if (slots_ == nullptr) return;
    std::atomic<std::size_t> pending{0};
    for (std::size_t i = 0; i < count_; ++i) {
      Slot& slot = slots_[i];
      if (!slot.live.load(std::memory_order_acquire)) continue;  // stopped, or its worker is gone
      if (Worker::current() == slot.worker) {
        destroy_here(slot, true);
        continue;
      }
      slot.pending = &pending;
      pending.fetch_add(1, std::memory_order_relaxed);
      const bool posted = internal::WorkerAccess::run_at_home(
          slot.worker, slot.incarnation,
          [](Worker&, std::uint64_t argument) noexcept {
            Slot& home = *reinterpret_cast<Slot*>(argument);
            std::atomic<std::size_t>* const count = home.pending;
            destroy_here(home, true);
            if (count->fetch_sub(1, std::memory_order_acq_rel) == 1) count->notify_all();
          },
          reinterpret_cast<std::uint64_t>(&slot));
      // Gone meanwhile: its exit hook destroyed the instance before the worker unregistered.
      if (!posted) pending.fetch_sub(1, std::memory_order_relaxed);
    }
    for (std::size_t left; (left = pending.load(std::memory_order_acquire)) != 0;) pending.wait(left);
  }

  Runtime* runtime_ = nullptr;
  std::size_t count_ = 0;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace surge

#endif  // SURGE_RUNTIME_SHARDED_H_
