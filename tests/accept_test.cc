// Accepting connections, on every backend: bursts, the bound on accepted-but-unclaimed connections,
// cancelled and timed-out accepts, listeners closed with connections queued. On io_uring these go
// through one multishot accept request per listener (where the kernel has it, 5.19+), which must be
// indistinguishable from one accept(2) per connection except in how few SQEs it takes.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "net/socket_address.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/time.h"
#include "runtime/when.h"
#include "runtime/testing/backend_param.h"
#include "runtime/testing/fd_count.h"

namespace surge {
namespace {

using std::chrono::milliseconds;
using testing::BackendTest;

class AcceptTest : public BackendTest {
 protected:
  // Whether this backend serves accepts from a multishot request.
  bool multishot() const { return worker_->features().uses_multishot_accept; }
};

// Blocking client sockets connected to `address` by the kernel alone (the handshake completes into the
// listen backlog without any accept), closed on destruction.
struct Clients {
  Clients(const SocketAddress& address, int count) {
    for (int i = 0; i < count; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      EXPECT_GE(fd, 0);
      EXPECT_EQ(::connect(fd, address.data(), address.size()), 0) << "client " << i;
      fds.push_back(fd);
    }
  }
  ~Clients() {
    for (int fd : fds) ::close(fd);
  }
  std::vector<int> fds;
};

bool have_fds_for(int count) {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  return files.rlim_cur >= static_cast<rlim_t>(count) + 64;
}

TEST_P(AcceptTest, BurstOfAThousandConnectionsIsAcceptedOnce) {
  constexpr int kConnections = 1000;
  if (!have_fds_for(2 * kConnections)) GTEST_SKIP() << "the fd limit is below " << 2 * kConnections;
  EXPECT_TRUE(run([this]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0), {.backlog = 2 * kConnections});
    EXPECT_TRUE(listener) << listener.error().message();
    if (!listener) co_return;
    Clients clients(*listener->local_addr(), kConnections);
    const BackendCounters before = worker_->counters();
    std::vector<TcpStream> accepted;
    for (int i = 0; i < kConnections; ++i) {
      auto stream = co_await listener->accept();
      EXPECT_TRUE(stream) << "accept " << i << ": " << stream.error().message();
      if (!stream) co_return;
      accepted.push_back(std::move(*stream));
    }
    const BackendCounters after = worker_->counters();
    // Each accepted stream is one of our clients, exactly once: its peer is a client's local address.
    std::vector<std::uint16_t> client_ports;
    for (int fd : clients.fds) client_ports.push_back(SocketAddress::local_of(fd)->port());
    std::vector<std::uint16_t> peer_ports;
    for (auto& stream : accepted) peer_ports.push_back(stream.peer_addr()->port());
    std::sort(client_ports.begin(), client_ports.end());
    std::sort(peer_ports.begin(), peer_ports.end());
    EXPECT_EQ(peer_ports, client_ports);
    if (multishot()) {
      // One request re-armed every time the bounded queue filled, not one SQE per connection.
      EXPECT_LT(after.sqes_submitted - before.sqes_submitted, 200u);
    }
  }(), std::chrono::seconds(20)));
}

// Connections arriving in waves while nobody accepts: io_uring queues them up to the bound (each wave is
// one pass of the kernel's accept loop), then stops and leaves the rest in the listen backlog; epoll
// takes nothing before it is asked. Afterwards every connection is still accepted.
constexpr int kWaves = 10;
constexpr int kPerWave = 20;

