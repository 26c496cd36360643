#include "runtime/testing/fault_injection_backend.h"

#include <algorithm>

namespace surge {

void FaultInjectionBackend::fail_nth(std::optional<OpCode> opcode, int nth, int error) {
  rules_.push_back(Rule{opcode, nth - 1, error});
}

void FaultInjectionBackend::submit(Operation& operation) noexcept {
  for (auto rule = rules_.begin(); rule != rules_.end(); ++rule) {
    if (rule->opcode.has_value() && *rule->opcode != operation.opcode) continue;
    if (rule->remaining-- > 0) continue;
    operation.result = -rule->error;
    rules_.erase(rule);
    failed_.push_back(operation);
    ++pending_failures_;
    ++injected_;
    return;
  }
  const bool transfers_data = operation.opcode == OpCode::kRecv || operation.opcode == OpCode::kSend ||
                              operation.opcode == OpCode::kRead || operation.opcode == OpCode::kWrite ||
                              operation.opcode == OpCode::kReadAt || operation.opcode == OpCode::kWriteAt;
  if (transfers_data && max_transfer_ > 0) operation.length = std::min(operation.length, max_transfer_);
  inner_->submit(operation);
}

int FaultInjectionBackend::poll(Timeout timeout) noexcept {
  if (failed_.empty()) return inner_->poll(timeout);
  int delivered = inner_->poll(std::chrono::nanoseconds::zero());
  internal::OperationQueue failed = failed_.take_all();
  while (Operation* operation = failed.pop_front()) {
    --pending_failures_;
    ++delivered;
    operation->complete(*operation);
  }
  return delivered;
}

}  // namespace surge
