// Timers on a real worker and a real clock (with tolerances), on every backend: sleeps end in deadline
// order and never early, intervals keep a fixed rate, the loop sleeps until the next timer instead of
// spinning, and a task that keeps yielding cannot hold a timer back for more than a loop turn.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <vector>

#include "runtime/time.h"
#include "runtime/when.h"
#include "runtime/testing/backend_param.h"

namespace surge {
namespace {

using std::chrono::milliseconds;
using Clock = Worker::Clock;
using testing::BackendTest;

class TimerTest : public BackendTest {};

TEST_P(TimerTest, SleepsEndInDeadlineOrderAndNeverEarly) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Worker& worker = *Worker::current();
    std::vector<int> order;
    std::vector<JoinHandle<void>> sleepers;
    // A little ahead, so that every deadline is still in the future when its sleeper starts, even on a
    // slow (sanitised) build: sleepers whose deadlines have all passed would end in the order they start
    // (5 ms was not enough under TSan on a loaded 2-core machine: the 0 and 1 ms sleepers ran late).
    const auto start = Clock::now() + milliseconds(50);
    for (int ms : {40, 10, 30, 1, 20, 0, 25}) {
      sleepers.push_back(worker.spawn([](int ms, std::vector<int>* log, Clock::time_point start) -> Task<void> {
        const auto deadline = start + milliseconds(ms);
        EXPECT_TRUE(co_await sleep_until(deadline));
        EXPECT_GE(Clock::now(), deadline) << "a " << ms << " ms sleep ended early";
        log->push_back(ms);
      }(ms, &order, start)));
    }
    for (auto& sleeper : sleepers) co_await std::move(sleeper);
    EXPECT_EQ(order, (std::vector<int>{0, 1, 10, 20, 25, 30, 40}));
    EXPECT_LT(Clock::now() - start, milliseconds(1000)) << "sleeps took far longer than asked";
  }()));
}

TEST_P(TimerTest, IntervalDoesNotDrift) {
  EXPECT_TRUE(run([]() -> Task<void> {
    const auto start = Clock::now();
    Interval ticker(milliseconds(5), start);
    for (int i = 1; i <= 20; ++i) {
      EXPECT_TRUE(co_await ticker.tick());
      EXPECT_GE(Clock::now(), start + i * milliseconds(5)) << "tick " << i << " came early";
      if (i == 5) co_await sleep_for(milliseconds(12));  // a slow consumer: later ticks catch up
    }
    // Fixed rate: 20 ticks take 100 ms in all, not 100 ms plus the time spent in between.
    EXPECT_LT(Clock::now() - start, milliseconds(100 + 80));
  }()));
}

TEST_P(TimerTest, IdleWorkerSleepsInsteadOfSpinning) {
  rusage before{};
  getrusage(RUSAGE_THREAD, &before);
  EXPECT_TRUE(run([]() -> Task<void> { EXPECT_TRUE(co_await sleep_for(milliseconds(200))); }()));
  rusage after{};
  getrusage(RUSAGE_THREAD, &after);
  const auto cpu_us = [](const rusage& usage) {
    return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1'000'000L + usage.ru_utime.tv_usec +
           usage.ru_stime.tv_usec;
  };
  EXPECT_LT(cpu_us(after) - cpu_us(before), 50'000) << "a 200 ms sleep burned CPU: the loop spins";
  EXPECT_LT(worker_->counters().wait_syscalls, 20u);
}

TEST_P(TimerTest, BusyYieldingTaskDoesNotStarveATimer) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Worker& worker = *Worker::current();
    bool stop = false;
    auto busy = worker.spawn([](bool* stop) -> Task<long> {
      long turns = 0;
      while (!*stop) {
        ++turns;
        co_await yield();  // always ready again: the worker never goes idle
      }
      co_return turns;
    }(&stop));
    const auto start = Clock::now();
    EXPECT_TRUE(co_await sleep_for(milliseconds(20)));
    const auto late = Clock::now() - start - milliseconds(20);
    stop = true;
    const long turns = co_await std::move(busy);
    EXPECT_GT(turns, 10);
    // The documented bound is one loop turn; allow for a loaded 2-core machine.
    EXPECT_LT(late, milliseconds(100)) << "the timer fired " << std::chrono::duration<double, std::milli>(late).count()
                                      << " ms late";
  }()));
}

// A duration beyond what the clock can count means "never", not a deadline wrapped into the past: each
// huge sleep loses a race against a 50 ms one, and its timer goes with it.
TEST_P(TimerTest, HugeSleepsDoNotEndEarly) {
  EXPECT_TRUE(run([]() -> Task<void> {
    Worker& worker = *Worker::current();
    // `make` makes the huge sleep, inside the when_any that awaits it (awaitables do not move).
    const auto race = [](auto make) -> Task<void> {
      const auto start = Clock::now();
      auto any = co_await when_any(make(), sleep_for(milliseconds(50)));
      EXPECT_EQ(any.index, 1u) << "a huge sleep ended before a 50 ms one";
      EXPECT_GE(Clock::now() - start, milliseconds(50));
      auto& loser = std::get<0>(any.results);
      EXPECT_FALSE(loser);
      if (!loser) {
        EXPECT_TRUE(loser.error().is_cancelled()) << loser.error().message();
      }
    };
    co_await race([] { return sleep_for(std::chrono::nanoseconds::max()); });
    co_await race([] { return sleep_for(std::chrono::hours::max()); });
    co_await race([] { return sleep_for(std::chrono::duration<double>(1e30)); });
    co_await race([] { return sleep_until(Clock::time_point::max()); });
    EXPECT_TRUE(internal::WorkerAccess::timers(worker).empty()) << "a huge sleep left its timer behind";
    // Hugely negative: already due, at once.
    const auto start = Clock::now();
    EXPECT_TRUE(co_await sleep_for(std::chrono::hours::min()));
    EXPECT_TRUE(co_await sleep_for(std::chrono::nanoseconds::min()));
    EXPECT_LT(Clock::now() - start, milliseconds(1000));
  }()));
}

TEST(SaturatingAddTest, ClampsAtTheEndsOfTheClock) {
  using Point = Clock::time_point;
  const Point now = Clock::now();
  EXPECT_EQ(saturating_add(now, std::chrono::nanoseconds::max()), Point::max());
  EXPECT_EQ(saturating_add(now, std::chrono::hours::max()), Point::max());
  EXPECT_EQ(saturating_add(Point::max(), std::chrono::nanoseconds(1)), Point::max());
  EXPECT_EQ(saturating_add(now, std::chrono::hours::min()), Point::min());
  EXPECT_EQ(saturating_add(Point::min(), -std::chrono::nanoseconds(1)), Point::min());
  EXPECT_EQ(saturating_add(now, milliseconds(5)), now + milliseconds(5));
  EXPECT_EQ(saturating_add(now, -milliseconds(5)), now - milliseconds(5));
  EXPECT_EQ(saturating_add(now, std::chrono::duration<double, std::micro>(1.5)), now + std::chrono::nanoseconds(1500));
  // Rounded up: a deadline is never earlier than asked.
  EXPECT_EQ(saturating_add(now, std::chrono::duration<double, std::nano>(0.25)), now + std::chrono::nanoseconds(1));
  EXPECT_EQ(saturating_add(Point::max() - std::chrono::hours(1), std::chrono::minutes(59)),
            Point::max() - std::chrono::minutes(1));
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(TimerTest);

}  // namespace
}  // namespace surge
