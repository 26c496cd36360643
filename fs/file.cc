#include "fs/file.h"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace surge {
namespace internal {

Error file_error(Error error, bool direct) noexcept {
  if (!direct || error.code() != EINVAL) return error;
  const char* operation = error.operation() != nullptr ? error.operation() : "";
  if (std::strcmp(operation, "pread") == 0 || std::strcmp(operation, "preadv") == 0) {
    return Error(EINVAL,
                 "pread (O_DIRECT: buffer address, offset and length must be multiples of the file's direct-I/O "
                 "alignment, see FileInfo::direct_io_alignment)");
  }
  return Error(EINVAL,
               "pwrite (O_DIRECT: buffer address, offset and length must be multiples of the file's direct-I/O "
               "alignment, see FileInfo::direct_io_alignment)");
}

std::size_t CachedReadPolicy::try_read(int fd, std::byte* data, std::size_t size, std::uint64_t offset,
                                       bool& finished) noexcept {
  finished = false;
  // Past INT64_MAX an offset is negative as off_t, which preadv2 reads as "the file position": let the
  // ring or the pool refuse it (EINVAL), as pread(2) does.
  if (offset > static_cast<std::uint64_t>(INT64_MAX)) return 0;
  // Linux moves at most MAX_RW_COUNT (2 GiB - 4 KiB) per call, and results travel as int32: a larger
  // read is a short one, as it is through the ring.
  size = std::min<std::size_t>(size, 0x7ffff000);
  std::size_t done = 0;
  while (done < size) {
    iovec vector{data + done, size - done};
    const ssize_t n = ::preadv2(fd, &vector, 1, static_cast<off_t>(offset + done), RWF_NOWAIT);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0) {
      finished = true;  // end of file: a short read is the whole answer
      break;
    }
    if (errno == EINTR) continue;
    // EOPNOTSUPP: the filesystem cannot do RWF_NOWAIT reads (or the kernel is too old): never again.
    if (errno == EOPNOTSUPP || errno == ENOSYS) enabled_ = false;
    break;  // EAGAIN: not (all) cached; any other error: the ring reports it
  }
  if (done == size) finished = true;
  if (finished) {
    hit();
    ++stats_.inline_reads;
  } else {
    miss();
    if (done > 0) {
      ++stats_.partial_reads;
    } else {
      ++stats_.misses;
    }
  }
  return done;
}

std::ptrdiff_t CachedReadPolicy::try_readv(int fd, const iovec* vectors, int count, std::uint64_t offset) noexcept {
  if (offset > static_cast<std::uint64_t>(INT64_MAX)) return -1;  // refused by the ring or the pool (EINVAL)
  std::size_t total = 0;
  for (int i = 0; i < count; ++i) total += vectors[i].iov_len;
  for (;;) {
    const ssize_t n = ::preadv2(fd, vectors, count, static_cast<off_t>(offset), RWF_NOWAIT);
    if (n >= 0 && (static_cast<std::size_t>(n) == total || n == 0)) {
      hit();
      ++stats_.inline_reads;
      return n;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EOPNOTSUPP || errno == ENOSYS)) enabled_ = false;
    // A partial result may be end of file or a miss: the ring reads it all again and tells.
    miss();
    if (n > 0) {
      ++stats_.partial_reads;
    } else {
      ++stats_.misses;
    }
    return -1;
  }
}

void CachedReadPolicy::hit() noexcept {
  miss_streak_ = 0;
  next_skip_ = kFirstSkip;
}

void CachedReadPolicy::miss() noexcept {
  inline_streak_ = 0;
  if (++miss_streak_ < kMissesBeforeSkipping) return;
  skip_left_ = next_skip_;
  next_skip_ = std::min(next_skip_ * 2, kMaxSkip);
}

}  // namespace internal

namespace fs {
namespace {

std::chrono::system_clock::time_point to_time_point(const statx_timestamp& stamp) noexcept {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::seconds(stamp.tv_sec) +
                                                                      std::chrono::nanoseconds(stamp.tv_nsec)));
}

Worker& current_worker() noexcept {
  Worker* worker = Worker::current();
  assert(worker != nullptr && "surge::fs: call from a task on a surge worker");
  return *worker;
}

}  // namespace

