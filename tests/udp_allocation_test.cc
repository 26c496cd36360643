// Datagrams allocate nothing: once the sockets are bound, UDP echo round trips (send_to + recv_from,
// send + recv, recv_borrowed, send_segments) make no call to operator new on either side, on every
// backend (io_uring's multishot recvmsg included). Counted by //runtime/testing:allocation_counter, which
// replaces operator new in this binary.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "examples/udp_echo.h"
#include "net/socket_address.h"
#include "net/udp_socket.h"
#include "runtime/testing/allocation_counter.h"
#include "runtime/testing/backend_param.h"

namespace surge {
namespace {

using testing::BackendTest;

class UdpAllocationTest : public BackendTest {};

enum class Client { kSendToRecvFrom, kConnected, kBorrowed, kSegments };

Task<Result<void>> round_trips(UdpSocket& socket, const SocketAddress& server, int count, Client client,
                               std::vector<unsigned char>& message, std::vector<unsigned char>& echoed) {
  for (int i = 0; i < count; ++i) {
    message[0] = static_cast<unsigned char>(i);
    if (client == Client::kConnected || client == Client::kBorrowed) {
      if (auto sent = co_await socket.send(message); !sent) co_return sent.error();
    } else if (client == Client::kSegments) {
      if (auto sent = co_await socket.send_segments(message, message.size() / 2, server); !sent) co_return sent.error();
    } else {
      if (auto sent = co_await socket.send_to(message, server); !sent) co_return sent.error();
    }
    const int replies = client == Client::kSegments ? 2 : 1;
    std::size_t got = 0;
    for (int reply = 0; reply < replies; ++reply) {
      if (client == Client::kBorrowed) {
        auto datagram = co_await socket.recv_borrowed();
        if (!datagram) co_return datagram.error();
        std::memcpy(echoed.data() + got, datagram->payload.data(), datagram->payload.size());
        got += datagram->payload.size();
      } else if (client == Client::kConnected) {
        auto received = co_await socket.recv(MutableBuffer(echoed.data() + got, echoed.size() - got));
        if (!received) co_return received.error();
        got += received->size;
      } else {
        auto received = co_await socket.recv_from(MutableBuffer(echoed.data() + got, echoed.size() - got));
        if (!received) co_return received.error();
        got += received->size;
      }
    }
    if (got != message.size() || std::memcmp(message.data(), echoed.data(), message.size()) != 0) {
      co_return Error(EBADMSG, "echo differs");
    }
  }
  co_return ok();
}

Task<void> expect_no_allocations(Client client, bool borrowed_server) {
  auto server = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  auto socket = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  if (!server || !socket) {
    ADD_FAILURE() << "bind";
    co_return;
  }
  const SocketAddress address = *server->local_addr();
  if (client == Client::kConnected || client == Client::kBorrowed) {
    EXPECT_TRUE(socket->connect(address));
  }
  // One loop when a request is two datagrams (send_segments): several loops may echo them out of order.
  const int loops = client == Client::kSegments ? 1 : 4;
  (void)Worker::current()->spawn(examples::serve_udp_echo(std::move(*server), {.borrowed = borrowed_server, .loops = loops}));
  std::vector<unsigned char> message(1000, 0x42);
  std::vector<unsigned char> echoed(1000);
  auto warm = co_await round_trips(*socket, address, 100, client, message, echoed);
  EXPECT_TRUE(warm) << warm.error().message();
  Task<Result<void>> measured_round_trips = round_trips(*socket, address, 1000, client, message, echoed);
  const std::uint64_t before = surge::testing::allocation_count();
  auto measured = co_await std::move(measured_round_trips);
  const std::uint64_t allocations = surge::testing::allocation_count() - before;
  EXPECT_TRUE(measured) << measured.error().message();
  EXPECT_EQ(allocations, 0u) << "operator new calls in 1,000 datagram round trips (client and server, same worker)";
}

TEST_P(UdpAllocationTest, SendToRecvFromAgainstACopyingServer) {
  EXPECT_TRUE(run(expect_no_allocations(Client::kSendToRecvFrom, false)));
}

TEST_P(UdpAllocationTest, ConnectedSendRecvAgainstABorrowingServer) {
  EXPECT_TRUE(run(expect_no_allocations(Client::kConnected, true)));
}

TEST_P(UdpAllocationTest, BorrowedReceives) { EXPECT_TRUE(run(expect_no_allocations(Client::kBorrowed, true))); }

TEST_P(UdpAllocationTest, SendSegments) { EXPECT_TRUE(run(expect_no_allocations(Client::kSegments, false))); }

SURGE_INSTANTIATE_FOR_EACH_BACKEND(UdpAllocationTest);

}  // namespace
}  // namespace surge
