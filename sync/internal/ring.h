// ring.h (internal): Ring<T>, the FIFO a channel keeps its messages in.
//
// A power-of-two ring of raw slots that grows by doubling (up to what the channel allows) and never
// shrinks: after warm-up, push and pop allocate nothing. Not thread-safe: the channel's lock guards it.
#ifndef SURGE_SYNC_INTERNAL_RING_H_
#define SURGE_SYNC_INTERNAL_RING_H_

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace surge::internal {

template <typename T>
class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() { clear(); ::operator delete(slots_, std::align_val_t(alignof(T))); }

  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }

  void push_back(T&& value) {
    if (size_ == capacity_) grow();
    ::new (slot(head_ + size_)) T(std::move(value));
    ++size_;
  }
  // Puts a message back in front (one taken by a receiver that died before it could use it).
  void push_front(T&& value) {
    if (size_ == capacity_) grow();
    head_ = (head_ + capacity_ - 1) & (capacity_ - 1);
    ::new (slot(head_)) T(std::move(value));
    ++size_;
  }
  // Precondition: !empty().
  T pop_front() noexcept(std::is_nothrow_move_constructible_v<T>) {
    T* front = slot(head_);
    T value(std::move(*front));
    front->~T();
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
    return value;
  }
  // Moves every message into `out` (for destroying them outside a lock).
  void move_all_to(Ring& out) {
    while (!empty()) out.push_back(pop_front());
  }
  void clear() noexcept {
    while (size_ > 0) {
      slot(head_)->~T();
      head_ = (head_ + 1) & (capacity_ - 1);
      --size_;
    }
  }

 private:
  T* slot(std::size_t index) noexcept { return slots_ + (index & (capacity_ - 1)); }

  void grow() {
    const std::size_t capacity = capacity_ == 0 ? 16 : capacity_ * 2;
    T* slots = static_cast<T*>(::operator new(capacity * sizeof(T), std::align_val_t(alignof(T))));
    for (std::size_t i = 0; i < size_; ++i) {
      T* from = slot(head_ + i);
      ::new (slots + i) T(std::move(*from));
      from->~T();
    }
    ::operator delete(slots_, std::align_val_t(alignof(T)));
    slots_ = slots;
    capacity_ = capacity;
    head_ = 0;
  }

  T* slots_ = nullptr;
  std::size_t capacity_ = 0;  // a power of two, or 0
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace surge::internal

#endif  // SURGE_SYNC_INTERNAL_RING_H_
