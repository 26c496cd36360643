// Multishot accept for the io_uring backend: one armed IORING_OP_ACCEPT (multishot) per listening socket
// serves every accept Operation submitted for it. The request is internal; callers keep submitting
// ordinary single-result accepts and see the same results as with a single-shot SQE each.
//
// Per listener: a FIFO of accept Operations waiting, and a bounded queue of accepted connections (or a
// final error) nobody has claimed yet. A new connection goes to the oldest waiter, else into the queue;
// a full queue stops the request (the kernel's own listen backlog holds what comes next) and the next
// accept that finds the queue empty arms it again. The bound holds between the kernel's passes: one pass
// hands over every connection already waiting in the listen backlog, so a burst that arrived while the
// worker was busy is queued whole (at most the listen backlog: these are sockets the kernel had made
// anyway; what queueing them adds is an fd each). Results never reach a caller inside submit() or
// cancel(): they are queued as completions for the next poll(), like the kernel's.
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "runtime/backend/io_uring/io_uring_backend.h"
#include "runtime/backend/io_uring/ring_internal.h"

namespace surge {

using internal::OperationAccess;

using namespace internal::uring;  // NOLINT: the backend's own tags and states


IoUringBackend::MultishotAccept* IoUringBackend::listener_for(int fd) noexcept {
  for (auto& listener : listeners_) {
    if (listener->fd == fd && !listener->forgotten) return listener.get();
  }
  return nullptr;
}

void IoUringBackend::complete_soon(Operation& operation, std::int32_t result) noexcept {
  pending_.push_back({user_data_for(operation, kTagOperation), result, 0});
}

void IoUringBackend::arm(MultishotAccept& listener) noexcept {
  listener.armed = true;
  submit(listener);  // multishot is set, so this goes to the kernel, not back here
}

void IoUringBackend::accept_from_multishot(Operation& operation) noexcept {
  MultishotAccept* listener = listener_for(operation.fd);
  if (listener == nullptr) {
    auto created = std::make_unique<MultishotAccept>();
    created->backend = this;
    created->opcode = OpCode::kAccept;
    created->fd = operation.fd;
    OperationAccess::set_multishot(*created, true);
    created->owned_fd = operation.owned_fd;
    created->complete = &on_accept_request;
    listener = created.get();
    listeners_.push_back(std::move(created));
  }
  if (!listener->ready.empty()) {
    const std::int32_t result = listener->ready.front();
    listener->ready.pop_front();
    complete_soon(operation, result);
    return;
  }
  OperationAccess::state(operation) |= kStateAcceptWaiter;
  listener->waiters.push_back(&operation);
  if (!listener->armed) arm(*listener);
}

bool IoUringBackend::cancel_accept_waiter(Operation& operation) noexcept {
  if ((OperationAccess::state(operation) & kStateAcceptWaiter) == 0) return false;
  MultishotAccept* listener = listener_for(operation.fd);
  if (listener != nullptr) {
    auto& waiters = listener->waiters;
    waiters.erase(&operation);
  }
  OperationAccess::state(operation) &= ~kStateAcceptWaiter;
  complete_soon(operation, -ECANCELED);
  return true;
}

bool IoUringBackend::give_to_first_waiter(MultishotAccept& listener, std::int32_t result) noexcept {
  if (listener.waiters.empty()) return false;
  Operation& waiter = *listener.waiters.front();
  listener.waiters.pop_front();
  finish(waiter, result);  // clears its waiter state with the rest
  return true;
}

void IoUringBackend::on_accept_request(Operation& request) noexcept {
  auto& listener = static_cast<MultishotAccept&>(request);
  IoUringBackend& backend = *listener.backend;
  const std::int32_t result = request.result;
  const bool more = OperationAccess::more(request);
  if (result >= 0) {
    if (listener.forgotten) {
      ::close(result);  // nobody will claim it
    } else if (!backend.give_to_first_waiter(listener, result)) {
      listener.ready.push_back(result);
      const bool stopping = (OperationAccess::state(listener) & kStateCancelRequested) != 0;
      if (more && !stopping && listener.ready.size() >= backend.multishot_accept_backlog_) backend.cancel(listener);
    }
  }
  if (more) return;
  // The request has ended: cancelled (full queue, listener closed, shutdown) or failed (EMFILE...).
  listener.armed = false;
  if (listener.forgotten) return backend.release(listener);
  const bool failed = result < 0 && result != -ECANCELED && result != -EAGAIN && result != -EINTR;
  if (failed && !backend.give_to_first_waiter(listener, result)) {
    listener.ready.push_back(result);  // the next accept reports it, as a single-shot one would
  }
  if (!listener.waiters.empty()) backend.arm(listener);
}

void IoUringBackend::release(MultishotAccept& listener) noexcept {
  listener.ready.for_each([](std::int32_t result) {
    if (result >= 0) ::close(result);
  });
  listener.ready.clear();
  auto it = std::find_if(listeners_.begin(), listeners_.end(), [&](const auto& each) { return each.get() == &listener; });
  if (it != listeners_.end()) listeners_.erase(it);  // destroys `listener`
}

void IoUringBackend::forget_listener(int fd) noexcept {
  MultishotAccept* listener = listener_for(fd);
  if (listener == nullptr) return;
  // Contract: nothing is in flight on a closing fd. If accepts are, fail them rather than strand them.
  listener->waiters.for_each([this](Operation* waiter) {
    OperationAccess::state(*waiter) &= ~kStateAcceptWaiter;
    complete_soon(*waiter, -ECANCELED);
  });
  listener->waiters.clear();
  listener->forgotten = true;
  listener->ready.for_each([](std::int32_t result) {
    if (result >= 0) ::close(result);
  });
  listener->ready.clear();
  if (listener->armed) {
    cancel(*listener);  // its final completion releases it; the kernel holds the socket until then
  } else {
    release(*listener);
  }
}

}  // namespace surge
