// The Backend contract, exercised directly on every backend with socketpairs and pipes: completions,
// ordering, cancellation, wake-ups, timeouts, a full submission queue, and errors as values.
#include "runtime/backend/backend.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "runtime/backend/backend_factory.h"
#include "runtime/backend/io_uring/io_uring_backend.h"
#include "runtime/testing/socket_pair.h"

namespace surge {
namespace {

using std::chrono::milliseconds;

struct TestOperation : Operation {
  bool done = false;
  int completions = 0;
};

void mark_done(Operation& operation) noexcept {
  auto& self = static_cast<TestOperation&>(operation);
  self.done = true;
  ++self.completions;
}

TestOperation make_op(OpCode code, int fd, void* data, std::size_t size) {
  TestOperation operation;
  operation.opcode = code;
  operation.fd = fd;
  operation.buffer = data;
  operation.length = size;
  operation.complete = &mark_done;
  return operation;
}

using testing::SocketPair;

// `count` socketpairs with one single-byte recv prepared on each (not submitted).
struct ManyRecvs {
  explicit ManyRecvs(int count) : pairs(static_cast<std::size_t>(count)), bytes(static_cast<std::size_t>(count), 0) {
    operations.reserve(pairs.size());
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      operations.push_back(make_op(OpCode::kRecv, pairs[i].fds[0], &bytes[i], 1));
    }
  }
  std::vector<SocketPair> pairs;
  std::vector<char> bytes;
  std::vector<TestOperation> operations;
};

class BackendContractTest : public ::testing::TestWithParam<BackendChoice> {
 protected:
  void SetUp() override { create({}); }

  void create(const BackendOptions& options) {
    auto made = make_backend(GetParam(), options);
    if (!made && GetParam() == BackendChoice::kIoUring &&
        (made.error().code() == EPERM || made.error().code() == ENOSYS || made.error().code() == ENOTSUP)) {
      GTEST_SKIP() << "io_uring unavailable: " << made.error().message();
    }
    ASSERT_TRUE(made) << made.error().message();
    backend_ = std::move(*made);
  }

  // Polls until `operation` completes or a generous bound passes.
  bool wait_for(const TestOperation& operation) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!operation.done && std::chrono::steady_clock::now() < deadline) backend_->poll(milliseconds(100));
    return operation.done;
  }

  void TearDown() override {
    if (!backend_) return;
    backend_->cancel_all();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (backend_->in_flight() > 0 && std::chrono::steady_clock::now() < deadline) backend_->poll(milliseconds(10));
    EXPECT_EQ(backend_->in_flight(), 0u);
  }

  std::unique_ptr<Backend> backend_;
};

TEST_P(BackendContractTest, KindMatchesChoice) {
  EXPECT_EQ(backend_->kind(), GetParam() == BackendChoice::kIoUring ? BackendKind::kIoUring : BackendKind::kEpoll);
}

TEST_P(BackendContractTest, RecvCompletesWhenDataArrives) {
  SocketPair pair;
  std::array<char, 16> buffer{};
  TestOperation recv = make_op(OpCode::kRecv, pair.fds[0], buffer.data(), buffer.size());
  backend_->submit(recv);
  EXPECT_EQ(backend_->in_flight(), 1u);
  backend_->poll(milliseconds(0));
  EXPECT_FALSE(recv.done) << "completed before any data was sent";
  ASSERT_EQ(write(pair.fds[1], "hello", 5), 5);
  ASSERT_TRUE(wait_for(recv));
  EXPECT_EQ(recv.result, 5);
  EXPECT_EQ(std::string(buffer.data(), 5), "hello");
  EXPECT_EQ(recv.completions, 1);
  EXPECT_EQ(backend_->in_flight(), 0u);
}

TEST_P(BackendContractTest, SubmitNeverCompletesInline) {
  SocketPair pair;
  ASSERT_EQ(write(pair.fds[1], "x", 1), 1);
  char byte = 0;
  TestOperation recv = make_op(OpCode::kRecv, pair.fds[0], &byte, 1);
  backend_->submit(recv);
  EXPECT_FALSE(recv.done);  // even though data is ready, the result arrives through poll()
  ASSERT_TRUE(wait_for(recv));
  EXPECT_EQ(recv.result, 1);
  EXPECT_EQ(byte, 'x');
}

TEST_P(BackendContractTest, SameFdSameDirectionCompletesInOrder) {
  SocketPair pair;
  char first = 0;
  char second = 0;
  TestOperation recv1 = make_op(OpCode::kRecv, pair.fds[0], &first, 1);
  TestOperation recv2 = make_op(OpCode::kRecv, pair.fds[0], &second, 1);
  backend_->submit(recv1);
  backend_->submit(recv2);
  ASSERT_EQ(write(pair.fds[1], "ab", 2), 2);
  ASSERT_TRUE(wait_for(recv1));
  ASSERT_TRUE(wait_for(recv2));
  EXPECT_EQ(first, 'a');
  EXPECT_EQ(second, 'b');
}

