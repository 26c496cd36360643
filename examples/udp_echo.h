// udp_echo.h: the UDP echo service of echo_server --udp and of the UDP benchmark: every datagram goes
// back to its source, whole (a truncated one is dropped, not echoed cut).
//
//   auto socket = surge::UdpSocket::bind(address);
//   worker.spawn(surge::examples::serve_udp_echo(std::move(*socket)));   // runs until cancelled
#ifndef SURGE_EXAMPLES_UDP_ECHO_H_
#define SURGE_EXAMPLES_UDP_ECHO_H_

#include <atomic>
#include <cstdint>

#include "net/udp_socket.h"
#include "runtime/result.h"
#include "runtime/task.h"

namespace surge::examples {

struct UdpEchoOptions {
  // Receive into buffers the worker lends (UdpSocket::recv_borrowed: on io_uring one multishot recvmsg
  // per socket) and send back from there: datagrams longer than a lent buffer holds
  // (BackendOptions::lent_buffer_size, 16 KiB by default) then arrive truncated and are dropped.
  // Else (the default) recv_from into each loop's own 64 KiB buffer: every datagram, up to 65,507 bytes.
  bool borrowed = false;
  // Receive-and-send loops sharing the socket, so that this many datagrams are echoed per turn of the
  // worker's loop instead of one round trip through the backend each. 0: 64 with borrowed receives
  // (a datagram that finds a loop waiting is handed to it straight from its completion; measured ahead
  // of 16 and 4 at 32 datagrams in flight), 16 copying (each waiting loop is a recvmsg in the kernel:
  // on io_uring they all wake for every datagram, and each holds a 64 KiB buffer).
  int loops = 0;
  // Counts the datagrams echoed, if set (any thread may read it).
  std::atomic<std::uint64_t>* echoed = nullptr;
};

// Echoes until cancelled (then ECANCELED, once every loop has stopped) or a receive fails for good.
// Failed sends are skipped (UDP may drop; a server does not stop for one peer).
Task<Result<void>> serve_udp_echo(UdpSocket socket, UdpEchoOptions options = {});

}  // namespace surge::examples

#endif  // SURGE_EXAMPLES_UDP_ECHO_H_
