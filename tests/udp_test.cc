// UDP over real loopback sockets, on every backend (and io_uring without buffer rings, for the pool
// path of borrowed datagrams): echo byte-compared over IPv4 and IPv6, truncation (never a silent cut),
// empty datagrams, borrowed (multishot) receives of many datagrams with their sources, connected
// sockets and ECONNREFUSED, cancellation and deadlines at each await, GSO round trips (and the
// per-datagram fallback), a flood against a slow reader (the kernel drops, we hold a bounded number of
// lent buffers), bad input, no fd leaks.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "net/socket_address.h"
#include "net/udp_socket.h"
#include "runtime/backend/backend.h"
#include "runtime/testing/backend_param.h"
#include "runtime/testing/fd_count.h"
#include "runtime/time.h"
#include "runtime/when.h"

namespace surge {
namespace {

using std::chrono::milliseconds;

// The backend, and whether io_uring may use a provided-buffer ring (false: the pool path).
using UdpParam = std::tuple<BackendChoice, bool>;

class UdpTest : public ::testing::TestWithParam<UdpParam> {
 protected:
  void SetUp() override { create_worker({}); }
  void create_worker(BackendOptions options) {
    worker_.reset();
    options.allow_buffer_ring = std::get<1>(GetParam());
    std::unique_ptr<Backend> backend;
    testing::make_backend_or_skip(std::get<0>(GetParam()), options, backend);
    if (backend) worker_ = Worker::with_backend(std::move(backend));
  }
  bool run(Task<void> task, milliseconds limit = std::chrono::seconds(10)) {
    return testing::run_bounded(*worker_, std::move(task), limit);
  }
  std::unique_ptr<Worker> worker_;
};

std::string udp_test_name(const ::testing::TestParamInfo<UdpParam>& info) {
  if (std::get<0>(info.param) == BackendChoice::kEpoll) return "Epoll";
  return std::get<1>(info.param) ? "IoUring" : "IoUringPool";
}

INSTANTIATE_TEST_SUITE_P(Backends, UdpTest,
                         ::testing::Values(UdpParam{BackendChoice::kIoUring, true},
                                           UdpParam{BackendChoice::kIoUring, false},
                                           UdpParam{BackendChoice::kEpoll, true}),
                         udp_test_name);

std::vector<unsigned char> random_bytes(std::mt19937& random, std::size_t size) {
  std::vector<unsigned char> bytes(size);
  for (auto& byte : bytes) byte = static_cast<unsigned char>(random());
  return bytes;
}

// Echoes `count` datagrams back to their senders with recv_from/send_to.
Task<Result<void>> echo_datagrams(UdpSocket& socket, int count) {
  std::vector<unsigned char> buffer(65536);
  for (int i = 0; i < count; ++i) {
    auto received = co_await socket.recv_from(buffer);
    if (!received) co_return received.error();
    auto sent = co_await socket.send_to(ConstBuffer(buffer.data(), received->size), received->source);
    if (!sent) co_return sent.error();
  }
  co_return ok();
}

Task<void> echo_round_trips(SocketAddress any_loopback, unsigned seed) {
  auto server = UdpSocket::bind(any_loopback);
  auto client = UdpSocket::bind(any_loopback);
  if (!server || !client) {
    ADD_FAILURE() << "bind failed";
    co_return;
  }
  auto server_address = server->local_addr();
  EXPECT_NE(server_address->port(), 0) << "port 0 must be replaced by the kernel's choice";
  EXPECT_EQ(server_address->family(), any_loopback.family());
  constexpr int kDatagrams = 64;
  auto echo = Worker::current()->spawn(echo_datagrams(*server, kDatagrams));
  std::mt19937 random(seed);
  std::vector<unsigned char> reply(65536);
  for (int i = 0; i < kDatagrams; ++i) {
    // Sizes from empty to the largest IPv4 datagram, a few of each order of magnitude.
    const std::size_t size = i == 0 ? 0 : i == 1 ? 65507 : random() % (std::size_t{1} << (random() % 15));
    auto sent_bytes = random_bytes(random, size);
    auto sent = co_await client->send_to(sent_bytes, *server_address);
    EXPECT_TRUE(sent) << sent.error().message();
    if (!sent) break;
    EXPECT_EQ(*sent, size) << "a datagram goes whole or not at all";
    auto received = co_await client->recv_from(reply);
    EXPECT_TRUE(received) << received.error().message();
    if (!received) break;
    EXPECT_EQ(received->source, *server_address);
    EXPECT_FALSE(received->truncated);
    EXPECT_EQ(received->size, size);
    EXPECT_TRUE(std::equal(sent_bytes.begin(), sent_bytes.end(), reply.begin())) << "datagram " << i << " differs";
  }
  auto echoed = co_await std::move(echo);
  EXPECT_TRUE(echoed) << echoed.error().message();
}

TEST_P(UdpTest, EchoesDatagramsOverIpv4ByteForByte) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  EXPECT_TRUE(run(echo_round_trips(SocketAddress::ipv4_loopback(0), seed)));
}

TEST_P(UdpTest, EchoesDatagramsOverIpv6ByteForByte) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  EXPECT_TRUE(run(echo_round_trips(SocketAddress::ipv6_loopback(0), seed)));
}

