// serve(): one address served on every worker of a 2-worker Runtime, on each backend. Clients are plain
// blocking sockets on the test's thread with 5 s send/receive timeouts, so every wait is bounded; the
// server's blocking calls (shutdown, ~Server) run under a watchdog that fails the test with a message.
// Also Worker::index() and Worker::runtime().
#include "net/serve.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "examples/echo.h"
#include "runtime/runtime.h"
#include "runtime/testing/backend_param.h"
#include "runtime/time.h"

namespace surge {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A blocking client socket, closed on destruction. fd < 0 holds -errno of the failed connect.
struct Client {
  int fd = -1;
  Client() = default;
  Client(Client&& other) noexcept : fd(std::exchange(other.fd, -1)) {}
  ~Client() {
    if (fd >= 0) ::close(fd);
  }
};

Client connect_to(const SocketAddress& address) {
  Client client;
  const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    client.fd = -errno;
    return client;
  }
  const timeval limit{5, 0};  // every recv/send below is bounded
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  if (::connect(fd, address.data(), address.size()) < 0) {
    client.fd = -errno;
    ::close(fd);
    return client;
  }
  client.fd = fd;
  return client;
}

bool send_all(const Client& client, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(client.fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

// Up to `size` bytes, fewer if the stream ends or fails (or 5 s pass) first.
std::string receive(const Client& client, std::size_t size) {
  std::string data(size, '\0');
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::recv(client.fd, data.data() + got, size - got, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  data.resize(got);
  return data;
}

// One recv(2) of a byte: 1, 0 at end of stream, or -errno.
int receive_one(const Client& client) {
  char byte;
  const ssize_t n = ::recv(client.fd, &byte, 1, 0);
  return n < 0 ? -errno : static_cast<int>(n);
}

constexpr std::size_t kSlowReplySize = 64 * 1024;

// What the test handler saw, shared by its per-worker copies.
struct Probe {
  std::atomic<int> cancelled{0};      // idle connections whose read ended with ECANCELED
  std::atomic<int> slow_finished{0};  // slow connections that sent their whole reply
};

// The first byte chooses: 'e' echoes until EOF; 's' acknowledges, sleeps 300 ms, sends kSlowReplySize
// bytes and closes; 'i' acknowledges and reads until the stream ends or the read fails.
ConnectionHandler test_handler(std::shared_ptr<Probe> probe) {
  return [probe](TcpStream stream) -> Task<void> {
    std::array<std::byte, 1> command;
    if (!co_await stream.read_exact(command)) co_return;
    const auto ack = std::as_bytes(std::span("k", 1));
    const char which = static_cast<char>(command[0]);
    if (which == 'e') {
      (void)co_await examples::echo_session(std::move(stream), 4096);
    } else if (which == 's') {
      if (!co_await stream.write_all(ConstBuffer(ack.data(), ack.size()))) co_return;
      if (!co_await sleep_for(milliseconds(300))) co_return;
      const std::string reply(kSlowReplySize, 'x');
      if (co_await stream.write_all(ConstBuffer(reply.data(), reply.size()))) probe->slow_finished.fetch_add(1);
    } else if (which == 'i') {
      if (!co_await stream.write_all(ConstBuffer(ack.data(), ack.size()))) co_return;
      std::array<std::byte, 64> buffer;
      for (;;) {
        auto n = co_await stream.read(buffer);
        if (!n) {
          if (n.error().is_cancelled()) probe->cancelled.fetch_add(1);
          co_return;
        }
        if (*n == 0) co_return;
      }
    }
  };
}

// A connection whose handler has started command 's' (slow) or 'i' (idle) and acknowledged it.
Client started_connection(const Server& server, const char* command) {
  Client client = connect_to(server.local_addr());
  EXPECT_GE(client.fd, 0) << "connect: " << std::strerror(-client.fd);
  EXPECT_TRUE(send_all(client, command));
  EXPECT_EQ(receive(client, 1), "k");
  return client;
}

// Runs `call` (a blocking server call) on another thread and fails the test if it takes longer than
// `limit`; a hang aborts the process with a message rather than wait for Bazel's timeout.
template <typename Call>
milliseconds timed(Call call, milliseconds limit = milliseconds(5000)) {
  const auto start = Clock::now();
  std::packaged_task<void()> job(std::move(call));
  std::future<void> done = job.get_future();
  std::thread thread(std::move(job));
  if (done.wait_for(limit) != std::future_status::ready) {
    std::fprintf(stderr, "a blocking server call did not return within %lld ms\n",
                 static_cast<long long>(limit.count()));
    std::abort();
  }
  thread.join();
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

class ServeTest : public ::testing::TestWithParam<BackendChoice> {
 protected:
  void SetUp() override {
    auto runtime = Runtime::create({.workers = 2, .worker = {.backend = GetParam()}});
    if (!runtime) {
      if (GetParam() == BackendChoice::kIoUring && testing::is_unavailable(runtime.error())) {
        GTEST_SKIP() << "io_uring is not available here: " << runtime.error().message();
      }
      FAIL() << "Runtime::create: " << runtime.error().message();
    }
    runtime_ = std::move(*runtime);
  }

  std::unique_ptr<Server> start(std::shared_ptr<Probe> probe = std::make_shared<Probe>()) {
    auto server = serve(*runtime_, SocketAddress::ipv4_loopback(0), test_handler(std::move(probe)));
    EXPECT_TRUE(server) << server.error().message();
    if (!server) return nullptr;
    EXPECT_NE((*server)->local_addr().port(), 0);
    EXPECT_EQ((*server)->workers(), 2u);
    return std::move(*server);
  }

  std::unique_ptr<Runtime> runtime_;
};

TEST_P(ServeTest, ConnectionsAreSpreadOverBothWorkersAndEachEchoes) {
  auto server = start();
  ASSERT_TRUE(server);
  constexpr int kConnections = 64;
  std::vector<Client> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(connect_to(server->local_addr()));
    ASSERT_GE(clients.back().fd, 0) << "connect: " << std::strerror(-clients.back().fd);
  }
  for (int i = 0; i < kConnections; ++i) {
    const std::string message = "connection " + std::to_string(i) + " says hello";
    ASSERT_TRUE(send_all(clients[i], "e" + message));
    EXPECT_EQ(receive(clients[i], message.size()), message) << "connection " << i;
  }
  const Server::Counts first = server->counts(0);
  const Server::Counts second = server->counts(1);
  EXPECT_EQ(first.accepted + second.accepted, static_cast<std::uint64_t>(kConnections));
  EXPECT_GE(first.accepted, 1u) << "the kernel sent every connection to worker 1";
  EXPECT_GE(second.accepted, 1u) << "the kernel sent every connection to worker 0";
  EXPECT_EQ(server->total().open, static_cast<std::uint64_t>(kConnections));

  clients.clear();  // EOF on each: the echo sessions return and the connections close
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (server->total().open != 0 && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  EXPECT_EQ(server->total().open, 0u) << "connections still open 5 s after their clients closed";
  timed([&] { server->shutdown(Clock::now()); }, milliseconds(1000));
}

TEST_P(ServeTest, GracefulShutdownDrainsThenCancelsAndAcceptsNothingNew) {
  auto probe = std::make_shared<Probe>();
  auto server = start(probe);
  ASSERT_TRUE(server);
  Client slow = started_connection(*server, "s");
  Client idle = started_connection(*server, "i");
  const std::uint64_t accepted_before = server->total().accepted;
  ASSERT_EQ(accepted_before, 2u);

  constexpr milliseconds kGrace(1000);
  const auto started = Clock::now();
  std::thread stopper([&] { timed([&] { server->shutdown(started + kGrace); }); });

  // The listeners close as the shutdown begins: a new connection is refused (or reset, never served).
  std::this_thread::sleep_for(milliseconds(100));
  Client late = connect_to(server->local_addr());
  if (late.fd >= 0) {
    (void)send_all(late, "e-late");
    EXPECT_LE(receive_one(late), 0) << "a connection made after shutdown began was served";
  } else {
    EXPECT_EQ(-late.fd, ECONNREFUSED) << std::strerror(-late.fd);
  }

  // The slow connection finishes (300 ms) before the deadline: its reply arrives whole, then EOF.
  EXPECT_EQ(receive(slow, kSlowReplySize), std::string(kSlowReplySize, 'x'));
  EXPECT_EQ(receive_one(slow), 0);
  // The idle one is cancelled at the deadline: its handler's read sees ECANCELED and the stream closes.
  EXPECT_EQ(receive_one(idle), 0);
  const auto idle_closed = Clock::now() - started;
  stopper.join();
  const auto returned = Clock::now() - started;

  EXPECT_EQ(probe->slow_finished.load(), 1);
  EXPECT_EQ(probe->cancelled.load(), 1);
  EXPECT_GE(idle_closed, kGrace - milliseconds(50)) << "the idle connection was cut before the deadline";
  EXPECT_LT(returned, kGrace + milliseconds(500)) << "shutdown returned long after the deadline";
  EXPECT_EQ(server->total().accepted, accepted_before);
  EXPECT_EQ(server->total().open, 0u);
}

TEST_P(ServeTest, ShutdownWithoutConnectionsReturnsAtOnce) {
  auto server = start();
  ASSERT_TRUE(server);
  const milliseconds took = timed([&] { server->shutdown(std::chrono::seconds(30)); });
  EXPECT_LT(took, milliseconds(500));
  Client late = connect_to(server->local_addr());
  EXPECT_EQ(-late.fd, ECONNREFUSED);
}

TEST_P(ServeTest, ShutdownTwiceIsHarmless) {
  auto server = start();
  ASSERT_TRUE(server);
  Client idle = started_connection(*server, "i");
  std::thread first([&] { timed([&] { server->shutdown(milliseconds(200)); }); });
  timed([&] { server->shutdown(milliseconds(200)); });  // concurrent with the first
  first.join();
  EXPECT_LT(timed([&] { server->shutdown(std::chrono::seconds(30)); }), milliseconds(500));  // and after it
  EXPECT_EQ(server->total().open, 0u);
  EXPECT_EQ(receive_one(idle), 0);
}

TEST_P(ServeTest, DestroyingTheServerWithoutShutdownCancelsItsConnections) {
  auto probe = std::make_shared<Probe>();
  auto server = start(probe);
  ASSERT_TRUE(server);
  Client idle = started_connection(*server, "i");
  Client echo = connect_to(server->local_addr());
  ASSERT_TRUE(send_all(echo, "eping"));
  ASSERT_EQ(receive(echo, 4), "ping");
  const SocketAddress address = server->local_addr();
  EXPECT_LT(timed([&] { server.reset(); }), milliseconds(1000));
  EXPECT_EQ(probe->cancelled.load(), 1);
  EXPECT_EQ(receive_one(idle), 0);
  EXPECT_EQ(receive_one(echo), 0);
  EXPECT_EQ(-connect_to(address).fd, ECONNREFUSED);
}

TEST_P(ServeTest, BindFailureNamesTheCallAndLeavesNothingListening) {
  // A listener without SO_REUSEPORT holds the port: no SO_REUSEPORT socket may join it.
  const int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(holder, 0);
  const SocketAddress any_port = SocketAddress::ipv4_loopback(0);
  ASSERT_EQ(::bind(holder, any_port.data(), any_port.size()), 0);
  ASSERT_EQ(::listen(holder, 16), 0);
  auto taken = SocketAddress::local_of(holder);
  ASSERT_TRUE(taken);
  auto server = serve(*runtime_, *taken, test_handler(std::make_shared<Probe>()));
  ::close(holder);
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code(), EADDRINUSE);
  EXPECT_EQ(std::string(server.error().operation()), "bind") << server.error().message();
}

TEST_P(ServeTest, AcceptErrorsPauseAndDoNotStopTheServer) {
  // Out of fds, accept fails with EMFILE: the server pauses and retries, and serves once fds are back.
  // io_uring takes the fd limit when an accept is prepared, and a multishot accept is prepared once: use
  // single-shot accepts, of which each worker has one armed (with the old limit) before the limit drops.
  runtime_.reset();
  WorkerOptions worker_options{.backend = GetParam()};
  worker_options.backend_options.allow_multishot_accept = false;
  auto runtime = Runtime::create({.workers = 2, .worker = worker_options});
  ASSERT_TRUE(runtime) << runtime.error().message();
  runtime_ = std::move(*runtime);
  const std::uint64_t armed_before = GetParam() == BackendChoice::kIoUring ? 2 : 0;
  auto server = start();
  ASSERT_TRUE(server);
  std::vector<Client> clients(4);
  std::vector<int> spare;
  for (Client& client : clients) {
    client.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // made before the limit drops
    ASSERT_GE(client.fd, 0);
    const timeval limit{5, 0};
    setsockopt(client.fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  }
  rlimit original;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &original), 0);
  // Fill every fd below the new limit, so that the server's accept has none left.
  rlimit lowered = original;
  lowered.rlim_cur = 0;
  for (Client& client : clients) lowered.rlim_cur = std::max<rlim_t>(lowered.rlim_cur, client.fd + 1);
  for (;;) {
    const int fd = ::dup(0);
    if (fd < 0 || static_cast<rlim_t>(fd) >= lowered.rlim_cur) {
      if (fd >= 0) ::close(fd);
      break;
    }
    spare.push_back(fd);
  }
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  auto submitted = [&] {
    return runtime_->worker(0).counters().operations_submitted + runtime_->worker(1).counters().operations_submitted;
  };
  const std::uint64_t submitted_before = submitted();
  for (Client& client : clients) {
    ASSERT_EQ(::connect(client.fd, server->local_addr().data(), server->local_addr().size()), 0)
        << std::strerror(errno);
  }
  std::this_thread::sleep_for(milliseconds(200));  // the server meets EMFILE meanwhile
  EXPECT_LE(server->total().accepted, armed_before);
  const std::uint64_t submitted_during = submitted() - submitted_before;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &original), 0);
  for (int fd : spare) ::close(fd);
  // A hot loop would have submitted thousands of accepts in 200 ms; a 10 ms pause allows about 20.
  EXPECT_LT(submitted_during, 200u);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    const std::string message = "again" + std::to_string(i);
    ASSERT_TRUE(send_all(clients[i], "e" + message));
    EXPECT_EQ(receive(clients[i], message.size()), message);
  }
  EXPECT_EQ(server->total().accepted, clients.size());
}

