// The backend's file, path and message operations (OpCode::kSendMsg ... kMkdirAt), exercised directly on
// io_uring with its opcodes, io_uring with them switched off (the blocking pool, as on an older kernel),
// and epoll (always the blocking pool): same results, same errors, cancellation as operation.h states.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "runtime/backend/backend.h"
#include "runtime/backend/backend_factory.h"
#include "runtime/internal/blocking_pool.h"

namespace surge {
namespace {

using std::chrono::milliseconds;

struct TestOperation : Operation {
  int completions = 0;
};

void count_completion(Operation& operation) noexcept { ++static_cast<TestOperation&>(operation).completions; }

TestOperation make_op(OpCode code, int fd) {
  TestOperation operation;
  operation.opcode = code;
  operation.fd = fd;
  operation.complete = &count_completion;
  return operation;
}

enum class Path { kIoUringOpcodes, kIoUringPool, kEpollPool };

std::string path_name(const ::testing::TestParamInfo<Path>& info) {
  switch (info.param) {
    case Path::kIoUringOpcodes: return "IoUringOpcodes";
    case Path::kIoUringPool: return "IoUringPool";
    case Path::kEpollPool: return "EpollPool";
  }
  return "unknown";
}

class FileOperationsTest : public ::testing::TestWithParam<Path> {
 protected:
  void SetUp() override {
    BackendOptions options;
    options.allow_file_opcodes = GetParam() != Path::kIoUringPool;
    auto made = make_backend(GetParam() == Path::kEpollPool ? BackendChoice::kEpoll : BackendChoice::kIoUring, options);
    if (!made && GetParam() != Path::kEpollPool) GTEST_SKIP() << "io_uring unavailable: " << made.error().message();
    ASSERT_TRUE(made) << made.error().message();
    backend_ = std::move(*made);
    backend_->use_blocking_pool(pool_);
    char pattern[] = "/tmp/surge_file_operations_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory_ = pattern;
  }

  void TearDown() override {
    if (!backend_) return;
    backend_->cancel_all();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (backend_->in_flight() > 0 && std::chrono::steady_clock::now() < deadline) backend_->poll(milliseconds(10));
    EXPECT_EQ(backend_->in_flight(), 0u);
    backend_.reset();
    if (!directory_.empty()) std::system(("rm -rf " + directory_).c_str());
  }

  // Submits `operation` and polls until it completes; returns its result.
  int run(TestOperation& operation) {
    backend_->submit(operation);
    return wait(operation);
  }
  int wait(TestOperation& operation) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (operation.completions == 0 && std::chrono::steady_clock::now() < deadline) backend_->poll(milliseconds(100));
    EXPECT_EQ(operation.completions, 1);
    return operation.result;
  }

  int open(const std::string& path, int flags, unsigned mode = 0644) {
    PathOperands operands{.path = path.c_str(), .flags = flags, .mode = mode};
    TestOperation operation = make_op(OpCode::kOpenAt, AT_FDCWD);
    operation.buffer = &operands;
    return run(operation);
  }

  internal::BlockingPool pool_{4};
  std::unique_ptr<Backend> backend_;
  std::string directory_;
};

TEST_P(FileOperationsTest, WriteThenReadAtOffsets) {
  const int fd = open(directory_ + "/data", O_RDWR | O_CREAT | O_EXCL);
  ASSERT_GE(fd, 0) << std::strerror(-fd);
  EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0) << "openat must add O_CLOEXEC";
  const std::string text = "hello, file";
  TestOperation write = make_op(OpCode::kWriteAt, fd);
  write.buffer = const_cast<char*>(text.data());
  write.length = text.size();
  write.offset = 100;
  EXPECT_EQ(run(write), static_cast<int>(text.size()));

  std::array<char, 64> bytes{};
  TestOperation read = make_op(OpCode::kReadAt, fd);
  read.buffer = bytes.data();
  read.length = bytes.size();
  read.offset = 100;
  EXPECT_EQ(run(read), static_cast<int>(text.size())) << "a short read at end of file";
  EXPECT_EQ(std::string(bytes.data(), text.size()), text);

  TestOperation at_end = make_op(OpCode::kReadAt, fd);
  at_end.buffer = bytes.data();
  at_end.length = bytes.size();
  at_end.offset = 4096;
  EXPECT_EQ(run(at_end), 0) << "past the end: 0, not an error";
  close(fd);
}