TEST_P(BackendContractTest, CancelWaitingRecv) {
  SocketPair pair;
  char byte = 0;
  TestOperation recv = make_op(OpCode::kRecv, pair.fds[0], &byte, 1);
  backend_->submit(recv);
  backend_->poll(milliseconds(0));
  backend_->cancel(recv);
  ASSERT_TRUE(wait_for(recv));
  EXPECT_EQ(recv.result, -ECANCELED);
  EXPECT_EQ(recv.completions, 1);
  backend_->cancel(recv);  // cancelling a finished operation is harmless
  backend_->poll(milliseconds(0));
  EXPECT_EQ(recv.completions, 1);
}

TEST_P(BackendContractTest, CancelRacingCompletionLosesNoData) {
  for (int round = 0; round < 50; ++round) {
    SocketPair pair;
    ASSERT_EQ(write(pair.fds[1], "z", 1), 1);
    char byte = 0;
    TestOperation recv = make_op(OpCode::kRecv, pair.fds[0], &byte, 1);
    backend_->submit(recv);
    backend_->cancel(recv);
    ASSERT_TRUE(wait_for(recv));
    if (recv.result == 1) {
      EXPECT_EQ(byte, 'z');
    } else {
      // Cancelled before it ran: the byte must still be in the socket.
      EXPECT_EQ(recv.result, -ECANCELED);
      char again = 0;
      EXPECT_EQ(read(pair.fds[0], &again, 1), 1);
      EXPECT_EQ(again, 'z');
    }
  }
}

