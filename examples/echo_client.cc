// echo_client: drives an echo server with a closed-loop load and prints throughput and latency.
//
//   bazel run //examples:echo_client -- --port=7000 [--host=127.0.0.1] [--backend=auto]
//       [--connections=1] [--requests=10000] [--size=64] [--unix=PATH|@name]
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "examples/echo_load.h"
#include "flags/backend_flag.h"
#include "flags/host_flag.h"
#include "flags/parse.h"
#include "runtime/worker.h"

ABSL_FLAG(surge::flags::HostAddress, host, surge::flags::HostAddress(), "numeric IPv4 or IPv6 address of the server");
ABSL_FLAG(int, port, 7000, "TCP port of the server, 1 to 65535");
ABSL_FLAG(surge::BackendChoice, backend, surge::BackendChoice::kAuto,
          "I/O backend: auto (io_uring where it works, else epoll; $SURGE_BACKEND overrides), io_uring or epoll");
ABSL_FLAG(int, connections, 1, "connections, each a closed loop of round trips, 1 to 100000");
ABSL_FLAG(int, requests, 10000, "round trips per connection, 1 to 2^30");
ABSL_FLAG(int, size, 64, "bytes per message, 1 to 64 MiB");
ABSL_FLAG(std::string, unix, "", "connect to this Unix stream socket (a path, or @name) instead of --host/--port");

namespace surge::examples {
namespace {

int main_impl(int argc, char** argv) {
  flags::parse_command_line(
      argc, argv,
      "drives an echo server (echo_server, or any other) with a closed-loop load: each connection sends a "
      "message, waits for its echo and checks every byte, then sends the next; prints round trips/s and "
      "p50/p99 latency.\n"
      "Usage: echo_client [--host=127.0.0.1] [--port=7000] [--backend=auto|io_uring|epoll] [--connections=1] "
      "[--requests=10000] [--size=64] [--unix=PATH|@name]");
  const BackendChoice choice = absl::GetFlag(FLAGS_backend);
  EchoLoadOptions options;
  options.address =
      absl::GetFlag(FLAGS_host).with_port(static_cast<std::uint16_t>(flags::get_in_range(FLAGS_port, 1, 65535)));
  options.connections = flags::get_in_range(FLAGS_connections, 1, 100000);
  options.round_trips_per_connection = flags::get_in_range(FLAGS_requests, 1, 1 << 30);
  options.message_size = static_cast<std::size_t>(flags::get_in_range(FLAGS_size, 1, 64 << 20));
  if (const std::string unix_text = absl::GetFlag(FLAGS_unix); !unix_text.empty()) {
    auto parsed = UnixAddress::parse(unix_text);
    if (!parsed) {
      std::fprintf(stderr, "echo_client: --unix=%s: %s\n", unix_text.c_str(), parsed.error().message().c_str());
      return 1;
    }
    options.unix_address = *parsed;
  }

  auto worker = Worker::create({.backend = choice});
  if (!worker) {
    std::fprintf(stderr, "echo_client: %s\n", worker.error().message().c_str());
    return 1;
  }
  auto stats = (*worker)->block_on(run_echo_load(options));
  if (!stats) {
    std::fprintf(stderr, "echo_client: %s\n", stats.error().message().c_str());
    return 1;
  }
  std::printf("echo_client: %s, backend %s: %llu round trips of %zu B over %d connections, %.0f round trips/s, "
              "p50 %.1f us, p99 %.1f us, all bytes verified\n",
              options.unix_address ? options.unix_address->to_string().c_str() : options.address.to_string().c_str(),
              backend_name((*worker)->backend_kind()),
              static_cast<unsigned long long>(stats->round_trips), options.message_size, options.connections,
              stats->round_trips_per_second(), stats->latency_quantile(0.5).count() / 1e3,
              stats->latency_quantile(0.99).count() / 1e3);
  return 0;
}

}  // namespace
}  // namespace surge::examples

int main(int argc, char** argv) { return surge::examples::main_impl(argc, argv); }
