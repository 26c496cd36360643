// watch.h: a watch channel: one sender publishes the latest value (a configuration, a health state, a
// "draining" flag), any number of receivers read it and wait for it to change. Intermediate values may be
// skipped: a receiver sees the newest, never a backlog.
//
//   auto [config_tx, config_rx] = surge::watch<Config>(load_config());
//   // a reader, on any worker (copy config_rx for each):
//   Config current = config_rx.get();                 // marks this version seen
//   while (co_await config_rx.changed()) {            // Result<void>: EPIPE once the sender is gone
//     current = config_rx.get();
//   }
//   // the writer, any thread:
//   config_tx.send(new_config);                       // wakes every waiting changed()
//
// Threads: both ends may be used on any worker; send() and get() from any thread. A value is copied out
// under a reader lock (std::shared_mutex), so get() needs T copyable and readers do not block each other.
// Cancellation: changed() still waiting returns ECANCELED and leaves the seen version as it was; one that
// was already woken returns success. No allocation but the channel's own (one) and T's copies.
#ifndef SURGE_SYNC_WATCH_H_
#define SURGE_SYNC_WATCH_H_

#include <atomic>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <utility>

#include "runtime/result.h"
#include "runtime/internal/waiter.h"

namespace surge {

template <typename T>
class WatchSender;
template <typename T>
class WatchReceiver;
template <typename T>
std::pair<WatchSender<T>, WatchReceiver<T>> watch(T initial);

namespace internal {

template <typename T>
struct WatchState {
  explicit WatchState(T initial) : value(std::move(initial)) {}
  void release() noexcept {
    if (references.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  // std::shared_mutex rather than absl::Mutex: Debian's abseil is not built for ThreadSanitizer, which
  // then cannot see absl::Mutex order anything (it reports races between a send() and a get()).
  std::shared_mutex value_mutex;
  T value;  // guarded by value_mutex
  std::atomic<std::uint64_t> version{0};  // bumped under value_mutex with each send()
  SpinLock lock;
  WakeNodeList waiters;        // guarded by lock: changed() calls waiting
  bool sender_gone = false;    // guarded by lock
  std::atomic<std::size_t> references{2};
};

}  // namespace internal

template <typename T>
class WatchSender {
 public:
  WatchSender(WatchSender&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  WatchSender(const WatchSender&) = delete;
  WatchSender& operator=(const WatchSender&) = delete;
  ~WatchSender() {
    if (state_ == nullptr) return;
    {
      internal::PendingWakes wakes;
      std::lock_guard guard(state_->lock);
      state_->sender_gone = true;
      while (!state_->waiters.empty()) {
        wakes.wake(internal::as_waiter(state_->waiters.pop_front()), internal::WaitState::kClosed);
      }
    }
    state_->release();
  }

  // Publishes `value` and wakes every waiting changed(). Never waits. Any thread.
  void send(T value) {
    {
      std::unique_lock value_lock(state_->value_mutex);
      std::swap(state_->value, value);  // the old value is destroyed outside the lock
      state_->version.fetch_add(1, std::memory_order_release);
    }
    internal::PendingWakes wakes;
    std::lock_guard guard(state_->lock);
    while (!state_->waiters.empty()) wakes.wake(internal::as_waiter(state_->waiters.pop_front()));
  }

  // A new receiver that has seen the current value.
  WatchReceiver<T> subscribe() const noexcept;

 private:
  friend std::pair<WatchSender<T>, WatchReceiver<T>> watch<T>(T);
  explicit WatchSender(internal::WatchState<T>* state) noexcept : state_(state) {}
  internal::WatchState<T>* state_;
};

template <typename T>
class WatchReceiver {
 public:
  class ChangedAwaiter;