TEST_P(UdpTest, DualStackSocketSeesIpv4SendersAsMapped) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto any6 = SocketAddress::parse("[::]:0");
    auto server = UdpSocket::bind(*any6, UdpBindOptions{.v6_only = false});
    EXPECT_TRUE(server) << server.error().message();
    auto client = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    if (!server || !client) co_return;
    EXPECT_TRUE(co_await client->send_to(std::string_view("v4"), SocketAddress::ipv4_loopback(server->local_addr()->port())));
    char buffer[8];
    auto received = co_await server->recv_from(buffer);
    EXPECT_TRUE(received) << received.error().message();
    if (!received) co_return;
    EXPECT_EQ(received->source.family(), AF_INET6);
    EXPECT_EQ(received->source.port(), client->local_addr()->port());
    EXPECT_EQ(received->source.to_string().rfind("[::ffff:127.0.0.1]", 0), 0u) << received->source.to_string();
  }()));
}

TEST_P(UdpTest, LongDatagramIsReportedTruncatedNeverCutSilently) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto server = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    auto client = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    if (!server || !client) {
      ADD_FAILURE() << "bind failed";
      co_return;
    }
    EXPECT_TRUE(client->connect(*server->local_addr()));
    const std::string long_one(100, 'x');
    EXPECT_TRUE(co_await client->send(long_one));
    EXPECT_TRUE(co_await client->send(std::string_view("short")));
    EXPECT_TRUE(co_await client->send(long_one));
    char small[10];
    auto first = co_await server->recv_from(small);
    EXPECT_TRUE(first);
    EXPECT_EQ(first->size, sizeof(small));
    EXPECT_TRUE(first->truncated);
    EXPECT_EQ(std::string_view(small, 10), "xxxxxxxxxx");
    auto second = co_await server->recv_from(small);  // the rest of the first is gone, not delivered here
    EXPECT_EQ(second->size, 5u);
    EXPECT_FALSE(second->truncated);
    EXPECT_EQ(std::string_view(small, 5), "short");
    auto third = co_await server->recv(small);  // recv() says so too
    EXPECT_TRUE(third);
    EXPECT_EQ(third->size, sizeof(small));
    EXPECT_TRUE(third->truncated);
  }()));
}

TEST_P(UdpTest, EmptyDatagramsArriveAsEmpty) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto server = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    auto client = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    if (!server || !client) {
      ADD_FAILURE() << "bind failed";
      co_return;
    }
    EXPECT_TRUE(co_await client->send_to(ConstBuffer(nullptr, 0), *server->local_addr()));
    EXPECT_TRUE(co_await client->send_to(ConstBuffer(nullptr, 0), *server->local_addr()));
    char buffer[4];
    auto copied = co_await server->recv_from(buffer);
    EXPECT_TRUE(copied);
    EXPECT_EQ(copied->size, 0u);
    EXPECT_FALSE(copied->truncated);
    EXPECT_EQ(copied->source, *client->local_addr());
    auto borrowed = co_await server->recv_borrowed();
    EXPECT_TRUE(borrowed) << borrowed.error().message();
    if (!borrowed) co_return;
    EXPECT_TRUE(borrowed->payload.empty());
    EXPECT_FALSE(borrowed->truncated);
    EXPECT_EQ(borrowed->source, *client->local_addr());
  }()));
}

