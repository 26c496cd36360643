#include "runtime/runtime.h"

#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <future>

#include "runtime/signal_set.h"
#include "runtime/time.h"

namespace surge {
namespace {

// The CPUs this process may run on, in order.
std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

// Before any task has awaited ctrl_c(), a signal gets what it would have got without the Runtime: its
// disposition (the default, terminate, for SIGINT/SIGTERM/SIGHUP; or the process's own handler). Raised
// at this thread, where it is blocked, then unblocked: it is delivered here and now. If that returns (a
// handler ran), the signal is blocked again and reading goes on.
void take_default_action(int signal_number) noexcept {
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signal_number);
  raise(signal_number);
  pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  pthread_sigmask(SIG_BLOCK, &one, nullptr);
}

// Reads the Runtime's signalfd on worker 0 for as long as the Runtime runs (shutdown destroys it, and
// the SignalSet closes the fd on worker 0's thread).
Task<void> read_signals(internal::SignalHub* hub, SignalSet signals) {
  for (;;) {
    Worker& here = *Worker::current();
    internal::WorkerAccess::background_operation(here, +1);  // in flight for as long as no signal comes
    Result<int> signal = co_await signals.wait();
    internal::WorkerAccess::background_operation(here, -1);
    if (!signal) {
      if (signal.error().is_cancelled()) co_return;  // the shutdown
      // Not expected from a signalfd; keep reading (later ctrl_c() calls must not hang), without spinning.
      (void)co_await sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (hub->armed()) {
      hub->deliver(*signal);
    } else {
      take_default_action(*signal);
    }
  }
}

}  // namespace

Result<std::unique_ptr<Runtime>> Runtime::create(const RuntimeOptions& options) {
  const std::vector<int> cpus = allowed_cpus();
  const std::size_t count = options.workers != 0 ? options.workers : cpus.size();
  sigset_t signals;
  sigemptyset(&signals);
  for (const int signal_number : options.signals) {
    if (sigaddset(&signals, signal_number) < 0) return Error(errno, "Runtime::create: sigaddset");
  }
  // Every thread started below (blocking pool, workers) inherits the blocked signals; the caller's own
  // mask is restored when this returns.
  SignalMaskGuard masked(signals);
  std::unique_ptr<Runtime> runtime(new Runtime(options.blocking_threads, signals));
  runtime->all_stopped_ = std::make_unique<std::barrier<>>(static_cast<std::ptrdiff_t>(count));
  runtime->all_drained_ = std::make_unique<std::barrier<>>(static_cast<std::ptrdiff_t>(count));

  // Each worker is created on its own thread: an io_uring ring set up for a single issuer belongs to
  // the thread that created it.
  std::vector<std::promise<Result<Worker*>>> started(count);
  for (std::size_t i = 0; i < count; ++i) {
    runtime->threads_.emplace_back([runtime = runtime.get(), i, &options, &started, &cpus] {
      if (options.pin_workers) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpus[i % cpus.size()], &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
      }
      runtime->run_worker(options, i, &started[i]);
    });
  }
  std::optional<Error> failure;
  for (auto& promise : started) {
    Result<Worker*> worker = promise.get_future().get();
    if (worker) {
      runtime->workers_.push_back(*worker);
    } else if (!failure) {
      failure = worker.error();
    }
  }
  if (failure) {
    runtime->shutdown();  // the workers that did start stop again; the failed threads have exited
    return *failure;
  }
  if (!options.signals.empty()) {
    // The signalfd reads what is pending for the process (or for worker 0's thread), whichever thread
    // opened it; it is created here so that a failure fails create().
    auto signal_set = SignalSet::create(*runtime->workers_[0], signals);
    if (!signal_set) {
      runtime->shutdown();
      return signal_set.error();
    }
    runtime->signal_hub_ = std::make_unique<internal::SignalHub>();
    (void)runtime->spawn_on(0, read_signals(runtime->signal_hub_.get(), std::move(*signal_set)));
  }
  return runtime;
}

void Runtime::run_worker(const RuntimeOptions& options, std::size_t index, std::promise<Result<Worker*>>* started) {
  auto created = Worker::create(options.worker);
  if (!created) {
    started->set_value(created.error());
    // Still take part in the shutdown phases, so the workers that did start are not left waiting.
    all_stopped_->arrive_and_wait();
    all_drained_->arrive_and_wait();
    return;
  }
  std::unique_ptr<Worker> worker = std::move(*created);
  internal::WorkerAccess::set_blocking_pool(*worker, &blocking_pool_);
  internal::WorkerAccess::set_runtime(*worker, this, index);  // published with started->set_value
  started->set_value(worker.get());
  worker->run_until_stopped();
  // Phase 1: every loop has stopped, so no task finishes (and posts to another worker) any more.
  all_stopped_->arrive_and_wait();
  worker->shutdown();
  // Phase 2: every worker has drained; now none can be posted to, and each may be destroyed.
  all_drained_->arrive_and_wait();
}

void Runtime::shutdown() {
  if (shut_down_.exchange(true, std::memory_order_seq_cst)) return;
  assert(Worker::current() == nullptr && "shutdown from inside a worker's loop would join its own thread");
  // The shutdown half of SpawnGate's handshake (runtime.h): spawns admitted before shut_down_ was set
  // finish posting their tasks first, so the workers adopt them (and destroy them when they drain).
  while (spawns_in_progress_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  for (Worker* worker : workers_) worker->request_stop();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  workers_.clear();
}

Runtime::~Runtime() { shutdown(); }

}  // namespace surge
