// file.h: files and directories on a surge worker: File (open, positional reads and writes, sync,
// fallocate, statx, close) and the path operations (rename, remove_file, remove_dir, create_dir,
// read_file, write_file).
//
//   auto file = co_await surge::fs::File::open("/var/log/app.log");
//   if (!file) co_return file.error();                     // "openat /var/log/app.log: No such file or directory"
//   std::array<std::byte, 4096> block;
//   auto n = co_await file->read_at(block, 8192);           // Result<size_t>; 0 at end of file
//   auto text = co_await surge::fs::read_file("/proc/self/status");   // Result<std::string>
//
// Backends. On io_uring every operation is an io_uring opcode (IORING_OP_READ, _OPENAT, ...) where the
// kernel has it; on epoll, and on io_uring with BackendOptions::allow_file_opcodes = false, it runs on
// the worker's blocking pool (regular files never report readiness). Same results and errors either way.
//
// Page-cache fast path. A buffered (not O_DIRECT) read_at / read_exact_at first tries
// preadv2(RWF_NOWAIT) on the worker's own thread, before anything is submitted: data in the page cache
// is copied at once and the read completes without suspending (no ring round trip, no pool hand-off);
// RWF_NOWAIT never waits for the disk, so the worker never stalls. A miss (EAGAIN) goes to the ring or
// the pool as usual. A read that finds only its first part cached keeps those bytes and sends the rest
// through the ring / pool; either way read_at returns fewer bytes than asked only at end of file (or
// when an error or cancellation stopped the second part: then the bytes already read are returned; or
// past 2 GiB - 4 KiB, the most Linux moves in one call).
// The vector form takes an inline result only if it is whole (or at end of file); otherwise it reads
// everything again through the ring (a positional read has no side effect to undo).
// Adaptive: after 8 misses in a row a File sends the next 16 reads straight to the ring, then probes
// again, doubling that count (up to 1024) while probes keep missing; a hit resets it. So a file that is
// not cached pays a failed syscall on 10 of its first 100 reads and on 1 in 1025 in the long run. A task whose reads keep hitting
// would never suspend: every 4th inline completion in a row for the same task on a File yields to the
// worker's other tasks (often enough that, with 32 tasks reading one cached file, a read waits at most ~4
// reads of each other task: p99 0.1 ms rather than the 2 ms it was with every 64th). Reads by different
// tasks in turn do not add up: many tasks that each read once and then wait for something else (an HTTP
// server's connections sharing one cached file) never yield. Never used for O_DIRECT (a direct read would block the worker) nor where the filesystem does
// not support RWF_NOWAIT (EOPNOTSUPP turns it off for that File). OpenOptions::cached_read_fast_path
// turns it off.
//
// Ownership and threads: a File belongs to the worker that opened it; use it and await its operations
// only there, and do not let it outlive that worker. Destroying a File closes its fd (forgetting it in
// the backend first); close() does it through the backend and reports close(2)'s error. Buffers are
// borrowed until the returned awaitable completes, also after cancellation. Awaitables are awaited right
// away and never copied. Several operations may be in flight on one File at once (they are positional).
//
// Cancellation and deadlines (JoinHandle::cancel(), surge::timeout(), a losing when_any branch): a file
// operation cannot be interrupted once the kernel (or a pool thread) runs it. One that has not started
// (still queued for the blocking pool, or refused because the cancellation came first) completes with
// ECANCELED (ETIMEDOUT for a deadline) and did nothing. One already running completes with its real
// result: a read_at cancelled in the kernel returns the bytes it read, an open returns the File (which
// is closed if nobody takes it), a write that happened is reported. On io_uring a request still queued
// in io-wq may be cancelled (ECANCELED) or not; the result says which. read_exact_at / write_all_at stop
// between chunks and say how far they got (TransferResult::transferred()). A read served inline from the
// page cache checks the task's cancellation and deadline first: a cancelled task's read never starts.
//
// Blocking file operations. A file operation that never returns (opening a FIFO nobody opens from the
// other end, a hung NFS mount) cannot be interrupted where it runs on the blocking pool (epoll, or io_uring
// without the opcode): its deadline or cancellation takes effect only when it returns, a worker's shutdown
// waits for it, and while four such operations hold a worker's pool lanes (FileOffload::kMaxLanes) its
// other file operations wait too. On io_uring with the opcodes, openat first tries a non-blocking open,
// so a FIFO opens at once without waiting for the other end (open(2) and the epoll backend wait).
// Offsets above INT64_MAX are refused with EINVAL (as pread(2) does; io_uring would read offset -1 as
// "the file position").
//
// Errors: Error values with the errno and the operation, plus the path for path operations
// ("openat /x/y: No such file or directory", "renameat /a -> /b: ...", "mkdirat /d: File exists"). A
// misaligned O_DIRECT transfer fails with EINVAL and says so ("pread (O_DIRECT: buffer address, offset and
// length must be multiples of the file's direct-I/O alignment, see FileInfo::direct_io_alignment)").
// surge::Error holds a static text, so the "operation path" texts are interned for the life of the
// process under a 1 MiB budget (deduplicated); once a process has failed on that many distinct paths,
// errors name only the operation (the errno is always there).
#ifndef SURGE_FS_FILE_H_
#define SURGE_FS_FILE_H_

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cassert>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "fs/internal/path.h"
#include "net/buffer.h"
#include "runtime/backend/operation.h"
#include "runtime/internal/cancel_slot.h"
#include "runtime/internal/io_awaitable.h"
#include "runtime/result.h"
#include "runtime/task.h"
#include "runtime/worker.h"

