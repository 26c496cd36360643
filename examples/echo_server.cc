// echo_server: a TCP echo server on N surge workers (serve(): one SO_REUSEPORT listener per worker),
// until SIGINT or SIGTERM, then a graceful shutdown. With --udp it also echoes UDP datagrams on the
// same port (one SO_REUSEPORT UDP socket per worker, examples/udp_echo.h).
//
//   bazel run //examples:echo_server -- --port=7000 --backend=auto|io_uring|epoll [--host=127.0.0.1]
//                                       [--workers=1 (0: one per CPU)] [--grace_ms=1000] [--udp]
//                                       [--unix=/run/echo.sock or @name (also on a Unix stream socket)]
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "examples/echo.h"
#include "examples/udp_echo.h"
#include "flags/backend_flag.h"
#include "flags/host_flag.h"
#include "flags/parse.h"
#include "net/serve.h"
#include "net/socket_address.h"
#include "net/udp_socket.h"
#include "net/unix_address.h"
#include "net/unix_listener.h"
#include "runtime/ctrl_c.h"
#include "runtime/runtime.h"

ABSL_FLAG(surge::flags::HostAddress, host, surge::flags::HostAddress(),
          "numeric IPv4 or IPv6 address to listen on");
ABSL_FLAG(int, port, 7000, "TCP port to listen on, 0 to 65535 (0: any free port)");
ABSL_FLAG(surge::BackendChoice, backend, surge::BackendChoice::kAuto,
          "I/O backend: auto (io_uring where it works, else epoll; $SURGE_BACKEND overrides), io_uring or epoll");
ABSL_FLAG(int, workers, 1, "worker threads, 0 to 1024 (0: one per CPU); each accepts on its own listener");
ABSL_FLAG(int, grace_ms, 1000,
          "on SIGINT or SIGTERM, how long open connections may take to finish before they are cancelled, "
          "0 to 3600000");
ABSL_FLAG(bool, udp, false, "also echo UDP datagrams on the same port (one socket per worker)");
ABSL_FLAG(std::string, unix, "",
          "also serve on a Unix stream socket: a path (a stale socket file left there is replaced; the file is "
          "removed on exit) or @name for an abstract name; empty: TCP only");

