// channel.h: Channel, a FIFO of messages between tasks on any workers: bounded (a full channel makes
// send() wait: backpressure) or unbounded; many senders, one or many receivers.
//
//   auto [tx, rx] = surge::channel<Job>(1024);        // or surge::unbounded_channel<Job>()
//   // producers (any worker; copy tx for more):      // consumers (any worker; copy rx for more):
//   auto sent = co_await tx.send(std::move(job));      for (;;) {
//   if (!sent) {                                         auto job = co_await rx.recv();   // Result<Job>
//     // EPIPE: closed; ECANCELED: cancelled;            if (!job) break;   // EPIPE once closed and empty
//     Job back = std::move(*sent.unsent());              run(std::move(*job));
//   }                                                  }
//   tx.close();   // or drop every Sender: receivers drain what is left, then get EPIPE
//
// Order: messages come out in the order they went in. Waiting senders are served in the order they
// started waiting, and so are waiting receivers: a message is handed straight to the oldest waiting
// receiver, and room freed by a receive goes straight to the oldest waiting sender (its message enters
// the channel then), so nobody waits while another overtakes them.
//
// Closing: close() from either side, or the last Sender (or the last Receiver) going away. After it,
// send() fails with EPIPE and hands its message back (sends that were waiting too); recv() returns what
// is still in the channel, then EPIPE. When the last Receiver goes, the messages
// still in the channel are destroyed.
//
// Cancellation (a cancel, or surge::timeout(d, rx.recv())):
//   - recv(): one still waiting leaves the queue with ECANCELED and has taken nothing: the message it would
//     have got goes to the next receiver, none is lost. One that was already handed a message completes
//     with it (the real result wins: timeout() then returns the message, not ETIMEDOUT).
//   - send(): one still waiting leaves with ECANCELED and hands its message back in unsent(): it is not in
//     the channel. One whose message already entered the channel completes successfully. Never both.
//   - A task destroyed while it waits (its worker shuts down): a receiver's message that was handed to it
//     goes back to the front of the channel (or to the next waiting receiver); a sender's message that
//     had not entered the channel is destroyed with the task.
//
// Threads: Senders and Receivers may be copied, moved and used on any worker; try_send(), try_recv() and
// close() from any thread. A waiter on another worker is woken through that worker's inbox (MSG_RING or
// its eventfd if it sleeps). A handle must outlive the send() or recv() it made.
//
// Receiving in batches: a receiver that takes the channel's lock and finds several messages moves up to 32
// of them to the receivers' side of the channel, where the next receives (by any receiver) take them
// without that lock, which the senders use. They still count against the capacity and are received in
// order; across workers this is what keeps a busy producer and consumer from trading the lock for every
// message.
//
// Messages: any type that moves without throwing (static_assert; a channel never copies a message).
//
// Memory: the channel is one allocation shared by the handles. Its ring of messages grows by doubling up
// to the capacity (bounded) or as needed (unbounded) and never shrinks: after warm-up, send and recv
// allocate nothing. An unbounded channel whose receivers fall behind grows without limit: prefer bounded.
#ifndef SURGE_SYNC_CHANNEL_H_
#define SURGE_SYNC_CHANNEL_H_

#include <atomic>
#include <cassert>
#include <cstddef>
#include <limits>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "runtime/result.h"
#include "sync/internal/ring.h"
#include "runtime/internal/waiter.h"

namespace surge {

// What send() returns: success, or the error and the message that was not sent (unsent()).
template <typename T>
class [[nodiscard]] SendResult : public Result<void> {
 public:
  SendResult() = default;
  SendResult(Error error, std::optional<T>&& unsent) : Result<void>(error), unsent_(std::move(unsent)) {}

  // The message handed back when !ok() (EPIPE, ECANCELED, EAGAIN from try_send, ETIMEDOUT from timeout()).
  std::optional<T>& unsent() noexcept { return unsent_; }

  // The same outcome with another error (what surge::timeout() uses to report ETIMEDOUT): keeps the message.
  SendResult with_error(Error error) && { return SendResult(error, std::move(unsent_)); }

