// submit_to(): callables run on the target worker's thread, their results come back, one allocation per
// call, and one sender's work starts on a worker in the order it was sent. On both backends.
#include "runtime/submit_to.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runtime/runtime.h"
#include "runtime/testing/allocation_counter.h"
#include "runtime/testing/backend_param.h"
#include "runtime/testing/runtime_param.h"
#include "runtime/time.h"

namespace surge {
namespace {

class SubmitToTest : public testing::RuntimeTest {};

Task<std::string> describe(std::string prefix, int value) {
  co_await sleep_for(std::chrono::milliseconds(1));
  co_return prefix + std::to_string(value) + "@" + std::to_string(Worker::current()->index());
}

TEST_P(SubmitToTest, PlainAndTaskCallablesRunOnTheTarget) {
  if (!runtime_) return;
  const bool ok = run([](Runtime& runtime) -> Task<bool> {
    const std::size_t here = Worker::current()->index();
    const std::size_t there = 1 - here;
    const std::thread::id target_thread =
        co_await submit_to(runtime, there, [] { return std::this_thread::get_id(); });
    EXPECT_NE(target_thread, std::this_thread::get_id());
    const std::size_t index = co_await submit_to(runtime.worker(there), [](int add) { return Worker::current()->index() + add; }, 10);
    EXPECT_EQ(index, there + 10);
    const std::string text = co_await submit_to(runtime, there, describe, std::string("v"), 7);
    EXPECT_EQ(text, "v7@" + std::to_string(there));
    const std::string from_lambda = co_await submit_to(runtime, there, [](int v) -> Task<std::string> {
      co_return std::to_string(v * 2) + "@" + std::to_string(Worker::current()->index());
    }, 21);
    EXPECT_EQ(from_lambda, "42@" + std::to_string(there));
    int side_effect = 0;
    co_await submit_to(runtime, there, [&side_effect] { side_effect = 5; });  // void
    EXPECT_EQ(side_effect, 5);
    bool threw = false;
    try {
      co_await submit_to(runtime, there, []() -> int { throw std::runtime_error("on the other worker"); });
    } catch (const std::runtime_error&) {
      threw = true;
    }
    EXPECT_TRUE(threw);
    co_return true;
  }(*runtime_));
  EXPECT_TRUE(ok);
}

TEST_P(SubmitToTest, OneAllocationPerCall) {
  if (!runtime_) return;
  const bool ok = run([](Runtime& runtime) -> Task<bool> {
    const std::size_t there = 1 - Worker::current()->index();
    int value = 3;
    for (int round = 0; round < 3; ++round) {  // the first may warm up lazily allocated state
      const auto before = testing::thread_allocation_count();
      auto plain = submit_to(runtime, there, [&value] { return value + 1; });
      const auto plain_allocations = testing::thread_allocation_count() - before;
      const auto before_task = testing::thread_allocation_count();
      auto task = submit_to(runtime, there, describe, std::string("x"), 1);
      const auto task_allocations = testing::thread_allocation_count() - before_task;
      EXPECT_EQ(co_await std::move(plain), 4);
      EXPECT_EQ((co_await std::move(task)).substr(0, 2), "x1");
      if (round > 0) {
        EXPECT_EQ(plain_allocations, 1u);
        EXPECT_EQ(task_allocations, 1u);
      }
    }
    co_return true;
  }(*runtime_));
  EXPECT_TRUE(ok);
}

// Work sent from one thread to one worker starts in the order it was sent, whether the sender is
// another worker (through the inbox, batches taken whole) or a plain thread.
TEST_P(SubmitToTest, OneSendersWorkStartsInOrder) {
  if (!runtime_) return;
  constexpr int kItems = 20'000;
  for (const bool from_worker : {true, false}) {
    std::vector<int> seen;  // touched on worker 1 only
    seen.reserve(kItems);
    std::vector<JoinHandle<void>> handles;
    handles.reserve(kItems);
    auto send_all = [&] {
      for (int i = 0; i < kItems; ++i) {
        handles.push_back(i % 2 == 0 ? submit_to(*runtime_, 1, [&seen, i] { seen.push_back(i); })
                                     : runtime_->spawn_on(1, [](std::vector<int>* seen, int i) -> Task<void> {
                                         seen->push_back(i);
                                         co_return;
                                       }(&seen, i)));
      }
    };
    if (from_worker) {
      std::function<void()> send = send_all;
      run([](Runtime& runtime, std::function<void()>* send) -> Task<bool> {
        co_await submit_to(runtime, 0, [send] { (*send)(); });
        co_return true;
      }(*runtime_, &send));
    } else {
      send_all();
    }
    run([](std::vector<JoinHandle<void>>* handles) -> Task<bool> {
      for (auto& handle : *handles) co_await std::move(handle);
      co_return true;
    }(&handles));
    ASSERT_EQ(seen.size(), static_cast<std::size_t>(kItems));
    for (int i = 0; i < kItems; ++i) ASSERT_EQ(seen[i], i) << (from_worker ? "from a worker" : "from a thread");
  }
}

TEST_P(SubmitToTest, RefusedAfterShutdown) {
  if (!runtime_) return;
  runtime_->shutdown();
  auto handle = submit_to(*runtime_, 1, [] { return 1; });
  EXPECT_TRUE(handle.is_abandoned());
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(SubmitToTest);

}  // namespace
}  // namespace surge