int OpenOptions::flags() const noexcept {
  const bool writes = write || append;
  int value = writes ? (read ? O_RDWR : O_WRONLY) : O_RDONLY;
  if (append) value |= O_APPEND;
  if (truncate) value |= O_TRUNC;
  if (create || create_new) value |= O_CREAT;
  if (create_new) value |= O_EXCL;
  if (direct) value |= O_DIRECT;
  value |= custom_flags;
  value &= ~O_NONBLOCK;  // io_uring answers EAGAIN for regular files opened non-blocking
  return value | O_CLOEXEC;
}

std::size_t FileInfo::direct_io_alignment() const noexcept {
  const std::size_t alignment = std::max(direct_io_memory_alignment, direct_io_offset_alignment);
  return alignment != 0 ? alignment : 4096;
}

FileInfo FileInfo::from(const struct statx& raw) noexcept {
  FileInfo info;
  info.size = raw.stx_size;
  info.mode = raw.stx_mode;
  info.block_size = raw.stx_blksize;
  info.modified = to_time_point(raw.stx_mtime);
#ifdef STATX_DIOALIGN
  if ((raw.stx_mask & STATX_DIOALIGN) != 0) {
    info.direct_io_memory_alignment = raw.stx_dio_mem_align;
    info.direct_io_offset_alignment = raw.stx_dio_offset_align;
  }
#endif
  return info;
}

void AlignedBuffer::Free::operator()(std::byte* bytes) const noexcept { std::free(bytes); }

Result<AlignedBuffer> AlignedBuffer::allocate(std::size_t size, std::size_t alignment) {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) {
    return Error(EINVAL, "AlignedBuffer: alignment must be a power of two, at least sizeof(void*)");
  }
  const std::size_t rounded = (std::max<std::size_t>(size, 1) + alignment - 1) & ~(alignment - 1);
  void* memory = nullptr;
  if (const int failed = ::posix_memalign(&memory, alignment, rounded); failed != 0) {
    return Error(failed, "AlignedBuffer: posix_memalign");
  }
  std::memset(memory, 0, rounded);
  AlignedBuffer buffer;
  buffer.data_.reset(static_cast<std::byte*>(memory));
  buffer.size_ = rounded;
  buffer.alignment_ = alignment;
  return buffer;
}

// ---- File ----

File::File(Worker& worker, int fd, bool direct, bool cached_read_fast_path) noexcept
    : worker_(&worker), fd_(fd), direct_(direct) {
  cached_.set_enabled(cached_read_fast_path && !direct);
}

File::File(File&& other) noexcept
    : worker_(other.worker_), fd_(std::exchange(other.fd_, -1)), direct_(other.direct_), cached_(other.cached_) {}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    close_now();
    worker_ = other.worker_;
    fd_ = std::exchange(other.fd_, -1);
    direct_ = other.direct_;
    cached_ = other.cached_;
  }
  return *this;
}

void File::close_now() noexcept {
  if (fd_ < 0) return;
  const int fd = std::exchange(fd_, -1);
  if (Worker::current() != worker_) {
    // Away from home: the backend belongs to the worker's thread, so the fd is forgotten and closed
    // there; if the worker is gone, so is its backend, and only the fd is left to close.
    const bool posted = surge::internal::WorkerAccess::run_at_home(
        worker_, 0,
        [](Worker& worker, std::uint64_t home_fd) noexcept {
          surge::internal::WorkerAccess::backend(worker).forget_fd(static_cast<int>(home_fd));
          ::close(static_cast<int>(home_fd));
        },
        static_cast<std::uint64_t>(fd));
    if (!posted) {
      surge::internal::WorkerAccess::report_outlived("File");
      ::close(fd);
    }
    return;
  }
  surge::internal::WorkerAccess::backend(*worker_).forget_fd(fd);
  ::close(fd);  // Linux releases the fd even when close(2) fails: never retried
}

File::OpenAwaitable File::open(std::string_view path, OpenOptions options) {
  return OpenAwaitable(current_worker(), path, options);
}

