// load_generator.h: the client side of //bench:echo_compare. It runs on one surge worker in the harness
// process (pinned to another CPU than the server) and drives every server the same way:
//
//  - run_echo_window: closed loop, N connections each sending a message and reading the echo back (every
//    byte checked) before sending the next. Warm up, then a measured window whose edges call back into
//    the harness (to snapshot the server's CPU time and counters), then stop.
//  - run_stream_window: one connection, a writer sending `chunk`-byte writes back to back and a reader
//    taking the echo, bytes/s over the window.
//  - open_idle_connections: N connections that each do one round trip and then sit idle, for memory per
//    connection; they stay open until the returned object is destroyed.
//
//   auto result = co_await run_echo_window({.address = server, .connections = 64, .message_size = 64,
//                                          .window = 1s, .at_window_start = ..., .at_window_end = ...});
#ifndef SURGE_BENCH_LOAD_GENERATOR_H_
#define SURGE_BENCH_LOAD_GENERATOR_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "bench/latency_histogram.h"
#include "net/socket_address.h"
#include "net/tcp_stream.h"
#include "runtime/result.h"
#include "runtime/task.h"

namespace surge::bench {

struct WindowOptions {
  SocketAddress address = SocketAddress::ipv4_loopback(7);
  int connections = 1;
  std::size_t message_size = 64;  // echo: bytes per message; stream: bytes per write
  std::chrono::nanoseconds warmup = std::chrono::milliseconds(200);
  std::chrono::nanoseconds window = std::chrono::seconds(1);
  // Called on the client's thread right before the window opens and right after it closes (so the
  // harness's snapshots of the server bracket the window tightly). Either may be empty.
  std::function<void()> at_window_start;
  std::function<void()> at_window_end;
};

struct WindowResult {
  std::uint64_t round_trips = 0;    // echo: completed in the window
  std::uint64_t bytes_echoed = 0;   // bytes received back in the window
  std::chrono::nanoseconds elapsed{0};
  std::unique_ptr<LatencyHistogram> latencies = std::make_unique<LatencyHistogram>();  // echo only
};

Task<Result<WindowResult>> run_echo_window(WindowOptions options);
Task<Result<WindowResult>> run_stream_window(WindowOptions options);

// Connects `count` connections (at most 256 handshakes at a time, so the listen backlog never overflows),
// one 64-byte round trip on each so that the server has set the connection up fully.
Task<Result<std::vector<TcpStream>>> open_idle_connections(SocketAddress address, int count);

}  // namespace surge::bench

#endif  // SURGE_BENCH_LOAD_GENERATOR_H_