namespace surge::fs {

// How File::open opens: the open(2) flags, spelled out. O_CLOEXEC is always added and O_NONBLOCK never
// (io_uring answers EAGAIN for regular files opened non-blocking).
struct OpenOptions {
  bool read = true;
  bool write = false;
  bool append = false;      // O_APPEND (positional writes still write at the end, as pwrite(2) does)
  bool truncate = false;    // O_TRUNC
  bool create = false;      // O_CREAT
  bool create_new = false;  // O_CREAT | O_EXCL: EEXIST if the path exists
  bool direct = false;      // O_DIRECT: aligned buffers, offsets and lengths (AlignedBuffer)
  unsigned mode = 0644;     // permission bits for a created file (before the umask)
  int custom_flags = 0;     // more open(2) flags (O_NOATIME, O_DSYNC, O_DIRECTORY, ...)
  // The page-cache fast path (top of this file); off for O_DIRECT regardless.
  bool cached_read_fast_path = true;

  int flags() const noexcept;
};

// What statx(2) says about a file, the common part.
struct FileInfo {
  std::uint64_t size = 0;
  mode_t mode = 0;  // type and permission bits (S_ISREG(mode), ...)
  std::uint32_t block_size = 0;
  std::chrono::system_clock::time_point modified;
  // STATX_DIOALIGN (kernel 6.1+, filesystems that report it): the alignment O_DIRECT needs of buffer
  // addresses and of offsets and lengths; 0 where not offered.
  std::uint32_t direct_io_memory_alignment = 0;
  std::uint32_t direct_io_offset_alignment = 0;

  bool is_regular() const noexcept { return S_ISREG(mode); }
  bool is_directory() const noexcept { return S_ISDIR(mode); }
  // The alignment to use for O_DIRECT buffers, offsets and lengths: the larger of the two STATX_DIOALIGN
  // figures, or 4096 (safe for every common block device) where the kernel does not say.
  std::size_t direct_io_alignment() const noexcept;

  static FileInfo from(const struct statx& raw) noexcept;
};

// The statx mask FileInfo needs.
inline constexpr unsigned kFileInfoMask = STATX_BASIC_STATS
#ifdef STATX_DIOALIGN
                                          | STATX_DIOALIGN
#endif
    ;

// Memory aligned for O_DIRECT, owned; moves, never copies. Its size is a multiple of its alignment.
//
//   auto buffer = surge::fs::AlignedBuffer::allocate(64 * 1024, info->direct_io_alignment());
//   auto n = co_await file->read_at(*buffer, 0);
class AlignedBuffer {
 public:
  // `size` is rounded up to a multiple of `alignment` (a power of two, at least sizeof(void*)); the
  // memory is zeroed. ENOMEM, or EINVAL for a bad alignment.
  static Result<AlignedBuffer> allocate(std::size_t size, std::size_t alignment = 4096);

