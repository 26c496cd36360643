// Unix-domain sockets on every backend: stream echo over paths and abstract names, who unlinks the socket
// file and when, EADDRINUSE/ECONNREFUSED/ENOENT, datagrams (truncation, addresses, full queues), descriptor
// passing both ways on streams and datagrams (with no descriptor leaked on cancel, failure, truncation or
// a worker shutdown), peer credentials, cancellation at each await, deadlines.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "examples/echo.h"
#include "net/owned_fd.h"
#include "net/unix_address.h"
#include "net/unix_datagram.h"
#include "net/unix_listener.h"
#include "net/unix_stream.h"
#include "runtime/testing/backend_param.h"
#include "runtime/testing/fault_injection_backend.h"
#include "runtime/testing/fd_count.h"
#include "runtime/time.h"
#include "runtime/when.h"

namespace surge {
namespace {

using std::chrono::milliseconds;

// Socket paths must fit sockaddr_un (107 bytes), which Bazel's TEST_TMPDIR does not: a short directory
// under /tmp per test, removed afterwards.
class UnixTest : public testing::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    char pattern[] = "/tmp/surge-unix-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr) << strerror(errno);
    directory_ = pattern;
  }
  void TearDown() override {
    const std::string command = "rm -rf '" + directory_ + "'";
    if (!directory_.empty() && std::system(command.c_str()) != 0) ADD_FAILURE() << "could not remove " << directory_;
  }

  std::string path(const char* name) const { return directory_ + "/" + name; }
  UnixAddress address(const char* name) const { return *UnixAddress::path(path(name)); }
  // An abstract name unique to this process and test.
  static UnixAddress abstract(const char* name) {
    return *UnixAddress::abstract("surge-unix-test-" + std::to_string(getpid()) + "-" + name);
  }
  static bool exists(const std::string& file) {
    struct stat status {};
    return ::lstat(file.c_str(), &status) == 0;
  }

  std::string directory_;
};

struct Pipe {
  Pipe() { EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0); }
  ~Pipe() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  int fds[2] = {-1, -1};
};

bool has_cloexec(int fd) { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

// Writes `text` through `fd` (a pipe's write end that travelled through a socket) and reads it back from
// `read_end`: proves the received descriptor is the pipe.
void expect_same_pipe(int write_through, int read_end, std::string_view text) {
  ASSERT_EQ(::write(write_through, text.data(), text.size()), static_cast<ssize_t>(text.size())) << strerror(errno);
  char back[64] = {};
  ASSERT_EQ(::read(read_end, back, sizeof(back)), static_cast<ssize_t>(text.size()));
  EXPECT_EQ(std::string_view(back, text.size()), text);
}

// Echoes `size` random bytes through `stream` in random chunks, writing and reading at once, and compares.
Task<void> echo_random_bytes(UnixStream& stream, std::size_t size, unsigned seed) {
  std::mt19937 random(seed);
  std::vector<unsigned char> sent(size);
  for (auto& byte : sent) byte = static_cast<unsigned char>(random());
  auto writer = Worker::current()->spawn([](UnixStream& s, const std::vector<unsigned char>& data,
                                            unsigned seed) -> Task<Result<void>> {
    std::mt19937 sizes(seed + 1);
    for (std::size_t offset = 0; offset < data.size();) {
      const std::size_t chunk = std::min<std::size_t>(1 + sizes() % 50000, data.size() - offset);
      if (auto written = co_await s.write_all(ConstBuffer(data.data() + offset, chunk)); !written) {
        co_return written.error();
      }
      offset += chunk;
    }
    co_return s.shutdown(Shutdown::kWrite);
  }(stream, sent, seed));
  std::vector<unsigned char> received;
  std::vector<unsigned char> chunk(65536);
  std::mt19937 read_sizes(seed + 2);
  for (;;) {
    auto n = co_await stream.read(MutableBuffer(chunk.data(), 1 + read_sizes() % chunk.size()));
    EXPECT_TRUE(n) << n.error().message();
    if (!n || *n == 0) break;
    received.insert(received.end(), chunk.begin(), chunk.begin() + static_cast<long>(*n));
  }
  auto written = co_await std::move(writer);
  EXPECT_TRUE(written) << written.error().message();
  EXPECT_EQ(received.size(), sent.size());
  EXPECT_TRUE(received == sent) << "echoed bytes differ";
}

// --- Streams ---------------------------------------------------------------------------------------------

TEST_P(UnixTest, StreamEchoOverAPathInRandomChunks) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  EXPECT_TRUE(run([](UnixAddress where, unsigned seed) -> Task<void> {
    auto listener = UnixListener::bind(where);
    EXPECT_TRUE(listener) << listener.error().message();
    if (!listener) co_return;
    EXPECT_EQ(*listener->local_addr(), where);
    auto server = Worker::current()->spawn(examples::serve_echo(std::move(*listener)));
    auto stream = co_await UnixStream::connect(where);
    EXPECT_TRUE(stream) << stream.error().message();
    if (!stream) co_return;
    EXPECT_EQ(*stream->peer_addr(), where);
    EXPECT_TRUE(stream->local_addr()->is_unnamed());
    co_await echo_random_bytes(*stream, 512 * 1024, seed);
    server.cancel();
    (void)co_await std::move(server);
  }(address("echo.sock"), seed)));
}

