// task_group.h: TaskGroup, a nursery: children spawned on any worker, cancelled together, joined
// together.
//
//   surge::TaskGroup connections;
//   for (;;) {
//     auto stream = co_await listener.accept();
//     if (!stream) break;
//     connections.spawn(serve(std::move(*stream)));            // on this worker
//   }
//   // Graceful drain: wait up to 5 s, then cancel what is left and wait for it to finish.
//   auto drained = co_await surge::timeout(std::chrono::seconds(5), connections.join());
//   // drained: ok, or ETIMEDOUT (every child has finished either way)
//
// Children: spawn(task) on the current worker, spawn_on(worker, task) on any worker, spawn_on(index,
// task) on a worker of the current worker's Runtime. Each child costs two allocations: its own Task's
// frame and the small wrapper task that ties it to the group (which holds the join state). A child's
// value is discarded (a Result error it returns is not a failure of the group: handle it in the child).
// An exception escaping a child is a failure: the first is kept, the group is cancelled (its other
// children with it), and join() rethrows it once every child has finished; later ones are dropped.
//
// cancel() cancels every current child (the operation each awaits ends with ECANCELED; see
// JoinHandle::cancel) and every child spawned afterwards, which starts cancelled: a cancelled group stays
// cancelled. It does not wait; join() does.
//
// join() waits, without polling, until no child is left (children spawned meanwhile included), then
// returns ok(), or rethrows a child's exception. Cancelling the task awaiting join() cancels the group
// and still waits for every child to finish, then returns ECANCELED: so when join() returns, no child
// runs. That is what timeout(d, group.join()) does when `d` passes: it cancels the children, waits for
// them, and returns ETIMEDOUT (later than `d` by as long as the children take to react). Children are
// never left running by a timed-out join; to give them a deadline and keep them, sleep and read size().
// cancel_and_join() is cancel() then join(). Several tasks may await join() at once; all are woken.
//
// Destroying a group with children still running cancels them and detaches them: they finish on their
// own workers, and the shared state goes with the last of them (nothing leaks, nothing dangles). A
// worker that shuts down destroys its unfinished children like any task (they leave the group then).
//
// Threads: spawn, spawn_on, cancel and size from any thread; join() is awaited in a task on any worker.
// The group must outlive the join() awaiting it (a local of the task that joins, typically).
#ifndef SURGE_RUNTIME_TASK_GROUP_H_
#define SURGE_RUNTIME_TASK_GROUP_H_

#include <cassert>
#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <utility>

#include "runtime/internal/cancel_slot.h"
#include "runtime/internal/group_state.h"
#include "runtime/result.h"
#include "runtime/runtime.h"
#include "runtime/task.h"
#include "runtime/worker.h"

namespace surge {

class TaskGroup {
 public:
  class JoinAwaitable;

  TaskGroup() : state_(new internal::GroupState()) {}
  // Cancels the children still running and lets them finish on their own (see the top of this file).
  ~TaskGroup() {
    state_->cancel();
    state_->release();
  }
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  // Starts `task` as a child on the current worker (from a task).
  template <typename T>
  void spawn(Task<T> task) {
    assert(Worker::current() != nullptr && "TaskGroup::spawn outside a task: use spawn_on(worker, task)");
    spawn_on(*Worker::current(), std::move(task));
  }
  // Starts `task` as a child on `worker`. Any thread.
  template <typename T>
  void spawn_on(Worker& worker, Task<T> task) {
    state_->child_spawned();
    (void)worker.spawn(child(std::move(task), internal::GroupMember(state_)));
  }
  // Starts `task` as a child on worker `index` of the current worker's Runtime (from a task on one of
  // its workers). Refused after the Runtime began to shut down: the child is destroyed unstarted.
  template <typename T>
  void spawn_on(std::size_t index, Task<T> task) {
    Runtime* const runtime = Worker::current() != nullptr ? Worker::current()->runtime() : nullptr;
    assert(runtime != nullptr && "TaskGroup::spawn_on(index) outside a Runtime's task: use spawn_on(worker, task)");
    state_->child_spawned();
    (void)runtime->spawn_on(index, child(std::move(task), internal::GroupMember(state_)));
  }

  // Cancels every child, now and to come (see the top of this file). Any thread; does not wait.
  void cancel() noexcept { state_->cancel(); }
  bool cancelled() const noexcept { return state_->cancelled(); }
  // Children spawned whose tasks have not finished (or been destroyed) yet. Any thread.
  std::size_t size() const noexcept { return state_->live(); }

  // Waits until every child has finished; Result<void>: ok(), or ECANCELED if the awaiting task was
  // cancelled (the children were cancelled then, and have finished too). Rethrows a child's exception.
  JoinAwaitable join() noexcept;
  // cancel(), then join().
  JoinAwaitable cancel_and_join() noexcept;

 private:
  // The wrapper each child runs in: registers it, runs it, keeps its exception; its `member` parameter
  // leaves the group when the frame is destroyed (returned, or destroyed unstarted or by a shutdown).
  template <typename T>
  static Task<void> child(Task<T> task, internal::GroupMember member) {
    co_await member.enter();
    try {
      (void)co_await std::move(task);
    } catch (...) {
      member.fail(std::current_exception());
    }
  }

  internal::GroupState* state_;  // shared with the children
};

class [[nodiscard]] TaskGroup::JoinAwaitable {
 public:
  explicit JoinAwaitable(internal::GroupState& state) noexcept : state_(&state) {}
  JoinAwaitable(const JoinAwaitable&) = delete;
  JoinAwaitable& operator=(const JoinAwaitable&) = delete;
  // Destroyed while waiting (its worker shuts down): the last child must not resume it.
  ~JoinAwaitable() {
    if (registered_) state_->forget_joiner(joiner_);
  }

  bool await_ready() const noexcept { return false; }

  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiter) noexcept {
    slot_ = internal::cancel_slot_of(awaiter);
    if (slot_ != nullptr && slot_->requested()) {
      cancelled_ = true;
      state_->cancel();
    }
    joiner_.coroutine = awaiter;
    joiner_.worker = Worker::current();
    if (!state_->add_joiner(joiner_)) return false;  // no child left
    registered_ = true;
    if (slot_ != nullptr && !cancelled_) slot_->install(&on_cancel, this);
    return true;
  }

  Result<void> await_resume() {
    registered_ = false;
    if (slot_ != nullptr) slot_->clear();
    if (std::exception_ptr failure = state_->take_exception()) std::rethrow_exception(failure);
    if (cancelled_) return Error(ECANCELED, "TaskGroup::join");
    return ok();
  }

 private:
  // The awaiting task is cancelled: cancel the children, keep waiting for them.
  static void on_cancel(void* self) noexcept {
    auto* awaitable = static_cast<JoinAwaitable*>(self);
    awaitable->cancelled_ = true;
    awaitable->state_->cancel();
  }

  internal::GroupState* state_;
  internal::Waiter joiner_;  // queued on the group while it waits
  internal::CancelSlot* slot_ = nullptr;
  bool registered_ = false;
  bool cancelled_ = false;
};

inline TaskGroup::JoinAwaitable TaskGroup::join() noexcept { return JoinAwaitable(*state_); }
inline TaskGroup::JoinAwaitable TaskGroup::cancel_and_join() noexcept {
  cancel();
  return JoinAwaitable(*state_);
}

}  // namespace surge

#endif  // SURGE_RUNTIME_TASK_GROUP_H_
