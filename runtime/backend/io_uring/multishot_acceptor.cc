// multishot_acceptor.cc: see multishot_acceptor.h.
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "runtime/backend/io_uring/multishot_acceptor.h"

#include "runtime/backend/io_uring/io_uring_backend.h"
#include "runtime/backend/io_uring/ring_internal.h"

namespace surge::internal {

using namespace uring;  // NOLINT: the backend's own tags and states

// One listening socket's multishot accept: the request itself is the Operation the kernel reports on.
struct MultishotAcceptor::Listener : Operation {
  MultishotAcceptor* acceptor = nullptr;
  bool armed = false;
  bool forgotten = false;           // the listener was closed: go away once the kernel lets go
  RingQueue<std::int32_t> ready;    // accepted fds, or a final error (< 0), not yet claimed
  RingQueue<Operation*> waiters;    // accept Operations in submission order
};

MultishotAcceptor::MultishotAcceptor(IoUringBackend& backend) noexcept : backend_(backend) {}

MultishotAcceptor::~MultishotAcceptor() {
  while (!listeners_.empty()) release(*listeners_.back());
}


MultishotAcceptor::Listener* MultishotAcceptor::listener_for(int fd) noexcept {
  for (auto& listener : listeners_) {
    if (listener->fd == fd && !listener->forgotten) return listener.get();
  }
  return nullptr;
}

void MultishotAcceptor::arm(Listener& listener) noexcept {
  listener.armed = true;
  backend_.submit(listener);  // multishot is set, so this goes to the kernel, not back here
}

void MultishotAcceptor::accept(Operation& operation) noexcept {
  Listener* listener = listener_for(operation.fd);
  if (listener == nullptr) {
    auto created = std::make_unique<Listener>();
    created->acceptor = this;
    created->opcode = OpCode::kAccept;
    created->fd = operation.fd;
    OperationAccess::set_multishot(*created, true);
    created->owned_fd = operation.owned_fd;
    created->complete = &on_request;
    listener = created.get();
    listeners_.push_back(std::move(created));
  }
  if (!listener->ready.empty()) {
    const std::int32_t result = listener->ready.front();
    listener->ready.pop_front();
    backend_.complete_soon(operation, result);
    return;
  }
  OperationAccess::state(operation) |= kStateAcceptWaiter;
  listener->waiters.push_back(&operation);
  if (!listener->armed) arm(*listener);
}

bool MultishotAcceptor::cancel_waiter(Operation& operation) noexcept {
  if ((OperationAccess::state(operation) & kStateAcceptWaiter) == 0) return false;
  Listener* listener = listener_for(operation.fd);
  if (listener != nullptr) {
    auto& waiters = listener->waiters;
    waiters.erase(&operation);
  }
  OperationAccess::state(operation) &= ~kStateAcceptWaiter;
  backend_.complete_soon(operation, -ECANCELED);
  return true;
}

bool MultishotAcceptor::give_to_first_waiter(Listener& listener, std::int32_t result) noexcept {
  if (listener.waiters.empty()) return false;
  Operation& waiter = *listener.waiters.front();
  listener.waiters.pop_front();
  backend_.finish(waiter, result);  // clears its waiter state with the rest
  return true;
}

void MultishotAcceptor::on_request(Operation& request) noexcept {
  auto& listener = static_cast<Listener&>(request);
  MultishotAcceptor& acceptor = *listener.acceptor;
  const std::int32_t result = request.result;
  const bool more = OperationAccess::more(request);
  if (result >= 0) {
    if (listener.forgotten) {
      ::close(result);  // nobody will claim it
    } else if (!acceptor.give_to_first_waiter(listener, result)) {
      listener.ready.push_back(result);
      const bool stopping = (OperationAccess::state(listener) & kStateCancelRequested) != 0;
      if (more && !stopping && listener.ready.size() >= acceptor.backlog_) acceptor.backend_.cancel(listener);
    }
  }
  if (more) return;
  // The request has ended: cancelled (full queue, listener closed, shutdown) or failed (EMFILE...).
  listener.armed = false;
  if (listener.forgotten) return acceptor.release(listener);
  const bool failed = result < 0 && result != -ECANCELED && result != -EAGAIN && result != -EINTR;
  if (failed && !acceptor.give_to_first_waiter(listener, result)) {
    listener.ready.push_back(result);  // the next accept reports it, as a single-shot one would
  }
  if (!listener.waiters.empty()) acceptor.arm(listener);
}

void MultishotAcceptor::release(Listener& listener) noexcept {
  listener.ready.for_each([](std::int32_t result) {
    if (result >= 0) ::close(result);
  });
  listener.ready.clear();
  auto it = std::find_if(listeners_.begin(), listeners_.end(), [&](const auto& each) { return each.get() == &listener; });
  if (it != listeners_.end()) listeners_.erase(it);  // destroys `listener`
}

void MultishotAcceptor::forget(int fd) noexcept {
  Listener* listener = listener_for(fd);
  if (listener == nullptr) return;
  // Contract: nothing is in flight on a closing fd. If accepts are, fail them rather than strand them.
  listener->waiters.for_each([this](Operation* waiter) {
    OperationAccess::state(*waiter) &= ~kStateAcceptWaiter;
    backend_.complete_soon(*waiter, -ECANCELED);
  });
  listener->waiters.clear();
  listener->forgotten = true;
  listener->ready.for_each([](std::int32_t result) {
    if (result >= 0) ::close(result);
  });
  listener->ready.clear();
  if (listener->armed) {
    backend_.cancel(*listener);  // its final completion releases it; the kernel holds the socket until then
  } else {
    release(*listener);
  }
}

}  // namespace surge::internal
