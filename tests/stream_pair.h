// stream_pair.h: two connected TcpStreams over a Unix socketpair, for tests that need no server (every
// recv and send on them is the test's own).
#ifndef SURGE_TESTS_STREAM_PAIR_H_
#define SURGE_TESTS_STREAM_PAIR_H_

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <utility>

#include "net/tcp_stream.h"
#include "runtime/worker.h"

namespace surge::testing {

inline std::pair<TcpStream, TcpStream> stream_pair(Worker& worker) {
  int fds[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  return {TcpStream(worker, fds[0]), TcpStream(worker, fds[1])};
}

}  // namespace surge::testing

#endif  // SURGE_TESTS_STREAM_PAIR_H_
