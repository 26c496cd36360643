// review_regression_test.cc: reproductions from two hostile reviews of the fixes for issue 9, kept as
// regressions.
// Each test says whether it failed on the reviewed code (a defect, fixed since) or held (an attack that was resisted).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "net/socket_address.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/runtime.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "runtime/testing/backend_param.h"
#include "net/testing/stream_pair.h"

namespace surge {
namespace {

using std::chrono::milliseconds;

class ReviewRegressionTest : public testing::BackendTest {};


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
    co_await testing::settle();
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
      co_return testing::text_of(*chunk);
    }(reader));
    co_await testing::settle();
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
      EXPECT_EQ(testing::text_of(*chunk), "other");
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
      if (chunk) got += testing::text_of(*chunk);
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
      got += testing::text_of(*chunk);
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
      if (chunk) got += testing::text_of(*chunk);
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
      got += testing::text_of(*chunk);
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

// ===================================================================================================
// The second review: run_at_home's worker registry, and the restart and all-streams bound of borrowed
// reads on io_uring.

BackendOptions small_ring(unsigned buffers, unsigned per_stream = 8) {
  BackendOptions options;
  options.lent_buffers = buffers;
  options.lent_buffers_per_stream = per_stream;
  return options;
}

// ---------------------------------------------------------------------------------------------------
// Failed before its fix (both backends), when run_at_home() recognised a worker by its address only
// (now also by Worker::incarnation). A BorrowedBuffer that outlived its worker is
// released after a new Worker was allocated at the same address: the registry finds "its" worker alive
// and release_buffer(id) runs on the new worker's backend, handing back a buffer the new worker has lent
// to someone else. The next read then lends the same memory a second time and overwrites it.
TEST_P(ReviewRegressionTest, StaleBufferOfADestroyedWorkerIsNotReleasedIntoItsSuccessor) {
  create_worker(small_ring(2, 2));
  if (!worker_) return;
  BorrowedBuffer stale;
  {
    auto [reader, writer] = testing::stream_pair(*worker_);
    EXPECT_TRUE(run([](TcpStream& r, TcpStream& w, BorrowedBuffer& out) -> Task<void> {
      EXPECT_TRUE(co_await w.write_all("old"));
      auto chunk = co_await r.read_borrowed();
      EXPECT_TRUE(chunk);
      if (chunk) out = std::move(*chunk);
    }(reader, writer, stale)));
  }
  const void* old_address = worker_.get();
  create_worker(small_ring(2, 2));  // the old worker is destroyed first; malloc tends to hand its memory back
  if (!worker_) return;
  if (static_cast<const void*>(worker_.get()) != old_address) GTEST_SKIP() << "the new worker got another address";

  auto [reader, writer] = testing::stream_pair(*worker_);
  BorrowedBuffer held;
  EXPECT_TRUE(run([](TcpStream& r, TcpStream& w, BorrowedBuffer& out) -> Task<void> {
    EXPECT_TRUE(co_await w.write_all("AAAA"));
    auto chunk = co_await r.read_borrowed();
    EXPECT_TRUE(chunk);
    if (chunk) out = std::move(*chunk);
  }(reader, writer, held)));
  ASSERT_EQ(testing::text_of(held), "AAAA");

  stale.release();  // on the owner thread, outside the loop: Worker::current() != lender -> run_at_home

  std::vector<BorrowedBuffer> later;
  EXPECT_TRUE(run([](TcpStream& r, TcpStream& w, std::vector<BorrowedBuffer>& out) -> Task<void> {
    for (std::string_view text : {"BBBB", "CCCC"}) {
      EXPECT_TRUE(co_await w.write_all(text));
      co_await testing::settle();
      auto chunk = co_await timeout(milliseconds(200), r.read_borrowed());
      if (!chunk) break;  // no buffer left: what a correct backend does with 2 buffers, 1 held
      out.push_back(std::move(*chunk));
    }
  }(reader, writer, later)));
  for (const BorrowedBuffer& chunk : later) {
    EXPECT_NE(chunk.data(), held.data()) << "the same lent buffer is on loan twice";
  }
  EXPECT_EQ(testing::text_of(held), "AAAA") << "a held BorrowedBuffer was overwritten by a later receive";
  later.clear();
  held.release();
}

