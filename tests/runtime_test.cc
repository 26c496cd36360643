// Runtime: several workers on their own threads, on every backend. Spawn and join across workers, no
// lost wake-ups in a cross-worker ping-pong, cross-worker cancellation, blocking calls and name
// resolution, and shutdown with connections open. Also run under --config=tsan.
#include "runtime/runtime.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "examples/echo.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/spawn_blocking.h"
#include "runtime/time.h"
#include "runtime/testing/backend_param.h"
#include "runtime/testing/fd_count.h"

namespace surge {
namespace {

using std::chrono::milliseconds;

class RuntimeTest : public ::testing::TestWithParam<BackendChoice> {
 protected:
  void SetUp() override { start(2); }

  void start(std::size_t workers) {
    runtime_.reset();
    std::unique_ptr<Backend> probe;  // skip cleanly where io_uring is unavailable
    testing::make_backend_or_skip(GetParam(), {}, probe);
    if (!probe) return;
    probe.reset();
    auto runtime = Runtime::create({.workers = workers, .worker = {.backend = GetParam()}});
    ASSERT_TRUE(runtime) << runtime.error().message();
    runtime_ = std::move(*runtime);
  }

  std::unique_ptr<Runtime> runtime_;
};

TEST_P(RuntimeTest, DefaultsToOneWorkerPerCpu) {
  start(0);
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  EXPECT_EQ(runtime_->size(), static_cast<std::size_t>(CPU_COUNT(&set)));
  for (std::size_t i = 0; i < runtime_->size(); ++i) {
    EXPECT_EQ(runtime_->worker(i).backend_kind(),
              GetParam() == BackendChoice::kIoUring ? BackendKind::kIoUring : BackendKind::kEpoll);
  }
}

TEST_P(RuntimeTest, HundredThousandTasksAcrossWorkers) {
  constexpr int kTasks = 100'000;
  std::atomic<int> ran{0};
  const long long sum = runtime_->block_on([](Runtime& runtime, std::atomic<int>* ran) -> Task<long long> {
    std::vector<JoinHandle<int>> handles;
    handles.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) {
      handles.push_back(runtime.spawn([](int value, std::atomic<int>* ran) -> Task<int> {
        ran->fetch_add(1, std::memory_order_relaxed);
        co_return value;
      }(i, ran)));
    }
    long long total = 0;
    for (auto& handle : handles) total += co_await std::move(handle);  // most finish on the other worker
    co_return total;
  }(*runtime_, &ran));
  EXPECT_EQ(ran.load(), kTasks);
  EXPECT_EQ(sum, static_cast<long long>(kTasks) * (kTasks - 1) / 2);
}

TEST_P(RuntimeTest, CrossWorkerPingPongLosesNoWakeUp) {
  // Each round hands a task to the other worker and waits for it: two cross-thread wake-ups per round,
  // with both workers idle (asleep in their backends) most of the time. A lost wake-up hangs the test,
  // which the time limit turns into a failure.
  constexpr int kRounds = 5'000;
  const auto start = std::chrono::steady_clock::now();
  auto done = std::async(std::launch::async, [this] {
    return runtime_->block_on([](Runtime& runtime) -> Task<int> {
      int pongs = 0;
      for (int round = 0; round < kRounds; ++round) {
        pongs += co_await runtime.spawn_on(1, []() -> Task<int> { co_return 1; }());
      }
      co_return pongs;
    }(*runtime_));
  });
  ASSERT_EQ(done.wait_for(std::chrono::seconds(30)), std::future_status::ready) << "a wake-up was lost";
  EXPECT_EQ(done.get(), kRounds);
  const double per_round_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / kRounds;
  RecordProperty("round_trip_us", std::to_string(per_round_us));
}

TEST_P(RuntimeTest, CancelATaskOnAnotherWorker) {
  const bool cancelled = runtime_->block_on([](Runtime& runtime) -> Task<bool> {
    auto sleeper = runtime.spawn_on(1, []() -> Task<Result<void>> { co_return co_await sleep_for(std::chrono::hours(1)); }());
    co_await sleep_for(milliseconds(10));
    sleeper.cancel();
    auto outcome = co_await std::move(sleeper);
    co_return !outcome && outcome.error().is_cancelled();
  }(*runtime_));
  EXPECT_TRUE(cancelled);
}

TEST_P(RuntimeTest, CancelBeforeTheOtherWorkerHasStartedTheTask) {
  for (int round = 0; round < 100; ++round) {
    auto handle = runtime_->spawn_on(1, []() -> Task<Result<void>> { co_return co_await sleep_for(std::chrono::hours(1)); }());
    handle.cancel();  // may reach the worker before or after the task itself
    auto waiter = runtime_->block_on([](JoinHandle<Result<void>> h) -> Task<bool> {
      auto outcome = co_await std::move(h);
      co_return !outcome && outcome.error().is_cancelled();
    }(std::move(handle)));
    ASSERT_TRUE(waiter) << "round " << round;
  }
}

TEST_P(RuntimeTest, SpawnBlockingRunsOffTheWorker) {
  const auto worker_thread = runtime_->block_on([]() -> Task<std::thread::id> { co_return std::this_thread::get_id(); }());
  const bool ok = runtime_->block_on([](std::thread::id worker_thread) -> Task<bool> {
    auto pool_thread = co_await spawn_blocking([] {
      std::this_thread::sleep_for(milliseconds(5));
      return std::this_thread::get_id();
    });
    bool threw = false;
    try {
      co_await spawn_blocking([]() -> int { throw std::runtime_error("blocking failure"); });
    } catch (const std::runtime_error&) {
      threw = true;
    }
    co_return pool_thread != worker_thread && threw;
  }(worker_thread));
  EXPECT_TRUE(ok);
}

TEST_P(RuntimeTest, ConnectByHostName) {
  const bool ok = runtime_->block_on([]() -> Task<bool> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    if (!listener) co_return false;
    const std::uint16_t port = listener->local_addr()->port();
    (void)Worker::current()->spawn(examples::serve_echo(std::move(*listener)));
    auto stream = co_await TcpStream::connect("localhost:" + std::to_string(port));
    EXPECT_TRUE(stream) << stream.error().message();
    if (!stream) co_return false;
    EXPECT_TRUE(co_await stream->write_all("name"));
    char reply[4];
    co_return static_cast<bool>(co_await stream->read_exact(reply));
  }());
  EXPECT_TRUE(ok);
}

