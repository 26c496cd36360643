// TimerWheel against a manual clock: never early, in expiry order, O(1) cancel with stale ids, long
// ranges, callbacks that re-enter the wheel, and a randomised comparison with a reference model.
#include "timer/timer_wheel.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <vector>

namespace surge {
namespace {

struct Fired {
  std::vector<std::pair<int, std::uint64_t>> log;  // (timer tag, wheel tick when it fired)
  TimerWheel* wheel = nullptr;
};

struct Tag {
  Fired* fired;
  int id;
};

void record(void* context) noexcept {
  auto* tag = static_cast<Tag*>(context);
  tag->fired->log.emplace_back(tag->id, tag->fired->wheel->current_tick());
}

class TimerWheelTest : public ::testing::Test {
 protected:
  TimerId add(std::uint64_t expiry, int id) {
    tags_.push_back(std::make_unique<Tag>(Tag{&fired_, id}));
    return wheel_.insert(expiry, &record, tags_.back().get());
  }

  TimerWheel wheel_{0};
  Fired fired_{{}, &wheel_};
  std::vector<std::unique_ptr<Tag>> tags_;
};

TEST_F(TimerWheelTest, NeverFiresEarly) {
  add(10, 1);
  EXPECT_EQ(wheel_.advance(9), 0u);
  EXPECT_TRUE(fired_.log.empty());
  EXPECT_EQ(wheel_.advance(10), 1u);
  ASSERT_EQ(fired_.log.size(), 1u);
  EXPECT_EQ(fired_.log[0].second, 10u);
  EXPECT_TRUE(wheel_.empty());
}

TEST_F(TimerWheelTest, FiresInExpiryOrderAcrossLevels) {
  const std::uint64_t expiries[] = {5000, 3, 64, 63, 65, 4096, 4095, 262144, 1, 100000};
  for (int i = 0; i < 10; ++i) add(expiries[i], i);
  wheel_.advance(1'000'000);
  ASSERT_EQ(fired_.log.size(), 10u);
  for (std::size_t i = 1; i < fired_.log.size(); ++i) {
    EXPECT_LE(expiries[fired_.log[i - 1].first], expiries[fired_.log[i].first]);
  }
}

TEST_F(TimerWheelTest, FiresAtExactTickWhenStepping) {
  // Step one tick at a time across level boundaries: each timer fires exactly at its tick.
  for (std::uint64_t expiry : {1u, 63u, 64u, 65u, 127u, 128u, 4095u, 4096u, 4097u, 262143u, 262144u}) {
    add(expiry, static_cast<int>(expiry));
  }
  for (std::uint64_t tick = 1; tick <= 262144 + 1; ++tick) wheel_.advance(tick);
  ASSERT_EQ(fired_.log.size(), 11u);
  for (const auto& [id, tick] : fired_.log) EXPECT_EQ(static_cast<std::uint64_t>(id), tick);
}

TEST_F(TimerWheelTest, CancelIsHarmlessAfterFiringAndWithStaleIds) {
  TimerId first = add(5, 1);
  EXPECT_TRUE(wheel_.cancel(first));
  EXPECT_FALSE(wheel_.cancel(first)) << "a second cancel must be a no-op";
  TimerId reused = add(7, 2);  // takes the freed entry
  EXPECT_EQ(reused.index, first.index);
  EXPECT_FALSE(wheel_.cancel(first)) << "a stale id must not cancel the entry's new timer";
  wheel_.advance(10);
  ASSERT_EQ(fired_.log.size(), 1u);
  EXPECT_EQ(fired_.log[0].first, 2);
  EXPECT_FALSE(wheel_.cancel(reused)) << "cancelling a fired timer is a no-op";
  EXPECT_FALSE(wheel_.cancel(TimerId{}));
  EXPECT_FALSE(wheel_.cancel(TimerId{12345, 0}));
}

TEST_F(TimerWheelTest, TimersInThePastFireAtNextAdvance) {
  wheel_.advance(1000);
  add(10, 1);
  EXPECT_EQ(wheel_.next_event_tick(), std::optional<std::uint64_t>(1000));
  EXPECT_EQ(wheel_.advance(1000), 1u);
}

TEST_F(TimerWheelTest, LongRangesUpToYearsAndBeyondTheWheel) {
  const std::uint64_t three_years = 3ull * 365 * 24 * 3600 * 1000;  // beyond 2^36 ms: overflow list
  const std::uint64_t one_day = 24ull * 3600 * 1000;
  add(three_years, 1);
  add(one_day, 2);
  wheel_.advance(one_day - 1);
  EXPECT_TRUE(fired_.log.empty());
  wheel_.advance(one_day);
  ASSERT_EQ(fired_.log.size(), 1u);
  wheel_.advance(three_years - 1);
  EXPECT_EQ(fired_.log.size(), 1u);
  wheel_.advance(three_years);
  ASSERT_EQ(fired_.log.size(), 2u);
  EXPECT_EQ(fired_.log[1].second, three_years);
}

TEST_F(TimerWheelTest, NextEventTickNeverPassesTheEarliestTimer) {
  EXPECT_FALSE(wheel_.next_event_tick().has_value());
  add(300, 1);
  add(70'000, 2);
  const auto next = wheel_.next_event_tick();
  ASSERT_TRUE(next.has_value());
  EXPECT_LE(*next, 300u);
  EXPECT_GT(*next, 0u);
}

struct Rescheduler {
  TimerWheel* wheel;
  int remaining;
  std::vector<std::uint64_t> ticks;
  TimerId other;
};

void reschedule(void* context) noexcept {
  auto* self = static_cast<Rescheduler*>(context);
  self->ticks.push_back(self->wheel->current_tick());
  self->wheel->cancel(self->other);  // cancelling from inside a callback
  if (--self->remaining > 0) self->wheel->insert(self->wheel->current_tick() + 10, &reschedule, self);
}

TEST_F(TimerWheelTest, CallbacksMayInsertAndCancel) {
  Rescheduler state{&wheel_, 5, {}, {}};
  state.other = add(25, 99);  // cancelled by the first callback, before it is due
  wheel_.insert(10, &reschedule, &state);
  wheel_.advance(1000);
  EXPECT_EQ(state.ticks, (std::vector<std::uint64_t>{10, 20, 30, 40, 50}));
  EXPECT_TRUE(fired_.log.empty());
}

// A timer that re-arms itself for the current tick from its own callback (a "run again soon" loop):
// each advance() fires it once and returns; the new insertion waits for the next advance(). Bounded at
// kLimit firings so that a wheel that keeps firing within one advance() fails instead of hanging.
struct Rearmer {
  static constexpr int kLimit = 1000;
  TimerWheel* wheel;
  int fired = 0;
  std::uint64_t expiry_offset = 0;  // re-arm for current_tick() - offset (0: the current tick)
};

void rearm(void* context) noexcept {
  auto* self = static_cast<Rearmer*>(context);
  if (++self->fired < Rearmer::kLimit) {
    self->wheel->insert(self->wheel->current_tick() - self->expiry_offset, &rearm, self);
  }
}

TEST_F(TimerWheelTest, TimerRearmedForTheCurrentTickFiresOncePerAdvance) {
  Rearmer state{&wheel_};
  wheel_.insert(5, &rearm, &state);
  EXPECT_EQ(wheel_.advance(5), 1u) << "a re-armed timer fired again within the same advance()";
  EXPECT_EQ(state.fired, 1);
  EXPECT_EQ(wheel_.size(), 1u);
  // Due now, so the owner must not sleep before the next advance().
  EXPECT_EQ(wheel_.next_event_tick(), std::optional<std::uint64_t>(5));
  EXPECT_EQ(wheel_.advance(5), 1u);
  EXPECT_EQ(state.fired, 2);
  EXPECT_EQ(wheel_.advance(9), 1u);
  EXPECT_EQ(state.fired, 3);
  EXPECT_EQ(wheel_.next_event_tick(), std::optional<std::uint64_t>(9));
}

TEST_F(TimerWheelTest, TimerRearmedForAPastTickFiresAtTheNextAdvance) {
  Rearmer state{&wheel_, 0, 3};
  wheel_.insert(10, &rearm, &state);
  EXPECT_EQ(wheel_.advance(100), 1u);
  EXPECT_EQ(state.fired, 1);
  EXPECT_EQ(wheel_.next_event_tick(), std::optional<std::uint64_t>(100));
  EXPECT_EQ(wheel_.advance(100), 1u);
  EXPECT_EQ(state.fired, 2);
}

TEST_F(TimerWheelTest, HeldTimerCanBeCancelledBeforeItFires) {
  struct Inserter {
    TimerWheel* wheel;
    Tag* tag;
    TimerId inserted;
  };
  tags_.push_back(std::make_unique<Tag>(Tag{&fired_, 7}));
  Inserter inserter{&wheel_, tags_.back().get(), {}};
  wheel_.insert(
      3,
      [](void* context) noexcept {
        auto* self = static_cast<Inserter*>(context);
        self->inserted = self->wheel->insert(self->wheel->current_tick(), &record, self->tag);
      },
      &inserter);
  EXPECT_EQ(wheel_.advance(3), 1u);
  EXPECT_TRUE(fired_.log.empty());
  EXPECT_TRUE(wheel_.cancel(inserter.inserted));
  EXPECT_TRUE(wheel_.empty());
  EXPECT_FALSE(wheel_.next_event_tick().has_value());
  EXPECT_EQ(wheel_.advance(4), 0u);
  EXPECT_TRUE(fired_.log.empty());
}

TEST_F(TimerWheelTest, ExpiryAtTheEndOfTimeNeverFires) {
  // What a deadline of time_point::max() becomes: far beyond the wheel's range, in the overflow list.
  const TimerId never = add(UINT64_MAX, 1);
  add(20, 2);
  const auto next = wheel_.next_event_tick();
  ASSERT_TRUE(next.has_value());
  EXPECT_LE(*next, 20u);
  wheel_.advance(std::uint64_t{1} << 50);
  ASSERT_EQ(fired_.log.size(), 1u);
  EXPECT_EQ(fired_.log[0].first, 2);
  EXPECT_EQ(wheel_.size(), 1u);
  ASSERT_TRUE(wheel_.next_event_tick().has_value());
  EXPECT_GT(*wheel_.next_event_tick(), wheel_.current_tick());
  EXPECT_TRUE(wheel_.cancel(never));
  EXPECT_TRUE(wheel_.empty());
}

TEST_F(TimerWheelTest, IdleJumpOfMillenniaSkipsEmptyTicks) {
  // 2^50 ms is about 35,000 years: a wheel that stepped tick by tick would never finish (the test's
  // time limit would fail it); jumping between occupied slots takes a handful of steps.
  add(5, 1);
  add(std::uint64_t{1} << 49, 2);
  wheel_.advance(std::uint64_t{1} << 50);
  EXPECT_EQ(fired_.log.size(), 2u);
  EXPECT_TRUE(wheel_.empty());
}

// Random inserts, cancels and advances, checked against a multimap of (expiry -> id).
TEST_F(TimerWheelTest, MatchesReferenceModel) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 random(seed);
  std::map<int, std::pair<TimerId, std::uint64_t>> pending;  // id -> (wheel id, expiry)
  std::uint64_t now = 0;
  int next_id = 0;
  for (int step = 0; step < 20'000; ++step) {
    const int action = static_cast<int>(random() % 10);
    if (action < 5) {
      // Mostly near, sometimes far: exercise every level.
      const int magnitude = static_cast<int>(random() % 40);
      const std::uint64_t delta = random() % ((std::uint64_t{1} << magnitude) + 1);
      const int id = next_id++;
      pending[id] = {add(now + delta, id), now + delta};
    } else if (action < 7 && !pending.empty()) {
      auto it = std::next(pending.begin(), static_cast<long>(random() % pending.size()));
      EXPECT_TRUE(wheel_.cancel(it->second.first));
      pending.erase(it);
    } else {
      now += random() % (std::uint64_t{1} << (random() % 30));
      const std::size_t before = fired_.log.size();
      wheel_.advance(now);
      for (std::size_t i = before; i < fired_.log.size(); ++i) {
        const auto it = pending.find(fired_.log[i].first);
        ASSERT_NE(it, pending.end()) << "fired a timer that was cancelled or fired already";
        EXPECT_LE(it->second.second, now) << "fired early";
        pending.erase(it);
      }
      for (const auto& [id, entry] : pending) ASSERT_GT(entry.second, now) << "timer " << id << " is late";
    }
  }
  EXPECT_EQ(wheel_.size(), pending.size());
}

}  // namespace
}  // namespace surge
