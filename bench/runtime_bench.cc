// Runtime overhead and loopback round trips on each backend, measured in one binary so that the backends
// are compared side by side (Google Benchmark; the backend is the first argument: 0 io_uring, 1 epoll).
//
//   bazel run -c opt //bench:runtime_bench -- --benchmark_repetitions=5 --benchmark_report_aggregates_only
//
// BM_SpawnJoin      spawn an empty task and await its JoinHandle
// BM_Yield          one co_await surge::yield()
// BM_EchoRoundTrip  client and echo server on the same worker over loopback TCP: one write_all and
//                   reads until `size` bytes are back, per iteration; counters: syscalls per round trip;
//                   timeout: deadline on each read (1 linked timeout, 2 timer wheel, 3 when_any + sleep)
// BM_CrossWorkerRoundTrip  a task on worker 0 spawns a task on (sleeping) worker 1 and awaits it: two
//                   cross-thread hand-offs per iteration; msg_ring: 1 = io_uring MSG_RING, 0 = eventfd;
//                   spin_us: WorkerOptions::spin_before_sleep
// BM_TimerInsertCancel  one insert and one cancel on a worker's timer wheel (backend-independent)
// BM_SleepCancelled     a sleep that is started and cancelled (timer, CancelSlot, resumption)
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench/benchmark_flags.h"
#include "examples/echo.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/runtime.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "runtime/worker.h"
#include "timer/timer_wheel.h"

namespace surge {
namespace {

BackendChoice backend_of(const benchmark::State& state) {
  return state.range(0) == 0 ? BackendChoice::kIoUring : BackendChoice::kEpoll;
}

// Creates the worker for the benchmark's backend, or marks the benchmark skipped with the reason.
std::unique_ptr<Worker> make_worker(benchmark::State& state) {
  auto worker = Worker::create({.backend = backend_of(state)});
  if (!worker) {
    state.SkipWithError(("backend unavailable: " + worker.error().message()).c_str());
    return nullptr;
  }
  state.SetLabel(backend_name((*worker)->backend_kind()));
  return std::move(*worker);
}

Task<void> empty_task() { co_return; }

void BM_SpawnJoin(benchmark::State& state) {
  auto worker = make_worker(state);
  if (!worker) return;
  worker->block_on([](benchmark::State& state, Worker& worker) -> Task<void> {
    for (auto _ : state) co_await worker.spawn(empty_task());
  }(state, *worker));
  state.SetItemsProcessed(state.iterations());
}

void BM_Yield(benchmark::State& state) {
  auto worker = make_worker(state);
  if (!worker) return;
  worker->block_on([](benchmark::State& state) -> Task<void> {
    for (auto _ : state) co_await yield();
  }(state));
  state.SetItemsProcessed(state.iterations());
}

void BM_EchoRoundTrip(benchmark::State& state) {
  // timeout: 0 none, 1 a deadline on every read as an io_uring linked timeout SQE (epoll: the wheel),
  // 2 the same through the timer wheel (the default), 3 timeout() around a Task (when_any + sleep).
  const int timeout_mode = static_cast<int>(state.range(2));
  WorkerOptions options;
  options.backend = backend_of(state);
  options.backend_options.allow_linked_timeouts = timeout_mode == 1;
  auto created = Worker::create(options);
  if (!created) {
    state.SkipWithError(("backend unavailable: " + created.error().message()).c_str());
    return;
  }
  std::unique_ptr<Worker> worker = std::move(*created);
  state.SetLabel(backend_name(worker->backend_kind()));
  const auto size = static_cast<std::size_t>(state.range(1));
  BackendCounters before;
  auto outcome = worker->block_on([](benchmark::State& state, Worker& worker, std::size_t size, int timeout_mode,
                                     BackendCounters* before) -> Task<Result<void>> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    if (!listener) co_return listener.error();
    auto address = *listener->local_addr();
    (void)worker.spawn(examples::serve_echo(std::move(*listener)));
    auto stream = co_await TcpStream::connect(address);
    if (!stream) co_return stream.error();
    (void)stream->set_nodelay(true);
    std::vector<char> message(size, 'e');
    std::vector<char> reply(size);
    *before = worker.counters();
    auto read_some = [](TcpStream& s, MutableBuffer into) -> Task<Result<std::size_t>> { co_return co_await s.read(into); };
    for (auto _ : state) {
      if (auto sent = co_await stream->write_all(message); !sent) co_return sent.error();
      for (std::size_t got = 0; got < size;) {
        const MutableBuffer rest(reply.data() + got, size - got);
        // (Plain statements: gcc 12 mishandles co_await inside a conditional expression.)
        Result<std::size_t> n = Error(EINVAL, "unset");
        if (timeout_mode == 0) {
          n = co_await stream->read(rest);
        } else if (timeout_mode == 3) {
          n = co_await timeout(std::chrono::seconds(5), read_some(*stream, rest));
        } else {
          n = co_await timeout(std::chrono::seconds(5), stream->read(rest));
        }
        if (!n) co_return n.error();
        if (*n == 0) co_return Error(ECONNRESET, "echo closed");
        got += *n;
      }
    }
    co_return ok();
  }(state, *worker, size, timeout_mode, &before));
  if (!outcome) {
    state.SkipWithError(outcome.error().message().c_str());
    return;
  }
  const BackendCounters& after = worker->counters();
  const double iterations = static_cast<double>(state.iterations());
  state.counters["syscalls/rt"] =
      static_cast<double>(after.wait_syscalls + after.io_syscalls - before.wait_syscalls - before.io_syscalls) /
      iterations;
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size) * 2);
}