  WatchReceiver(const WatchReceiver& other) noexcept : state_(other.state_), seen_(other.seen_) {
    state_->references.fetch_add(1, std::memory_order_relaxed);
  }
  WatchReceiver(WatchReceiver&& other) noexcept : state_(std::exchange(other.state_, nullptr)), seen_(other.seen_) {}
  WatchReceiver& operator=(WatchReceiver other) noexcept {
    std::swap(state_, other.state_);
    seen_ = other.seen_;
    return *this;
  }
  ~WatchReceiver() {
    if (state_ != nullptr) state_->release();
  }

  // A copy of the current value; marks it seen.
  T get() {
    std::shared_lock value_lock(state_->value_mutex);
    seen_ = state_->version.load(std::memory_order_relaxed);
    return state_->value;
  }

  // Whether a value newer than the last one seen (by get() or changed()) has been sent.
  bool has_changed() const noexcept { return state_->version.load(std::memory_order_acquire) != seen_; }

  // co_await rx.changed() -> Result<void>: once a newer value than the last seen has been sent (at once if
  // one has), marking it seen; EPIPE when the sender is gone and nothing newer will come.
  ChangedAwaiter changed() noexcept;

 private:
  friend class WatchSender<T>;
  friend std::pair<WatchSender<T>, WatchReceiver<T>> watch<T>(T);
  WatchReceiver(internal::WatchState<T>* state, std::uint64_t seen) noexcept : state_(state), seen_(seen) {}
  internal::WatchState<T>* state_;
  std::uint64_t seen_;
};

template <typename T>
class [[nodiscard]] WatchReceiver<T>::ChangedAwaiter : public internal::WaitAwaiter<ChangedAwaiter> {
 public:
  explicit ChangedAwaiter(WatchReceiver& receiver) noexcept : receiver_(&receiver) {}
  ~ChangedAwaiter() { this->abandon(); }

  bool await_ready() noexcept { return take_new_version(); }
  Result<void> await_resume() noexcept {
    switch (this->finish()) {
      case internal::WaitState::kCancelled:
        return Error(ECANCELED, "WatchReceiver::changed");
      case internal::WaitState::kClosed:
        if (take_new_version()) return ok();  // sent just before the sender went away
        return Error(EPIPE, "WatchReceiver::changed");
      case internal::WaitState::kGranted:
        (void)take_new_version();
        return ok();
      default:
        return ok();
    }
  }

 private:
  friend class internal::WaitAwaiter<ChangedAwaiter>;
  internal::SpinLock& wait_lock() noexcept { return receiver_->state_->lock; }
  internal::WakeNodeList& wait_list() noexcept { return receiver_->state_->waiters; }

  bool take_new_version() noexcept {
    const std::uint64_t version = receiver_->state_->version.load(std::memory_order_acquire);
    if (version == receiver_->seen_) return false;
    receiver_->seen_ = version;
    return true;
  }
  bool try_complete_locked(internal::PendingWakes&) noexcept {
    if (take_new_version()) return true;
    if (!receiver_->state_->sender_gone) return false;
    this->waiter_.state = internal::WaitState::kClosed;
    return true;
  }
  void left_queue_locked(internal::PendingWakes&) noexcept {}
  void undo_grant_locked(internal::PendingWakes&) noexcept {}

  WatchReceiver* receiver_;
};

template <typename T>
typename WatchReceiver<T>::ChangedAwaiter WatchReceiver<T>::changed() noexcept {
  return ChangedAwaiter(*this);
}

template <typename T>
WatchReceiver<T> WatchSender<T>::subscribe() const noexcept {
  state_->references.fetch_add(1, std::memory_order_relaxed);
  return WatchReceiver<T>(state_, state_->version.load(std::memory_order_acquire));
}

template <typename T>
std::pair<WatchSender<T>, WatchReceiver<T>> watch(T initial) {
  auto* state = new internal::WatchState<T>(std::move(initial));
  return {WatchSender<T>(state), WatchReceiver<T>(state, 0)};
}

}  // namespace surge

#endif  // SURGE_SYNC_WATCH_H_
