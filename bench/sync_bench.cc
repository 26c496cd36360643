// sync_bench: surge's row of bench/sync_compare.py (the protocol is written down at the top of that file):
//
//   sync_bench --workload=NAME --ops=N [--backend=io_uring|epoll|auto]
//
// One-thread workloads run in one task on a standalone Worker on the calling thread, pinned to CPU 0.
// Two-thread workloads run on a 2-worker Runtime with worker i pinned to CPU i: producers on worker 0, the
// consumer on worker 1; mutex_contended puts two of its four tasks on each worker. The primitives are the
// public //sync ones, the same a service uses (thread-safe, also on one worker).
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "bench/peers/sync_protocol.h"
#include "runtime/runtime.h"
#include "runtime/worker.h"
#include "sync/channel.h"
#include "sync/mutex.h"
#include "sync/oneshot.h"
#include "sync/semaphore.h"

ABSL_FLAG(std::string, backend, "auto", "the workers' backend: io_uring, epoll or auto");

namespace surge::bench {
namespace {

BackendChoice backend_choice() {
  const std::string name = absl::GetFlag(FLAGS_backend);
  if (name == "io_uring") return BackendChoice::kIoUring;
  if (name == "epoll") return BackendChoice::kEpoll;
  return BackendChoice::kAuto;
}

using Body = Task<void> (*)(std::uint64_t ops);

Task<void> channel_round_trips(std::uint64_t ops, bool bounded) {
  auto [tx, rx] = bounded ? channel<std::uint64_t>(kBoundedCapacity) : unbounded_channel<std::uint64_t>();
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < ops; ++i) {
    if (!(co_await tx.send(std::uint64_t{i})).ok()) std::abort();
    auto value = co_await rx.recv();
    sum += *value;
  }
  if (sum != ops * (ops - 1) / 2) std::abort();
}
Task<void> channel_bounded(std::uint64_t ops) { return channel_round_trips(ops, true); }
Task<void> channel_unbounded(std::uint64_t ops) { return channel_round_trips(ops, false); }

Task<void> oneshots(std::uint64_t ops) {
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < ops; ++i) {
    auto [tx, rx] = oneshot<std::uint64_t>();
    if (!std::move(tx).send(std::uint64_t{i}).ok()) std::abort();
    sum += *(co_await rx.recv());
  }
  if (sum != ops * (ops - 1) / 2) std::abort();
}

Task<void> mutex_uncontended(std::uint64_t ops) {
  Mutex mutex;
  for (std::uint64_t i = 0; i < ops; ++i) {
    auto guard = co_await mutex.lock();
    if (!guard) std::abort();
  }
}

Task<void> semaphore(std::uint64_t ops) {
  Semaphore permits(1);
  for (std::uint64_t i = 0; i < ops; ++i) {
    auto permit = co_await permits.acquire();
    if (!permit) std::abort();
  }
}

void run_on_one_worker(const SyncArgs& args, Body body) {
  pin_current_thread(0);
  auto worker = Worker::create({.backend = backend_choice()});
  if (!worker) {
    std::fprintf(stderr, "sync_bench: %s\n", worker.error().message().c_str());
    std::exit(1);
  }
  (*worker)->block_on(body(warmup_ops(args.ops)));
  const Stopwatch watch;
  (*worker)->block_on(body(args.ops));
  print_result("surge", args.workload, args.ops, watch);
}

// --- Two workers ---

Task<void> produce(Sender<std::uint64_t> tx, std::uint64_t first, std::uint64_t count) {
  for (std::uint64_t i = first; i < first + count; ++i) {
    if (!(co_await tx.send(std::uint64_t{i})).ok()) std::abort();
  }
}

Task<std::uint64_t> consume(Receiver<std::uint64_t> rx) {
  std::uint64_t sum = 0;
  for (;;) {
    auto value = co_await rx.recv();
    if (!value) co_return sum;
    sum += *value;
  }
}

Task<void> lock_loop(Mutex& mutex, std::uint64_t& counter, std::uint64_t ops) {
  for (std::uint64_t i = 0; i < ops; ++i) {
    auto guard = co_await mutex.lock();
    if (!guard) std::abort();
    ++counter;
  }
}

// One run of a two-worker workload; returns how many operations it did.
std::uint64_t run_cross(Runtime& runtime, const std::string& workload, std::uint64_t ops) {
  if (workload == "mutex_contended") {
    Mutex mutex;
    std::uint64_t counter = 0;
    const std::uint64_t each = ops / 4;
    std::vector<JoinHandle<void>> tasks;
    for (int t = 0; t < 4; ++t) tasks.push_back(runtime.spawn_on(t % 2, lock_loop(mutex, counter, each)));
    runtime.block_on([](std::vector<JoinHandle<void>> tasks) -> Task<void> {
      for (auto& task : tasks) co_await std::move(task);
    }(std::move(tasks)));
    if (counter != each * 4) std::abort();
    return each * 4;
  }
  const int producers = workload == "channel_cross_4p" ? 4 : 1;
  const std::uint64_t each = ops / producers;
  auto [tx, rx] = channel<std::uint64_t>(kBoundedCapacity);
  auto consumer = runtime.spawn_on(1, consume(std::move(rx)));
  for (int p = 0; p < producers; ++p) (void)runtime.spawn_on(0, produce(tx, p * each, each));
  { auto dropped = std::move(tx); }  // the producers hold the only senders: the channel ends with them
  const std::uint64_t total = each * producers;
  const std::uint64_t sum = runtime.block_on([](JoinHandle<std::uint64_t> consumer) -> Task<std::uint64_t> {
    co_return co_await std::move(consumer);
  }(std::move(consumer)));
  if (sum != total * (total - 1) / 2) std::abort();
  return total;
}

void run_on_two_workers(const SyncArgs& args) {
  auto runtime = Runtime::create({.workers = 2, .pin_workers = true, .worker = {.backend = backend_choice()}});
  if (!runtime) {
    std::fprintf(stderr, "sync_bench: %s\n", runtime.error().message().c_str());
    std::exit(1);
  }
  (void)run_cross(**runtime, args.workload, std::min<std::uint64_t>(4 * warmup_ops(args.ops), args.ops));
  const Stopwatch watch;
  const std::uint64_t done = run_cross(**runtime, args.workload, args.ops);
  print_result("surge", args.workload, done, watch);
}

}  // namespace
}  // namespace surge::bench

int main(int argc, char** argv) {
  using namespace surge::bench;
  const SyncArgs args = parse_sync_args(argc, argv,
                                        "surge's coordination primitives for bench/sync_compare.py: "
                                        "sync_bench --workload=NAME --ops=N [--backend=io_uring|epoll|auto]");
  const std::string& workload = args.workload;
  if (workload == "channel_bounded") {
    run_on_one_worker(args, &channel_bounded);
  } else if (workload == "channel_unbounded") {
    run_on_one_worker(args, &channel_unbounded);
  } else if (workload == "oneshot") {
    run_on_one_worker(args, &oneshots);
  } else if (workload == "mutex_uncontended") {
    run_on_one_worker(args, &mutex_uncontended);
  } else if (workload == "semaphore") {
    run_on_one_worker(args, &semaphore);
  } else if (workload == "channel_cross_1p" || workload == "channel_cross_4p" || workload == "mutex_contended") {
    run_on_two_workers(args);
  } else {
    return kWorkloadNotOffered;
  }
  return 0;
}
