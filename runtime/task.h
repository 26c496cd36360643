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
// Ownership: the Task object owns its coroutine frame and destroys it exactly once, in its destructor,
// unless it is spawned: then the frame belongs to the worker that runs it (see join_handle.h).
// A Task is move-only and must be awaited (or spawned) at most once, on the worker thread that runs it.
//
// Memory: one heap block per Task, the frame with a small header in front (runtime/internal/task_state.h)
// that holds the promise's state and, if the Task is spawned, its join state: a spawn allocates nothing
// more. The header costs an awaited Task about 80 bytes more than a promise that held only its own state.
#ifndef SURGE_RUNTIME_TASK_H_
#define SURGE_RUNTIME_TASK_H_

#include <cassert>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <utility>

#include "runtime/internal/cancel_slot.h"
#include "runtime/internal/task_state.h"

namespace surge {

template <typename T = void>
class Task;

namespace internal {
template <typename T>
class TaskPromise;
}  // namespace internal

namespace internal {

// The promise is empty: its state lives in the TaskState header allocated in front of the frame (see
// runtime/internal/task_state.h), which is what lets a spawned task be its own root.
template <typename T>
class TaskPromiseCommon {
 public:
  // One block: the header, then the frame.
  static void* operator new(std::size_t frame_size) { return TaskState<T>::allocate_with_frame(frame_size); }
  static void operator delete(void* frame) noexcept { TaskState<T>::frame_deleted(frame); }

  std::suspend_always initial_suspend() noexcept { return {}; }

  // At the end of the body of an awaited task, transfer straight to whoever awaited it (symmetric
  // transfer: no stack growth). A spawned task is its own root: it hands its outcome to its JoinHandle
  // and its frame back to its worker, which destroys it right here (the coroutine is suspended, and
  // nothing touches the frame after await_suspend has returned).
  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<TaskPromise<T>> self) noexcept {
      TaskState<T>& state = self.promise().state();
      if (!state.spawned()) return state.continuation();
      // Unlinks from the worker, destroys the frame, then publishes (parameters die before anyone
      // sees the task finished). The block stays allocated: the frame's reference is dropped below.
      if (state.finish_root()) state.discard_value();  // the handle was dropped: nobody takes the result
      state.release();
      return std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  void unhandled_exception() noexcept { state().set_exception(std::current_exception()); }

  // The cancellation slot of the chain this Task runs in: its awaiter's (nullptr if none), or its own
  // when spawned.
  internal::CancelSlot* cancel_slot() noexcept { return state().cancel_slot(); }

  TaskState<T>& state() noexcept {
    return TaskState<T>::of_frame(std::coroutine_handle<TaskPromise<T>>::from_promise(
                                      static_cast<TaskPromise<T>&>(*this)).address());
  }

  Task<T> get_return_object() noexcept;
};

template <typename T>
class TaskPromise final : public TaskPromiseCommon<T> {
 public:
  template <typename U>
  void return_value(U&& value) {
    this->state().set_value(std::forward<U>(value));
  }
  T take_result() { return this->state().take(); }
};

template <>
class TaskPromise<void> final : public TaskPromiseCommon<void> {
 public:
  void return_void() noexcept {}
  void take_result() { state().take(); }
};

struct TaskAccess;

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
      internal::TaskState<T>& state = handle.promise().state();
      state.set_continuation(awaiter);
      state.set_cancel_slot(internal::cancel_slot_of(awaiter));  // cancelling the awaiter reaches us
      return handle;
    }
    T await_resume() {
      assert(handle && "awaited an empty Task");
      return handle.promise().take_result();
    }
  };
  Awaiter operator co_await() && noexcept { return Awaiter{handle_}; }

 private:
  friend struct internal::TaskAccess;

  void destroy() noexcept {
    if (handle_) std::exchange(handle_, nullptr).destroy();
  }

  Handle handle_ = nullptr;
};

namespace internal {

template <typename T>
Task<T> TaskPromiseCommon<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(static_cast<TaskPromise<T>&>(*this)));
}

// What Worker::spawn needs from a Task: its header, made a root.
struct TaskAccess {
  // Takes the frame out of `task` (its worker owns it from now on) and makes it a root run by `worker`.
  template <typename T>
  static TaskState<T>& make_root(Task<T>&& task, Worker& worker, TaskStateBase::FinishRoot finish) noexcept {
    assert(task.handle_ && "spawned an empty Task");
    TaskState<T>& state = std::exchange(task.handle_, nullptr).promise().state();
    state.become_root(worker, finish);
    return state;
  }
};

}  // namespace internal
}  // namespace surge

#endif  // SURGE_RUNTIME_TASK_H_