TEST_P(UnixTest, StreamEchoOverAnAbstractNameWithBorrowedReads) {
  EXPECT_TRUE(run([]() -> Task<void> {
    const UnixAddress where = abstract("echo");
    auto listener = UnixListener::bind(where);
    EXPECT_TRUE(listener) << listener.error().message();
    if (!listener) co_return;
    EXPECT_EQ(listener->local_addr()->to_string(), where.to_string());
    EXPECT_EQ(where.to_string().front(), '@');
    auto server = Worker::current()->spawn(examples::serve_echo(std::move(*listener), {.borrowed_reads = true}));
    auto stream = co_await UnixStream::connect(where);
    EXPECT_TRUE(stream) << stream.error().message();
    if (!stream) co_return;
    co_await echo_random_bytes(*stream, 200 * 1024, 7);
    server.cancel();
    (void)co_await std::move(server);
  }()));
}

TEST_P(UnixTest, PairReadExactAndEndOfStream) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto pair = UnixStream::pair();
    EXPECT_TRUE(pair) << pair.error().message();
    if (!pair) co_return;
    auto& [a, b] = *pair;
    EXPECT_TRUE(co_await a.write_all(std::string_view("hello")));
    EXPECT_TRUE(a.shutdown(Shutdown::kWrite));
    char five[5];
    EXPECT_TRUE(co_await b.read_exact(five));
    EXPECT_EQ(std::string_view(five, 5), "hello");
    auto end = co_await b.read(five);
    EXPECT_TRUE(end);
    EXPECT_EQ(*end, 0u);
    auto short_read = co_await b.read_exact(five);
    EXPECT_FALSE(short_read);
    if (!short_read) {
      EXPECT_TRUE(short_read.error().is_unexpected_eof());
    }
  }()));
}

TEST_P(UnixTest, PeerCredentialsAreOurs) {
  EXPECT_TRUE(run([](UnixAddress where) -> Task<void> {
    auto listener = UnixListener::bind(where);
    if (!listener) co_return;
    auto accepting = Worker::current()->spawn([](UnixListener& l) -> Task<Result<UnixStream>> {
      co_return co_await l.accept();
    }(*listener));
    auto client = co_await UnixStream::connect(where);
    auto server = co_await std::move(accepting);
    EXPECT_TRUE(client && server);
    if (!client || !server) co_return;
    for (UnixStream* end : {&*client, &*server}) {
      auto who = end->peer_credentials();
      EXPECT_TRUE(who) << who.error().message();
      if (!who) continue;
      EXPECT_EQ(who->pid, getpid());
      EXPECT_EQ(who->uid, getuid());
      EXPECT_EQ(who->gid, getgid());
    }
    auto pair = UnixDatagram::pair();
    auto who = pair->first.peer_credentials();
    EXPECT_TRUE(who);
    if (who) {
      EXPECT_EQ(who->pid, getpid());
    }
  }(address("creds.sock"))));
}

// Accepts go through the backend's accept like TCP's: on io_uring one multishot request serves a burst.
TEST_P(UnixTest, AcceptBurstIsAcceptedOnceEachAndMultishotOnIoUring) {
  constexpr int kClients = 100;
  EXPECT_TRUE(run([this]() -> Task<void> {
    auto listener = UnixListener::bind(abstract("burst"), {.backlog = 2 * kClients});
    EXPECT_TRUE(listener) << listener.error().message();
    if (!listener) co_return;
    std::vector<int> clients;
    for (int i = 0; i < kClients; ++i) {
      const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const UnixAddress where = abstract("burst");
      EXPECT_EQ(::connect(fd, where.data(), where.size()), 0) << strerror(errno);
      clients.push_back(fd);
    }
    const BackendCounters before = worker_->counters();
    std::vector<UnixStream> accepted;
    for (int i = 0; i < kClients; ++i) {
      auto stream = co_await listener->accept();
      EXPECT_TRUE(stream) << stream.error().message();
      if (!stream) break;
      accepted.push_back(std::move(*stream));
    }
    const BackendCounters after = worker_->counters();
    if (worker_->features().uses_multishot_accept) {
      EXPECT_LT(after.sqes_submitted - before.sqes_submitted, 20u) << "one SQE per accept: not multishot";
    }
    // Each accepted stream is one of the clients: a byte written by client i arrives on exactly one.
    for (int i = 0; i < kClients; ++i) {
      const char byte = static_cast<char>(i);
      EXPECT_EQ(::write(clients[static_cast<std::size_t>(i)], &byte, 1), 1);
    }
    std::vector<int> seen(kClients, 0);
    for (UnixStream& stream : accepted) {
      char byte;
      auto n = co_await timeout(milliseconds(1000), stream.read(MutableBuffer(&byte, 1)));
      EXPECT_TRUE(n && *n == 1);
      if (n && *n == 1) ++seen[static_cast<unsigned char>(byte)];
    }
    for (int i = 0; i < kClients; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], 1) << "client " << i;
    for (int fd : clients) ::close(fd);
  }()));
}

// --- Who unlinks the socket file -------------------------------------------------------------------------