TEST_P(FileOperationsTest, VectorForms) {
  const int fd = open(directory_ + "/vector", O_RDWR | O_CREAT);
  ASSERT_GE(fd, 0);
  char first[] = "abc";
  char second[] = "defgh";
  std::array<iovec, 2> out{{{first, 3}, {second, 5}}};
  TestOperation write = make_op(OpCode::kWritevAt, fd);
  write.buffer = out.data();
  write.length = out.size();
  write.offset = 1;
  EXPECT_EQ(run(write), 8);
  std::array<char, 2> head{};
  std::array<char, 10> tail{};
  std::array<iovec, 2> in{{{head.data(), head.size()}, {tail.data(), tail.size()}}};
  TestOperation read = make_op(OpCode::kReadvAt, fd);
  read.buffer = in.data();
  read.length = in.size();
  read.offset = 0;
  EXPECT_EQ(run(read), 9);
  EXPECT_EQ(head[0], '\0') << "the hole before offset 1 reads as zero";
  EXPECT_EQ(head[1], 'a');
  EXPECT_EQ(std::string(tail.data(), 7), "bcdefgh");
  close(fd);
}

TEST_P(FileOperationsTest, FsyncFallocateStatx) {
  const std::string path = directory_ + "/sized";
  const int fd = open(path, O_RDWR | O_CREAT);
  ASSERT_GE(fd, 0);
  TestOperation allocate = make_op(OpCode::kFallocate, fd);
  allocate.offset = 0;
  allocate.length = 1 << 20;
  EXPECT_EQ(run(allocate), 0);
  TestOperation sync = make_op(OpCode::kFsync, fd);
  EXPECT_EQ(run(sync), 0);
  TestOperation datasync = make_op(OpCode::kFsync, fd);
  datasync.message_flags = kFsyncDataOnly;
  EXPECT_EQ(run(datasync), 0);

  struct statx status {};
  PathOperands operands{.path = path.c_str(), .flags = 0, .mode = STATX_SIZE | STATX_TYPE, .statx_out = &status};
  TestOperation stat = make_op(OpCode::kStatx, AT_FDCWD);
  stat.buffer = &operands;
  EXPECT_EQ(run(stat), 0);
  EXPECT_EQ(status.stx_size, 1u << 20);
  EXPECT_TRUE(S_ISREG(status.stx_mode));
  close(fd);
}

TEST_P(FileOperationsTest, PathOperationsAndTheirErrors) {
  EXPECT_EQ(open(directory_ + "/missing", O_RDONLY), -ENOENT);
  EXPECT_EQ(open(directory_, O_WRONLY), -EISDIR);

  const std::string made = directory_ + "/made";
  PathOperands mkdir_operands{.path = made.c_str(), .mode = 0755};
  TestOperation mkdir = make_op(OpCode::kMkdirAt, AT_FDCWD);
  mkdir.buffer = &mkdir_operands;
  EXPECT_EQ(run(mkdir), 0);
  TestOperation again = make_op(OpCode::kMkdirAt, AT_FDCWD);
  again.buffer = &mkdir_operands;
  EXPECT_EQ(run(again), -EEXIST);

  const std::string moved = directory_ + "/moved";
  PathOperands rename_operands{.path = made.c_str(), .new_path = moved.c_str()};
  TestOperation rename = make_op(OpCode::kRenameAt, AT_FDCWD);
  rename.buffer = &rename_operands;
  EXPECT_EQ(run(rename), 0);
  struct stat status {};
  EXPECT_EQ(stat(moved.c_str(), &status), 0);

  PathOperands unlink_file{.path = moved.c_str()};
  TestOperation not_a_file = make_op(OpCode::kUnlinkAt, AT_FDCWD);
  not_a_file.buffer = &unlink_file;
  EXPECT_EQ(run(not_a_file), -EISDIR) << "unlink of a directory without AT_REMOVEDIR";
  PathOperands unlink_dir{.path = moved.c_str(), .flags = AT_REMOVEDIR};
  TestOperation remove = make_op(OpCode::kUnlinkAt, AT_FDCWD);
  remove.buffer = &unlink_dir;
  EXPECT_EQ(run(remove), 0);
  EXPECT_NE(stat(moved.c_str(), &status), 0);
}

TEST_P(FileOperationsTest, RelativeToADirectoryFd) {
  const int directory = open(directory_, O_RDONLY | O_DIRECTORY);
  ASSERT_GE(directory, 0);
  PathOperands operands{.path = "relative", .flags = O_RDWR | O_CREAT, .mode = 0600};
  TestOperation create = make_op(OpCode::kOpenAt, directory);
  create.buffer = &operands;
  const int fd = run(create);
  EXPECT_GE(fd, 0);
  struct stat status {};
  EXPECT_EQ(stat((directory_ + "/relative").c_str(), &status), 0);
  if (fd >= 0) close(fd);
  close(directory);
}

