// surge_echo_server: this runtime's echo server (examples/echo.h) on one worker, as the comparison
// harness drives it (protocol in server_common.h). Stats add the backend's syscalls and the process's
// operator-new calls, so the harness can report syscalls and allocations per round trip.
//
//   surge_echo_server --backend=io_uring|epoll [--port=0] [--cpu=0] [--buffer=65536]
//       [--borrowed_reads=0|1] [--defer_taskrun=1|0] [--multishot_accept=1|0] [--buffer_ring=1|0]
//       [--fixed_files=1|0] [--send_zc_threshold=0] [--sqpoll=0|1]
//       [--lent_buffers=256] [--lent_buffer_size=16384]
//
// The switches turn single io_uring features off or on, so that the comparison can show what each buys.
#include <cstdint>
#include <cstdio>
#include <string>

#include "bench/servers/server_common.h"
#include "examples/command_line.h"
#include "examples/echo.h"
#include "net/socket_address.h"
#include "net/tcp_listener.h"
#include "runtime/testing/allocation_counter.h"
#include "runtime/worker.h"

namespace surge::bench {
namespace {

constexpr const char* kProgram = "surge_echo_server";

int main_impl(int argc, char** argv) {
  const ServerFlags flags = parse_server_flags(argc, argv, kProgram);
  const BackendChoice choice = examples::backend_flag(argc, argv, kProgram);
  pin_current_thread(flags.cpu);
  auto on = [&](const char* name, long long fallback) { return examples::integer_flag(argc, argv, name, fallback, 0, 1) == 1; };
  BackendOptions backend_options;
  backend_options.allow_defer_taskrun = on("defer_taskrun", 1);
  backend_options.allow_multishot_accept = on("multishot_accept", 1);
  backend_options.allow_buffer_ring = on("buffer_ring", 1);
  backend_options.allow_fixed_files = on("fixed_files", 1);
  backend_options.sqpoll = on("sqpoll", 0);
  backend_options.send_zero_copy_threshold =
      static_cast<std::size_t>(examples::integer_flag(argc, argv, "send_zc_threshold", 0, 0, 1 << 30));
  backend_options.lent_buffers = static_cast<unsigned>(examples::integer_flag(argc, argv, "lent_buffers", 256, 1, 1 << 15));
  backend_options.lent_buffer_size =
      static_cast<unsigned>(examples::integer_flag(argc, argv, "lent_buffer_size", 16 * 1024, 64, 1 << 20));
  backend_options.lent_buffers_per_stream = static_cast<unsigned>(examples::integer_flag(
      argc, argv, "lent_buffers_per_stream", BackendOptions{}.lent_buffers_per_stream, 1, 1 << 15));
  auto worker = Worker::create({.backend = choice, .backend_options = backend_options});
  if (!worker) {
    std::fprintf(stderr, "%s: %s\n", kProgram, worker.error().message().c_str());
    return 1;
  }
  auto listener = TcpListener::bind(**worker, SocketAddress::ipv4_loopback(flags.port));
  if (!listener) {
    std::fprintf(stderr, "%s: %s\n", kProgram, listener.error().message().c_str());
    return 1;
  }
  const Worker* server = worker->get();
  start_control_thread([server] {
    const BackendCounters counters = server->counters();  // safe from this thread
    // The control thread's own allocations (building these lines) are not the server's.
    const std::uint64_t allocations = testing::allocation_count() - testing::thread_allocation_count();
    return "syscalls=" + std::to_string(counters.wait_syscalls + counters.io_syscalls) +
           " allocs=" + std::to_string(allocations);
  });
  announce_port(listener->local_addr()->port());
  const examples::EchoOptions echo{.buffer_size = flags.buffer_size, .borrowed_reads = on("borrowed_reads", 0)};
  auto outcome = (*worker)->block_on(examples::serve_echo(std::move(*listener), echo));
  std::fprintf(stderr, "%s: %s\n", kProgram, outcome ? "accept loop ended" : outcome.error().message().c_str());
  return 1;
}

}  // namespace
}  // namespace surge::bench

int main(int argc, char** argv) { return surge::bench::main_impl(argc, argv); }