TEST_P(UnixTest, ListenerUnlinksItsPathWhenClosedOrDestroyed) {
  EXPECT_TRUE(run([this]() -> Task<void> {
    {
      auto listener = UnixListener::bind(address("a.sock"));
      EXPECT_TRUE(listener) << listener.error().message();
      EXPECT_TRUE(exists(path("a.sock")));
      EXPECT_TRUE(listener->close());
      EXPECT_FALSE(exists(path("a.sock"))) << "close() must unlink the file it created";
    }
    {
      auto listener = UnixListener::bind(address("b.sock"));
      EXPECT_TRUE(exists(path("b.sock")));
      UnixListener moved = std::move(*listener);  // the path goes with the socket
    }
    EXPECT_FALSE(exists(path("b.sock"))) << "the destructor must unlink the file it created";
    {
      auto listener = UnixListener::bind(address("c.sock"), {.unlink_on_close = false});
      EXPECT_TRUE(listener);
    }
    EXPECT_TRUE(exists(path("c.sock"))) << "unlink_on_close=false keeps the file";
    {
      auto socket = UnixDatagram::bind(address("d.sock"));
      EXPECT_TRUE(socket) << socket.error().message();
      EXPECT_TRUE(exists(path("d.sock")));
    }
    EXPECT_FALSE(exists(path("d.sock"))) << "a bound datagram socket follows the same rule";
    co_return;
  }()));
}

TEST_P(UnixTest, ListenerLeavesAFileThatIsNoLongerItsOwn) {
  EXPECT_TRUE(run([this]() -> Task<void> {
    auto first = UnixListener::bind(address("x.sock"));
    EXPECT_TRUE(first);
    // Someone removes our file and another server binds the same path (a new inode).
    EXPECT_EQ(::unlink(path("x.sock").c_str()), 0);
    auto second = UnixListener::bind(address("x.sock"));
    EXPECT_TRUE(second) << second.error().message();
    EXPECT_TRUE(first->close());
    EXPECT_TRUE(exists(path("x.sock"))) << "closing the first listener removed the second's file";
    auto client = co_await UnixStream::connect(address("x.sock"));
    EXPECT_TRUE(client) << "the second listener must still be reachable: " << client.error().message();
  }()));
}

