// The I/O hot path allocates nothing: once a connection is set up, echo round trips over loopback TCP
// (write_all, read, read_exact; with and without a deadline) make no call to operator new, on every
// backend. Counted by //runtime/testing:allocation_counter, which replaces operator new in this binary.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <new>
#include <vector>

#include "examples/echo.h"
#include "net/socket_address.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/testing/allocation_counter.h"
#include "runtime/when.h"
#include "runtime/testing/backend_param.h"

namespace surge {
namespace {

using testing::BackendTest;

class HotPathAllocationTest : public BackendTest {};

enum class Deadline { kNone, kOnEachRead };
enum class Reads { kOwnBuffer, kBorrowed };

// `count` round trips of `size` bytes on `stream` (an echo server answers), each byte checked.
Task<Result<void>> round_trips(TcpStream& stream, int count, std::vector<unsigned char>& message,
                               std::vector<unsigned char>& echoed, Deadline deadline, Reads reads) {
  for (int i = 0; i < count; ++i) {
    message[0] = static_cast<unsigned char>(i);
    if (auto sent = co_await stream.write_all(message); !sent) co_return sent.error();
    if (reads == Reads::kBorrowed) {
      for (std::size_t got = 0; got < echoed.size();) {
        auto chunk = co_await stream.read_borrowed();
        if (!chunk) co_return chunk.error();
        if (chunk->empty()) co_return Error(ECONNRESET, "echo closed");
        std::memcpy(echoed.data() + got, chunk->data(), chunk->size());
        got += chunk->size();
      }
    } else if (deadline == Deadline::kNone) {
      if (auto got = co_await stream.read_exact(echoed); !got) co_return got.error();
    } else {
      for (std::size_t got = 0; got < echoed.size();) {
        auto n = co_await timeout(std::chrono::seconds(5), stream.read(MutableBuffer(echoed.data() + got,
                                                                                     echoed.size() - got)));
        if (!n) co_return n.error();
        if (*n == 0) co_return Error(ECONNRESET, "echo closed");
        got += *n;
      }
    }
    if (std::memcmp(message.data(), echoed.data(), message.size()) != 0) co_return Error(EBADMSG, "echo differs");
  }
  co_return ok();
}

Task<void> expect_no_allocations(std::size_t size, Deadline deadline, Reads reads = Reads::kOwnBuffer) {
  auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  EXPECT_TRUE(listener) << listener.error().message();
  if (!listener) co_return;
  const SocketAddress address = *listener->local_addr();
  (void)Worker::current()->spawn(
      examples::serve_echo(std::move(*listener), {.borrowed_reads = reads == Reads::kBorrowed}));
  auto stream = co_await TcpStream::connect(address);
  EXPECT_TRUE(stream) << stream.error().message();
  if (!stream) co_return;
  std::vector<unsigned char> message(size, 0x42);
  std::vector<unsigned char> echoed(size);
  // Warm-up: the server accepts, spawns its session and allocates its buffer; timer wheel slots fill.
  auto warm = co_await round_trips(*stream, 100, message, echoed, deadline, reads);
  EXPECT_TRUE(warm) << warm.error().message();
  // The Task's own frame is allocated when it is created: do that before counting.
  Task<Result<void>> measured_round_trips = round_trips(*stream, 1000, message, echoed, deadline, reads);
  const std::uint64_t before = surge::testing::allocation_count();
  auto measured = co_await std::move(measured_round_trips);
  const std::uint64_t allocations = surge::testing::allocation_count() - before;
  EXPECT_TRUE(measured) << measured.error().message();
  EXPECT_EQ(allocations, 0u) << "operator new calls in 1,000 round trips (client and server, same worker)";
}

// Whether this binary's operator new is the counting one (a sanitizer runtime's could win the link).
bool counter_is_active() {
  const std::uint64_t before = surge::testing::allocation_count();
  ::operator delete(::operator new(1));
  return surge::testing::allocation_count() - before == 1;
}

#define SKIP_UNLESS_COUNTING() \
  if (!counter_is_active()) GTEST_SKIP() << "the counting operator new is not the one linked in"

TEST_P(HotPathAllocationTest, SmallEchoRoundTripsAllocateNothing) {
  SKIP_UNLESS_COUNTING();
  EXPECT_TRUE(run(expect_no_allocations(64, Deadline::kNone)));
}

TEST_P(HotPathAllocationTest, LargeEchoRoundTripsAllocateNothing) {
  SKIP_UNLESS_COUNTING();
  EXPECT_TRUE(run(expect_no_allocations(256 * 1024, Deadline::kNone)));
}

TEST_P(HotPathAllocationTest, ReadsWithDeadlinesAllocateNothing) {
  SKIP_UNLESS_COUNTING();
  EXPECT_TRUE(run(expect_no_allocations(64, Deadline::kOnEachRead)));
}

// Borrowed reads on both sides: the server's echo sessions and this client (io_uring: multishot recv
// into the provided-buffer ring; the per-stream queues must not allocate as they cycle).
TEST_P(HotPathAllocationTest, BorrowedReadsAllocateNothing) {
  SKIP_UNLESS_COUNTING();
  EXPECT_TRUE(run(expect_no_allocations(64, Deadline::kNone, Reads::kBorrowed)));
}

// The counter itself must be able to fail the tests above.
TEST(AllocationCounterTest, CountsEveryFormOfOperatorNew) {
  // Explicit calls: the compiler may elide a new-expression whose result is unused, not these.
  const std::uint64_t before = surge::testing::allocation_count();
  ::operator delete(::operator new(8));
  ::operator delete[](::operator new[](16));
  ::operator delete(::operator new(64, std::align_val_t(64)), std::align_val_t(64));
  ::operator delete(::operator new(8, std::nothrow));
  EXPECT_EQ(surge::testing::allocation_count() - before, 4u);
  EXPECT_GE(surge::testing::thread_allocation_count(), 4u);
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(HotPathAllocationTest);

}  // namespace
}  // namespace surge
