// Faults the kernel rarely produces on demand, injected through FaultInjectionBackend on every backend:
// short reads and writes, EAGAIN, connection resets, cancellations, and "fail the N-th operation" sweeps.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "examples/echo.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/testing/fault_injection_backend.h"
#include "runtime/testing/backend_param.h"
#include "runtime/testing/fd_count.h"
#include "net/testing/stream_pair.h"

namespace surge {
namespace {

// The worker's backend is the real one wrapped in a FaultInjectionBackend (faults_).
class FaultInjectionTest : public testing::BackendTest {
 protected:
  void SetUp() override {
    worker_.reset();
    std::unique_ptr<Backend> real;
    testing::make_backend_or_skip(GetParam(), {}, real);
    if (!real) return;
    auto wrapper = std::make_unique<FaultInjectionBackend>(std::move(real));
    faults_ = wrapper.get();
    worker_ = Worker::with_backend(std::move(wrapper));
  }

  std::pair<TcpStream, TcpStream> stream_pair() { return testing::stream_pair(*worker_); }

  FaultInjectionBackend* faults_ = nullptr;
};

TEST_P(FaultInjectionTest, ShortReadsAndWritesLoseNothing) {
  faults_->limit_transfer(7);  // every recv and send moves at most 7 bytes
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run([](TcpStream& writer, TcpStream& reader) -> Task<void> {
    std::string sent(100'000, '\0');
    for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i * 7 + i / 251);
    auto writing = Worker::current()->spawn([](TcpStream& s, const std::string& data) -> Task<Result<void>> {
      co_return co_await s.write_all(data);
    }(writer, sent));
    std::string received(sent.size(), '\0');
    auto read = co_await reader.read_exact(received);
    EXPECT_TRUE(read) << read.error().message();
    auto written = co_await std::move(writing);
    EXPECT_TRUE(written) << written.error().message();
    EXPECT_TRUE(received == sent);

    char small[64];
    EXPECT_TRUE(co_await writer.write_all(std::string_view("0123456789")));
    auto n = co_await reader.read(small);
    EXPECT_TRUE(n);
    EXPECT_LE(*n, 7u) << "a plain read must report the short count, not wait for more";
  }(a, b)));
}

TEST_P(FaultInjectionTest, EagainIsRetriedTransparently) {
  faults_->fail_nth(OpCode::kRecv, 1, EAGAIN);
  faults_->fail_nth(OpCode::kRecv, 1, EAGAIN);
  faults_->fail_nth(OpCode::kSend, 1, EINTR);
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run([](TcpStream& writer, TcpStream& reader) -> Task<void> {
    EXPECT_TRUE(co_await writer.write_all(std::string_view("hello")));
    char buffer[5];
    auto read = co_await reader.read_exact(buffer);
    EXPECT_TRUE(read) << read.error().message();
    EXPECT_EQ(std::string_view(buffer, 5), "hello");
  }(a, b)));
  EXPECT_EQ(faults_->injected(), 3);
}

TEST_P(FaultInjectionTest, ResetSurfacesAsErrorValueWithOperation) {
  faults_->fail_nth(OpCode::kRecv, 1, ECONNRESET);
  faults_->fail_nth(OpCode::kSend, 1, EPIPE);
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run([](TcpStream& left, TcpStream& right) -> Task<void> {
    char buffer[4];
    auto read = co_await left.read(buffer);
    EXPECT_FALSE(read);
    if (!read) {
      EXPECT_EQ(read.error().code(), ECONNRESET);
      EXPECT_EQ(read.error().message(), "recv: Connection reset by peer");
    }
    auto written = co_await right.write_all(std::string_view("data"));
    EXPECT_FALSE(written);
    if (!written) {
      EXPECT_EQ(written.error().code(), EPIPE);
      EXPECT_STREQ(written.error().operation(), "send");
    }
  }(a, b)));
}

