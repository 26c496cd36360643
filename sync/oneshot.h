// oneshot.h: a one-shot channel: one value, sent once, received once (a reply to a request, the result
// of work handed to another worker).
//
//   auto [reply_tx, reply_rx] = surge::oneshot<Reply>();
//   requests.try_send(Request{..., std::move(reply_tx)});      // the handler calls reply_tx.send(reply)
//   surge::Result<Reply> reply = co_await reply_rx.recv();     // EPIPE if the sender was dropped unsent
//
// send() never waits: it fails with EPIPE (handing the value back) only if the receiver is gone. recv()
// waits for the value; EPIPE if the sender was destroyed without sending, or once the value was taken.
//
// Threads: each end may be moved to, used on and destroyed on any worker (send() and try_recv() from any
// thread); a waiting receiver on another worker is woken through its inbox.
// Cancellation: a recv() still waiting returns ECANCELED and the value, if it comes later, stays for the
// next recv(); one that was already handed the value returns it. A receiving task destroyed after the value
// was handed to it (its worker's shutdown) puts the value back (the receiver then destroys it, or a later
// recv() on the same receiver gets it).
// Memory: one allocation per oneshot, shared by the two ends.
#ifndef SURGE_SYNC_ONESHOT_H_
#define SURGE_SYNC_ONESHOT_H_

#include <atomic>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "runtime/result.h"
#include "sync/channel.h"  // SendResult
#include "runtime/internal/waiter.h"

namespace surge {

template <typename T>
class OneshotSender;
template <typename T>
class OneshotReceiver;
template <typename T>
std::pair<OneshotSender<T>, OneshotReceiver<T>> oneshot();

namespace internal {

template <typename T>
struct OneshotState {
  static_assert(std::is_nothrow_move_constructible_v<T>, "oneshot values must be nothrow move constructible");

