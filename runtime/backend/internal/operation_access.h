// operation_access.h (internal): the backends' way into the part of an Operation that callers cannot
// touch: queue and in-flight links, per-operation state flags, the linked timeout's timespec, and the
// multishot and CQE-flag fields of the backends' own internal requests.
//
//   using Access = internal::OperationAccess;
//   Access::state(operation) |= kStateInFlight;
//   if (Access::more(operation)) { ... }  // another CQE of this multishot request follows
//
// Threads: the backend's owner thread, like everything else about an in-flight Operation.
#ifndef SURGE_RUNTIME_BACKEND_INTERNAL_OPERATION_ACCESS_H_
#define SURGE_RUNTIME_BACKEND_INTERNAL_OPERATION_ACCESS_H_

#include <cstdint>

#include "runtime/backend/operation.h"
#include "runtime/internal/intrusive_list.h"

namespace surge::internal {

struct OperationAccess {
  static Operation*& queue_next(Operation& operation) noexcept { return operation.queue_next_; }
  static std::uint32_t& state(Operation& operation) noexcept { return operation.backend_state_; }
  static std::uint32_t state(const Operation& operation) noexcept { return operation.backend_state_; }
  static std::uint32_t& completion_flags(Operation& operation) noexcept { return operation.completion_flags_; }
  static bool more(const Operation& operation) noexcept { return operation.more_; }
  static void set_more(Operation& operation, bool more) noexcept { operation.more_ = more; }
  static bool multishot(const Operation& operation) noexcept { return operation.multishot_; }
  static void set_multishot(Operation& operation, bool multishot) noexcept { operation.multishot_ = multishot; }
  static auto& link_timeout_spec(Operation& operation) noexcept { return operation.link_timeout_spec_; }

  using InFlightList = IntrusiveList<Operation, &Operation::in_flight_prev_, &Operation::in_flight_next_>;
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_BACKEND_INTERNAL_OPERATION_ACCESS_H_