// ---------------------------------------------------------------------------------------------------
// Failed before its fix (io_uring), when the all-streams cap stopped only the stream a chunk had just
// arrived on (now it stops every stream nobody is reading). The cap was checked only then; every stream
// that is still armed takes one more buffer before it stops. A stream read once and then left alone stays
// armed, so enough such streams take the whole ring, and a reader that waits gets nothing: the
// guarantee "half of it is always theirs" (io_uring_multishot_recv.cc, top) does not hold.
TEST_P(ReviewRegressionTest, ManyOnceReadIdleStreamsLeaveHalfTheRingToAWaitingReader) {
  if (GetParam() != BackendChoice::kIoUring) GTEST_SKIP() << "io_uring's buffer ring only";
  create_worker(small_ring(16, 8));  // cap = max(16 / 2, 8) = 8 queued chunks
  if (!worker_) return;
  constexpr int kIdle = 24;
  std::vector<std::pair<TcpStream, TcpStream>> idle;
  for (int i = 0; i < kIdle; ++i) idle.push_back(testing::stream_pair(*worker_));
  auto fresh = testing::stream_pair(*worker_);
  EXPECT_TRUE(run([](std::vector<std::pair<TcpStream, TcpStream>>& idle, TcpStream& r, TcpStream& w) -> Task<void> {
    for (auto& [reader, writer] : idle) {  // read each once: its multishot request stays armed
      EXPECT_TRUE(co_await writer.write_all("x"));
      auto chunk = co_await reader.read_borrowed();
      EXPECT_TRUE(chunk);
    }
    for (auto& [reader, writer] : idle) EXPECT_TRUE(co_await writer.write_all("unread"));
    co_await sleep_for(milliseconds(50));
    EXPECT_TRUE(co_await w.write_all("for the waiting reader"));
    auto got = co_await timeout(milliseconds(300), r.read_borrowed());
    EXPECT_TRUE(got) << "a waiting reader got no buffer (" << (got ? std::string() : got.error().message())
                     << "): 24 unread streams hold more than half of a 16-buffer ring";
  }(idle, fresh.first, fresh.second)));
  std::printf("lent_buffers_exhausted=%llu\n",
              static_cast<unsigned long long>(worker_->counters().lent_buffers_exhausted));
}

// ---------------------------------------------------------------------------------------------------
// Held. The restart in recv_from_multishot (a reader takes a chunk of a stream stopped at its bound) with a
// bound of 2 (restart at <= 1 queued) and a slow reader: hundreds of stops and restarts, the data arrives
// whole and in order, the stream never stays stopped while its reader waits, and the peer's EOF (queued
// behind data, the request ended) ends it. A double arm or a wrapped queued_chunks_ would lose, reorder or
// stall data here.
TEST_P(ReviewRegressionTest, StopAndRestartAtASmallBoundKeepsEveryByteInOrder) {
  create_worker(small_ring(16, 2));
  if (!worker_) return;
  auto [reader, writer] = testing::stream_pair(*worker_);
  EXPECT_TRUE(run([](TcpStream& r, TcpStream& w) -> Task<void> {
    Worker& worker = *Worker::current();
    std::string sent;
    for (int i = 0; i < 400; ++i) sent += std::to_string(i) + ",";
    auto writing = worker.spawn([](TcpStream& s, const std::string& data) -> Task<void> {
      for (std::size_t at = 0; at < data.size(); at += 7) {
        EXPECT_TRUE(co_await s.write_all(std::string_view(data).substr(at, 7)));
        co_await yield();
      }
      EXPECT_TRUE(s.shutdown());
    }(w, sent));
    std::string got;
    int ends = 0;
    for (int i = 0; i < 5000; ++i) {
      auto chunk = co_await timeout(milliseconds(500), r.read_borrowed());
      if (!chunk) {
        ADD_FAILURE() << "read_borrowed: " << chunk.error().message() << " after " << got.size() << " bytes";
        break;
      }
      if (chunk->empty()) {
        ++ends;
        break;
      }
      got += testing::text_of(*chunk);
      chunk->release();
      if (i % 3 == 0) co_await sleep_for(milliseconds(1));  // slower than the writer: the bound is hit
    }
    EXPECT_EQ(ends, 1);
    EXPECT_EQ(got, sent);
    co_await std::move(writing);
  }(reader, writer)));
}