  AlignedBuffer() noexcept = default;
  std::byte* data() const noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }
  std::size_t alignment() const noexcept { return alignment_; }
  std::span<std::byte> span() const noexcept { return {data_.get(), size_}; }
  operator MutableBuffer() const noexcept { return MutableBuffer(data_.get(), size_); }  // NOLINT
  operator ConstBuffer() const noexcept { return ConstBuffer(data_.get(), size_); }      // NOLINT

 private:
  struct Free {
    void operator()(std::byte* bytes) const noexcept;
  };
  std::unique_ptr<std::byte, Free> data_;
  std::size_t size_ = 0;
  std::size_t alignment_ = 0;
};

// What a File's page-cache fast path did (File::cached_read_stats()), for tests and benchmarks.
struct CachedReadStats {
  std::uint64_t inline_reads = 0;     // completed inline, whole or up to end of file
  std::uint64_t partial_reads = 0;    // first part inline, the rest through the ring/pool
  std::uint64_t misses = 0;           // RWF_NOWAIT found nothing cached: through the ring/pool
  std::uint64_t skipped = 0;          // not tried (the adaptive switch was backing off)
  std::uint64_t yields = 0;           // inline completions that yielded to other tasks (fairness)
};

}  // namespace surge::fs

namespace surge::internal {

// The fast path's per-File state (see the top of this file). Owner worker only.
class CachedReadPolicy {
 public:
  static constexpr std::uint32_t kMissesBeforeSkipping = 8;
  static constexpr std::uint32_t kFirstSkip = 16;
  static constexpr std::uint32_t kMaxSkip = 1024;
  static constexpr std::uint32_t kInlineBeforeYield = 4;

  void set_enabled(bool enabled) noexcept { enabled_ = enabled; }
  bool enabled() const noexcept { return enabled_; }

  // Whether this read should try preadv2(RWF_NOWAIT) first.
  bool should_try() noexcept {
    if (!enabled_) return false;
    if (skip_left_ > 0) {
      --skip_left_;
      ++stats_.skipped;
      return false;
    }
    return true;
  }

  // Tries to read [data, data + size) at `offset` from the page cache. Returns how many bytes it read
  // and sets `finished` when the read is over (whole, or at end of file). On a miss or error it reads
  // what it can and leaves the rest (and the error) to the ring.
  std::size_t try_read(int fd, std::byte* data, std::size_t size, std::uint64_t offset, bool& finished) noexcept;
  // The vector form: the whole read or nothing (-1); end of file counts as whole.
  std::ptrdiff_t try_readv(int fd, const iovec* vectors, int count, std::uint64_t offset) noexcept;

  // After an inline completion for the task whose coroutine frame is `reader`: whether to yield (one in
  // kInlineBeforeYield in a row by the same task).
  bool yield_now(const void* reader) noexcept {
    if (reader != streak_reader_) {
      streak_reader_ = reader;
      inline_streak_ = 1;
      return false;
    }
    if (++inline_streak_ < kInlineBeforeYield) return false;
    inline_streak_ = 0;
    ++stats_.yields;
    return true;
  }

  const fs::CachedReadStats& stats() const noexcept { return stats_; }

 private:
  void hit() noexcept;
  void miss() noexcept;

  bool enabled_ = false;
  std::uint32_t miss_streak_ = 0;
  std::uint32_t skip_left_ = 0;
  std::uint32_t next_skip_ = kFirstSkip;
  std::uint32_t inline_streak_ = 0;
  const void* streak_reader_ = nullptr;  // the task whose inline completions inline_streak_ counts
  fs::CachedReadStats stats_;
};

// The Error for a failed file operation: error_for()'s, except that EINVAL on an O_DIRECT file says
// what O_DIRECT needs.
Error file_error(Error error, bool direct) noexcept;

}  // namespace surge::internal

