// Borrowed reads (TcpStream::read_borrowed) over loopback TCP, on every backend: on io_uring a
// provided-buffer ring fed by one multishot recv per stream, on epoll a pool. Both lend a bounded set of
// buffers; running out must make readers wait, never fail them or lose or mix up bytes.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "examples/echo.h"
#include "net/socket_address.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "runtime/testing/backend_param.h"
#include "net/testing/stream_pair.h"

namespace surge {
namespace {

using std::chrono::milliseconds;
using testing::BackendTest;

class BorrowedReadTest : public BackendTest {};

std::vector<unsigned char> random_bytes(std::size_t size, unsigned seed) {
  std::mt19937 random(seed);
  std::vector<unsigned char> bytes(size);
  for (auto& byte : bytes) byte = static_cast<unsigned char>(random());
  return bytes;
}


// Reads `size` bytes from `stream` with borrowed reads, appending them to `into`.
Task<Result<void>> read_borrowed_exactly(TcpStream& stream, std::size_t size, std::vector<unsigned char>* into) {
  while (into->size() < size) {
    auto chunk = co_await stream.read_borrowed();
    if (!chunk) co_return chunk.error();
    if (chunk->empty()) co_return Error(ENODATA, "end of stream too early");
    const auto* bytes = reinterpret_cast<const unsigned char*>(chunk->data());
    into->insert(into->end(), bytes, bytes + chunk->size());
  }
  co_return ok();
}

TEST_P(BorrowedReadTest, BorrowedEchoReturnsOneMebibyteIntact) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    const SocketAddress address = *listener->local_addr();
    (void)Worker::current()->spawn(examples::serve_echo(std::move(*listener), {.borrowed_reads = true}));
    auto stream = co_await TcpStream::connect(address);
    EXPECT_TRUE(stream) << stream.error().message();
    if (!stream) co_return;
    const auto sent = random_bytes(1 << 20, 7);
    auto writer = Worker::current()->spawn([](TcpStream& s, const std::vector<unsigned char>& data) -> Task<Result<void>> {
      co_return co_await s.write_all(data);
    }(*stream, sent));
    std::vector<unsigned char> echoed(sent.size());
    auto received = co_await stream->read_exact(echoed);
    EXPECT_TRUE(received) << received.error().message();
    EXPECT_TRUE(co_await std::move(writer));
    EXPECT_TRUE(echoed == sent) << "the echo differs";
  }()));
}

TEST_P(BorrowedReadTest, EndOfStreamIsAnEmptyBuffer) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto pair = co_await testing::tcp_pair();
    EXPECT_TRUE(pair) << pair.error().message();
    if (!pair) co_return;
    EXPECT_TRUE(co_await pair->client.write_all("last words"));
    EXPECT_TRUE(pair->client.shutdown(Shutdown::kWrite));
    std::vector<unsigned char> got;
    EXPECT_TRUE(co_await read_borrowed_exactly(pair->server, 10, &got));
    EXPECT_EQ(std::string(got.begin(), got.end()), "last words");
    auto end = co_await pair->server.read_borrowed();
    EXPECT_TRUE(end) << end.error().message();
    if (end) {
      EXPECT_TRUE(end->empty());
    }
  }()));
}

// Four small buffers for 64 KiB: the reader holds all four, so the backend runs dry (io_uring: the
// multishot recv ends with ENOBUFS) and must resume when they come back, with every byte in order.
TEST_P(BorrowedReadTest, RunningOutOfBuffersLosesNoBytes) {
  create_worker({.lent_buffers = 4, .lent_buffer_size = 1024});
  EXPECT_TRUE(run([this]() -> Task<void> {
    auto pair = co_await testing::tcp_pair();
    EXPECT_TRUE(pair) << pair.error().message();
    if (!pair) co_return;
    const auto sent = random_bytes(64 * 1024, 11);
    EXPECT_TRUE(co_await pair->client.write_all(sent));  // fits the socket buffers: no reader needed
    std::vector<unsigned char> got;
    std::vector<BorrowedBuffer> held;
    for (int i = 0; i < 4; ++i) {
      auto chunk = co_await pair->server.read_borrowed();
      EXPECT_TRUE(chunk) << chunk.error().message();
      if (!chunk) co_return;
      const auto* bytes = reinterpret_cast<const unsigned char*>(chunk->data());
      got.insert(got.end(), bytes, bytes + chunk->size());
      held.push_back(std::move(*chunk));
    }
    // All four lent: the next read must wait, not fail.
    auto starved = co_await timeout(milliseconds(30), pair->server.read_borrowed());
    EXPECT_FALSE(starved);
    if (!starved) {
      EXPECT_TRUE(starved.error().is_timed_out()) << starved.error().message();
    }
    held.clear();  // give them back
    EXPECT_TRUE(co_await read_borrowed_exactly(pair->server, sent.size(), &got));
    EXPECT_TRUE(got == sent) << "bytes lost or reordered across the shortage";
    EXPECT_GE(worker_->counters().lent_buffers_exhausted, 1u);
  }()));
}

