// Zero-copy writes (BackendOptions::send_zero_copy_threshold) to a peer that never reads: once the send's
// result is in, the kernel still holds the caller's pages until the data is acknowledged, which never
// happens. A deadline, a cancellation and worker shutdown must still end such a write in bounded time (the
// io_uring backend resets the connection so that the kernel lets go of the pages). Where zero-copy is
// unavailable (epoll) the same checks run on plain sends, which must behave the same.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "net/socket_address.h"
#include "net/tcp_stream.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "runtime/testing/backend_param.h"
#include "net/testing/stream_pair.h"

namespace surge {
namespace {

using testing::BackendTest;

// Writes of 1 MiB (each pinned whole by a zero-copy send, well under a default RLIMIT_MEMLOCK), 32 of
// them: far more than loopback's socket buffers hold while the peer does not read.
constexpr std::size_t kChunkSize = 1 << 20;
constexpr int kChunks = 32;

// A listening socket outside the runtime, so that the peer end can outlive the worker and never read.
class SilentPeer {
 public:
  SilentPeer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
  }
  ~SilentPeer() {
    if (peer_fd_ >= 0) ::close(peer_fd_);
    ::close(listen_fd_);
  }
  SocketAddress address() const { return *SocketAddress::local_of(listen_fd_); }
  // Takes the connection the client made (after its connect completed).
  void accept_it() { peer_fd_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC); }
  int peer_fd() const { return peer_fd_; }

 private:
  int listen_fd_ = -1;
  int peer_fd_ = -1;
};

