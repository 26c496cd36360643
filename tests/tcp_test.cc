// TCP over real loopback sockets, on every backend: connect/accept, echo of random data in random chunks,
// end of stream, refused connections, peer resets, many concurrent connections, bad input, no fd leaks.
#include <gtest/gtest.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>
#include <random>
#include <vector>

#include "examples/echo.h"
#include "net/socket_address.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/testing/backend_param.h"
#include "runtime/testing/fd_count.h"

namespace surge {
namespace {

using testing::BackendTest;

class TcpTest : public BackendTest {};

// Binds an echo server on 127.0.0.1 (free port) on the current worker and returns its address.
Result<SocketAddress> start_echo_server() {
  auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  if (!listener) return listener.error();
  auto address = listener->local_addr();
  if (!address) return address.error();
  (void)Worker::current()->spawn(examples::serve_echo(std::move(*listener)));
  return *address;
}

// Closes `stream` with SO_LINGER 0, which makes the kernel send RST instead of FIN.
void abort_connection(TcpStream& stream) {
  linger option{1, 0};
  ASSERT_EQ(setsockopt(stream.native_handle(), SOL_SOCKET, SO_LINGER, &option, sizeof(option)), 0);
  EXPECT_TRUE(stream.close());
}

// The echo service's sessions turn Nagle off: an echo held back for the peer's ACK waits out the
// delayed-ACK timer (a regression once made every large echo on epoll 20 times slower).
TEST_P(TcpTest, EchoSessionsSendWithoutNagle) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto address = start_echo_server();
    if (!address) {
      ADD_FAILURE() << address.error().message();
      co_return;
    }
    auto client = co_await TcpStream::connect(*address);
    if (!client) {
      ADD_FAILURE() << client.error().message();
      co_return;
    }
    char byte = 'x';
    EXPECT_TRUE(co_await client->write_all(ConstBuffer(&byte, 1)));
    EXPECT_TRUE(co_await client->read_exact(MutableBuffer(&byte, 1)));  // the session is running
    // The server's end: the socket whose addresses are the client's, swapped (the listener has no peer).
    int nodelay = 0;
    socklen_t size = sizeof(nodelay);
    int checked = 0;
    DIR* fds = opendir("/proc/self/fd");
    while (dirent* entry = fds != nullptr ? readdir(fds) : nullptr) {
      const int fd = std::atoi(entry->d_name);
      auto local = SocketAddress::local_of(fd);
      auto peer = SocketAddress::peer_of(fd);
      if (!local || !peer || *local != *client->peer_addr() || *peer != *client->local_addr()) continue;
      EXPECT_EQ(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &size), 0);
      EXPECT_NE(nodelay, 0) << "the accepted echo session still has Nagle on";
      ++checked;
    }
    if (fds != nullptr) closedir(fds);
    EXPECT_EQ(checked, 1) << "the server's end of the connection was not found";
  }()));
}

TEST_P(TcpTest, AcceptAndConnectAgreeOnAddresses) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    EXPECT_TRUE(listener) << listener.error().message();
    if (!listener) co_return;
    auto listen_address = listener->local_addr();
    EXPECT_NE(listen_address->port(), 0) << "port 0 must be replaced by the kernel's choice";
    auto accepting = Worker::current()->spawn([](TcpListener& l) -> Task<Result<TcpStream>> {
      co_return co_await l.accept();
    }(*listener));
    auto client = co_await TcpStream::connect(*listen_address);
    EXPECT_TRUE(client) << client.error().message();
    auto server = co_await std::move(accepting);
    EXPECT_TRUE(server) << server.error().message();
    if (!client || !server) co_return;
    EXPECT_EQ(*client->peer_addr(), *listen_address);
    EXPECT_EQ(*server->local_addr(), *listen_address);
    EXPECT_EQ(*server->peer_addr(), *client->local_addr());
    EXPECT_TRUE(client->set_nodelay(true));
  }()));
}

