#include "runtime/backend/internal/file_offload.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "runtime/backend/internal/syscall_limits.h"

namespace surge::internal {

namespace {

int result_of(long syscall_return) { return syscall_return >= 0 ? static_cast<int>(syscall_return) : -errno; }

int perform_once(Operation& operation) noexcept {
  const auto offset = static_cast<off_t>(operation.offset);
  const auto* operands = static_cast<const PathOperands*>(operation.buffer);
  switch (operation.opcode) {
    case OpCode::kReadAt:
      return result_of(pread(operation.fd, operation.buffer, clamp_io_length(operation.length), offset));
    case OpCode::kWriteAt:
      return result_of(pwrite(operation.fd, operation.buffer, clamp_io_length(operation.length), offset));
    case OpCode::kReadvAt:
      return result_of(preadv(operation.fd, static_cast<const iovec*>(operation.buffer),
                              static_cast<int>(operation.length), offset));
    case OpCode::kWritevAt:
      return result_of(pwritev(operation.fd, static_cast<const iovec*>(operation.buffer),
                               static_cast<int>(operation.length), offset));
    case OpCode::kFsync:
      return result_of((operation.message_flags & kFsyncDataOnly) != 0 ? fdatasync(operation.fd) : fsync(operation.fd));
    case OpCode::kFallocate:
      return result_of(fallocate(operation.fd, operation.message_flags, offset, static_cast<off_t>(operation.length)));
    case OpCode::kOpenAt:
      return result_of(openat(operation.fd, operands->path, operands->flags | O_CLOEXEC, operands->mode));
    case OpCode::kStatx:
      return result_of(statx(operation.fd, operands->path, operands->flags, operands->mode, operands->statx_out));
    case OpCode::kRenameAt:
      return result_of(renameat2(operation.fd, operands->path, operands->new_dir_fd, operands->new_path,
                                 static_cast<unsigned>(operands->flags)));
    case OpCode::kUnlinkAt:
      return result_of(unlinkat(operation.fd, operands->path, operands->flags));
    case OpCode::kMkdirAt:
      return result_of(mkdirat(operation.fd, operands->path, operands->mode));
    default:
      return -EINVAL;  // not a file operation
  }
}

}  // namespace

int FileOffload::perform(Operation& operation) noexcept {
  for (;;) {
    const int result = perform_once(operation);
    if (result != -EINTR) return result;
  }
}

void FileOffload::submit(Operation& operation) noexcept {
  Lane* start = nullptr;
  {
    std::lock_guard lock(mutex_);
    waiting_.push_back(operation);
    // One more lane while there is more waiting than running, up to kMaxLanes (and the pool's threads).
    const std::size_t threads = pool().threads();
    const unsigned limit = threads < kMaxLanes ? static_cast<unsigned>(threads) : kMaxLanes;
    if (running_lanes_ < (limit > 0 ? limit : 1)) {
      for (unsigned i = 0; i < kMaxLanes; ++i) {
        if (lane_busy_[i]) continue;
        lane_busy_[i] = true;
        ++running_lanes_;
        start = &lanes_[i];
        break;
      }
    }
  }
  if (start == nullptr) return;  // a running lane takes it
  start->offload = this;
  start->run = &run_lane;
  pool().submit(*start);
}

void FileOffload::run_lane(BlockingJob& job) noexcept {
  Lane& lane = static_cast<Lane&>(job);
  FileOffload& self = *lane.offload;
  std::unique_lock lock(self.mutex_);
  for (int performed = 0;; ++performed) {
    if (performed == kOperationsPerTurn && !self.waiting_.empty()) {
      // Back to the end of the pool's queue, staying busy: spawn_blocking() jobs and other workers'
      // lanes get their turn even while this backend has file operations without end.
      lock.unlock();
      self.pool().submit(lane);
      return;
    }
    Operation* operation = self.waiting_.pop_front();
    if (operation == nullptr) break;
    lock.unlock();
    operation->result = perform(*operation);
    lock.lock();
    const bool was_empty = self.finished_.empty();
    self.finished_.push_back(*operation);
    self.has_finished_.store(true, std::memory_order_release);
    // Woken under the lock, so that wait_idle() cannot return (and the backend close its wake-up fd)
    // between the push and the wake. One wake per batch: the owner takes everything finished at once.
    if (was_empty) self.owner_.wake();
  }
  self.lane_busy_[static_cast<std::size_t>(&lane - self.lanes_.data())] = false;
  if (--self.running_lanes_ == 0) self.idle_.notify_all();
}

bool FileOffload::cancel(Operation& operation) noexcept {
  std::lock_guard lock(mutex_);
  return waiting_.remove(operation);
}

void FileOffload::cancel_fd(int fd, OperationQueue& taken) noexcept {
  std::lock_guard lock(mutex_);
  OperationQueue keep;
  while (Operation* operation = waiting_.pop_front()) {
    // Path operations name a directory fd, not the file: only operations on `fd` itself are taken.
    if (operation->fd == fd && operation->opcode < OpCode::kOpenAt) {
      taken.push_back(*operation);
    } else {
      keep.push_back(*operation);
    }
  }
  waiting_ = keep.take_all();
}

void FileOffload::cancel_all(OperationQueue& taken) noexcept {
  std::lock_guard lock(mutex_);
  while (Operation* operation = waiting_.pop_front()) taken.push_back(*operation);
}

void FileOffload::take_finished(OperationQueue& out) noexcept {
  if (!has_finished()) return;
  OperationQueue finished;
  {
    std::lock_guard lock(mutex_);
    finished = finished_.take_all();
    has_finished_.store(false, std::memory_order_relaxed);
  }
  while (Operation* operation = finished.pop_front()) out.push_back(*operation);
}

void FileOffload::wait_idle() noexcept {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return running_lanes_ == 0; });
}

}  // namespace surge::internal