File::OpenAwaitable File::create(std::string_view path, unsigned mode) {
  return OpenAwaitable(current_worker(), path,
                       OpenOptions{.read = false, .write = true, .truncate = true, .create = true, .mode = mode});
}

Task<Result<FileInfo>> File::stat() {
  auto raw = co_await statx(kFileInfoMask);
  if (!raw) co_return raw.error();
  co_return FileInfo::from(*raw);
}

// ---- Awaitables ----

File::OpenAwaitable::OpenAwaitable(Worker& worker, std::string_view path, const OpenOptions& options)
    : IoAwaitable(worker, OpCode::kOpenAt, AT_FDCWD), path_(path), direct_(options.direct),
      fast_path_(options.cached_read_fast_path) {
  operands_.path = path_.c_str();
  operands_.flags = options.flags();
  operands_.mode = options.mode;
  buffer = &operands_;
  if (path_.has_embedded_nul()) refuse(-EINVAL);
}

File::OpenAwaitable::~OpenAwaitable() {
  if (completed() && !taken_ && result >= 0 && !refused()) ::close(result);
}

Result<File> File::OpenAwaitable::await_resume() noexcept {
  if (result < 0) {
    const Error error = error_for(result, "openat");
    return Error(error.code(), surge::internal::error_text("openat", path_.view()));
  }
  taken_ = true;
  return File(worker(), result, direct_, fast_path_);
}

File::StatxAwaitable::StatxAwaitable(Worker& worker, int file_fd, unsigned mask) noexcept
    : IoAwaitable(worker, OpCode::kStatx, file_fd), path_(""), of_path_(false) {
  operands_.path = path_.c_str();
  operands_.flags = AT_EMPTY_PATH;
  operands_.mode = mask;
  operands_.statx_out = &out_;
  buffer = &operands_;
  if (file_fd < 0) refuse(-EBADF);
}

File::StatxAwaitable::StatxAwaitable(Worker& worker, std::string_view path, unsigned mask)
    : IoAwaitable(worker, OpCode::kStatx, AT_FDCWD), path_(path), of_path_(true) {
  operands_.path = path_.c_str();
  operands_.flags = 0;
  operands_.mode = mask;
  operands_.statx_out = &out_;
  buffer = &operands_;
  if (path_.has_embedded_nul() || path.empty()) refuse(path.empty() ? -ENOENT : -EINVAL);
}

Result<struct statx> File::StatxAwaitable::await_resume() const noexcept {
  if (result < 0) {
    const Error error = error_for(result, "statx");
    if (!of_path_) return error;
    return Error(error.code(), surge::internal::error_text("statx", path_.view()));
  }
  return out_;
}

File::CloseAwaitable::CloseAwaitable(Worker* worker, int file_fd) noexcept
    : IoAwaitable(worker != nullptr ? *worker : current_worker(), OpCode::kClose, file_fd) {}

File::CloseAwaitable::~CloseAwaitable() {
  if (started_ || fd < 0) return;
  surge::internal::WorkerAccess::backend(worker()).forget_fd(fd);
  ::close(fd);
}

TransferResult TransferAtAwaitable::await_resume() const noexcept {
  const bool reads = opcode == OpCode::kReadAt;
  if (transferred_ == total_) return TransferResult(total_);
  if (result < 0) {
    return TransferResult(surge::internal::file_error(error_for(result, reads ? "pread" : "pwrite"), direct_),
                          transferred_);
  }
  if (reads) return TransferResult(Error(ENODATA, "read_exact_at: the file ended before the buffer was full"), transferred_);
  return TransferResult(Error(EIO, "write_all_at: pwrite made no progress"), transferred_);
}

void TransferAtAwaitable::on_chunk(Operation& operation) noexcept {
  auto& self = static_cast<TransferAtAwaitable&>(operation);
  note_linked_timeout(self);
  if (is_transient(self.result)) {
    self.resubmit();
    return;
  }
  if (self.result > 0) {
    self.advance(static_cast<std::size_t>(self.result));
    if (self.transferred_ < self.total_) {
      self.resubmit();  // stops here if cancelled, timed out or closed meanwhile
      return;
    }
  }
  self.resume_awaiter();
}

