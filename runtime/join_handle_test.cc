// JoinHandle and the spawned task's block (runtime/internal/task_state.h): a spawn is one allocation,
// and the result, the frame and the block are each destroyed exactly once, whichever of the task and the
// handle goes first, on whichever thread, and also when shutdown abandons the task. Live objects are
// counted; ASan (--config=asan) catches leaks, double frees and uses after free of the block.
#include "runtime/join_handle.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "runtime/fd_io.h"
#include "runtime/testing/allocation_counter.h"
#include "runtime/testing/backend_param.h"
#include "runtime/worker.h"

namespace surge {
namespace {

using testing::BackendTest;

// Counts live instances (constructed minus destroyed), copies and moves included.
struct Counted {
  static inline int live = 0;
  static inline int destroyed = 0;
  int value = 0;
  explicit Counted(int v) : value(v) { ++live; }
  Counted(const Counted& other) : value(other.value) { ++live; }
  Counted(Counted&& other) noexcept : value(other.value) { ++live; }
  ~Counted() {
    --live;
    ++destroyed;
  }
};

class JoinHandleTest : public BackendTest {
 protected:
  void SetUp() override {
    Counted::live = 0;
    Counted::destroyed = 0;
    BackendTest::SetUp();
  }
  void TearDown() override {
    if (worker_) worker_->shutdown();
    EXPECT_EQ(Counted::live, 0) << "a result or a parameter leaked, or was destroyed twice";
  }
  // Runs the worker until `handle` is finished (or a bound passes).
  template <typename T>
  void run_until_finished(JoinHandle<T>& handle) {
    ASSERT_TRUE(run([](JoinHandle<T>& h) -> Task<void> {
      while (!h.is_finished()) co_await yield();
    }(handle)));
  }
};

Task<Counted> make_counted(int value, int yields) {
  for (int i = 0; i < yields; ++i) co_await yield();
  co_return Counted(value);
}

Task<void> empty_task() { co_return; }

TEST_P(JoinHandleTest, SpawnAndJoinAllocateOnlyTheTaskFrame) {
  ASSERT_TRUE(run([](Worker& worker) -> Task<void> {
    co_await worker.spawn(empty_task());  // warm-up: the ready queue's storage
    const auto before = testing::thread_allocation_count();
    for (int i = 0; i < 100; ++i) co_await worker.spawn(empty_task());
    EXPECT_EQ(testing::thread_allocation_count() - before, 100u) << "a spawn must allocate only the task's frame";
  }(*worker_)));
}

TEST_P(JoinHandleTest, ResultDestroyedWhenTheHandleIsDroppedAfterTheTaskReturned) {
  JoinHandle<Counted> handle = worker_->spawn(make_counted(7, 2));
  run_until_finished(handle);
  EXPECT_EQ(Counted::live, 1) << "the result lives in the block until the handle takes or drops it";
  handle = JoinHandle<Counted>();
  EXPECT_EQ(Counted::live, 0);
}

TEST_P(JoinHandleTest, ResultDestroyedWhenTheTaskReturnsAfterTheHandleWasDropped) {
  std::atomic<bool> done{false};
  { JoinHandle<Counted> dropped = worker_->spawn(make_counted(7, 3)); }  // detached before it starts
  auto marker = [](std::atomic<bool>* flag) -> Task<void> {
    for (int i = 0; i < 6; ++i) co_await yield();
    flag->store(true);
  };
  ASSERT_TRUE(run(marker(&done)));
  EXPECT_TRUE(done.load());
  EXPECT_EQ(worker_->live_tasks(), 0u);
  EXPECT_EQ(Counted::live, 0) << "a detached task's result must die when it returns";
}

TEST_P(JoinHandleTest, TakenResultIsMovedOutAndTheRestDestroyedOnce) {
  JoinHandle<Counted> handle = worker_->spawn(make_counted(5, 1));
  run_until_finished(handle);
  {
    Counted taken = handle.take_result();
    EXPECT_EQ(taken.value, 5);
    EXPECT_EQ(Counted::live, 2);  // the moved-from one is still in the block
  }
  const int destroyed_before = Counted::destroyed;
  handle = JoinHandle<Counted>();
  EXPECT_EQ(Counted::destroyed - destroyed_before, 1);
  EXPECT_EQ(Counted::live, 0);
}

TEST_P(JoinHandleTest, ParametersDieWhenTheTaskReturnsEvenWhileTheHandleIsHeld) {
  auto body = [](Counted parameter) -> Task<int> {
    co_await yield();
    co_return parameter.value;
  };
  JoinHandle<int> handle = worker_->spawn(body(Counted(3)));
  EXPECT_EQ(Counted::live, 1);
  run_until_finished(handle);
  EXPECT_EQ(Counted::live, 0) << "the frame (and its parameters) must be destroyed when the task returns";
  EXPECT_EQ(handle.take_result(), 3);
}

TEST_P(JoinHandleTest, ExceptionReachesTheHandleOrIsFreedWithIt) {
  auto thrower = [](Counted parameter) -> Task<Counted> {
    co_await yield();
    throw std::runtime_error("boom");
  };
  JoinHandle<Counted> taken = worker_->spawn(thrower(Counted(1)));
  { JoinHandle<Counted> dropped = worker_->spawn(thrower(Counted(2))); }
  run_until_finished(taken);
  EXPECT_THROW((void)taken.take_result(), std::runtime_error);
  EXPECT_EQ(Counted::live, 0);
}

TEST_P(JoinHandleTest, HandleDroppedOnAnotherThreadWhileOrAfterTheTaskRuns) {
  // Each round hands the handle to a thread that drops it after `delay` yields' worth of time, while
  // the task runs for a varying number of turns: both orders of "task returns" and "handle dropped".
  for (int round = 0; round < 50; ++round) {
    JoinHandle<Counted> handle = worker_->spawn(make_counted(round, round % 5));
    std::atomic<bool> dropped{false};
    std::thread dropper([&handle, &dropped, round] {
      if (round % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(50 * (round % 7)));
      handle = JoinHandle<Counted>();
      dropped.store(true, std::memory_order_release);
    });
    ASSERT_TRUE(run([](std::atomic<bool>* flag) -> Task<void> {
      while (!flag->load(std::memory_order_acquire)) co_await yield();
      for (int i = 0; i < 6; ++i) co_await yield();  // let the task return if it has not yet
    }(&dropped)));
    dropper.join();
    EXPECT_EQ(worker_->live_tasks(), 0u);
    EXPECT_EQ(Counted::live, 0) << "round " << round;
  }
}

TEST_P(JoinHandleTest, SpawnedFromAnotherThreadAndDroppedThereBeforeAdoption) {
  std::vector<JoinHandle<Counted>> kept;
  std::thread spawner([&] {
    for (int i = 0; i < 20; ++i) {
      JoinHandle<Counted> handle = worker_->spawn(make_counted(i, 1));
      if (i % 2 == 0) kept.push_back(std::move(handle));  // the odd ones are dropped before adoption
    }
  });
  spawner.join();
  ASSERT_TRUE(run([](std::vector<JoinHandle<Counted>>* handles) -> Task<void> {
    int sum = 0;
    for (auto& handle : *handles) sum += (co_await std::move(handle)).value;
    EXPECT_EQ(sum, 0 + 2 + 4 + 6 + 8 + 10 + 12 + 14 + 16 + 18);
  }(&kept)));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(run(testing::settle()));
  EXPECT_EQ(worker_->live_tasks(), 0u);
  kept.clear();
  EXPECT_EQ(Counted::live, 0);
}

TEST_P(JoinHandleTest, ShutdownDestroysTheFrameAndTheHeldHandleOutlivesIt) {
  auto forever = [](Counted parameter) -> Task<Counted> {
    for (;;) co_await yield_low();
  };
  JoinHandle<Counted> handle = worker_->spawn(forever(Counted(9)));
  ASSERT_TRUE(run(testing::settle()));
  EXPECT_EQ(Counted::live, 1);
  worker_->shutdown();
  EXPECT_EQ(Counted::live, 0) << "shutdown must destroy the frame while the handle still holds the block";
  EXPECT_TRUE(handle.is_abandoned());
  EXPECT_FALSE(handle.is_finished());
  handle.cancel();  // harmless after abandonment
  // Awaiting an abandoned handle does not wait: it throws broken_promise (no value will ever come).
  auto awaiter = [](JoinHandle<Counted> h) -> Task<int> { co_return (co_await std::move(h)).value; };
  try {
    (void)worker_->block_on_for(awaiter(std::move(handle)), std::chrono::milliseconds(1000));
    ADD_FAILURE() << "awaiting an abandoned task returned";
  } catch (const std::future_error& error) {
    EXPECT_EQ(error.code(), std::future_errc::broken_promise);
  }
  EXPECT_EQ(worker_->live_tasks(), 0u);
}

TEST_P(JoinHandleTest, RemoteCancelRequestOutlivesTheHandle) {
  // A cancel posted from another thread holds the block: dropping the handle right after is safe, and
  // the request still reaches the task, which returns and discards its result.
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  auto reader = [](Worker& worker, int fd, Counted parameter) -> Task<Counted> {
    char byte;
    auto n = co_await read_fd(worker, fd, &byte, 1);  // never gets data
    co_return Counted(n ? 1 : (n.error().is_cancelled() ? 2 : 3));
  };
  JoinHandle<Counted> handle = worker_->spawn(reader(*worker_, fds[0], Counted(0)));
  ASSERT_TRUE(run(testing::settle()));
  EXPECT_EQ(worker_->live_tasks(), 1u);
  std::thread canceller([&handle] {
    handle.cancel();
    handle = JoinHandle<Counted>();
  });
  canceller.join();
  ASSERT_TRUE(run([](Worker& worker) -> Task<void> {
    while (worker.live_tasks() != 1) co_await yield();  // 1: this task
  }(*worker_)));
  EXPECT_EQ(Counted::live, 0);
  forget_fd(*worker_, fds[0]);
  close(fds[0]);
  close(fds[1]);
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(JoinHandleTest);

}  // namespace
}  // namespace surge