// A reader that keeps a buffer from one connection while another connection streams through the rest:
// the kept bytes must stay as they were, and the other connection's bytes must be right.
TEST_P(BorrowedReadTest, HeldBufferIsNotOverwrittenByOtherConnections) {
  create_worker({.lent_buffers = 8, .lent_buffer_size = 2048});
  EXPECT_TRUE(run([]() -> Task<void> {
    auto first = co_await testing::tcp_pair();
    auto second = co_await testing::tcp_pair();
    EXPECT_TRUE(first && second);
    if (!first || !second) co_return;
    EXPECT_TRUE(co_await first->client.write_all("keep me exactly as I am"));
    auto kept = co_await first->server.read_borrowed();
    EXPECT_TRUE(kept) << kept.error().message();
    if (!kept) co_return;
    const std::string before_text(reinterpret_cast<const char*>(kept->data()), kept->size());
    EXPECT_EQ(before_text, "keep me exactly as I am");

    const BackendCounters before = Worker::current()->counters();
    const auto sent = random_bytes(256 * 1024, 13);  // 128 times the buffer size, through 7 buffers
    auto writer = Worker::current()->spawn([](TcpStream& s, const std::vector<unsigned char>& data) -> Task<Result<void>> {
      co_return co_await s.write_all(data);
    }(second->client, sent));
    std::vector<unsigned char> got;
    EXPECT_TRUE(co_await read_borrowed_exactly(second->server, sent.size(), &got));
    EXPECT_TRUE(co_await std::move(writer));
    EXPECT_TRUE(got == sent);
    if (Worker::current()->features().uses_buffer_ring) {
      // One multishot request posts many chunks: far more completions than submissions.
      const BackendCounters after = Worker::current()->counters();
      EXPECT_GT((after.cqes_reaped - before.cqes_reaped) - (after.sqes_submitted - before.sqes_submitted), 100u);
    }
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(kept->data()), kept->size()), before_text)
        << "a held buffer was reused while lent";
  }()));
}

TEST_P(BorrowedReadTest, CancelledBorrowedReadLeavesTheStreamUsable) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto pair = co_await testing::tcp_pair();
    if (!pair) co_return;
    auto nothing = co_await timeout(milliseconds(20), pair->server.read_borrowed());
    EXPECT_FALSE(nothing);
    if (!nothing) {
      EXPECT_TRUE(nothing.error().is_timed_out()) << nothing.error().message();
    }
    EXPECT_TRUE(co_await pair->client.write_all("after"));
    std::vector<unsigned char> got;
    EXPECT_TRUE(co_await read_borrowed_exactly(pair->server, 5, &got));
    EXPECT_EQ(std::string(got.begin(), got.end()), "after");
  }()));
}

// Closing a stream with received chunks nobody claimed gives their buffers back: with only two buffers,
// a later stream can still borrow both.
TEST_P(BorrowedReadTest, ClosingAStreamReturnsItsUnclaimedBuffers) {
  create_worker({.lent_buffers = 2, .lent_buffer_size = 1024});
  EXPECT_TRUE(run([]() -> Task<void> {
    {
      auto pair = co_await testing::tcp_pair();
      if (!pair) co_return;
      EXPECT_TRUE(co_await pair->client.write_all(random_bytes(4096, 3)));
      auto one = co_await pair->server.read_borrowed();  // io_uring: the request now holds the other one
      EXPECT_TRUE(one);
      (void)co_await sleep_for(milliseconds(10));
    }  // both streams closed, `one` released
    (void)co_await sleep_for(milliseconds(10));
    auto pair = co_await testing::tcp_pair();
    if (!pair) co_return;
    EXPECT_TRUE(co_await pair->client.write_all(random_bytes(4096, 5)));
    auto a = co_await timeout(milliseconds(2000), pair->server.read_borrowed());
    auto b = co_await timeout(milliseconds(2000), pair->server.read_borrowed());
    EXPECT_TRUE(a) << a.error().message();
    EXPECT_TRUE(b) << b.error().message() << ": a closed stream kept a buffer";
  }()));
}

