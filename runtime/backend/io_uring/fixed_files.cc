// Registered (fixed) files for the io_uring backend: the fd of a runtime-owned socket (Operation::owned_fd)
// is put in the ring's sparse file table the first time an operation uses it (one io_uring_register
// call), and its SQEs then carry the table slot with IOSQE_FIXED_FILE, so the kernel skips the fd-table
// lookup and the file reference count on every operation. forget_fd() (the socket is about to close the
// fd) takes it out again. Only owned fds: the table holds a reference to the file, so an fd closed
// without forget_fd would leave a stale slot that the next file with that number would be mistaken for.
// When the table is full the fd is used as a plain fd: slower, never wrong (counted in fixed_table_full).
#include <cerrno>

#include "runtime/backend/io_uring/io_uring_backend.h"
#include "runtime/backend/io_uring/ring_internal.h"

namespace surge {

void IoUringBackend::set_up_fixed_files(unsigned slots) noexcept {
  if (slots == 0 || !features_.sparse_fixed_files) return;
  if (io_uring_register_files_sparse(&ring_, slots) != 0) return;  // e.g. RLIMIT_NOFILE below `slots`
  free_fixed_slots_.reserve(slots);
  for (unsigned slot = slots; slot > 0; --slot) free_fixed_slots_.push_back(static_cast<int>(slot - 1));
  use_fixed_files_ = true;
  features_.uses_fixed_files = true;
}

int IoUringBackend::fixed_slot_for(int fd) noexcept {
  if (!use_fixed_files_ || fd < 0) return -1;
  const auto index = static_cast<std::size_t>(fd);
  if (index < fixed_slot_of_fd_.size() && fixed_slot_of_fd_[index] >= 0) return fixed_slot_of_fd_[index];
  if (free_fixed_slots_.empty()) {
    ++counters_.fixed_table_full;
    return -1;
  }
  const int slot = free_fixed_slots_.back();
  ++counters_.io_syscalls;
  if (io_uring_register_files_update(&ring_, static_cast<unsigned>(slot), &fd, 1) != 1) return -1;
  free_fixed_slots_.pop_back();
  if (index >= fixed_slot_of_fd_.size()) fixed_slot_of_fd_.resize(index * 2 + 16, -1);
  fixed_slot_of_fd_[index] = slot;
  return slot;
}

void IoUringBackend::use_fixed_file(io_uring_sqe* sqe, const Operation& operation) noexcept {
  if (!operation.owned_fd) return;
  const int slot = fixed_slot_for(operation.fd);
  if (slot < 0) return;
  sqe->fd = slot;
  sqe->flags |= IOSQE_FIXED_FILE;
}

void IoUringBackend::forget_fixed_file(int fd) noexcept {
  const auto index = static_cast<std::size_t>(fd);
  if (fd < 0 || index >= fixed_slot_of_fd_.size() || fixed_slot_of_fd_[index] < 0) return;
  const int slot = fixed_slot_of_fd_[index];
  fixed_slot_of_fd_[index] = -1;
  // Requests already in the kernel hold their own reference to the file, so the slot is free at once.
  // SQEs still in the SQ would look the slot up only when the kernel takes them: forget_fd() has handed
  // any that name it to the kernel before calling this.
  int removed = -1;
  ++counters_.io_syscalls;
  io_uring_register_files_update(&ring_, static_cast<unsigned>(slot), &removed, 1);
  free_fixed_slots_.push_back(slot);
}

}  // namespace surge