TEST_P(UnixTest, StaleFileNeedsUnlinkStaleAndLiveOnesAreKept) {
  // A socket file left by a process that died: bound, never unlinked.
  const UnixAddress stale = address("stale.sock");
  {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(::bind(fd, stale.data(), stale.size()), 0) << strerror(errno);
    ::close(fd);
  }
  ASSERT_TRUE(exists(path("stale.sock")));
  EXPECT_TRUE(run([this](UnixAddress stale) -> Task<void> {
    auto refused = co_await UnixStream::connect(stale);
    EXPECT_FALSE(refused);
    if (!refused) {
      EXPECT_EQ(refused.error().code(), ECONNREFUSED) << refused.error().message();
    }
    auto in_use = UnixListener::bind(stale);
    EXPECT_FALSE(in_use);
    if (!in_use) {
      EXPECT_EQ(in_use.error().code(), EADDRINUSE) << in_use.error().message();
    }
    auto replaced = UnixListener::bind(stale, {.unlink_stale = true});
    EXPECT_TRUE(replaced) << replaced.error().message();
    if (!replaced) co_return;

    // Now it is live: unlink_stale must leave it alone.
    auto live = UnixListener::bind(stale, {.unlink_stale = true});
    EXPECT_FALSE(live);
    if (!live) {
      EXPECT_EQ(live.error().code(), EADDRINUSE) << live.error().message();
    }
    auto still = co_await UnixStream::connect(stale);
    EXPECT_TRUE(still) << "the live listener lost its path: " << still.error().message();

    // A path that is not a socket is never unlinked.
    const std::string plain = path("plain.txt");
    const int file = ::open(plain.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    EXPECT_GE(file, 0);
    ::close(file);
    auto over_file = UnixListener::bind(*UnixAddress::path(plain), {.unlink_stale = true});
    EXPECT_FALSE(over_file);
    if (!over_file) {
      EXPECT_EQ(over_file.error().code(), EADDRINUSE) << over_file.error().message();
    }
    EXPECT_TRUE(exists(plain));

    // The same for datagram sockets.
    auto datagram_live = UnixDatagram::bind(address("dgram.sock"));
    EXPECT_TRUE(datagram_live);
    auto datagram_second = UnixDatagram::bind(address("dgram.sock"), {.unlink_stale = true});
    EXPECT_FALSE(datagram_second);
    if (!datagram_second) {
      EXPECT_EQ(datagram_second.error().code(), EADDRINUSE);
    }
  }(stale)));
}

TEST_P(UnixTest, AbstractNameInUseAndFreedOnClose) {
  EXPECT_TRUE(run([]() -> Task<void> {
    const UnixAddress where = abstract("in-use");
    auto first = UnixListener::bind(where);
    EXPECT_TRUE(first);
    auto second = UnixListener::bind(where);
    EXPECT_FALSE(second);
    if (!second) {
      EXPECT_EQ(second.error().code(), EADDRINUSE);
    }
    EXPECT_TRUE(first->close());
    auto third = UnixListener::bind(where);
    EXPECT_TRUE(third) << "an abstract name is free once its socket closes";
    co_return;
  }()));
}

TEST_P(UnixTest, ConnectErrorsNameTheCause) {
  EXPECT_TRUE(run([this]() -> Task<void> {
    auto missing = co_await UnixStream::connect(address("nobody.sock"));
    EXPECT_FALSE(missing);
    if (!missing) {
      EXPECT_EQ(missing.error().code(), ENOENT) << missing.error().message();
      EXPECT_STREQ(missing.error().operation(), "connect");
    }
    auto abstract_missing = co_await UnixStream::connect(abstract("nobody"));
    EXPECT_FALSE(abstract_missing);
    if (!abstract_missing) {
      EXPECT_EQ(abstract_missing.error().code(), ECONNREFUSED) << abstract_missing.error().message();
    }
    const std::string long_path = directory_ + "/" + std::string(120, 'l');
    auto too_long = UnixAddress::path(long_path);
    EXPECT_FALSE(too_long);
    if (!too_long) {
      EXPECT_EQ(too_long.error().code(), ENAMETOOLONG);
    }
  }()));
}

// --- Datagrams -------------------------------------------------------------------------------------------

TEST_P(UnixTest, DatagramsCarryTheirSenderAndBoundaries) {
  EXPECT_TRUE(run([this]() -> Task<void> {
    auto server = UnixDatagram::bind(address("server.sock"));
    EXPECT_TRUE(server) << server.error().message();
    auto anonymous = UnixDatagram::unbound();
    auto named = UnixDatagram::bind(abstract("client"));
    EXPECT_TRUE(anonymous && named);
    if (!server || !anonymous || !named) co_return;
    const UnixAddress server_address = *server->local_addr();

    EXPECT_EQ(*co_await anonymous->send_to(std::string_view("one"), server_address), 3u);
    EXPECT_EQ(*co_await named->send_to(std::string_view("two!"), server_address), 4u);
    EXPECT_EQ(*co_await named->send_to(std::string_view(""), server_address), 0u);  // empty datagrams exist

    std::array<char, 64> buffer;
    auto first = co_await server->recv_from(buffer);
    EXPECT_TRUE(first) << first.error().message();
    if (!first) co_return;
    EXPECT_EQ(std::string_view(buffer.data(), first->size), "one");
    EXPECT_FALSE(first->truncated());
    EXPECT_TRUE(first->from.is_unnamed()) << first->from.to_string();
    auto second = co_await server->recv_from(buffer);
    EXPECT_EQ(std::string_view(buffer.data(), second->size), "two!");
    EXPECT_EQ(second->from, abstract("client"));
    auto empty = co_await server->recv_from(buffer);
    EXPECT_TRUE(empty);
    EXPECT_EQ(empty->size, 0u);

    // Answer the named client at the address it came from.
    EXPECT_TRUE(co_await server->send_to(std::string_view("reply"), second->from));
    auto reply = co_await named->recv_from(buffer);
    EXPECT_EQ(std::string_view(buffer.data(), reply->size), "reply");
    EXPECT_EQ(reply->from, server_address);

    // Connected: send() and only the peer's datagrams.
    EXPECT_TRUE(anonymous->connect(server_address));
    EXPECT_TRUE(co_await anonymous->send(std::string_view("connected")));
    auto third = co_await server->recv_from(buffer);
    EXPECT_EQ(std::string_view(buffer.data(), third->size), "connected");
    auto refused = anonymous->connect(address("nothing.sock"));
    EXPECT_FALSE(refused);
  }()));
}

TEST_P(UnixTest, DatagramTruncationIsReported) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto pair = UnixDatagram::pair();
    EXPECT_TRUE(pair);
    if (!pair) co_return;
    auto& [a, b] = *pair;
    std::string big(1000, 'b');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    EXPECT_EQ(*co_await a.send(big), big.size());
    EXPECT_EQ(*co_await a.send(std::string_view("next")), 4u);
    std::array<char, 10> small;
    auto cut = co_await b.recv_from(small);
    EXPECT_TRUE(cut);
    if (!cut) co_return;
    EXPECT_TRUE(cut->truncated());
    EXPECT_EQ(cut->size, 10u);
    EXPECT_EQ(cut->datagram_size, 1000u);
    EXPECT_EQ(std::string_view(small.data(), 10), std::string_view(big).substr(0, 10));
    auto next = co_await b.recv_from(small);
    EXPECT_FALSE(next->truncated()) << "the rest of a truncated datagram must not leak into the next";
    EXPECT_EQ(std::string_view(small.data(), next->size), "next");
  }()));
}

