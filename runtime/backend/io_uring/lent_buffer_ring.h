// lent_buffer_ring.h (internal): the buffers the io_uring backend lends for borrowed receives, as a
// provided-buffer ring (group 0) that multishot recv requests pick from, or, where the kernel has no
// buffer rings or the registration is refused, as a plain pool the backend hands out itself.
//
//   LentBufferRing lent(ring, 256, 16 * 1024, /*try_ring=*/kernel_has_buffer_rings);
//   if (lent.is_ring()) { ... IOSQE_BUFFER_SELECT with group LentBufferRing::kGroup ...
//                         lent.taken_by_kernel(); ... lent.publish(id); }   // id back into the ring
//   else if (auto id = lent.buffers().take()) { ... lent.buffers().give_back(*id); }
//
// Threads: the backend's owner thread. is_ring() is the one source of truth for whether borrowed
// receives use a buffer ring (BackendFeatures::uses_buffer_ring is read from it once set up).
#ifndef SURGE_RUNTIME_BACKEND_IO_URING_LENT_BUFFER_RING_H_
#define SURGE_RUNTIME_BACKEND_IO_URING_LENT_BUFFER_RING_H_

#include <liburing.h>

#include <cstddef>
#include <cstdint>

#include "runtime/backend/internal/lent_buffers.h"

namespace surge::internal {

class LentBufferRing {
 public:
  static constexpr unsigned short kGroup = 0;  // the buffer group multishot recv SQEs select from

  // `count` buffers (rounded down to a power of two, as a ring needs) of `size` bytes. With `try_ring`,
  // registers them with `ring` as a provided-buffer ring, all published; else, or if that fails, a pool.
  LentBufferRing(io_uring& ring, unsigned count, unsigned size, bool try_ring) noexcept;
  // Unregisters the ring. Before the io_uring itself is torn down.
  ~LentBufferRing();
  LentBufferRing(const LentBufferRing&) = delete;
  LentBufferRing& operator=(const LentBufferRing&) = delete;

  bool is_ring() const noexcept { return buf_ring_ != nullptr; }
  LentBuffers& buffers() noexcept { return buffers_; }
  unsigned count() const noexcept { return buffers_.count(); }

  // Ring mode: buffers published in the ring, i.e. neither lent nor queued in a stream.
  std::size_t free_in_ring() const noexcept { return free_in_ring_; }
  // Ring mode: a completion carried a buffer (IORING_CQE_F_BUFFER): the kernel took it from the ring.
  void taken_by_kernel() noexcept { --free_in_ring_; }
  // Ring mode: publishes buffer `id` in the ring again.
  void publish(std::uint32_t id) noexcept;

 private:
  static unsigned power_of_two_at_most(unsigned count) noexcept {
    while ((count & (count - 1)) != 0) count &= count - 1;
    return count;
  }

  io_uring& ring_;
  LentBuffers buffers_;
  io_uring_buf_ring* buf_ring_ = nullptr;  // null: a pool
  std::size_t ring_bytes_ = 0;
  unsigned mask_ = 0;
  std::size_t free_in_ring_ = 0;
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_BACKEND_IO_URING_LENT_BUFFER_RING_H_
