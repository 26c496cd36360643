// multishot_acceptor.h (internal): multishot accept for the io_uring backend. One armed IORING_OP_ACCEPT
// (multishot) per listening socket serves every accept Operation submitted for it. The request is
// internal; callers keep submitting ordinary single-result accepts and see the same results as with a
// single-shot SQE each.
//
// Per listener: a FIFO of accept Operations waiting, and a bounded queue of accepted connections (or a
// final error) nobody has claimed yet. A new connection goes to the oldest waiter, else into the queue;
// a full queue stops the request (the kernel's own listen backlog holds what comes next) and the next
// accept that finds the queue empty arms it again. The bound holds between the kernel's passes: one pass
// hands over every connection already waiting in the listen backlog, so a burst that arrived while the
// worker was busy is queued whole (at most the listen backlog: these are sockets the kernel had made
// anyway; what queueing them adds is an fd each). Results never reach a caller inside submit() or
// cancel(): they are queued as completions for the next poll(), like the kernel's.
//
//   MultishotAcceptor acceptor(backend);
//   acceptor.set_up(/*enabled=*/kernel_has_it && options.allow_multishot_accept, /*backlog=*/64);
//   if (acceptor.serves(operation)) acceptor.accept(operation);   // from IoUringBackend::submit()
//
// Threads: the backend's owner thread. enabled() is the one source of truth for whether accepts are
// multishot (BackendFeatures::uses_multishot_accept is read from it).
#ifndef SURGE_RUNTIME_BACKEND_IO_URING_MULTISHOT_ACCEPTOR_H_
#define SURGE_RUNTIME_BACKEND_IO_URING_MULTISHOT_ACCEPTOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/backend/internal/operation_access.h"
#include "runtime/backend/operation.h"

namespace surge {
class IoUringBackend;
}  // namespace surge

namespace surge::internal {

class MultishotAcceptor {
 public:
  explicit MultishotAcceptor(IoUringBackend& backend) noexcept;
  // Closes the connections accepted and never claimed. Precondition: no request is armed (the backend's
  // in_flight() is 0).
  ~MultishotAcceptor();
  MultishotAcceptor(const MultishotAcceptor&) = delete;
  MultishotAcceptor& operator=(const MultishotAcceptor&) = delete;

  void set_up(bool enabled, std::size_t backlog) noexcept {
    enabled_ = enabled;
    backlog_ = backlog > 0 ? backlog : 1;
  }
  bool enabled() const noexcept { return enabled_; }

  // Whether `operation` is an accept this serves: not one that wants the peer's address or carries a
  // linked deadline (those take a single-shot SQE), and not the acceptor's own request.
  bool serves(const Operation& operation) const noexcept {
    return enabled_ && operation.opcode == OpCode::kAccept && !OperationAccess::multishot(operation) &&
           operation.buffer == nullptr && operation.link_deadline_ns == 0;
  }
  // Serves `operation` from the listener's queue, or queues it as a waiter (arming the request).
  void accept(Operation& operation) noexcept;
  // Takes a waiting accept out of its queue and completes it with -ECANCELED at the next poll; false if
  // `operation` is not a waiter here.
  bool cancel_waiter(Operation& operation) noexcept;
  // The listener `fd` is closing: its waiters fail with -ECANCELED, unclaimed connections are closed,
  // and the request goes away once the kernel lets go of it.
  void forget(int fd) noexcept;

 private:
  struct Listener;

  Listener* listener_for(int fd) noexcept;  // the live (not forgotten) one, or null
  void arm(Listener& listener) noexcept;
  static void on_request(Operation& request) noexcept;
  void release(Listener& listener) noexcept;
  bool give_to_first_waiter(Listener& listener, std::int32_t result) noexcept;  // false: none waits

  IoUringBackend& backend_;
  bool enabled_ = false;
  std::size_t backlog_ = 64;
  std::vector<std::unique_ptr<Listener>> listeners_;  // few: one per listening socket
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_BACKEND_IO_URING_MULTISHOT_ACCEPTOR_H_
