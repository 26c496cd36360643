// review_regression_test.cc: reproductions from a hostile review of the fixes for issue 9, kept as regressions.
// Each test says whether it failed on the reviewed code (a defect, fixed since) or held (an attack that was resisted).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "net/socket_address.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/runtime.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "tests/backend_param.h"
#include "tests/stream_pair.h"

namespace surge {
namespace {

using std::chrono::milliseconds;

class ReviewRegressionTest : public testing::BackendTest {};


Task<void> settle() {
  for (int i = 0; i < 5; ++i) co_await yield();
}

std::string text_of(const BorrowedBuffer& chunk) {
  return std::string(reinterpret_cast<const char*>(chunk.data()), chunk.size());
}

// Runs `body` in a forked child (so that a crash is a result, not the end of the test binary), bounded
// to `limit`. Returns a description of how the child ended: "exit 0" on success.
template <typename Body>
std::string in_child(Body body, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    _exit(body());
  }
  const auto until = std::chrono::steady_clock::now() + limit;
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() > until) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return "hung (killed after the limit)";
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "ended oddly";
}

// ---------------------------------------------------------------------------------------------------
// Failed, before its fix, on io_uring (holds on epoll). tcp_stream.h promises that move_to() fails with EBUSY "with an
// operation in flight"; io_uring's detach_fd() only checks borrowed-read waiters, so a plain read() in
// flight is silently cancelled (fd forgotten) and the move succeeds.
TEST_P(ReviewRegressionTest, MoveToWithAPlainReadInFlightIsRefused) {
  auto [a, b] = testing::stream_pair(*worker_);
  EXPECT_TRUE(run([](TcpStream& reader, TcpStream& writer) -> Task<void> {
    Worker& worker = *Worker::current();
    auto handle = worker.spawn([](TcpStream& s) -> Task<Result<std::size_t>> {
      char buffer[8];
      co_return co_await s.read(buffer);
    }(reader));
    co_await settle();
    auto moved = std::move(reader).move_to(worker);
    EXPECT_FALSE(moved) << "move_to() succeeded with a read() in flight on the stream";
    if (!moved) {
      EXPECT_EQ(moved.error().code(), EBUSY) << moved.error().message();
    }
    (void)co_await writer.write_all(std::string_view("x"));
    auto read = co_await timeout(milliseconds(2000), std::move(handle));
    EXPECT_TRUE(read) << "the read in flight was failed by the move: " << read.error().message();
  }(a, b)));
}

// Failed, before its fix, on io_uring (holds on epoll). Same contract, borrowed reads without a buffer ring (the pool
// path): the recv into a pool buffer is in the kernel, detach_fd() finds no receiver and forgets the fd.
TEST_P(ReviewRegressionTest, MoveToWithAPoolBorrowedReadInFlightIsRefused) {
  create_worker({.lent_buffers = 4, .lent_buffer_size = 1024, .allow_buffer_ring = false});
  auto [a, b] = testing::stream_pair(*worker_);
  EXPECT_TRUE(run([](TcpStream& reader, TcpStream& writer) -> Task<void> {
    Worker& worker = *Worker::current();
    auto handle = worker.spawn([](TcpStream& s) -> Task<Result<std::string>> {
      auto chunk = co_await s.read_borrowed();
      if (!chunk) co_return chunk.error();
      co_return text_of(*chunk);
    }(reader));
    co_await settle();
    auto moved = std::move(reader).move_to(worker);
    EXPECT_FALSE(moved) << "move_to() succeeded with a read_borrowed() in flight on the stream";
    (void)co_await writer.write_all(std::string_view("x"));
    auto read = co_await timeout(milliseconds(2000), std::move(handle));
    EXPECT_TRUE(read) << "the borrowed read in flight was failed by the move: " << read.error().message();
  }(a, b)));
}

