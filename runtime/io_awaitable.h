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
#ifndef SURGE_RUNTIME_IO_AWAITABLE_H_
#define SURGE_RUNTIME_IO_AWAITABLE_H_

#include <cassert>
#include <cerrno>
#include <coroutine>
#include <cstddef>

#include "runtime/backend/operation.h"
#include "runtime/cancel_slot.h"
#include "runtime/result.h"
#include "runtime/worker.h"

namespace surge {

class IoAwaitable : protected Operation {
 public:
  IoAwaitable(const IoAwaitable&) = delete;
  IoAwaitable& operator=(const IoAwaitable&) = delete;

  bool await_ready() const noexcept { return false; }

  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiter) noexcept {
    assert(Worker::current() == worker_ && "I/O must be awaited on the worker that owns the socket");
    slot_ = cancel_slot_of(awaiter);
    if (slot_ != nullptr && slot_->requested()) {
      result = -ECANCELED;
      completed_ = true;
      return false;  // never started: resume at once
    }
    awaiter_ = awaiter;
    worker_->backend().submit(*this);
    if (slot_ != nullptr) slot_->install(&on_cancel_requested, this);
    return true;
  }

 protected:
  IoAwaitable(Worker& worker, OpCode code, int file_descriptor) noexcept : worker_(&worker) {
    opcode = code;
    fd = file_descriptor;
    complete = &on_complete;
  }

  // The syscall's result as a byte count, or an Error naming `operation_name`.
  Result<std::size_t> to_size_result(const char* operation_name) const noexcept {
    if (result < 0) return Error::from_result(result, operation_name);
    return static_cast<std::size_t>(result);
  }

  Worker& worker() const noexcept { return *worker_; }

  // For subclasses that install their own `complete` (operations that take several syscalls, like
  // write_all): submit the (updated) request again, or hand control back to the awaiting coroutine.
  // A multi-step operation stops between steps once cancellation was requested.
  void resubmit() noexcept {
    if (slot_ != nullptr && slot_->requested()) {
      result = -ECANCELED;
      resume_awaiter();
      return;
    }
    worker_->backend().submit(*this);
  }
  void resume_awaiter() noexcept {
    completed_ = true;
    if (slot_ != nullptr) slot_->clear();
    worker_->schedule(awaiter_);
  }

  // True once the operation's final completion has arrived. An awaitable whose result owns a resource
  // (an accepted fd) checks it in its destructor: when a worker shuts down it destroys suspended frames
  // without resuming them, and a result that completed but was never taken must not leak.
  bool completed() const noexcept { return completed_; }

  // EAGAIN and EINTR are not outcomes, only reasons to try again.
  static bool is_transient(std::int32_t result) noexcept { return result == -EAGAIN || result == -EINTR; }

 private:
  static void on_cancel_requested(void* self) noexcept {
    auto* awaitable = static_cast<IoAwaitable*>(self);
    awaitable->worker_->backend().cancel(*awaitable);
  }

  static void on_complete(Operation& operation) noexcept {
    auto& self = static_cast<IoAwaitable&>(operation);
    if (is_transient(operation.result)) {
      self.resubmit();
    } else {
      self.resume_awaiter();
    }
  }

  Worker* worker_;
  std::coroutine_handle<> awaiter_ = nullptr;
  CancelSlot* slot_ = nullptr;
  bool completed_ = false;
};

}  // namespace surge

#endif  // SURGE_RUNTIME_IO_AWAITABLE_H_
