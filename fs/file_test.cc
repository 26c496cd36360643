// Files on every way a worker can run them: io_uring opcodes, io_uring with the file opcodes off (the
// blocking pool, as on a kernel without them) and epoll (always the pool). Real files in a fresh
// directory: round trips, vector forms, end of file, read_file, errors naming their path, O_DIRECT,
// fallocate, renames and directories, fd leaks, the page-cache fast path, cancellation and deadlines at
// each stage, fault injection (short transfers, EINTR), many concurrent reads.
#include "fs/file.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "runtime/backend/backend_factory.h"
#include "runtime/internal/blocking_pool.h"
#include "runtime/internal/worker_access.h"
#include "runtime/testing/backend_param.h"
#include "runtime/testing/fault_injection_backend.h"
#include "runtime/testing/fd_count.h"
#include "runtime/when.h"

namespace surge {
namespace {

using fs::File;
using fs::OpenOptions;

struct Config {
  BackendChoice backend;
  bool file_opcodes;  // io_uring: false runs file operations on the blocking pool
  bool fault_injection = false;
};

void PrintTo(const Config& config, std::ostream* out) {
  *out << backend_choice_name(config.backend) << (config.file_opcodes ? "" : " (file operations on the pool)");
}

std::string config_name(const ::testing::TestParamInfo<Config>& info) {
  if (info.param.backend == BackendChoice::kEpoll) return "Epoll";
  return info.param.file_opcodes ? "IoUring" : "IoUringPool";
}

// Whether file operations of this configuration run on the blocking pool.
bool on_pool(const Config& config) { return config.backend == BackendChoice::kEpoll || !config.file_opcodes; }

std::string bytes_of(std::size_t size, unsigned seed) {
  std::mt19937 random(seed);
  std::string data(size, '\0');
  for (auto& byte : data) byte = static_cast<char>(random());
  return data;
}

class FileTest : public ::testing::TestWithParam<Config> {
 protected:
  void SetUp() override {
    BackendOptions options;
    options.allow_file_opcodes = GetParam().file_opcodes;
    // io_uring with file operations on the pool also carries deadlines as linked timeouts where it can:
    // a file operation on the pool has no SQE to link one to, so its deadline must go on the wheel.
    options.allow_linked_timeouts = GetParam().backend == BackendChoice::kIoUring && !GetParam().file_opcodes;
    std::unique_ptr<Backend> backend;
    testing::make_backend_or_skip(GetParam().backend, options, backend);
    if (!backend) return;
    if (GetParam().backend == BackendChoice::kIoUring && GetParam().file_opcodes &&
        !backend->features().uses_file_opcodes) {
      GTEST_SKIP() << "this kernel's io_uring has no file opcodes";
    }
    auto wrapper = std::make_unique<FaultInjectionBackend>(std::move(backend));
    faults_ = wrapper.get();
    worker_ = Worker::with_backend(std::move(wrapper));
    const char* base = std::getenv("TEST_TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/surge_fs_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override {
    worker_.reset();
    if (!dir_.empty()) {
      const int removed = std::system(("rm -rf '" + dir_ + "'").c_str());
      EXPECT_EQ(removed, 0);
    }
  }

  std::string path(std::string_view name) const { return dir_ + "/" + std::string(name); }
  bool run(Task<void> task, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    if (!worker_) return false;
    return testing::run_bounded(*worker_, std::move(task), limit);
  }
  // Writes `data` to `name` synchronously (set-up, not under test).
  void put(std::string_view name, const std::string& data) {
    FILE* file = std::fopen(path(name).c_str(), "wb");
    ASSERT_NE(file, nullptr);
    ASSERT_EQ(std::fwrite(data.data(), 1, data.size(), file), data.size());
    std::fclose(file);
  }

  std::unique_ptr<Worker> worker_;
  FaultInjectionBackend* faults_ = nullptr;
  std::string dir_;
};

TEST_P(FileTest, WriteReadSyncStatRoundTrip) {
  EXPECT_TRUE(run([](std::string name) -> Task<void> {
    const std::string data = bytes_of(100'000, 1);
    auto file = co_await File::open(name, OpenOptions{.write = true, .create = true});
    if (!file) { ADD_FAILURE() << file.error().message(); co_return; }
    auto written = co_await file->write_all_at(data, 0);
    EXPECT_TRUE(written) << written.error().message();
    EXPECT_EQ(written.transferred(), data.size());
    EXPECT_TRUE(co_await file->fsync());
    EXPECT_TRUE(co_await file->fdatasync());
    auto info = co_await file->stat();
    if (!info) { ADD_FAILURE() << info.error().message(); co_return; }
    EXPECT_EQ(info->size, data.size());
    EXPECT_TRUE(info->is_regular());
    auto raw = co_await file->statx(STATX_SIZE | STATX_MODE);
    EXPECT_TRUE(raw && raw->stx_size == data.size());

    std::string back(data.size(), '\0');
    auto read = co_await file->read_exact_at(back, 0);
    EXPECT_TRUE(read) << read.error().message();
    EXPECT_TRUE(back == data);
    // A read that straddles the end of the file is short; one at the end returns 0.
    std::string tail(1000, '\0');
    auto short_read = co_await file->read_at(tail, data.size() - 300);
    EXPECT_TRUE(short_read && *short_read == 300u);
    EXPECT_EQ(tail.substr(0, 300), data.substr(data.size() - 300));
    auto at_end = co_await file->read_at(tail, data.size());
    EXPECT_TRUE(at_end && *at_end == 0u);
    auto past_end = co_await file->read_at(tail, data.size() + 12345);
    EXPECT_TRUE(past_end && *past_end == 0u);
    // read_exact_at past the end: ENODATA, saying how much it got.
    auto exact = co_await file->read_exact_at(tail, data.size() - 10);
    EXPECT_FALSE(exact);
    if (!exact) { EXPECT_TRUE(exact.error().is_unexpected_eof()) << exact.error().message(); }
    EXPECT_EQ(exact.transferred(), 10u);
    // Overwrite in the middle.
    auto one = co_await file->write_at(std::string_view("XYZ"), 10);
    EXPECT_TRUE(one && *one == 3u);
    char three[3];
    auto again = co_await file->read_at(MutableBuffer(three, 3), 10);
    EXPECT_TRUE(again && *again == 3u && std::memcmp(three, "XYZ", 3) == 0);
    EXPECT_TRUE(co_await file->close());
    EXPECT_FALSE(file->is_open());
    // Operations on a closed file fail with EBADF without reaching the backend.
    auto closed = co_await file->read_at(tail, 0);
    EXPECT_TRUE(!closed && closed.error().code() == EBADF);
  }(path("round_trip"))));
}

TEST_P(FileTest, VectorForms) {
  EXPECT_TRUE(run([](std::string name) -> Task<void> {
    auto file = co_await File::open(name, OpenOptions{.write = true, .create = true});
    if (!file) { ADD_FAILURE() << file.error().message(); co_return; }
    std::string a = "hello, ", b = "vectored ", c = "world";
    iovec out[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
    auto written = co_await file->write_at(std::span<const iovec>(out, 3), 5);
    EXPECT_TRUE(written && *written == 21u);
    char x[5], y[100];
    iovec in[2] = {{x, sizeof(x)}, {y, sizeof(y)}};
    auto read = co_await file->read_at(std::span<const iovec>(in, 2), 5);
    EXPECT_TRUE(read && *read == 21u) << (read ? *read : 0);
    EXPECT_EQ(std::string(x, 5) + std::string(y, 16), "hello, vectored world");
    // The hole before offset 5 reads as zeros.
    char head[5] = {1, 1, 1, 1, 1};
    iovec first[1] = {{head, 5}};
    auto zeros = co_await file->read_at(std::span<const iovec>(first, 1), 0);
    EXPECT_TRUE(zeros && *zeros == 5u && head[0] == 0 && head[4] == 0);
    // At and past the end.
    auto end = co_await file->read_at(std::span<const iovec>(in, 2), 26);
    EXPECT_TRUE(end && *end == 0u);
    // Too many vectors: EINVAL before anything starts.
    std::vector<iovec> many(IOV_MAX + 1, iovec{x, 1});
    auto refused = co_await file->read_at(std::span<const iovec>(many), 0);
    EXPECT_TRUE(!refused && refused.error().code() == EINVAL);
  }(path("vectors"))));
}

TEST_P(FileTest, ReadFileBigEmptyAndProc) {
  const std::string big = bytes_of(3 << 20, 2);
  put("big", big);
  put("empty", "");
  EXPECT_TRUE(run([](std::string dir, const std::string& big) -> Task<void> {
    auto whole = co_await fs::read_file(dir + "/big");
    if (!whole) { ADD_FAILURE() << whole.error().message(); co_return; }
    EXPECT_EQ(whole->size(), big.size());
    EXPECT_TRUE(*whole == big);
    auto empty = co_await fs::read_file(dir + "/empty");
    EXPECT_TRUE(empty && empty->empty());
    // procfs reports size 0: read until end of file.
    auto status = co_await fs::read_file("/proc/self/status");
    if (!status) { ADD_FAILURE() << status.error().message(); co_return; }
    EXPECT_NE(status->find("Name:"), std::string::npos);
    EXPECT_NE(status->find("VmRSS:"), std::string::npos) << "the whole file, not its first page";
    auto maps = co_await fs::read_file("/proc/self/maps");  // usually more than a page
    EXPECT_TRUE(maps && maps->size() > 100);
    // write_file then read_file.
    auto wrote = co_await fs::write_file(dir + "/written", std::string_view("some text\n"));
    EXPECT_TRUE(wrote) << wrote.error().message();
    auto text = co_await fs::read_file(dir + "/written");
    EXPECT_TRUE(text && *text == "some text\n");
    auto missing = co_await fs::read_file(dir + "/nope");
    EXPECT_TRUE(!missing && missing.error().code() == ENOENT);
    if (!missing) { EXPECT_EQ(missing.error().message(), "openat " + dir + "/nope: No such file or directory"); }
  }(dir_, big)));
}

TEST_P(FileTest, ReadFileOfAFileThatGrowsOrShrinksMeanwhile) {
  // A file whose size changes between statx and the reads: read as it is when read.
  put("changing", bytes_of(10'000, 3));
  EXPECT_TRUE(run([](std::string name) -> Task<void> {
    // Grow it from a plain thread's point of view while read_file runs: simulate by appending before.
    auto reading = fs::read_file(name);
    const std::string extra = bytes_of(50'000, 4);
    FILE* append = std::fopen(name.c_str(), "ab");
    std::fwrite(extra.data(), 1, extra.size(), append);
    std::fclose(append);
    auto grown = co_await std::move(reading);  // lazy: statx runs now, after the append
    EXPECT_TRUE(grown && grown->size() == 60'000u);
    EXPECT_EQ(truncate(name.c_str(), 100), 0);
    auto shrunk = co_await fs::read_file(name);
    EXPECT_TRUE(shrunk && shrunk->size() == 100u);
  }(path("changing"))));
}

TEST_P(FileTest, ErrorsNameOperationAndPath) {
  put("plain", "x");
  EXPECT_EQ(mkdir(path("dir").c_str(), 0755), 0);
  EXPECT_TRUE(run([](std::string dir) -> Task<void> {
    auto missing = co_await File::open(dir + "/x/y");
    EXPECT_TRUE(!missing && missing.error().code() == ENOENT);
    if (!missing) { EXPECT_EQ(missing.error().message(), "openat " + dir + "/x/y: No such file or directory"); }
    auto is_dir = co_await File::open(dir + "/dir", OpenOptions{.write = true});
    EXPECT_TRUE(!is_dir && is_dir.error().code() == EISDIR);
    if (!is_dir) { EXPECT_EQ(is_dir.error().message(), "openat " + dir + "/dir: Is a directory"); }
    auto not_dir = co_await File::open(dir + "/plain/below");
    EXPECT_TRUE(!not_dir && not_dir.error().code() == ENOTDIR);
    auto exists = co_await File::open(dir + "/plain", OpenOptions{.write = true, .create_new = true});
    EXPECT_TRUE(!exists && exists.error().code() == EEXIST);
    if (!exists) { EXPECT_EQ(exists.error().message(), "openat " + dir + "/plain: File exists"); }
    auto fresh = co_await File::open(dir + "/fresh", OpenOptions{.write = true, .create_new = true});
    EXPECT_TRUE(fresh) << fresh.error().message();
    auto nul = co_await File::open(std::string_view("a\0b", 3));
    EXPECT_TRUE(!nul && nul.error().code() == EINVAL);
    // A very long path (heap copy) is still named whole.
    const std::string long_name = dir + "/" + std::string(200, 'n');
    auto long_missing = co_await File::open(long_name);
    EXPECT_TRUE(!long_missing && long_missing.error().code() == ENOENT);
    if (!long_missing) { EXPECT_NE(long_missing.error().message().find(std::string(200, 'n')), std::string::npos); }
    auto too_long = co_await File::open(dir + "/" + std::string(300, 'n'));
    EXPECT_TRUE(!too_long && too_long.error().code() == ENAMETOOLONG);
    auto stat_missing = co_await fs::stat(dir + "/none");
    EXPECT_TRUE(!stat_missing && stat_missing.error().code() == ENOENT);
    if (!stat_missing) { EXPECT_EQ(stat_missing.error().message(), "statx " + dir + "/none: No such file or directory"); }
  }(dir_)));
}

TEST_P(FileTest, PermissionDenied) {
  if (geteuid() == 0) GTEST_SKIP() << "running as root, which bypasses file permissions (EACCES is injected in FileFaultTest)";
  put("secret", "x");
  ASSERT_EQ(chmod(path("secret").c_str(), 0), 0);
  EXPECT_TRUE(run([](std::string name) -> Task<void> {
    auto denied = co_await File::open(name);
    EXPECT_TRUE(!denied && denied.error().code() == EACCES);
    if (!denied) { EXPECT_EQ(denied.error().message(), "openat " + name + ": Permission denied"); }
  }(path("secret"))));
}

TEST_P(FileTest, DirectIoRoundTripAndMisalignment) {
  EXPECT_TRUE(run([](std::string name) -> Task<void> {
    auto file = co_await File::open(name, OpenOptions{.write = true, .create = true, .direct = true});
    if (!file && file.error().code() == EINVAL) {
      std::printf("O_DIRECT is not supported on this filesystem (%s): skipped\n", file.error().message().c_str());
      co_return;
    }
    if (!file) { ADD_FAILURE() << file.error().message(); co_return; }
    EXPECT_TRUE(file->is_direct());
    auto info = co_await file->stat();
    if (!info) { ADD_FAILURE() << info.error().message(); co_return; }
    const std::size_t alignment = info->direct_io_alignment();
    EXPECT_GE(alignment, 512u);
    auto out = fs::AlignedBuffer::allocate(64 * 1024, alignment);
    auto in = fs::AlignedBuffer::allocate(64 * 1024, alignment);
    if (!out || !in) { ADD_FAILURE() << "allocate"; co_return; }
    const std::string data = bytes_of(out->size(), 5);
    std::memcpy(out->data(), data.data(), data.size());
    auto written = co_await file->write_all_at(*out, alignment * 4);
    EXPECT_TRUE(written) << written.error().message();
    auto read = co_await file->read_exact_at(*in, alignment * 4);
    EXPECT_TRUE(read) << read.error().message();
    EXPECT_EQ(std::memcmp(in->data(), data.data(), data.size()), 0);
    // Misaligned buffer (one byte in), misaligned offset: EINVAL that says why.
    auto bad_buffer = co_await file->read_at(MutableBuffer(in->data() + 1, 4096), 0);
    EXPECT_TRUE(!bad_buffer && bad_buffer.error().code() == EINVAL);
    if (!bad_buffer) { EXPECT_NE(bad_buffer.error().message().find("O_DIRECT"), std::string::npos) << bad_buffer.error().message(); }
    auto bad_offset = co_await file->write_at(MutableBuffer(out->data(), alignment), 1);
    EXPECT_TRUE(!bad_offset && bad_offset.error().code() == EINVAL);
    if (!bad_offset) { EXPECT_NE(bad_offset.error().message().find("O_DIRECT"), std::string::npos); }
    // Never served inline (a direct read would block the worker).
    EXPECT_EQ(file->cached_read_stats().inline_reads + file->cached_read_stats().misses, 0u);
    auto bad_alignment = fs::AlignedBuffer::allocate(100, 3);
    EXPECT_FALSE(bad_alignment);
  }(path("direct"))));
}

// On io_uring an O_DIRECT transfer reaches the kernel when it is submitted (kSubmitAtOnce), not with the
// loop turn's batch; other reads wait for the batch.
TEST_P(FileTest, DirectTransfersAreSubmittedAtOnce) {
  if (GetParam().backend != BackendChoice::kIoUring || !GetParam().file_opcodes) {
    GTEST_SKIP() << "only io_uring's own file opcodes have a submission queue";
  }
  put("direct_at_once", bytes_of(1 << 16, 14));
  const int fd = ::open(path("direct_at_once").c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) GTEST_SKIP() << "O_DIRECT: " << std::strerror(errno);
  auto block = fs::AlignedBuffer::allocate(4096, 4096);
  ASSERT_TRUE(block);
  Backend& backend = internal::WorkerAccess::backend(*worker_);
  // Another operation in flight (a read of a pipe nobody writes): alone, a request waits for the next
  // poll(), which submits it with its wait in one syscall.
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK), 0);
  struct Pending : Operation {
    bool done = false;
  } pending;
  char pipe_byte;
  pending.opcode = OpCode::kRead;
  pending.fd = pipe_fds[0];
  pending.buffer = &pipe_byte;
  pending.length = 1;
  pending.complete = [](Operation& op) noexcept { static_cast<Pending&>(op).done = true; };
  backend.submit(pending);
  for (bool at_once : {true, false}) {
    struct Read : Operation {
      bool done = false;
    } read;
    read.opcode = OpCode::kReadAt;
    read.fd = fd;
    read.buffer = block->data();
    read.length = block->size();
    read.offset = 8192;
    read.message_flags = at_once ? kSubmitAtOnce : 0;
    read.complete = [](Operation& op) noexcept { static_cast<Read&>(op).done = true; };
    backend.submit(read);
    EXPECT_EQ(backend.has_unsubmitted(), !at_once);
    for (int i = 0; i < 1000 && !read.done; ++i) backend.poll(std::chrono::milliseconds(10));
    EXPECT_TRUE(read.done);
    EXPECT_EQ(read.result, 4096);
  }
  ASSERT_EQ(::write(pipe_fds[1], "x", 1), 1);
  for (int i = 0; i < 1000 && !pending.done; ++i) backend.poll(std::chrono::milliseconds(10));
  EXPECT_TRUE(pending.done);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  ::close(fd);
}

TEST_P(FileTest, Fallocate) {
  EXPECT_TRUE(run([](std::string name) -> Task<void> {
    auto file = co_await File::create(name);
    if (!file) { ADD_FAILURE() << file.error().message(); co_return; }
    EXPECT_TRUE(co_await file->fallocate(0, 1 << 20));
    auto info = co_await file->stat();
    EXPECT_TRUE(info && info->size == (1u << 20));
    EXPECT_TRUE(co_await file->fallocate(1 << 20, 1 << 20, FALLOC_FL_KEEP_SIZE));
    info = co_await file->stat();
    EXPECT_TRUE(info && info->size == (1u << 20)) << "KEEP_SIZE must not grow the file";
    auto bad = co_await file->fallocate(0, 0);  // length 0 is EINVAL
    EXPECT_TRUE(!bad && bad.error().code() == EINVAL);
    if (!bad) { EXPECT_EQ(bad.error().message(), "fallocate: Invalid argument"); }
  }(path("falloc"))));
}

TEST_P(FileTest, RenameRemoveAndDirectories) {
  EXPECT_TRUE(run([](std::string dir) -> Task<void> {
    EXPECT_TRUE(co_await fs::create_dir(dir + "/d"));
    auto again = co_await fs::create_dir(dir + "/d");
    EXPECT_TRUE(!again && again.error().code() == EEXIST);
    if (!again) { EXPECT_EQ(again.error().message(), "mkdirat " + dir + "/d: File exists"); }
    EXPECT_TRUE(co_await fs::write_file(dir + "/d/a", std::string_view("A")));
    EXPECT_TRUE(co_await fs::rename(dir + "/d/a", dir + "/d/b"));
    auto old_name = co_await fs::read_file(dir + "/d/a");
    EXPECT_TRUE(!old_name && old_name.error().code() == ENOENT);
    auto moved = co_await fs::read_file(dir + "/d/b");
    EXPECT_TRUE(moved && *moved == "A");
    auto bad_rename = co_await fs::rename(dir + "/d/none", dir + "/d/c");
    EXPECT_TRUE(!bad_rename && bad_rename.error().code() == ENOENT);
    if (!bad_rename) {
      EXPECT_EQ(bad_rename.error().message(), "renameat " + dir + "/d/none -> " + dir + "/d/c: No such file or directory");
    }
    EXPECT_TRUE(co_await fs::write_file(dir + "/d/c", std::string_view("C")));
    auto no_replace = co_await fs::rename(dir + "/d/b", dir + "/d/c", RENAME_NOREPLACE);
    EXPECT_TRUE(!no_replace && no_replace.error().code() == EEXIST);
    auto not_empty = co_await fs::remove_dir(dir + "/d");
    EXPECT_TRUE(!not_empty && not_empty.error().code() == ENOTEMPTY);
    auto file_as_dir = co_await fs::remove_dir(dir + "/d/b");
    EXPECT_TRUE(!file_as_dir && file_as_dir.error().code() == ENOTDIR);
    auto dir_as_file = co_await fs::remove_file(dir + "/d");
    EXPECT_TRUE(!dir_as_file && dir_as_file.error().code() == EISDIR);
    EXPECT_TRUE(co_await fs::remove_file(dir + "/d/b"));
    EXPECT_TRUE(co_await fs::remove_file(dir + "/d/c"));
    EXPECT_TRUE(co_await fs::remove_dir(dir + "/d"));
    auto gone = co_await fs::stat(dir + "/d");
    EXPECT_TRUE(!gone && gone.error().code() == ENOENT);
    auto info = co_await fs::stat(dir);
    EXPECT_TRUE(info && info->is_directory());
  }(dir_)));
}

TEST_P(FileTest, NoFdLeaks) {
  put("data", bytes_of(10'000, 6));
  const int before = testing::open_fd_count();
  EXPECT_TRUE(run([](std::string dir) -> Task<void> {
    for (int i = 0; i < 50; ++i) {
      auto file = co_await File::open(dir + "/data");
      if (!file) { ADD_FAILURE() << file.error().message(); co_return; }
      char byte;
      (void)co_await file->read_at(MutableBuffer(&byte, 1), i);
      if (i % 2 == 0) {
        EXPECT_TRUE(co_await file->close());  // else the destructor closes it
      }
      auto missing = co_await File::open(dir + "/missing");
      EXPECT_FALSE(missing);
      auto whole = co_await fs::read_file(dir + "/data");
      EXPECT_TRUE(whole && whole->size() == 10'000u);
      EXPECT_TRUE(co_await fs::write_file(dir + "/out", *whole));
      // A close that is made but never awaited still releases the fd.
      auto unawaited = co_await File::open(dir + "/data");
      if (unawaited) (void)unawaited->close();
    }
  }(dir_)));
  EXPECT_EQ(testing::open_fd_count(), before);
}

TEST_P(FileTest, PageCacheHitsCompleteInline) {
  const std::string data = bytes_of(1 << 20, 7);
  put("cached", data);
  EXPECT_TRUE(run([](std::string name, const std::string& data) -> Task<void> {
    auto file = co_await File::open(name);
    if (!file) { ADD_FAILURE() << file.error().message(); co_return; }
    std::string warm(data.size(), '\0');
    (void)co_await file->read_exact_at(warm, 0);  // now in the page cache (it was just written anyway)
    const BackendCounters before = Worker::current()->counters();
    const std::uint64_t inline_before = file->cached_read_stats().inline_reads;
    std::mt19937 random(8);
    char block[4096];
    for (int i = 0; i < 200; ++i) {
      const std::size_t offset = random() % (data.size() - sizeof(block));
      auto n = co_await file->read_at(MutableBuffer(block, sizeof(block)), offset);
      EXPECT_TRUE(n && *n == sizeof(block));
      EXPECT_EQ(std::memcmp(block, data.data() + offset, sizeof(block)), 0);
    }
    const BackendCounters after = Worker::current()->counters();
    EXPECT_EQ(file->cached_read_stats().inline_reads - inline_before, 200u);
    EXPECT_EQ(after.operations_submitted, before.operations_submitted) << "hits must not reach the backend";
    EXPECT_GE(file->cached_read_stats().yields, 2u) << "one yield per kInlineBeforeYield inline completions";
    // With the fast path off every read goes to the backend.
    auto slow = co_await File::open(name, OpenOptions{.cached_read_fast_path = false});
    if (!slow) co_return;
    auto n = co_await slow->read_at(MutableBuffer(block, sizeof(block)), 0);
    EXPECT_TRUE(n && *n == sizeof(block));
    EXPECT_EQ(slow->cached_read_stats().inline_reads, 0u);
    EXPECT_GT(Worker::current()->counters().operations_submitted, after.operations_submitted);
  }(path("cached"), data)));
}

// Tasks that each read a cached File once, in turn, do not add up to a streak: none of them yields (an
// HTTP server's connections sharing one cached file). One task reading on does (the test above).
TEST_P(FileTest, TasksReadingInTurnDoNotYield) {
  const std::string data = bytes_of(64 << 10, 9);
  put("shared", data);
  EXPECT_TRUE(run([](std::string name) -> Task<void> {
    auto file = co_await File::open(name);
    if (!file) { ADD_FAILURE() << file.error().message(); co_return; }
    std::string warm(1 << 16, '\0');
    (void)co_await file->read_exact_at(warm, 0);
    const std::uint64_t yields_before = file->cached_read_stats().yields;
    const std::uint64_t inline_before = file->cached_read_stats().inline_reads;
    std::vector<JoinHandle<bool>> readers;
    for (int i = 0; i < 16; ++i) {
      readers.push_back(Worker::current()->spawn([](File& shared, int index) -> Task<bool> {
        char block[512];
        const TransferResult read = co_await shared.read_exact_at(MutableBuffer(block, sizeof(block)), 512u * index);
        co_return static_cast<bool>(read);
      }(*file, i)));
    }
    for (auto& reader : readers) {
      const bool ok = co_await std::move(reader);
      EXPECT_TRUE(ok);
    }
    EXPECT_EQ(file->cached_read_stats().inline_reads - inline_before, 16u);
    EXPECT_EQ(file->cached_read_stats().yields, yields_before) << "16 tasks, one read each, in turn";
  }(path("shared"))));
}

// A file that is not in the page cache: misses go to the ring/pool, and after 8 in a row the File stops
// paying a failed preadv2 per read (skipping 16, then 32, ... reads between probes).
TEST_P(FileTest, MissesBackOff) {
  const std::string data = bytes_of(16 << 20, 13);
  put("cold", data);
  EXPECT_TRUE(run([](std::string name, const std::string& data) -> Task<void> {
    auto file = co_await File::open(name);
    if (!file) { ADD_FAILURE() << file.error().message(); co_return; }
    // Evict the (clean, written back) pages and turn readahead off, so that every read below misses.
    EXPECT_EQ(::fdatasync(file->native_handle()), 0);
    EXPECT_EQ(::posix_fadvise(file->native_handle(), 0, 0, POSIX_FADV_DONTNEED), 0);
    EXPECT_EQ(::posix_fadvise(file->native_handle(), 0, 0, POSIX_FADV_RANDOM), 0);
    char block[4096];
    constexpr int kReads = 100;
    for (int i = 0; i < kReads; ++i) {
      const std::size_t offset = static_cast<std::size_t>(i) * 160 * 1024 % (data.size() - sizeof(block));
      auto n = co_await file->read_at(MutableBuffer(block, sizeof(block)), offset);
      EXPECT_TRUE(n && *n == sizeof(block));
      EXPECT_EQ(std::memcmp(block, data.data() + offset, sizeof(block)), 0);
      if (i == 0 && file->cached_read_stats().inline_reads > 0) {
        std::printf("the page cache kept the file (fadvise did not evict it): back-off not checked\n");
        co_return;
      }
    }
    const fs::CachedReadStats& stats = file->cached_read_stats();
    std::printf("misses %llu, skipped %llu, inline %llu\n", static_cast<unsigned long long>(stats.misses),
                static_cast<unsigned long long>(stats.skipped), static_cast<unsigned long long>(stats.inline_reads));
    EXPECT_EQ(stats.misses + stats.skipped + stats.inline_reads + stats.partial_reads, static_cast<unsigned>(kReads));
    // Cold throughout: 8 misses, then one probe per back-off period (16, 32, 64 reads), about 11. A page
    // that stayed cached (fadvise evicts what it can, not always everything) lets a probe hit, which
    // resets the back-off: 8 more misses each time. Either way most reads must skip the attempt.
    EXPECT_LE(stats.misses, 30u) << "a failed preadv2 on most reads of a cold file";
    const std::uint64_t not_hits = kReads - stats.inline_reads - stats.partial_reads;
    EXPECT_GE(stats.skipped * 2, not_hits) << "most reads that found nothing cached must skip the attempt";
    // Once the data is cached, a probe hits and the File goes back to trying every read.
    std::string all(data.size(), '\0');
    (void)co_await file->read_exact_at(all, 0);
    for (int i = 0; i < 200; ++i) (void)co_await file->read_at(MutableBuffer(block, sizeof(block)), 0);
    const std::uint64_t inline_before = file->cached_read_stats().inline_reads;
    for (int i = 0; i < 10; ++i) (void)co_await file->read_at(MutableBuffer(block, sizeof(block)), 4096 * i);
    EXPECT_EQ(file->cached_read_stats().inline_reads - inline_before, 10u);
  }(path("cold"), data)));
}

TEST_P(FileTest, InlineReadsLetOtherTasksRun) {
  put("cached", bytes_of(1 << 16, 9));
  EXPECT_TRUE(run([](std::string name) -> Task<void> {
    auto file = co_await File::open(name);
    if (!file) co_return;
    bool other_ran = false;
    auto other = Worker::current()->spawn([](bool& flag) -> Task<void> {
      flag = true;
      co_return;
    }(other_ran));
    char block[512];
    int reads_before_other = 0;
    for (int i = 0; i < 1000 && !other_ran; ++i, ++reads_before_other) {
      (void)co_await file->read_at(MutableBuffer(block, sizeof(block)), 0);
    }
    EXPECT_TRUE(other_ran);
    EXPECT_LE(reads_before_other, 64) << "a task whose reads all hit the cache must not hold the worker";
    co_await std::move(other);
  }(path("cached"))));
}

TEST_P(FileTest, ManyConcurrentReads) {
  const std::string data = bytes_of(4 << 20, 10);
  put("shared", data);
  for (bool fast_path : {true, false}) {
    SCOPED_TRACE(fast_path ? "fast path" : "no fast path");
    EXPECT_TRUE(run([](std::string name, const std::string& data, bool fast_path) -> Task<void> {
      auto file = co_await File::open(name, OpenOptions{.cached_read_fast_path = fast_path});
      if (!file) { ADD_FAILURE() << file.error().message(); co_return; }
      std::vector<JoinHandle<int>> readers;
      for (int t = 0; t < 32; ++t) {
        readers.push_back(Worker::current()->spawn([](File& f, const std::string& data, int seed) -> Task<int> {
          std::mt19937 random(seed);
          std::vector<char> block(4096 + seed);
          int good = 0;
          for (int i = 0; i < 50; ++i) {
            const std::size_t offset = random() % data.size();
            auto n = co_await f.read_at(block, offset);
            const std::size_t expected = std::min(block.size(), data.size() - offset);
            if (n && *n == expected && std::memcmp(block.data(), data.data() + offset, expected) == 0) ++good;
          }
          co_return good;
        }(*file, data, t)));
      }
      for (auto& reader : readers) EXPECT_EQ(co_await std::move(reader), 50);
    }(path("shared"), data, fast_path)));
  }
}

TEST_P(FileTest, CancelledBeforeStartDoesNothing) {
  put("target", "original");
  EXPECT_TRUE(run([](std::string name) -> Task<void> {
    auto file = co_await File::open(name, OpenOptions{.write = true});
    if (!file) co_return;
    auto writer = Worker::current()->spawn([](File& f) -> Task<Result<std::size_t>> {
      co_return co_await f.write_at(std::string_view("CHANGED!"), 0);
    }(*file));
    writer.cancel();  // before it first runs: its write must never start
    auto written = co_await std::move(writer);
    EXPECT_TRUE(!written && written.error().is_cancelled());
    auto reader = Worker::current()->spawn([](File& f) -> Task<Result<std::size_t>> {
      char block[8];
      co_return co_await f.read_at(MutableBuffer(block, 8), 0);  // an inline hit would be possible
    }(*file));
    reader.cancel();
    auto read = co_await std::move(reader);
    EXPECT_TRUE(!read && read.error().is_cancelled()) << "a cancelled task's read must not start, inline or not";
    auto opener = Worker::current()->spawn([](std::string n) -> Task<Result<File>> {
      co_return co_await File::open(n);
    }(name));
    opener.cancel();
    auto opened = co_await std::move(opener);
    EXPECT_TRUE(!opened && opened.error().is_cancelled());
    // A deadline that has passed: ETIMEDOUT, nothing written.
    auto late = co_await timeout(std::chrono::nanoseconds(-1), file->write_at(std::string_view("LATE!!!!"), 0));
    EXPECT_TRUE(!late && late.error().is_timed_out()) << (late ? "wrote" : late.error().message());
    auto late_read = co_await timeout(std::chrono::nanoseconds(-1), file->read_at(MutableBuffer(nullptr, 0), 0));
    (void)late_read;
  }(path("target"))));
  std::string content(8, '\0');
  FILE* check = std::fopen(path("target").c_str(), "rb");
  ASSERT_NE(check, nullptr);
  ASSERT_EQ(std::fread(content.data(), 1, 8, check), 8u);
  std::fclose(check);
  EXPECT_EQ(content, "original");
}

// Cancelled while queued for the blocking pool (epoll; io_uring with the file opcodes off): taken back
// with ECANCELED; a deadline likewise with ETIMEDOUT. The pool's only thread is kept busy meanwhile.
TEST_P(FileTest, CancelWhileQueuedOnThePool) {
  if (!on_pool(GetParam())) GTEST_SKIP() << "file operations run as io_uring opcodes here (see CancelRacingTheKernel)";
  put("queued", "0123456789");
  internal::BlockingPool pool(1);
  internal::WorkerAccess::backend(*worker_).use_blocking_pool(pool);
  struct Gate {
    std::mutex mutex;
    std::condition_variable open_cv;
    bool open = false;
    bool entered = false;
  } gate;
  struct Blocker : internal::BlockingJob {
    Gate* gate;
  } blocker;
  blocker.gate = &gate;
  blocker.run = [](internal::BlockingJob& job) noexcept {
    Gate& g = *static_cast<Blocker&>(job).gate;
    std::unique_lock lock(g.mutex);
    g.entered = true;
    g.open_cv.notify_all();
    g.open_cv.wait(lock, [&] { return g.open; });
  };
  const std::string name = path("queued");
  // Open before blocking the pool (the open runs there too).
  EXPECT_TRUE(run([](std::string name, Gate& gate, internal::BlockingPool& pool, Blocker& blocker) -> Task<void> {
    auto file = co_await File::open(name, OpenOptions{.cached_read_fast_path = false});
    if (!file) { ADD_FAILURE() << file.error().message(); co_return; }
    pool.submit(blocker);
    {
      std::unique_lock lock(gate.mutex);
      gate.open_cv.wait(lock, [&] { return gate.entered; });
    }
    char block[10];
    auto reader = Worker::current()->spawn([](File& f, char* out) -> Task<Result<std::size_t>> {
      co_return co_await f.read_at(MutableBuffer(out, 10), 0);
    }(*file, block));
    co_await testing::settle();  // now queued behind the blocker
    EXPECT_FALSE(reader.is_finished());
    reader.cancel();
    auto read = co_await std::move(reader);
    EXPECT_TRUE(!read && read.error().is_cancelled()) << (read ? "read" : read.error().message());
    auto timed = co_await timeout(std::chrono::milliseconds(30), file->read_at(MutableBuffer(block, 10), 0));
    EXPECT_TRUE(!timed && timed.error().is_timed_out());
    {
      std::lock_guard lock(gate.mutex);
      gate.open = true;
    }
    gate.open_cv.notify_all();
    auto after = co_await file->read_at(MutableBuffer(block, 10), 0);
    EXPECT_TRUE(after && *after == 10u && std::memcmp(block, "0123456789", 10) == 0);
  }(name, gate, pool, blocker)));
  {
    std::lock_guard lock(gate.mutex);
    gate.open = true;
  }
  gate.open_cv.notify_all();
  worker_.reset();  // before the pool it uses
}

// Cancellation racing reads that are in the kernel or on a pool thread: each ends with ECANCELED (it never
// ran) or with its real, correct bytes; nothing else, and nothing hangs.
TEST_P(FileTest, CancelRacingTheKernel) {
  const std::string data = bytes_of(1 << 20, 11);
  put("race", data);
  EXPECT_TRUE(run([](std::string name, const std::string& data) -> Task<void> {
    auto file = co_await File::open(name, OpenOptions{.cached_read_fast_path = false});
    if (!file) co_return;
    int cancelled = 0, completed = 0;
    for (int i = 0; i < 200; ++i) {
      std::vector<char> block(64 * 1024);
      const std::size_t offset = (i * 4099) % (data.size() - block.size());
      auto reader = Worker::current()->spawn([](File& f, std::vector<char>& out, std::size_t at) -> Task<Result<std::size_t>> {
        co_return co_await f.read_at(out, at);
      }(*file, block, offset));
      for (int turns = i % 3; turns > 0; --turns) co_await yield();
      reader.cancel();
      auto n = co_await std::move(reader);
      if (!n) {
        EXPECT_TRUE(n.error().is_cancelled()) << n.error().message();
        ++cancelled;
      } else {
        EXPECT_EQ(*n, block.size());
        EXPECT_EQ(std::memcmp(block.data(), data.data() + offset, *n), 0) << "a cancelled read that ran reports its real bytes";
        ++completed;
      }
    }
    std::printf("cancel race: %d cancelled, %d completed with their bytes\n", cancelled, completed);
  }(path("race"), data)));
}

INSTANTIATE_TEST_SUITE_P(Backends, FileTest,
                         ::testing::Values(Config{BackendChoice::kIoUring, true}, Config{BackendChoice::kIoUring, false},
                                           Config{BackendChoice::kEpoll, true}),
                         config_name);

// Faults injected below the File: short transfers, EINTR, EACCES.
class FileFaultTest : public FileTest {};

TEST_P(FileFaultTest, ShortTransfersLoseNothing) {
  faults_->limit_transfer(1000);  // every pread/pwrite moves at most 1000 bytes
  EXPECT_TRUE(run([](std::string name) -> Task<void> {
    const std::string data = bytes_of(50'000, 12);
    auto file = co_await File::open(name, OpenOptions{.write = true, .create = true, .cached_read_fast_path = false});
    if (!file) co_return;
    auto written = co_await file->write_all_at(data, 0);
    EXPECT_TRUE(written && written.transferred() == data.size());
    auto one = co_await file->write_at(data, 0);
    EXPECT_TRUE(one && *one == 1000u) << "a single write reports its short count";
    std::string back(data.size(), '\0');
    auto read = co_await file->read_exact_at(back, 0);
    EXPECT_TRUE(read) << read.error().message();
    EXPECT_TRUE(back == data);
    auto short_read = co_await file->read_at(back, 0);
    EXPECT_TRUE(short_read && *short_read == 1000u);
    auto whole = co_await fs::read_file(name);  // read_file loops over short reads (its fast path aside)
    EXPECT_TRUE(whole && *whole == data);
  }(path("short"))));
}

TEST_P(FileFaultTest, InterruptedCallsAreRetried) {
  EXPECT_TRUE(run([](std::string name, FaultInjectionBackend& faults) -> Task<void> {
    faults.fail_nth(OpCode::kOpenAt, 1, EINTR);
    auto file = co_await File::open(name, OpenOptions{.write = true, .create = true, .cached_read_fast_path = false});
    if (!file) { ADD_FAILURE() << file.error().message(); co_return; }
    faults.limit_transfer(5);  // several writes, so that the EINTRs land in the middle of write_all_at
    faults.fail_nth(OpCode::kWriteAt, 1, EINTR);
    faults.fail_nth(OpCode::kWriteAt, 3, EINTR);
    auto written = co_await file->write_all_at(std::string_view("interrupted but whole"), 0);
    EXPECT_TRUE(written) << written.error().message();
    faults.fail_nth(OpCode::kReadAt, 1, EINTR);
    char back[21];
    auto read = co_await file->read_exact_at(MutableBuffer(back, sizeof(back)), 0);
    EXPECT_TRUE(read && std::memcmp(back, "interrupted but whole", 21) == 0);
    faults.fail_nth(OpCode::kFsync, 1, EINTR);
    EXPECT_TRUE(co_await file->fsync());
    EXPECT_GE(faults.injected(), 5);
  }(path("eintr"), *faults_)));
}

TEST_P(FileFaultTest, InjectedErrorsNameThePath) {
  EXPECT_TRUE(run([](std::string dir, FaultInjectionBackend& faults) -> Task<void> {
    faults.fail_nth(OpCode::kOpenAt, 1, EACCES);
    auto denied = co_await File::open(dir + "/anything");
    EXPECT_TRUE(!denied && denied.error().code() == EACCES);
    if (!denied) { EXPECT_EQ(denied.error().message(), "openat " + dir + "/anything: Permission denied"); }
    faults.fail_nth(OpCode::kReadAt, 1, EIO);
    EXPECT_TRUE(co_await fs::write_file(dir + "/f", std::string_view("abc")));
    auto file = co_await File::open(dir + "/f", OpenOptions{.cached_read_fast_path = false});
    if (!file) co_return;
    char byte;
    auto failed = co_await file->read_at(MutableBuffer(&byte, 1), 0);
    EXPECT_TRUE(!failed && failed.error().code() == EIO);
    if (!failed) { EXPECT_EQ(failed.error().message(), "pread: Input/output error"); }
  }(dir_, *faults_)));
}

INSTANTIATE_TEST_SUITE_P(Backends, FileFaultTest,
                         ::testing::Values(Config{BackendChoice::kIoUring, true}, Config{BackendChoice::kIoUring, false},
                                           Config{BackendChoice::kEpoll, true}),
                         config_name);

}  // namespace
}  // namespace surge
