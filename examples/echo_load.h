// echo_load.h: a closed-loop echo load generator: N connections, each sending a message, reading the
// echo back (and checking it byte for byte), and sending the next.
//
//   auto stats = co_await surge::examples::run_echo_load({.address = server, .connections = 64});
//   if (stats) std::printf("%.0f round trips/s\n", stats->round_trips_per_second());
#ifndef SURGE_EXAMPLES_ECHO_LOAD_H_
#define SURGE_EXAMPLES_ECHO_LOAD_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "net/socket_address.h"
#include "net/unix_address.h"
#include "runtime/result.h"
#include "runtime/task.h"

namespace surge::examples {

struct EchoLoadOptions {
  SocketAddress address = SocketAddress::ipv4_loopback(7);
  // Set: connect to this Unix stream socket instead of `address`.
  std::optional<UnixAddress> unix_address;
  int connections = 1;
  int round_trips_per_connection = 1000;
  std::size_t message_size = 64;
};

struct EchoLoadStats {
  std::uint64_t round_trips = 0;
  std::uint64_t bytes = 0;  // sent and received back
  std::chrono::nanoseconds elapsed{0};
  std::vector<std::chrono::nanoseconds> latencies;  // one per round trip, unsorted

  double round_trips_per_second() const;
  // The q-quantile (0..1) of the round-trip latency; sorts `latencies` on first use.
  std::chrono::nanoseconds latency_quantile(double q);
};

// Runs the load on the current worker and returns when every connection has done its round trips. Fails
// with the first error any connection saw (a wrong echoed byte is EBADMSG).
Task<Result<EchoLoadStats>> run_echo_load(EchoLoadOptions options);

}  // namespace surge::examples

#endif  // SURGE_EXAMPLES_ECHO_LOAD_H_
