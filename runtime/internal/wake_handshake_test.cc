// WakeHandshake: no lost wake-up and one wake-up per sleep, with real threads racing a sleeper.
//
// The sleeper is a stand-in for a worker: it publishes nothing, takes posted items, and sleeps on a
// semaphore (the stand-in for the backend's wait) only after begin_sleep() and a last look at the items.
// Posters publish an item, then wake the sleeper if should_wake() says so. A lost wake-up shows as a sleep
// that waits out its (generous) timeout with items pending; more wake-ups than sleeps as a semaphore count
// that grows. The sequential tests pin the protocol (which side looks when); the stress test races it.
// What it cannot show reliably is a weakened memory order: with begin_sleep() as a release store the
// store-load window on x86 is a few cycles wide, and 100,000 rounds here did not hit it.
#include "runtime/internal/wake_handshake.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <semaphore>
#include <thread>
#include <vector>

namespace surge::internal {
namespace {

TEST(WakeHandshakeTest, AwakeWorkerNeedsNoWakeUp) {
  WakeHandshake handshake;
  EXPECT_FALSE(handshake.should_wake());
  EXPECT_FALSE(handshake.sleeping());
}

TEST(WakeHandshakeTest, OnlyTheFirstPosterWakesASleeper) {
  WakeHandshake handshake;
  handshake.begin_sleep();
  EXPECT_TRUE(handshake.sleeping());
  EXPECT_TRUE(handshake.should_wake());
  EXPECT_FALSE(handshake.should_wake()) << "a second wake-up for the same sleep";
  handshake.end_sleep();
  EXPECT_FALSE(handshake.should_wake());
  handshake.begin_sleep();  // a new sleep needs a new wake-up
  EXPECT_TRUE(handshake.should_wake());
}

// The two interleavings that matter, one at a time: a post before the sleeper's last look is seen by that
// look (no sleep, no wake-up needed); a post after it finds the sleeper asleep and must wake it.
TEST(WakeHandshakeTest, APostIsSeenByTheLastLookOrWakesTheSleeper) {
  WakeHandshake handshake;
  int inbox = 0;
  handshake.begin_sleep();
  ++inbox;                                   // a poster publishes before the last look...
  const bool woken = handshake.should_wake();  // ...and wakes: harmless, the sleeper did not sleep
  EXPECT_NE(inbox, 0) << "the last look sees the post";
  handshake.end_sleep();
  EXPECT_TRUE(woken);

  handshake.begin_sleep();
  EXPECT_EQ(inbox - 1, 0);  // the last look finds nothing new: the sleeper sleeps
  ++inbox;                  // a post after the look
  EXPECT_TRUE(handshake.should_wake()) << "a post after the last look must wake the sleeper";
  handshake.end_sleep();
}

TEST(WakeHandshakeTest, RacingPostersNeverLoseAWakeUp) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  // Ping-pong: each poster publishes an item only once the sleeper has taken the previous ones, after a
  // random pause, so that most posts land right around the sleeper's begin_sleep() and last look.
  constexpr int kPosters = 2;
  constexpr int kItemsPerPoster = 5000;
  constexpr auto kLostWakeUp = std::chrono::seconds(5);  // a sleep this long with work pending: lost

  WakeHandshake handshake;
  std::atomic<int> published{0};
  std::atomic<int> taken{0};
  std::counting_semaphore<> wake_ups(0);
  std::atomic<int> wake_ups_sent{0};
  std::atomic<bool> lost{false};

  std::vector<std::thread> posters;
  for (int p = 0; p < kPosters; ++p) {
    posters.emplace_back([&, p] {
      std::mt19937 random(seed + static_cast<unsigned>(p));
      for (int i = 0; i < kItemsPerPoster && !lost.load(); ++i) {
        while (published.load() > taken.load() && !lost.load()) std::this_thread::yield();
        for (unsigned spin = random() % 256; spin > 0; --spin) std::atomic_signal_fence(std::memory_order_seq_cst);
        published.fetch_add(1, std::memory_order_seq_cst);  // publish, then check the sleeper
        if (handshake.should_wake()) {
          wake_ups_sent.fetch_add(1, std::memory_order_relaxed);
          wake_ups.release();
        }
      }
    });
  }

  const int total = kPosters * kItemsPerPoster;
  int sleeps = 0;
  while (taken.load() < total && !lost.load()) {
    const int seen = published.load(std::memory_order_seq_cst);  // "run the posted work"
    taken.store(seen);
    if (seen == total) break;
    handshake.begin_sleep();
    if (published.load(std::memory_order_seq_cst) == seen) {  // the last look: nothing new, so sleep
      ++sleeps;
      if (!wake_ups.try_acquire_for(kLostWakeUp) && published.load() != seen) lost.store(true);
    }
    handshake.end_sleep();
  }
  for (auto& poster : posters) poster.join();

  EXPECT_FALSE(lost.load()) << "the sleeper slept through posted work (seed " << seed << ")";
  // Every wake-up sent was for a sleep, and at most one per sleep.
  EXPECT_LE(wake_ups_sent.load(), sleeps) << "seed " << seed;
  std::printf("%d items, %d sleeps, %d wake-ups\n", taken.load(), sleeps, wake_ups_sent.load());
}

}  // namespace
}  // namespace surge::internal
