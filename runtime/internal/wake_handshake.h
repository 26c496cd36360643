// wake_handshake.h (internal): the sleep/wake handshake between a worker, which sleeps in its backend, and
// the threads that post work to it.
//
// The worker is the only sleeper; any number of threads post. Each side writes its own part first and
// reads the other's second, all seq_cst, so in the single total order of those operations one write comes
// first: either the worker sees the posted work before it sleeps, or the poster sees that it sleeps and
// wakes it. A lost wake-up is impossible, not merely unlikely. Concurrent posters coalesce: per sleep,
// only the first one that finds the worker asleep is told to wake it (one wake-up syscall, not N).
//
//   Worker thread:                               Posting thread:
//     handshake.begin_sleep();                     inbox.push(work);            // publish first
//     if (inbox.empty()) backend.poll(timeout);    if (handshake.should_wake()) backend.wake();
//     handshake.end_sleep();
//
// Threads: begin_sleep() and end_sleep() on the worker's thread only; should_wake() from any thread. The
// work itself must be published (pushed with a store the worker's check will read) before should_wake().
#ifndef SURGE_RUNTIME_INTERNAL_WAKE_HANDSHAKE_H_
#define SURGE_RUNTIME_INTERNAL_WAKE_HANDSHAKE_H_

#include <atomic>

namespace surge::internal {

class WakeHandshake {
 public:
  // The worker is about to sleep. It must look for work once more afterwards and sleep only if there
  // is none: a post that this look misses is guaranteed to see the worker asleep and wake it.
  void begin_sleep() noexcept { state_.store(kSleeping, std::memory_order_seq_cst); }
  // The worker is awake again (woken, timed out, or it never slept because work was there).
  void end_sleep() noexcept { state_.store(kAwake, std::memory_order_seq_cst); }

  // After publishing work: whether the caller must wake the worker. True for exactly one caller per
  // sleep (the first that finds it asleep); false while the worker is awake, which will see the work at
  // its next look, and for later callers, whose wake-up is already on its way.
  bool should_wake() noexcept {
    if (state_.load(std::memory_order_seq_cst) != kSleeping) return false;
    int expected = kSleeping;
    return state_.compare_exchange_strong(expected, kNotified, std::memory_order_seq_cst);
  }

  // For tests and assertions: whether the worker is between begin_sleep() and end_sleep().
  bool sleeping() const noexcept { return state_.load(std::memory_order_seq_cst) != kAwake; }

 private:
  static constexpr int kAwake = 0;
  static constexpr int kSleeping = 1;
  static constexpr int kNotified = 2;  // asleep, and a wake-up has been sent

  std::atomic<int> state_{kAwake};
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_INTERNAL_WAKE_HANDSHAKE_H_
