// spin_lock.h (internal): SpinLock, the lock around a sync primitive's wait lists and a worker's wake list.
//
// One locked instruction to take (an exchange), a plain release store to give back: half of what a
// general mutex (absl::Mutex: a CAS each way) costs, which matters because every cross-worker hand-off
// takes one. Only for critical sections of a few dozen instructions that never block and never wait for
// another lock's holder (a channel moves its messages, which must not throw, and grows its ring during
// warm-up, under it); a holder preempted by the kernel is waited out by yielding the CPU after a short
// spin (these machines have two cores).
//
//   internal::SpinLock lock;
//   { std::lock_guard guard(lock); ...a few stores... }
#ifndef SURGE_RUNTIME_INTERNAL_SPIN_LOCK_H_
#define SURGE_RUNTIME_INTERNAL_SPIN_LOCK_H_

#include <atomic>
#include <thread>

namespace surge::internal {

class SpinLock {
 public:
  void lock() noexcept {
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
    lock_contended();
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  [[gnu::noinline]] void lock_contended() noexcept {
    for (int spins = 0;; ++spins) {
      // Read-only while held: waiting does not steal the line from the holder.
      while (locked_.load(std::memory_order_relaxed)) {
        if (spins < 128) {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
          ++spins;
        } else {
          std::this_thread::yield();  // the holder may have been preempted: let it run
        }
      }
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
    }
  }

  std::atomic<bool> locked_{false};
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_INTERNAL_SPIN_LOCK_H_
