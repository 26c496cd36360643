// Large writes as IORING_OP_SEND_ZC (BackendOptions::send_zero_copy_threshold): the bytes must arrive
// intact, and a write must complete only once the kernel has let go of the buffer (the notification), so
// that reusing the buffer right after the write returns is safe. epoll has no zero-copy send; the same
// checks run there as plain sends.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "examples/echo.h"
#include "net/socket_address.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/testing/backend_param.h"

namespace surge {
namespace {

using testing::BackendTest;

class SendZeroCopyTest : public BackendTest {
 protected:
  void SetUp() override { create_worker({.send_zero_copy_threshold = 64 * 1024}); }
};

TEST_P(SendZeroCopyTest, OneMebibyteEchoesIntactAndTheBufferIsReusable) {
  EXPECT_TRUE(run([this]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    const SocketAddress address = *listener->local_addr();
    (void)Worker::current()->spawn(examples::serve_echo(std::move(*listener)));
    auto stream = co_await TcpStream::connect(address);
    EXPECT_TRUE(stream) << stream.error().message();
    if (!stream) co_return;
    std::mt19937 random(29);
    std::vector<unsigned char> expected;
    auto reader = Worker::current()->spawn([](TcpStream& s, std::size_t total) -> Task<Result<std::vector<unsigned char>>> {
      std::vector<unsigned char> got(total);
      if (auto read = co_await s.read_exact(got); !read) co_return read.error();
      co_return got;
    }(*stream, 4 << 20));
    // Four writes of 1 MiB from ONE buffer, overwritten right after each write returns: if a write
    // returned before the kernel was done with the pages, later bytes would show up early.
    std::vector<unsigned char> buffer(1 << 20);
    const BackendCounters before = worker_->counters();
    for (int i = 0; i < 4; ++i) {
      for (auto& byte : buffer) byte = static_cast<unsigned char>(random());
      expected.insert(expected.end(), buffer.begin(), buffer.end());
      auto written = co_await stream->write_all(buffer);
      EXPECT_TRUE(written) << written.error().message();
    }
    auto echoed = co_await std::move(reader);
    EXPECT_TRUE(echoed) << echoed.error().message();
    if (echoed) {
      EXPECT_TRUE(*echoed == expected) << "bytes differ";
    }
    if (worker_->features().uses_send_zc) {
      // Each zero-copy send posts two completions (result, then notification).
      const BackendCounters after = worker_->counters();
      EXPECT_GT(after.cqes_reaped - before.cqes_reaped, after.operations_completed - before.operations_completed);
    }
  }()));
}

TEST_P(SendZeroCopyTest, SendZeroCopyIsUsedWhereTheKernelHasIt) {
  const BackendFeatures features = worker_->features();
  if (features.kind != BackendKind::kIoUring) GTEST_SKIP() << "epoll has no zero-copy send";
  if (!features.send_zc) GTEST_SKIP() << "this kernel lacks IORING_OP_SEND_ZC (6.0)";
  EXPECT_TRUE(features.uses_send_zc);
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(SendZeroCopyTest);

}  // namespace
}  // namespace surge