PathAwaitable::PathAwaitable(Worker& worker, OpCode code, std::string_view path, std::string_view new_path,
                             int flags, unsigned mode)
    : IoAwaitable(worker, code, AT_FDCWD), path_(path), new_path_(new_path) {
  operands_.path = path_.c_str();
  operands_.new_path = new_path_.c_str();
  operands_.flags = flags;
  operands_.mode = mode;
  buffer = &operands_;
  if (path_.has_embedded_nul() || new_path_.has_embedded_nul()) refuse(-EINVAL);
}

Result<void> PathAwaitable::await_resume() const noexcept {
  if (result >= 0) return ok();
  const char* name = opcode_name(opcode);
  const Error error = error_for(result, name);
  if (opcode == OpCode::kRenameAt) {
    return Error(error.code(), surge::internal::error_text(name, path_.view(), new_path_.view()));
  }
  return Error(error.code(), surge::internal::error_text(name, path_.view()));
}

// ---- Path functions ----

PathAwaitable rename(std::string_view from, std::string_view to, unsigned flags) {
  return PathAwaitable(current_worker(), OpCode::kRenameAt, from, to, static_cast<int>(flags), 0);
}

PathAwaitable remove_file(std::string_view path) {
  return PathAwaitable(current_worker(), OpCode::kUnlinkAt, path, {}, 0, 0);
}

PathAwaitable remove_dir(std::string_view path) {
  return PathAwaitable(current_worker(), OpCode::kUnlinkAt, path, {}, AT_REMOVEDIR, 0);
}

PathAwaitable create_dir(std::string_view path, unsigned mode) {
  return PathAwaitable(current_worker(), OpCode::kMkdirAt, path, {}, 0, mode);
}

Task<Result<FileInfo>> stat(std::string path) {
  auto raw = co_await File::StatxAwaitable(current_worker(), path, kFileInfoMask);
  if (!raw) co_return raw.error();
  co_return FileInfo::from(*raw);
}

Task<Result<std::string>> read_file(std::string path, std::size_t max_size) {
  const std::string& name = path;
  auto file = co_await File::open(name);
  if (!file) co_return file.error();
  auto raw = co_await file->statx(STATX_SIZE);
  if (!raw) co_return Error(raw.error().code(), surge::internal::error_text("statx", name));
  // One byte more than the size, so the first read already sees end of file when the size is right;
  // size 0 (procfs, sysfs) means "unknown": start with a page and grow.
  constexpr std::size_t kFirstGuess = 4096;
  const std::uint64_t reported = raw->stx_size;
  if (reported > max_size) co_return Error(EFBIG, surge::internal::error_text("read_file (larger than max_size)", name));
  std::string bytes;
  bytes.resize(reported > 0 ? static_cast<std::size_t>(reported) + 1 : std::min(kFirstGuess, max_size + 1));
  std::size_t filled = 0;
  for (;;) {
    if (filled == bytes.size()) {  // it grew, or its size was not known
      // One byte past max_size tells a file of exactly max_size bytes from a larger (or endless) one.
      if (filled > max_size) co_return Error(EFBIG, surge::internal::error_text("read_file (larger than max_size)", name));
      bytes.resize(std::min(bytes.size() * 2, max_size + 1));
    }
    auto n = co_await file->read_at(MutableBuffer(bytes.data() + filled, bytes.size() - filled), filled);
    if (!n) co_return Error(n.error().code(), surge::internal::error_text(n.error().operation(), name));
    if (*n == 0) break;
    filled += *n;
  }
  bytes.resize(filled);
  (void)co_await file->close();  // a reader has nothing to lose to close(2)'s error
  co_return bytes;
}

Task<Result<void>> write_file(std::string path, ConstBuffer bytes, unsigned mode) {
  const std::string& name = path;
  auto file = co_await File::create(name, mode);
  if (!file) co_return file.error();
  auto written = co_await file->write_all_at(bytes, 0);
  if (!written) co_return Error(written.error().code(), surge::internal::error_text(written.error().operation(), name));
  auto closed = co_await file->close();  // where a filesystem reports a failed write-back (NFS, quotas)
  if (!closed) co_return Error(closed.error().code(), surge::internal::error_text("close", name));
  co_return ok();
}

}  // namespace fs
}  // namespace surge
