// intrusive_list.h: a doubly-linked list threaded through two pointer members of its elements.
//
// O(1) insert (at either end) and remove, no allocation, elements owned elsewhere. Used for the operations
// a backend has in flight, the unfinished tasks a worker owns, and (as a FIFO: push_back, pop_front) the
// tasks waiting on a sync primitive.
//
//   struct Node { Node* previous; Node* next; };
//   IntrusiveList<Node, &Node::previous, &Node::next> list;
//   list.push_front(node); ... list.remove(node);
#ifndef SURGE_RUNTIME_INTERNAL_INTRUSIVE_LIST_H_
#define SURGE_RUNTIME_INTERNAL_INTRUSIVE_LIST_H_

#include <cstddef>

namespace surge::internal {

template <typename Node, Node* Node::*Previous, Node* Node::*Next>
class IntrusiveList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  Node* front() const noexcept { return head_; }

  void push_front(Node& node) noexcept {
    node.*Previous = nullptr;
    node.*Next = head_;
    if (head_ != nullptr) head_->*Previous = &node;
    head_ = &node;
    if (tail_ == nullptr) tail_ = &node;
    ++size_;
  }

  void push_back(Node& node) noexcept {
    node.*Next = nullptr;
    node.*Previous = tail_;
    if (tail_ != nullptr) tail_->*Next = &node;
    tail_ = &node;
    if (head_ == nullptr) head_ = &node;
    ++size_;
  }

  // Precondition: !empty().
  Node& pop_front() noexcept {
    Node& node = *head_;
    remove(node);
    return node;
  }

  // Precondition: `node` is in this list.
  void remove(Node& node) noexcept {
    if (node.*Previous != nullptr) {
      node.*Previous->*Next = node.*Next;
    } else {
      head_ = node.*Next;
    }
    if (node.*Next != nullptr) {
      node.*Next->*Previous = node.*Previous;
    } else {
      tail_ = node.*Previous;
    }
    node.*Previous = node.*Next = nullptr;
    --size_;
  }

  // Calls `visit(Node&)` for each element; `visit` must not insert or remove.
  template <typename Visitor>
  void for_each(Visitor&& visit) const {
    for (Node* node = head_; node != nullptr; node = node->*Next) visit(*node);
  }

 private:
  Node* head_ = nullptr;
  Node* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_INTERNAL_INTRUSIVE_LIST_H_