 private:
  std::optional<T> unsent_;
};

template <typename T>
class Sender;
template <typename T>
class Receiver;

namespace internal {

template <typename T>
class ChannelState {
  // A message whose move could throw could be lost half-way between the ring and a receiver, or break
  // the ring as it grows: messages must move without throwing (every standard container and string
  // does; wrap others in std::unique_ptr).
  static_assert(std::is_nothrow_move_constructible_v<T>, "channel messages must be nothrow move constructible");

 public:
  explicit ChannelState(std::size_t capacity) noexcept : capacity_(capacity) {}

  // Under lock_: marks the channel closed and wakes every waiter with kClosed (senders keep their message).
  void close_locked(PendingWakes& wakes) noexcept {
    closed_ = true;
    while (!senders_.empty()) wakes.wake(as_waiter(senders_.pop_front()), WaitState::kClosed);
    senders_waiting_.store(false, std::memory_order_relaxed);
    while (!receivers_.empty()) wakes.wake(as_waiter(receivers_.pop_front()), WaitState::kClosed);
  }
  void close() noexcept {
    PendingWakes wakes;
    std::lock_guard guard(lock_);
    close_locked(wakes);
  }
  bool is_closed() noexcept {
    std::lock_guard guard(lock_);
    return closed_;
  }
  std::size_t size() noexcept {
    std::lock_guard guard(lock_);
    return size_locked();
  }

  // Under lock_: `message` enters: straight to the oldest waiting receiver, or into the ring. The caller
  // has checked there is room (or a receiver).
  void deliver_locked(T&& message, PendingWakes& wakes) {
    if (!receivers_.empty()) {
      Waiter& receiver = as_waiter(receivers_.pop_front());
      reinterpret_cast<std::optional<T>*>(receiver.payload)->emplace(std::move(message));
      wakes.wake(receiver);
    } else {
      buffer_.push_back(std::move(message));
    }
  }

  // Receivers' fast path, without lock_: the oldest message of the batch, if one is there. Any thread.
  bool take_batched(std::optional<T>& out) {
    if (batched_.load(std::memory_order_relaxed) == 0 || !pop_batched(out)) return false;
    // seq_cst, after pop_batched()'s seq_cst store and against the sender's store-then-load in
    // sender_must_wait_locked(): either a sender about to wait sees the room this made, or we see that it
    // waits and let it in.
    if (senders_waiting_.load(std::memory_order_seq_cst)) {
      PendingWakes wakes;
      std::lock_guard guard(lock_);
      serve_senders_locked(wakes);
    }
    return true;
  }

  // Under lock_: takes the oldest message into `out` if there is one. From the batch first (it holds older
  // messages than the ring); else from the ring, moving up to kBatch - 1 more into the batch so that the
  // receivers' next takes need not touch lock_, which the senders hold. Lets waiting senders into the
  // room it leaves.
  bool take_locked(std::optional<T>& out, PendingWakes& wakes) {
    // Only a receiver under lock_ refills the batch: seen empty here, it stays empty until we refill it.
    if (batched_.load(std::memory_order_relaxed) != 0 && pop_batched(out)) return true;
    if (buffer_.empty()) return false;
    out.emplace(buffer_.pop_front());
    if (!buffer_.empty()) {
      std::lock_guard guard(batch_lock_);
      for (std::size_t i = 1; i < kBatch && !buffer_.empty(); ++i) batch_.push_back(buffer_.pop_front());
      batched_.store(batch_.size(), std::memory_order_seq_cst);
    }
    serve_senders_locked(wakes);
    return true;
  }

  // Under lock_: a message handed to a receiver that died before it could take it goes back in front.
  void put_back_locked(T&& message, PendingWakes& wakes) {
    if (!receivers_.empty()) {
      deliver_locked(std::move(message), wakes);
      return;
    }
    std::lock_guard guard(batch_lock_);
    batch_.push_front(std::move(message));
    batched_.store(batch_.size(), std::memory_order_seq_cst);
  }

  // Under lock_: whether a message may enter now: a receiver waits for it (so the channel is empty), or
  // there is room and no sender waits ahead of it.
  bool can_enter_locked() const noexcept {
    return !receivers_.empty() || (senders_.empty() && has_room_locked());
  }

