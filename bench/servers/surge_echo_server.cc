// surge_echo_server: this runtime's echo server (examples/echo.h) on one worker, as the comparison
// harness drives it (protocol in server_common.h). Stats add the backend's syscalls and the process's
// operator-new calls, so the harness can report syscalls and allocations per round trip.
//
//   surge_echo_server --backend=io_uring|epoll [--port=0] [--cpu=0] [--buffer=65536]
//       [--borrowed_reads=0|1] [--defer_taskrun=1|0] [--multishot_accept=1|0] [--buffer_ring=1|0]
//       [--fixed_files=1|0] [--send_zc_threshold=0] [--sqpoll=0|1]
//       [--lent_buffers=256] [--lent_buffer_size=16384] [--lent_buffers_per_stream=N]
//       [--udp [--udp_loops=0]]
//
// --udp echoes UDP datagrams instead (examples/udp_echo.h; --borrowed_reads=1: recv_borrowed, on
// io_uring one multishot recvmsg into the lent-buffer ring), for echo_compare's udp workload.
//
// The switches turn single io_uring features off or on, so that the comparison can show what each buys.
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "bench/servers/server_common.h"
#include "bench/servers/server_flags.h"
#include "examples/echo.h"
#include "examples/udp_echo.h"
#include "flags/backend_flag.h"
#include "flags/parse.h"
#include "net/socket_address.h"
#include "net/tcp_listener.h"
#include "net/udp_socket.h"
#include "runtime/testing/allocation_counter.h"
#include "runtime/worker.h"

// --port, --cpu and --buffer come from server_flags.cc.
ABSL_FLAG(surge::BackendChoice, backend, surge::BackendChoice::kAuto,
          "I/O backend: auto (io_uring where it works, else epoll; $SURGE_BACKEND overrides), io_uring or epoll");
ABSL_FLAG(bool, borrowed_reads, false, "read with read_borrowed() (multishot recv into lent buffers), 0 or 1");
ABSL_FLAG(bool, defer_taskrun, true, "io_uring: allow IORING_SETUP_DEFER_TASKRUN, 0 or 1");
ABSL_FLAG(bool, multishot_accept, true, "io_uring: allow multishot accept, 0 or 1");
ABSL_FLAG(bool, buffer_ring, true, "io_uring: allow the provided-buffer ring (multishot recv), 0 or 1");
ABSL_FLAG(bool, fixed_files, true, "io_uring: allow registered (fixed) files, 0 or 1");
ABSL_FLAG(bool, sqpoll, false, "io_uring: a kernel thread polls the submission queue (IORING_SETUP_SQPOLL), 0 or 1");
ABSL_FLAG(int, send_zc_threshold, 0, "io_uring: writes of at least this many bytes use SEND_ZC, 0 (never) to 2^30");
ABSL_FLAG(int, lent_buffers, 256, "buffers lent to borrowed reads, 1 to 2^15");
ABSL_FLAG(int, lent_buffer_size, 16 * 1024, "bytes of each lent buffer, 64 to 2^20");
ABSL_FLAG(int, lent_buffers_per_stream, static_cast<int>(surge::BackendOptions{}.lent_buffers_per_stream),
          "lent buffers one unread stream may hold before its multishot recv stops, 1 to 2^15");

ABSL_FLAG(bool, udp, false, "echo UDP datagrams instead of TCP, 0 or 1");
ABSL_FLAG(int, udp_loops, 0,
          "with --udp: receive-and-send loops on the socket, 0 to 1024 (0: serve_udp_echo's default, 64 "
          "borrowed, 16 copying)");

