// echo_demo: the README's main job for now. For each backend, runs an echo server on one thread and a
// closed-loop client on another (pinned to different CPUs when there are two), checks every echoed byte,
// and prints one table row: round trips/s, p50/p99 latency, and the server's syscalls per round trip.
//
//   bazel run //examples:echo_demo -- [--connections=64] [--requests=2000] [--size=64]
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <future>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "examples/echo.h"
#include "examples/echo_load.h"
#include "flags/parse.h"
#include "net/tcp_listener.h"
#include "runtime/fd_io.h"
#include "runtime/worker.h"

ABSL_FLAG(int, connections, 64, "client connections, each a closed loop of round trips, 1 to 10000");
ABSL_FLAG(int, requests, 2000, "round trips per connection, 1 to 2^24");
ABSL_FLAG(int, size, 64, "bytes per message, 1 to 1 MiB");

namespace surge::examples {
namespace {

void pin_to_cpu(int cpu) {
  if (std::thread::hardware_concurrency() < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

struct ServerReport {
  BackendCounters counters;
};

// Serves echo until `stop_fd` (an eventfd) is written, then shuts the worker down.
Task<void> serve_until_stopped(Worker& worker, TcpListener listener, int stop_fd) {
  (void)worker.spawn(serve_echo(std::move(listener)));
  std::uint64_t value = 0;
  (void)co_await read_fd(worker, stop_fd, &value, sizeof(value));
}

void run_server(BackendChoice choice, int stop_fd, std::promise<Result<std::uint16_t>>* port,
                ServerReport* report) {
  pin_to_cpu(0);
  auto worker = Worker::create({.backend = choice});
  if (!worker) {
    port->set_value(worker.error());
    return;
  }
  auto listener = TcpListener::bind(**worker, SocketAddress::ipv4_loopback(0));
  if (!listener) {
    port->set_value(listener.error());
    return;
  }
  port->set_value(listener->local_addr()->port());
  (*worker)->block_on(serve_until_stopped(**worker, std::move(*listener), stop_fd));
  (*worker)->shutdown();
  forget_fd(**worker, stop_fd);
  report->counters = (*worker)->counters();
}

bool run_one(BackendChoice choice, const EchoLoadOptions& base) {
  const int stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  std::promise<Result<std::uint16_t>> port_promise;
  auto port_future = port_promise.get_future();
  ServerReport report;
  std::thread server(run_server, choice, stop_fd, &port_promise, &report);
  auto port = port_future.get();
  auto stop_server = [&] {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t written = write(stop_fd, &one, sizeof(one));
    server.join();
    close(stop_fd);
  };
  if (!port) {
    std::printf("%-9s unavailable: %s\n", backend_choice_name(choice), port.error().message().c_str());
    stop_server();
    return choice != BackendChoice::kEpoll;  // io_uring may be missing; epoll must work
  }

  pin_to_cpu(1);
  EchoLoadOptions options = base;
  options.address = SocketAddress::ipv4_loopback(*port);
  auto client = Worker::create({.backend = choice});
  if (!client) {
    std::printf("%-9s client: %s\n", backend_choice_name(choice), client.error().message().c_str());
    stop_server();
    return false;
  }
  auto stats = (*client)->block_on(run_echo_load(options));
  stop_server();
  if (!stats) {
    std::printf("%-9s FAILED: %s\n", backend_choice_name(choice), stats.error().message().c_str());
    return false;
  }
  const double round_trips = static_cast<double>(stats->round_trips);
  const double server_syscalls = static_cast<double>(report.counters.wait_syscalls + report.counters.io_syscalls);
  std::printf("%-9s %11d %8zu %14.0f %9.1f %9.1f %17.2f\n", backend_choice_name(choice), options.connections,
              options.message_size, stats->round_trips_per_second(), stats->latency_quantile(0.5).count() / 1e3,
              stats->latency_quantile(0.99).count() / 1e3, server_syscalls / round_trips);
  return true;
}

int main_impl(int argc, char** argv) {
  flags::parse_command_line(
      argc, argv,
      "for each backend (io_uring, then epoll), runs an echo server on one thread and a closed-loop client on "
      "another, checks every echoed byte, and prints one row: round trips/s, p50/p99 latency and the "
      "server's syscalls per round trip.\n"
      "Usage: echo_demo [--connections=64] [--requests=2000] [--size=64]");
  EchoLoadOptions options;
  options.connections = flags::get_in_range(FLAGS_connections, 1, 10000);
  options.round_trips_per_connection = flags::get_in_range(FLAGS_requests, 1, 1 << 24);
  options.message_size = static_cast<std::size_t>(flags::get_in_range(FLAGS_size, 1, 1 << 20));
  std::printf("surge echo demo: server and client on separate threads, loopback TCP, every byte verified\n");
  std::printf("%-9s %11s %8s %14s %9s %9s %17s\n", "backend", "connections", "bytes", "round trips/s", "p50 us",
              "p99 us", "server syscalls/rt");
  bool all_ok = true;
  for (BackendChoice choice : {BackendChoice::kIoUring, BackendChoice::kEpoll}) all_ok = run_one(choice, options) && all_ok;
  std::printf("(one run each: on a 2-core machine single runs vary by 10-25%%; compare ratios of repeated,\n"
              " interleaved runs before drawing conclusions)\n");
  return all_ok ? 0 : 1;
}

}  // namespace
}  // namespace surge::examples

int main(int argc, char** argv) { return surge::examples::main_impl(argc, argv); }