TEST_P(BackendContractTest, WakeFromAnotherThreadEndsAnUnboundedWait) {
  const auto start = std::chrono::steady_clock::now();
  std::thread waker([this] {
    std::this_thread::sleep_for(milliseconds(50));
    backend_->wake();
  });
  backend_->poll(std::nullopt);  // would block forever without the wake-up
  waker.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_P(BackendContractTest, WakeBeforePollIsNotLost) {
  backend_->wake();
  const auto start = std::chrono::steady_clock::now();
  backend_->poll(std::chrono::seconds(5));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

TEST_P(BackendContractTest, PollTimesOut) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(backend_->poll(milliseconds(30)), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(25));
}

TEST_P(BackendContractTest, PollDeliversAtMostTheBudget) {
  BackendOptions options;
  options.max_completions_per_poll = 4;
  create(options);
  constexpr int kCount = 10;
  ManyRecvs recvs(kCount);
  for (auto& pair : recvs.pairs) ASSERT_EQ(write(pair.fds[1], "b", 1), 1);
  for (auto& operation : recvs.operations) backend_->submit(operation);
  int delivered = 0;
  int polls = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (delivered < kCount && std::chrono::steady_clock::now() < deadline) {
    const int now = backend_->poll(milliseconds(100));
    EXPECT_LE(now, 4) << "poll delivered more than its budget";
    delivered += now;
    ++polls;
  }
  EXPECT_EQ(delivered, kCount);
  EXPECT_GE(polls, 3);
  for (const auto& operation : recvs.operations) EXPECT_EQ(operation.result, 1);
}

TEST_P(BackendContractTest, CloseReleasesTheFd) {
  SocketPair pair;
  TestOperation close_op = make_op(OpCode::kClose, pair.fds[0], nullptr, 0);
  backend_->submit(close_op);
  ASSERT_TRUE(wait_for(close_op));
  EXPECT_EQ(close_op.result, 0);
  EXPECT_EQ(fcntl(pair.fds[0], F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
  pair.fds[0] = -1;
  char byte = 0;
  ASSERT_EQ(read(pair.fds[1], &byte, 1), 0) << "the peer must see the close as end of stream";
}

// 64 operations through a 4-entry SQ (flushed and retried when full) whose completions arrive together
// into an 8-entry CQ (they spill into the kernel's overflow list and are drained from there).
TEST_P(BackendContractTest, FullQueuesLoseNothing) {
  BackendOptions tiny;
  tiny.submission_queue_entries = 4;
  tiny.completion_queue_entries = 8;
  create(tiny);
  constexpr int kCount = 64;
  ManyRecvs recvs(kCount);
  auto& [pairs, bytes, operations] = recvs;
  for (auto& operation : operations) backend_->submit(operation);
  EXPECT_EQ(backend_->in_flight(), static_cast<std::size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    const char value = static_cast<char>('A' + i % 26);
    ASSERT_EQ(write(pairs[i].fds[1], &value, 1), 1);
  }
  for (auto& operation : operations) ASSERT_TRUE(wait_for(operation));
  for (int i = 0; i < kCount; ++i) {
    EXPECT_EQ(operations[i].result, 1);
    EXPECT_EQ(bytes[i], static_cast<char>('A' + i % 26));
  }
}

TEST_P(BackendContractTest, NonBlockingPipeReadWaitsForData) {
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC), 0);
  char byte = 0;
  TestOperation read_op = make_op(OpCode::kRead, pipe_fds[0], &byte, 1);
  backend_->submit(read_op);
  backend_->poll(milliseconds(10));
  EXPECT_FALSE(read_op.done) << "result " << read_op.result;
  ASSERT_EQ(write(pipe_fds[1], "p", 1), 1);
  ASSERT_TRUE(wait_for(read_op));
  EXPECT_EQ(read_op.result, 1);
  EXPECT_EQ(byte, 'p');
  backend_->forget_fd(pipe_fds[0]);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST_P(BackendContractTest, ErrorsComeBackAsNegativeErrno) {
  char byte = 0;
  TestOperation bad_fd = make_op(OpCode::kRecv, 1'000'000, &byte, 1);
  backend_->submit(bad_fd);
  ASSERT_TRUE(wait_for(bad_fd));
  EXPECT_EQ(bad_fd.result, -EBADF);

  SocketPair pair;
  close(pair.fds[1]);
  pair.fds[1] = -1;
  TestOperation send_to_closed = make_op(OpCode::kSend, pair.fds[0], &byte, 1);
  backend_->submit(send_to_closed);  // MSG_NOSIGNAL: an error value, not SIGPIPE
  ASSERT_TRUE(wait_for(send_to_closed));
  EXPECT_EQ(send_to_closed.result, -EPIPE);
}

TEST(IoUringSetupTest, FallsBackWhenDeferTaskrunIsNotAllowed) {
  BackendOptions options;
  options.allow_defer_taskrun = false;
  auto backend = IoUringBackend::create(options);
  if (!backend && (backend.error().code() == EPERM || backend.error().code() == ENOSYS)) {
    GTEST_SKIP() << "io_uring unavailable: " << backend.error().message();
  }
  ASSERT_TRUE(backend) << backend.error().message();
  EXPECT_EQ((*backend)->setup_flags() & IORING_SETUP_DEFER_TASKRUN, 0u);
}

TEST_P(BackendContractTest, CountsSubmissionsAndCompletions) {
  ManyRecvs recvs(8);
  for (auto& recv : recvs.operations) backend_->submit(recv);
  for (auto& pair : recvs.pairs) ASSERT_EQ(write(pair.fds[1], "z", 1), 1);
  for (auto& recv : recvs.operations) ASSERT_TRUE(wait_for(recv));
  const BackendCounters counters = backend_->counters();
  EXPECT_GE(counters.operations_submitted, 8u);
  EXPECT_GE(counters.operations_completed, 8u);
  EXPECT_GE(counters.wait_syscalls, 1u);
  if (backend_->kind() == BackendKind::kIoUring) {
    EXPECT_GE(counters.sqes_submitted, 8u);
    EXPECT_GE(counters.cqes_reaped, 8u);
  } else {
    EXPECT_EQ(counters.sqes_submitted, 0u);
    EXPECT_GE(counters.io_syscalls, 8u);
  }
  EXPECT_EQ(counters.lent_buffers_exhausted, 0u);
}

TEST_P(BackendContractTest, FeaturesDescribeTheBackend) {
  const BackendFeatures features = backend_->features();
  EXPECT_EQ(features.kind, backend_->kind());
  const std::string line = features.describe();
  if (features.kind == BackendKind::kEpoll) {
    EXPECT_EQ(line, "epoll");
    return;
  }
  EXPECT_EQ(line.rfind("io_uring: setup ", 0), 0u) << line;
  EXPECT_NE(line.find("; kernel offers "), std::string::npos) << line;
  EXPECT_NE(features.kernel_features & IORING_FEAT_NODROP, 0u) << "every 5.5+ kernel reports NODROP";
  EXPECT_TRUE(!features.multishot_recv || features.buffer_rings) << "6.0 features imply 5.19 ones";
}

// Every flag set of the ladder, reached by making set-up treat the better ones as refused: each ring
// that results must still work.
TEST(IoUringSetupTest, LadderStepsDownWhenTheKernelRefusesAFlag) {
  struct Step {
    unsigned refused;
    unsigned expected;
  };
  const Step steps[] = {
      {0, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN},
      {IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_COOP_TASKRUN},
      {IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN, 0},
  };
  for (const Step& step : steps) {
    SCOPED_TRACE(::testing::Message() << "refused flags 0x" << std::hex << step.refused);
    BackendOptions options;
    options.refuse_setup_flags_for_testing = step.refused;
    auto backend = IoUringBackend::create(options);
    if (!backend && (backend.error().code() == EPERM || backend.error().code() == ENOSYS)) {
      GTEST_SKIP() << "io_uring unavailable: " << backend.error().message();
    }
    ASSERT_TRUE(backend) << backend.error().message();
    const unsigned ladder_bits = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN;
    if (step.refused == 0 && ((*backend)->setup_flags() & ladder_bits) != step.expected) {
      GTEST_SKIP() << "this kernel lacks DEFER_TASKRUN (6.1); the forced steps below still run";
    }
    EXPECT_EQ((*backend)->setup_flags() & ladder_bits, step.expected);
    EXPECT_EQ((*backend)->features().setup_flags, (*backend)->setup_flags());
    SocketPair pair;
    char byte = 0;
    TestOperation recv = make_op(OpCode::kRecv, pair.fds[0], &byte, 1);
    (*backend)->submit(recv);
    ASSERT_EQ(write(pair.fds[1], "k", 1), 1);
    for (int i = 0; i < 50 && !recv.done; ++i) (*backend)->poll(milliseconds(100));
    EXPECT_TRUE(recv.done);
    EXPECT_EQ(recv.result, 1);
  }
}

// SQPOLL where the kernel allows it (else the ordinary ladder): either way the ring must work.
TEST(IoUringSetupTest, SqpollRingWorksOrFallsBack) {
  BackendOptions options;
  options.sqpoll = true;
  options.submission_queue_entries = 4;  // 64 operations below: the SQ fills, and the worker must wait
  auto backend = IoUringBackend::create(options);
  if (!backend && (backend.error().code() == EPERM || backend.error().code() == ENOSYS)) {
    GTEST_SKIP() << "io_uring unavailable: " << backend.error().message();
  }
  ASSERT_TRUE(backend) << backend.error().message();
  if (((*backend)->setup_flags() & IORING_SETUP_SQPOLL) == 0) {
    std::printf("SQPOLL refused here; fell back to setup flags 0x%x\n", (*backend)->setup_flags());
  }
  EXPECT_EQ((*backend)->setup_flags() & IORING_SETUP_DEFER_TASKRUN, 0u) << "SQPOLL excludes DEFER_TASKRUN";
  for (int round = 0; round < 20; ++round) {
    SocketPair pair;
    char byte = 0;
    TestOperation recv = make_op(OpCode::kRecv, pair.fds[0], &byte, 1);
    (*backend)->submit(recv);
    ASSERT_EQ(write(pair.fds[1], "q", 1), 1);
    for (int i = 0; i < 50 && !recv.done; ++i) (*backend)->poll(milliseconds(100));
    ASSERT_TRUE(recv.done);
    EXPECT_EQ(recv.result, 1);
    EXPECT_EQ(byte, 'q');
  }
  ManyRecvs recvs(64);
  for (auto& recv : recvs.operations) (*backend)->submit(recv);
  for (auto& pair : recvs.pairs) ASSERT_EQ(write(pair.fds[1], "s", 1), 1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto all_done = [&] {
    return std::all_of(recvs.operations.begin(), recvs.operations.end(), [](const TestOperation& op) { return op.done; });
  };
  while (!all_done() && std::chrono::steady_clock::now() < deadline) (*backend)->poll(milliseconds(50));
  EXPECT_TRUE(all_done()) << "an operation was lost while the SQ was full";
  for (const auto& recv : recvs.operations) EXPECT_EQ(recv.result, 1);
}

// A ring is driven only by its creating thread; any other thread is stopped loudly rather than getting
// EEXIST or completions that never come.
TEST(IoUringSetupTest, PollFromAnotherThreadAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto backend = IoUringBackend::create({});
  if (!backend && (backend.error().code() == EPERM || backend.error().code() == ENOSYS)) {
    GTEST_SKIP() << "io_uring unavailable: " << backend.error().message();
  }
  ASSERT_TRUE(backend) << backend.error().message();
  Backend* ring = backend->get();
  EXPECT_DEATH(std::thread([ring] { ring->poll(milliseconds(0)); }).join(), "does not own the ring");
  SocketPair pair;
  char byte = 0;
  TestOperation recv = make_op(OpCode::kRecv, pair.fds[0], &byte, 1);
  EXPECT_DEATH(std::thread([ring, &recv] { ring->submit(recv); }).join(), "does not own the ring");
  (*backend)->poll(milliseconds(0));  // the owner still may
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendContractTest,
                         ::testing::Values(BackendChoice::kIoUring, BackendChoice::kEpoll),
                         [](const auto& info) { return info.param == BackendChoice::kIoUring ? "IoUring" : "Epoll"; });

}  // namespace
}  // namespace surge