TEST_P(AcceptTest, UnclaimedConnectionsAreBoundedThenAllAccepted) {
  if (!have_fds_for(3 * kWaves * kPerWave)) GTEST_SKIP() << "the fd limit is too low";
  EXPECT_TRUE(run([this]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0), {.backlog = 1024});
    if (!listener) co_return;
    const SocketAddress address = *listener->local_addr();
    Clients first_client(address, 1);
    auto first = co_await listener->accept();  // on io_uring this arms the request; then nobody accepts
    EXPECT_TRUE(first);
    const int fds_before = testing::open_fd_count();
    std::vector<Clients> waves;
    waves.reserve(kWaves);
    for (int wave = 0; wave < kWaves; ++wave) {
      waves.emplace_back(address, kPerWave);
      (void)co_await sleep_for(milliseconds(5));  // the worker runs: the kernel hands this wave over
    }
    const int taken_by_the_runtime = testing::open_fd_count() - fds_before - kWaves * kPerWave;
    if (multishot()) {
      const int bound = static_cast<int>(BackendOptions{}.multishot_accept_backlog);
      EXPECT_GE(taken_by_the_runtime, bound) << "the request stopped before the queue was full";
      EXPECT_LE(taken_by_the_runtime, bound + kPerWave) << "accepted connections nobody asked for must be bounded";
    } else {
      EXPECT_EQ(taken_by_the_runtime, 0);
    }
    for (int i = 0; i < kWaves * kPerWave; ++i) {
      auto stream = co_await listener->accept();
      EXPECT_TRUE(stream) << "accept " << i << ": " << stream.error().message();
      if (!stream) co_return;
    }
  }()));
}

TEST_P(AcceptTest, ClosingAListenerClosesWhatItQueued) {
  EXPECT_TRUE(run([]() -> Task<void> {
    const int fds_at_start = testing::open_fd_count();
    {
      auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
      if (!listener) co_return;
      Clients clients(*listener->local_addr(), 20);
      auto first = co_await listener->accept();
      EXPECT_TRUE(first);
      (void)co_await sleep_for(milliseconds(20));  // io_uring queues the other 19 meanwhile
      EXPECT_TRUE(listener->close());
      // The runtime lets go of the request and of the queued connections within a few loop turns.
      (void)co_await sleep_for(milliseconds(20));
    }
    EXPECT_EQ(testing::open_fd_count(), fds_at_start) << "an accepted connection nobody claimed leaked";
  }()));
}

TEST_P(AcceptTest, TimedOutAcceptLeavesTheListenerWorking) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    if (!listener) co_return;
    auto nobody = co_await timeout(milliseconds(30), listener->accept());
    EXPECT_FALSE(nobody);
    if (!nobody) {
      EXPECT_TRUE(nobody.error().is_timed_out()) << nobody.error().message();
    }
    Clients clients(*listener->local_addr(), 1);
    auto somebody = co_await timeout(milliseconds(2000), listener->accept());
    EXPECT_TRUE(somebody) << somebody.error().message();
  }()));
}

TEST_P(AcceptTest, ConcurrentAcceptsEachGetOneConnection) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    if (!listener) co_return;
    Worker& worker = *Worker::current();
    std::vector<JoinHandle<Result<TcpStream>>> accepts;
    for (int i = 0; i < 8; ++i) {
      accepts.push_back(worker.spawn([](TcpListener& l) -> Task<Result<TcpStream>> { co_return co_await l.accept(); }(*listener)));
    }
    (void)co_await sleep_for(milliseconds(10));  // all eight are waiting before anyone connects
    Clients clients(*listener->local_addr(), 8);
    std::vector<std::uint16_t> peer_ports;
    for (auto& accept : accepts) {
      auto stream = co_await std::move(accept);
      EXPECT_TRUE(stream) << stream.error().message();
      if (stream) peer_ports.push_back(stream->peer_addr()->port());
    }
    std::sort(peer_ports.begin(), peer_ports.end());
    EXPECT_EQ(std::unique(peer_ports.begin(), peer_ports.end()), peer_ports.end()) << "a connection was handed out twice";
    EXPECT_EQ(peer_ports.size(), 8u);
  }()));
}

// Where the kernel has multishot accept, io_uring must use it (the tests above then cover that path);
// where it does not, say so with a skip rather than pass on the single-shot path unnoticed.
TEST_P(AcceptTest, MultishotAcceptIsUsedWhereTheKernelHasIt) {
  const BackendFeatures features = worker_->features();
  if (features.kind != BackendKind::kIoUring) GTEST_SKIP() << "epoll has no multishot accept";
  if (!features.multishot_accept) GTEST_SKIP() << "this kernel lacks multishot accept (5.19)";
  EXPECT_TRUE(features.uses_multishot_accept);
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(AcceptTest);

}  // namespace
}  // namespace surge
