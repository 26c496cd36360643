// fixed_file_table.h (internal): the io_uring backend's registered (fixed) files.
//
// The fd of a runtime-owned socket (Operation::owned_fd) is put in the ring's sparse file table the first
// time an operation uses it (one io_uring_register call), and its SQEs then carry the table slot with
// IOSQE_FIXED_FILE, so the kernel skips the fd-table lookup and the file reference count on every
// operation. forget() (the socket is about to close the fd) takes it out again. Only owned fds: the table
// holds a reference to the file, so an fd closed without forget() would leave a stale slot that the next
// file with that number would be mistaken for. When the table is full the fd is used as a plain fd:
// slower, never wrong (counted in fixed_table_full).
//
//   FixedFileTable table;
//   table.set_up(ring, 1024, /*kernel_has_sparse_tables=*/true);   // enabled() says whether it took
//   table.use_for(sqe, operation, counters);                        // slot + IOSQE_FIXED_FILE, or nothing
//   table.forget(fd, counters);                                     // before the fd is closed
//
// Threads: the backend's owner thread. enabled() is the one source of truth for whether the backend uses
// fixed files (BackendFeatures::uses_fixed_files is read from it).
#ifndef SURGE_RUNTIME_BACKEND_IO_URING_FIXED_FILE_TABLE_H_
#define SURGE_RUNTIME_BACKEND_IO_URING_FIXED_FILE_TABLE_H_

#include <liburing.h>

#include <vector>

#include "runtime/backend/counters.h"
#include "runtime/backend/operation.h"

namespace surge::internal {

class FixedFileTable {
 public:
  // Registers a sparse table of `slots` with `ring`. Stays off if `slots` is 0, the kernel has no sparse
  // tables, or the registration fails (e.g. RLIMIT_NOFILE below `slots`).
  void set_up(io_uring& ring, unsigned slots, bool kernel_has_sparse_tables) noexcept;
  bool enabled() const noexcept { return ring_ != nullptr; }

  // Points `sqe` at the operation's fd through its table slot, registering the fd first, if the fd is
  // owned and the table has room; else leaves the SQE naming the plain fd.
  void use_for(io_uring_sqe* sqe, const Operation& operation, BackendCounterCells& counters) noexcept;
  // The slot `fd` is registered in, or -1 (no registration happens here).
  int slot_of(int fd) const noexcept {
    const auto index = static_cast<std::size_t>(fd);
    return fd >= 0 && index < slot_of_fd_.size() ? slot_of_fd_[index] : -1;
  }
  // Takes `fd` out of the table, if it is there. Call before the fd is closed, after every SQE in the
  // SQ that names its slot has been handed to the kernel (requests already there hold their own reference).
  void forget(int fd, BackendCounterCells& counters) noexcept;

 private:
  int slot_for(int fd, BackendCounterCells& counters) noexcept;  // registering it first; -1: plain fd

  io_uring* ring_ = nullptr;       // set once the table is registered
  std::vector<int> slot_of_fd_;    // by fd: its slot, or -1
  std::vector<int> free_slots_;
};

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_BACKEND_IO_URING_FIXED_FILE_TABLE_H_
