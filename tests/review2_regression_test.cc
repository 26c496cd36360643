// review2_regression_test.cc: reproductions from the second review of the issue-9 fixes, kept as regressions (run_at_home's worker registry; bounded
// borrowed reads on io_uring: restart of a stopped stream and the all-streams cap).
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

#include "net/tcp_stream.h"
#include "runtime/runtime.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "tests/backend_param.h"
#include "tests/stream_pair.h"

namespace surge {
namespace {

using std::chrono::milliseconds;

class Review2RegressionTest : public testing::BackendTest {};

Task<void> settle() {
  for (int i = 0; i < 5; ++i) co_await yield();
}

std::string text_of(const BorrowedBuffer& chunk) {
  return std::string(reinterpret_cast<const char*>(chunk.data()), chunk.size());
}

template <typename Body>
std::string in_child(Body body, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) _exit(body());
  const auto until = std::chrono::steady_clock::now() + limit;
  int status = 0;
  for (;;) {
    if (waitpid(pid, &status, WNOHANG) == pid) break;
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
TEST_P(Review2RegressionTest, StaleBufferOfADestroyedWorkerIsNotReleasedIntoItsSuccessor) {
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
  ASSERT_EQ(text_of(held), "AAAA");

  stale.release();  // on the owner thread, outside the loop: Worker::current() != lender -> run_at_home

  std::vector<BorrowedBuffer> later;
  EXPECT_TRUE(run([](TcpStream& r, TcpStream& w, std::vector<BorrowedBuffer>& out) -> Task<void> {
    for (std::string_view text : {"BBBB", "CCCC"}) {
      EXPECT_TRUE(co_await w.write_all(text));
      co_await settle();
      auto chunk = co_await timeout(milliseconds(200), r.read_borrowed());
      if (!chunk) break;  // no buffer left: what a correct backend does with 2 buffers, 1 held
      out.push_back(std::move(*chunk));
    }
  }(reader, writer, later)));
  for (const BorrowedBuffer& chunk : later) {
    EXPECT_NE(chunk.data(), held.data()) << "the same lent buffer is on loan twice";
  }
  EXPECT_EQ(text_of(held), "AAAA") << "a held BorrowedBuffer was overwritten by a later receive";
  later.clear();
  held.release();
}

// ---------------------------------------------------------------------------------------------------
// Failed before its fix (io_uring), when the all-streams cap stopped only the stream a chunk had just
// arrived on (now it stops every stream nobody is reading). The cap was checked only then; every stream
// that is still armed takes one more buffer before it stops. A stream read once and then left alone stays
// armed, so enough such streams take the whole ring, and a reader that waits gets nothing: the
// guarantee "half of it is always theirs" (io_uring_multishot_recv.cc, top) does not hold.
TEST_P(Review2RegressionTest, ManyOnceReadIdleStreamsLeaveHalfTheRingToAWaitingReader) {
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
  std::printf("buffer_ring_exhausted=%llu\n",
              static_cast<unsigned long long>(worker_->backend().counters().buffer_ring_exhausted));
}

// ---------------------------------------------------------------------------------------------------
// Held. The restart in recv_from_multishot (a reader takes a chunk of a stream stopped at its bound) with a
// bound of 2 (restart at <= 1 queued) and a slow reader: hundreds of stops and restarts, the data arrives
// whole and in order, the stream never stays stopped while its reader waits, and the peer's EOF (queued
// behind data, the request ended) ends it. A double arm or a wrapped queued_chunks_ would lose, reorder or
// stall data here.
TEST_P(Review2RegressionTest, StopAndRestartAtASmallBoundKeepsEveryByteInOrder) {
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
      got += text_of(*chunk);
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
TEST_P(Review2RegressionTest, DropsRacingRuntimeShutdownAreNeitherLostNorRacy) {
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
TEST_P(Review2RegressionTest, DropsOnTheOwnerThreadOutsideTheLoopDoNotDeadlock) {
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

SURGE_INSTANTIATE_FOR_EACH_BACKEND(Review2RegressionTest);

}  // namespace
}  // namespace surge