// net.unix.max_dgram_qlen bounds a receiver's queue (10 here): a send past it waits until the receiver
// reads, connected or not, and sends the whole datagram (io_uring's own retry would send an empty one).
TEST_P(UnixTest, DatagramSendWaitsForAFullReceiver) {
  EXPECT_TRUE(run([this]() -> Task<void> {
    auto server = UnixDatagram::bind(address("full.sock"));
    auto unconnected = UnixDatagram::unbound();
    auto connected = UnixDatagram::unbound();
    if (!server || !unconnected || !connected) {
      ADD_FAILURE() << "set-up failed";
      co_return;
    }
    const UnixAddress to = *server->local_addr();
    EXPECT_TRUE(connected->connect(to));
    for (bool use_connected : {false, true}) {
      SCOPED_TRACE(use_connected ? "connected" : "unconnected");
      int queued = 0;
      for (; queued < 10000; ++queued) {
        const std::string text = "d" + std::to_string(queued);
        // A short deadline tells "queued at once" from "waits".
        auto sent = co_await timeout(milliseconds(30), use_connected ? connected->send(text) : unconnected->send_to(text, to));
        if (!sent) {
          EXPECT_TRUE(sent.error().is_timed_out()) << sent.error().message();
          break;
        }
      }
      EXPECT_GT(queued, 0);
      EXPECT_LT(queued, 10000) << "the receiver's queue never filled";
      // One more send waits; the receiver drains meanwhile.
      const std::string last = "the last one, complete";
      auto waiting = Worker::current()->spawn([](UnixDatagram& client, bool use_connected, UnixAddress to,
                                                 std::string text) -> Task<Result<std::size_t>> {
        if (use_connected) co_return co_await client.send(text);
        co_return co_await client.send_to(text, to);
      }(use_connected ? *connected : *unconnected, use_connected, to, last));
      (void)co_await sleep_for(milliseconds(20));
      std::array<char, 64> buffer;
      std::string got;
      for (int i = 0; i <= queued; ++i) {
        auto datagram = co_await timeout(milliseconds(2000), server->recv_from(buffer));
        EXPECT_TRUE(datagram) << datagram.error().message();
        if (!datagram) break;
        got.assign(buffer.data(), datagram->size);
      }
      EXPECT_EQ(got, last) << "the datagram that waited arrived altered";
      auto sent = co_await std::move(waiting);
      EXPECT_TRUE(sent) << sent.error().message();
      if (sent) {
        EXPECT_EQ(*sent, last.size());
      }
    }
  }()));
}

// --- Descriptor passing ----------------------------------------------------------------------------------

TEST_P(UnixTest, StreamPassesDescriptorsBothWays) {
  worker_.reset();
  const int fds_before = testing::open_fd_count();
  create_worker({});
  EXPECT_TRUE(run([]() -> Task<void> {
    auto pair = UnixStream::pair();
    EXPECT_TRUE(pair);
    if (!pair) co_return;
    auto& [a, b] = *pair;
    for (int direction = 0; direction < 2; ++direction) {
      UnixStream& sender = direction == 0 ? a : b;
      UnixStream& receiver = direction == 0 ? b : a;
      Pipe pipe;
      const int passed[] = {pipe.fds[1], pipe.fds[1]};  // the same descriptor twice: two new fds
      auto sent = co_await sender.send_with_fds(std::string_view("fds"), passed);
      EXPECT_TRUE(sent) << sent.error().message();
      EXPECT_EQ(*sent, 3u);
      ::close(std::exchange(pipe.fds[1], -1));  // the kernel holds its own reference meanwhile
      std::array<char, 16> buffer;
      auto message = co_await receiver.recv_with_fds(buffer);
      EXPECT_TRUE(message) << message.error().message();
      if (!message) co_return;
      EXPECT_EQ(std::string_view(buffer.data(), message->size), "fds");
      EXPECT_EQ(message->fds.size(), 2u);
      EXPECT_FALSE(message->fds.truncated());
      for (OwnedFd& fd : message->fds) {
        EXPECT_TRUE(has_cloexec(fd.get())) << "received descriptors must carry FD_CLOEXEC";
        expect_same_pipe(fd.get(), pipe.fds[0], direction == 0 ? "a to b" : "b to a");
      }
      OwnedFd kept = message->fds.take(0);
      EXPECT_TRUE(kept.is_open());
      EXPECT_FALSE(message->fds[0].is_open());
    }
    // Bytes without descriptors read the same way; descriptors need a byte to travel with on a stream.
    EXPECT_TRUE(co_await a.write_all(std::string_view("plain")));
    std::array<char, 16> buffer;
    auto plain = co_await b.recv_with_fds(buffer);
    EXPECT_TRUE(plain);
    EXPECT_EQ(plain->size, 5u);
    EXPECT_TRUE(plain->fds.empty());
    const int one[] = {0};
    auto empty = co_await a.send_with_fds(std::string_view(""), one);
    EXPECT_FALSE(empty);
    if (!empty) {
      EXPECT_EQ(empty.error().code(), EINVAL) << empty.error().message();
    }
    std::vector<int> too_many(kMaxFdsPerMessage + 1, 0);
    auto refused = co_await a.send_with_fds(std::string_view("x"), too_many);
    EXPECT_FALSE(refused);
    if (!refused) {
      EXPECT_EQ(refused.error().code(), EINVAL) << refused.error().message();
    }
  }()));
  worker_.reset();
  EXPECT_EQ(testing::open_fd_count(), fds_before) << "a passed descriptor leaked";
}

