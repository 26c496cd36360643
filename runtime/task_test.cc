// Task<T> on its own, driven by hand (no worker): laziness, values, nesting, exceptions, frame lifetime.
#include "runtime/task.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace surge {
namespace {

// Counts live instances, to prove frames (and their locals) are destroyed exactly once.
struct LiveCounter {
  static inline int live = 0;
  LiveCounter() { ++live; }
  LiveCounter(const LiveCounter&) { ++live; }
  ~LiveCounter() { --live; }
};

// Drives a task that never suspends on anything external to completion, and returns its value.
template <typename T>
T run_synchronously(Task<T> task) {
  auto driver = [](Task<T> inner, std::optional<T>* out) -> Task<void> { out->emplace(co_await std::move(inner)); };
  std::optional<T> result;
  Task<void> root = driver(std::move(task), &result);
  auto awaiter = std::move(root).operator co_await();
  awaiter.await_suspend(std::noop_coroutine()).resume();
  EXPECT_TRUE(root.done());
  awaiter.await_resume();  // rethrows what the task threw
  return std::move(*result);
}

Task<int> answer() { co_return 42; }

Task<int> add_nested(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await add_nested(depth - 1);
}

Task<std::string> throws() {
  throw std::runtime_error("boom");
  co_return "unreachable";
}

TEST(TaskTest, IsLazy) {
  bool started = false;
  auto body = [](bool* flag) -> Task<int> {
    *flag = true;
    co_return 1;
  };
  Task<int> task = body(&started);
  EXPECT_FALSE(started);
  EXPECT_FALSE(task.done());
  EXPECT_EQ(run_synchronously(std::move(task)), 1);
  EXPECT_TRUE(started);
}

TEST(TaskTest, ReturnsValue) { EXPECT_EQ(run_synchronously(answer()), 42); }

// Symmetric transfer is a tail call; sanitizers keep every frame (to poison it on return), so under
// them the chain uses stack and only a shallower one is checked.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kNestingDepth = 1'000;
#else
constexpr int kNestingDepth = 100'000;
#endif

TEST(TaskTest, DeepNestingUsesNoStack) {
  // 100,000 nested awaits would overflow an 8 MiB stack without symmetric transfer.
  EXPECT_EQ(run_synchronously(add_nested(kNestingDepth)), kNestingDepth);
}

TEST(TaskTest, MoveOnlyValue) {
  auto make = []() -> Task<std::unique_ptr<int>> { co_return std::make_unique<int>(7); };
  EXPECT_EQ(*run_synchronously(make()), 7);
}

TEST(TaskTest, ExceptionReachesAwaiter) {
  EXPECT_THROW(run_synchronously(throws()), std::runtime_error);
}

TEST(TaskTest, VoidTask) {
  int calls = 0;
  auto body = [](int* counter) -> Task<void> {
    ++*counter;
    co_return;
  };
  auto wrapper = [](Task<void> inner) -> Task<int> {
    co_await std::move(inner);
    co_return 1;
  };
  EXPECT_EQ(run_synchronously(wrapper(body(&calls))), 1);
  EXPECT_EQ(calls, 1);
}

TEST(TaskTest, UnstartedTaskFrameIsDestroyedOnce) {
  auto body = [](LiveCounter counter) -> Task<int> { co_return 1; };
  {
    Task<int> task = body(LiveCounter{});
    EXPECT_EQ(LiveCounter::live, 1);  // the parameter copy lives in the frame
  }
  EXPECT_EQ(LiveCounter::live, 0);
}

TEST(TaskTest, FinishedTaskFrameIsDestroyedOnce) {
  auto body = [](LiveCounter counter) -> Task<int> { co_return 2; };
  EXPECT_EQ(run_synchronously(body(LiveCounter{})), 2);
  EXPECT_EQ(LiveCounter::live, 0);
}

TEST(TaskTest, MoveAssignmentDestroysPreviousFrame) {
  auto body = [](LiveCounter counter) -> Task<int> { co_return 3; };
  Task<int> first = body(LiveCounter{});
  Task<int> second = body(LiveCounter{});
  EXPECT_EQ(LiveCounter::live, 2);
  first = std::move(second);
  EXPECT_EQ(LiveCounter::live, 1);
  EXPECT_FALSE(second.valid());  // NOLINT: moved-from state is specified
}

}  // namespace
}  // namespace surge