  // Under lock_, for a sender that would wait: whether it must (see can_enter_locked). When it must,
  // marks senders as waiting first and looks again, so that a receiver emptying the batch meanwhile
  // either sees the mark or is seen here (see take_batched).
  bool sender_must_wait_locked() noexcept {
    if (can_enter_locked()) return false;
    senders_waiting_.store(true, std::memory_order_seq_cst);
    if (can_enter_locked()) {
      if (senders_.empty()) senders_waiting_.store(false, std::memory_order_relaxed);
      return false;
    }
    return true;
  }

  // Under lock_: the oldest waiting senders' messages enter the ring while there is room.
  void serve_senders_locked(PendingWakes& wakes) {
    while (!senders_.empty() && has_room_locked()) {
      Waiter& sender = as_waiter(senders_.pop_front());
      auto* message = reinterpret_cast<std::optional<T>*>(sender.payload);
      buffer_.push_back(std::move(**message));
      message->reset();
      wakes.wake(sender);
    }
    if (senders_.empty()) senders_waiting_.store(false, std::memory_order_relaxed);
  }

  // Under lock_: messages waiting, in the ring and in the receivers' batch (which counts against the
  // capacity like the ring: a bounded channel never holds more than its capacity).
  std::size_t size_locked() const noexcept { return buffer_.size() + batched_.load(std::memory_order_seq_cst); }
  bool has_room_locked() const noexcept {
    // The batch holds at most kBatch: far from the capacity, no need to read the receivers' count.
    return buffer_.size() + kBatch < capacity_ || size_locked() < capacity_;
  }

  void add_reference() noexcept { references_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (references_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // How many messages a receiver that takes the lock moves into the batch at most.
  static constexpr std::size_t kBatch = 32;

  SpinLock lock_;
  const std::size_t capacity_;       // max(): unbounded
  Ring<T> buffer_;                   // guarded by lock_
  WakeNodeList receivers_;           // guarded by lock_; payload: the receiver's std::optional<T>*
  WakeNodeList senders_;             // guarded by lock_; payload: the sender's std::optional<T>*
  bool closed_ = false;              // guarded by lock_
  std::atomic<bool> senders_waiting_{false};  // !senders_.empty(); stored under lock_, read by receivers
  std::atomic<std::size_t> senders_count_{1};
  std::atomic<std::size_t> receivers_count_{1};
  std::atomic<std::size_t> references_{2};
  // The receivers' side, on cache lines of its own: messages moved out of the ring in a batch (older than
  // any in the ring), taken one by one under batch_lock_ without lock_. Refilled only under lock_ (lock
  // order: lock_, then batch_lock_).
  alignas(64) SpinLock batch_lock_;
  Ring<T> batch_;                    // guarded by batch_lock_
  std::atomic<std::size_t> batched_{0};  // batch_.size(), stored under batch_lock_

 private:
  // The oldest message of the batch into `out`, if there is one. Any thread, with or without lock_.
  bool pop_batched(std::optional<T>& out) {
    std::lock_guard guard(batch_lock_);
    if (batch_.empty()) return false;
    out.emplace(batch_.pop_front());
    batched_.store(batch_.size(), std::memory_order_seq_cst);
    return true;
  }
};

}  // namespace internal

template <typename T>
class Sender {
 public:
  class SendAwaiter;

