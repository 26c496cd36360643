#include "runtime/backend/io_uring/lent_buffer_ring.h"

#include <sys/mman.h>

namespace surge::internal {

LentBufferRing::LentBufferRing(io_uring& ring, unsigned count, unsigned size, bool try_ring) noexcept
    : ring_(ring), buffers_(power_of_two_at_most(count > 0 ? count : 1), size) {
  if (!try_ring) return;
  const unsigned entries = buffers_.count();
  const std::size_t bytes = std::size_t{entries} * sizeof(io_uring_buf);
  void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (memory == MAP_FAILED) return;
  auto* buf_ring = static_cast<io_uring_buf_ring*>(memory);
  io_uring_buf_ring_init(buf_ring);
  io_uring_buf_reg registration{};
  registration.ring_addr = reinterpret_cast<std::uintptr_t>(buf_ring);
  registration.ring_entries = entries;
  registration.bgid = kGroup;
  if (io_uring_register_buf_ring(&ring_, &registration, 0) != 0) {
    munmap(memory, bytes);  // refused (old kernel, or a group in use): the pool still works
    return;
  }
  buf_ring_ = buf_ring;
  ring_bytes_ = bytes;
  mask_ = static_cast<unsigned>(io_uring_buf_ring_mask(entries));
  for (unsigned id = 0; id < entries; ++id) {
    io_uring_buf_ring_add(buf_ring_, buffers_.data(id), buffers_.size(), static_cast<unsigned short>(id), mask_,
                          static_cast<int>(id));
  }
  io_uring_buf_ring_advance(buf_ring_, static_cast<int>(entries));
  free_in_ring_ = entries;
}

LentBufferRing::~LentBufferRing() {
  if (buf_ring_ == nullptr) return;
  io_uring_unregister_buf_ring(&ring_, kGroup);
  munmap(buf_ring_, ring_bytes_);
}

void LentBufferRing::publish(std::uint32_t id) noexcept {
  io_uring_buf_ring_add(buf_ring_, buffers_.data(id), buffers_.size(), static_cast<unsigned short>(id), mask_, 0);
  io_uring_buf_ring_advance(buf_ring_, 1);
  ++free_in_ring_;
}

}  // namespace surge::internal