TEST_P(RuntimeTest, StreamMovedToAnotherWorker) {
  const bool ok = runtime_->block_on([](Runtime& runtime) -> Task<bool> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    const SocketAddress address = *listener->local_addr();
    // The client runs on the other worker; the accepted stream is served there too, after a move.
    const std::size_t other = Worker::current() == &runtime.worker(0) ? 1 : 0;
    auto client = runtime.spawn_on(other, [](SocketAddress address) -> Task<bool> {
      auto stream = co_await TcpStream::connect(address);
      if (!stream || !co_await stream->write_all("moved")) co_return false;
      char reply[5];
      co_return co_await stream->read_exact(reply) && std::string_view(reply, 5) == "moved";
    }(address));
    auto accepted = co_await listener->accept();
    if (!accepted) co_return false;
    auto moved = std::move(*accepted).move_to(runtime.worker(other));
    EXPECT_TRUE(moved) << moved.error().message();
    if (!moved) co_return false;
    (void)runtime.spawn_on(other, examples::echo_session(std::move(*moved)));
    co_return co_await std::move(client);
  }(*runtime_));
  EXPECT_TRUE(ok);
}

TEST_P(RuntimeTest, ShutdownWithConnectionsOpenOnSeveralWorkers) {
  runtime_.reset();
  const int fds_before = testing::open_fd_count();
  start(2);
  if (!runtime_) return;
  const SocketAddress server = runtime_->block_on([](Runtime& runtime) -> Task<SocketAddress> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    const SocketAddress address = *listener->local_addr();
    (void)Worker::current()->spawn(examples::serve_echo(std::move(*listener)));
    co_return address;
  }(*runtime_));
  std::atomic<int> connected{0};
  for (int i = 0; i < 20; ++i) {
    (void)runtime_->spawn_on(1, [](SocketAddress address, std::atomic<int>* connected) -> Task<void> {
      auto stream = co_await TcpStream::connect(address);
      if (!stream) co_return;
      connected->fetch_add(1);
      char byte;
      (void)co_await stream->read(MutableBuffer(&byte, 1));  // parked until shutdown
    }(server, &connected));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (connected.load() < 20 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  EXPECT_EQ(connected.load(), 20);
  runtime_->shutdown();
  runtime_->shutdown();  // harmless
  runtime_.reset();
  EXPECT_EQ(testing::open_fd_count(), fds_before);
}

TEST_P(RuntimeTest, ShutdownAbandonsUnfinishedTasks) {
  auto never = runtime_->spawn_on(1, []() -> Task<Result<void>> { co_return co_await sleep_for(std::chrono::hours(1)); }());
  runtime_->shutdown();
  EXPECT_TRUE(never.is_abandoned());
}

// A task whose frame holds `token`: the use count tells whether the frame still exists.
Task<int> holding(std::shared_ptr<int> token) { co_return *token; }

TEST_P(RuntimeTest, SpawnAfterShutdownReturnsAnAbandonedHandle) {
  if (!runtime_) return;
  runtime_->shutdown();
  EXPECT_EQ(runtime_->size(), 0u);
  auto token = std::make_shared<int>(7);
  auto spawned = runtime_->spawn(holding(token));
  EXPECT_TRUE(spawned.valid());
  EXPECT_TRUE(spawned.is_abandoned());
  EXPECT_FALSE(spawned.is_finished());
  auto pinned = runtime_->spawn_on(1, holding(token));
  EXPECT_TRUE(pinned.is_abandoned());
  EXPECT_EQ(token.use_count(), 1) << "a task refused after shutdown was not destroyed";
}

TEST_P(RuntimeTest, BlockOnAfterShutdownThrowsFutureError) {
  if (!runtime_) return;
  runtime_->shutdown();
  try {
    (void)runtime_->block_on([]() -> Task<int> { co_return 1; }());
    ADD_FAILURE() << "block_on after shutdown returned";
  } catch (const std::future_error& error) {
    EXPECT_EQ(error.code(), std::future_errc::broken_promise);
  }
}

// What a block_on on another thread ended with.
enum class BlockOnOutcome { kRunning, kBrokenPromise, kOtherError, kReturned };

// Starts block_on(task that sleeps forever) on a detached thread: a block_on that hangs must fail the
// test, not hang it, so nothing joins that thread.
std::shared_ptr<std::atomic<BlockOnOutcome>> block_on_forever(Runtime& runtime,
                                                              std::shared_ptr<std::atomic<bool>> started) {
  auto outcome = std::make_shared<std::atomic<BlockOnOutcome>>(BlockOnOutcome::kRunning);
  std::thread([&runtime, outcome, started] {
    try {
      (void)runtime.block_on([](std::shared_ptr<std::atomic<bool>> started) -> Task<Result<void>> {
        started->store(true);
        co_return co_await sleep_for(std::chrono::hours(1));
      }(started));
      outcome->store(BlockOnOutcome::kReturned);
    } catch (const std::future_error& error) {
      outcome->store(error.code() == std::future_errc::broken_promise ? BlockOnOutcome::kBrokenPromise
                                                                      : BlockOnOutcome::kOtherError);
    } catch (...) {
      outcome->store(BlockOnOutcome::kOtherError);
    }
  }).detach();
  return outcome;
}

bool wait_for_outcome(const std::atomic<BlockOnOutcome>& outcome, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (outcome.load() == BlockOnOutcome::kRunning) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

TEST_P(RuntimeTest, BlockOnThrowsWhenTheRuntimeShutsDownUnderIt) {
  if (!runtime_) return;
  auto started = std::make_shared<std::atomic<bool>>(false);
  auto outcome = block_on_forever(*runtime_, started);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!started->load() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  ASSERT_TRUE(started->load()) << "the task never started";
  runtime_->shutdown();
  ASSERT_TRUE(wait_for_outcome(*outcome, std::chrono::seconds(10))) << "block_on hangs after shutdown";
  EXPECT_EQ(outcome->load(), BlockOnOutcome::kBrokenPromise);
}

// shutdown() on this thread races block_on on another: whichever wins, block_on ends with a broken
// promise (the task is refused, or destroyed by the shutdown). Run under --config=tsan as well.
TEST_P(RuntimeTest, ShutdownRacingBlockOnNeverHangs) {
  for (int round = 0; round < 20; ++round) {
    start(2);
    if (!runtime_) return;
    auto outcome = block_on_forever(*runtime_, std::make_shared<std::atomic<bool>>(false));
    if (round % 2 == 1) std::this_thread::sleep_for(std::chrono::microseconds(50 * round));
    runtime_->shutdown();
    ASSERT_TRUE(wait_for_outcome(*outcome, std::chrono::seconds(10))) << "block_on hangs, round " << round;
    EXPECT_EQ(outcome->load(), BlockOnOutcome::kBrokenPromise) << "round " << round;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, RuntimeTest, ::testing::Values(BackendChoice::kIoUring, BackendChoice::kEpoll),
                         testing::backend_test_name);

}  // namespace
}  // namespace surge