TEST_P(UdpTest, BorrowedReceivesManyDatagramsWithTheirSources) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  const BackendFeatures features = worker_->features();
  if (features.kind == BackendKind::kIoUring && features.buffer_rings && features.multishot_recv) {
    // The path this instance is meant to cover: the multishot recvmsg, or the pool.
    EXPECT_EQ(features.uses_buffer_ring, std::get<1>(GetParam()));
  }
  EXPECT_TRUE(run([](unsigned seed) -> Task<void> {
    auto server = UdpSocket::bind(SocketAddress::ipv6_loopback(0));
    auto a = UdpSocket::bind(SocketAddress::ipv6_loopback(0));
    auto b = UdpSocket::bind(SocketAddress::ipv6_loopback(0));
    if (!server || !a || !b) {
      ADD_FAILURE() << "bind failed";
      co_return;
    }
    const SocketAddress to = *server->local_addr();
    std::mt19937 random(seed);
    // Datagram i says who sent it and its index, then filler; all sent before any is read: more than
    // one socket's bound of unread lent buffers, so the multishot request stops and starts again.
    constexpr int kPerSender = 40;
    std::map<std::uint16_t, std::vector<std::vector<unsigned char>>> sent;
    for (int i = 0; i < kPerSender; ++i) {
      for (UdpSocket* sender : {&*a, &*b}) {
        auto bytes = random_bytes(random, 1 + random() % 1400);
        EXPECT_TRUE(co_await sender->send_to(bytes, to));
        sent[sender->local_addr()->port()].push_back(std::move(bytes));
      }
    }
    std::map<std::uint16_t, std::size_t> next;
    for (int i = 0; i < 2 * kPerSender; ++i) {
      auto datagram = co_await timeout(std::chrono::seconds(2), server->recv_borrowed());
      EXPECT_TRUE(datagram) << "datagram " << i << ": " << datagram.error().message();
      if (!datagram) co_return;
      EXPECT_FALSE(datagram->truncated);
      const std::uint16_t port = datagram->source.port();
      EXPECT_EQ(datagram->source.family(), AF_INET6);
      auto it = sent.find(port);
      EXPECT_NE(it, sent.end()) << "unknown source " << datagram->source.to_string();
      if (it == sent.end()) co_return;
      const auto& expected = it->second.at(next[port]++);  // per source, in order (loopback keeps it)
      EXPECT_EQ(datagram->payload.size(), expected.size());
      EXPECT_TRUE(std::equal(expected.begin(), expected.end(),
                             reinterpret_cast<const unsigned char*>(datagram->payload.data())));
    }
    EXPECT_EQ(next[a->local_addr()->port()], std::size_t{kPerSender});
    EXPECT_EQ(next[b->local_addr()->port()], std::size_t{kPerSender});
    // Once borrowed, the socket refuses copying receives (they would race the multishot request).
    char buffer[4];
    auto mixed = co_await server->recv_from(buffer);
    EXPECT_FALSE(mixed);
    if (!mixed) {
      EXPECT_EQ(mixed.error().code(), EINVAL);
    }
  }(seed)));
}

TEST_P(UdpTest, BorrowedDatagramLongerThanTheLentBufferIsFlaggedTruncated) {
  BackendOptions options;
  options.lent_buffer_size = 512;
  create_worker(options);
  if (!worker_) return;
  EXPECT_TRUE(run([]() -> Task<void> {
    auto server = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    auto client = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    if (!server || !client) {
      ADD_FAILURE() << "bind failed";
      co_return;
    }
    std::string big(2000, 'b');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    EXPECT_TRUE(co_await client->send_to(big, *server->local_addr()));
    EXPECT_TRUE(co_await client->send_to(std::string_view("fits"), *server->local_addr()));
    auto first = co_await server->recv_borrowed();
    EXPECT_TRUE(first) << first.error().message();
    if (!first) co_return;
    EXPECT_TRUE(first->truncated);
    EXPECT_GT(first->payload.size(), 400u);
    EXPECT_LE(first->payload.size(), 512u);
    EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(first->payload.data()), first->payload.size()),
              std::string_view(big).substr(0, first->payload.size()));
    auto second = co_await server->recv_borrowed();
    EXPECT_TRUE(second);
    if (!second) co_return;
    EXPECT_FALSE(second->truncated);
    EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(second->payload.data()), second->payload.size()), "fits");
  }()));
}

