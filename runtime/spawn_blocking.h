// spawn_blocking.h: run a blocking function on the blocking pool and await its result.
//
//   auto entries = co_await surge::spawn_blocking([&] { return read_config_file(path); });
//
// The function runs on a pool thread (the worker's Runtime's pool, or BlockingPool::shared() for a
// Worker on its own); the awaiting task resumes on its own worker with the return value (or the
// exception the function threw, rethrown). The function cannot be interrupted, so the await is not
// cancellable: it always ends when the function returns, and a worker shutting down waits for it.
// Whatever the function captures by reference must stay alive until then, which co_await guarantees.
#ifndef SURGE_RUNTIME_SPAWN_BLOCKING_H_
#define SURGE_RUNTIME_SPAWN_BLOCKING_H_

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "runtime/internal/blocking_pool.h"
#include "runtime/internal/remote_inbox.h"
#include "runtime/worker.h"

namespace surge {

template <typename Function>
class BlockingCall : private internal::BlockingJob, private internal::RemoteWork {
 public:
  using Value = std::invoke_result_t<Function&>;

  BlockingCall(Function function, internal::BlockingPool& pool) : function_(std::move(function)), pool_(&pool) {}
  BlockingCall(const BlockingCall&) = delete;
  BlockingCall& operator=(const BlockingCall&) = delete;

  bool await_ready() const noexcept { return false; }

  void await_suspend(std::coroutine_handle<> awaiter) {
    awaiter_ = awaiter;
    worker_ = Worker::current();
    internal::WorkerAccess::blocking_call_started(*worker_);
    internal::BlockingJob::run = &run_on_pool;
    internal::RemoteWork::run = &resume_on_worker;
    pool_->submit(*this);
  }

  Value await_resume() {
    if (exception_) std::rethrow_exception(exception_);
    if constexpr (!std::is_void_v<Value>) return std::move(*value_);
  }

 private:
  static void run_on_pool(internal::BlockingJob& job) noexcept {
    auto& call = static_cast<BlockingCall&>(job);
    try {
      if constexpr (std::is_void_v<Value>) {
        call.function_();
      } else {
        call.value_.emplace(call.function_());
      }
    } catch (...) {
      call.exception_ = std::current_exception();
    }
    internal::WorkerAccess::post(*call.worker_, static_cast<internal::RemoteWork&>(call));  // the post publishes the result to the worker
  }

  static void resume_on_worker(internal::RemoteWork& work, Worker& worker) noexcept {
    auto& call = static_cast<BlockingCall&>(work);
    internal::WorkerAccess::blocking_call_finished(worker);
    internal::WorkerAccess::schedule(worker, call.awaiter_);
  }

  Function function_;
  internal::BlockingPool* pool_;
  Worker* worker_ = nullptr;
  std::coroutine_handle<> awaiter_ = nullptr;
  std::optional<std::conditional_t<std::is_void_v<Value>, std::monostate, Value>> value_;
  std::exception_ptr exception_;
};

// Runs `function` on `pool` (default: the current worker's pool) and resumes with its result.
template <typename Function>
BlockingCall<std::decay_t<Function>> spawn_blocking(Function&& function) {
  return BlockingCall<std::decay_t<Function>>(std::forward<Function>(function), internal::WorkerAccess::blocking_pool(*Worker::current()));
}

}  // namespace surge

#endif  // SURGE_RUNTIME_SPAWN_BLOCKING_H_
