// queue_limit_bench: the "limit" row of bench/sync_compare.py: moodycamel::ConcurrentQueue 1.0.3 (Debian's
// libconcurrentqueue-dev), a lock-free MPMC queue, with a spinning consumer and no asynchronous wake-up at
// all: what a cross-thread channel would cost if waiting were free. Protocol at the top of
// bench/sync_compare.py:
//
//   queue_limit_bench --workload=channel_cross_1p|channel_cross_4p --ops=N
//
// Offers channel_cross_1p and channel_cross_4p only (any other workload exits 3):
//   - one producer thread pinned to CPU 0, one consumer thread pinned to CPU 1;
//   - 4p: the 4 producers are 4 ProducerTokens (4 sub-queues, as 4 producer tasks would have) used in turn
//     by the one producer thread, N/4 messages each; there is no task switch between them, so this is the
//     limit for "4 producer tasks on one thread";
//   - bounded to 1024 like the channels: the producer thread counts what it enqueued and the consumer
//     publishes what it dequeued (a relaxed atomic store per message, on its own cache line); when 1024
//     messages are in flight the producer spins until the consumer's count moves. The producer reads the
//     consumer's count only when its cached copy says the queue is full;
//   - the consumer spins on try_dequeue(ConsumerToken) one message at a time (no bulk dequeue: one message
//     per receive, as the channels' recv()).
#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "bench/peers/sync_protocol.h"

namespace surge::bench {
namespace {

inline void spin_pause() { __builtin_ia32_pause(); }

struct alignas(64) PaddedCounter {
  std::atomic<std::uint64_t> value{0};
};

struct Timing {
  double seconds;
  double cpu_seconds;
};

Timing cross_once(int producers, std::uint64_t per_producer) {
  const std::uint64_t total = per_producer * static_cast<std::uint64_t>(producers);
  moodycamel::ConcurrentQueue<std::uint64_t> queue(2 * kBoundedCapacity, producers, 0);
  PaddedCounter consumed;
  std::uint64_t sum = 0;
  std::atomic<int> ready{0};

  const Stopwatch watch;
  std::thread consumer([&] {
    pin_current_thread(1);
    moodycamel::ConsumerToken token(queue);
    ready.fetch_add(1);
    std::uint64_t local_sum = 0;
    for (std::uint64_t received = 0; received < total;) {
      std::uint64_t value;
      if (queue.try_dequeue(token, value)) {
        local_sum += value;
        ++received;
        consumed.value.store(received, std::memory_order_release);
      } else {
        spin_pause();
      }
    }
    sum = local_sum;
  });
  std::thread producer([&] {
    pin_current_thread(0);
    std::vector<moodycamel::ProducerToken> tokens;
    tokens.reserve(producers);
    for (int p = 0; p < producers; ++p) tokens.emplace_back(queue);
    std::uint64_t sent = 0;
    std::uint64_t seen_consumed = 0;
    for (std::uint64_t i = 0; i < per_producer; ++i) {
      for (int p = 0; p < producers; ++p) {
        while (sent - seen_consumed >= kBoundedCapacity) {
          seen_consumed = consumed.value.load(std::memory_order_acquire);
          if (sent - seen_consumed >= kBoundedCapacity) spin_pause();
        }
        if (!queue.enqueue(tokens[p], i)) std::abort();  // allocation failure only
        ++sent;
      }
    }
  });
  producer.join();
  consumer.join();
  const Timing timing{watch.wall_seconds(), watch.cpu_seconds()};
  if (sum != static_cast<std::uint64_t>(producers) * (per_producer * (per_producer - 1) / 2)) {
    std::fprintf(stderr, "queue_limit_bench: the consumer received the wrong messages\n");
    std::exit(1);
  }
  return timing;
}

int main_impl(int argc, char** argv) {
  const SyncArgs args = parse_sync_args(
      argc, argv,
      "the limit row of bench/sync_compare.py: moodycamel::ConcurrentQueue with a spinning consumer on CPU 1 "
      "and the producer(s) on CPU 0, bounded to 1024 messages in flight, no asynchronous wake-up. Offers "
      "channel_cross_1p and channel_cross_4p; any other workload exits 3.\n"
      "Usage: queue_limit_bench --workload=channel_cross_1p --ops=N");
  int producers = 0;
  if (args.workload == "channel_cross_1p") {
    producers = 1;
  } else if (args.workload == "channel_cross_4p") {
    producers = 4;
  } else {
    return kWorkloadNotOffered;
  }
  pin_current_thread(0);  // the main thread only waits
  const std::uint64_t per_producer = std::max<std::uint64_t>(args.ops / producers, 1);
  cross_once(producers, std::max<std::uint64_t>(warmup_ops(args.ops) * 4 / producers, 1));
  const Timing timing = cross_once(producers, per_producer);
  print_result("limit", args.workload, per_producer * producers, timing.seconds, timing.cpu_seconds,
               ", \"note\": \"moodycamel::ConcurrentQueue, spinning consumer, no wake-up\"");
  return 0;
}

}  // namespace
}  // namespace surge::bench

int main(int argc, char** argv) { return surge::bench::main_impl(argc, argv); }
