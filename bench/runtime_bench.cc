// Runtime overhead and loopback round trips on each backend, measured in one binary so that the backends
// are compared side by side (Google Benchmark; the backend is the first argument: 0 io_uring, 1 epoll).
//
//   bazel run -c opt //bench:runtime_bench -- --benchmark_repetitions=5 --benchmark_report_aggregates_only
//
// BM_SpawnJoin      spawn an empty task and await its JoinHandle
// BM_Yield          one co_await surge::yield()
// BM_EchoRoundTrip  client and echo server on the same worker over loopback TCP: one write_all + one
//                   read_exact of `size` bytes per iteration; counters: syscalls per round trip
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "examples/echo.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/worker.h"

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
  auto worker = make_worker(state);
  if (!worker) return;
  const auto size = static_cast<std::size_t>(state.range(1));
  BackendCounters before;
  auto outcome = worker->block_on([](benchmark::State& state, Worker& worker, std::size_t size,
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
    *before = worker.backend().counters();
    for (auto _ : state) {
      if (auto sent = co_await stream->write_all(message); !sent) co_return sent.error();
      if (auto received = co_await stream->read_exact(reply); !received) co_return received.error();
    }
    co_return ok();
  }(state, *worker, size, &before));
  if (!outcome) {
    state.SkipWithError(outcome.error().message().c_str());
    return;
  }
  const BackendCounters& after = worker->backend().counters();
  const double iterations = static_cast<double>(state.iterations());
  state.counters["syscalls/rt"] =
      static_cast<double>(after.wait_syscalls + after.io_syscalls - before.wait_syscalls - before.io_syscalls) /
      iterations;
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size) * 2);
}

BENCHMARK(BM_SpawnJoin)->ArgName("backend")->Arg(0)->Arg(1);
BENCHMARK(BM_Yield)->ArgName("backend")->Arg(0)->Arg(1);
BENCHMARK(BM_EchoRoundTrip)->ArgNames({"backend", "size"})->ArgsProduct({{0, 1}, {64, 4096}})->UseRealTime();

}  // namespace
}  // namespace surge

BENCHMARK_MAIN();