// Aborts the process with a message if not disarmed within `limit`: a hang in a destructor (which no
// task-level bound can catch) becomes a failure with a message instead of a CI time-out.
class Watchdog {
 public:
  Watchdog(std::chrono::seconds limit, const char* what)
      : thread_([this, limit, what] {
          std::unique_lock lock(mutex_);
          if (!done_cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "FAILED: %s did not finish within %lld s\n", what,
                         static_cast<long long>(limit.count()));
            std::_Exit(1);
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    done_cv_.notify_one();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread thread_;
};

class SendZeroCopyCancelTest : public BackendTest {
 protected:
  void SetUp() override { create_worker({.send_zero_copy_threshold = 64 * 1024}); }

  void expect_zero_copy_in_use() {
    const BackendFeatures features = worker_->features();
    if (features.kind == BackendKind::kIoUring && features.send_zc) EXPECT_TRUE(features.uses_send_zc);
  }
};

Task<Result<TcpStream>> connect_to(SilentPeer& peer) {
  auto stream = co_await TcpStream::connect(peer.address());
  if (stream) peer.accept_it();
  co_return stream;
}

// write_all of `data` kChunks times, each bounded by `limit` if given; the first failure ends it.
Task<Result<void>> write_everything(TcpStream& stream, std::vector<unsigned char>& data,
                                    std::optional<std::chrono::milliseconds> limit = std::nullopt) {
  for (int i = 0; i < kChunks; ++i) {
    auto written = limit ? co_await timeout(*limit, stream.write_all(data)) : co_await stream.write_all(data);
    if (!written) co_return written.error();
  }
  co_return ok();
}

TEST_P(SendZeroCopyCancelTest, DeadlineEndsAWriteThePeerNeverReads) {
  expect_zero_copy_in_use();
  SilentPeer peer;
  std::vector<unsigned char> data(kChunkSize, 0x5a);
  EXPECT_TRUE(run([&]() -> Task<void> {
    auto stream = co_await connect_to(peer);
    EXPECT_TRUE(stream) << stream.error().message();
    if (!stream) co_return;
    const auto start = std::chrono::steady_clock::now();
    auto written = co_await write_everything(*stream, data, std::chrono::milliseconds(300));
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_FALSE(written) << "writes of 32 MiB to a peer that never reads cannot finish";
    if (!written) {
      EXPECT_TRUE(written.error().is_timed_out()) << written.error().message();
    }
    EXPECT_LT(took, std::chrono::seconds(2));
  }(), std::chrono::seconds(5)));
}

TEST_P(SendZeroCopyCancelTest, CancelEndsAWriteThePeerNeverReads) {
  expect_zero_copy_in_use();
  SilentPeer peer;
  std::vector<unsigned char> data(kChunkSize, 0xa5);
  EXPECT_TRUE(run([&]() -> Task<void> {
    auto stream = co_await connect_to(peer);
    EXPECT_TRUE(stream) << stream.error().message();
    if (!stream) co_return;
    auto writer = Worker::current()->spawn(write_everything(*stream, data));
    (void)co_await sleep_for(std::chrono::milliseconds(300));  // until the socket buffers are full
    EXPECT_FALSE(writer.is_finished());
    writer.cancel();
    auto written = co_await std::move(writer);
    EXPECT_FALSE(written);
    if (!written) {
      EXPECT_TRUE(written.error().is_cancelled()) << written.error().message();
    }
  }(), std::chrono::seconds(5)));
}

TEST_P(SendZeroCopyCancelTest, WorkerShutdownWithAStuckWriteInFlightFinishes) {
  expect_zero_copy_in_use();
  SilentPeer peer;
  std::vector<unsigned char> data(kChunkSize, 0x33);
  EXPECT_TRUE(run([&]() -> Task<void> {
    auto connected = co_await connect_to(peer);
    EXPECT_TRUE(connected) << connected.error().message();
    if (!connected) co_return;
    // Detached, owning the stream: still in flight when the worker shuts down, which destroys its frame.
    (void)Worker::current()->spawn([](TcpStream stream, std::vector<unsigned char>& bytes) -> Task<void> {
      (void)co_await write_everything(stream, bytes);
    }(std::move(*connected), data));
    (void)co_await sleep_for(std::chrono::milliseconds(300));
  }(), std::chrono::seconds(5)));
  Watchdog watchdog(std::chrono::seconds(10), "worker shutdown with a zero-copy write in flight");
  worker_.reset();
}

// A zero-copy send the kernel cannot pin pages for (RLIMIT_MEMLOCK counts them; lowered here so that
// 1 MiB exceeds it) fails with ENOMEM: the backend sends the same bytes the ordinary way instead, so the
// caller sees an ordinary write. (A process with CAP_IPC_LOCK is not limited: there this is a plain echo.)
// A socket without a zero-copy path (a Unix socket answers SEND_ZC with EOPNOTSUPP) still gets every
// byte: the send falls back to a copy.
TEST_P(SendZeroCopyCancelTest, SocketWithoutZeroCopyFallsBackToACopy) {
  auto [writer, reader] = testing::stream_pair(*worker_);
  EXPECT_TRUE(run([](TcpStream& writer, TcpStream& reader) -> Task<void> {
    std::vector<char> sent(1 << 20);
    for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i * 7);
    auto drain = Worker::current()->spawn([](TcpStream& s, std::size_t size) -> Task<std::vector<char>> {
      std::vector<char> got(size);
      auto read = co_await s.read_exact(got);
      EXPECT_TRUE(read) << read.error().message();
      co_return got;
    }(reader, sent.size()));
    auto written = co_await writer.write_all(sent);
    EXPECT_TRUE(written) << written.error().message();
    EXPECT_TRUE(co_await std::move(drain) == sent);
  }(writer, reader)));
}

TEST_P(SendZeroCopyCancelTest, SendThatCannotPinPagesFallsBackToACopy) {
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_MEMLOCK, &saved), 0);
  rlimit lowered = saved;
  lowered.rlim_cur = saved.rlim_cur < 256 * 1024 ? saved.rlim_cur : 256 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_MEMLOCK, &lowered), 0);
  std::vector<unsigned char> data(4 * kChunkSize);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i * 7 + i / 4096);
  EXPECT_TRUE(run([&]() -> Task<void> {
    SilentPeer peer;
    auto stream = co_await connect_to(peer);
    EXPECT_TRUE(stream) << stream.error().message();
    if (stream) {
      // A reader thread drains the peer end, so every byte can be checked (bounded: it gives up after 2 s
      // without data).
      const timeval two_seconds{.tv_sec = 2, .tv_usec = 0};
      EXPECT_EQ(::setsockopt(peer.peer_fd(), SOL_SOCKET, SO_RCVTIMEO, &two_seconds, sizeof(two_seconds)), 0);
      std::vector<unsigned char> received;
      std::thread reader([&received, fd = peer.peer_fd(), total = data.size()] {
        std::vector<unsigned char> chunk(64 * 1024);
        while (received.size() < total) {
          const ssize_t n = ::recv(fd, chunk.data(), chunk.size(), 0);
          if (n <= 0) break;
          received.insert(received.end(), chunk.begin(), chunk.begin() + n);
        }
      });
      auto written = co_await stream->write_all(data);
      EXPECT_TRUE(written) << written.error().message();
      reader.join();
      EXPECT_TRUE(received == data) << "received " << received.size() << " bytes, not the ones written";
    }
  }(), std::chrono::seconds(5)));
  setrlimit(RLIMIT_MEMLOCK, &saved);
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(SendZeroCopyCancelTest);

}  // namespace
}  // namespace surge
