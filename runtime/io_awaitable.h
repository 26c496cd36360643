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
#ifndef SURGE_RUNTIME_IO_AWAITABLE_H_
#define SURGE_RUNTIME_IO_AWAITABLE_H_

#include <cassert>
#include <cerrno>
#include <coroutine>
#include <cstddef>

#include "runtime/backend/operation.h"
#include "runtime/result.h"
#include "runtime/worker.h"

namespace surge {

class IoAwaitable : protected Operation {
 public:
  IoAwaitable(const IoAwaitable&) = delete;
  IoAwaitable& operator=(const IoAwaitable&) = delete;

  bool await_ready() const noexcept { return false; }

  void await_suspend(std::coroutine_handle<> awaiter) noexcept {
    assert(Worker::current() == worker_ && "I/O must be awaited on the worker that owns the socket");
    awaiter_ = awaiter;
    worker_->backend().submit(*this);
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
  void resubmit() noexcept { worker_->backend().submit(*this); }
  void resume_awaiter() noexcept {
    completed_ = true;
    worker_->schedule(awaiter_);
  }

  // True once the operation's final completion has arrived. An awaitable whose result owns a resource
  // (an accepted fd) checks it in its destructor: when a worker shuts down it destroys suspended frames
  // without resuming them, and a result that completed but was never taken must not leak.
  bool completed() const noexcept { return completed_; }

  // EAGAIN and EINTR are not outcomes, only reasons to try again.
  static bool is_transient(std::int32_t result) noexcept { return result == -EAGAIN || result == -EINTR; }

 private:
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
  bool completed_ = false;
};

}  // namespace surge

#endif  // SURGE_RUNTIME_IO_AWAITABLE_H_
