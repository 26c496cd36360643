// A read left queued on a stream that is then closed must never run on the connection that reuses its fd
// number (and, on io_uring, its registered-file slot): it ends with ECANCELED (or EBADF), and the new
// stream's own read gets every byte sent to it. Two timings: the read already waits in the kernel, and the
// read was submitted in the same loop turn as the close (io_uring: its SQE has not reached the kernel).
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "net/tcp_stream.h"
#include "runtime/testing/backend_param.h"
#include "net/testing/stream_pair.h"

namespace surge {
namespace {

using testing::BackendTest;

class CloseWithReadQueuedTest : public BackendTest {};

enum class Timing { kInKernel, kSameTurn };

Task<Result<std::size_t>> read_into(TcpStream& stream, std::vector<char>& buffer) {
  co_return co_await stream.read(buffer);
}

Task<void> close_then_reuse(Worker& worker, Timing timing) {
  auto [a, a_peer] = testing::stream_pair(worker);
  const int a_fd = a.native_handle();
  // Warm A up so that it holds a registered-file slot (io_uring) before the read that stays queued.
  const char hello[] = "a";
  EXPECT_EQ(::send(a_peer.native_handle(), hello, 1, MSG_NOSIGNAL), 1);
  std::vector<char> a_buffer(64);
  auto first = co_await a.read(a_buffer);
  EXPECT_TRUE(first && *first == 1);

  auto stale = worker.spawn(read_into(a, a_buffer));
  co_await yield();  // the reader runs in the next turn, before this task: its read is submitted
  if (timing == Timing::kInKernel) {
    for (int turn = 0; turn < 5; ++turn) co_await yield();
    EXPECT_FALSE(internal::WorkerAccess::backend(worker).has_unsubmitted());
  } else if (internal::WorkerAccess::backend(worker).kind() == BackendKind::kIoUring) {
    EXPECT_TRUE(internal::WorkerAccess::backend(worker).has_unsubmitted()) << "the read should still be in the SQ";
  }
  EXPECT_FALSE(stale.is_finished());
  EXPECT_TRUE(a.close());

  // B gets A's fd number (the lowest free one) and, on io_uring, the slot A had.
  auto [b, b_peer] = testing::stream_pair(worker);
  EXPECT_EQ(b.native_handle(), a_fd) << "the test needs B to reuse A's fd number";
  const std::string message = "bytes for B only";
  EXPECT_EQ(::send(b_peer.native_handle(), message.data(), message.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(message.size()));
  std::vector<char> b_buffer(64);
  auto got = co_await b.read(b_buffer);
  EXPECT_TRUE(got) << got.error().message();
  if (got) EXPECT_EQ(std::string(b_buffer.data(), *got), message);

  auto stale_result = co_await std::move(stale);
  EXPECT_FALSE(stale_result) << "the closed stream's read returned " << *stale_result << " bytes: \""
                             << std::string(a_buffer.data(), *stale_result) << "\"";
  if (!stale_result) {
    EXPECT_TRUE(stale_result.error().code() == ECANCELED || stale_result.error().code() == EBADF)
        << stale_result.error().message();
  }
}

TEST_P(CloseWithReadQueuedTest, ReadInTheKernelIsCancelledNotCrossed) {
  EXPECT_TRUE(run(close_then_reuse(*worker_, Timing::kInKernel), std::chrono::seconds(5)));
}

TEST_P(CloseWithReadQueuedTest, ReadSubmittedInTheSameTurnIsCancelledNotCrossed) {
  EXPECT_TRUE(run(close_then_reuse(*worker_, Timing::kSameTurn), std::chrono::seconds(5)));
}

// The same with the registered-file table off: the old fd number must not be reused either.
TEST_P(CloseWithReadQueuedTest, WithoutFixedFilesTheOldFdNumberIsNotReused) {
  create_worker({.allow_fixed_files = false});
  EXPECT_TRUE(run(close_then_reuse(*worker_, Timing::kInKernel), std::chrono::seconds(5)));
  create_worker({.allow_fixed_files = false});
  EXPECT_TRUE(run(close_then_reuse(*worker_, Timing::kSameTurn), std::chrono::seconds(5)));
}

// A read_exact whose first chunk has completed (five of its ten bytes) but has not been delivered when
// its stream closes: it must stop there, reporting those five bytes, and never submit its next chunk on
// the fd number (or slot) the next connection gets.
TEST_P(CloseWithReadQueuedTest, PartialReadExactStopsWhenItsStreamCloses) {
  EXPECT_TRUE(run(
      [](Worker& worker) -> Task<void> {
        auto [a, a_peer] = testing::stream_pair(worker);
        const int a_fd = a.native_handle();
        EXPECT_EQ(::send(a_peer.native_handle(), "12345", 5, MSG_NOSIGNAL), 5);
        auto stale = worker.spawn([](TcpStream& s) -> Task<std::pair<TransferResult, std::string>> {
          char buffer[10] = {};
          auto got = co_await s.read_exact(buffer);
          co_return std::pair(got, std::string(buffer, got.transferred()));
        }(a));
        co_await yield();  // the reader submits its first chunk, which completes at once (5 bytes wait)
        EXPECT_TRUE(a.close());
        auto [b, b_peer] = testing::stream_pair(worker);
        EXPECT_EQ(b.native_handle(), a_fd) << "the test needs B to reuse A's fd number";
        const std::string message = "bytes for B only";
        EXPECT_EQ(::send(b_peer.native_handle(), message.data(), message.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(message.size()));
        auto [result, bytes] = co_await std::move(stale);
        EXPECT_FALSE(result) << "read_exact on the closed stream completed with \"" << bytes << "\"";
        if (!result) {
          EXPECT_TRUE(result.error().is_cancelled()) << result.error().message();
          EXPECT_EQ(bytes, "12345");
        }
        std::vector<char> b_buffer(64);
        auto got = co_await b.read(b_buffer);
        EXPECT_TRUE(got) << got.error().message();
        if (got) EXPECT_EQ(std::string(b_buffer.data(), *got), message);
      }(*worker_),
      std::chrono::seconds(5)));
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(CloseWithReadQueuedTest);

}  // namespace
}  // namespace surge