TEST_P(FileOperationsTest, DatagramsThroughSendmsgAndRecvmsgReportTruncation) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  char payload[] = "0123456789";
  iovec out{payload, 10};
  msghdr sent{};
  sent.msg_iov = &out;
  sent.msg_iovlen = 1;
  TestOperation send = make_op(OpCode::kSendMsg, fds[0]);
  send.buffer = &sent;
  EXPECT_EQ(run(send), 10);

  char small[4];
  iovec in{small, sizeof(small)};
  msghdr received{};
  received.msg_iov = &in;
  received.msg_iovlen = 1;
  TestOperation recv = make_op(OpCode::kRecvMsg, fds[1]);
  recv.buffer = &received;
  EXPECT_EQ(run(recv), 4);
  EXPECT_NE(received.msg_flags & MSG_TRUNC, 0) << "a datagram cut to the buffer must say so";
  EXPECT_EQ(std::string(small, 4), "0123");

  // A recvmsg waits for the next datagram (epoll: readiness; io_uring: its poll).
  received.msg_flags = 0;
  TestOperation waiting = make_op(OpCode::kRecvMsg, fds[1]);
  waiting.buffer = &received;
  backend_->submit(waiting);
  backend_->poll(milliseconds(0));
  EXPECT_EQ(waiting.completions, 0);
  ASSERT_EQ(::send(fds[0], "ab", 2, 0), 2);
  EXPECT_EQ(wait(waiting), 2);
  EXPECT_EQ(received.msg_flags & MSG_TRUNC, 0);
  close(fds[0]);
  close(fds[1]);
}

// A FIFO's open(O_RDONLY) blocks until a writer opens it: lanes (or io-wq workers) stay busy on demand.
TEST_P(FileOperationsTest, CancelTakesBackWhatHasNotStartedAndLetsTheRestFinish) {
  if (GetParam() == Path::kIoUringOpcodes) {
    GTEST_SKIP() << "io_uring's openat tries non-blocking first, which opens a FIFO without waiting for a writer";
  }
  const std::string fifo = directory_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  constexpr int kBlocked = 6;  // more than the pool's lanes
  std::vector<TestOperation> opens(kBlocked, make_op(OpCode::kOpenAt, AT_FDCWD));
  PathOperands operands{.path = fifo.c_str(), .flags = O_RDONLY};
  for (TestOperation& operation : opens) {
    operation.buffer = &operands;
    backend_->submit(operation);
  }
  std::this_thread::sleep_for(milliseconds(50));  // let the lanes start theirs
  backend_->poll(milliseconds(0));
  for (const TestOperation& operation : opens) EXPECT_EQ(operation.completions, 0) << "no writer yet";
  backend_->cancel(opens.back());
  // A writer releases every open that is running; what was taken back stays cancelled.
  const int writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(writer, 0);
  int cancelled = 0;
  for (TestOperation& operation : opens) {
    const int result = wait(operation);
    if (result >= 0) {
      close(result);
    } else {
      EXPECT_EQ(result, -ECANCELED);
      ++cancelled;
    }
  }
  // Four lanes run four opens; the cancelled one had not started.
  EXPECT_EQ(cancelled, 1);
  EXPECT_EQ(opens.back().result, -ECANCELED);
  close(writer);
}

// Random reads of random sizes at random offsets, random cancellations: every operation completes exactly
// once, with the file's bytes or -ECANCELED. Bounded; prints its seed.
TEST_P(FileOperationsTest, RandomReadsAndCancellationsStress) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 random(seed);
  const int fd = open(directory_ + "/stress", O_RDWR | O_CREAT);
  ASSERT_GE(fd, 0);
  std::vector<unsigned char> content(1 << 16);
  for (auto& byte : content) byte = static_cast<unsigned char>(random());
  ASSERT_EQ(pwrite(fd, content.data(), content.size(), 0), static_cast<ssize_t>(content.size()));
  constexpr int kOperations = 1024;  // lanes take turns (FileOffload::kOperationsPerTurn)
  std::vector<TestOperation> reads(kOperations, make_op(OpCode::kReadAt, fd));
  std::vector<std::vector<unsigned char>> buffers(kOperations);
  for (int i = 0; i < kOperations; ++i) {
    buffers[i].resize(1 + random() % 8192);
    reads[i].buffer = buffers[i].data();
    reads[i].length = buffers[i].size();
    reads[i].offset = random() % content.size();
    backend_->submit(reads[i]);
    if (random() % 4 == 0) backend_->cancel(reads[random() % (i + 1)]);
    if (random() % 8 == 0) backend_->poll(milliseconds(0));
  }
  for (int i = 0; i < kOperations; ++i) {
    const int result = wait(reads[i]);
    if (result == -ECANCELED) continue;
    ASSERT_GE(result, 0) << std::strerror(-result);
    const std::size_t expected = std::min(buffers[i].size(), content.size() - reads[i].offset);
    ASSERT_EQ(static_cast<std::size_t>(result), expected);
    EXPECT_EQ(0, std::memcmp(buffers[i].data(), content.data() + reads[i].offset, expected)) << "read " << i;
  }
  close(fd);
}

INSTANTIATE_TEST_SUITE_P(Paths, FileOperationsTest,
                         ::testing::Values(Path::kIoUringOpcodes, Path::kIoUringPool, Path::kEpollPool), path_name);

}  // namespace
}  // namespace surge
