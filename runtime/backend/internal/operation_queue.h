// operation_queue.h: an intrusive FIFO of Operations (through Operation::queue_next), no allocation.
//
// Used by the epoll backend for the operations waiting on an fd and for finished ones awaiting delivery.
#ifndef SURGE_RUNTIME_BACKEND_INTERNAL_OPERATION_QUEUE_H_
#define SURGE_RUNTIME_BACKEND_INTERNAL_OPERATION_QUEUE_H_

#include "runtime/backend/operation.h"

namespace surge::internal {

class OperationQueue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  Operation* front() const noexcept { return head_; }

  void push_back(Operation& operation) noexcept {
    operation.queue_next = nullptr;
    if (tail_ != nullptr) {
      tail_->queue_next = &operation;
    } else {
      head_ = &operation;
    }
    tail_ = &operation;
  }

  Operation* pop_front() noexcept {
    Operation* operation = head_;
    if (operation == nullptr) return nullptr;
    head_ = operation->queue_next;
    if (head_ == nullptr) tail_ = nullptr;
    operation->queue_next = nullptr;
    return operation;
  }

  // Unlinks `operation` if it is queued here; O(length). Returns whether it was found.
  bool remove(Operation& operation) noexcept {
    Operation* previous = nullptr;
    for (Operation* current = head_; current != nullptr; previous = current, current = current->queue_next) {
      if (current != &operation) continue;
      if (previous != nullptr) {
        previous->queue_next = current->queue_next;
      } else {
        head_ = current->queue_next;
      }
      if (tail_ == current) tail_ = previous;
      current->queue_next = nullptr;
      return true;
    }
    return false;
  }

  // Puts every operation of `earlier` (emptied) in front of this queue's, keeping their order.
  void prepend(OperationQueue& earlier) noexcept {
    if (earlier.head_ == nullptr) return;
    earlier.tail_->queue_next = head_;
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
