// join_handle.h: JoinHandle<T>, the result of Worker::spawn: await it to get the spawned task's value.
//
//   surge::JoinHandle<int> handle = worker.spawn(compute());
//   int value = co_await std::move(handle);     // suspends until compute() has returned
//
// Dropping a JoinHandle detaches the task: it keeps running and its result is discarded. cancel() asks
// the task to stop; cancelling the task that awaits a handle cancels the awaited task too. The spawned
// task's frame belongs to the worker, not to the handle. If the worker shuts down before the task
// finishes, the task is destroyed and the handle reports is_abandoned(); awaiting it then is a bug.
// Threading (this issue): a handle is awaited on the worker that spawned the task.
#ifndef SURGE_RUNTIME_JOIN_HANDLE_H_
#define SURGE_RUNTIME_JOIN_HANDLE_H_

#include <cassert>
#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "runtime/cancel_slot.h"

namespace surge {

class Worker;

namespace internal {

// State shared by the spawned task (the producer) and its JoinHandle (the consumer), reference counted.
class JoinStateBase {
 public:
  virtual ~JoinStateBase() = default;

  void add_ref() noexcept { ++references_; }
  void release() noexcept {
    if (--references_ == 0) delete this;
  }

  bool finished() const noexcept { return finished_; }
  bool abandoned() const noexcept { return abandoned_; }

  // Called by the worker when it destroys an unfinished task on shutdown.
  void abandon() noexcept {
    abandoned_ = true;
    task_slot_ = nullptr;
  }

  // The spawned task's CancelSlot, so that request_cancel() can reach it while it runs.
  void set_task_slot(CancelSlot* slot) noexcept { task_slot_ = slot; }
  void request_cancel() noexcept {
    if (task_slot_ != nullptr) task_slot_->request();
  }

  // Called by the consumer that suspends until the task finishes. Cancelling the consumer's own chain
  // (`waiter_slot`) cancels the task it waits for: the join then ends as soon as the task does.
  void set_waiter(std::coroutine_handle<> waiter, Worker* waiter_worker, CancelSlot* waiter_slot) noexcept {
    waiter_ = waiter;
    waiter_worker_ = waiter_worker;
    waiter_slot_ = waiter_slot;
    if (waiter_slot_ != nullptr) {
      waiter_slot_->install([](void* self) noexcept { static_cast<JoinStateBase*>(self)->request_cancel(); }, this);
    }
  }

  void fail(std::exception_ptr exception) noexcept {
    exception_ = std::move(exception);
    mark_finished();
  }

 protected:
  void mark_finished() noexcept;  // defined in worker.h: schedules the waiter on its worker
  void rethrow_if_failed() {
    if (exception_) std::rethrow_exception(exception_);
  }

 private:
  int references_ = 1;
  bool finished_ = false;
  bool abandoned_ = false;
  std::coroutine_handle<> waiter_ = nullptr;
  Worker* waiter_worker_ = nullptr;
  CancelSlot* waiter_slot_ = nullptr;
  CancelSlot* task_slot_ = nullptr;
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
    bool await_ready() const noexcept { return state->finished(); }
    template <typename Promise>
    void await_suspend(std::coroutine_handle<Promise> awaiter) noexcept;  // defined in worker.h
    T await_resume() {
      assert(!state->abandoned() && "awaited a task destroyed by worker shutdown");
      return state->take();
    }
  };
  Awaiter operator co_await() && noexcept {
    assert(state_ != nullptr && "awaited an empty JoinHandle");
    return Awaiter{state_};
  }

 private:
  void reset() noexcept {
    if (state_ != nullptr) std::exchange(state_, nullptr)->release();
  }

  internal::JoinState<T>* state_ = nullptr;
};

}  // namespace surge

#endif  // SURGE_RUNTIME_JOIN_HANDLE_H_
