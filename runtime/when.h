// when.h: structured concurrency on one worker: when_all, when_any and timeout.
//
//   auto [a, b] = co_await surge::when_all(fetch(x), fetch(y));       // both, concurrently
//   auto any = co_await surge::when_any(read_from(s1), read_from(s2));
//   // any.index: which finished first; any.results: every branch's result (the losers' too)
//   auto n = co_await surge::timeout(std::chrono::milliseconds(100), stream.read(buffer));
//   if (!n && n.error().is_timed_out()) ...                          // distinct from ECANCELED
//
// Arguments are awaitables (Tasks, socket operations, sleeps), taken by reference: await the combinator
// in the same expression that creates it (`co_await when_all(s.read(a), s.read(b))`), because the
// arguments are temporaries of that expression. What the combinators return can be awaited only as an
// rvalue, so `auto t = when_all(s.read(a), s.read(b)); co_await t;` does not compile (and
// `co_await std::move(t)` would await dead operations: don't). Each argument runs as a branch on the current worker with its
// own CancelSlot. when_any cancels the losers once the first branch finishes, and returns only after
// every branch has finished, so no operation outlives the call and no buffer is released early. A loser
// that completed anyway keeps its real result (data that arrived is reported). Cancelling the task that
// awaits a combinator cancels every branch. void results are std::monostate. An exception thrown by a
// branch is rethrown after all branches have finished.
#ifndef SURGE_RUNTIME_WHEN_H_
#define SURGE_RUNTIME_WHEN_H_

#include <array>
#include <chrono>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "runtime/internal/cancel_slot.h"
#include "runtime/internal/io_awaitable.h"
#include "runtime/result.h"
#include "runtime/task.h"
#include "runtime/time.h"
#include "runtime/worker.h"

namespace surge {
namespace internal {

// The type `co_await std::declval<Awaitable>()` produces (raw), and with void mapped to std::monostate.
template <typename Awaitable>
struct AwaitResult {
  using type = decltype(std::declval<Awaitable>().await_resume());
};
template <typename Awaitable>
  requires requires { std::declval<Awaitable>().operator co_await(); }
struct AwaitResult<Awaitable> {
  using type = decltype(std::declval<Awaitable>().operator co_await().await_resume());
};
template <typename Awaitable>
using raw_await_result_t = typename AwaitResult<Awaitable>::type;
template <typename Awaitable>
using await_result_t = std::conditional_t<std::is_void_v<raw_await_result_t<Awaitable>>, std::monostate,
                                          std::remove_cvref_t<raw_await_result_t<Awaitable>>>;

class BranchGroup;

struct BranchPromise {
  struct Branch get_return_object() noexcept;
  std::suspend_always initial_suspend() noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<BranchPromise> self) noexcept;  // tells the group
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void return_void() noexcept {}
  void unhandled_exception() noexcept { exception = std::current_exception(); }
  internal::CancelSlot* cancel_slot() noexcept { return &slot; }

  internal::CancelSlot slot;
  BranchGroup* group = nullptr;
  std::size_t index = 0;
  std::exception_ptr exception;
};

// One branch's coroutine frame, owned here and destroyed after it has finished.
struct Branch {
  using promise_type = BranchPromise;
  explicit Branch(std::coroutine_handle<BranchPromise> h) noexcept : handle(h) {}
  Branch(Branch&& other) noexcept : handle(std::exchange(other.handle, nullptr)) {}
  Branch(const Branch&) = delete;
  ~Branch() {
    if (handle) handle.destroy();
  }
  std::coroutine_handle<BranchPromise> handle;
};

inline Branch BranchPromise::get_return_object() noexcept {
  return Branch(std::coroutine_handle<BranchPromise>::from_promise(*this));
}

// Awaits `*awaitable` where the caller made it. Awaitables with an rvalue operator co_await (Task) are
// awaited as rvalues; the others through a named reference, because gcc 12 copies a co_await operand that
// is not a plain variable, and socket awaitables must not move (the backend holds their address).
template <typename Awaitable, typename R>
Branch run_branch(Awaitable* awaitable, std::optional<R>* out) {
  Awaitable& operand = *awaitable;
  if constexpr (requires { std::move(operand).operator co_await(); }) {
    if constexpr (std::is_void_v<raw_await_result_t<Awaitable>>) {
      co_await std::move(operand);
      out->emplace();
    } else {
      out->emplace(co_await std::move(operand));
    }
  } else if constexpr (std::is_void_v<raw_await_result_t<Awaitable>>) {
    co_await operand;
    out->emplace();
  } else {
    out->emplace(co_await operand);
  }
}

// Starts every branch, and resumes the awaiting coroutine once all of them have finished.
class BranchGroup {
 public:
  struct Outcome {
    std::size_t first;     // index of the branch that finished first
    bool outer_cancelled;  // the awaiting task was cancelled while the branches ran
  };

