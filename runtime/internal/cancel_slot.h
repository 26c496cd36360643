// cancel_slot.h: CancelSlot, how a cancellation request reaches the operation a task is suspended on.
//
// Every chain of awaiting coroutines (a spawned task and the Tasks it awaits, or one branch of when_any)
// shares one CancelSlot. Whatever the chain suspends on (an I/O operation, a sleep, a join, a when_any)
// installs a handler that knows how to cut that wait short, and clears it when it resumes. request()
// marks the slot and runs the handler once; an awaitable that finds the slot already marked completes
// at once with ECANCELED instead of starting. Cancellation is a request: the operation still completes
// (with ECANCELED, or with its real result if it won the race) before its coroutine resumes.
//
// Worker-local, not thread-safe: requests from other threads travel as messages to the owning worker.
#ifndef SURGE_RUNTIME_INTERNAL_CANCEL_SLOT_H_
#define SURGE_RUNTIME_INTERNAL_CANCEL_SLOT_H_

#include <coroutine>

namespace surge::internal {

class CancelSlot {
 public:
  using Handler = void (*)(void* context) noexcept;

  bool requested() const noexcept { return requested_; }

  // Marks the slot and runs the installed handler, if any, exactly once. Later calls do nothing.
  void request() noexcept {
    if (requested_) return;
    requested_ = true;
    if (handler_ != nullptr) {
      const Handler handler = handler_;
      handler_ = nullptr;
      handler(context_);
    }
  }

  // Installs the handler for the wait that is starting (replacing none: a chain waits on one thing).
  void install(Handler handler, void* context) noexcept {
    handler_ = handler;
    context_ = context;
  }

  // Removes the handler when the wait ends.
  void clear() noexcept { handler_ = nullptr; }

 private:
  bool requested_ = false;
  Handler handler_ = nullptr;
  void* context_ = nullptr;
};

// The CancelSlot of the coroutine behind `handle`, or nullptr when its promise has none.
template <typename Promise>
CancelSlot* cancel_slot_of(std::coroutine_handle<Promise> handle) noexcept {
  if constexpr (requires(Promise& promise) { { promise.cancel_slot() } -> std::same_as<CancelSlot*>; }) {
    return handle.promise().cancel_slot();
  } else {
    return nullptr;
  }
}

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_INTERNAL_CANCEL_SLOT_H_
