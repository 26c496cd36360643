// udp_load.h: the client side of //bench:echo_compare's udp workload: a closed loop of UDP echo
// requests, `in_flight` datagrams outstanding at all times, from one connected socket on the calling
// thread (plain sendmmsg/recvmmsg, so that the client costs a few syscalls per batch and is not the
// bottleneck; its CPU share over the window is reported so that this can be checked).
//
// Each datagram carries its slot and a sequence number in its first 8 bytes and a fixed pattern after;
// an echo is counted only when it comes back whole and byte-identical. As soon as one comes back, its
// slot sends the next. A slot whose echo has not come within 100 ms counts as lost and sends again
// (UDP may drop; loopback does only under overload).
//
//   auto result = run_udp_echo_window({.address = server, .in_flight = 32, .datagram_size = 1400,
//                                      .window = 1s, .at_window_start = ..., .at_window_end = ...});
#ifndef SURGE_BENCH_UDP_LOAD_H_
#define SURGE_BENCH_UDP_LOAD_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "bench/latency_histogram.h"
#include "net/socket_address.h"
#include "runtime/result.h"

namespace surge::bench {

struct UdpWindowOptions {
  SocketAddress address = SocketAddress::ipv4_loopback(7);
  int in_flight = 1;                // 1 to 1024
  std::size_t datagram_size = 64;   // 8 to 65,507 bytes
  std::chrono::nanoseconds warmup = std::chrono::milliseconds(200);
  std::chrono::nanoseconds window = std::chrono::seconds(1);
  std::function<void()> at_window_start;  // on the calling thread, at the window's edges
  std::function<void()> at_window_end;
};

struct UdpWindowResult {
  std::uint64_t datagrams = 0;  // echoes received whole in the window
  std::uint64_t lost = 0;       // slots that waited 100 ms and sent again (whole run)
  std::uint64_t corrupt = 0;    // echoes of the wrong size or content (whole run): must be 0
  std::chrono::nanoseconds elapsed{0};
  std::chrono::nanoseconds client_cpu{0};  // this thread's CPU time over the window
  std::unique_ptr<LatencyHistogram> latencies = std::make_unique<LatencyHistogram>();
};

// Blocks the calling thread for warmup + window. Fails if the socket cannot be set up or nothing came
// back for a whole second.
Result<UdpWindowResult> run_udp_echo_window(const UdpWindowOptions& options);

}  // namespace surge::bench

#endif  // SURGE_BENCH_UDP_LOAD_H_