  // `shield`: the awaiting task's cancellation does not reach the branches (see shielded()).
  BranchGroup(std::span<Branch> branches, bool cancel_rest_on_first, bool shield = false) noexcept
      : branches_(branches),
        remaining_(branches.size()),
        cancel_rest_on_first_(cancel_rest_on_first),
        shield_(shield) {}

  bool await_ready() const noexcept { return branches_.empty(); }

  template <typename Promise>
  void await_suspend(std::coroutine_handle<Promise> awaiter) noexcept {
    awaiter_ = awaiter;
    worker_ = Worker::current();
    outer_slot_ = shield_ ? nullptr : internal::cancel_slot_of(awaiter);
    if (outer_slot_ != nullptr) {
      if (outer_slot_->requested()) {
        outer_cancelled_ = true;
        cancel_all();
      } else {
        outer_slot_->install(&on_outer_cancel, this);
      }
    }
    for (std::size_t i = 0; i < branches_.size(); ++i) {
      branches_[i].handle.promise().group = this;
      branches_[i].handle.promise().index = i;
    }
    // A branch may finish (and even finish the group) while it is being started: count first, start after.
    for (Branch& branch : branches_) branch.handle.resume();
  }

  Outcome await_resume() {
    for (Branch& branch : branches_) {
      if (branch.handle.promise().exception) std::rethrow_exception(branch.handle.promise().exception);
    }
    return {first_, outer_cancelled_};
  }

  void branch_finished(std::size_t index) noexcept {
    if (first_ == kNone) {
      first_ = index;
      if (cancel_rest_on_first_) cancel_all();
    }
    if (--remaining_ == 0) {
      if (outer_slot_ != nullptr) outer_slot_->clear();
      internal::WorkerAccess::schedule(*worker_, awaiter_);
    }
  }

 private:
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);

  void cancel_all() noexcept {
    for (Branch& branch : branches_) branch.handle.promise().slot.request();
  }
  static void on_outer_cancel(void* self) noexcept {
    auto* group = static_cast<BranchGroup*>(self);
    group->outer_cancelled_ = true;
    group->cancel_all();
  }

  std::span<Branch> branches_;
  std::size_t remaining_;
  bool cancel_rest_on_first_;
  bool shield_;
  bool outer_cancelled_ = false;
  std::size_t first_ = kNone;
  Worker* worker_ = nullptr;
  internal::CancelSlot* outer_slot_ = nullptr;
  std::coroutine_handle<> awaiter_ = nullptr;
};

inline void BranchPromise::FinalAwaiter::await_suspend(std::coroutine_handle<BranchPromise> self) noexcept {
  self.promise().group->branch_finished(self.promise().index);
}

template <typename... Rs, std::size_t... I>
std::tuple<Rs...> take_all(std::tuple<std::optional<Rs>...>& results, std::index_sequence<I...>) {
  return std::tuple<Rs...>(std::move(*std::get<I>(results))...);
}

template <typename... Awaitables, std::size_t... I>
Task<std::pair<BranchGroup::Outcome, std::tuple<await_result_t<Awaitables>...>>> run_group_shielded(
    bool cancel_rest_on_first, bool shield, std::index_sequence<I...> indices, Awaitables&&... awaitables) {
  std::tuple<std::optional<await_result_t<Awaitables>>...> results;
  std::array<Branch, sizeof...(Awaitables)> branches{
      run_branch(&awaitables, &std::get<I>(results))...};
  const BranchGroup::Outcome outcome = co_await BranchGroup(branches, cancel_rest_on_first, shield);
  co_return std::pair(outcome, take_all(results, indices));
}

template <typename... Awaitables, std::size_t... I>
Task<std::pair<BranchGroup::Outcome, std::tuple<await_result_t<Awaitables>...>>> run_group(
    bool cancel_rest_on_first, std::index_sequence<I...> indices, Awaitables&&... awaitables) {
  return run_group_shielded(cancel_rest_on_first, false, indices, std::forward<Awaitables>(awaitables)...);
}

}  // namespace internal

template <typename... Rs>
struct WhenAnyResult {
  std::size_t index;            // the branch that finished first
  std::tuple<Rs...> results;    // every branch's result; losers mostly carry ECANCELED
};

// Runs every awaitable concurrently and returns all their results once all have finished.
template <typename... Awaitables>
Task<std::tuple<internal::await_result_t<Awaitables>...>> when_all(Awaitables&&... awaitables) {
  auto [outcome, results] = co_await internal::run_group(false, std::index_sequence_for<Awaitables...>{},
                                                         std::forward<Awaitables>(awaitables)...);
  co_return std::move(results);
}