TEST_P(TcpTest, EchoesOneMebibyteInRandomChunks) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  EXPECT_TRUE(run([](unsigned seed) -> Task<void> {
    auto server = start_echo_server();
    EXPECT_TRUE(server);
    auto stream = co_await TcpStream::connect(*server);
    EXPECT_TRUE(stream) << stream.error().message();
    if (!stream) co_return;
    std::mt19937 random(seed);
    std::vector<unsigned char> sent(1 << 20);
    for (auto& byte : sent) byte = static_cast<unsigned char>(random());

    // Write and read at the same time: the echo would stall once the socket buffers filled otherwise.
    auto writer = Worker::current()->spawn([](TcpStream& s, const std::vector<unsigned char>& data,
                                              unsigned seed) -> Task<Result<void>> {
      std::mt19937 sizes(seed + 1);
      for (std::size_t offset = 0; offset < data.size();) {
        const std::size_t chunk = std::min<std::size_t>(1 + sizes() % 65536, data.size() - offset);
        if (auto written = co_await s.write_all(ConstBuffer(data.data() + offset, chunk)); !written) {
          co_return written.error();
        }
        offset += chunk;
      }
      co_return s.shutdown(Shutdown::kWrite);
    }(*stream, sent, seed));

    std::vector<unsigned char> received;
    std::vector<unsigned char> chunk(65536);
    std::mt19937 read_sizes(seed + 2);
    for (;;) {
      auto n = co_await stream->read(MutableBuffer(chunk.data(), 1 + read_sizes() % chunk.size()));
      EXPECT_TRUE(n) << n.error().message();
      if (!n || *n == 0) break;
      received.insert(received.end(), chunk.begin(), chunk.begin() + static_cast<long>(*n));
    }
    auto written = co_await std::move(writer);
    EXPECT_TRUE(written) << written.error().message();
    EXPECT_EQ(received.size(), sent.size());
    EXPECT_TRUE(received == sent) << "echoed bytes differ";
  }(seed)));
}

TEST_P(TcpTest, EndOfStreamReadsZero) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto server = start_echo_server();
    auto stream = co_await TcpStream::connect(*server);
    EXPECT_TRUE(stream);
    if (!stream) co_return;
    EXPECT_TRUE(co_await stream->write_all(std::string_view("bye")));
    EXPECT_TRUE(stream->shutdown(Shutdown::kWrite));
    char reply[3];
    EXPECT_TRUE(co_await stream->read_exact(reply));
    EXPECT_EQ(std::string_view(reply, 3), "bye");
    auto end = co_await stream->read(reply);
    EXPECT_TRUE(end);
    EXPECT_EQ(*end, 0u) << "the server closed after our FIN: read must return 0";
  }()));
}

TEST_P(TcpTest, ReadExactReportsUnexpectedEnd) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    auto address = *listener->local_addr();
    auto sender = Worker::current()->spawn([](TcpListener& l) -> Task<void> {
      auto peer = co_await l.accept();
      EXPECT_TRUE(peer);
      if (peer) {
        EXPECT_TRUE(co_await peer->write_all(std::string_view("abc")));
      }
    }(*listener));  // the accepted stream closes when the task ends
    auto stream = co_await TcpStream::connect(address);
    EXPECT_TRUE(stream);
    if (!stream) co_return;
    char buffer[10];
    auto outcome = co_await stream->read_exact(buffer);
    EXPECT_FALSE(outcome);
    if (!outcome) {
      EXPECT_TRUE(outcome.error().is_unexpected_eof()) << outcome.error().message();
    }
    co_await std::move(sender);
  }()));
}

