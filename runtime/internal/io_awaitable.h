// io_awaitable.h: the base of every awaitable that performs one backend Operation.
//
// The Operation lives inside the awaitable, and the awaitable lives in the awaiting coroutine's frame
// (co_await keeps the temporary alive), so an I/O request costs no allocation. Subclasses fill in the
// request in their constructor and turn `result` into a Result<> in await_resume().
//
//   class RecvAwaitable : public IoAwaitable {
//    public:
//     RecvAwaitable(Worker& w, int fd, void* data, size_t size) : IoAwaitable(w, OpCode::kRecv, fd) {...}
//     Result<size_t> await_resume() const noexcept { return to_size_result("recv"); }
//   };
//
// EAGAIN and EINTR never reach the awaiter: the operation is submitted again. Awaitables are neither
// copyable nor movable, because the backend holds the Operation's address while it is in flight.
//
// Cancellation: while suspended, the awaitable is the handler of its task's CancelSlot. A request cancels
// the operation in the backend, and the coroutine resumes only when the operation's own completion has
// arrived: with ECANCELED, or with its real result if it finished first (data that arrived is reported,
// and the buffer is never released while the kernel may still write into it). If the slot was already
// marked, the operation is not started and completes with ECANCELED at once.
//
// Deadlines: set_deadline() (or surge::timeout(), when.h) bounds the whole operation (set_coarse_deadline()
// keeps it on the timer wheel). A single-syscall
// operation on a backend with linked timeouts (io_uring) carries it into the kernel as a linked timeout
// SQE; otherwise the worker's timer wheel cancels the operation when the deadline passes. Either way a
// deadline that passed ends in ETIMEDOUT (ECANCELED stays reserved for explicit cancellation), and, as
// with cancellation, data that arrived first is reported.
#ifndef SURGE_RUNTIME_INTERNAL_IO_AWAITABLE_H_
#define SURGE_RUNTIME_INTERNAL_IO_AWAITABLE_H_

#include <cassert>
#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <optional>
#include <utility>

#include "runtime/backend/operation.h"
#include "runtime/internal/cancel_slot.h"
#include "runtime/result.h"
#include "runtime/worker.h"
#include "timer/timer_wheel.h"

namespace surge::internal {

class IoAwaitable : protected Operation {
 public:
  IoAwaitable(const IoAwaitable&) = delete;
  IoAwaitable& operator=(const IoAwaitable&) = delete;

  ~IoAwaitable() {
    if (deadline_timer_.valid()) internal::WorkerAccess::timers(*worker_).cancel(deadline_timer_);  // harmless if it fired
  }

  // True only for an operation refused before it started (refuse()).
  bool await_ready() const noexcept { return completed_; }

  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiter) noexcept {
    assert(Worker::current() == worker_ && "I/O must be awaited on the worker that owns the socket");
    slot_ = cancel_slot_of(awaiter);
    if (slot_ != nullptr && slot_->requested()) {
      result = -ECANCELED;
      completed_ = true;
      return false;  // never started: resume at once
    }
    if (has_deadline_ && !arm_deadline()) return false;  // already passed: never started
    awaiter_ = awaiter;
    internal::WorkerAccess::backend(*worker_).submit(*this);
    if (slot_ != nullptr) slot_->install(&on_cancel_requested, this);
    return true;
  }

  // Bounds the operation by `deadline` (before it is awaited). See the top of this file.
  void set_deadline(Worker::Clock::time_point deadline) noexcept {
    deadline_ = deadline;
    has_deadline_ = true;
  }
  // Like set_deadline(), but always kept on the worker's timer wheel (1 ms resolution), never carried
  // into the kernel as a linked timeout, and not compared with the clock when the operation starts: no
  // extra SQE, no kernel timer and no clock read per operation. A deadline already passed ends the
  // operation at the wheel's next turn (it may complete first if it can at once). For deadlines that
  // seldom fire and need no precision, such as a server's idle and header timeouts.
  void set_coarse_deadline(Worker::Clock::time_point deadline) noexcept {
    set_deadline(deadline);
    wheel_deadline_ = true;
  }

 protected:
  IoAwaitable(Worker& worker, OpCode code, int file_descriptor) noexcept : worker_(&worker) {
    opcode = code;
    fd = file_descriptor;
    complete = &on_complete;
  }

  // The Error for a failed `result` (< 0): ETIMEDOUT when a deadline, not a cancellation, ended it.
  Error error_for(std::int32_t failed_result, const char* operation_name) const noexcept {
    if (failed_result == -ECANCELED && timed_out_ && !cancel_requested_) return Error(ETIMEDOUT, operation_name);
    return Error::from_result(failed_result, operation_name);
  }

  // The syscall's result as a byte count, or an Error naming `operation_name`.
  Result<std::size_t> to_size_result(const char* operation_name) const noexcept {
    if (result < 0) return error_for(result, operation_name);
    return static_cast<std::size_t>(result);
  }

  // Subclasses that submit more than one syscall (write_all) say so: a linked timeout covers one SQE,
  // so their deadlines go on the timer wheel.
  void set_multi_step() noexcept { single_step_ = false; }

  Worker& worker() const noexcept { return *worker_; }