// Runs every awaitable concurrently; when the first finishes, cancels the others and waits for them.
template <typename... Awaitables>
Task<WhenAnyResult<internal::await_result_t<Awaitables>...>> when_any(Awaitables&&... awaitables) {
  auto [outcome, results] = co_await internal::run_group(true, std::index_sequence_for<Awaitables...>{},
                                                         std::forward<Awaitables>(awaitables)...);
  co_return WhenAnyResult<internal::await_result_t<Awaitables>...>{outcome.first, std::move(results)};
}

// Awaits `awaitable` (whose result is a Result<T>) for at most `limit`. If the limit passes first, the
// operation is cancelled and, once it has really finished, an ETIMEDOUT error naming the operation is
// returned; if it completed anyway, its real result is returned.
//
// For socket and fd operations (IoAwaitable) the deadline goes into the operation itself: no extra
// coroutine frames, a linked timeout SQE on io_uring, a timer-wheel entry otherwise. Other awaitables
// (Tasks, sleeps) race against a sleep through when_any.
template <typename Awaitable, typename Rep, typename Period>
  requires(!std::derived_from<std::remove_cvref_t<Awaitable>, internal::IoAwaitable>)
Task<internal::await_result_t<Awaitable>> timeout(std::chrono::duration<Rep, Period> limit, Awaitable&& awaitable) {
  auto [outcome, results] = co_await internal::run_group(true, std::index_sequence<0, 1>{},
                                                         std::forward<Awaitable>(awaitable), sleep_for(limit));
  auto& result = std::get<0>(results);
  if (outcome.first == 1 && !outcome.outer_cancelled && !result && result.error().is_cancelled()) {
    // A result that carries more than its error (a send's unsent message) keeps it.
    if constexpr (requires { std::move(result).with_error(result.error()); }) {
      co_return std::move(result).with_error(Error(ETIMEDOUT, result.error().operation()));
    } else {
      co_return Error(ETIMEDOUT, result.error().operation());
    }
  }
  co_return std::move(result);
}

// Awaits an IoAwaitable made in the same expression, with a deadline set just before it starts. Holds
// a pointer to the operation (which cannot move), a temporary of the expression that made both, so it
// can only be awaited there: it is neither copyable nor movable, and only an rvalue has operator
// co_await. `auto t = timeout(d, s.read(b)); co_await t;` does not compile.
template <typename Operation>
class [[nodiscard]] WithDeadline {
 public:
  WithDeadline(Operation& operation, Worker::Clock::time_point deadline) noexcept
      : operation_(&operation), deadline_(deadline) {}
  WithDeadline(const WithDeadline&) = delete;
  WithDeadline& operator=(const WithDeadline&) = delete;

  class Awaiter {
   public:
    Awaiter(Operation* operation, Worker::Clock::time_point deadline) noexcept
        : operation_(operation), deadline_(deadline) {}
    bool await_ready() const noexcept { return operation_->await_ready(); }
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> awaiter) noexcept {
      operation_->set_deadline(deadline_);
      return operation_->await_suspend(awaiter);
    }
    decltype(auto) await_resume() { return operation_->await_resume(); }

   private:
    Operation* operation_;
    Worker::Clock::time_point deadline_;
  };
  Awaiter operator co_await() && noexcept { return Awaiter(operation_, deadline_); }

 private:
  Operation* operation_;
  Worker::Clock::time_point deadline_;
};

template <typename Operation, typename Rep, typename Period>
  requires std::derived_from<std::remove_cvref_t<Operation>, internal::IoAwaitable>
WithDeadline<std::remove_cvref_t<Operation>> timeout(std::chrono::duration<Rep, Period> limit,
                                                     Operation&& operation) noexcept {
  return WithDeadline<std::remove_cvref_t<Operation>>(
      operation, saturating_add(Worker::Clock::now(), limit));
}

// Awaits `awaitable` shielded from the calling task's cancellation, for at most `limit`: for clean-up
// I/O that must still happen when the task is being cancelled (a goodbye message, TLS's close_notify,
// HTTP's graceful close), which would otherwise fail at once with ECANCELED. The limit is what bounds
// it instead: when it passes, the operation is cancelled and ETIMEDOUT returned (its real result if it
// completed anyway), exactly as timeout() does. A cancellation requested before or during the shielded
// wait still reaches the task's next unshielded await.
//
//   auto reply = co_await stream.read(buffer);
//   if (!reply && reply.error().is_cancelled()) {
//     (void)co_await surge::shielded(std::chrono::milliseconds(200), stream.write_all(goodbye));
//     co_return reply.error();
//   }
template <typename Awaitable, typename Rep, typename Period>
Task<internal::await_result_t<Awaitable>> shielded(std::chrono::duration<Rep, Period> limit, Awaitable&& awaitable) {
  auto [outcome, results] =
      co_await internal::run_group_shielded(false, true, std::index_sequence<0>{}, timeout(limit, std::forward<Awaitable>(awaitable)));
  co_return std::move(std::get<0>(results));
}

}  // namespace surge

#endif  // SURGE_RUNTIME_WHEN_H_
