// join_handle.h: JoinHandle<T>, the result of spawn: await it to get the spawned task's value.
//
//   surge::JoinHandle<int> handle = worker.spawn(compute());
//   int value = co_await std::move(handle);     // suspends until compute() has returned
//
// Dropping a JoinHandle detaches the task: it keeps running and its result is discarded. cancel() asks
// the task to stop; cancelling the task that awaits a handle cancels the awaited task too. The spawned
// task's frame belongs to its worker, not to the handle: it is destroyed (parameters included) on that
// worker as soon as the task returns. The handle keeps the task's heap block allocated (the frame's
// memory, with the result and the join state in its header: spawn allocates nothing besides the
// Task's own frame) until the handle is dropped; drop handles you no longer need. If the worker shuts down before the task
// finishes, the task is destroyed and the handle reports is_abandoned(); a task awaiting it then is
// resumed (also one that was already waiting) and the await throws std::future_error (broken_promise).
// A Runtime that has begun to shut down refuses new tasks the same way: their handles are abandoned at
// once. A waiting task whose own frame is destroyed (its worker shuts down) stops waiting: the awaited
// task never touches the waiter's frame after that.
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
#include <future>
#include <optional>
#include <type_traits>
#include <utility>

#include "runtime/internal/cancel_slot.h"
#include "runtime/internal/remote_inbox.h"
#include "runtime/internal/task_state.h"

namespace surge {

class Worker;

namespace internal {

// Who waits for a task: lives in the waiter's awaiter, in its coroutine frame. set_waiter() copies what
// the wake-up needs into the task's header, so the task never reads this after registration (the frame
// may be destroyed on its own worker meanwhile; see TaskStateBase::forget_waiter).
struct JoinWaiter {
  std::coroutine_handle<> coroutine = nullptr;
  Worker* worker = nullptr;
  internal::CancelSlot* slot = nullptr;  // the waiter's chain: cancelling it cancels the task
};

}  // namespace internal

template <typename T>
class [[nodiscard]] JoinHandle {
 public:
  JoinHandle() noexcept = default;
  explicit JoinHandle(internal::TaskState<T>& state) noexcept : state_(&state) {}  // takes a reference
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
    internal::TaskState<T>* state;
    internal::JoinWaiter waiter;
    bool registered = false;  // suspended as the task's waiter, not resumed yet

    Awaiter(internal::TaskState<T>* awaited) noexcept : state(awaited) {}
    Awaiter(const Awaiter&) = delete;
    Awaiter& operator=(const Awaiter&) = delete;
    // Destroyed while still registered: the frame is being destroyed without being resumed (its worker
    // shuts down). The task must not wake it any more.
    ~Awaiter() {
      if (registered) state->forget_waiter(waiter);
    }

    bool await_ready() const noexcept { return state->finished() || state->abandoned(); }
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> awaiter) noexcept;  // defined in worker.h
    T await_resume() {
      registered = false;
      if (waiter.slot != nullptr) waiter.slot->clear();  // the wait is over: nothing left to cancel
      if (state->abandoned() && !state->finished()) {
        throw std::future_error(std::future_errc::broken_promise);  // its worker destroyed the task
      }
      return state->take();
    }
  };
  Awaiter operator co_await() && noexcept {
    assert(state_ != nullptr && "awaited an empty JoinHandle");
    return Awaiter(state_);
  }

 private:
  void reset() noexcept {
    if (state_ == nullptr) return;
    internal::TaskState<T>* state = std::exchange(state_, nullptr);
    if (state->detach_handle()) state->discard_value();  // else the task discards it when it returns
    state->release();
  }

  // The spawned task's header (runtime/internal/task_state.h), which the handle keeps allocated.
  internal::TaskState<T>* state_ = nullptr;
};

}  // namespace surge

#endif  // SURGE_RUNTIME_JOIN_HANDLE_H_
