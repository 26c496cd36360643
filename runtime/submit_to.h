// submit_to.h: run a callable on another worker and await its result (Seastar's smp::submit_to).
//
//   // Inside a task on any worker of `runtime`:
//   std::size_t n = co_await surge::submit_to(runtime, 1, [] { return cache_size(); });      // plain
//   auto page = co_await surge::submit_to(runtime.worker(1), fetch_page, url);                // Task
//
// The callable (with its arguments, copied or moved) runs on the target worker's thread; what it
// returns (a value, or the value of the Task it returns, run there to its end) comes back through the
// returned JoinHandle, which may be awaited on any worker or dropped (the work still runs; its result
// is discarded). An exception it throws is rethrown where the handle is awaited. Cancelling the handle
// (or the task awaiting it) cancels what the callable's Task awaits; a plain callable runs to its end.
//
// Cost: one allocation on the sending thread per call, the task frame that carries the callable and
// copies of its arguments and, in its header, the join state (what Worker::spawn allocates for any Task).
// A callable that returns a Task is called on the target, with those copies (so a coroutine taking
// `const std::string&` refers to the copy, which lives until its Task has finished, and a capturing
// lambda's captures live as long): its own Task frame is a second allocation, made there.
//
// Order: work sent from one thread to one worker (spawn_on, submit_to, Worker::spawn) starts there in
// the order it was sent. From another thread it goes through the worker's inbox, a Treiber stack that
// the worker takes whole and reverses (runtime/internal/remote_inbox.h): one sender's pushes are
// ordered, so each batch runs them oldest first and a later batch holds only later ones. From the
// worker's own thread it goes straight onto its ready queue, a FIFO. Nothing is promised between
// different senders, nor about where each task is after its first await.
//
// Threads: submit_to(worker, ...) from any thread; submit_to(runtime, index, ...) from any thread,
// refused like Runtime::spawn_on once the runtime has begun to shut down (an abandoned handle).
#ifndef SURGE_RUNTIME_SUBMIT_TO_H_
#define SURGE_RUNTIME_SUBMIT_TO_H_

#include <cstddef>
#include <functional>
#include <type_traits>
#include <utility>

#include "runtime/runtime.h"
#include "runtime/task.h"
#include "runtime/worker.h"

namespace surge {
namespace internal {

template <typename T>
struct IsTask : std::false_type {};
template <typename T>
struct IsTask<Task<T>> : std::true_type {
  using value_type = T;
};

template <typename F, typename... Args>
using InvokeResult = std::invoke_result_t<std::decay_t<F>&, std::decay_t<Args>&...>;

// What submit_to's handle yields: the callable's value, or the value of the Task it returns.
template <typename R, bool = IsTask<R>::value>
struct SubmitResult {
  using type = R;
};
template <typename R>
struct SubmitResult<R, true> {
  using type = typename IsTask<R>::value_type;
};

// The one frame of a plain call: the callable and its arguments are its parameters. (`co_return` of a
// void expression evaluates it and returns void.)
template <typename F, typename... Args>
Task<InvokeResult<F, Args...>> call_plain(F function, Args... arguments) {
  co_return std::invoke(function, arguments...);
}

// The frame of a call whose callable returns a Task: the callable and the copies of its arguments are
// its parameters, and outlive the Task the callable makes from them (which may hold references to them).
template <typename F, typename... Args>
Task<typename IsTask<InvokeResult<F, Args...>>::value_type> call_task(F function, Args... arguments) {
  co_return co_await std::invoke(function, arguments...);
}

// The Task a submit_to call spawns.
template <typename F, typename... Args>
auto submitted_task(F&& function, Args&&... arguments) {
  using R = InvokeResult<F, Args...>;
  if constexpr (IsTask<R>::value) {
    return call_task<std::decay_t<F>, std::decay_t<Args>...>(std::forward<F>(function),
                                                              std::forward<Args>(arguments)...);
  } else {
    return call_plain<std::decay_t<F>, std::decay_t<Args>...>(std::forward<F>(function),
                                                               std::forward<Args>(arguments)...);
  }
}

}  // namespace internal

// Runs `function(arguments...)` on `target` (see the top of this file). Any thread.
template <typename F, typename... Args>
JoinHandle<typename internal::SubmitResult<internal::InvokeResult<F, Args...>>::type> submit_to(
    Worker& target, F&& function, Args&&... arguments) {
  return target.spawn(internal::submitted_task(std::forward<F>(function), std::forward<Args>(arguments)...));
}

// Runs `function(arguments...)` on worker `index` (< size()) of `runtime`. Any thread.
template <typename F, typename... Args>
JoinHandle<typename internal::SubmitResult<internal::InvokeResult<F, Args...>>::type> submit_to(
    Runtime& runtime, std::size_t index, F&& function, Args&&... arguments) {
  return runtime.spawn_on(index,
                          internal::submitted_task(std::forward<F>(function), std::forward<Args>(arguments)...));
}

}  // namespace surge

#endif  // SURGE_RUNTIME_SUBMIT_TO_H_
