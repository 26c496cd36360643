#include "runtime/worker.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <utility>
#include <vector>

namespace surge {
namespace {

thread_local Worker* current_worker = nullptr;

// How long one drain step waits for cancelled operations to report back before cancelling again.
constexpr std::chrono::milliseconds kDrainWaitStep{50};

}  // namespace

Result<std::unique_ptr<Worker>> Worker::create(const WorkerOptions& options) {
  auto backend = make_backend(options.backend, options.backend_options);
  if (!backend) return backend.error();
  return with_backend(std::move(*backend), options.spin_before_sleep);
}

std::unique_ptr<Worker> Worker::with_backend(std::unique_ptr<Backend> backend,
                                             std::chrono::nanoseconds spin_before_sleep) {
  return std::unique_ptr<Worker>(new Worker(std::move(backend), spin_before_sleep));
}

namespace {
// Every Worker alive in the process, for run_at_home() from threads that cannot know.
std::mutex& live_workers_lock() {
  static std::mutex lock;
  return lock;
}
// By address and by incarnation: a new Worker may be given a destroyed one's address.
struct LiveWorker {
  const Worker* worker;
  std::uint64_t incarnation;
  friend bool operator==(const LiveWorker&, const LiveWorker&) = default;
};
std::vector<LiveWorker>& live_workers() {
  static std::vector<LiveWorker> workers;
  return workers;
}
std::uint64_t next_incarnation = 1;  // guarded by live_workers_lock()

// What run_at_home() posts to a worker on another thread.
struct HomeWork : internal::RemoteWork {
  internal::WorkerAccess::HomeAction action = nullptr;
  std::uint64_t argument = 0;
};
}  // namespace

Worker::Worker(std::unique_ptr<Backend> backend, std::chrono::nanoseconds spin_before_sleep)
    : backend_(std::move(backend)), spin_before_sleep_(spin_before_sleep) {
  stop_work_.run = [](internal::RemoteWork&, Worker& worker) noexcept { worker.stop_requested_ = true; };
  wake_list_work_.run = [](internal::RemoteWork&, Worker& worker) noexcept {
    worker.wake_list_.drain([&worker](std::coroutine_handle<> coroutine) { worker.schedule(coroutine); });
  };
  std::lock_guard<std::mutex> guard(live_workers_lock());
  incarnation_ = next_incarnation++;
  live_workers().push_back({this, incarnation_});
}

Worker::~Worker() {
  // The tasks first, then the exit hooks (a Sharded<T>'s instances, which tasks may have used), with
  // this worker current and still registered, so that what they close finds its worker at home.
  shutdown();
  {
    Worker* const previous = std::exchange(current_worker, this);
    while (!exit_hooks_.empty()) {
      internal::WorkerExitHook& hook = *exit_hooks_.front();
      exit_hooks_.remove(hook);
      hook.run(hook, *this);
    }
    current_worker = previous;
  }
  {
    // From now on run_at_home() leaves this worker alone; what it posted before is drained below.
    std::lock_guard<std::mutex> guard(live_workers_lock());
    std::erase(live_workers(), LiveWorker{this, incarnation_});
  }
  shutdown();
  while (posts_in_progress_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

Worker* Worker::current() noexcept { return current_worker; }

namespace {
std::atomic<std::uint64_t> outlived_reports{0};
}  // namespace

std::uint64_t outlived_worker_reports() noexcept { return outlived_reports.load(std::memory_order_relaxed); }

void internal::WorkerAccess::report_outlived(const char* kind) noexcept {
  outlived_reports.fetch_add(1, std::memory_order_relaxed);
  // Once per kind: the kinds are string literals, so a few addresses remembered under a lock suffice.
  static std::mutex lock;
  static std::vector<const char*> reported;
  std::lock_guard<std::mutex> guard(lock);
  if (std::find(reported.begin(), reported.end(), kind) != reported.end()) return;
  reported.push_back(kind);
  std::fprintf(stderr,
               "surge: a %s outlived its worker (destroyed after the Worker or Runtime it belongs to); its fd "
               "was closed here. Drop such objects before their worker. Reported once per kind.\n",
               kind);
}

void Worker::run_until_stopped() {
  run_until([](const void* self) { return static_cast<const Worker*>(self)->stop_requested_; }, this, std::nullopt);
}

void Worker::request_stop() noexcept {
  if (!stop_posted_.exchange(true, std::memory_order_acq_rel)) post(stop_work_);
}

void Worker::post(internal::RemoteWork& work) noexcept {
  // Counted, because once the work is pushed the worker may run it, stop and be destroyed while this
  // call still reads the handshake and wakes the backend: the destructor waits for the count to drop.
  // The increment is ordered before the push (seq_cst), which the worker must see to run the work.
  begin_post();
  finish_post(work);
}

void Worker::finish_post(internal::RemoteWork& work) noexcept {
  inbox_.push(work);
  // The poster's half of the sleep/wake handshake (wake_handshake.h): the work is published above.
  // Coalesced: only the first poster after the worker fell asleep pays for the wake-up syscall.
  if (handshake_.should_wake()) {
    wakeups_.fetch_add(1, std::memory_order_relaxed);
    // From another worker's thread, its backend may send the wake-up itself (io_uring: MSG_RING).
    Worker* const sender = current_worker;
    if (sender != nullptr && sender != this) {
      backend_->wake_from(*sender->backend_);
    } else {
      backend_->wake();
    }
  }  // else awake (it will see the work at its next turn), or a wake-up is already on its way
  posts_in_progress_.fetch_sub(1, std::memory_order_release);
}

bool Worker::run_at_home(Worker* worker, std::uint64_t incarnation, HomeAction action,
                         std::uint64_t argument) noexcept {
  // Held while posting: the worker unregisters (under the same lock) before it drains its inbox for the
  // last time, so what is posted here always runs.
  std::lock_guard<std::mutex> guard(live_workers_lock());
  const auto& workers = live_workers();
  const auto found = std::find_if(workers.begin(), workers.end(), [&](const LiveWorker& live) {
    return live.worker == worker && (incarnation == 0 || live.incarnation == incarnation);
  });
  if (found == workers.end()) return false;
  if (worker->is_own_thread()) {
    action(*worker, argument);
    return true;
  }
  auto* work = new HomeWork();
  work->action = action;
  work->argument = argument;
  work->run = [](internal::RemoteWork& posted, Worker& home) noexcept {
    auto* home_work = static_cast<HomeWork*>(&posted);
    home_work->action(home, home_work->argument);
    delete home_work;
  };
  worker->post(*work);
  return true;
}

bool Worker::spin_for_posted_work() const noexcept {
  // Operations that wait for rare events (the Runtime's signalfd read) do not count: with one of those
  // always in flight, the worker would never spin and every hand-off to it would pay a wake-up syscall.
  if (spin_before_sleep_.count() <= 0 || backend_->in_flight() > background_operations_) return false;
  const auto until = Clock::now() + spin_before_sleep_;
  do {
    for (int i = 0; i < 64; ++i) {
      if (inbox_.maybe_nonempty()) return true;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();  // be polite to the sibling hyperthread while spinning
#endif
    }
  } while (Clock::now() < until);
  return false;
}

void Worker::sleep_in_backend(Backend::Timeout timeout) {
  // The worker's half of the handshake: a post the inbox check misses finds us asleep and wakes us.
  handshake_.begin_sleep();
  if (inbox_.empty()) backend_->poll(timeout);
  handshake_.end_sleep();
}

void Worker::run_posted_work() {
  if (!inbox_.maybe_nonempty()) return;  // a relaxed peek: the exchange below costs a locked instruction
  internal::RemoteWork* work = inbox_.take_all();
  while (work != nullptr) {
    internal::RemoteWork* next = work->next;  // `run` may end the item's lifetime
    work->run(*work, *this);
    work = next;
  }
}

bool Worker::run_until(bool (*done)(const void*), const void* context,
                       std::optional<Clock::time_point> deadline) {
  assert(!running_ && "block_on must not be called from inside a task");
  running_ = true;
  Worker* const previous = std::exchange(current_worker, this);
  bool finished = done(context);
  while (!finished) {
    // One turn: take posted work, fire due timers, resume what is ready, then collect I/O completions.
    run_posted_work();
    if (!timers_.empty()) timers_.advance(current_tick());
    run_ready_batch();
    // Low priority: one per turn while normal tasks wait, the whole batch when none do.
    for (std::size_t count = ready_.empty() ? low_priority_.size() : 1; count > 0 && !low_priority_.empty(); --count) {
      low_priority_.pop().resume();
    }
    finished = done(context);
    if (finished) break;
    if (deadline.has_value() && Clock::now() >= *deadline) break;
    if (ready_.empty() && low_priority_.empty()) {
      // Idle: sleep in the backend until I/O, a post, the next timer or the deadline.
      if (!spin_for_posted_work()) sleep_in_backend(wait_timeout(deadline));
    } else if (backend_->has_unsubmitted() || ++turns_without_poll_ >= kMaxTurnsWithoutPoll) {
      // Tasks are ready: only submit and collect what is there, without waiting. Skipped while there
      // is nothing to submit, for a few turns, because with DEFER_TASKRUN each look costs a syscall.
      turns_without_poll_ = 0;
      backend_->poll(std::chrono::nanoseconds::zero());
    }
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
  // Rounded up without adding first: deadline may be time_point::max() (a saturated "never").
  const auto since = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - origin_).count();
  return static_cast<std::uint64_t>(since / 1'000'000 + (since % 1'000'000 != 0 ? 1 : 0));
}

std::uint64_t Worker::current_tick() const noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - origin_).count());
}