TEST_P(UnixTest, DatagramPassesDescriptorsBothWays) {
  worker_.reset();
  const int fds_before = testing::open_fd_count();
  create_worker({});
  EXPECT_TRUE(run([this]() -> Task<void> {
    auto server = UnixDatagram::bind(address("fds.sock"));
    auto client = UnixDatagram::bind(abstract("fds-client"));
    if (!server || !client) {
      ADD_FAILURE() << "set-up failed";
      co_return;
    }
    Pipe pipe;
    const int passed[] = {pipe.fds[1]};
    EXPECT_TRUE(co_await client->send_to_with_fds(std::string_view("take this"), passed, *server->local_addr()));
    std::array<char, 32> buffer;
    auto got = co_await server->recv_with_fds(buffer);
    EXPECT_TRUE(got) << got.error().message();
    if (!got) co_return;
    EXPECT_EQ(std::string_view(buffer.data(), got->size), "take this");
    EXPECT_EQ(got->from, abstract("fds-client"));
    EXPECT_EQ(got->fds.size(), 1u);
    if (got->fds.size() == 1) expect_same_pipe(got->fds[0].get(), pipe.fds[0], "server side");

    // Back, with an empty datagram (a datagram may carry descriptors alone), and over a connected pair.
    EXPECT_TRUE(co_await server->send_to_with_fds(std::string_view(""), passed, got->from));
    auto back = co_await client->recv_with_fds(buffer);
    EXPECT_TRUE(back);
    EXPECT_EQ(back->size, 0u);
    EXPECT_EQ(back->fds.size(), 1u);
    if (back->fds.size() == 1) expect_same_pipe(back->fds[0].get(), pipe.fds[0], "client side");

    auto pair = UnixDatagram::pair();
    EXPECT_TRUE(co_await pair->first.send_with_fds(std::string_view("p"), passed));
    auto paired = co_await pair->second.recv_with_fds(buffer);
    EXPECT_EQ(paired->fds.size(), 1u);
    // recv_from has no control buffer: the kernel closes descriptors sent to it.
    EXPECT_TRUE(co_await pair->first.send_with_fds(std::string_view("q"), passed));
    auto without = co_await pair->second.recv_from(buffer);
    EXPECT_TRUE(without);
    EXPECT_TRUE(without->fds.empty());
  }()));
  worker_.reset();
  EXPECT_EQ(testing::open_fd_count(), fds_before) << "a passed descriptor leaked";
}

// More descriptors than the receive's control buffer holds (MSG_CTRUNC): the bytes arrive, every
// descriptor of the message is closed, and the result says so.
TEST_P(UnixTest, TooManyDescriptorsAreClosedNotLeaked) {
  worker_.reset();
  const int fds_before = testing::open_fd_count();
  create_worker({});
  EXPECT_TRUE(run([]() -> Task<void> {
    auto stream_pair = UnixStream::pair();
    auto datagram_pair = UnixDatagram::pair();
    if (!stream_pair || !datagram_pair) co_return;
    Pipe pipe;
    // Sent with sendmsg(2) directly: our own send refuses more than kMaxFdsPerMessage.
    constexpr int kCount = static_cast<int>(kMaxFdsPerMessage) + 8;
    auto send_many = [&](int fd) {
      alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int) * kCount)] = {};
      char byte = 'm';
      iovec vector{&byte, 1};
      msghdr message{};
      message.msg_iov = &vector;
      message.msg_iovlen = 1;
      message.msg_control = control;
      message.msg_controllen = sizeof(control);
      cmsghdr* header = CMSG_FIRSTHDR(&message);
      header->cmsg_level = SOL_SOCKET;
      header->cmsg_type = SCM_RIGHTS;
      header->cmsg_len = CMSG_LEN(sizeof(int) * kCount);
      for (int i = 0; i < kCount; ++i) std::memcpy(CMSG_DATA(header) + i * sizeof(int), &pipe.fds[1], sizeof(int));
      EXPECT_EQ(::sendmsg(fd, &message, 0), 1) << strerror(errno);
    };
    const int fds_with_sockets = testing::open_fd_count();
    send_many(stream_pair->first.native_handle());
    std::array<char, 8> buffer;
    auto stream_message = co_await stream_pair->second.recv_with_fds(buffer);
    EXPECT_TRUE(stream_message);
    EXPECT_EQ(stream_message->size, 1u);
    EXPECT_TRUE(stream_message->fds.empty());
    EXPECT_TRUE(stream_message->fds.truncated());
    send_many(datagram_pair->first.native_handle());
    auto datagram = co_await datagram_pair->second.recv_with_fds(buffer);
    EXPECT_TRUE(datagram);
    EXPECT_EQ(datagram->size, 1u);
    EXPECT_TRUE(datagram->fds.truncated());
    EXPECT_EQ(testing::open_fd_count(), fds_with_sockets) << "descriptors of a truncated message leaked";
  }()));
  worker_.reset();
  EXPECT_EQ(testing::open_fd_count(), fds_before);
}

// A receive cancelled while it waits received nothing; one that raced its cancel either returns its
// descriptors or left them queued. A deadline likewise. Nothing leaks either way.
TEST_P(UnixTest, CancelledOrTimedOutReceiveLeaksNoDescriptor) {
  worker_.reset();
  const int fds_before = testing::open_fd_count();
  create_worker({});
  EXPECT_TRUE(run([]() -> Task<void> {
    Worker& worker = *Worker::current();
    auto pair = UnixStream::pair();
    if (!pair) co_return;
    auto& [a, b] = *pair;
    Pipe pipe;
    const int passed[] = {pipe.fds[1], pipe.fds[0]};
    std::array<char, 8> buffer;

    auto waiting = worker.spawn([](UnixStream& s, std::array<char, 8>& into) -> Task<Result<UnixStream::Message>> {
      co_return co_await s.recv_with_fds(into);
    }(b, buffer));
    co_await testing::settle();
    waiting.cancel();
    auto cancelled = co_await std::move(waiting);
    EXPECT_FALSE(cancelled);
    if (!cancelled) {
      EXPECT_TRUE(cancelled.error().is_cancelled()) << cancelled.error().message();
    }

    auto timed_out = co_await timeout(milliseconds(20), b.recv_with_fds(buffer));
    EXPECT_FALSE(timed_out);
    if (!timed_out) {
      EXPECT_TRUE(timed_out.error().is_timed_out()) << timed_out.error().message();
    }

    for (int round = 0; round < 20; ++round) {
      auto racing = worker.spawn([](UnixStream& s, std::array<char, 8>& into) -> Task<Result<UnixStream::Message>> {
        co_return co_await s.recv_with_fds(into);
      }(b, buffer));
      co_await testing::settle();
      EXPECT_TRUE(co_await a.send_with_fds(std::string_view("r"), passed));
      racing.cancel();
      auto raced = co_await std::move(racing);
      if (!raced) {
        EXPECT_TRUE(raced.error().is_cancelled());
        auto late = co_await b.recv_with_fds(buffer);  // the message is still there
        EXPECT_TRUE(late);
        if (late) {
          EXPECT_EQ(late->fds.size(), 2u);
        }
      } else {
        EXPECT_EQ(raced->fds.size(), 2u);
      }
    }
  }()));
  worker_.reset();
  EXPECT_EQ(testing::open_fd_count(), fds_before) << "a descriptor of a cancelled receive leaked";
}