namespace surge::fs {

class File {
 public:
  class OpenAwaitable;
  class ReadAtAwaitable;
  class ReadvAtAwaitable;
  class WriteAtAwaitable;
  class ReadExactAtAwaitable;
  class WriteAllAtAwaitable;
  class SyncAwaitable;
  class FallocateAwaitable;
  class StatxAwaitable;
  class CloseAwaitable;

  // Opens `path` (relative paths from the current directory) on the current worker:
  // Result<File>. Call from a task on a surge worker.
  static OpenAwaitable open(std::string_view path, OpenOptions options = {});
  // Opens for writing, creating the file or truncating it (O_WRONLY | O_CREAT | O_TRUNC).
  static OpenAwaitable create(std::string_view path, unsigned mode = 0644);

  File() noexcept = default;
  // Takes ownership of an open fd (opened without O_NONBLOCK).
  File(Worker& worker, int fd, bool direct = false, bool cached_read_fast_path = true) noexcept;
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File() { close_now(); }

  // One pread(2): Result<size_t>, 0 at end of file, fewer bytes than asked only at end of file (see the
  // top of this file for the page-cache fast path).
  ReadAtAwaitable read_at(MutableBuffer buffer, std::uint64_t offset) noexcept;
  // One preadv(2) into the caller's iovecs (the array and what it points at stay borrowed until done).
  ReadvAtAwaitable read_at(std::span<const iovec> buffers, std::uint64_t offset) noexcept;
  // One pwrite(2) / pwritev(2): Result<size_t>, possibly fewer bytes than asked.
  WriteAtAwaitable write_at(ConstBuffer buffer, std::uint64_t offset) noexcept;
  WriteAtAwaitable write_at(std::span<const iovec> buffers, std::uint64_t offset) noexcept;
  // Fills the whole buffer from `offset`, however many reads it takes: TransferResult; ENODATA
  // (is_unexpected_eof) if the file ends first, with transferred() saying how much was read.
  ReadExactAtAwaitable read_exact_at(MutableBuffer buffer, std::uint64_t offset) noexcept;
  // Writes the whole buffer at `offset`, looping over short writes: TransferResult.
  WriteAllAtAwaitable write_all_at(ConstBuffer buffer, std::uint64_t offset) noexcept;
  SyncAwaitable fsync() noexcept;      // Result<void>
  SyncAwaitable fdatasync() noexcept;  // Result<void>
  // fallocate(2): `mode` 0 allocates (and extends the size), FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE
  // | FALLOC_FL_KEEP_SIZE, ... Result<void>; EOPNOTSUPP where the filesystem lacks the mode.
  FallocateAwaitable fallocate(std::uint64_t offset, std::uint64_t length, int mode = 0) noexcept;
  // statx(2) of the open file: Result<struct statx> with at least `mask` (STATX_*) where offered.
  StatxAwaitable statx(unsigned mask = kFileInfoMask) noexcept;
  // The common part of statx(): Result<FileInfo>.
  Task<Result<FileInfo>> stat();
  // Closes through the backend (forgetting the fd first); the File is closed from here on, whatever the
  // result. Result<void> carries close(2)'s error (which the destructor cannot report). Never cancelled:
  // the fd is released either way.
  CloseAwaitable close() noexcept;

  bool is_open() const noexcept { return fd_ >= 0; }
  bool is_direct() const noexcept { return direct_; }
  int native_handle() const noexcept { return fd_; }
  Worker& worker() const noexcept { return *worker_; }
  const CachedReadStats& cached_read_stats() const noexcept { return cached_.stats(); }

 private:
  friend class ReadAtAwaitable;
  friend class ReadvAtAwaitable;
  friend class ReadExactAtAwaitable;

  void close_now() noexcept;

