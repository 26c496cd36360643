#include "runtime/internal/signal_hub.h"

#include <algorithm>
#include <cassert>

#include "runtime/worker.h"

namespace surge::internal {

SignalHub::SignalHub(std::size_t workers) : workers_(new PerWorker[workers]), worker_count_(workers) {
  for (std::size_t i = 0; i < workers; ++i) {
    workers_[i].hub = this;
    workers_[i].run = &run_fanout;
  }
}

int SignalHub::wait(SignalWaiter& waiter) noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  armed_.store(true, std::memory_order_release);
  if (kept_count_ > 0) {
    const int signal = kept_[0];
    std::copy(kept_.begin() + 1, kept_.begin() + static_cast<std::ptrdiff_t>(kept_count_), kept_.begin());
    --kept_count_;
    return signal;
  }
  waiter.state = SignalWaiter::State::kWaiting;
  waiting_.push_front(waiter);
  return 0;
}

bool SignalHub::cancel(SignalWaiter& waiter) noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  if (waiter.state != SignalWaiter::State::kWaiting) return false;
  waiting_.remove(waiter);
  waiter.state = SignalWaiter::State::kResumed;
  return true;
}

void SignalHub::forget(SignalWaiter& waiter) noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  if (waiter.state == SignalWaiter::State::kWaiting) {
    waiting_.remove(waiter);
  } else if (waiter.state == SignalWaiter::State::kWoken) {
    workers_[waiter.worker->index()].woken.remove(waiter);
  }
  waiter.state = SignalWaiter::State::kIdle;
}

void SignalHub::deliver(int signal) noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  if (waiting_.empty()) {
    if (std::find(kept_.begin(), kept_.begin() + static_cast<std::ptrdiff_t>(kept_count_), signal) ==
            kept_.begin() + static_cast<std::ptrdiff_t>(kept_count_) &&
        kept_count_ < kept_.size()) {
      kept_[kept_count_++] = signal;
    }
    return;
  }
  while (!waiting_.empty()) {
    SignalWaiter& waiter = *waiting_.front();
    waiting_.remove(waiter);
    waiter.signal = signal;
    waiter.state = SignalWaiter::State::kWoken;
    const std::size_t index = waiter.worker->index();
    assert(index < worker_count_);
    PerWorker& home = workers_[index];
    home.woken.push_front(waiter);
    // One node per worker, posted at most once at a time: posting is lock-free (the worker takes this
    // mutex only when the node runs), and the node lives as long as the hub, which outlives the workers.
    if (!home.posted) {
      home.posted = true;
      WorkerAccess::post(*waiter.worker, home);
    }
  }
}

void SignalHub::run_fanout(RemoteWork& work, Worker& worker) noexcept {
  auto& home = static_cast<PerWorker&>(work);
  std::lock_guard<std::mutex> guard(home.hub->mutex_);
  home.posted = false;
  while (!home.woken.empty()) {
    SignalWaiter& waiter = *home.woken.front();
    home.woken.remove(waiter);
    waiter.state = SignalWaiter::State::kResumed;
    WorkerAccess::schedule(worker, waiter.coroutine);  // only queues: nothing runs under the lock
  }
}

std::size_t SignalHub::kept() noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  return kept_count_;
}

std::size_t SignalHub::waiting() noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  return waiting_.size();
}

}  // namespace surge::internal