  Sender(const Sender& other) noexcept : state_(other.state_) {
    state_->senders_count_.fetch_add(1, std::memory_order_relaxed);
    state_->add_reference();
  }
  Sender(Sender&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  Sender& operator=(Sender other) noexcept {
    std::swap(state_, other.state_);
    return *this;
  }
  ~Sender() {
    if (state_ == nullptr) return;
    if (state_->senders_count_.fetch_sub(1, std::memory_order_acq_rel) == 1) state_->close();
    state_->release();
  }

  // co_await tx.send(message) -> SendResult<T>: waits while a bounded channel is full. Await it where it
  // is made; the Sender must outlive it.
  SendAwaiter send(T&& message) noexcept(std::is_nothrow_move_constructible_v<T>);
  SendAwaiter send(const T& message) { return send(T(message)); }

  // Sends without waiting: EAGAIN when there is no room (or senders wait), EPIPE when closed; the message
  // comes back in unsent(). Any thread.
  SendResult<T> try_send(T message) {
    internal::PendingWakes wakes;
    std::lock_guard guard(state_->lock_);
    if (state_->closed_) return SendResult<T>(Error(EPIPE, "Sender::try_send"), std::move(message));
    if (!state_->can_enter_locked()) return SendResult<T>(Error(EAGAIN, "Sender::try_send"), std::move(message));
    state_->deliver_locked(std::move(message), wakes);
    return {};
  }

  // Closes the channel for everybody (see the top of this file). Any thread; idempotent.
  void close() noexcept { state_->close(); }
  bool is_closed() const noexcept { return state_->is_closed(); }
  // Messages in the channel now (a snapshot), and the capacity (max() when unbounded).
  std::size_t size() const noexcept { return state_->size(); }
  std::size_t capacity() const noexcept { return state_->capacity_; }

 private:
  template <typename U>
  friend std::pair<Sender<U>, Receiver<U>> make_channel(std::size_t capacity);
  explicit Sender(internal::ChannelState<T>* state) noexcept : state_(state) {}
  internal::ChannelState<T>* state_;
};

template <typename T>
class [[nodiscard]] Sender<T>::SendAwaiter : public internal::WaitAwaiter<SendAwaiter> {
 public:
  SendAwaiter(internal::ChannelState<T>* state, T&& message) : state_(state), message_(std::move(message)) {
    this->waiter_.payload = reinterpret_cast<std::uintptr_t>(&message_);
  }
  ~SendAwaiter() { this->abandon(); }

  bool await_ready() {
    internal::PendingWakes wakes;
    std::lock_guard guard(state_->lock_);
    return try_complete_locked(wakes);
  }
  SendResult<T> await_resume() {
    switch (this->finish()) {
      case internal::WaitState::kCancelled:
        return SendResult<T>(Error(ECANCELED, "Sender::send"), std::move(message_));
      case internal::WaitState::kClosed:
        return SendResult<T>(Error(EPIPE, "Sender::send"), std::move(message_));
      default:
        return {};
    }
  }

 private:
  friend class internal::WaitAwaiter<SendAwaiter>;
  internal::SpinLock& wait_lock() noexcept { return state_->lock_; }
  internal::WakeNodeList& wait_list() noexcept { return state_->senders_; }

  bool try_complete_locked(internal::PendingWakes& wakes) {
    if (state_->closed_) {
      this->waiter_.state = internal::WaitState::kClosed;
      return true;
    }
    if (state_->sender_must_wait_locked()) return false;
    state_->deliver_locked(std::move(*message_), wakes);
    message_.reset();
    return true;
  }
  void left_queue_locked(internal::PendingWakes&) noexcept {
    if (state_->senders_.empty()) state_->senders_waiting_.store(false, std::memory_order_relaxed);
  }
  void undo_grant_locked(internal::PendingWakes&) noexcept {}  // the message is in the channel: sent

  internal::ChannelState<T>* state_;
  std::optional<T> message_;  // until it enters the channel; handed back if it never does
};

template <typename T>
typename Sender<T>::SendAwaiter Sender<T>::send(T&& message) noexcept(std::is_nothrow_move_constructible_v<T>) {
  return SendAwaiter(state_, std::move(message));
}

template <typename T>
class Receiver {
 public:
  class RecvAwaiter;

