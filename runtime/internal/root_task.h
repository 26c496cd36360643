// root_task.h (internal): the coroutine at the bottom of every spawned task's stack.
//
// Worker::spawn wraps the user's Task in a RootTask that stores the result into the JoinState. The
// RootTask's frame is owned by the worker (an intrusive list of live roots), which lets the worker destroy
// unfinished tasks on shutdown; when a root finishes, it unlinks and destroys itself.
#ifndef SURGE_RUNTIME_INTERNAL_ROOT_TASK_H_
#define SURGE_RUNTIME_INTERNAL_ROOT_TASK_H_

#include <coroutine>
#include <exception>

#include "runtime/internal/cancel_slot.h"
#include "runtime/internal/remote_inbox.h"

namespace surge {

class Worker;

namespace internal {

class JoinStateBase;
struct RootPromise;

// Unlinks a finished root from its worker and destroys its frame. Defined in worker.cc.
void release_finished_root(RootPromise& promise) noexcept;

struct RootTask {
  using promise_type = RootPromise;
  std::coroutine_handle<RootPromise> handle;
};

struct RootPromise {
  RootTask get_return_object() noexcept { return {std::coroutine_handle<RootPromise>::from_promise(*this)}; }
  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<RootPromise> self) noexcept {
      release_finished_root(self.promise());
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void return_void() noexcept {}
  // The body catches everything and hands it to the JoinState; nothing can arrive here.
  void unhandled_exception() noexcept { std::terminate(); }

  internal::CancelSlot* cancel_slot() noexcept { return &slot; }

  internal::CancelSlot slot;  // the spawned task's cancellation slot, shared by everything it awaits
  Worker* worker = nullptr;
  // Posted to the worker when the task is spawned from another thread: it adopts and starts the task.
  struct Adoption : internal::RemoteWork {
    RootPromise* promise = nullptr;
  } adoption;
  JoinStateBase* join_state = nullptr;  // not owned; marked abandoned if the worker destroys this root
  RootPromise* previous = nullptr;
  RootPromise* next = nullptr;
};

}  // namespace internal
}  // namespace surge

#endif  // SURGE_RUNTIME_INTERNAL_ROOT_TASK_H_
