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

GroupState::GroupState() noexcept {
  wake_.run = &run_wake;
  wake_.state = this;
}

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

bool GroupState::set_joiner(std::coroutine_handle<> joiner, Worker& worker) noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  if (live_ == 0) return false;
  joiner_ = joiner;
  joiner_worker_ = &worker;
  joiner_gone_ = false;
  return true;
}

void GroupState::forget_joiner() noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  if (joiner_ != nullptr) {
    joiner_ = nullptr;
  } else if (wake_pending_) {
    joiner_gone_ = true;
  }
}

std::exception_ptr GroupState::take_exception() noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  return std::exchange(first_exception_, nullptr);
}

void GroupState::leave(GroupMember& member) noexcept {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (member.task != nullptr) members_.remove(member);
    if (--live_ == 0 && joiner_ != nullptr) {
      const std::coroutine_handle<> joiner = std::exchange(joiner_, nullptr);
      if (joiner_worker_ == Worker::current()) {
        WorkerAccess::schedule(*joiner_worker_, joiner);
      } else {
        // Posted under the lock: the joiner's worker is alive while joiner_ is set (its frame, and so
        // the worker, would have cleared it first), and posting does not wait for the worker.
        wake_pending_ = true;
        wake_joiner_ = joiner;  // run_wake resumes it, unless it is gone meanwhile
        add_ref();              // the wake-up's
        WorkerAccess::post(*joiner_worker_, wake_);
      }
    }
  }
  release();  // the member's
}

void GroupState::run_wake(RemoteWork& work, Worker& worker) noexcept {
  GroupState& state = *static_cast<WakeNode&>(work).state;
  {
    std::lock_guard<std::mutex> guard(state.mutex_);
    state.wake_pending_ = false;
    if (!state.joiner_gone_) WorkerAccess::schedule(worker, state.wake_joiner_);
    state.joiner_gone_ = false;
    state.wake_joiner_ = nullptr;
  }
  state.release();
}

}  // namespace surge::internal