  Worker* worker_ = nullptr;
  int fd_ = -1;
  bool direct_ = false;
  internal::CachedReadPolicy cached_;
};

// Renames `from` to `to` (renameat2), replacing `to` if it exists (flags 0) unless `flags` has
// RENAME_NOREPLACE. Result<void>.
class PathAwaitable;
PathAwaitable rename(std::string_view from, std::string_view to, unsigned flags = 0);
// unlink(2): Result<void>; EISDIR for a directory.
PathAwaitable remove_file(std::string_view path);
// rmdir(2): Result<void>; ENOTEMPTY unless empty.
PathAwaitable remove_dir(std::string_view path);
// mkdir(2): Result<void>; EEXIST if the path exists.
PathAwaitable create_dir(std::string_view path, unsigned mode = 0755);
// The three below are coroutines (lazy Tasks): they take the path by value, so that it lives in their
// frame from the call on (a view could dangle before the task is first awaited).
// statx(2) of a path, following symlinks: Result<FileInfo>.
Task<Result<FileInfo>> stat(std::string path);
// The whole file as bytes: statx for its size, then reads until end of file, so a file that grows or
// shrinks meanwhile is read as it is, and files that report size 0 (procfs, sysfs) are read in full.
// More than `max_size` bytes (an endless file: /dev/zero, a FIFO, a log growing as it is read) is EFBIG,
// after at most max_size + 1 bytes of memory; `max_size` must be below SIZE_MAX.
inline constexpr std::size_t kDefaultReadFileLimit = std::size_t{256} << 20;  // 256 MiB
Task<Result<std::string>> read_file(std::string path, std::size_t max_size = kDefaultReadFileLimit);
// Creates or truncates `path` and writes `bytes` (all of them; borrowed until the task completes);
// close(2)'s error is reported too.
Task<Result<void>> write_file(std::string path, ConstBuffer bytes, unsigned mode = 0644);

// ---- The awaitables. Each is awaited right away, once; see the top of this file for their contracts. ----

class File::OpenAwaitable : public surge::internal::IoAwaitable {
 public:
  OpenAwaitable(Worker& worker, std::string_view path, const OpenOptions& options);
  // An open that completed while its task was being destroyed (worker shutdown) owns an fd nobody took.
  ~OpenAwaitable();
  Result<File> await_resume() noexcept;

 private:
  surge::internal::PathCopy path_;
  PathOperands operands_;
  bool direct_;
  bool fast_path_;
  bool taken_ = false;
};

// Shared by read_at and read_exact_at: the inline attempt, made in await_suspend so that a cancelled
// task or a passed deadline is seen first.
class File::ReadAtAwaitable : public surge::internal::IoAwaitable {
 public:
  ReadAtAwaitable(File& file, MutableBuffer target, std::uint64_t at) noexcept
      : IoAwaitable(file.worker(), OpCode::kReadAt, file.fd_), file_(&file), direct_(file.direct_) {
    owned_fd = true;
    if (direct_) message_flags = kSubmitAtOnce;
    buffer = target.data;
    length = target.size;
    offset = at;
    if (fd < 0) refuse(-EBADF);
  }
  void set_deadline(Worker::Clock::time_point deadline) noexcept {
    IoAwaitable::set_deadline(deadline);
    deadline_ = deadline;
  }
  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiter) noexcept {
    assert(Worker::current() == &worker() && "File operations must be awaited on the File's worker");
    if (length > 0 && file_->cached_.should_try() && may_start(awaiter)) {
      bool finished = false;
      const std::size_t done =
          file_->cached_.try_read(fd, static_cast<std::byte*>(buffer), length, offset, finished);
      if (finished) {
        result = static_cast<std::int32_t>(done);
        if (!file_->cached_.yield_now(awaiter.address())) return false;
        surge::internal::WorkerAccess::schedule(worker(), awaiter);
        return true;
      }
      // The rest through the ring; await_resume adds what was read here.
      inline_bytes_ = done;
      buffer = static_cast<std::byte*>(buffer) + done;
      length -= done;
      offset += done;
    }
    return IoAwaitable::await_suspend(awaiter);
  }
  Result<std::size_t> await_resume() const noexcept {
    if (result >= 0) return static_cast<std::size_t>(result) + inline_bytes_;
    if (inline_bytes_ > 0) return inline_bytes_;  // the second part failed or was cancelled: report the first
    return surge::internal::file_error(error_for(result, "pread"), direct_);
  }

