// task.h: Task<T>, the lazy coroutine type every surge coroutine returns.
//
// A Task does nothing until it is awaited (or handed to Worker::spawn / Worker::block_on). Awaiting it
// starts it by symmetric transfer, so a chain of awaits of any depth uses no stack, and the awaiter
// resumes with the Task's return value. Failures travel as values: return Result<T> from the coroutine.
// An exception thrown inside a Task (from user code; surge's own I/O path never throws) is rethrown in
// the awaiter.
//
//   surge::Task<surge::Result<size_t>> copy_once(surge::TcpStream& in, surge::TcpStream& out) {
//     std::array<std::byte, 4096> buffer;
//     auto n = co_await in.read(buffer);
//     if (!n) co_return n.error();
//     if (auto written = co_await out.write_all({buffer.data(), *n}); !written) co_return written.error();
//     co_return *n;
//   }
//
// Cancellation: an awaited Task shares its awaiter's CancelSlot, so cancelling the outer task reaches the
// operation the innermost Task is waiting on.
//
// Ownership: the Task object owns its coroutine frame and destroys it exactly once, in its destructor.
// A Task is move-only and must be awaited at most once, on the worker thread that runs its awaiter.
#ifndef SURGE_RUNTIME_TASK_H_
#define SURGE_RUNTIME_TASK_H_

#include <cassert>
#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

#include "runtime/internal/cancel_slot.h"

namespace surge {

template <typename T = void>
class Task;

namespace internal {

class TaskPromiseBase {
 public:
  std::suspend_always initial_suspend() noexcept { return {}; }

  // At the end of the body, transfer straight to whoever awaited us (symmetric transfer: no stack growth).
  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <typename Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
      return self.promise().continuation_;
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  void unhandled_exception() noexcept { exception_ = std::current_exception(); }

  void set_continuation(std::coroutine_handle<> continuation) noexcept { continuation_ = continuation; }

  // The cancellation slot of the chain this Task runs in, inherited from its awaiter (nullptr if none).
  internal::CancelSlot* cancel_slot() noexcept { return cancel_slot_; }
  void set_cancel_slot(internal::CancelSlot* slot) noexcept { cancel_slot_ = slot; }

 protected:
  void rethrow_if_failed() {
    if (exception_) std::rethrow_exception(exception_);
  }

 private:
  std::coroutine_handle<> continuation_ = std::noop_coroutine();
  std::exception_ptr exception_;
  internal::CancelSlot* cancel_slot_ = nullptr;
};

template <typename T>
class TaskPromise final : public TaskPromiseBase {
 public:
  Task<T> get_return_object() noexcept;

  template <typename U>
  void return_value(U&& value) {
    value_.emplace(std::forward<U>(value));
  }

  T take_result() {
    rethrow_if_failed();
    assert(value_.has_value() && "Task finished without a value");
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class TaskPromise<void> final : public TaskPromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take_result() { rethrow_if_failed(); }
};

}  // namespace internal

template <typename T>
class [[nodiscard]] Task {
 public:
  using promise_type = internal::TaskPromise<T>;
  using Handle = std::coroutine_handle<promise_type>;

  Task() noexcept = default;
  explicit Task(Handle handle) noexcept : handle_(handle) {}
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      destroy();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { destroy(); }

  bool valid() const noexcept { return handle_ != nullptr; }
  bool done() const noexcept { return handle_ && handle_.done(); }

  // Awaiting a Task starts it and suspends the awaiter until the Task's body has returned.
  struct Awaiter {
    Handle handle;
    bool await_ready() const noexcept { return !handle || handle.done(); }
    template <typename AwaiterPromise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<AwaiterPromise> awaiter) noexcept {
      handle.promise().set_continuation(awaiter);
      handle.promise().set_cancel_slot(internal::cancel_slot_of(awaiter));  // cancelling the awaiter reaches us
      return handle;
    }
    T await_resume() {
      assert(handle && "awaited an empty Task");
      return handle.promise().take_result();
    }
  };
  Awaiter operator co_await() && noexcept { return Awaiter{handle_}; }

 private:
  void destroy() noexcept {
    if (handle_) std::exchange(handle_, nullptr).destroy();
  }

  Handle handle_ = nullptr;
};

namespace internal {

template <typename T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}

inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}

}  // namespace internal
}  // namespace surge

#endif  // SURGE_RUNTIME_TASK_H_
