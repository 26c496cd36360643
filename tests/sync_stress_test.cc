// Randomised stress of //sync across 2 and 4 workers, on both backends, bounded in count and time: many
// producers and consumers with random timeouts and cancellations from other workers. Checks that every
// message is received exactly once, that a mutex excludes and ends unlocked, and that every permit comes
// back. Prints its seed (SURGE_STRESS_SEED=N repeats a run). Run under TSan in CI.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include "runtime/runtime.h"
#include "runtime/testing/backend_param.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "sync/channel.h"
#include "sync/mutex.h"
#include "sync/semaphore.h"

namespace surge {
namespace {

using namespace std::chrono_literals;

unsigned stress_seed() {
  if (const char* fixed = std::getenv("SURGE_STRESS_SEED")) return static_cast<unsigned>(std::strtoul(fixed, nullptr, 10));
  return std::random_device{}();
}

class SyncStressTest : public ::testing::TestWithParam<std::tuple<BackendChoice, std::size_t>> {
 protected:
  void SetUp() override {
    std::unique_ptr<Backend> probe;
    testing::make_backend_or_skip(std::get<0>(GetParam()), {}, probe);
    if (!probe) return;
    probe.reset();
    auto runtime = Runtime::create({.workers = std::get<1>(GetParam()), .worker = {.backend = std::get<0>(GetParam())}});
    ASSERT_TRUE(runtime) << runtime.error().message();
    runtime_ = std::move(*runtime);
    seed_ = stress_seed();
    std::printf("seed %u (SURGE_STRESS_SEED=%u repeats it)\n", seed_, seed_);
  }

