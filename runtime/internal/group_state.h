// group_state.h (internal): the shared state of a TaskGroup: its live children, a counter of them with
// one waiter woken when it reaches zero (this file's small counter-with-wake; surge's general-purpose
// sync primitives live elsewhere), the group's cancellation and its first failure.
//
// Shared by the TaskGroup and each child (GroupMember, a parameter of the child's wrapper task, so it
// lives in the child's frame from the spawn on, started or not): reference-counted, freed by whichever
// lets go last, so a group destroyed with children still running leaks nothing and leaves them nothing
// dangling. One mutex guards everything but the reference count; children finish on any worker.
//
// Joiners (tasks awaiting join(), any number) queue with the waiting protocol every cross-worker
// hand-over shares (runtime/internal/waiter.h): the last child to leave wakes them, after letting go of
// the lock, each on its own worker (directly, or through that worker's wake list). A joiner whose frame
// is destroyed while it waits (its worker shuts down) leaves the queue, or, if it was already woken from
// another thread, is taken off its worker's wake list: nothing ever resumes a dead frame.
#ifndef SURGE_RUNTIME_INTERNAL_GROUP_STATE_H_
#define SURGE_RUNTIME_INTERNAL_GROUP_STATE_H_

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <mutex>
#include <vector>

#include "runtime/internal/intrusive_list.h"
#include "runtime/internal/task_state.h"
#include "runtime/internal/waiter.h"

namespace surge {
class Worker;
}  // namespace surge

namespace surge::internal {

class GroupState;

// A child's membership: the group counted it when it was spawned; it registers (with its task, so the
// group can cancel it) once it runs, and leaves when its frame is destroyed.
class GroupMember {
 public:
  explicit GroupMember(GroupState* state) noexcept : state_(state) {}  // takes the spawn's count and reference
  GroupMember(GroupMember&& other) noexcept : state_(other.state_) { other.state_ = nullptr; }
  GroupMember(const GroupMember&) = delete;
  GroupMember& operator=(const GroupMember&) = delete;
  ~GroupMember();

  // `co_await member.enter()` first thing in the child: registers it with its own task (and cancels it
  // at once if the group is cancelled already). Does not suspend.
  struct Enter {
    GroupMember* member;
    bool await_ready() const noexcept { return false; }
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
      member->enter(self.promise().state());
      return false;
    }
    void await_resume() const noexcept {}
  };
  Enter enter() noexcept { return Enter{this}; }

  // The child threw: keeps the first exception and cancels the group.
  void fail(std::exception_ptr exception) noexcept;

  GroupMember* previous = nullptr;
  GroupMember* next = nullptr;
  TaskStateBase* task = nullptr;  // set by enter(), the child's own (spawned) task

 private:
  void enter(TaskStateBase& task) noexcept;
  GroupState* state_;
};

class GroupState {
 public:
  GroupState() noexcept;
  void add_ref() noexcept { references_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (references_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // A child is about to be spawned: counted (and referenced by its GroupMember) from now on.
  void child_spawned() noexcept;
  // Cancels every registered child and every child that registers from now on. Any thread.
  void cancel() noexcept;
  std::size_t live() noexcept;
  bool cancelled() noexcept;

  // join(): queues `joiner` (its coroutine and worker set) unless no child is live (then returns false:
  // do not suspend). On the joiner's worker.
  bool add_joiner(Waiter& joiner) noexcept;
  // The joiner's frame is destroyed while it waits (its worker's thread).
  void forget_joiner(Waiter& joiner) noexcept;
  // The first exception a child threw, taken (once).
  std::exception_ptr take_exception() noexcept;

 private:
  friend class GroupMember;
  ~GroupState() = default;
  void leave(GroupMember& member) noexcept;  // the child's frame is being destroyed (its worker's thread)

  std::atomic<std::size_t> references_{1};
  std::mutex mutex_;
  IntrusiveList<GroupMember, &GroupMember::previous, &GroupMember::next> members_;  // registered children
  std::size_t live_ = 0;      // spawned children whose frames still exist
  bool cancelled_ = false;
  std::exception_ptr first_exception_;
  WakeNodeList joiners_;      // the tasks awaiting join()
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_INTERNAL_GROUP_STATE_H_
