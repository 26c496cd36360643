#include "runtime/internal/group_state.h"

#include <cstddef>
#include <utility>

#include "runtime/worker.h"

namespace surge::internal {

GroupMember::~GroupMember() {
  if (state_ != nullptr) state_->leave(*this);
}

void GroupMember::enter(TaskStateBase& self) noexcept {
  bool cancelled;
  {
    std::lock_guard<std::mutex> guard(state_->mutex_);
    task = &self;
    state_->members_.push_front(*this);
    cancelled = state_->cancelled_;
  }
  // On the child's own worker, while it runs: only marks its slot, so whatever it awaits next ends
  // with ECANCELED.
  if (cancelled) self.cancel_slot()->request();
}

void GroupMember::fail(std::exception_ptr exception) noexcept {
  {
    std::lock_guard<std::mutex> guard(state_->mutex_);
    if (!state_->first_exception_) state_->first_exception_ = std::move(exception);
  }
  state_->cancel();
}

GroupState::GroupState() noexcept = default;

void GroupState::child_spawned() noexcept {
  add_ref();  // the GroupMember's
  std::lock_guard<std::mutex> guard(mutex_);
  ++live_;
}

void GroupState::cancel() noexcept {
  // Requested outside the lock: a cancellation may run a handler at once (a child on this worker), and
  // that handler may reach this group again (a child cancelling its own group).
  std::vector<TaskStateBase*> running;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    cancelled_ = true;
    running.reserve(members_.size());
    members_.for_each([&](GroupMember& member) {
      member.task->add_ref();  // registered, so its frame (and its reference) still exists
      running.push_back(member.task);
    });
  }
  for (TaskStateBase* task : running) {
    task->request_cancel();
    task->release();
  }
}

std::size_t GroupState::live() noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  return live_;
}

bool GroupState::cancelled() noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  return cancelled_;
}

bool GroupState::add_joiner(Waiter& joiner) noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  if (live_ == 0) return false;
  joiner.state = WaitState::kQueued;
  joiners_.push_back(joiner);
  return true;
}

void GroupState::forget_joiner(Waiter& joiner) noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  if (joiner.state == WaitState::kQueued) {
    joiners_.remove(joiner);
  } else {
    // Woken from another thread: wait until the waker has listed it, then take it off that list.
    WorkerAccess::unlist_wake(*joiner.worker, joiner);
  }
  joiner.state = WaitState::kIdle;
}

std::exception_ptr GroupState::take_exception() noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  return std::exchange(first_exception_, nullptr);
}

void GroupState::leave(GroupMember& member) noexcept {
  {
    PendingWakes wakes;  // after the lock: a woken joiner may destroy the group (its reference) at once
    std::lock_guard<std::mutex> guard(mutex_);
    if (member.task != nullptr) members_.remove(member);
    if (--live_ == 0) {
      while (!joiners_.empty()) wakes.wake(as_waiter(joiners_.pop_front()));
    }
  }
  release();  // the member's
}

}  // namespace surge::internal