// ---------------------------------------------------------------------------------------------------
// Failed, before its fix, on io_uring (holds on epoll). The bound is per stream only: lent_buffers / lent_buffers_per_stream
// peers that send and are never read hold the whole ring again, and every other stream's read_borrowed()
// waits forever (issue 9 #1, with five hostile connections instead of one).
TEST_P(ReviewRegressionTest, AFewUnreadPeersStillStarveEveryOtherStream) {
  create_worker({.lent_buffers = 16, .lent_buffer_size = 1024, .lent_buffers_per_stream = 4});
  EXPECT_TRUE(run([]() -> Task<void> {
    std::vector<testing::TcpPair> hostile;
    for (int i = 0; i < 5; ++i) {
      auto pair = co_await testing::tcp_pair();
      EXPECT_TRUE(pair);
      if (!pair) co_return;
      EXPECT_TRUE(pair->client.set_nodelay(true));
      EXPECT_TRUE(co_await pair->client.write_all(std::string_view("hello")));
      auto first = co_await timeout(milliseconds(1000), pair->server.read_borrowed());  // arms its request
      EXPECT_TRUE(first);
      hostile.push_back(std::move(*pair));
    }
    for (int round = 0; round < 8; ++round) {
      for (auto& pair : hostile) (void)co_await pair.client.write_all(std::string_view("segment;"));
      (void)co_await sleep_for(milliseconds(2));
    }
    auto other = co_await testing::tcp_pair();
    EXPECT_TRUE(other);
    if (!other) co_return;
    EXPECT_TRUE(co_await other->client.write_all(std::string_view("other")));
    auto chunk = co_await timeout(milliseconds(1000), other->server.read_borrowed());
    EXPECT_TRUE(chunk) << chunk.error().message()
                       << ": five unread peers hold every lent buffer; this stream never gets one";
    if (chunk) {
      EXPECT_EQ(text_of(*chunk), "other");
    }
  }()));
}

// ---------------------------------------------------------------------------------------------------
// Failed, before its fix, on both backends (use-after-free / fd leak). A TcpStream returned to main by block_on() and
// dropped after shutdown(): OwnedSocket::close() sees a foreign thread and run_at_home()s to a Worker
// that has been destroyed. Expected: the fd is closed (or a clear abort); actual: see the child's end.
TEST_P(ReviewRegressionTest, StreamFromBlockOnDroppedAfterShutdown) {
  const BackendChoice choice = GetParam();
  const std::string outcome = in_child([choice]() -> int {
    auto runtime = Runtime::create({.workers = 1, .worker = {.backend = choice}});
    if (!runtime) return 3;
    int fds[2] = {-1, -1};
    {
      auto pair = (*runtime)->block_on(testing::tcp_pair());
      if (!pair) return 4;
      fds[0] = pair->client.native_handle();
      fds[1] = pair->server.native_handle();
      (*runtime)->shutdown();
    }  // the streams are dropped here, on main, after their worker is gone
    const bool closed = fcntl(fds[0], F_GETFD) == -1 && fcntl(fds[1], F_GETFD) == -1;
    return closed ? 0 : 5;
  });
  EXPECT_EQ(outcome, "exit 0") << "(exit 5: the fds were never closed; a signal: use after free)";
}

// Failed, before its fix, on both backends (use-after-free). Same for a BorrowedBuffer returned by block_on(): its release
// is posted to a Worker that no longer exists.
TEST_P(ReviewRegressionTest, BorrowedBufferFromBlockOnDroppedAfterShutdown) {
  const BackendChoice choice = GetParam();
  const std::string outcome = in_child([choice]() -> int {
    auto runtime = Runtime::create({.workers = 1, .worker = {.backend = choice}});
    if (!runtime) return 3;
    {
      auto chunk = (*runtime)->block_on([]() -> Task<Result<BorrowedBuffer>> {
        auto pair = co_await testing::tcp_pair();
        if (!pair) co_return pair.error();
        (void)co_await pair->client.write_all(std::string_view("kept"));
        co_return co_await pair->server.read_borrowed();
      }());
      if (!chunk) return 4;
      (*runtime)->shutdown();
      // Make the freed memory look like something else, as a busy process would.
      std::vector<std::unique_ptr<char[]>> churn;
      for (int i = 0; i < 1000; ++i) churn.push_back(std::make_unique<char[]>(1024));
    }  // the buffer is released here, on main, after its worker is gone
    return 0;
  });
  EXPECT_EQ(outcome, "exit 0") << "(a signal or an ASan report: the release was posted to a destroyed worker)";
}