  void release() noexcept {
    if (references.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  SpinLock lock;
  std::optional<T> value;         // guarded by lock: sent and not yet received
  WakeNodeList waiters;           // guarded by lock: the receiver's recv(), if it waits
  bool sender_done = false;       // guarded by lock: sent, or the sender is gone
  bool receiver_gone = false;     // guarded by lock
  std::atomic<int> references{2};
};

}  // namespace internal

template <typename T>
class OneshotSender {
 public:
  OneshotSender(OneshotSender&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  OneshotSender& operator=(OneshotSender&& other) noexcept {
    if (this != &other) {
      drop();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  OneshotSender(const OneshotSender&) = delete;
  OneshotSender& operator=(const OneshotSender&) = delete;
  ~OneshotSender() { drop(); }

  // Sends `value` and gives up this end. EPIPE (value handed back) if the receiver is gone. Any thread.
  SendResult<T> send(T value) && {
    internal::OneshotState<T>* const state = std::exchange(state_, nullptr);
    if (state == nullptr) return SendResult<T>(Error(EPIPE, "OneshotSender::send"), std::move(value));
    SendResult<T> result;
    {
      internal::PendingWakes wakes;
      std::lock_guard guard(state->lock);
      state->sender_done = true;
      if (state->receiver_gone) {
        result = SendResult<T>(Error(EPIPE, "OneshotSender::send"), std::move(value));
      } else if (!state->waiters.empty()) {
        internal::Waiter& receiver = internal::as_waiter(state->waiters.pop_front());
        reinterpret_cast<std::optional<T>*>(receiver.payload)->emplace(std::move(value));
        wakes.wake(receiver);
      } else {
        state->value.emplace(std::move(value));
      }
    }
    state->release();
    return result;
  }

  // Whether the receiver is gone (send() would fail). A snapshot.
  bool is_closed() const noexcept {
    if (state_ == nullptr) return true;
    std::lock_guard guard(state_->lock);
    return state_->receiver_gone;
  }

 private:
  friend std::pair<OneshotSender<T>, OneshotReceiver<T>> oneshot<T>();
  explicit OneshotSender(internal::OneshotState<T>* state) noexcept : state_(state) {}

  void drop() noexcept {
    internal::OneshotState<T>* const state = std::exchange(state_, nullptr);
    if (state == nullptr) return;
    {
      internal::PendingWakes wakes;
      std::lock_guard guard(state->lock);
      state->sender_done = true;
      while (!state->waiters.empty()) {
        wakes.wake(internal::as_waiter(state->waiters.pop_front()), internal::WaitState::kClosed);
      }
    }
    state->release();
  }

  internal::OneshotState<T>* state_;
};

template <typename T>
class OneshotReceiver {
 public:
  class RecvAwaiter;

  OneshotReceiver(OneshotReceiver&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  OneshotReceiver& operator=(OneshotReceiver&& other) noexcept {
    if (this != &other) {
      drop();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  OneshotReceiver(const OneshotReceiver&) = delete;
  OneshotReceiver& operator=(const OneshotReceiver&) = delete;
  ~OneshotReceiver() { drop(); }

  // co_await rx.recv() -> Result<T>. One recv() at a time per receiver; await it where it is made.
  RecvAwaiter recv() noexcept;

  // The value if it has been sent: EAGAIN if not yet, EPIPE if it never will be (or was taken). Any thread.
  Result<T> try_recv() {
    std::optional<T> value;
    {
      std::lock_guard guard(state_->lock);
      if (!state_->value.has_value()) return Error(state_->sender_done ? EPIPE : EAGAIN, "OneshotReceiver::try_recv");
      value = std::move(state_->value);
      state_->value.reset();
    }
    return std::move(*value);
  }

 private:
  friend std::pair<OneshotSender<T>, OneshotReceiver<T>> oneshot<T>();
  explicit OneshotReceiver(internal::OneshotState<T>* state) noexcept : state_(state) {}

  void drop() noexcept {
    internal::OneshotState<T>* const state = std::exchange(state_, nullptr);
    if (state == nullptr) return;
    std::optional<T> unreceived;  // destroyed outside the lock
    {
      std::lock_guard guard(state->lock);
      state->receiver_gone = true;
      unreceived = std::move(state->value);
      state->value.reset();
    }
    state->release();
  }

  internal::OneshotState<T>* state_;
};

template <typename T>
class [[nodiscard]] OneshotReceiver<T>::RecvAwaiter : public internal::WaitAwaiter<RecvAwaiter> {
 public:
  explicit RecvAwaiter(internal::OneshotState<T>* state) noexcept : state_(state) {
    this->waiter_.payload = reinterpret_cast<std::uintptr_t>(&value_);
  }
  ~RecvAwaiter() { this->abandon(); }

  bool await_ready() {
    internal::PendingWakes wakes;
    std::lock_guard guard(state_->lock);
    return try_complete_locked(wakes);
  }
  Result<T> await_resume() {
    const internal::WaitState state = this->finish();
    if (value_.has_value()) return std::move(*value_);
    return Error(state == internal::WaitState::kCancelled ? ECANCELED : EPIPE, "OneshotReceiver::recv");
  }

 private:
  friend class internal::WaitAwaiter<RecvAwaiter>;
  internal::SpinLock& wait_lock() noexcept { return state_->lock; }
  internal::WakeNodeList& wait_list() noexcept { return state_->waiters; }

  bool try_complete_locked(internal::PendingWakes&) {
    if (state_->value.has_value()) {
      value_ = std::move(state_->value);
      state_->value.reset();
      return true;
    }
    if (!state_->sender_done) return false;
    this->waiter_.state = internal::WaitState::kClosed;
    return true;
  }
  void left_queue_locked(internal::PendingWakes&) noexcept {}
  void undo_grant_locked(internal::PendingWakes&) {
    state_->value = std::move(value_);
    value_.reset();
  }

  internal::OneshotState<T>* state_;
  std::optional<T> value_;
};

template <typename T>
typename OneshotReceiver<T>::RecvAwaiter OneshotReceiver<T>::recv() noexcept {
  return RecvAwaiter(state_);
}

template <typename T>
std::pair<OneshotSender<T>, OneshotReceiver<T>> oneshot() {
  auto* state = new internal::OneshotState<T>();
  return {OneshotSender<T>(state), OneshotReceiver<T>(state)};
}

}  // namespace surge

#endif  // SURGE_SYNC_ONESHOT_H_