namespace surge::examples {
namespace {

// --udp: binds a UDP echo socket on every worker (SO_REUSEPORT, the kernel spreads the peers), each
// served by a task there until the Runtime shuts down. Fails with the first bind error.
Result<void> serve_udp_on_every_worker(Runtime& runtime, const SocketAddress& address,
                                       std::atomic<std::uint64_t>& echoed) {
  for (std::size_t i = 0; i < runtime.size(); ++i) {
    auto bound = runtime.block_on([](Worker& worker, SocketAddress at,
                                     std::atomic<std::uint64_t>* counter) -> Task<Result<void>> {
      auto socket = UdpSocket::bind(worker, at, {.v6_only = false, .reuse_port = true});
      if (!socket) co_return socket.error();
      (void)worker.spawn(serve_udp_echo(std::move(*socket), {.echoed = counter}));
      co_return ok();
    }(runtime.worker(i), address, &echoed));
    if (!bound) return bound.error();
  }
  return ok();
}

int main_impl(int argc, char** argv) {
  flags::parse_command_line(
      argc, argv,
      "a TCP echo server on N surge workers: echoes every byte back until SIGINT or SIGTERM, then stops "
      "accepting, lets open connections finish for --grace_ms, closes the rest and exits.\n"
      "With --udp it also echoes each UDP datagram back to its sender on the same port.\n"
      "Usage: echo_server [--host=127.0.0.1] [--port=7000] [--backend=auto|io_uring|epoll] [--workers=1] "
      "[--grace_ms=1000] [--udp] [--unix=PATH|@name]");
  const SocketAddress address =
      absl::GetFlag(FLAGS_host).with_port(static_cast<std::uint16_t>(flags::get_in_range(FLAGS_port, 0, 65535)));
  const BackendChoice choice = absl::GetFlag(FLAGS_backend);
  const int workers = flags::get_in_range(FLAGS_workers, 0, 1024);
  const int grace_ms = flags::get_in_range(FLAGS_grace_ms, 0, 3'600'000);
  std::optional<UnixAddress> unix_address;
  if (const std::string unix_text = absl::GetFlag(FLAGS_unix); !unix_text.empty()) {
    auto parsed = UnixAddress::parse(unix_text);
    if (!parsed) {
      std::fprintf(stderr, "echo_server: --unix=%s: %s\n", unix_text.c_str(), parsed.error().message().c_str());
      return 1;
    }
    unix_address = *parsed;
  }

  // Blocked in this thread for good, so that SIGINT and SIGTERM reach only the Runtime, which hands them
  // to ctrl_c() below (its workers block them already).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto runtime = Runtime::create({.workers = static_cast<std::size_t>(workers), .worker = {.backend = choice}});
  if (!runtime) {
    std::fprintf(stderr, "echo_server: %s\n", runtime.error().message().c_str());
    return 1;
  }
  auto server = serve(**runtime, address, [](TcpStream stream) -> Task<void> {
    (void)co_await echo_session(std::move(stream));  // ends at EOF, on an error, or cancelled by shutdown
  });
  if (!server) {
    std::fprintf(stderr, "echo_server: %s: %s\n", address.to_string().c_str(), server.error().message().c_str());
    return 1;
  }
  std::atomic<std::uint64_t> datagrams_echoed{0};
  const bool udp = absl::GetFlag(FLAGS_udp);
  if (udp) {
    // The port TCP got (the kernel's choice for --port=0), so both answer on one port.
    if (auto served = serve_udp_on_every_worker(**runtime, (*server)->local_addr(), datagrams_echoed); !served) {
      std::fprintf(stderr, "echo_server: udp %s: %s\n", (*server)->local_addr().to_string().c_str(),
                   served.error().message().c_str());
      return 1;
    }
  }
  std::printf("echo_server: listening on %s%s (backend: %s, workers: %zu)\n",
              (*server)->local_addr().to_string().c_str(), udp ? " (tcp and udp)" : "",
              backend_name((*runtime)->worker(0).backend_kind()), (*server)->workers());
  // The Unix socket: one listener, on worker 0; its sessions run there too.
  std::optional<JoinHandle<Result<void>>> unix_server;
  if (unix_address) {
    auto listener = UnixListener::bind((*runtime)->worker(0), *unix_address, {.unlink_stale = true});
    if (!listener) {
      std::fprintf(stderr, "echo_server: --unix=%s: %s\n", unix_address->to_string().c_str(),
                   listener.error().message().c_str());
      return 1;
    }
    unix_server = (*runtime)->spawn_on(0, serve_echo(std::move(*listener)));
    std::printf("echo_server: listening on unix socket %s\n", unix_address->to_string().c_str());
  }
  std::fflush(stdout);

  const Result<int> signal = (*runtime)->block_on([]() -> Task<Result<int>> { co_return co_await ctrl_c(); }());
  if (!signal) {
    std::fprintf(stderr, "echo_server: %s\n", signal.error().message().c_str());
    return 1;
  }
  const int signal_number = *signal;
  std::printf("echo_server: %s received, stopping: %llu open connections get %d ms to finish\n",
              strsignal(signal_number), static_cast<unsigned long long>((*server)->total().open), grace_ms);
  std::fflush(stdout);
  if (unix_server) {
    // Stop accepting on the Unix socket (its listener unlinks the path as it goes); its open sessions
    // end with the runtime below.
    (*runtime)->block_on([](JoinHandle<Result<void>> accepting) -> Task<void> {
      accepting.cancel();
      (void)co_await std::move(accepting);
    }(std::move(*unix_server)));
  }
  (*server)->shutdown(std::chrono::milliseconds(grace_ms));
  const Server::Counts served = (*server)->total();
  server->reset();
  (*runtime)->shutdown();
  std::printf("echo_server: stopped (%llu connections served", static_cast<unsigned long long>(served.accepted));
  if (udp) std::printf(", %llu datagrams echoed", static_cast<unsigned long long>(datagrams_echoed.load()));
  std::printf(")\n");
  return 0;
}

}  // namespace
}  // namespace surge::examples

int main(int argc, char** argv) { return surge::examples::main_impl(argc, argv); }