// ---------------------------------------------------------------------------------------------------
// Held (TSan target). Streams and lent buffers made on a Runtime's workers, returned by block_on, dropped
// on another thread while the Runtime shuts down: every drop either posts to a live worker (which runs it,
// also in ~Worker's drain) or finds it gone and closes the fd itself.
TEST_P(ReviewRegressionTest, DropsRacingRuntimeShutdownAreNeitherLostNorRacy) {
  for (int round = 0; round < 20; ++round) {
    RuntimeOptions options;
    options.workers = 2;
    options.worker.backend = GetParam();
    options.worker.backend_options = small_ring(8, 2);
    auto runtime = Runtime::create(options);
    if (!runtime) GTEST_SKIP() << runtime.error().message();
    struct Loot {
      std::vector<TcpStream> streams;
      std::vector<BorrowedBuffer> buffers;
    };
    Loot loot = (*runtime)->block_on([]() -> Task<Loot> {
      Loot out;
      for (int i = 0; i < 4; ++i) {
        auto [r, w] = testing::stream_pair(*Worker::current());
        (void)co_await w.write_all("hello");
        auto chunk = co_await r.read_borrowed();
        if (chunk) out.buffers.push_back(std::move(*chunk));
        (void)co_await w.write_all("queued");
        co_await sleep_for(milliseconds(1));
        out.streams.push_back(std::move(r));
        out.streams.push_back(std::move(w));
      }
      co_return out;
    }());
    std::thread dropper([&loot] {
      loot.buffers.clear();
      loot.streams.clear();
    });
    (*runtime)->shutdown();
    dropper.join();
  }
}

// ---------------------------------------------------------------------------------------------------
// run_at_home runs the action inline, holding the registry lock, when called on the owner thread outside
// its loop. Held if none of forget_fd / release_buffer re-enters run_at_home: drop a stream with borrowed
// chunks queued, a borrowed read in flight from a suspended task, and a held buffer, on the owner
// thread after block_on returned, then destroy the worker (whose shutdown destroys the task's frame).
TEST_P(ReviewRegressionTest, DropsOnTheOwnerThreadOutsideTheLoopDoNotDeadlock) {
  const BackendChoice choice = GetParam();
  const std::string how = in_child([choice] {
    BackendOptions options = small_ring(4, 2);
    auto backend = make_backend(choice, options);
    if (!backend) return 0;
    auto worker = Worker::with_backend(std::move(*backend));
    auto [a, b] = testing::stream_pair(*worker);
    auto [c, d] = testing::stream_pair(*worker);
    BorrowedBuffer held;
    auto handle = worker->spawn([](TcpStream& s) -> Task<void> {
      auto chunk = co_await s.read_borrowed();  // waits: never written
      (void)chunk;
    }(c));
    const bool done = testing::run_bounded(*worker, [](TcpStream& r, TcpStream& w, BorrowedBuffer& out) -> Task<void> {
      for (std::string_view text : {"1", "2", "3"}) {
        (void)co_await w.write_all(text);
        co_await sleep_for(milliseconds(5));
      }
      auto chunk = co_await r.read_borrowed();
      if (chunk) out = std::move(*chunk);
      co_await sleep_for(milliseconds(20));
    }(a, b, held), std::chrono::seconds(5));
    if (!done) return 3;
    { TcpStream dropped = std::move(a); }  // queued chunks, on the owner thread outside the loop
    { TcpStream dropped = std::move(c); }  // a borrowed read in flight on it
    held.release();
    worker.reset();
    return 0;
  });
  EXPECT_EQ(how, "exit 0");
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(ReviewRegressionTest);

}  // namespace
}  // namespace surge
