// join_handle.h: JoinHandle<T>, the result of spawn: await it to get the spawned task's value.
//
//   surge::JoinHandle<int> handle = worker.spawn(compute());
//   int value = co_await std::move(handle);     // suspends until compute() has returned
//
// Dropping a JoinHandle detaches the task: it keeps running and its result is discarded. cancel() asks
// the task to stop; cancelling the task that awaits a handle cancels the awaited task too. The spawned
// task's frame belongs to its worker, not to the handle. If the worker shuts down before the task
// finishes, the task is destroyed and the handle reports is_abandoned(); awaiting it then is a bug. A
// Runtime that has begun to shut down refuses new tasks the same way: their handles are abandoned at once.
//
// Threading: the handle may be awaited, cancelled and dropped on any worker, not only the task's own
// (a waiter on another worker is resumed through that worker's inbox). take_result() and is_finished()
// may be called from any thread.
#ifndef SURGE_RUNTIME_JOIN_HANDLE_H_
#define SURGE_RUNTIME_JOIN_HANDLE_H_

#include <atomic>
#include <cassert>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "runtime/internal/cancel_slot.h"
#include "runtime/internal/remote_inbox.h"

namespace surge {

class Worker;

namespace internal {

// Who waits for a task: lives in the waiter's awaiter, in its coroutine frame. As a RemoteWork it is
// posted to the waiter's worker when the task finishes on another worker.
struct JoinWaiter : internal::RemoteWork {
  std::coroutine_handle<> coroutine = nullptr;
  Worker* worker = nullptr;
  internal::CancelSlot* slot = nullptr;  // the waiter's chain: cancelling it cancels the task
};

// State shared by the spawned task (the producer) and its JoinHandle (the consumer), reference counted.
class JoinStateBase {
 public:
  virtual ~JoinStateBase() = default;

  void add_ref() noexcept { references_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (references_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // acquire: a consumer that sees the task finished also sees its result.
  bool finished() const noexcept { return waiter_.load(std::memory_order_acquire) == kFinished; }
  bool abandoned() const noexcept { return abandoned_.load(std::memory_order_acquire); }

  // --- Set up by spawn (before the handle exists), then by the task's worker when it adopts the task. ---
  void set_task_worker(Worker* worker) noexcept { task_worker_ = worker; }
  // Returns whether cancellation was requested before the task was adopted.
  bool adopt_task_slot(internal::CancelSlot* slot) noexcept {
    task_slot_ = slot;
    return cancel_before_start_;
  }
  // Called when the worker destroys the unfinished task on shutdown.
  void abandon() noexcept {
    task_slot_ = nullptr;
    abandoned_.store(true, std::memory_order_release);
  }
  void fail(std::exception_ptr exception) noexcept {
    exception_ = std::move(exception);
    mark_finished();
  }

  // --- Any worker. ---
  // Requests cancellation of the task on its own worker (directly, or through its inbox).
  void request_cancel() noexcept;  // defined in worker.h

  // Registers `waiter`; returns false if the task finished meanwhile (then nothing was registered and
  // the caller must not suspend).
  bool set_waiter(JoinWaiter& waiter) noexcept;  // defined in worker.h
  // The waiter's awaiter is done with its registration (it resumed).
  void clear_waiter_slot(JoinWaiter& waiter) noexcept {
    if (waiter.slot != nullptr) waiter.slot->clear();
  }

 protected:
  void mark_finished() noexcept;  // defined in worker.h: resumes the waiter on its worker
  void rethrow_if_failed() {
    if (exception_) std::rethrow_exception(exception_);
  }

 private:
  static void on_waiter_cancelled(void* self) noexcept { static_cast<JoinStateBase*>(self)->request_cancel(); }
  static void run_remote_cancel(internal::RemoteWork& work, Worker& worker) noexcept;  // defined in worker.h

  // No waiter yet (0), finished (kFinished), or the address of the registered JoinWaiter. The handoff
  // between a waiter registering (CAS from 0) and the task finishing (exchange to kFinished) is decided
  // by whichever happens first on this one atomic: no wake-up is lost and none is duplicated.
  static constexpr std::uintptr_t kFinished = 1;
  std::atomic<std::uintptr_t> waiter_{0};
  std::atomic<int> references_{1};
  std::atomic<bool> abandoned_{false};
  std::atomic<bool> cancel_posted_{false};
  Worker* task_worker_ = nullptr;
  internal::CancelSlot* task_slot_ = nullptr;    // touched only on the task's worker
  bool cancel_before_start_ = false;  // likewise
  struct RemoteCancel : internal::RemoteWork {
    JoinStateBase* state = nullptr;
  } remote_cancel_;
  std::exception_ptr exception_;
};

template <typename T>
class JoinState final : public JoinStateBase {
 public:
  template <typename U>
  void finish(U&& value) {
    value_.emplace(std::forward<U>(value));
    mark_finished();
  }
  T take() {
    rethrow_if_failed();
    assert(value_.has_value());
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class JoinState<void> final : public JoinStateBase {
 public:
  void finish() noexcept { mark_finished(); }
  void take() { rethrow_if_failed(); }
};

}  // namespace internal

template <typename T>
class [[nodiscard]] JoinHandle {
 public:
  JoinHandle() noexcept = default;
  explicit JoinHandle(internal::JoinState<T>* state) noexcept : state_(state) {}  // takes a reference
  JoinHandle(JoinHandle&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  JoinHandle& operator=(JoinHandle&& other) noexcept {
    if (this != &other) {
      reset();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  JoinHandle(const JoinHandle&) = delete;
  JoinHandle& operator=(const JoinHandle&) = delete;
  ~JoinHandle() { reset(); }

  bool valid() const noexcept { return state_ != nullptr; }
  bool is_finished() const noexcept { return state_ != nullptr && state_->finished(); }
  bool is_abandoned() const noexcept { return state_ != nullptr && state_->abandoned(); }

  // Precondition: is_finished(). Returns the task's value (rethrows what it threw), once.
  T take_result() { return state_->take(); }

  // Requests cancellation of the task: the operation it waits on is cancelled (see CancelSlot), and
  // awaitables it reaches later complete with ECANCELED. It still runs to its end; await the handle to
  // know when. Harmless once it has finished.
  void cancel() noexcept {
    if (state_ != nullptr && !state_->finished()) state_->request_cancel();
  }

  // Awaiting the handle suspends until the task has returned, then yields its value.
  struct Awaiter {
    internal::JoinState<T>* state;
    internal::JoinWaiter waiter;
    bool await_ready() const noexcept { return state->finished(); }
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> awaiter) noexcept;  // defined in worker.h
    T await_resume() {
      assert(!state->abandoned() && "awaited a task destroyed by worker shutdown");
      state->clear_waiter_slot(waiter);
      return state->take();
    }
  };
  Awaiter operator co_await() && noexcept {
    assert(state_ != nullptr && "awaited an empty JoinHandle");
    return Awaiter{state_, {}};
  }

 private:
  void reset() noexcept {
    if (state_ != nullptr) std::exchange(state_, nullptr)->release();
  }

  internal::JoinState<T>* state_ = nullptr;
};

}  // namespace surge

#endif  // SURGE_RUNTIME_JOIN_HANDLE_H_