// ---------------------------------------------------------------------------------------------------
// HOLDS (both backends). A stream whose peer sent bytes and then its FIN, with the EOF (and maybe the
// bytes) queued on the multishot request, moved: refused with EBUSY until read, then moved; the new
// owner sees the end of stream, nothing is lost or duplicated.
TEST_P(ReviewRegressionTest, MoveWithEndOfStreamQueuedLosesNothing) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto pair = co_await testing::tcp_pair();
    EXPECT_TRUE(pair);
    if (!pair) co_return;
    EXPECT_TRUE(pair->client.set_nodelay(true));
    EXPECT_TRUE(co_await pair->client.write_all(std::string_view("abc")));
    std::string got;
    {
      auto chunk = co_await timeout(milliseconds(1000), pair->server.read_borrowed());
      EXPECT_TRUE(chunk);
      if (chunk) got += text_of(*chunk);
    }
    EXPECT_TRUE(co_await pair->client.write_all(std::string_view("def")));
    EXPECT_TRUE(pair->client.shutdown(Shutdown::kWrite));
    (void)co_await sleep_for(milliseconds(20));  // "def" and the EOF reach the queue
    bool saw_end = false;
    auto moved = std::move(pair->server).move_to(*Worker::current());
    for (int i = 0; i < 5 && !moved; ++i) {
      EXPECT_EQ(moved.error().code(), EBUSY);
      auto chunk = co_await timeout(milliseconds(1000), pair->server.read_borrowed());
      EXPECT_TRUE(chunk);
      if (!chunk) co_return;
      if (chunk->empty()) saw_end = true;
      got += text_of(*chunk);
      moved = std::move(pair->server).move_to(*Worker::current());
    }
    EXPECT_TRUE(moved);
    if (!moved) co_return;
    char buffer[16];
    for (int i = 0; i < 5; ++i) {
      auto n = co_await timeout(milliseconds(1000), moved->read(buffer));
      EXPECT_TRUE(n) << n.error().message();
      if (!n || *n == 0) break;
      got.append(buffer, *n);
    }
    (void)saw_end;
    EXPECT_EQ(got, "abcdef");
  }()));
}

// HOLDS (both backends). timeout(nanoseconds::max()) on a single-step read (a linked timeout on io_uring,
// absolute, INT64_MAX ns) is no timeout: the read completes with its data.
TEST_P(ReviewRegressionTest, MaxTimeoutOnALinkedReadIsNoTimeout) {
  auto [a, b] = testing::stream_pair(*worker_);
  EXPECT_TRUE(run([](TcpStream& reader, TcpStream& writer) -> Task<void> {
    Worker& worker = *Worker::current();
    auto handle = worker.spawn([](TcpStream& s) -> Task<Result<std::size_t>> {
      char buffer[8];
      co_return co_await timeout(std::chrono::nanoseconds::max(), s.read(buffer));
    }(reader));
    (void)co_await sleep_for(milliseconds(30));
    (void)co_await writer.write_all(std::string_view("x"));
    auto read = co_await std::move(handle);
    EXPECT_TRUE(read) << read.error().message();
  }(a, b)));
}

// HOLDS (both backends). move_to() while the stream's chunk CQEs wait in the CQ past a per-poll budget of
// one completion and its queue is at a per-stream bound of two (stop_receiver_now() collects and
// dispatches them out of turn): refused with EBUSY until read, and no byte is lost or reordered.
TEST_P(ReviewRegressionTest, MoveWhileChunksWaitPastTheBudgetLosesNothing) {
  create_worker({.max_completions_per_poll = 1, .lent_buffers = 16, .lent_buffer_size = 1024,
                 .lent_buffers_per_stream = 2});
  EXPECT_TRUE(run([]() -> Task<void> {
    auto pair = co_await testing::tcp_pair();
    EXPECT_TRUE(pair);
    if (!pair) co_return;
    EXPECT_TRUE(pair->client.set_nodelay(true));
    std::string sent = "start;";
    EXPECT_TRUE(co_await pair->client.write_all(std::string_view(sent)));
    std::string got;
    {
      auto chunk = co_await timeout(milliseconds(1000), pair->server.read_borrowed());
      EXPECT_TRUE(chunk);
      if (chunk) got += text_of(*chunk);
    }
    for (int i = 0; i < 40; ++i) {
      const std::string segment = "s" + std::to_string(100 + i) + ";";
      EXPECT_TRUE(co_await pair->client.write_all(std::string_view(segment)));
      sent += segment;
      if (i % 4 == 0) co_await yield();
    }
    EXPECT_TRUE(pair->client.shutdown(Shutdown::kWrite));
    auto moved = std::move(pair->server).move_to(*Worker::current());
    for (int i = 0; i < 200 && !moved; ++i) {
      EXPECT_EQ(moved.error().code(), EBUSY) << moved.error().message();
      auto chunk = co_await timeout(milliseconds(1000), pair->server.read_borrowed());
      EXPECT_TRUE(chunk);
      if (!chunk) co_return;
      got += text_of(*chunk);
      moved = std::move(pair->server).move_to(*Worker::current());
    }
    EXPECT_TRUE(moved);
    if (!moved) co_return;
    char buffer[256];
    for (int i = 0; i < 200; ++i) {
      auto n = co_await timeout(milliseconds(1000), moved->read(buffer));
      EXPECT_TRUE(n) << n.error().message();
      if (!n || *n == 0) break;
      got.append(buffer, *n);
    }
    EXPECT_EQ(got, sent);
  }()));
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(ReviewRegressionTest);

}  // namespace
}  // namespace surge
