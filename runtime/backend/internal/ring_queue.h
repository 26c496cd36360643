// ring_queue.h: a FIFO over a growable circular array. Unlike std::deque, which allocates a new block
// every few dozen elements as a queue cycles, it allocates only when it grows past its largest size so
// far: the backends' per-stream queues sit on the I/O hot path, which must not allocate.
//
//   RingQueue<Operation*> waiters;
//   waiters.push_back(&op);
//   Operation* first = waiters.front();
//   waiters.pop_front();
#ifndef SURGE_RUNTIME_BACKEND_INTERNAL_RING_QUEUE_H_
#define SURGE_RUNTIME_BACKEND_INTERNAL_RING_QUEUE_H_

#include <cstddef>
#include <utility>
#include <vector>

namespace surge::internal {

template <typename T>
class RingQueue {
 public:
  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }

  void push_back(T value) {
    if (size_ == slots_.size()) grow();
    slots_[(head_ + size_) & (slots_.size() - 1)] = std::move(value);
    ++size_;
  }
  T& front() noexcept { return slots_[head_]; }
  void pop_front() noexcept {
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
  }
  void clear() noexcept {
    head_ = 0;
    size_ = 0;
  }

  // Visits the elements, oldest first.
  template <typename Visit>
  void for_each(Visit&& visit) {
    for (std::size_t i = 0; i < size_; ++i) visit(slots_[(head_ + i) & (slots_.size() - 1)]);
  }

  // Removes every element equal to `value`, keeping the others' order.
  void erase(const T& value) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < size_; ++i) {
      T& each = slots_[(head_ + i) & (slots_.size() - 1)];
      if (each == value) continue;
      slots_[(head_ + kept) & (slots_.size() - 1)] = std::move(each);
      ++kept;
    }
    size_ = kept;
  }

 private:
  void grow() {
    std::vector<T> larger(slots_.empty() ? 16 : slots_.size() * 2);  // always a power of two
    for (std::size_t i = 0; i < size_; ++i) larger[i] = std::move(slots_[(head_ + i) & (slots_.size() - 1)]);
    slots_.swap(larger);
    head_ = 0;
  }

  std::vector<T> slots_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_BACKEND_INTERNAL_RING_QUEUE_H_