void BM_CrossWorkerRoundTrip(benchmark::State& state) {
  RuntimeOptions options;
  options.workers = 2;
  options.worker.backend = backend_of(state);
  options.worker.backend_options.allow_msg_ring = state.range(1) != 0;
  options.worker.spin_before_sleep = std::chrono::microseconds(state.range(2));
  auto runtime = Runtime::create(options);
  if (!runtime) {
    state.SkipWithError(("backend unavailable: " + runtime.error().message()).c_str());
    return;
  }
  state.SetLabel(backend_name((*runtime)->worker(0).backend_kind()));
  (*runtime)->block_on([](benchmark::State& state, Runtime& runtime) -> Task<void> {
    for (auto _ : state) co_await runtime.spawn_on(1, empty_task());
  }(state, **runtime));
  state.SetItemsProcessed(state.iterations());
}

void noop_timer(void*) noexcept {}

void BM_TimerInsertCancel(benchmark::State& state) {
  TimerWheel wheel(0);
  std::uint64_t now = 0;
  for (auto _ : state) {
    const TimerId id = wheel.insert(now + 30'000, &noop_timer, nullptr);  // a 30 s deadline: level 2
    benchmark::DoNotOptimize(wheel.cancel(id));
    ++now;
    if ((now & 1023) == 0) wheel.advance(now);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_SleepCancelled(benchmark::State& state) {
  auto worker = make_worker(state);
  if (!worker) return;
  worker->block_on([](benchmark::State& state) -> Task<void> {
    for (auto _ : state) {
      // A when_any would add branch frames; this measures the sleep itself: arm, cancel, resume.
      auto sleeper = Worker::current()->spawn([]() -> Task<Result<void>> { co_return co_await sleep_for(std::chrono::seconds(30)); }());
      co_await yield();  // let it arm its timer
      sleeper.cancel();
      (void)co_await std::move(sleeper);
    }
  }(state));
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_SpawnJoin)->ArgName("backend")->Arg(0)->Arg(1);
BENCHMARK(BM_Yield)->ArgName("backend")->Arg(0)->Arg(1);
BENCHMARK(BM_EchoRoundTrip)
    ->ArgNames({"backend", "size", "timeout"})
    ->ArgsProduct({{0, 1}, {64, 4096}, {0}})
    ->ArgsProduct({{0, 1}, {64}, {1, 2, 3}})
    ->UseRealTime();
BENCHMARK(BM_CrossWorkerRoundTrip)
    ->ArgNames({"backend", "msg_ring", "spin_us"})
    ->Args({0, 1, 0})
    ->Args({0, 0, 0})
    ->Args({1, 0, 0})
    ->Args({0, 1, 20})
    ->Args({1, 0, 20})
    ->UseRealTime();
BENCHMARK(BM_TimerInsertCancel);
BENCHMARK(BM_SleepCancelled)->ArgName("backend")->Arg(0)->Arg(1);

}  // namespace
}  // namespace surge

int main(int argc, char** argv) {
  surge::bench::parse_benchmark_command_line(
      argc, argv,
      "runtime overhead (spawn, yield, timers, cross-worker hand-offs) and loopback echo round trips on "
      "each backend, side by side in one Google Benchmark run. It has no flags of its own: every Google "
      "Benchmark flag works (--benchmark_filter=REGEX, --benchmark_repetitions=N, "
      "--benchmark_min_time=SECONDS, --benchmark_out=FILE, --benchmark_out_format=json, ...).\n"
      "Usage: runtime_bench [--benchmark_...]");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
