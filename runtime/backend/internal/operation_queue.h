// operation_queue.h: an intrusive FIFO of Operations (through Operation::queue_next), no allocation.
//
// Used by the epoll backend for the operations waiting on an fd and for finished ones awaiting delivery.
#ifndef SURGE_RUNTIME_BACKEND_INTERNAL_OPERATION_QUEUE_H_
#define SURGE_RUNTIME_BACKEND_INTERNAL_OPERATION_QUEUE_H_

#include "runtime/backend/internal/operation_access.h"
#include "runtime/backend/operation.h"

namespace surge::internal {

class OperationQueue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  Operation* front() const noexcept { return head_; }

  void push_back(Operation& operation) noexcept {
    OperationAccess::queue_next(operation) = nullptr;
    if (tail_ != nullptr) {
      OperationAccess::queue_next(*tail_) = &operation;
    } else {
      head_ = &operation;
    }
    tail_ = &operation;
  }

  Operation* pop_front() noexcept {
    Operation* operation = head_;
    if (operation == nullptr) return nullptr;
    head_ = OperationAccess::queue_next(*operation);
    if (head_ == nullptr) tail_ = nullptr;
    OperationAccess::queue_next(*operation) = nullptr;
    return operation;
  }

  // Unlinks `operation` if it is queued here; O(length). Returns whether it was found.
  bool remove(Operation& operation) noexcept {
    Operation* previous = nullptr;
    for (Operation* current = head_; current != nullptr; previous = current, current = OperationAccess::queue_next(*current)) {
      if (current != &operation) continue;
      if (previous != nullptr) {
        OperationAccess::queue_next(*previous) = OperationAccess::queue_next(*current);
      } else {
        head_ = OperationAccess::queue_next(*current);
      }
      if (tail_ == current) tail_ = previous;
      OperationAccess::queue_next(*current) = nullptr;
      return true;
    }
    return false;
  }

  // Puts every operation of `earlier` (emptied) in front of this queue's, keeping their order.
  void prepend(OperationQueue& earlier) noexcept {
    if (earlier.head_ == nullptr) return;
    OperationAccess::queue_next(*earlier.tail_) = head_;
    if (tail_ == nullptr) tail_ = earlier.tail_;
    head_ = earlier.head_;
    earlier.head_ = earlier.tail_ = nullptr;
  }

  // Moves every operation out, leaving this queue empty.
  OperationQueue take_all() noexcept {
    OperationQueue taken = *this;
    head_ = tail_ = nullptr;
    return taken;
  }

 private:
  Operation* head_ = nullptr;
  Operation* tail_ = nullptr;
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_BACKEND_INTERNAL_OPERATION_QUEUE_H_
