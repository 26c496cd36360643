// fault_injection_backend.h: a test-only Backend wrapper that injects faults into another backend.
//
// It forwards everything to the wrapped backend, except that it can
//   - fail the N-th operation (of one opcode, or of any) with an errno, without performing it;
//   - cap every recv/send/read/write (and pread/pwrite) at a number of bytes, so that callers see short reads and writes.
// Injected failures are delivered through poll() like real ones, so the code under test cannot tell.
//
//   auto faulty = std::make_unique<surge::FaultInjectionBackend>(std::move(*real_backend));
//   faulty->fail_nth(surge::OpCode::kRecv, 2, ECONNRESET);   // the 2nd recv fails
//   faulty->limit_transfer(7);                                // at most 7 bytes per syscall
//   auto worker = surge::Worker::with_backend(std::move(faulty));
#ifndef SURGE_RUNTIME_TESTING_FAULT_INJECTION_BACKEND_H_
#define SURGE_RUNTIME_TESTING_FAULT_INJECTION_BACKEND_H_

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include "runtime/backend/backend.h"
#include "runtime/backend/internal/operation_queue.h"

namespace surge {

class FaultInjectionBackend final : public Backend {
 public:
  explicit FaultInjectionBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}

  // The `nth` (1-based) operation submitted from now on whose opcode is `opcode` (any opcode if nullopt)
  // completes with -`error` instead of being performed.
  void fail_nth(std::optional<OpCode> opcode, int nth, int error);
  // Caps the length of every data transfer (recv, send, read, write, and the positional file reads and
  // writes kReadAt, kWriteAt) at `max_bytes` (> 0).
  void limit_transfer(std::size_t max_bytes) { max_transfer_ = max_bytes; }
  // How many failures have been injected so far.
  int injected() const noexcept { return injected_; }

  BackendKind kind() const noexcept override { return inner_->kind(); }
  void submit(Operation& operation) noexcept override;
  void cancel(Operation& operation) noexcept override { inner_->cancel(operation); }
  void cancel_all() noexcept override { inner_->cancel_all(); }
  int poll(Timeout timeout) noexcept override;
  void wake() noexcept override { inner_->wake(); }
  void forget_fd(int fd) noexcept override { inner_->forget_fd(fd); }
  std::size_t in_flight() const noexcept override { return inner_->in_flight() + pending_failures_; }
  bool has_unsubmitted() const noexcept override { return pending_failures_ > 0 || inner_->has_unsubmitted(); }
  BackendCounters counters() const noexcept override { return inner_->counters(); }
  BackendFeatures features() const override { return inner_->features(); }
  void release_buffer(std::uint32_t buffer_id) noexcept override { inner_->release_buffer(buffer_id); }
  void use_blocking_pool(internal::BlockingPool& pool) noexcept override { inner_->use_blocking_pool(pool); }
  bool supports_linked_timeouts() const noexcept override { return inner_->supports_linked_timeouts(); }
  bool links_timeout_for(const Operation& operation) const noexcept override {
    return inner_->links_timeout_for(operation);
  }

 private:
  struct Rule {
    std::optional<OpCode> opcode;
    int remaining;  // matching submissions still to let through before this one fails
    int error;
  };

  std::unique_ptr<Backend> inner_;
  std::vector<Rule> rules_;
  std::size_t max_transfer_ = 0;
  internal::OperationQueue failed_;  // injected failures awaiting delivery
  std::size_t pending_failures_ = 0;
  int injected_ = 0;
};

}  // namespace surge

#endif  // SURGE_RUNTIME_TESTING_FAULT_INJECTION_BACKEND_H_
