// in_flight_list.h: an intrusive list of the operations a backend has accepted and not yet completed.
//
// It makes cancel_all() possible without a kernel feature (IORING_ASYNC_CANCEL_ANY is 5.19+) and gives
// in_flight() for the worker's drain on shutdown. O(1) insert and remove; no allocation.
#ifndef SURGE_RUNTIME_BACKEND_IN_FLIGHT_LIST_H_
#define SURGE_RUNTIME_BACKEND_IN_FLIGHT_LIST_H_

#include <cstddef>

#include "runtime/backend/operation.h"

namespace surge {

class InFlightList {
 public:
  void insert(Operation& operation) noexcept {
    operation.in_flight_prev = nullptr;
    operation.in_flight_next = head_;
    if (head_ != nullptr) head_->in_flight_prev = &operation;
    head_ = &operation;
    ++size_;
  }

  void remove(Operation& operation) noexcept {
    if (operation.in_flight_prev != nullptr) {
      operation.in_flight_prev->in_flight_next = operation.in_flight_next;
    } else {
      head_ = operation.in_flight_next;
    }
    if (operation.in_flight_next != nullptr) operation.in_flight_next->in_flight_prev = operation.in_flight_prev;
    operation.in_flight_prev = operation.in_flight_next = nullptr;
    --size_;
  }

  // Calls `visit(Operation&)` for each operation; `visit` must not insert or remove.
  template <typename Visitor>
  void for_each(Visitor&& visit) const {
    for (Operation* op = head_; op != nullptr; op = op->in_flight_next) visit(*op);
  }

  std::size_t size() const noexcept { return size_; }

 private:
  Operation* head_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace surge

#endif  // SURGE_RUNTIME_BACKEND_IN_FLIGHT_LIST_H_