void Worker::run_ready_batch() {
  // Only what is ready now: coroutines made ready by this batch wait for the next turn, after the
  // backend has been polled, so a task that keeps yielding cannot starve I/O completions or timers.
  for (std::size_t count = ready_.size(); count > 0 && !ready_.empty(); --count) ready_.pop().resume();
}

void Worker::adopt_root(internal::TaskStateBase& state) noexcept {
  roots_.push_front(state);
  if (state.adopt()) state.cancel_slot()->request();  // cancelled early
}

void Worker::adopt_posted_root(internal::RemoteWork& work, Worker& worker) noexcept {
  worker.pending_adoptions_.fetch_sub(1, std::memory_order_relaxed);
  internal::TaskStateBase& state = internal::TaskStateBase::from_adoption(work);
  worker.adopt_root(state);
  worker.schedule(std::coroutine_handle<>::from_address(state.frame_address()));
}

bool Worker::release_finished_root(internal::TaskStateBase& state) noexcept {
  state.worker()->roots_.remove(state);
  // Destroying a coroutine from its own final awaiter is allowed: it is suspended at this point. Its
  // block stays allocated (the caller holds the frame's reference), so `state` is still valid.
  std::coroutine_handle<>::from_address(state.frame_address()).destroy();
  return state.mark_finished();
}

