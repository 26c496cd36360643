// asio_sync_bench: the Boost.Asio 1.81 peer of bench/sync_compare.py for coordination primitives, written
// with C++20 coroutines (awaitable, use_awaitable) the way Asio's channel examples are. Protocol at the top
// of bench/sync_compare.py:
//
//   asio_sync_bench --workload=NAME --ops=N
//
// Asio has channels and nothing else of the kind (no async mutex, semaphore or oneshot), so it offers:
//   channel_bounded     one io_context on one thread (CPU 0), one coroutine: async_send then async_receive
//                       on an experimental::channel of capacity 1024.
//   channel_unbounded   the same with capacity SIZE_MAX: Asio's channels have no unbounded mode, but the
//                       buffer (a std::deque) grows on demand, so that channel never makes a sender wait.
//   oneshot             a fresh experimental::channel of capacity 1 per operation, sent to and received
//                       from once (what Asio code uses for a one-shot hand-over; reported with a "note").
//   channel_cross_1p/4p an experimental::concurrent_channel of capacity 1024; the producer coroutines run on
//                       an io_context run by a thread pinned to CPU 0, the consumer on another pinned to
//                       CPU 1; the channel's executor is the consumer's.
// mutex_uncontended, semaphore and mutex_contended (and any other name) exit 3: not offered.
#include <boost/asio.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <thread>

#include "absl/strings/str_cat.h"
#include "bench/peers/sync_protocol.h"

namespace surge::bench {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using Channel = asio::experimental::channel<void(error_code, std::uint64_t)>;
using ConcurrentChannel = asio::experimental::concurrent_channel<void(error_code, std::uint64_t)>;

// ---- one thread, one coroutine --------------------------------------------------------------------------

asio::awaitable<void> send_receive_loop(Channel& channel, std::uint64_t ops, std::uint64_t& sum) {
  for (std::uint64_t i = 0; i < ops; ++i) {
    co_await channel.async_send(error_code{}, i, asio::use_awaitable);
    sum += co_await channel.async_receive(asio::use_awaitable);
  }
}

asio::awaitable<void> oneshot_loop(std::uint64_t ops, std::uint64_t& sum) {
  const auto executor = co_await asio::this_coro::executor;
  for (std::uint64_t i = 0; i < ops; ++i) {
    Channel channel(executor, 1);
    co_await channel.async_send(error_code{}, i, asio::use_awaitable);
    sum += co_await channel.async_receive(asio::use_awaitable);
  }
}

asio::awaitable<void> one_thread_workload(const std::string& workload, std::uint64_t ops, std::uint64_t& sum) {
  const auto executor = co_await asio::this_coro::executor;
  if (workload == "oneshot") {
    co_await oneshot_loop(ops, sum);
  } else {
    Channel channel(executor, workload == "channel_bounded" ? kBoundedCapacity
                                                             : std::numeric_limits<std::size_t>::max());
    co_await send_receive_loop(channel, ops, sum);
  }
}

asio::awaitable<void> one_thread_run(const std::string& workload, std::uint64_t ops) {
  std::uint64_t sum = 0;
  co_await one_thread_workload(workload, warmup_ops(ops), sum);
  const Stopwatch watch;
  co_await one_thread_workload(workload, ops, sum);
  const double seconds = watch.wall_seconds();
  const double cpu = watch.cpu_seconds();
  if (sum == 0 && ops > 1) std::abort();  // keeps `sum` alive; never true
  print_result("asio", workload, ops, seconds, cpu,
               workload == "oneshot" ? ", \"note\": \"no oneshot in Asio: a fresh channel of capacity 1 per op\""
                                     : (workload == "channel_unbounded" ? ", \"note\": \"capacity SIZE_MAX\"" : ""));
}

void run_one_thread(const std::string& workload, std::uint64_t ops) {
  pin_current_thread(0);
  asio::io_context context(1);  // concurrency hint: one thread runs it
  asio::co_spawn(context, one_thread_run(workload, ops), [](std::exception_ptr error) {
    if (error) std::rethrow_exception(error);
  });
  context.run();
}

// ---- two threads ----------------------------------------------------------------------------------------

asio::awaitable<void> produce(ConcurrentChannel& channel, std::uint64_t messages) {
  for (std::uint64_t i = 0; i < messages; ++i) co_await channel.async_send(error_code{}, i, asio::use_awaitable);
}

asio::awaitable<void> consume(ConcurrentChannel& channel, std::uint64_t messages, std::uint64_t& sum) {
  for (std::uint64_t i = 0; i < messages; ++i) sum += co_await channel.async_receive(asio::use_awaitable);
}

struct Timing {
  double seconds;
  double cpu_seconds;
};

// `producers` coroutines on CPU 0 send `per_producer` messages each; one coroutine on CPU 1 receives them.
Timing cross_once(int producers, std::uint64_t per_producer) {
  asio::io_context producer_context(1);
  asio::io_context consumer_context(1);
  ConcurrentChannel channel(consumer_context.get_executor(), kBoundedCapacity);
  std::uint64_t sum = 0;
  const auto rethrow = [](std::exception_ptr error) {
    if (error) std::rethrow_exception(error);
  };
  asio::co_spawn(consumer_context, consume(channel, per_producer * producers, sum), rethrow);
  for (int p = 0; p < producers; ++p) asio::co_spawn(producer_context, produce(channel, per_producer), rethrow);
  const Stopwatch watch;
  std::thread producer_thread([&] {
    pin_current_thread(0);
    producer_context.run();
  });
  std::thread consumer_thread([&] {
    pin_current_thread(1);
    consumer_context.run();
  });
  producer_thread.join();
  consumer_thread.join();
  const Timing timing{watch.wall_seconds(), watch.cpu_seconds()};
  const std::uint64_t per = per_producer;
  if (sum != static_cast<std::uint64_t>(producers) * (per * (per - 1) / 2)) {
    std::fprintf(stderr, "asio_sync_bench: the consumer received the wrong messages\n");
    std::exit(1);
  }
  return timing;
}

void run_cross(const std::string& workload, int producers, std::uint64_t ops) {
  pin_current_thread(0);  // the main thread only waits
  const std::uint64_t per_producer = std::max<std::uint64_t>(ops / producers, 1);
  cross_once(producers, std::max<std::uint64_t>(warmup_ops(ops) * 4 / producers, 1));
  const Timing timing = cross_once(producers, per_producer);
  print_result("asio", workload, per_producer * producers, timing.seconds, timing.cpu_seconds);
}

int main_impl(int argc, char** argv) {
  const SyncArgs args = parse_sync_args(
      argc, argv,
      "the Boost.Asio 1.81 peer of bench/sync_compare.py (experimental::channel, concurrent_channel, C++20 "
      "coroutines): runs one workload once and prints one JSON line; a workload Asio does not offer "
      "(mutex_uncontended, semaphore, mutex_contended) exits 3.\n"
      "Usage: asio_sync_bench --workload=NAME --ops=N");
  const std::string& workload = args.workload;
  if (workload == "channel_bounded" || workload == "channel_unbounded" || workload == "oneshot") {
    run_one_thread(workload, args.ops);
  } else if (workload == "channel_cross_1p") {
    run_cross(workload, 1, args.ops);
  } else if (workload == "channel_cross_4p") {
    run_cross(workload, 4, args.ops);
  } else {
    return kWorkloadNotOffered;
  }
  return 0;
}

}  // namespace
}  // namespace surge::bench

int main(int argc, char** argv) { return surge::bench::main_impl(argc, argv); }