 private:
  template <typename Promise>
  bool may_start(std::coroutine_handle<Promise> awaiter) const noexcept {
    surge::internal::CancelSlot* slot = surge::internal::cancel_slot_of(awaiter);
    if (slot != nullptr && slot->requested()) return false;
    return deadline_ == Worker::Clock::time_point{} || Worker::Clock::now() < deadline_;
  }

  File* file_;
  std::size_t inline_bytes_ = 0;
  Worker::Clock::time_point deadline_{};
  bool direct_;
};

class File::ReadvAtAwaitable : public surge::internal::IoAwaitable {
 public:
  ReadvAtAwaitable(File& file, std::span<const iovec> vectors, std::uint64_t at) noexcept
      : IoAwaitable(file.worker(), OpCode::kReadvAt, file.fd_), file_(&file), direct_(file.direct_) {
    owned_fd = true;
    if (direct_) message_flags = kSubmitAtOnce;
    buffer = const_cast<iovec*>(vectors.data());  // preadv only reads the array
    length = vectors.size();
    offset = at;
    if (fd < 0) refuse(-EBADF);
    if (vectors.size() > IOV_MAX) refuse(-EINVAL);
  }
  void set_deadline(Worker::Clock::time_point deadline) noexcept {
    IoAwaitable::set_deadline(deadline);
    deadline_ = deadline;
  }
  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiter) noexcept {
    if (length > 0 && file_->cached_.should_try()) {
      surge::internal::CancelSlot* slot = surge::internal::cancel_slot_of(awaiter);
      const bool may_start = (slot == nullptr || !slot->requested()) &&
                             (deadline_ == Worker::Clock::time_point{} || Worker::Clock::now() < deadline_);
      if (may_start) {
        const std::ptrdiff_t done = file_->cached_.try_readv(fd, static_cast<const iovec*>(buffer),
                                                             static_cast<int>(length), offset);
        if (done >= 0) {
          result = static_cast<std::int32_t>(done);
          if (!file_->cached_.yield_now(awaiter.address())) return false;
          surge::internal::WorkerAccess::schedule(worker(), awaiter);
          return true;
        }
      }
    }
    return IoAwaitable::await_suspend(awaiter);
  }
  Result<std::size_t> await_resume() const noexcept {
    if (result >= 0) return static_cast<std::size_t>(result);
    return surge::internal::file_error(error_for(result, "preadv"), direct_);
  }

 private:
  File* file_;
  Worker::Clock::time_point deadline_{};
  bool direct_;
};

class File::WriteAtAwaitable : public surge::internal::IoAwaitable {
 public:
  WriteAtAwaitable(File& file, ConstBuffer source, std::uint64_t at) noexcept
      : IoAwaitable(file.worker(), OpCode::kWriteAt, file.fd_), direct_(file.direct_) {
    owned_fd = true;
    if (direct_) message_flags = kSubmitAtOnce;
    buffer = const_cast<void*>(source.data);  // pwrite only reads it
    length = source.size;
    offset = at;
    if (fd < 0) refuse(-EBADF);
  }
  WriteAtAwaitable(File& file, std::span<const iovec> vectors, std::uint64_t at) noexcept
      : IoAwaitable(file.worker(), OpCode::kWritevAt, file.fd_), direct_(file.direct_) {
    owned_fd = true;
    if (direct_) message_flags = kSubmitAtOnce;
    buffer = const_cast<iovec*>(vectors.data());
    length = vectors.size();
    offset = at;
    if (fd < 0) refuse(-EBADF);
    if (vectors.size() > IOV_MAX) refuse(-EINVAL);
  }
  Result<std::size_t> await_resume() const noexcept {
    if (result >= 0) return static_cast<std::size_t>(result);
    return surge::internal::file_error(error_for(result, opcode == OpCode::kWriteAt ? "pwrite" : "pwritev"), direct_);
  }