void Worker::shutdown() noexcept {
  assert(!running_ && "shutdown() from inside a task would destroy the running frame");
  Worker* const previous = std::exchange(current_worker, this);
  draining_ = true;
  // No frame may be destroyed while the kernel, or a blocking-pool thread, could still write into a
  // buffer it holds: cancel, then wait until every operation and blocking call has reported back.
  // Cancel again each round, because a completion callback may have re-submitted (a retry after
  // EAGAIN). Posted work still runs (adopting tasks posted late, so they are destroyed below).
  for (;;) {
    run_posted_work();
    if (backend_->in_flight() == 0 && blocking_calls_ == 0) break;
    backend_->cancel_all();
    sleep_in_backend(kDrainWaitStep);
  }
  ready_.clear();
  low_priority_.clear();
  while (!roots_.empty()) {
    internal::TaskStateBase& state = *roots_.front();
    roots_.remove(state);
    // Destroys the whole chain of frames this task awaits; their destructors close sockets.
    std::coroutine_handle<>::from_address(state.frame_address()).destroy();
    // After the frame: waking a waiter reuses the storage of the task's cancel slot, which the frame's
    // awaiters may still touch while they are destroyed.
    state.abandon();
    state.release();  // the frame's reference; the handle may still hold the block
  }
  draining_ = false;
  background_operations_ = 0;  // their tasks were destroyed without resuming
  current_worker = previous;
}

}  // namespace surge