TEST_P(UdpTest, ConnectedSocketSendsAndReceivesAndSeesPortUnreachable) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto server = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    auto client = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    auto stranger = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    if (!server || !client || !stranger) {
      ADD_FAILURE() << "bind failed";
      co_return;
    }
    char buffer[16];
    auto unconnected = co_await client->send(std::string_view("nowhere"));
    EXPECT_FALSE(unconnected);
    if (!unconnected) {
      EXPECT_EQ(unconnected.error().code(), EDESTADDRREQ) << unconnected.error().message();
    }
    EXPECT_FALSE(client->peer_addr());
    EXPECT_TRUE(client->connect(*server->local_addr()));
    EXPECT_EQ(*client->peer_addr(), *server->local_addr());
    EXPECT_TRUE(co_await client->send(std::string_view("ping")));
    auto ping = co_await server->recv_from(buffer);
    EXPECT_TRUE(ping);
    EXPECT_EQ(std::string_view(buffer, ping->size), "ping");
    // A datagram from anyone but the peer never reaches a connected socket.
    EXPECT_TRUE(co_await stranger->send_to(std::string_view("spam"), *client->local_addr()));
    EXPECT_TRUE(co_await server->send_to(std::string_view("pong"), ping->source));
    auto pong = co_await client->recv(buffer);
    EXPECT_TRUE(pong);
    EXPECT_EQ(std::string_view(buffer, pong->size), "pong");

    // The peer goes away: the kernel turns its ICMP port unreachable into ECONNREFUSED.
    const SocketAddress gone = *server->local_addr();
    EXPECT_TRUE(server->close());
    auto refused_client = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    EXPECT_TRUE(refused_client->connect(gone));
    EXPECT_TRUE(co_await refused_client->send(std::string_view("anyone?")));
    auto refused = co_await timeout(std::chrono::seconds(2), refused_client->recv(buffer));
    EXPECT_FALSE(refused);
    if (!refused) {
      EXPECT_EQ(refused.error().code(), ECONNREFUSED) << refused.error().message();
    }
    // Likewise for a borrowed receive.
    EXPECT_TRUE(co_await refused_client->send(std::string_view("anyone?")));
    auto refused_borrowed = co_await timeout(std::chrono::seconds(2), refused_client->recv_borrowed());
    EXPECT_FALSE(refused_borrowed);
    if (!refused_borrowed) {
      EXPECT_EQ(refused_borrowed.error().code(), ECONNREFUSED) << refused_borrowed.error().message();
    }
  }()));
}

TEST_P(UdpTest, CancelledReceivesEndWithEcanceled) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto socket = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    if (!socket) {
      ADD_FAILURE() << "bind failed";
      co_return;
    }
    char buffer[16];
    // Each kind of receive, cancelled while it waits in the backend.
    auto from = Worker::current()->spawn([](UdpSocket& s, char* b) -> Task<Result<UdpReceivedFrom>> {
      co_return co_await s.recv_from(MutableBuffer(b, 16));
    }(*socket, buffer));
    co_await testing::settle();
    from.cancel();
    auto from_result = co_await std::move(from);
    EXPECT_FALSE(from_result);
    if (!from_result) {
      EXPECT_TRUE(from_result.error().is_cancelled()) << from_result.error().message();
    }

    auto plain = Worker::current()->spawn([](UdpSocket& s, char* b) -> Task<Result<UdpReceived>> {
      co_return co_await s.recv(MutableBuffer(b, 16));
    }(*socket, buffer));
    co_await testing::settle();
    plain.cancel();
    auto plain_result = co_await std::move(plain);
    EXPECT_FALSE(plain_result);
    if (!plain_result) {
      EXPECT_TRUE(plain_result.error().is_cancelled());
    }

    auto borrowed = Worker::current()->spawn([](UdpSocket& s) -> Task<Result<UdpBorrowedDatagram>> {
      co_return co_await s.recv_borrowed();
    }(*socket));
    co_await testing::settle();
    borrowed.cancel();
    auto borrowed_result = co_await std::move(borrowed);
    EXPECT_FALSE(borrowed_result);
    if (!borrowed_result) {
      EXPECT_TRUE(borrowed_result.error().is_cancelled());
    }

    // The socket still works after them: a datagram sent now is received whole by the next receive.
    auto sender = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    EXPECT_TRUE(co_await sender->send_to(std::string_view("after"), *socket->local_addr()));
    auto after = co_await timeout(std::chrono::seconds(2), socket->recv_borrowed());
    EXPECT_TRUE(after) << after.error().message();
    if (after) {
      EXPECT_EQ(after->payload.size(), 5u);
    }
  }()));
}