  // For subclasses that install their own `complete` (operations that take several syscalls, like
  // write_all): submit the (updated) request again, or hand control back to the awaiting coroutine.
  // A multi-step operation stops between steps once cancellation was requested.
  // A multi-step operation also stops once its deadline has passed, even if the deadline fired while no
  // step was in the kernel (a step that had completed but was not delivered yet: over the backend's
  // per-poll budget, or completed inline by epoll), so the deadline holds across steps.
  // It also stops when its fd was closed under it (Operation::fd_forgotten): the number may name
  // another connection by now.
  void resubmit() noexcept {
    if (timed_out_ || fd_forgotten || (slot_ != nullptr && slot_->requested())) {
      result = -ECANCELED;
      resume_awaiter();
      return;
    }
    internal::WorkerAccess::backend(*worker_).submit(*this);
  }
  void resume_awaiter() noexcept {
    completed_ = true;
    if (slot_ != nullptr) slot_->clear();
    if (deadline_timer_.valid()) internal::WorkerAccess::timers(*worker_).cancel(std::exchange(deadline_timer_, TimerId{}));
    internal::WorkerAccess::schedule(*worker_, awaiter_);
  }

  // Makes the operation complete at once with `negative_errno`, without reaching the backend (a request
  // the awaitable's maker knows to be invalid). Before it is awaited.
  void refuse(std::int32_t negative_errno) noexcept {
    result = negative_errno;
    completed_ = true;
    refused_ = true;
  }
  bool refused() const noexcept { return refused_; }

  // True once the operation's final completion has arrived. An awaitable whose result owns a resource
  // (an accepted fd) checks it in its destructor: when a worker shuts down it destroys suspended frames
  // without resuming them, and a result that completed but was never taken must not leak.
  bool completed() const noexcept { return completed_; }

  // A linked timeout that fired (-ETIME, see Operation::link_deadline_ns) ends the operation as a
  // deadline does. Completion callbacks call this first.
  static void note_linked_timeout(IoAwaitable& self) noexcept {
    if (self.result == -ETIME && self.link_deadline_ns > 0) {
      self.result = -ECANCELED;
      self.timed_out_ = true;
    }
  }

  // EAGAIN and EINTR are not outcomes, only reasons to try again.
  static bool is_transient(std::int32_t result) noexcept { return result == -EAGAIN || result == -EINTR; }

 private:
  // Returns false (with the result set) if the deadline has already passed.
  bool arm_deadline() noexcept {
    // No subtraction: a saturated deadline (time_point::max(), see saturating_add) must not overflow.
    // A coarse deadline is not checked against the clock here (a clock read per operation is what it
    // saves): one already passed fires at the wheel's next turn and ends the operation then.
    if (!wheel_deadline_ && deadline_ <= Worker::Clock::now()) {
      result = -ECANCELED;
      timed_out_ = true;
      completed_ = true;
      return false;
    }
    // Not every operation can carry a linked timeout (Backend::links_timeout_for): a borrowed receive
    // may wait without an SQE of its own, a zero-copy send after its SQE has completed.
    if (single_step_ && !wheel_deadline_ && internal::WorkerAccess::backend(*worker_).links_timeout_for(*this)) {
      // Absolute, on the clock the kernel's timeouts use (steady_clock is CLOCK_MONOTONIC).
      link_deadline_ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(deadline_.time_since_epoch()).count();
    } else {
      deadline_timer_ = internal::WorkerAccess::timers(*worker_).insert(internal::WorkerAccess::tick_at_or_after(*worker_, deadline_), &on_deadline, this);
    }
    return true;
  }

  static void on_deadline(void* self) noexcept {
    auto* awaitable = static_cast<IoAwaitable*>(self);
    awaitable->deadline_timer_ = TimerId{};
    awaitable->timed_out_ = true;
    internal::WorkerAccess::backend(*awaitable->worker_).cancel(*awaitable);
  }

  static void on_cancel_requested(void* self) noexcept {
    auto* awaitable = static_cast<IoAwaitable*>(self);
    awaitable->cancel_requested_ = true;
    internal::WorkerAccess::backend(*awaitable->worker_).cancel(*awaitable);
  }

  static void on_complete(Operation& operation) noexcept {
    auto& self = static_cast<IoAwaitable&>(operation);
    note_linked_timeout(self);
    if (is_transient(operation.result)) {
      self.resubmit();
    } else {
      self.resume_awaiter();
    }
  }

  Worker* worker_;
  std::coroutine_handle<> awaiter_ = nullptr;
  CancelSlot* slot_ = nullptr;
  Worker::Clock::time_point deadline_{};  // if has_deadline_
  TimerId deadline_timer_;
  // One byte of flags, so that an awaiter is its Operation plus 48 bytes.
  bool has_deadline_ : 1 = false;
  bool single_step_ : 1 = true;
  bool completed_ : 1 = false;
  bool timed_out_ : 1 = false;
  bool cancel_requested_ : 1 = false;
  bool refused_ : 1 = false;
  bool wheel_deadline_ : 1 = false;  // set_coarse_deadline(): never a linked timeout
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_INTERNAL_IO_AWAITABLE_H_