  Receiver(const Receiver& other) noexcept : state_(other.state_) {
    state_->receivers_count_.fetch_add(1, std::memory_order_relaxed);
    state_->add_reference();
  }
  Receiver(Receiver&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  Receiver& operator=(Receiver other) noexcept {
    std::swap(state_, other.state_);
    return *this;
  }
  ~Receiver() {
    if (state_ == nullptr) return;
    if (state_->receivers_count_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // The last receiver: close, and destroy what nobody will receive outside the lock.
      internal::Ring<T> unreceived;
      {
        internal::PendingWakes wakes;
        std::lock_guard guard(state_->lock_);
        state_->close_locked(wakes);
        state_->buffer_.move_all_to(unreceived);
        std::lock_guard batch_guard(state_->batch_lock_);
        state_->batch_.move_all_to(unreceived);
        state_->batched_.store(0, std::memory_order_relaxed);
      }
    }
    state_->release();
  }

  // co_await rx.recv() -> Result<T>: the oldest message, waiting for one if the channel is empty; EPIPE
  // once the channel is closed and empty. Await it where it is made; the Receiver must outlive it.
  RecvAwaiter recv() noexcept;

  // Receives without waiting: EAGAIN when empty, EPIPE when closed and empty. Any thread.
  Result<T> try_recv() {
    std::optional<T> message;
    if (state_->take_batched(message)) return std::move(*message);
    {
      internal::PendingWakes wakes;
      std::lock_guard guard(state_->lock_);
      if (!state_->take_locked(message, wakes)) {
        return Error(state_->closed_ ? EPIPE : EAGAIN, "Receiver::try_recv");
      }
    }
    return std::move(*message);
  }

  void close() noexcept { state_->close(); }
  bool is_closed() const noexcept { return state_->is_closed(); }
  std::size_t size() const noexcept { return state_->size(); }
  std::size_t capacity() const noexcept { return state_->capacity_; }

 private:
  template <typename U>
  friend std::pair<Sender<U>, Receiver<U>> make_channel(std::size_t capacity);
  explicit Receiver(internal::ChannelState<T>* state) noexcept : state_(state) {}
  internal::ChannelState<T>* state_;
};

template <typename T>
class [[nodiscard]] Receiver<T>::RecvAwaiter : public internal::WaitAwaiter<RecvAwaiter> {
 public:
  explicit RecvAwaiter(internal::ChannelState<T>* state) noexcept : state_(state) {
    this->waiter_.payload = reinterpret_cast<std::uintptr_t>(&message_);
  }
  ~RecvAwaiter() { this->abandon(); }

  bool await_ready() {
    if (state_->take_batched(message_)) return true;
    internal::PendingWakes wakes;
    std::lock_guard guard(state_->lock_);
    return try_complete_locked(wakes);
  }
  Result<T> await_resume() {
    const internal::WaitState state = this->finish();
    if (message_.has_value()) return std::move(*message_);
    return Error(state == internal::WaitState::kCancelled ? ECANCELED : EPIPE, "Receiver::recv");
  }

 private:
  friend class internal::WaitAwaiter<RecvAwaiter>;
  internal::SpinLock& wait_lock() noexcept { return state_->lock_; }
  internal::WakeNodeList& wait_list() noexcept { return state_->receivers_; }

  bool try_complete_locked(internal::PendingWakes& wakes) {
    if (state_->take_locked(message_, wakes)) return true;
    if (!state_->closed_) return false;
    this->waiter_.state = internal::WaitState::kClosed;
    return true;
  }
  void left_queue_locked(internal::PendingWakes&) noexcept {}
  // Handed a message, destroyed before it could take it: the message goes back in front.
  void undo_grant_locked(internal::PendingWakes& wakes) {
    if (!message_.has_value()) return;
    state_->put_back_locked(std::move(*message_), wakes);
    message_.reset();
  }

  internal::ChannelState<T>* state_;
  std::optional<T> message_;
};

template <typename T>
typename Receiver<T>::RecvAwaiter Receiver<T>::recv() noexcept {
  return RecvAwaiter(state_);
}

template <typename T>
std::pair<Sender<T>, Receiver<T>> make_channel(std::size_t capacity) {
  auto* state = new internal::ChannelState<T>(capacity);
  return {Sender<T>(state), Receiver<T>(state)};
}

// A bounded channel: at most `capacity` (>= 1) messages in it; send() waits while it is full.
template <typename T>
std::pair<Sender<T>, Receiver<T>> channel(std::size_t capacity) {
  assert(capacity >= 1 && "a channel needs room for one message; use oneshot or Notify for a rendezvous");
  return make_channel<T>(capacity < 1 ? 1 : capacity);
}

// An unbounded channel: send() never waits (only fails once closed).
template <typename T>
std::pair<Sender<T>, Receiver<T>> unbounded_channel() {
  return make_channel<T>(std::numeric_limits<std::size_t>::max());
}

}  // namespace surge

#endif  // SURGE_SYNC_CHANNEL_H_