TEST_P(TcpTest, ConnectToClosedPortIsRefused) {
  EXPECT_TRUE(run([]() -> Task<void> {
    std::uint16_t port;
    {
      auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
      port = listener->local_addr()->port();
    }  // closed: nothing listens there now
    auto stream = co_await TcpStream::connect(SocketAddress::ipv4_loopback(port));
    EXPECT_FALSE(stream);
    if (stream) co_return;
    EXPECT_EQ(stream.error().code(), ECONNREFUSED) << stream.error().message();
    EXPECT_STREQ(stream.error().operation(), "connect");
  }()));
}

TEST_P(TcpTest, PeerResetMidStreamIsAnErrorValue) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    auto address = *listener->local_addr();
    auto resetter = Worker::current()->spawn([](TcpListener& l) -> Task<void> {
      auto peer = co_await l.accept();
      EXPECT_TRUE(peer);
      if (!peer) co_return;
      char buffer[100];
      EXPECT_TRUE(co_await peer->read_exact(buffer));  // wait until the client is mid-stream
      abort_connection(*peer);
    }(*listener));
    auto stream = co_await TcpStream::connect(address);
    EXPECT_TRUE(stream);
    if (!stream) co_return;
    std::vector<char> data(100, 'x');
    EXPECT_TRUE(co_await stream->write_all(data));
    char reply[1];
    auto n = co_await stream->read(reply);
    EXPECT_FALSE(n) << "read after RST returned " << *n;
    if (!n) {
      EXPECT_EQ(n.error().code(), ECONNRESET) << n.error().message();
      EXPECT_STREQ(n.error().operation(), "recv");
    }
    // Writing to a reset connection is an error value too, never SIGPIPE.
    auto written = co_await stream->write_all(data);
    EXPECT_FALSE(written);
    co_await std::move(resetter);
  }()));
}

Task<void> many_connections(int count) {
  auto server = start_echo_server();
  EXPECT_TRUE(server);
  std::vector<JoinHandle<Result<void>>> clients;
  for (int i = 0; i < count; ++i) {
    clients.push_back(Worker::current()->spawn([](SocketAddress address, int id) -> Task<Result<void>> {
      auto stream = co_await TcpStream::connect(address);
      if (!stream) co_return stream.error();
      std::vector<unsigned char> message(1024, static_cast<unsigned char>(id));
      std::vector<unsigned char> reply(message.size());
      for (int round = 0; round < 3; ++round) {
        if (auto sent = co_await stream->write_all(message); !sent) co_return sent.error();
        if (auto received = co_await stream->read_exact(reply); !received) co_return received.error();
        if (reply != message) co_return Error(EBADMSG, "echo mismatch");
      }
      co_return ok();
    }(*server, i)));
  }
  int succeeded = 0;
  for (auto& client : clients) {
    auto outcome = co_await std::move(client);
    EXPECT_TRUE(outcome) << outcome.error().message();
    succeeded += outcome ? 1 : 0;
  }
  EXPECT_EQ(succeeded, count);
}

TEST_P(TcpTest, TwoHundredConcurrentConnectionsOnOneWorker) { EXPECT_TRUE(run(many_connections(200))); }

TEST_P(TcpTest, TinySubmissionQueueStillServesEveryone) {
  BackendOptions tiny;
  tiny.submission_queue_entries = 4;
  tiny.completion_queue_entries = 8;
  create_worker(tiny);
  EXPECT_TRUE(run(many_connections(200)));
}

TEST_P(TcpTest, IPv6Loopback) {
  auto listener = TcpListener::bind(*worker_, SocketAddress::ipv6_loopback(0));
  if (!listener && (listener.error().code() == EADDRNOTAVAIL || listener.error().code() == EAFNOSUPPORT)) {
    GTEST_SKIP() << "no IPv6 loopback here: " << listener.error().message();
  }
  ASSERT_TRUE(listener) << listener.error().message();
  EXPECT_TRUE(run([](TcpListener listener) -> Task<void> {
    auto address = *listener.local_addr();
    EXPECT_EQ(address.family(), AF_INET6);
    (void)Worker::current()->spawn(examples::serve_echo(std::move(listener)));
    auto stream = co_await TcpStream::connect(address.to_string());
    EXPECT_TRUE(stream) << stream.error().message();
    if (!stream) co_return;
    EXPECT_TRUE(co_await stream->write_all(std::string_view("six")));
    char reply[3];
    EXPECT_TRUE(co_await stream->read_exact(reply));
    EXPECT_EQ(std::string_view(reply, 3), "six");
  }(std::move(*listener))));
}

