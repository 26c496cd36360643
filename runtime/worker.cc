#include "runtime/worker.h"

#include <utility>

namespace surge {
namespace {

thread_local Worker* current_worker = nullptr;

// How long one drain step waits for cancelled operations to report back before cancelling again.
constexpr std::chrono::milliseconds kDrainWaitStep{50};

}  // namespace

Result<std::unique_ptr<Worker>> Worker::create(const WorkerOptions& options) {
  auto backend = make_backend(options.backend, options.backend_options);
  if (!backend) return backend.error();
  return with_backend(std::move(*backend));
}

std::unique_ptr<Worker> Worker::with_backend(std::unique_ptr<Backend> backend) {
  return std::unique_ptr<Worker>(new Worker(std::move(backend)));
}

Worker::Worker(std::unique_ptr<Backend> backend) : backend_(std::move(backend)) {}

Worker::~Worker() { shutdown(); }

Worker* Worker::current() noexcept { return current_worker; }

bool Worker::run_until(bool (*done)(const void*), const void* context,
                       std::optional<Clock::time_point> deadline) {
  assert(!running_ && "block_on must not be called from inside a task");
  running_ = true;
  Worker* const previous = std::exchange(current_worker, this);
  bool finished = done(context);
  while (!finished) {
    // One turn: fire due timers, resume what is ready, then collect I/O completions.
    if (!timers_.empty()) timers_.advance(current_tick());
    run_ready_batch();
    finished = done(context);
    if (finished) break;
    if (deadline.has_value() && Clock::now() >= *deadline) break;
    // Ready work: only collect what is there. Idle: sleep in the backend until I/O, a wake-up, the next
    // timer or the deadline.
    backend_->poll(ready_.empty() ? wait_timeout(deadline) : std::chrono::nanoseconds::zero());
  }
  current_worker = previous;
  running_ = false;
  return finished;
}

Backend::Timeout Worker::wait_timeout(std::optional<Clock::time_point> deadline) const {
  std::optional<Clock::time_point> wake_at = deadline;
  if (const std::optional<std::uint64_t> next_timer = timers_.next_event_tick()) {
    const Clock::time_point timer_at = origin_ + std::chrono::milliseconds(*next_timer);
    if (!wake_at || timer_at < *wake_at) wake_at = timer_at;
  }
  if (!wake_at) return std::nullopt;
  const auto remaining = std::chrono::duration_cast<std::chrono::nanoseconds>(*wake_at - Clock::now());
  return remaining > std::chrono::nanoseconds::zero() ? remaining : std::chrono::nanoseconds::zero();
}

std::uint64_t Worker::tick_at_or_after(Clock::time_point deadline) const noexcept {
  if (deadline <= origin_) return 0;
  const auto since = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - origin_).count();
  return static_cast<std::uint64_t>((since + 999'999) / 1'000'000);
}

std::uint64_t Worker::current_tick() const noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - origin_).count());
}

void Worker::run_ready_batch() {
  // Only what is ready now: coroutines made ready by this batch wait for the next turn, after the
  // backend has been polled, so a task that keeps yielding cannot starve I/O completions.
  for (std::size_t count = ready_.size(); count > 0 && !ready_.empty(); --count) ready_.pop().resume();
}

void Worker::adopt_root(internal::RootPromise& promise, internal::JoinStateBase* state) noexcept {
  promise.worker = this;
  promise.join_state = state;
  state->set_task_slot(&promise.slot);
  roots_.push_front(promise);
}

void internal::release_finished_root(internal::RootPromise& promise) noexcept {
  promise.worker->roots_.remove(promise);
  promise.join_state->release();
  // Destroying a coroutine from its own final awaiter is allowed: it is suspended at this point.
  std::coroutine_handle<internal::RootPromise>::from_promise(promise).destroy();
}

void Worker::shutdown() noexcept {
  assert(!running_ && "shutdown() from inside a task would destroy the running frame");
  Worker* const previous = std::exchange(current_worker, this);
  draining_ = true;
  // No frame may be destroyed while the kernel could still write into a buffer it holds: cancel, then
  // wait until every operation has reported back. Cancel again each round, because a completion
  // callback may have re-submitted (for example a retry after EAGAIN).
  while (backend_->in_flight() > 0) {
    backend_->cancel_all();
    backend_->poll(kDrainWaitStep);
  }
  ready_.clear();
  while (!roots_.empty()) {
    internal::RootPromise& promise = *roots_.front();
    roots_.remove(promise);
    promise.join_state->abandon();
    promise.join_state->release();
    // Destroys the whole chain of frames this task awaits; their destructors close sockets.
    std::coroutine_handle<internal::RootPromise>::from_promise(promise).destroy();
  }
  draining_ = false;
  current_worker = previous;
}

}  // namespace surge
