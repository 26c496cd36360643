// ready_queue.h: the FIFO of coroutines a worker will resume next.
//
// A power-of-two ring buffer of coroutine handles. It grows by doubling and never shrinks, so after
// warm-up pushing and popping allocate nothing. Single-threaded: only the owning worker touches it.
#ifndef SURGE_RUNTIME_INTERNAL_READY_QUEUE_H_
#define SURGE_RUNTIME_INTERNAL_READY_QUEUE_H_

#include <coroutine>
#include <cstddef>
#include <vector>

namespace surge::internal {

class ReadyQueue {
 public:
  ReadyQueue() : slots_(64) {}

  bool empty() const noexcept { return head_ == tail_; }
  std::size_t size() const noexcept { return tail_ - head_; }

  void push(std::coroutine_handle<> handle) {
    if (size() == slots_.size()) grow();
    slots_[tail_++ & (slots_.size() - 1)] = handle;
  }

  // Precondition: !empty().
  std::coroutine_handle<> pop() noexcept { return slots_[head_++ & (slots_.size() - 1)]; }

  void clear() noexcept { head_ = tail_ = 0; }

 private:
  void grow() {
    std::vector<std::coroutine_handle<>> bigger(slots_.size() * 2);
    const std::size_t count = size();
    for (std::size_t i = 0; i < count; ++i) bigger[i] = slots_[(head_ + i) & (slots_.size() - 1)];
    slots_.swap(bigger);
    head_ = 0;
    tail_ = count;
  }

  std::vector<std::coroutine_handle<>> slots_;
  std::size_t head_ = 0;  // monotonically increasing; masked on access
  std::size_t tail_ = 0;
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_INTERNAL_READY_QUEUE_H_