// With every lent buffer held by the caller, a borrowed receive waits (for a buffer, or for its socket's
// request to be armed again); cancelling it there ends it with ECANCELED, and once the buffers come back
// the datagram that was waiting in the socket is received, not lost.
TEST_P(UdpTest, BorrowedReceiveWaitingForALentBufferCanBeCancelled) {
  BackendOptions options;
  options.lent_buffers = 2;
  options.lent_buffers_per_stream = 2;
  create_worker(options);
  if (!worker_) return;
  EXPECT_TRUE(run([]() -> Task<void> {
    auto server = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    auto client = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    if (!server || !client) {
      ADD_FAILURE() << "bind failed";
      co_return;
    }
    for (const char* text : {"one", "two", "three"}) {
      EXPECT_TRUE(co_await client->send_to(std::string_view(text), *server->local_addr()));
    }
    auto one = co_await server->recv_borrowed();
    auto two = co_await server->recv_borrowed();
    EXPECT_TRUE(one && two);
    if (!one || !two) co_return;
    auto waiting = Worker::current()->spawn([](UdpSocket& s) -> Task<Result<UdpBorrowedDatagram>> {
      co_return co_await s.recv_borrowed();
    }(*server));
    co_await testing::settle();
    waiting.cancel();
    auto cancelled = co_await std::move(waiting);
    EXPECT_FALSE(cancelled);
    if (!cancelled) {
      EXPECT_TRUE(cancelled.error().is_cancelled()) << cancelled.error().message();
    }
    one->payload.release();
    two->payload.release();
    auto three = co_await timeout(std::chrono::seconds(2), server->recv_borrowed());
    EXPECT_TRUE(three) << three.error().message();
    if (!three) co_return;
    EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(three->payload.data()), three->payload.size()), "three");
  }()));
}

TEST_P(UdpTest, SendsCancelledBeforeTheyStartSendNothing) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto receiver = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    auto sender = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    if (!receiver || !sender) {
      ADD_FAILURE() << "bind failed";
      co_return;
    }
    const SocketAddress to = *receiver->local_addr();
    EXPECT_TRUE(sender->connect(to));
    const std::string data(3000, 's');
    // Each send awaited by a task whose cancellation was requested before it got there.
    auto send_to = Worker::current()->spawn([](UdpSocket& s, SocketAddress to) -> Task<Result<std::size_t>> {
      co_await yield();
      co_return co_await s.send_to(std::string_view("x"), to);
    }(*sender, to));
    send_to.cancel();
    auto send_to_result = co_await std::move(send_to);
    EXPECT_TRUE(!send_to_result && send_to_result.error().is_cancelled());
    auto send = Worker::current()->spawn([](UdpSocket& s) -> Task<Result<std::size_t>> {
      co_await yield();
      co_return co_await s.send(std::string_view("x"));
    }(*sender));
    send.cancel();
    auto send_result = co_await std::move(send);
    EXPECT_TRUE(!send_result && send_result.error().is_cancelled());
    auto segments = Worker::current()->spawn([](UdpSocket& s, const std::string& d) -> Task<TransferResult> {
      co_await yield();
      co_return co_await s.send_segments(d, 1000);
    }(*sender, data));
    segments.cancel();
    auto segments_result = co_await std::move(segments);
    EXPECT_FALSE(segments_result);
    if (!segments_result) {
      EXPECT_TRUE(segments_result.error().is_cancelled());
    }
    EXPECT_EQ(segments_result.transferred(), 0u);
    // Nothing arrived.
    char buffer[8];
    auto nothing = co_await timeout(milliseconds(50), receiver->recv(buffer));
    EXPECT_FALSE(nothing);
    if (!nothing) {
      EXPECT_TRUE(nothing.error().is_timed_out()) << nothing.error().message();
    }
  }()));
}