TEST_P(FaultInjectionTest, CancellationIsADistinctOutcome) {
  faults_->fail_nth(OpCode::kRecv, 1, ECANCELED);
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run([](TcpStream& stream) -> Task<void> {
    char buffer[4];
    auto read = co_await stream.read(buffer);
    EXPECT_FALSE(read);
    if (!read) {
      EXPECT_TRUE(read.error().is_cancelled());
      EXPECT_FALSE(read.error().is_timed_out());
    }
  }(a)));
}

TEST_P(FaultInjectionTest, WriteAllStopsAtTheFirstErrorMidway) {
  faults_->limit_transfer(3);
  faults_->fail_nth(OpCode::kSend, 3, ECONNRESET);  // after two short sends
  auto [a, b] = stream_pair();
  EXPECT_TRUE(run([](TcpStream& writer, TcpStream& reader) -> Task<void> {
    auto written = co_await writer.write_all(std::string_view("abcdefghij"));
    EXPECT_FALSE(written);
    if (!written) {
      EXPECT_EQ(written.error().code(), ECONNRESET);
    }
    char buffer[6];
    auto read = co_await reader.read_exact(buffer);  // the 6 bytes that did go out are there, in order
    EXPECT_TRUE(read);
    EXPECT_EQ(std::string_view(buffer, 6), "abcdef");
  }(a, b)));
}

// A whole echo exchange over TCP, failing the N-th operation (of any kind) for every N until the
// exchange runs clean: each run must end with success or an error value, never a crash, hang or leak.
TEST_P(FaultInjectionTest, FailTheNthOperationSweep) {
  worker_.reset();
  const int fds_before = testing::open_fd_count();
  int clean_runs = 0;
  for (int nth = 1; nth <= 40 && clean_runs < 2; ++nth) {
    SCOPED_TRACE(::testing::Message() << "failing operation " << nth);
    SetUp();
    faults_->fail_nth(std::nullopt, nth, ECONNRESET);
    bool exchanged = false;
    EXPECT_TRUE(run([](bool* exchanged) -> Task<void> {
      auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
      EXPECT_TRUE(listener);
      if (!listener) co_return;
      auto address = *listener->local_addr();
      auto client = Worker::current()->spawn([](SocketAddress address) -> Task<Result<void>> {
        auto stream = co_await TcpStream::connect(address);
        if (!stream) co_return stream.error();
        std::string message(1000, 'm');
        if (auto sent = co_await stream->write_all(message); !sent) co_return sent.error();
        std::string reply(message.size(), '\0');
        if (auto received = co_await stream->read_exact(reply); !received) co_return received.error();
        if (reply != message) co_return Error(EBADMSG, "echo mismatch");
        co_return ok();
      }(address));
      bool accept_returned = false;
      auto server = Worker::current()->spawn([](TcpListener& listener, bool* accept_returned) -> Task<void> {
        auto accepted = co_await listener.accept();
        *accept_returned = true;
        if (accepted) {
          (void)co_await examples::echo_session(std::move(*accepted));
        } else {
          (void)listener.close();  // the client's pending connection is reset: it cannot hang
        }
      }(*listener, &accept_returned));
      auto outcome = co_await std::move(client);
      if (!accept_returned) {
        // The client failed before connecting: the server still waits in accept. Let it through (the one
        // injected fault has been spent, so this connect is not faulted).
        auto poke = co_await TcpStream::connect(address);
        EXPECT_TRUE(poke);
      }
      co_await std::move(server);
      *exchanged = outcome.ok();
      if (!outcome) {
        const int code = outcome.error().code();
        EXPECT_TRUE(code == ECONNRESET || code == ENODATA || code == ECONNREFUSED || code == EPIPE)
            << outcome.error().message();
      }
    }(&exchanged)));
    if (faults_->injected() == 0) {
      EXPECT_TRUE(exchanged);
      ++clean_runs;
    }
    worker_.reset();
  }
  EXPECT_EQ(clean_runs, 2) << "the sweep never reached an operation count beyond the exchange";
  EXPECT_EQ(testing::open_fd_count(), fds_before);
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(FaultInjectionTest);

}  // namespace
}  // namespace surge
