// lent_buffers.h: the fixed set of buffers a backend lends for borrowed receives (OpCode::kRecvBorrowed):
// `count` buffers of `size` bytes in one allocation, named by index, so that what is ever lent is
// bounded by count × size. A free list hands them out where the backend itself picks the buffer (epoll,
// io_uring without buffer rings); io_uring's provided-buffer ring uses the memory and the index <->
// address mapping only, since the kernel picks.
//
//   LentBuffers buffers(256, 16 * 1024);
//   if (auto id = buffers.take()) { recv(fd, buffers.data(*id), buffers.size(), 0); ... buffers.give_back(*id); }
#ifndef SURGE_RUNTIME_BACKEND_INTERNAL_LENT_BUFFERS_H_
#define SURGE_RUNTIME_BACKEND_INTERNAL_LENT_BUFFERS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace surge::internal {

class LentBuffers {
 public:
  LentBuffers(unsigned count, unsigned size)
      : count_(count > 0 ? count : 1),
        size_(size > 0 ? size : 1),
        memory_(std::make_unique_for_overwrite<std::byte[]>(std::size_t{count_} * size_)) {
    free_.reserve(count_);
    for (unsigned id = count_; id > 0; --id) free_.push_back(id - 1);  // hands out 0, 1, 2... first
  }

  unsigned count() const noexcept { return count_; }
  unsigned size() const noexcept { return size_; }
  std::byte* data(std::uint32_t id) noexcept { return memory_.get() + std::size_t{id} * size_; }

  // Free-list use: a free buffer's id, or nullopt when all are lent.
  std::optional<std::uint32_t> take() noexcept {
    if (free_.empty()) return std::nullopt;
    const std::uint32_t id = free_.back();
    free_.pop_back();
    return id;
  }
  void give_back(std::uint32_t id) noexcept { free_.push_back(id); }  // capacity reserved: never allocates
  std::size_t free_count() const noexcept { return free_.size(); }

 private:
  unsigned count_;
  unsigned size_;
  std::unique_ptr<std::byte[]> memory_;
  std::vector<std::uint32_t> free_;
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_BACKEND_INTERNAL_LENT_BUFFERS_H_
