// backend.h: the interface every I/O backend implements (io_uring, epoll; IOCP or kqueue later).
//
// Narrow and batch-level, like Seastar's reactor_backend: submit() queues completion-style operations,
// poll() flushes what was queued, waits (bounded) for completions and dispatches them, wake() lets another
// thread interrupt that wait. A readiness backend (epoll) emulates completions so that callers cannot tell
// the difference: same results, same errors, operations on one fd and direction complete in the order
// they were submitted.
//
// Threading: one backend belongs to one worker thread. Everything but wake() must be called from it.
//
//   auto backend = surge::make_backend(surge::BackendChoice::kAuto, {});
//   op.complete = &on_done;              // runs inside poll()
//   (*backend)->submit(op);
//   while ((*backend)->in_flight() > 0) (*backend)->poll(std::nullopt);
#ifndef SURGE_RUNTIME_BACKEND_BACKEND_H_
#define SURGE_RUNTIME_BACKEND_BACKEND_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "runtime/backend/counters.h"
#include "runtime/backend/operation.h"
#include "runtime/backend/options.h"
#include "runtime/result.h"

namespace surge {

namespace internal {
class BlockingPool;
}  // namespace internal

class Backend {
 public:
  // nullopt: wait until something completes or wake() is called. Zero: do not block.
  using Timeout = std::optional<std::chrono::nanoseconds>;

  virtual ~Backend() = default;

  virtual BackendKind kind() const noexcept = 0;

  // Starts `operation`. Never fails and never calls `operation.complete` before returning: the result,
  // success or error, arrives through poll(). The operation and its buffers must stay alive until then.
  virtual void submit(Operation& operation) noexcept = 0;

  // Asks for an in-flight operation to finish early. Its completion still arrives through poll(): with
  // -ECANCELED, or with its real result if it had already finished (data that arrived is not lost).
  // Cancelling an operation that is not in flight is harmless.
  virtual void cancel(Operation& operation) noexcept = 0;

  // cancel() for every operation in flight.
  virtual void cancel_all() noexcept = 0;

  // Submits queued work, waits up to `timeout` for completions (returns early after wake()), and calls
  // `complete` for each, at most BackendOptions::max_completions_per_poll of them, oldest first.
  // Returns how many operations completed.
  virtual int poll(Timeout timeout) noexcept = 0;

  // Interrupts a poll() that is waiting, or makes the next one return at once. Safe from any thread.
  virtual void wake() noexcept = 0;

  // Like wake(), sent by `sender`, the backend of the calling thread's own worker. A backend may use a
  // cheaper path between two of its kind (io_uring: IORING_OP_MSG_RING from the sender's ring, no
  // eventfd); the default is wake().
  virtual void wake_from(Backend& sender) noexcept { wake(); }

  // Must be called before `fd` is closed: a backend keeps per-fd state that would otherwise be mistaken
  // for the next file that reuses the number. Operations still in flight on `fd` (a caller that closes
  // with a read pending) complete with -ECANCELED, or with their result if they had already finished,
  // with Operation::fd_forgotten set; none of them ever runs on the next file that gets the number.
  virtual void forget_fd(int fd) noexcept = 0;

  // Like forget_fd, for an fd that stays open and moves to another worker's backend (TcpStream::move_to):
  // nothing received for it may be lost. Fails with EBUSY, forgetting nothing, when an operation is in
  // flight on it, or when bytes already received for it into lent buffers (borrowed reads) have not been
  // read yet; they can then be read here as usual. Stops borrowed reads on it either way.
  virtual Result<void> detach_fd(int fd) noexcept {
    forget_fd(fd);
    return ok();
  }

  // Operations submitted whose completion has not been delivered yet.
  virtual std::size_t in_flight() const noexcept = 0;

  // Whether submit() queued work that only the next poll() hands to the kernel (io_uring's SQ).
  virtual bool has_unsubmitted() const noexcept { return false; }

  // Whether submit() honours Operation::link_deadline_ns (io_uring: IORING_OP_LINK_TIMEOUT). Where it
  // does not, callers put deadlines on the worker's timer wheel and cancel() when they pass.
  virtual bool supports_linked_timeouts() const noexcept { return false; }
  // Whether a linked timeout bounds this operation from start to completion: not for one that may wait
  // without an SQE of its own (a borrowed receive) or finish after its SQE (a zero-copy send waiting for
  // its notification). Callers use the wheel for the others.
  virtual bool links_timeout_for(const Operation& operation) const noexcept { return false; }

  // A snapshot of the counters. Safe from any thread (each field is read atomically; the fields are not
  // read as one atomic whole).
  virtual BackendCounters counters() const noexcept = 0;

  virtual BackendFeatures features() const = 0;

  // The pool that runs the file operations the backend cannot run itself (OpCode::kReadAt ...; all of
  // them on epoll); BlockingPool::shared() until this is called. Before the first file operation.
  virtual void use_blocking_pool(internal::BlockingPool& pool) noexcept {}

  // Ends the loan of a buffer a kRecvBorrowed operation handed out. Owning thread only.
  virtual void release_buffer(std::uint32_t buffer_id) noexcept = 0;
};

}  // namespace surge

#endif  // SURGE_RUNTIME_BACKEND_BACKEND_H_
