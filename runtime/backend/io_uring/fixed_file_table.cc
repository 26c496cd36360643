#include "runtime/backend/io_uring/fixed_file_table.h"

namespace surge::internal {

void FixedFileTable::set_up(io_uring& ring, unsigned slots, bool kernel_has_sparse_tables) noexcept {
  if (slots == 0 || !kernel_has_sparse_tables) return;
  if (io_uring_register_files_sparse(&ring, slots) != 0) return;
  free_slots_.reserve(slots);
  for (unsigned slot = slots; slot > 0; --slot) free_slots_.push_back(static_cast<int>(slot - 1));
  ring_ = &ring;
}

int FixedFileTable::slot_for(int fd, BackendCounterCells& counters) noexcept {
  if (!enabled() || fd < 0) return -1;
  if (const int slot = slot_of(fd); slot >= 0) return slot;
  if (free_slots_.empty()) {
    ++counters.fixed_table_full;
    return -1;
  }
  const int slot = free_slots_.back();
  ++counters.io_syscalls;
  if (io_uring_register_files_update(ring_, static_cast<unsigned>(slot), &fd, 1) != 1) return -1;
  free_slots_.pop_back();
  const auto index = static_cast<std::size_t>(fd);
  if (index >= slot_of_fd_.size()) slot_of_fd_.resize(index * 2 + 16, -1);
  slot_of_fd_[index] = slot;
  return slot;
}

void FixedFileTable::use_for(io_uring_sqe* sqe, const Operation& operation, BackendCounterCells& counters) noexcept {
  if (!operation.owned_fd) return;
  const int slot = slot_for(operation.fd, counters);
  if (slot < 0) return;
  sqe->fd = slot;
  sqe->flags |= IOSQE_FIXED_FILE;
}

void FixedFileTable::forget(int fd, BackendCounterCells& counters) noexcept {
  const int slot = slot_of(fd);
  if (slot < 0) return;
  slot_of_fd_[static_cast<std::size_t>(fd)] = -1;
  // Requests already in the kernel hold their own reference to the file, so the slot is free at once.
  // SQEs still in the SQ would look the slot up only when the kernel takes them: the backend's
  // forget_fd() has handed any that name it to the kernel before calling this.
  int removed = -1;
  ++counters.io_syscalls;
  io_uring_register_files_update(ring_, static_cast<unsigned>(slot), &removed, 1);
  free_slots_.push_back(slot);
}

}  // namespace surge::internal
