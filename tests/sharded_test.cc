// Sharded<T> on a 2-worker Runtime, both backends: one instance per worker, built and destroyed on its
// worker's thread (by stop(), by the Runtime's shutdown, or by the destructor), reached with local(),
// on() and invoke_on().
#include "runtime/sharded.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/runtime.h"
#include "runtime/testing/backend_param.h"
#include "runtime/testing/runtime_param.h"

namespace surge {
namespace {

// Records the thread that built it and the one that destroyed it.
struct Counter {
  struct Log {
    std::mutex lock;
    std::vector<std::pair<std::size_t, std::thread::id>> destroyed;  // index, thread
  };
  Counter(std::size_t index, Log* log) : index(index), built_on(std::this_thread::get_id()), log(log) {}
  Counter(Counter&& other) noexcept : index(other.index), count(other.count), built_on(other.built_on), log(std::exchange(other.log, nullptr)) {}
  ~Counter() {
    if (log == nullptr) return;
    std::lock_guard<std::mutex> guard(log->lock);
    log->destroyed.emplace_back(index, std::this_thread::get_id());
  }
  std::size_t index;
  int count = 0;
  std::thread::id built_on;
  Log* log;
};

class ShardedTest : public testing::RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    if (!runtime_) return;
    for (std::size_t i = 0; i < 2; ++i) {
      threads_.push_back(runtime_->block_on([](Runtime& rt, std::size_t i) -> Task<std::thread::id> {
        co_return co_await rt.spawn_on(i, []() -> Task<std::thread::id> { co_return std::this_thread::get_id(); }());
      }(*runtime_, i)));
    }
  }

  void start(Sharded<Counter>& sharded) {
    runtime_->block_on(sharded.start(*runtime_, [this](std::size_t index) { return Counter(index, &log_); }));
  }

  // Every instance was destroyed once, on its own worker's thread.
  void expect_destroyed_at_home() {
    std::lock_guard<std::mutex> guard(log_.lock);
    ASSERT_EQ(log_.destroyed.size(), 2u);
    for (const auto& [index, thread] : log_.destroyed) EXPECT_EQ(thread, threads_[index]) << "instance " << index;
  }

  Counter::Log log_;
  std::vector<std::thread::id> threads_;  // worker i's thread
};

TEST_P(ShardedTest, EachWorkerHasItsOwnInstanceBuiltOnItsThread) {
  if (!runtime_) return;
  Sharded<Counter> counters;
  start(counters);
  ASSERT_EQ(counters.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(counters.on(i).index, i);
    EXPECT_EQ(counters.on(i).built_on, threads_[i]);
  }
  // Independent values: worker 0 counts 100, worker 1 counts 50, each through local().
  runtime_->block_on([](Runtime& rt, Sharded<Counter>* counters) -> Task<bool> {
    for (std::size_t i = 0; i < 2; ++i) {
      co_await rt.spawn_on(i, [](Sharded<Counter>* counters, int times) -> Task<void> {
        for (int n = 0; n < times; ++n) counters->local().count++;
        co_return;
      }(counters, i == 0 ? 100 : 50));
    }
    const int zero = co_await counters->invoke_on(0, [](Counter& c) { return c.count; });
    const int one = co_await counters->invoke_on(1, [](Counter& c) { return c.count; });
    const std::size_t local_index = counters->local().index;
    EXPECT_EQ(local_index, Worker::current()->index());
    EXPECT_EQ(zero, 100);
    EXPECT_EQ(one, 50);
    co_return true;
  }(*runtime_, &counters));
  runtime_->block_on(counters.stop());
  expect_destroyed_at_home();
}

TEST_P(ShardedTest, RuntimeShutdownDestroysTheInstancesOnTheirWorkers) {
  if (!runtime_) return;
  Sharded<Counter> counters;
  start(counters);
  runtime_->shutdown();
  expect_destroyed_at_home();
}  // the destructor finds nothing left

TEST_P(ShardedTest, DestructorDestroysRunningInstancesOnTheirWorkers) {
  if (!runtime_) return;
  {
    Sharded<Counter> counters;
    start(counters);
  }
  expect_destroyed_at_home();
}

TEST_P(ShardedTest, DestroyedInsideATaskOnAWorker) {
  if (!runtime_) return;
  runtime_->block_on([](Runtime& rt, Counter::Log* log) -> Task<bool> {
    Sharded<Counter> counters;
    co_await counters.start(rt, [log](std::size_t index) { return Counter(index, log); });
    co_return true;  // destroyed here: this worker's inline, the other's posted and waited for
  }(*runtime_, &log_));
  expect_destroyed_at_home();
}

TEST_P(ShardedTest, AFactoryThatThrowsIsRethrownByStart) {
  if (!runtime_) return;
  Sharded<Counter> counters;
  EXPECT_THROW(runtime_->block_on(counters.start(*runtime_, [this](std::size_t index) -> Counter {
    if (index == 1) throw std::runtime_error("no");
    return Counter(index, &log_);
  })), std::runtime_error);
  runtime_->block_on(counters.stop());
  std::lock_guard<std::mutex> guard(log_.lock);
  ASSERT_EQ(log_.destroyed.size(), 1u);
  EXPECT_EQ(log_.destroyed[0].second, threads_[0]);
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(ShardedTest);

}  // namespace
}  // namespace surge
