// echo_client: drives an echo server with a closed-loop load and prints throughput and latency.
//
//   bazel run //examples:echo_client -- --port=7000 [--host=127.0.0.1] [--backend=auto]
//       [--connections=1] [--requests=10000] [--size=64]
#include <cstdio>
#include <string>

#include "examples/command_line.h"
#include "examples/echo_load.h"
#include "runtime/worker.h"

namespace surge::examples {
namespace {

int main_impl(int argc, char** argv) {
  const BackendChoice choice = backend_flag(argc, argv, "echo_client");
  EchoLoadOptions options;
  options.address = address_flags(argc, argv, "echo_client", 7000, 1);
  options.connections = static_cast<int>(integer_flag(argc, argv, "connections", 1, 1, 100000));
  options.round_trips_per_connection = static_cast<int>(integer_flag(argc, argv, "requests", 10000, 1, 1 << 30));
  options.message_size = static_cast<std::size_t>(integer_flag(argc, argv, "size", 64, 1, 64 << 20));

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
              options.address.to_string().c_str(), backend_name((*worker)->backend_kind()),
              static_cast<unsigned long long>(stats->round_trips), options.message_size, options.connections,
              stats->round_trips_per_second(), stats->latency_quantile(0.5).count() / 1e3,
              stats->latency_quantile(0.99).count() / 1e3);
  return 0;
}

}  // namespace
}  // namespace surge::examples

int main(int argc, char** argv) { return surge::examples::main_impl(argc, argv); }