TEST_P(UdpTest, DeadlinesEndReceivesWithEtimedout) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto socket = UdpSocket::bind(SocketAddress::ipv6_loopback(0));
    if (!socket) {
      ADD_FAILURE() << "bind failed";
      co_return;
    }
    char buffer[8];
    const auto start = std::chrono::steady_clock::now();
    auto from = co_await timeout(milliseconds(30), socket->recv_from(buffer));
    EXPECT_FALSE(from);
    if (!from) {
      EXPECT_TRUE(from.error().is_timed_out()) << from.error().message();
    }
    auto borrowed = co_await timeout(milliseconds(30), socket->recv_borrowed());
    EXPECT_FALSE(borrowed);
    if (!borrowed) {
      EXPECT_TRUE(borrowed.error().is_timed_out()) << borrowed.error().message();
    }
    EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(60));
    // A datagram that arrives in time is delivered despite the deadline.
    auto sender = UdpSocket::bind(SocketAddress::ipv6_loopback(0));
    EXPECT_TRUE(co_await sender->send_to(std::string_view("in time"), *socket->local_addr()));
    auto in_time = co_await timeout(std::chrono::seconds(2), socket->recv_borrowed());
    EXPECT_TRUE(in_time) << in_time.error().message();
  }()));
}

// Sends `total` bytes as datagrams of `segment` with send_segments, and checks that the receiver sees
// each datagram whole, in order.
Task<void> segments_round_trip(std::size_t total, std::size_t segment, bool offload, unsigned seed) {
  auto receiver = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  auto sender = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  if (!receiver || !sender) {
      ADD_FAILURE() << "bind failed";
      co_return;
    }
  EXPECT_TRUE(receiver->set_receive_buffer_size(4 << 20));
  sender->set_segmentation_offload(offload);
  std::mt19937 random(seed);
  const auto data = random_bytes(random, total);
  auto sent = co_await sender->send_segments(data, segment, *receiver->local_addr());
  EXPECT_TRUE(sent) << sent.error().message();
  EXPECT_EQ(sent.transferred(), total);
  std::vector<unsigned char> buffer(65536);
  std::size_t offset = 0;
  int datagrams = 0;
  while (offset < total) {
    auto received = co_await timeout(std::chrono::seconds(2), receiver->recv_from(buffer));
    EXPECT_TRUE(received) << "after " << datagrams << " datagrams: " << received.error().message();
    if (!received) co_return;
    ++datagrams;
    const std::size_t expected = std::min(segment, total - offset);
    EXPECT_EQ(received->size, expected) << "datagram " << datagrams;
    EXPECT_TRUE(std::equal(buffer.begin(), buffer.begin() + static_cast<long>(received->size), data.begin() + static_cast<long>(offset)));
    offset += received->size;
    if (received->size != expected) co_return;
  }
  EXPECT_EQ(datagrams, static_cast<int>((total + segment - 1) / segment));
}

TEST_P(UdpTest, SendSegmentsArriveAsSeparateDatagrams) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", kernel GSO "
                                    << UdpSocket::kernel_has_segmentation_offload());
  for (bool offload : {true, false}) {
    SCOPED_TRACE(offload ? "with offload" : "one sendmsg per datagram");
    EXPECT_TRUE(run(segments_round_trip(10 * 1000, 1000, offload, seed)));
    EXPECT_TRUE(run(segments_round_trip(10 * 1000 + 500, 1000, offload, seed)));  // a short last one
    EXPECT_TRUE(run(segments_round_trip(200 * 64, 64, offload, seed)));            // over 64 per sendmsg
    EXPECT_TRUE(run(segments_round_trip(100 * 1400, 1400, offload, seed)));        // over 64 KiB
    EXPECT_TRUE(run(segments_round_trip(300, 1000, offload, seed)));               // fewer than one segment
  }
}

TEST_P(UdpTest, BadInputFailsWithErrorsThatSayWhat) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto socket = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    if (!socket) {
      ADD_FAILURE() << "bind failed";
      co_return;
    }
    auto taken = UdpSocket::bind(*socket->local_addr());
    EXPECT_FALSE(taken);
    if (!taken) {
      EXPECT_EQ(taken.error().code(), EADDRINUSE) << taken.error().message();
    }
    auto zero = co_await socket->send_segments(std::string_view("abc"), 0, *socket->local_addr());
    EXPECT_FALSE(zero);
    if (!zero) {
      EXPECT_EQ(zero.error().code(), EINVAL);
    }
    auto huge = co_await socket->send_segments(std::string_view("abc"), 70000, *socket->local_addr());
    EXPECT_FALSE(huge);
    std::vector<char> too_long(70000);
    auto over = co_await socket->send_to(too_long, *socket->local_addr());
    EXPECT_FALSE(over);
    if (!over) {
      EXPECT_EQ(over.error().code(), EMSGSIZE) << over.error().message();
    }
    auto wrong_family = co_await socket->send_to(std::string_view("x"), SocketAddress::ipv6_loopback(9));
    EXPECT_FALSE(wrong_family);
    EXPECT_TRUE(socket->set_broadcast(true));
    EXPECT_TRUE(socket->set_send_buffer_size(1 << 16));
    EXPECT_TRUE(socket->close());
    char buffer[4];
    auto closed = co_await socket->recv_from(buffer);
    EXPECT_FALSE(closed);
    if (!closed) {
      EXPECT_EQ(closed.error().code(), EBADF);
    }
  }()));
  EXPECT_FALSE(UdpSocket::bind(SocketAddress::ipv4_loopback(0))) << "off a worker";
}