// The frame of a receive whose recvmsg had completed (the kernel installed the descriptors) is destroyed
// by a worker shutdown before it was resumed: the awaitable closes them.
TEST_P(UnixTest, ShutdownClosesDescriptorsNobodyTook) {
  worker_.reset();
  const int fds_before = testing::open_fd_count();
  create_worker({});
  int raw[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, raw), 0);
  Pipe pipe;
  std::array<char, 8> buffer;
  UnixStream receiver(*worker_, raw[0]);
  // Sent before the receive starts, so that its recvmsg completes at once (inline on epoll, in the
  // same submission on io_uring) and the shutdown below delivers that completion without resuming.
  {
    const int passed[] = {pipe.fds[1], pipe.fds[1], pipe.fds[1]};
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(passed))] = {};
    char byte = 's';
    iovec vector{&byte, 1};
    msghdr message{};
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(passed));
    std::memcpy(CMSG_DATA(header), passed, sizeof(passed));
    ASSERT_EQ(::sendmsg(raw[1], &message, 0), 1) << strerror(errno);
  }
  const int fds_ready = testing::open_fd_count();
  bool resumed = false;
  worker_->block_on([](UnixStream& s, std::array<char, 8>& into, bool& resumed) -> Task<void> {
    (void)Worker::current()->spawn([](UnixStream& s, std::array<char, 8>& into, bool& resumed) -> Task<void> {
      auto message = co_await s.recv_with_fds(into);
      resumed = true;
    }(s, into, resumed));
    co_await yield();  // the receive starts and suspends; this task ends before the next poll
  }(receiver, buffer, resumed));
  if (GetParam() == BackendChoice::kEpoll) {
    EXPECT_EQ(testing::open_fd_count(), fds_ready + 3) << "the receive was meant to have completed in the kernel";
  }
  worker_->shutdown();
  EXPECT_FALSE(resumed) << "the test meant the receive's frame to be destroyed unresumed";
  EXPECT_EQ(testing::open_fd_count(), fds_ready) << "descriptors of an unclaimed receive leaked";
  (void)receiver.close();
  ::close(raw[1]);
  worker_.reset();
  ::close(std::exchange(pipe.fds[0], -1));
  ::close(std::exchange(pipe.fds[1], -1));
  EXPECT_EQ(testing::open_fd_count(), fds_before);
}

// --- Cancellation and deadlines at each await -------------------------------------------------------------