// A peer that keeps sending small segments to a stream nobody reads any more: that stream may hold at
// most lent_buffers_per_stream of the worker's buffers (io_uring stops its multishot recv and lets TCP
// push back), so another connection's borrowed read is served at once, and the ignored stream's bytes are
// all still there, in order, when it is read again.
TEST_P(BorrowedReadTest, APeerThatIsNeverReadCannotStarveOtherStreams) {
  create_worker({.lent_buffers = 16, .lent_buffer_size = 1024, .lent_buffers_per_stream = 4});
  EXPECT_TRUE(run([]() -> Task<void> {
    auto hostile = co_await testing::tcp_pair();
    auto other = co_await testing::tcp_pair();
    EXPECT_TRUE(hostile && other);
    if (!hostile || !other) co_return;
    EXPECT_TRUE(hostile->client.set_nodelay(true));
    EXPECT_TRUE(co_await hostile->client.write_all("hello"));
    {
      auto first = co_await hostile->server.read_borrowed();  // arms the stream's multishot request
      EXPECT_TRUE(first) << first.error().message();
    }
    // 64 separate segments, each of which would pin a whole buffer.
    std::string sent;
    for (int i = 0; i < 64; ++i) {
      const std::string segment = "segment" + std::to_string(100 + i) + ";";
      EXPECT_TRUE(co_await hostile->client.write_all(segment));
      sent += segment;
      (void)co_await sleep_for(milliseconds(1));
    }
    EXPECT_TRUE(co_await other->client.write_all("other"));
    auto chunk = co_await timeout(milliseconds(1000), other->server.read_borrowed());
    EXPECT_TRUE(chunk) << chunk.error().message() << ": one unread stream holds every lent buffer";
    if (chunk) {
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(chunk->data()), chunk->size()), "other");
    }
    std::vector<unsigned char> got;
    EXPECT_TRUE(co_await read_borrowed_exactly(hostile->server, sent.size(), &got));
    EXPECT_EQ(std::string(got.begin(), got.end()), sent);
  }()));
}

// A reader that found the ring empty (io_uring: its request ended with ENOBUFS) must go on when buffers
// come back by any path: here another stream closes with two received chunks nobody claimed.
TEST_P(BorrowedReadTest, BuffersReturnedByAClosingStreamWakeAStarvedReader) {
  create_worker({.lent_buffers = 2, .lent_buffer_size = 1024, .lent_buffers_per_stream = 2});
  EXPECT_TRUE(run([]() -> Task<void> {
    auto a = co_await testing::tcp_pair();
    auto b = co_await testing::tcp_pair();
    EXPECT_TRUE(a && b);
    if (!a || !b) co_return;
    EXPECT_TRUE(a->client.set_nodelay(true));
    EXPECT_TRUE(co_await a->client.write_all("a1"));
    {
      auto first = co_await a->server.read_borrowed();  // arms a's multishot request
      EXPECT_TRUE(first) << first.error().message();
    }
    for (const char* segment : {"a2", "a3"}) {  // two chunks queue on a: the ring is empty now (io_uring)
      EXPECT_TRUE(co_await a->client.write_all(std::string_view(segment)));
      (void)co_await sleep_for(milliseconds(5));
    }
    EXPECT_TRUE(co_await b->client.write_all("b"));
    auto reader = Worker::current()->spawn([](TcpStream& s) -> Task<Result<std::string>> {
      auto chunk = co_await timeout(milliseconds(2000), s.read_borrowed());
      if (!chunk) co_return chunk.error();
      co_return std::string(reinterpret_cast<const char*>(chunk->data()), chunk->size());
    }(b->server));
    (void)co_await sleep_for(milliseconds(10));  // b's reader finds no buffer
    EXPECT_TRUE(a->server.close());              // a's two queued chunks go back to the ring
    auto got = co_await std::move(reader);
    EXPECT_TRUE(got) << got.error().message() << ": the starved reader was not woken";
    if (got) {
      EXPECT_EQ(*got, "b");
    }
  }()));
}

// Where the kernel has buffer rings and multishot recv, io_uring must use them for borrowed reads (the
// tests above then cover that path); elsewhere a skip says the pool path was what ran.
TEST_P(BorrowedReadTest, BufferRingIsUsedWhereTheKernelHasIt) {
  const BackendFeatures features = worker_->features();
  if (features.kind != BackendKind::kIoUring) GTEST_SKIP() << "epoll lends from a pool";
  if (!features.buffer_rings || !features.multishot_recv) {
    GTEST_SKIP() << "this kernel lacks buffer rings or multishot recv (6.0): the pool path ran";
  }
  EXPECT_TRUE(features.uses_buffer_ring);
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(BorrowedReadTest);

}  // namespace
}  // namespace surge
