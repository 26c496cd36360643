// TcpStream's socket options (set_nodelay, set_linger, set_send_buffer_size, set_receive_buffer_size)
// and abort(), on real loopback connections, on every backend.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <vector>

#include "net/tcp_stream.h"
#include "net/testing/stream_pair.h"
#include "runtime/testing/backend_param.h"

namespace surge {
namespace {

using testing::BackendTest;
using testing::tcp_pair;

class TcpOptionsTest : public BackendTest {};

template <typename T>
T get_option(const TcpStream& stream, int level, int option) {
  T value{};
  socklen_t size = sizeof(value);
  EXPECT_EQ(getsockopt(stream.native_handle(), level, option, &value, &size), 0);
  return value;
}

TEST_P(TcpOptionsTest, OptionsReachTheSocket) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto pair = co_await tcp_pair();
    EXPECT_TRUE(pair) << pair.error().message();
    if (!pair) co_return;
    TcpStream& stream = pair->client;
    EXPECT_TRUE(stream.set_nodelay(true));
    EXPECT_EQ(get_option<int>(stream, IPPROTO_TCP, TCP_NODELAY), 1);
    EXPECT_TRUE(stream.set_nodelay(false));
    EXPECT_EQ(get_option<int>(stream, IPPROTO_TCP, TCP_NODELAY), 0);

    EXPECT_TRUE(stream.set_linger(std::chrono::seconds(7)));
    linger lingering = get_option<linger>(stream, SOL_SOCKET, SO_LINGER);
    EXPECT_EQ(lingering.l_onoff, 1);
    EXPECT_EQ(lingering.l_linger, 7);
    EXPECT_TRUE(stream.set_linger(std::nullopt));
    EXPECT_EQ(get_option<linger>(stream, SOL_SOCKET, SO_LINGER).l_onoff, 0);
    auto negative = stream.set_linger(std::chrono::seconds(-1));
    EXPECT_FALSE(negative);
    if (!negative) {
      EXPECT_EQ(negative.error().code(), EINVAL);
    }

    // Linux doubles the value for its bookkeeping; a size well away from the default shows it arrived.
    EXPECT_TRUE(stream.set_send_buffer_size(8192));
    EXPECT_EQ(get_option<int>(stream, SOL_SOCKET, SO_SNDBUF), 2 * 8192);
    EXPECT_TRUE(stream.set_receive_buffer_size(8192));
    EXPECT_EQ(get_option<int>(stream, SOL_SOCKET, SO_RCVBUF), 2 * 8192);
  }()));
}

TEST_P(TcpOptionsTest, FailuresNameTheOption) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto pair = co_await tcp_pair();
    EXPECT_TRUE(pair) << pair.error().message();
    if (!pair) co_return;
    TcpStream& stream = pair->client;
    EXPECT_TRUE(stream.close());
    const std::vector<std::pair<Result<void>, std::string>> outcomes = {
        {stream.set_nodelay(true), "setsockopt(TCP_NODELAY)"},
        {stream.set_linger(std::chrono::seconds(1)), "setsockopt(SO_LINGER)"},
        {stream.set_send_buffer_size(4096), "setsockopt(SO_SNDBUF)"},
        {stream.set_receive_buffer_size(4096), "setsockopt(SO_RCVBUF)"},
    };
    for (const auto& [outcome, operation] : outcomes) {
      EXPECT_FALSE(outcome) << operation;
      if (outcome) continue;
      EXPECT_EQ(outcome.error().code(), EBADF) << operation;
      EXPECT_EQ(std::string(outcome.error().operation()), operation);
    }
    EXPECT_TRUE(stream.abort()) << "abort on a closed stream does nothing";
  }()));
}

TEST_P(TcpOptionsTest, AbortResetsThePeer) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto pair = co_await tcp_pair();
    EXPECT_TRUE(pair) << pair.error().message();
    if (!pair) co_return;
    EXPECT_TRUE(pair->server.abort());
    EXPECT_FALSE(pair->server.is_open());
    EXPECT_TRUE(pair->server.abort()) << "a second abort does nothing";
    std::array<std::byte, 16> buffer;
    auto n = co_await pair->client.read(buffer);
    EXPECT_FALSE(n) << "read " << (n ? *n : 0) << " bytes instead of ECONNRESET (0 is a FIN: close, not abort)";
    if (!n) {
      EXPECT_EQ(n.error().code(), ECONNRESET) << n.error().message();
    }
  }()));
}

// The writer has a write in flight and its send queue full (the peer reads nothing): abort returns at
// once, the write ends (ECANCELED, as on close), the unsent data is dropped and the peer sees a reset.
TEST_P(TcpOptionsTest, AbortWithUnsentDataQueuedDoesNotBlock) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto pair = co_await tcp_pair();
    EXPECT_TRUE(pair) << pair.error().message();
    if (!pair) co_return;
    EXPECT_TRUE(pair->client.set_send_buffer_size(16 * 1024));
    EXPECT_TRUE(pair->server.set_receive_buffer_size(16 * 1024));
    std::vector<char> data(8 << 20, 'x');
    auto writing = Worker::current()->spawn([](TcpStream& stream, std::vector<char>& bytes) -> Task<TransferResult> {
      co_return co_await stream.write_all(ConstBuffer(bytes.data(), bytes.size()));
    }(pair->client, data));
    co_await testing::settle();
    EXPECT_FALSE(writing.is_finished()) << "the write should wait for the peer";

    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(pair->client.abort());
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
    TransferResult written = co_await std::move(writing);
    EXPECT_FALSE(written);
    EXPECT_LT(written.transferred(), data.size());
    if (!written) {
      EXPECT_EQ(written.error().code(), ECANCELED) << written.error().message();
    }

    // The peer may read what had arrived before the reset; then the reset, never an orderly end.
    std::vector<std::byte> buffer(64 * 1024);
    std::size_t received = 0;
    for (;;) {
      auto n = co_await pair->server.read(MutableBuffer(buffer.data(), buffer.size()));
      if (!n) {
        EXPECT_EQ(n.error().code(), ECONNRESET) << n.error().message();
        break;
      }
      EXPECT_NE(*n, 0u) << "end of stream instead of a reset";
      if (*n == 0) break;
      received += *n;
    }
    EXPECT_LT(received, data.size());
  }()));
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(TcpOptionsTest);

}  // namespace
}  // namespace surge