 private:
  bool direct_;
};

// read_exact_at / write_all_at: one positional read or write after another until the buffer is done.
class TransferAtAwaitable : public surge::internal::IoAwaitable {
 public:
  bool await_ready() const noexcept { return total_ == 0 || completed(); }
  TransferResult await_resume() const noexcept;

 protected:
  TransferAtAwaitable(Worker& worker, OpCode code, int file, void* data, std::size_t size, std::uint64_t at,
                      bool direct) noexcept
      : IoAwaitable(worker, code, file), base_(static_cast<std::byte*>(data)), total_(size), start_(at),
        direct_(direct) {
    owned_fd = true;
    if (direct) message_flags = kSubmitAtOnce;
    buffer = data;
    length = size;
    offset = at;
    complete = &on_chunk;
    set_multi_step();
    if (fd < 0) refuse(-EBADF);
  }
  // Bytes moved before the first submission (the read's inline part).
  void advance(std::size_t bytes) noexcept {
    transferred_ += bytes;
    buffer = base_ + transferred_;
    length = total_ - transferred_;
    offset = start_ + transferred_;
  }
  std::size_t transferred() const noexcept { return transferred_; }
  std::size_t total() const noexcept { return total_; }

 private:
  static void on_chunk(Operation& operation) noexcept;

  std::byte* base_;
  std::size_t total_;
  std::uint64_t start_;
  std::size_t transferred_ = 0;
  bool direct_;
};

class File::ReadExactAtAwaitable : public TransferAtAwaitable {
 public:
  ReadExactAtAwaitable(File& file, MutableBuffer target, std::uint64_t at) noexcept
      : TransferAtAwaitable(file.worker(), OpCode::kReadAt, file.fd_, target.data, target.size, at, file.direct_),
        file_(&file) {}
  void set_deadline(Worker::Clock::time_point deadline) noexcept {
    IoAwaitable::set_deadline(deadline);
    deadline_ = deadline;
  }
  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiter) noexcept {
    if (file_->cached_.should_try()) {
      surge::internal::CancelSlot* slot = surge::internal::cancel_slot_of(awaiter);
      const bool may_start = (slot == nullptr || !slot->requested()) &&
                             (deadline_ == Worker::Clock::time_point{} || Worker::Clock::now() < deadline_);
      if (may_start) {
        bool finished = false;
        const std::size_t done =
            file_->cached_.try_read(fd, static_cast<std::byte*>(buffer), length, offset, finished);
        advance(done);
        if (finished) {
          result = static_cast<std::int32_t>(done);
          if (!file_->cached_.yield_now(awaiter.address())) return false;
          surge::internal::WorkerAccess::schedule(worker(), awaiter);
          return true;
        }
      }
    }
    return IoAwaitable::await_suspend(awaiter);
  }

 private:
  File* file_;
  Worker::Clock::time_point deadline_{};
};

class File::WriteAllAtAwaitable : public TransferAtAwaitable {
 public:
  WriteAllAtAwaitable(File& file, ConstBuffer source, std::uint64_t at) noexcept
      : TransferAtAwaitable(file.worker(), OpCode::kWriteAt, file.fd_, const_cast<void*>(source.data), source.size,
                            at, file.direct_) {}
};

class File::SyncAwaitable : public surge::internal::IoAwaitable {
 public:
  SyncAwaitable(File& file, bool data_only) noexcept : IoAwaitable(file.worker(), OpCode::kFsync, file.fd_) {
    owned_fd = true;
    message_flags = data_only ? kFsyncDataOnly : 0;
    if (fd < 0) refuse(-EBADF);
  }
  Result<void> await_resume() const noexcept {
    if (result < 0) return error_for(result, message_flags != 0 ? "fdatasync" : "fsync");
    return ok();
  }
};

class File::FallocateAwaitable : public surge::internal::IoAwaitable {
 public:
  FallocateAwaitable(File& file, std::uint64_t at, std::uint64_t size, int mode) noexcept
      : IoAwaitable(file.worker(), OpCode::kFallocate, file.fd_) {
    owned_fd = true;
    offset = at;
    length = size;
    message_flags = mode;
    if (fd < 0) refuse(-EBADF);
  }
  Result<void> await_resume() const noexcept {
    if (result < 0) return error_for(result, "fallocate");
    return ok();
  }
};