namespace surge::bench {
namespace {

constexpr const char* kProgram = "surge_echo_server";

int main_impl(int argc, char** argv) {
  flags::parse_command_line(
      argc, argv,
      "this runtime's echo service on one worker, for //bench:echo_compare. Listens on "
      "127.0.0.1, prints 'port N', answers 'stats' on stdin with its CPU time, memory, syscalls and "
      "allocations, and exits when stdin closes. The 0/1 switches turn single io_uring features off or on.\n"
      "Usage: surge_echo_server [--backend=auto|io_uring|epoll] [--port=0] [--cpu=-1] [--buffer=65536] "
      "[--borrowed_reads=0|1] [--defer_taskrun=1|0] [--multishot_accept=1|0] [--buffer_ring=1|0] "
      "[--fixed_files=1|0] [--sqpoll=0|1] [--send_zc_threshold=0] [--lent_buffers=256] "
      "[--lent_buffer_size=16384] [--lent_buffers_per_stream=N] [--udp] [--udp_loops=0]");
  const ServerFlags flags = server_flags(kProgram);
  const BackendChoice choice = absl::GetFlag(FLAGS_backend);
  pin_current_thread(flags.cpu);
  BackendOptions backend_options;
  backend_options.allow_defer_taskrun = absl::GetFlag(FLAGS_defer_taskrun);
  backend_options.allow_multishot_accept = absl::GetFlag(FLAGS_multishot_accept);
  backend_options.allow_buffer_ring = absl::GetFlag(FLAGS_buffer_ring);
  backend_options.allow_fixed_files = absl::GetFlag(FLAGS_fixed_files);
  backend_options.sqpoll = absl::GetFlag(FLAGS_sqpoll);
  backend_options.send_zero_copy_threshold =
      static_cast<std::size_t>(flags::get_in_range(FLAGS_send_zc_threshold, 0, 1 << 30));
  backend_options.lent_buffers = static_cast<unsigned>(flags::get_in_range(FLAGS_lent_buffers, 1, 1 << 15));
  backend_options.lent_buffer_size = static_cast<unsigned>(flags::get_in_range(FLAGS_lent_buffer_size, 64, 1 << 20));
  backend_options.lent_buffers_per_stream =
      static_cast<unsigned>(flags::get_in_range(FLAGS_lent_buffers_per_stream, 1, 1 << 15));
  auto worker = Worker::create({.backend = choice, .backend_options = backend_options});
  if (!worker) {
    std::fprintf(stderr, "%s: %s\n", kProgram, worker.error().message().c_str());
    return 1;
  }
  const int udp_loops = flags::get_in_range(FLAGS_udp_loops, 0, 1024);
  if (absl::GetFlag(FLAGS_udp)) {
    auto socket = UdpSocket::bind(**worker, SocketAddress::ipv4_loopback(flags.port));
    if (!socket) {
      std::fprintf(stderr, "%s: %s\n", kProgram, socket.error().message().c_str());
      return 1;
    }
    const Worker* server = worker->get();
    start_control_thread([server] {
      const BackendCounters counters = server->counters();
      const std::uint64_t allocations = testing::allocation_count() - testing::thread_allocation_count();
      return absl::StrCat("syscalls=", counters.wait_syscalls + counters.io_syscalls, " allocs=", allocations);
    });
    announce_port(socket->local_addr()->port());
    const examples::UdpEchoOptions echo{.borrowed = absl::GetFlag(FLAGS_borrowed_reads), .loops = udp_loops};
    auto outcome = (*worker)->block_on(examples::serve_udp_echo(std::move(*socket), echo));
    std::fprintf(stderr, "%s: %s\n", kProgram, outcome ? "udp echo ended" : outcome.error().message().c_str());
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
    return absl::StrCat("syscalls=", counters.wait_syscalls + counters.io_syscalls, " allocs=", allocations);
  });
  announce_port(listener->local_addr()->port());
  const examples::EchoOptions echo{.buffer_size = flags.buffer_size, .borrowed_reads = absl::GetFlag(FLAGS_borrowed_reads)};
  auto outcome = (*worker)->block_on(examples::serve_echo(std::move(*listener), echo));
  std::fprintf(stderr, "%s: %s\n", kProgram, outcome ? "accept loop ended" : outcome.error().message().c_str());
  return 1;
}

}  // namespace
}  // namespace surge::bench

int main(int argc, char** argv) { return surge::bench::main_impl(argc, argv); }
