// TaskGroup on a 2-worker Runtime, both backends: join across workers, cancel, timeout(join), failures,
// destruction with live children, cancellation at each kind of await point, and a randomised bounded
// stress (prints its seed; run under --config=tsan too).
#include "runtime/task_group.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/fd_io.h"
#include "runtime/runtime.h"
#include "runtime/testing/backend_param.h"
#include "runtime/testing/runtime_param.h"
#include "runtime/time.h"
#include "runtime/when.h"

namespace surge {
namespace {

using std::chrono::milliseconds;

class TaskGroupTest : public testing::RuntimeTest {};

Task<Result<void>> sleep_then_count(milliseconds duration, std::atomic<int>* count) {
  auto slept = co_await sleep_for(duration);
  if (slept) count->fetch_add(1);
  co_return slept;
}

TEST_P(TaskGroupTest, JoinWaitsForEveryChildOnEveryWorker) {
  if (!runtime_) return;
  std::atomic<int> finished{0};
  const bool ok = run([](std::atomic<int>* finished) -> Task<bool> {
    TaskGroup group;
    EXPECT_TRUE(co_await group.join());  // no child: at once
    for (int i = 0; i < 100; ++i) {
      if (i % 3 == 0) {
        group.spawn(sleep_then_count(milliseconds(i % 4), finished));
      } else {
        group.spawn_on(static_cast<std::size_t>(i % 2), sleep_then_count(milliseconds(i % 5), finished));
      }
    }
    auto joined = co_await group.join();
    EXPECT_EQ(group.size(), 0u);
    co_return joined.ok();
  }(&finished));
  EXPECT_TRUE(ok);
  EXPECT_EQ(finished.load(), 100);
}

TEST_P(TaskGroupTest, SeveralJoinersOnBothWorkersAreAllWoken) {
  if (!runtime_) return;
  std::atomic<int> finished{0};
  const int joined = run([](Runtime& runtime, std::atomic<int>* finished) -> Task<int> {
    TaskGroup group;
    for (int i = 0; i < 20; ++i) group.spawn_on(static_cast<std::size_t>(i % 2), sleep_then_count(milliseconds(5 + i % 3), finished));
    std::vector<JoinHandle<bool>> joiners;
    for (std::size_t w = 0; w < 4; ++w) {
      joiners.push_back(runtime.spawn_on(w % 2, [](TaskGroup& group) -> Task<bool> {
        co_return (co_await group.join()).ok();
      }(group)));
    }
    int woken = 0;
    for (auto& joiner : joiners) woken += (co_await std::move(joiner)) ? 1 : 0;
    co_return woken;
  }(*runtime_, &finished));
  EXPECT_EQ(joined, 4);
  EXPECT_EQ(finished.load(), 20);
}

Task<void> sleep_forever(std::atomic<int>* cancelled) {
  auto slept = co_await sleep_for(std::chrono::hours(1));
  if (!slept && slept.error().is_cancelled()) cancelled->fetch_add(1);
}

TEST_P(TaskGroupTest, CancelAndJoinCancelsChildrenOnBothWorkers) {
  if (!runtime_) return;
  std::atomic<int> cancelled{0};
  const bool ok = run([](std::atomic<int>* cancelled) -> Task<bool> {
    TaskGroup group;
    for (int i = 0; i < 10; ++i) group.spawn_on(static_cast<std::size_t>(i % 2), sleep_forever(cancelled));
    co_await sleep_for(milliseconds(5));
    auto joined = co_await group.cancel_and_join();
    EXPECT_TRUE(group.cancelled());
    // A child spawned into a cancelled group starts cancelled.
    group.spawn_on(1, sleep_forever(cancelled));
    EXPECT_TRUE(co_await group.join());
    co_return joined.ok();
  }(&cancelled));
  EXPECT_TRUE(ok);
  EXPECT_EQ(cancelled.load(), 11);
}

TEST_P(TaskGroupTest, TimeoutOnJoinCancelsTheChildrenAndReturnsETimedOut) {
  if (!runtime_) return;
  std::atomic<int> cancelled{0};
  std::atomic<int> finished{0};
  const bool ok = run([](std::atomic<int>* cancelled, std::atomic<int>* finished) -> Task<bool> {
    TaskGroup group;
    group.spawn_on(0, sleep_then_count(milliseconds(1), finished));
    group.spawn_on(1, sleep_forever(cancelled));
    group.spawn_on(0, sleep_forever(cancelled));
    auto joined = co_await timeout(milliseconds(30), group.join());
    EXPECT_FALSE(joined);
    EXPECT_TRUE(!joined && joined.error().is_timed_out()) << (joined ? "ok" : joined.error().message());
    co_return group.size() == 0;  // no child left running
  }(&cancelled, &finished));
  EXPECT_TRUE(ok);
  EXPECT_EQ(cancelled.load(), 2);
  EXPECT_EQ(finished.load(), 1);
}

TEST_P(TaskGroupTest, CancellingTheJoinerCancelsTheChildren) {
  if (!runtime_) return;
  std::atomic<int> cancelled{0};
  auto joiner = runtime_->spawn_on(0, [](std::atomic<int>* cancelled) -> Task<Result<void>> {
    TaskGroup group;
    for (int i = 0; i < 4; ++i) group.spawn_on(static_cast<std::size_t>(i % 2), sleep_forever(cancelled));
    co_return co_await group.join();
  }(&cancelled));
  const bool ok = run([](JoinHandle<Result<void>>* joiner) -> Task<bool> {
    co_await sleep_for(milliseconds(5));
    joiner->cancel();
    auto joined = co_await std::move(*joiner);
    co_return !joined && joined.error().is_cancelled();
  }(&joiner));
  EXPECT_TRUE(ok);
  EXPECT_EQ(cancelled.load(), 4);
}

TEST_P(TaskGroupTest, AChildsExceptionCancelsTheOthersAndIsRethrownByJoin) {
  if (!runtime_) return;
  std::atomic<int> cancelled{0};
  const bool ok = run([](std::atomic<int>* cancelled) -> Task<bool> {
    TaskGroup group;
    group.spawn_on(0, sleep_forever(cancelled));
    group.spawn_on(1, sleep_forever(cancelled));
    group.spawn_on(1, []() -> Task<int> {
      co_await sleep_for(milliseconds(2));
      throw std::runtime_error("child failed");
    }());
    bool threw = false;
    try {
      (void)co_await group.join();
    } catch (const std::runtime_error& error) {
      threw = std::string(error.what()) == "child failed";
    }
    co_return threw && group.size() == 0;
  }(&cancelled));
  EXPECT_TRUE(ok);
  EXPECT_EQ(cancelled.load(), 2);
}

TEST_P(TaskGroupTest, DestroyingTheGroupCancelsAndDetachesItsChildren) {
  if (!runtime_) return;
  auto token = std::make_shared<int>(1);
  std::atomic<int> cancelled{0};
  run([](std::shared_ptr<int> token, std::atomic<int>* cancelled) -> Task<bool> {
    TaskGroup group;
    for (int i = 0; i < 6; ++i) {
      group.spawn_on(static_cast<std::size_t>(i % 2), [](std::shared_ptr<int> token, std::atomic<int>* cancelled) -> Task<void> {
        co_await sleep_forever(cancelled);
      }(token, cancelled));
    }
    co_await sleep_for(milliseconds(2));
    co_return true;  // the group goes out of scope with six children running
  }(token, &cancelled));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (token.use_count() > 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  EXPECT_EQ(token.use_count(), 1) << "children of a destroyed group were not cancelled";
  EXPECT_EQ(cancelled.load(), 6);
}

TEST_P(TaskGroupTest, ShutdownWithAJoinPendingLeaksNothing) {
  if (!runtime_) return;
  std::atomic<int> cancelled{0};
  (void)runtime_->spawn_on(0, [](std::atomic<int>* cancelled) -> Task<void> {
    TaskGroup group;
    for (int i = 0; i < 4; ++i) group.spawn_on(static_cast<std::size_t>(i % 2), sleep_forever(cancelled));
    (void)co_await group.join();
  }(&cancelled));
  std::this_thread::sleep_for(milliseconds(5));
  runtime_->shutdown();  // destroys joiner and children on both workers: ASan checks the rest
}

// A child that goes through one await of each kind; at step `cut` it takes the variant that never ends
// by itself, so only the group's cancellation gets it past; `reached` and `cancelled_at` report where.
Task<void> walk_await_points(int cut, std::atomic<int>* reached, std::atomic<int>* cancelled_at) {
  auto long_if = [cut](int step) { return step == cut ? std::chrono::milliseconds(std::chrono::hours(1)) : milliseconds(1); };
  Worker& worker = *Worker::current();
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0) co_return;
  for (int step = 0; step < 5; ++step) {
    reached->store(step);
    bool cancelled = false;
    switch (step) {
      case 0: {  // a sleep
        auto slept = co_await sleep_for(long_if(step));
        cancelled = !slept && slept.error().is_cancelled();
        break;
      }
      case 1: {  // I/O: a read on a pipe, with a byte waiting unless this is the cut
        if (step != cut) (void)::write(pipe_fds[1], "x", 1);
        char byte;
        auto n = co_await read_fd(worker, pipe_fds[0], &byte, 1);
        cancelled = !n && n.error().is_cancelled();
        break;
      }
      case 2: {  // a JoinHandle of a task on the other worker
        const std::size_t other = 1 - worker.index();
        auto slept = co_await worker.runtime()->spawn_on(other, [](milliseconds d) -> Task<Result<void>> {
          co_return co_await sleep_for(d);
        }(long_if(step)));
        cancelled = !slept && slept.error().is_cancelled();
        break;
      }
      case 3: {  // a nested group's join
        TaskGroup nested;
        nested.spawn_on(1 - worker.index(), [](milliseconds d) -> Task<void> { (void)co_await sleep_for(d); }(long_if(step)));
        auto joined = co_await nested.join();
        cancelled = !joined && joined.error().is_cancelled();
        break;
      }
      case 4: {  // when_any
        auto any = co_await when_any(sleep_for(long_if(step)), sleep_for(long_if(step) * 2));
        auto& first = std::get<0>(any.results);
        cancelled = !first && first.error().is_cancelled();
        break;
      }
    }
    if (cancelled) {
      cancelled_at->store(step);
      break;
    }
  }
  forget_fd(worker, pipe_fds[0]);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

TEST_P(TaskGroupTest, CancellationReachesEachAwaitPoint) {
  if (!runtime_) return;
  for (int cut = 0; cut < 5; ++cut) {
    for (std::size_t where = 0; where < 2; ++where) {
      std::atomic<int> reached{-1};
      std::atomic<int> cancelled_at{-1};
      const bool ok = run([](int cut, std::size_t where, std::atomic<int>* reached, std::atomic<int>* cancelled_at) -> Task<bool> {
        TaskGroup group;
        group.spawn_on(where, walk_await_points(cut, reached, cancelled_at));
        while (reached->load() < cut) co_await sleep_for(milliseconds(1));
        co_await sleep_for(milliseconds(2));  // let it suspend at the cut (either way it ends there)
        co_return (co_await group.cancel_and_join()).ok();
      }(cut, where, &reached, &cancelled_at));
      EXPECT_TRUE(ok);
      EXPECT_EQ(cancelled_at.load(), cut) << "cut " << cut << " on worker " << where;
    }
  }
}

// Random groups: random children on random workers, some spawning more children into the group from
// their own worker, some throwing; each round ends by join, cancel_and_join, timeout(join) or dropping
// the group. Bounded in rounds and time; the seed is printed (SURGE_SEED=... to replay).
TEST_P(TaskGroupTest, RandomisedStress) {
  if (!runtime_) return;
  const char* env = std::getenv("SURGE_SEED");
  const std::uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  std::printf("TaskGroup stress seed: %llu (SURGE_SEED=%llu to replay)\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed));
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 random(seed);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  auto live = std::make_shared<int>(0);  // every child holds a copy: its use count tells who is left
  for (int round = 0; round < 150 && std::chrono::steady_clock::now() < give_up; ++round) {
    const std::uint64_t round_seed = random();
    const int ending = static_cast<int>(round_seed % 4);
    run([](std::uint64_t seed, int ending, std::shared_ptr<int> live) -> Task<bool> {
      std::mt19937_64 random(seed);
      auto group = std::make_unique<TaskGroup>();
      struct Child {
        static Task<void> body(TaskGroup* group, std::uint64_t seed, int depth, std::shared_ptr<int> live) {
          std::mt19937_64 random(seed);
          for (int step = 0, steps = static_cast<int>(random() % 4); step < steps; ++step) {
            switch (random() % 4) {
              case 0: (void)co_await sleep_for(milliseconds(random() % 3)); break;
              case 1: co_await yield(); break;
              case 2:
                if (depth < 2 && group != nullptr) {
                  group->spawn_on(static_cast<std::size_t>(random() % 2), body(group, random(), depth + 1, live));
                }
                break;
              case 3:
                if (random() % 50 == 0) throw std::runtime_error("random failure");
                break;
            }
          }
        }
      };
      const int children = 1 + static_cast<int>(random() % 20);
      // Grandchildren are spawned into the group only while it certainly exists (not for "drop").
      TaskGroup* spawn_into = ending == 3 ? nullptr : group.get();
      for (int i = 0; i < children; ++i) {
        group->spawn_on(static_cast<std::size_t>(random() % 2), Child::body(spawn_into, random(), 0, live));
      }
      try {
        switch (ending) {
          case 0: (void)co_await group->join(); break;
          case 1: (void)co_await group->cancel_and_join(); break;
          case 2: (void)co_await timeout(milliseconds(random() % 3), group->join()); break;
          case 3: group.reset(); break;  // detach-cancel
        }
      } catch (const std::runtime_error&) {
      }
      if (group) EXPECT_EQ(group->size(), 0u);
      co_return true;
    }(round_seed, ending, live));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (live.use_count() > 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  EXPECT_EQ(live.use_count(), 1) << "children left behind; seed " << seed;
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(TaskGroupTest);

}  // namespace
}  // namespace surge
