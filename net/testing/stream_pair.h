// stream_pair.h: two connected TcpStreams, for tests: over a Unix socketpair (stream_pair: no server,
// every recv and send on them is the test's own), or over loopback TCP (tcp_pair: a real TCP connection,
// for what depends on TCP, like segments and flow control).
//
//   auto [left, right] = surge::testing::stream_pair(*Worker::current());
//   auto pair = co_await surge::testing::tcp_pair();   // Result<TcpPair>: .client, .server
#ifndef SURGE_NET_TESTING_STREAM_PAIR_H_
#define SURGE_NET_TESTING_STREAM_PAIR_H_

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>
#include <utility>

#include "net/socket_address.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "runtime/result.h"
#include "runtime/task.h"
#include "runtime/worker.h"

namespace surge::testing {

inline std::pair<TcpStream, TcpStream> stream_pair(Worker& worker) {
  int fds[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  return {TcpStream(worker, fds[0]), TcpStream(worker, fds[1])};
}

// A borrowed chunk's bytes as text, for comparisons.
inline std::string text_of(const BorrowedBuffer& chunk) {
  return std::string(reinterpret_cast<const char*>(chunk.data()), chunk.size());
}

struct TcpPair {
  TcpStream client;
  TcpStream server;  // the listener's side of the connection
};

// A client connected over loopback TCP to a listener on the current worker, and the accepted stream.
inline Task<Result<TcpPair>> tcp_pair() {
  auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  if (!listener) co_return listener.error();
  auto client = co_await TcpStream::connect(*listener->local_addr());
  if (!client) co_return client.error();
  auto server = co_await listener->accept();
  if (!server) co_return server.error();
  co_return TcpPair{std::move(*client), std::move(*server)};
}

}  // namespace surge::testing

#endif  // SURGE_NET_TESTING_STREAM_PAIR_H_
