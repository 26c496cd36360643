// socket_pair.h: a connected pair of non-blocking Unix stream sockets, closed on destruction, for tests
// that drive a Backend directly (no TcpStream, no worker).
//
//   surge::testing::SocketPair pair;
//   write(pair.fds[1], "x", 1);                     // pair.fds[0] is now readable
#ifndef SURGE_RUNTIME_TESTING_SOCKET_PAIR_H_
#define SURGE_RUNTIME_TESTING_SOCKET_PAIR_H_

#include <sys/socket.h>
#include <unistd.h>

namespace surge::testing {

struct SocketPair {
  SocketPair() {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) fds[0] = fds[1] = -1;
  }
  ~SocketPair() {
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
  bool ok() const noexcept { return fds[0] >= 0; }
  int fds[2] = {-1, -1};
};

}  // namespace surge::testing

#endif  // SURGE_RUNTIME_TESTING_SOCKET_PAIR_H_
