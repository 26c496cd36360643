// signal_hub.h (internal): how a Runtime hands the signals it reads to the tasks awaiting ctrl_c().
//
// One task on worker 0 reads the Runtime's signalfd and calls deliver(). Waiters (CtrlCAwaitable, in
// their coroutine frames) register from any worker. deliver() wakes every waiter registered at that
// moment (a broadcast): it moves them to their worker's "woken" list and posts that worker's one fan-out
// node (RemoteWork, owned here, so no frame memory is ever posted), which resumes them on their own
// thread. A signal that arrives while nobody waits is kept (at most one of each number, like the
// kernel's own pending set) and handed, oldest first, to the next waiter, which then does not suspend.
//
// Threads: one mutex guards the lists and the kept signals; every other step of a waiter (cancel,
// forget, resume) happens on its worker's thread, so a waiter's frame is never touched by another
// thread after it has been taken off the lists. Not a hot path: a lock per wait is fine.
#ifndef SURGE_RUNTIME_INTERNAL_SIGNAL_HUB_H_
#define SURGE_RUNTIME_INTERNAL_SIGNAL_HUB_H_

#include <array>
#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "runtime/internal/intrusive_list.h"
#include "runtime/internal/remote_inbox.h"

namespace surge {
class Worker;
}  // namespace surge

namespace surge::internal {

struct SignalWaiter {
  enum class State : std::uint8_t { kIdle, kWaiting, kWoken, kResumed };
  std::coroutine_handle<> coroutine = nullptr;
  Worker* worker = nullptr;
  SignalWaiter* previous = nullptr;
  SignalWaiter* next = nullptr;
  int signal = 0;               // set when woken
  State state = State::kIdle;   // guarded by the hub's mutex
};

class SignalHub {
 public:
  explicit SignalHub(std::size_t workers);
  SignalHub(const SignalHub&) = delete;
  SignalHub& operator=(const SignalHub&) = delete;

  // On the waiter's worker. Returns a kept signal at once (nothing registered), or 0: registered, the
  // caller suspends and is resumed on its worker with waiter.signal set.
  int wait(SignalWaiter& waiter) noexcept;
  // On the waiter's worker (its task was cancelled). Returns true if it was still waiting: it is taken
  // off and the caller resumes it (ECANCELED). False: a signal has already claimed it; its wake-up runs.
  bool cancel(SignalWaiter& waiter) noexcept;
  // On the waiter's worker, when its frame is destroyed while registered (the worker shuts down).
  void forget(SignalWaiter& waiter) noexcept;

  // Whether any task has ever awaited ctrl_c() on this hub: until then the Runtime leaves a signal to
  // its default action (the reader re-raises it). Any thread.
  bool armed() const noexcept { return armed_.load(std::memory_order_acquire); }
  // The reader, on worker 0: wakes every registered waiter with `signal`, or keeps it for the next one.
  void deliver(int signal) noexcept;

  // Signals kept for the next waiter, and waiters registered (monitoring, tests). Any thread.
  std::size_t kept() noexcept;
  std::size_t waiting() noexcept;

 private:
  using List = IntrusiveList<SignalWaiter, &SignalWaiter::previous, &SignalWaiter::next>;
  struct PerWorker : RemoteWork {
    SignalHub* hub = nullptr;
    List woken;           // claimed by a signal, to be resumed by this node's run on that worker
    bool posted = false;  // this node is in the worker's inbox
  };
  static void run_fanout(RemoteWork& work, Worker& worker) noexcept;

  std::mutex mutex_;
  std::atomic<bool> armed_{false};  // set by the first wait()
  List waiting_;
  std::unique_ptr<PerWorker[]> workers_;
  std::size_t worker_count_;
  std::array<int, 64> kept_{};  // signal numbers, oldest first, each at most once
  std::size_t kept_count_ = 0;
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_INTERNAL_SIGNAL_HUB_H_