  // Joins every handle; fails (and stops the runtime) if that takes longer than `limit`.
  void join_all(std::vector<JoinHandle<void>> handles, std::chrono::seconds limit = 60s) {
    std::atomic<bool> done{false};
    std::thread watchdog([&] {
      const auto until = std::chrono::steady_clock::now() + limit;
      while (!done.load() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
      if (!done.load()) {
        std::fprintf(stderr, "stress run did not finish within %lld s (seed %u)\n",
                     static_cast<long long>(limit.count()), seed_);
        std::abort();
      }
    });
    runtime_->block_on([](std::vector<JoinHandle<void>> handles) -> Task<void> {
      for (auto& handle : handles) co_await std::move(handle);
    }(std::move(handles)));
    done = true;
    watchdog.join();
  }

  std::size_t workers() const { return runtime_->size(); }

  std::unique_ptr<Runtime> runtime_;
  unsigned seed_ = 0;
};

// Sends every id once: a send that times out or is cancelled gets its message back and tries again.
Task<void> produce(Sender<int> tx, int first, int count, unsigned seed) {
  std::mt19937 random(seed);
  for (int id = first; id < first + count; ++id) {
    std::optional<int> message = id;
    while (message) {
      // An if, not ?: around the co_awaits (README, "A gcc 12 caveat").
      SendResult<int> sent;
      if (random() % 4 == 0) {
        sent = co_await timeout(std::chrono::microseconds(random() % 300), tx.send(std::move(*message)));
      } else {
        sent = co_await tx.send(std::move(*message));
      }
      if (sent.ok()) break;
      EXPECT_TRUE(sent.error().is_timed_out() || sent.error().is_cancelled()) << sent.error().message();
      EXPECT_TRUE(sent.unsent().has_value());
      message = std::move(sent.unsent());
    }
  }
}

// Receives until the channel ends; some receives time out (and lose nothing).
Task<void> consume(Receiver<int> rx, std::vector<std::atomic<int>>* received, unsigned seed) {
  std::mt19937 random(seed);
  for (;;) {
    Result<int> value = Error(EAGAIN, "not received");
    if (random() % 3 == 0) {
      value = co_await timeout(std::chrono::microseconds(random() % 200), rx.recv());
    } else {
      value = co_await rx.recv();
    }
    if (value.ok()) {
      (*received)[*value].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (value.error().code() == EPIPE) co_return;
    EXPECT_TRUE(value.error().is_timed_out()) << value.error().message();
  }
}

// A receiver that is cancelled from another worker at a random moment; whatever it got counts.
Task<void> victim(Receiver<int> rx, std::vector<std::atomic<int>>* received) {
  for (;;) {
    Result<int> value = co_await rx.recv();
    if (!value) co_return;  // cancelled, or the end
    (*received)[*value].fetch_add(1, std::memory_order_relaxed);
  }
}

TEST_P(SyncStressTest, EveryMessageArrivesExactlyOnce) {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 5'000;
  constexpr int kConsumers = 3;
  std::mt19937 random(seed_);
  // Tiny capacities make senders wait; 40 lets receivers take batches (up to 32) while senders still
  // fill the channel; unbounded never makes a sender wait.
  const std::size_t capacities[] = {1, 2, 3, 8, 40};
  const std::size_t capacity = capacities[random() % 5];
  std::printf("capacity %zu\n", capacity);
  auto [tx, rx] = random() % 6 == 0 ? unbounded_channel<int>() : channel<int>(capacity);
  auto received = std::make_unique<std::vector<std::atomic<int>>>(kProducers * kPerProducer);
  std::vector<JoinHandle<void>> handles;
  for (int p = 0; p < kProducers; ++p) {
    handles.push_back(runtime_->spawn_on(random() % workers(), produce(tx, p * kPerProducer, kPerProducer, random())));
  }
  for (int c = 0; c < kConsumers; ++c) {
    handles.push_back(runtime_->spawn_on(random() % workers(), consume(rx, received.get(), random())));
  }
  // Victims, each cancelled from another worker after a random delay.
  for (int v = 0; v < 20; ++v) {
    const std::size_t home = random() % workers();
    JoinHandle<void> doomed = runtime_->spawn_on(home, victim(rx, received.get()));
    handles.push_back(runtime_->spawn_on((home + 1) % workers(), [](JoinHandle<void> doomed, unsigned delay_us) -> Task<void> {
      (void)co_await sleep_for(std::chrono::microseconds(delay_us));
      doomed.cancel();
      co_await std::move(doomed);
    }(std::move(doomed), random() % 3'000)));
  }
  { auto unused_tx = std::move(tx); auto unused_rx = std::move(rx); }  // the tasks hold the only handles now
  join_all(std::move(handles));
  int lost = 0, duplicated = 0;
  for (auto& count : *received) {
    lost += count.load() == 0;
    duplicated += count.load() > 1;
  }
  EXPECT_EQ(lost, 0) << "seed " << seed_;
  EXPECT_EQ(duplicated, 0) << "seed " << seed_;
}

TEST_P(SyncStressTest, MutexAndSemaphoreStayBalanced) {
  constexpr int kTasks = 8;
  constexpr int kRounds = 800;
  constexpr std::uint64_t kPermits = 3;
  std::mt19937 random(seed_);
  Mutex mutex;
  Semaphore semaphore(kPermits);
  std::atomic<int> inside{0};
  std::atomic<std::uint64_t> permits_out{0};
  std::atomic<bool> broken{false};
  long counter = 0;  // guarded by mutex
  std::atomic<long> locked{0};
  std::vector<JoinHandle<void>> handles;
  for (int t = 0; t < kTasks; ++t) {
    handles.push_back(runtime_->spawn_on(random() % workers(), [](Mutex& mutex, Semaphore& semaphore, std::atomic<int>& inside,
                                                                   std::atomic<std::uint64_t>& permits_out, std::atomic<bool>& broken,
                                                                   long& counter, std::atomic<long>& locked, unsigned seed) -> Task<void> {
      std::mt19937 random(seed);
      for (int i = 0; i < kRounds; ++i) {
        if (random() % 2 == 0) {
          Result<MutexGuard> guard = Error(EAGAIN, "not locked");
          if (random() % 3 == 0) {
            guard = co_await timeout(std::chrono::microseconds(random() % 100), mutex.lock());
          } else {
            guard = co_await mutex.lock();
          }
          if (!guard) continue;
          if (inside.fetch_add(1) != 0) broken = true;
          ++counter;
          locked.fetch_add(1);
          if (random() % 4 == 0) co_await yield();
          inside.fetch_sub(1);
        } else {
          const std::uint64_t want = 1 + random() % kPermits;
          Result<SemaphorePermit> permit = Error(EAGAIN, "not acquired");
          if (random() % 3 == 0) {
            permit = co_await timeout(std::chrono::microseconds(random() % 100), semaphore.acquire(want));
          } else {
            permit = co_await semaphore.acquire(want);
          }
          if (!permit) continue;
          if (permits_out.fetch_add(want) + want > kPermits) broken = true;
          if (random() % 4 == 0) co_await yield();
          permits_out.fetch_sub(want);
        }
      }
    }(mutex, semaphore, inside, permits_out, broken, counter, locked, random())));
  }
  join_all(std::move(handles));
  EXPECT_FALSE(broken.load()) << "seed " << seed_;
  EXPECT_EQ(counter, locked.load()) << "seed " << seed_;
  EXPECT_FALSE(mutex.is_locked()) << "seed " << seed_;
  EXPECT_EQ(semaphore.available_permits(), kPermits) << "seed " << seed_;
}

INSTANTIATE_TEST_SUITE_P(
    BackendsAndWorkers, SyncStressTest,
    ::testing::Combine(::testing::Values(BackendChoice::kIoUring, BackendChoice::kEpoll), ::testing::Values(2, 4)),
    [](const ::testing::TestParamInfo<std::tuple<BackendChoice, std::size_t>>& info) {
      return std::string(backend_choice_name(std::get<0>(info.param))) + "_" + std::to_string(std::get<1>(info.param)) + "_workers";
    });

}  // namespace
}  // namespace surge