// A hostile sender floods a socket whose reader is slow: the kernel drops what does not fit the
// socket's receive buffer, the runtime holds at most the per-socket share of lent buffers for it, and
// another socket's borrowed receives on the same worker keep working throughout.
TEST_P(UdpTest, FloodAgainstASlowReaderIsDroppedByTheKernelNotQueuedByUs) {
  BackendOptions options;
  options.lent_buffers = 64;
  options.lent_buffers_per_stream = 4;
  create_worker(options);
  if (!worker_) return;
  EXPECT_TRUE(run([]() -> Task<void> {
    auto victim = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    auto bystander = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    auto friendly = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    if (!victim || !bystander || !friendly) {
      ADD_FAILURE() << "bind failed";
      co_return;
    }
    EXPECT_TRUE(victim->set_receive_buffer_size(64 * 1024));
    // The first borrowed receive arms the victim's request; then nobody reads it for a while.
    (void)co_await timeout(milliseconds(1), victim->recv_borrowed());
    const int flooder = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const SocketAddress to = *victim->local_addr();
    std::vector<char> junk(1000, 'j');
    int sent = 0;
    for (int round = 0; round < 20; ++round) {
      for (int i = 0; i < 500; ++i) {
        if (::sendto(flooder, junk.data(), junk.size(), 0, to.data(), to.size()) == static_cast<ssize_t>(junk.size())) ++sent;
      }
      co_await yield();  // the worker takes what completes meanwhile (this is the slow reader's turn)
      // The bystander is served all the while.
      EXPECT_TRUE(co_await friendly->send_to(std::string_view("hi"), *bystander->local_addr()));
      auto hello = co_await timeout(std::chrono::seconds(2), bystander->recv_borrowed());
      EXPECT_TRUE(hello) << "round " << round << ": " << hello.error().message();
      if (!hello) break;
    }
    ::close(flooder);
    // Now read what was kept: the socket's receive buffer plus the few lent buffers, far less than sent.
    int kept = 0;
    for (;;) {
      auto datagram = co_await timeout(milliseconds(100), victim->recv_borrowed());
      if (!datagram) break;
      ++kept;
    }
    EXPECT_GT(kept, 0);
    EXPECT_LT(kept, sent / 4) << "sent " << sent << ": the kernel must have dropped most";
    EXPECT_LE(kept, 64 * 1024 * 2 / 1000 + 4 + 1) << "no more than SO_RCVBUF's worth plus the socket's lent share";
  }(), std::chrono::seconds(20)));
}

TEST_P(UdpTest, NoFileDescriptorLeaks) {
  const int before = testing::open_fd_count();
  EXPECT_TRUE(run([]() -> Task<void> {
    for (int i = 0; i < 50; ++i) {
      auto a = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
      auto b = UdpSocket::bind(SocketAddress::ipv6_loopback(0));
      if (!a || !b) {
      ADD_FAILURE() << "bind failed";
      co_return;
    }
      // A borrowed receive cancelled by a deadline, one that completes, then close with the socket's
      // multishot request still armed.
      (void)co_await timeout(milliseconds(1), a->recv_borrowed());
      auto sender = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
      EXPECT_TRUE(co_await sender->send_to(std::string_view("x"), *a->local_addr()));
      auto got = co_await timeout(std::chrono::seconds(2), a->recv_borrowed());
      EXPECT_TRUE(got);
    }
    auto taken = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    (void)UdpSocket::bind(*taken->local_addr());  // fails: its fd is closed
  }()));
  EXPECT_EQ(testing::open_fd_count(), before);
}

}  // namespace
}  // namespace surge