TEST_P(TcpTest, BadInputGivesClearErrors) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto unparsable = co_await TcpStream::connect(std::string_view("127.0.0.1"));  // no port
    EXPECT_FALSE(unparsable);
    if (!unparsable) {
      EXPECT_EQ(unparsable.error().code(), EINVAL);
    }

    auto first = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    EXPECT_TRUE(first);
    auto second = TcpListener::bind(*first->local_addr());
    EXPECT_FALSE(second) << "two listeners on one port";
    if (!second) {
      EXPECT_EQ(second.error().code(), EADDRINUSE);
      EXPECT_STREQ(second.error().operation(), "bind");
    }

    auto server = start_echo_server();
    auto stream = co_await TcpStream::connect(*server);
    EXPECT_TRUE(stream);
    if (!stream) co_return;
    EXPECT_TRUE(stream->close());
    EXPECT_TRUE(stream->close()) << "a second close is a no-op";
    char buffer[4];
    auto after_close = co_await stream->read(buffer);
    EXPECT_FALSE(after_close);
    if (!after_close) {
      EXPECT_EQ(after_close.error().code(), EBADF);
    }
    auto write_after_close = co_await stream->write(std::string_view("x"));
    EXPECT_FALSE(write_after_close);
  }()));
}

TEST_P(TcpTest, BindOutsideAWorkerIsAnError) {
  auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_FALSE(listener);
  EXPECT_EQ(listener.error().code(), EINVAL);
}

TEST_P(TcpTest, NoFileDescriptorLeaks) {
  worker_.reset();
  const int before = testing::open_fd_count();
  {
    create_worker({});
    EXPECT_TRUE(run(many_connections(50)));
    EXPECT_TRUE(run([]() -> Task<void> {
      auto refused = co_await TcpStream::connect(SocketAddress::ipv4_loopback(1));
      EXPECT_FALSE(refused);
    }()));
    worker_.reset();  // also destroys the still-running echo servers and their listeners
  }
  EXPECT_EQ(testing::open_fd_count(), before);
}

TEST_P(TcpTest, ShutdownWithConnectionsOpenClosesEverything) {
  worker_.reset();
  const int before = testing::open_fd_count();
  create_worker({});
  int connected = 0;
  EXPECT_TRUE(run([](int* connected) -> Task<void> {
    auto server = start_echo_server();
    for (int i = 0; i < 20; ++i) {
      (void)Worker::current()->spawn([](SocketAddress address, int* counter) -> Task<void> {
        auto stream = co_await TcpStream::connect(address);
        if (!stream) co_return;
        ++*counter;
        char byte;
        (void)co_await stream->read(MutableBuffer(&byte, 1));  // never answered: parked in the backend
      }(*server, connected));
    }
    while (*connected < 20) co_await yield();
  }(&connected)));
  EXPECT_EQ(connected, 20);
  EXPECT_GT(worker_->live_tasks(), 20u);  // 20 clients, 20 sessions, the server
  EXPECT_GT(internal::WorkerAccess::backend(*worker_).in_flight(), 20u);
  worker_->shutdown();
  EXPECT_EQ(worker_->live_tasks(), 0u);
  EXPECT_EQ(internal::WorkerAccess::backend(*worker_).in_flight(), 0u);
  worker_.reset();
  EXPECT_EQ(testing::open_fd_count(), before);
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(TcpTest);

}  // namespace
}  // namespace surge