TEST_P(UnixTest, EveryAwaitCanBeCancelledAndTimedOut) {
  EXPECT_TRUE(run([this]() -> Task<void> {
    Worker& worker = *Worker::current();
    auto listener = UnixListener::bind(address("cancel.sock"));
    if (!listener) co_return;
    // accept
    auto accepting = worker.spawn([](UnixListener& l) -> Task<Result<UnixStream>> { co_return co_await l.accept(); }(*listener));
    co_await testing::settle();
    accepting.cancel();
    auto accepted = co_await std::move(accepting);
    EXPECT_TRUE(!accepted && accepted.error().is_cancelled());
    auto accept_late = co_await timeout(milliseconds(10), listener->accept());
    EXPECT_TRUE(!accept_late && accept_late.error().is_timed_out());

    auto pair = UnixStream::pair();
    auto& [a, b] = *pair;
    std::array<char, 16> buffer;
    // read, read_exact, recv_with_fds: nothing arrives
    auto read = co_await timeout(milliseconds(10), b.read(buffer));
    EXPECT_TRUE(!read && read.error().is_timed_out());
    auto exact = co_await timeout(milliseconds(10), b.read_exact(buffer));
    EXPECT_TRUE(!exact && exact.error().is_timed_out());
    auto reading = worker.spawn([](UnixStream& s, std::array<char, 16>& into) -> Task<Result<std::size_t>> {
      co_return co_await s.read(into);
    }(b, buffer));
    co_await testing::settle();
    reading.cancel();
    auto read_cancelled = co_await std::move(reading);
    EXPECT_TRUE(!read_cancelled && read_cancelled.error().is_cancelled());

    // write_all and send_with_fds into a full socket
    std::vector<char> lots(8 << 20, 'w');
    auto written = co_await timeout(milliseconds(20), a.write_all(lots));
    EXPECT_TRUE(!written && written.error().is_timed_out());
    EXPECT_GT(written.transferred(), 0u);
    const int none[] = {0};
    auto fd_send = co_await timeout(milliseconds(10), a.send_with_fds(std::string_view("x"), none));
    EXPECT_TRUE(!fd_send && fd_send.error().is_timed_out()) << (fd_send ? "sent" : fd_send.error().message());

    // datagrams: receive with nothing queued; a send to a full receiver
    auto datagrams = UnixDatagram::pair();
    auto& [d1, d2] = *datagrams;
    auto recv = co_await timeout(milliseconds(10), d2.recv_from(buffer));
    EXPECT_TRUE(!recv && recv.error().is_timed_out());
    auto receiving = worker.spawn([](UnixDatagram& s, std::array<char, 16>& into) -> Task<Result<UnixDatagram::Datagram>> {
      co_return co_await s.recv_with_fds(into);
    }(d2, buffer));
    co_await testing::settle();
    receiving.cancel();
    auto recv_cancelled = co_await std::move(receiving);
    EXPECT_TRUE(!recv_cancelled && recv_cancelled.error().is_cancelled());
    Result<std::size_t> sent = std::size_t{0};
    for (int i = 0; i < 10000 && sent; ++i) sent = co_await timeout(milliseconds(20), d1.send(std::string_view("fill")));
    EXPECT_TRUE(!sent && sent.error().is_timed_out());
    auto sending = worker.spawn([](UnixDatagram& s) -> Task<Result<std::size_t>> {
      co_return co_await s.send(std::string_view("blocked"));
    }(d1));
    co_await testing::settle();
    sending.cancel();
    auto send_cancelled = co_await std::move(sending);
    EXPECT_TRUE(!send_cancelled && send_cancelled.error().is_cancelled());

    // connect: a listener whose backlog is full (0: one queued connection) makes a Unix connect wait.
    auto tight = UnixListener::bind(address("tight.sock"), {.backlog = 0});
    EXPECT_TRUE(tight) << tight.error().message();
    if (!tight) co_return;
    std::vector<UnixStream> queued;
    for (int i = 0; i < 100; ++i) {
      auto connected = co_await timeout(milliseconds(20), UnixStream::connect(address("tight.sock")));
      if (!connected) {
        EXPECT_TRUE(connected.error().is_timed_out()) << connected.error().message();
        EXPECT_STREQ(connected.error().operation(), "connect");
        break;
      }
      queued.push_back(std::move(*connected));
    }
    EXPECT_GE(queued.size(), 1u);
    EXPECT_LT(queued.size(), 100u) << "the backlog never filled";
    auto cancelled_connect = worker.spawn([](UnixAddress where) -> Task<Result<UnixStream>> {
      co_return co_await UnixStream::connect(where);
    }(address("tight.sock")));
    co_await testing::settle();
    cancelled_connect.cancel();
    auto connect_outcome = co_await std::move(cancelled_connect);
    EXPECT_TRUE(!connect_outcome && connect_outcome.error().is_cancelled());
    // One that waits connects once the listener accepts.
    auto waiting_connect = worker.spawn([](UnixAddress where) -> Task<Result<UnixStream>> {
      co_return co_await UnixStream::connect(where);
    }(address("tight.sock")));
    (void)co_await sleep_for(milliseconds(10));
    std::vector<UnixStream> served;
    for (std::size_t i = 0; i < queued.size(); ++i) {
      auto one = co_await timeout(milliseconds(1000), tight->accept());
      EXPECT_TRUE(one) << one.error().message();
      if (one) served.push_back(std::move(*one));
    }
    auto late = co_await timeout(milliseconds(2000), std::move(waiting_connect));
    EXPECT_TRUE(late) << late.error().message();
  }()));
}

// Short reads and writes on every chunk (FaultInjectionBackend caps each recv and send at 7 bytes), and
// an injected recvmsg failure that leaves nothing behind.
class UnixFaultTest : public testing::BackendTest {
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
  FaultInjectionBackend* faults_ = nullptr;
};

TEST_P(UnixFaultTest, ShortTransfersAndInjectedFailures) {
  faults_->limit_transfer(7);
  EXPECT_TRUE(run([](FaultInjectionBackend& faults) -> Task<void> {
    auto fresh = UnixStream::pair();
    if (!fresh) co_return;
    auto server = Worker::current()->spawn(examples::echo_session(std::move(fresh->second)));
    co_await echo_random_bytes(fresh->first, 20000, 3);
    (void)co_await std::move(server);

    auto datagrams = UnixDatagram::pair();
    faults.fail_nth(OpCode::kRecvMsg, 1, ECONNRESET);
    Pipe pipe;
    const int passed[] = {pipe.fds[1]};
    EXPECT_TRUE(co_await datagrams->first.send_with_fds(std::string_view("f"), passed));
    std::array<char, 8> buffer;
    auto failed = co_await datagrams->second.recv_with_fds(buffer);
    EXPECT_FALSE(failed);
    if (!failed) {
      EXPECT_EQ(failed.error().code(), ECONNRESET);
      EXPECT_STREQ(failed.error().operation(), "recvmsg");
    }
    auto after = co_await datagrams->second.recv_with_fds(buffer);  // the datagram waited in the queue
    EXPECT_TRUE(after);
    if (after) {
      EXPECT_EQ(after->fds.size(), 1u);
    }
  }(*faults_)));
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(UnixTest);
SURGE_INSTANTIATE_FOR_EACH_BACKEND(UnixFaultTest);

}  // namespace
}  // namespace surge
