// Who owns a stream and its bytes, on every backend: a TcpStream or BorrowedBuffer dropped on another
// worker's thread is released at home; move_to() after borrowed reads never loses a byte; read() on a
// stream read with read_borrowed() is refused. The cross-worker tests also run under --config=tsan.
#include <gtest/gtest.h>
#include <sys/socket.h>

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
#include "runtime/testing/backend_param.h"
#include "runtime/testing/fd_count.h"
#include "net/testing/stream_pair.h"

namespace surge {
namespace {

using std::chrono::milliseconds;

class OwnershipTest : public ::testing::TestWithParam<BackendChoice> {
 protected:
  void start(std::size_t workers, BackendOptions options = {}) {
    runtime_.reset();
    std::unique_ptr<Backend> probe;  // skip cleanly where io_uring is unavailable
    testing::make_backend_or_skip(GetParam(), options, probe);
    if (!probe) return;
    probe.reset();
    auto runtime = Runtime::create(
        {.workers = workers, .worker = {.backend = GetParam(), .backend_options = options}});
    ASSERT_TRUE(runtime) << runtime.error().message();
    runtime_ = std::move(*runtime);
  }

  std::unique_ptr<Runtime> runtime_;
};


// Streams made on worker 1 come back to a task on worker 0 through a JoinHandle and are dropped there:
// each is closed on worker 1's thread, none leaks, and worker 1 keeps working.
TEST_P(OwnershipTest, StreamDroppedOnAnotherWorkerIsClosedAtHome) {
  start(2);
  if (!runtime_) return;
  const int fds_before = testing::open_fd_count();
  runtime_->block_on([](Runtime& runtime) -> Task<void> {
    const std::size_t here = Worker::current() == &runtime.worker(0) ? 0 : 1;
    const std::size_t other = 1 - here;
    for (int round = 0; round < 20; ++round) {
      auto made = runtime.spawn_on(other, []() -> Task<Result<testing::TcpPair>> { co_return co_await testing::tcp_pair(); }());
      auto pair = co_await std::move(made);
      EXPECT_TRUE(pair) << pair.error().message();
      // Dropped here, on the wrong worker.
    }
    auto still_works = co_await runtime.spawn_on(other, []() -> Task<bool> {
      auto pair = co_await testing::tcp_pair();
      if (!pair || !co_await pair->client.write_all("ping")) co_return false;
      char reply[4];
      co_return static_cast<bool>(co_await pair->server.read_exact(reply));
    }());
    EXPECT_TRUE(still_works);
  }(*runtime_));
  // The closes were posted home: give them a moment to run.
  for (int i = 0; i < 100 && testing::open_fd_count() > fds_before; ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(testing::open_fd_count(), fds_before);
}

// Borrowed buffers of worker 1, each dropped by a task on worker 0: they go back to worker 1's set, so
// with only two lent buffers worker 1 can still lend both afterwards.
TEST_P(OwnershipTest, BorrowedBufferDroppedOnAnotherWorkerGoesBackHome) {
  start(2, {.lent_buffers = 2, .lent_buffer_size = 1024});
  if (!runtime_) return;
  runtime_->block_on([](Runtime& runtime) -> Task<void> {
    const std::size_t here = Worker::current() == &runtime.worker(0) ? 0 : 1;
    const std::size_t other = 1 - here;
    for (int round = 0; round < 10; ++round) {
      auto borrowed = co_await runtime.spawn_on(other, []() -> Task<Result<std::vector<BorrowedBuffer>>> {
        auto pair = co_await testing::tcp_pair();
        if (!pair) co_return pair.error();
        EXPECT_TRUE(pair->client.set_nodelay(true));
        std::vector<BorrowedBuffer> chunks;
        for (const char* text : {"one", "two"}) {
          if (auto sent = co_await pair->client.write_all(std::string_view(text)); !sent) co_return sent.error();
          auto chunk = co_await timeout(milliseconds(2000), pair->server.read_borrowed());
          if (!chunk) co_return chunk.error();
          chunks.push_back(std::move(*chunk));
        }
        co_return chunks;  // both of the worker's buffers, held by the caller
      }());
      EXPECT_TRUE(borrowed) << borrowed.error().message() << " (round " << round << ")";
      if (!borrowed) co_return;
      EXPECT_EQ(borrowed->size(), 2u);
      // Dropped here, on the wrong worker.
    }
  }(*runtime_));
}

// Bytes a borrowed read had already received (io_uring: queued on the stream's multishot request) must
// not be lost by move_to(): the move either carries on with nothing lost or is refused with EBUSY, and
// then the bytes are read here and the move tried again.
TEST_P(OwnershipTest, MoveAfterBorrowedReadsLosesNoBytes) {
  start(2);
  if (!runtime_) return;
  const std::string received = runtime_->block_on([](Runtime& runtime) -> Task<std::string> {
    const std::size_t other = Worker::current() == &runtime.worker(0) ? 1 : 0;
    auto pair = co_await testing::tcp_pair();
    EXPECT_TRUE(pair) << pair.error().message();
    if (!pair) co_return "";
    EXPECT_TRUE(pair->client.set_nodelay(true));
    std::string got;
    EXPECT_TRUE(co_await pair->client.write_all("hello "));
    {
      auto chunk = co_await pair->server.read_borrowed();
      EXPECT_TRUE(chunk);
      if (chunk) got += testing::text_of(*chunk);
    }
    EXPECT_TRUE(co_await pair->client.write_all("world "));  // received while nobody reads
    (void)co_await sleep_for(milliseconds(20));
    auto moved = std::move(pair->server).move_to(runtime.worker(other));
    int refusals = 0;
    while (!moved) {
      EXPECT_EQ(moved.error().code(), EBUSY) << moved.error().message();
      if (moved.error().code() != EBUSY || ++refusals > 10) co_return got;
      auto chunk = co_await timeout(milliseconds(1000), pair->server.read_borrowed());
      EXPECT_TRUE(chunk);
      if (!chunk) co_return got;
      got += testing::text_of(*chunk);
      moved = std::move(pair->server).move_to(runtime.worker(other));
    }
    EXPECT_TRUE(co_await pair->client.write_all("after the move"));
    EXPECT_TRUE(pair->client.shutdown(Shutdown::kWrite));
    // On its new worker the stream may be read either way: plain reads here.
    auto rest = co_await runtime.spawn_on(other, [](TcpStream stream) -> Task<std::string> {
      std::string text;
      char buffer[64];
      for (;;) {
        auto n = co_await timeout(milliseconds(2000), stream.read(buffer));
        EXPECT_TRUE(n) << n.error().message();
        if (!n || *n == 0) break;
        text.append(buffer, *n);
      }
      co_return text;
    }(std::move(*moved)));
    co_return got + rest;
  }(*runtime_));
  EXPECT_EQ(received, "hello world after the move");
}

INSTANTIATE_TEST_SUITE_P(Backends, OwnershipTest,
                         ::testing::Values(BackendChoice::kIoUring, BackendChoice::kEpoll),
                         testing::backend_test_name);

class MixedReadsTest : public testing::BackendTest {};

// read() and read_exact() on a stream read with read_borrowed() would race its multishot request for
// the data (io_uring): refused at once on every backend, and the borrowed reads go on unharmed.
TEST_P(MixedReadsTest, PlainReadAfterBorrowedReadIsRefused) {
  auto [a, b] = testing::stream_pair(*worker_);
  EXPECT_TRUE(run([](TcpStream& reader, TcpStream& writer) -> Task<void> {
    EXPECT_TRUE(co_await writer.write_all("first"));
    auto chunk = co_await reader.read_borrowed();
    EXPECT_TRUE(chunk);
    const std::size_t in_flight = internal::WorkerAccess::backend(*Worker::current()).in_flight();  // io_uring: the multishot request
    char buffer[8];
    auto plain = co_await reader.read(buffer);
    EXPECT_FALSE(plain);
    if (!plain) {
      EXPECT_EQ(plain.error().code(), EINVAL) << plain.error().message();
    }
    auto exact = co_await reader.read_exact(buffer);
    EXPECT_FALSE(exact);
    if (!exact) {
      EXPECT_EQ(exact.error().code(), EINVAL) << exact.error().message();
    }
    EXPECT_EQ(internal::WorkerAccess::backend(*Worker::current()).in_flight(), in_flight) << "a refused read reached the backend";
    EXPECT_TRUE(co_await writer.write_all("second"));
    auto next = co_await timeout(milliseconds(1000), reader.read_borrowed());
    EXPECT_TRUE(next);
    if (next) {
      EXPECT_EQ(testing::text_of(*next), "second");
    }
  }(a, b)));
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(MixedReadsTest);

}  // namespace
}  // namespace surge
