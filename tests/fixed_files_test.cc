// io_uring's registered (fixed) file table, seen from the outside: sockets work the same whether their fd
// got a slot or the table was full, and slots come back when sockets close. epoll has no such table, so
// there these run as plain echo checks (the behaviour must be the same).
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "examples/echo.h"
#include "net/socket_address.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/testing/backend_param.h"

namespace surge {
namespace {

using testing::BackendTest;

class FixedFilesTest : public BackendTest {};

// One 64-byte round trip on a new connection to the echo server at `address`.
Task<Result<void>> one_echo(SocketAddress address, unsigned char tag) {
  auto stream = co_await TcpStream::connect(address);
  if (!stream) co_return stream.error();
  std::vector<unsigned char> message(64, tag);
  std::vector<unsigned char> echoed(64);
  if (auto sent = co_await stream->write_all(message); !sent) co_return sent.error();
  if (auto got = co_await stream->read_exact(echoed); !got) co_return got.error();
  if (echoed != message) co_return Error(EBADMSG, "echo differs");
  co_return ok();
}

// Two slots for a listener and eight open connections (16 more fds): most fds cannot have a slot.
TEST_P(FixedFilesTest, FullTableFallsBackToPlainFds) {
  create_worker({.fixed_file_slots = 2});
  EXPECT_TRUE(run([this]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    const SocketAddress address = *listener->local_addr();
    (void)Worker::current()->spawn(examples::serve_echo(std::move(*listener)));
    std::vector<TcpStream> open;
    for (int i = 0; i < 8; ++i) {
      auto stream = co_await TcpStream::connect(address);
      EXPECT_TRUE(stream) << stream.error().message();
      if (!stream) co_return;
      open.push_back(std::move(*stream));
    }
    for (int round = 0; round < 3; ++round) {
      for (auto& stream : open) {
        std::vector<unsigned char> message(100, static_cast<unsigned char>(round));
        std::vector<unsigned char> echoed(100);
        EXPECT_TRUE(co_await stream.write_all(message));
        EXPECT_TRUE(co_await stream.read_exact(echoed));
        EXPECT_EQ(echoed, message);
      }
    }
    if (worker_->features().uses_fixed_files) {
      EXPECT_GT(worker_->counters().fixed_table_full, 0u) << "the table should have run out";
    }
  }()));
}

// Connections opened and closed one after another: each close frees the slots it took, so a small table
// never runs out.
TEST_P(FixedFilesTest, SlotsComeBackWhenSocketsClose) {
  create_worker({.fixed_file_slots = 4});  // the listener, one client, one server session, one spare
  EXPECT_TRUE(run([this]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    const SocketAddress address = *listener->local_addr();
    (void)Worker::current()->spawn(examples::serve_echo(std::move(*listener)));
    for (int i = 0; i < 20; ++i) {
      auto echoed = co_await one_echo(address, static_cast<unsigned char>(i));
      EXPECT_TRUE(echoed) << "connection " << i << ": " << echoed.error().message();
      // The server's session sees end of stream and closes its side during the next turns.
      for (int turn = 0; turn < 20; ++turn) co_await yield();
    }
    EXPECT_EQ(worker_->counters().fixed_table_full, 0u);
  }()));
}

TEST_P(FixedFilesTest, FixedFilesAreUsedWhereTheKernelHasThem) {
  const BackendFeatures features = worker_->features();
  if (features.kind != BackendKind::kIoUring) GTEST_SKIP() << "epoll has no registered files";
  if (!features.sparse_fixed_files) GTEST_SKIP() << "this kernel lacks sparse file tables (5.19)";
  EXPECT_TRUE(features.uses_fixed_files);
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(FixedFilesTest);

}  // namespace
}  // namespace surge