// statx of an open file (File::statx) or of a path (fs::stat).
class File::StatxAwaitable : public surge::internal::IoAwaitable {
 public:
  // Of the open file `file_fd`.
  StatxAwaitable(Worker& worker, int file_fd, unsigned mask) noexcept;
  // Of `path`, following symlinks.
  StatxAwaitable(Worker& worker, std::string_view path, unsigned mask);
  Result<struct statx> await_resume() const noexcept;

 private:
  surge::internal::PathCopy path_;
  PathOperands operands_;
  struct statx out_ {};
  bool of_path_;
};

class File::CloseAwaitable : public surge::internal::IoAwaitable {
 public:
  CloseAwaitable(Worker* worker, int file_fd) noexcept;
  // A close never awaited (or never started) still releases the fd.
  ~CloseAwaitable();
  bool await_ready() const noexcept { return fd < 0 || completed(); }
  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiter) noexcept {
    started_ = true;
    surge::internal::WorkerAccess::backend(worker()).forget_fd(fd);
    if (IoAwaitable::await_suspend(awaiter)) return true;
    // Refused before it started (the task was cancelled, or a deadline passed): close here, since the
    // fd must be released either way.
    result = ::close(fd) < 0 ? -errno : 0;
    return false;
  }
  Result<void> await_resume() const noexcept {
    if (result < 0) return Error::from_result(result, "close");
    return ok();
  }

 private:
  bool started_ = false;
};

// A path operation (renameat, unlinkat, mkdirat): Result<void>, errors naming the path(s).
class PathAwaitable : public surge::internal::IoAwaitable {
 public:
  PathAwaitable(Worker& worker, OpCode code, std::string_view path, std::string_view new_path, int flags,
                unsigned mode);
  Result<void> await_resume() const noexcept;

 private:
  surge::internal::PathCopy path_;
  surge::internal::PathCopy new_path_;
  PathOperands operands_;
};

inline File::ReadAtAwaitable File::read_at(MutableBuffer buffer, std::uint64_t offset) noexcept {
  return ReadAtAwaitable(*this, buffer, offset);
}
inline File::ReadvAtAwaitable File::read_at(std::span<const iovec> buffers, std::uint64_t offset) noexcept {
  return ReadvAtAwaitable(*this, buffers, offset);
}
inline File::WriteAtAwaitable File::write_at(ConstBuffer buffer, std::uint64_t offset) noexcept {
  return WriteAtAwaitable(*this, buffer, offset);
}
inline File::WriteAtAwaitable File::write_at(std::span<const iovec> buffers, std::uint64_t offset) noexcept {
  return WriteAtAwaitable(*this, buffers, offset);
}
inline File::ReadExactAtAwaitable File::read_exact_at(MutableBuffer buffer, std::uint64_t offset) noexcept {
  return ReadExactAtAwaitable(*this, buffer, offset);
}
inline File::WriteAllAtAwaitable File::write_all_at(ConstBuffer buffer, std::uint64_t offset) noexcept {
  return WriteAllAtAwaitable(*this, buffer, offset);
}
inline File::SyncAwaitable File::fsync() noexcept { return SyncAwaitable(*this, false); }
inline File::SyncAwaitable File::fdatasync() noexcept { return SyncAwaitable(*this, true); }
inline File::FallocateAwaitable File::fallocate(std::uint64_t offset, std::uint64_t length, int mode) noexcept {
  return FallocateAwaitable(*this, offset, length, mode);
}
inline File::StatxAwaitable File::statx(unsigned mask) noexcept { return StatxAwaitable(*worker_, fd_, mask); }
inline File::CloseAwaitable File::close() noexcept {
  return CloseAwaitable(worker_, std::exchange(fd_, -1));
}

}  // namespace surge::fs

#endif  // SURGE_FS_FILE_H_