TEST_P(ServeTest, WorkersKnowTheirIndexAndRuntime) {
  for (std::size_t i = 0; i < runtime_->size(); ++i) {
    EXPECT_EQ(runtime_->worker(i).index(), i);
    EXPECT_EQ(runtime_->worker(i).runtime(), runtime_.get());
  }
  auto where = runtime_->spawn_on(1, []() -> Task<std::size_t> { co_return Worker::current()->index(); }());
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!where.is_finished() && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  ASSERT_TRUE(where.is_finished());
  EXPECT_EQ(where.take_result(), 1u);
  auto standalone = Worker::create({.backend = BackendChoice::kEpoll});
  ASSERT_TRUE(standalone);
  EXPECT_EQ((*standalone)->index(), 0u);
  EXPECT_EQ((*standalone)->runtime(), nullptr);
}

TEST_P(ServeTest, ServeOnAWorkerOfTheRuntimeIsRefused) {
  auto refused = runtime_->block_on([](Runtime& runtime) -> Task<Result<void>> {
    auto server = serve(runtime, SocketAddress::ipv4_loopback(0), [](TcpStream) -> Task<void> { co_return; });
    if (!server) co_return server.error();
    co_return ok();
  }(*runtime_));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), EDEADLK);
}

INSTANTIATE_TEST_SUITE_P(Backends, ServeTest,
                         ::testing::Values(BackendChoice::kIoUring, BackendChoice::kEpoll),
                         testing::backend_test_name);

}  // namespace
}  // namespace surge
