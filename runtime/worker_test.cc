// Worker: block_on, spawn/join, yield, and shutdown that waits for the kernel before freeing frames.
#include "runtime/worker.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/fd_io.h"
#include "runtime/testing/backend_param.h"

namespace surge {
namespace {

using testing::BackendTest;

struct LiveCounter {
  static inline int live = 0;
  LiveCounter() { ++live; }
  LiveCounter(const LiveCounter&) { ++live; }
  ~LiveCounter() { --live; }
};

class WorkerTest : public BackendTest {};

Task<int> forty_two() { co_return 42; }

TEST_P(WorkerTest, BlockOnReturnsValue) { EXPECT_EQ(worker_->block_on(forty_two()), 42); }

TEST_P(WorkerTest, CurrentIsSetOnlyInsideTheLoop) {
  EXPECT_EQ(Worker::current(), nullptr);
  auto body = []() -> Task<Worker*> { co_return Worker::current(); };
  EXPECT_EQ(worker_->block_on(body()), worker_.get());
  EXPECT_EQ(Worker::current(), nullptr);
}

TEST_P(WorkerTest, SpawnAndJoin) {
  auto parent = [](Worker* worker) -> Task<int> {
    std::vector<JoinHandle<int>> handles;
    for (int i = 0; i < 1000; ++i) {
      handles.push_back(worker->spawn([](int value) -> Task<int> { co_return value; }(i)));
    }
    int sum = 0;
    for (auto& handle : handles) sum += co_await std::move(handle);
    co_return sum;
  };
  EXPECT_EQ(worker_->block_on(parent(worker_.get())), 999 * 1000 / 2);
  EXPECT_EQ(worker_->live_tasks(), 0u);
}

TEST_P(WorkerTest, DetachedTasksRunToCompletion) {
  int finished = 0;
  auto child = [](int* counter) -> Task<void> {
    co_await yield();
    ++*counter;
  };
  auto parent = [&](Worker* worker) -> Task<void> {
    for (int i = 0; i < 100; ++i) (void)worker->spawn(child(&finished));  // handles dropped: detached
    while (finished < 100) co_await yield();
  };
  EXPECT_TRUE(run(parent(worker_.get())));
  EXPECT_EQ(finished, 100);
}

TEST_P(WorkerTest, YieldLetsOthersRun) {
  std::vector<int> order;
  auto step = [](std::vector<int>* log, int id) -> Task<void> {
    log->push_back(id);
    co_await yield();
    log->push_back(id + 10);
  };
  auto parent = [&](Worker* worker) -> Task<void> {
    auto a = worker->spawn(step(&order, 1));
    auto b = worker->spawn(step(&order, 2));
    co_await std::move(a);
    co_await std::move(b);
  };
  EXPECT_TRUE(run(parent(worker_.get())));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 11, 12}));
}

TEST_P(WorkerTest, LowPriorityWorkGivesWayButIsNotStarved) {
  std::vector<std::string> log;
  auto low = [](std::vector<std::string>* out) -> Task<void> {
    for (int i = 0; i < 3; ++i) {
      co_await yield_low();
      out->push_back("low");
    }
  };
  auto normal = [](std::vector<std::string>* out) -> Task<void> {
    for (int i = 0; i < 6; ++i) {
      out->push_back("normal");
      co_await yield();
    }
  };
  auto parent = [&](Worker* worker) -> Task<void> {
    auto a = worker->spawn(low(&log));
    auto b = worker->spawn(normal(&log));
    co_await std::move(a);
    co_await std::move(b);
  };
  EXPECT_TRUE(run(parent(worker_.get())));
  ASSERT_EQ(log.size(), 9u);
  EXPECT_EQ(log[0], "normal") << "low-priority work ran ahead of ready work";
  // Not starved: the low task finished while the normal one still had turns left.
  const auto last_low = std::find(log.rbegin(), log.rend(), "low");
  EXPECT_NE(log.rbegin(), last_low) << "low-priority work only ran after everything else";
  EXPECT_LE(std::count(log.begin(), log.begin() + 4, std::string("low")), 2);
}

TEST_P(WorkerTest, ExceptionInSpawnedTaskReachesJoiner) {
  auto thrower = []() -> Task<int> {
    throw std::logic_error("bad");
    co_return 0;
  };
  auto parent = [&](Worker* worker) -> Task<bool> {
    try {
      co_await worker->spawn(thrower());
    } catch (const std::logic_error&) {
      co_return true;
    }
    co_return false;
  };
  EXPECT_TRUE(worker_->block_on(parent(worker_.get())));
}

TEST_P(WorkerTest, ShutdownCancelsIoAndDestroysUnfinishedTasks) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  bool resumed = false;
  auto reader = [](Worker* worker, int fd, bool* flag, LiveCounter) -> Task<void> {
    char byte;
    auto n = co_await read_fd(*worker, fd, &byte, 1);  // never gets data
    *flag = true;
    (void)n;
  };
  JoinHandle<void> handle = worker_->spawn(reader(worker_.get(), fds[0], &resumed, LiveCounter{}));
  // Let it start and park in the backend.
  auto let_run = []() -> Task<int> {
    for (int i = 0; i < 3; ++i) co_await yield();
    co_return 0;
  };
  worker_->block_on(let_run());
  EXPECT_EQ(internal::WorkerAccess::backend(*worker_).in_flight(), 1u);
  EXPECT_EQ(LiveCounter::live, 1);

  worker_->shutdown();
  EXPECT_EQ(internal::WorkerAccess::backend(*worker_).in_flight(), 0u);
  EXPECT_EQ(worker_->live_tasks(), 0u);
  EXPECT_EQ(LiveCounter::live, 0) << "the task's frame was not destroyed";
  EXPECT_FALSE(resumed) << "a task was resumed during shutdown";
  EXPECT_TRUE(handle.is_abandoned());
  worker_->shutdown();  // a second shutdown is harmless
  forget_fd(*worker_, fds[0]);
  close(fds[0]);
  close(fds[1]);
}

TEST_P(WorkerTest, BlockOnForGivesUpAndCleansUp) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  auto stuck = [](Worker* worker, int fd, LiveCounter) -> Task<int> {
    char byte;
    auto n = co_await read_fd(*worker, fd, &byte, 1);
    co_return n ? 1 : 2;
  };
  auto outcome = worker_->block_on_for(stuck(worker_.get(), fds[0], LiveCounter{}), std::chrono::milliseconds(50));
  EXPECT_FALSE(outcome.has_value());
  EXPECT_EQ(internal::WorkerAccess::backend(*worker_).in_flight(), 0u);
  EXPECT_EQ(LiveCounter::live, 0);
  // The worker is still usable afterwards.
  EXPECT_EQ(worker_->block_on(forty_two()), 42);
  forget_fd(*worker_, fds[0]);
  close(fds[0]);
  close(fds[1]);
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(WorkerTest);

}  // namespace
}  // namespace surge
