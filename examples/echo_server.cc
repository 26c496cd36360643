// echo_server: a TCP echo server on one surge worker, until SIGINT or SIGTERM.
//
//   bazel run //examples:echo_server -- --port=7000 --backend=auto|io_uring|epoll [--host=127.0.0.1]
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "absl/flags/flag.h"
#include "examples/echo.h"
#include "flags/backend_flag.h"
#include "flags/host_flag.h"
#include "flags/parse.h"
#include "net/socket_address.h"
#include "net/tcp_listener.h"
#include "runtime/signal_set.h"
#include "runtime/worker.h"

ABSL_FLAG(surge::flags::HostAddress, host, surge::flags::HostAddress(),
          "numeric IPv4 or IPv6 address to listen on");
ABSL_FLAG(int, port, 7000, "TCP port to listen on, 0 to 65535 (0: any free port)");
ABSL_FLAG(surge::BackendChoice, backend, surge::BackendChoice::kAuto,
          "I/O backend: auto (io_uring where it works, else epoll; $SURGE_BACKEND overrides), io_uring or epoll");

namespace surge::examples {
namespace {

Task<void> serve_until_fatal(TcpListener listener) {
  auto outcome = co_await serve_echo(std::move(listener));
  if (!outcome) {
    std::fprintf(stderr, "echo_server: %s\n", outcome.error().message().c_str());
    kill(getpid(), SIGTERM);  // let main's signal wait end the process the usual way
  }
}

Task<Result<int>> run(Worker& worker, TcpListener listener, SignalSet& signals) {
  (void)worker.spawn(serve_until_fatal(std::move(listener)));
  co_return co_await signals.wait();
}

int main_impl(int argc, char** argv) {
  flags::parse_command_line(
      argc, argv,
      "a TCP echo server on one surge worker: echoes every byte back until SIGINT or SIGTERM, then closes "
      "every connection and exits.\n"
      "Usage: echo_server [--host=127.0.0.1] [--port=7000] [--backend=auto|io_uring|epoll]");
  const SocketAddress address =
      absl::GetFlag(FLAGS_host).with_port(static_cast<std::uint16_t>(flags::get_in_range(FLAGS_port, 0, 65535)));
  const BackendChoice choice = absl::GetFlag(FLAGS_backend);
  auto worker = Worker::create({.backend = choice});
  if (!worker) {
    std::fprintf(stderr, "echo_server: %s\n", worker.error().message().c_str());
    return 1;
  }
  // Before any other thread exists, so that the signals reach only the signalfd.
  auto signals = SignalSet::create(**worker, {SIGINT, SIGTERM});
  if (!signals) {
    std::fprintf(stderr, "echo_server: %s\n", signals.error().message().c_str());
    return 1;
  }
  auto listener = TcpListener::bind(**worker, address);
  if (!listener) {
    std::fprintf(stderr, "echo_server: %s: %s\n", address.to_string().c_str(), listener.error().message().c_str());
    return 1;
  }
  std::printf("echo_server: listening on %s (backend: %s)\n", listener->local_addr()->to_string().c_str(),
              backend_name((*worker)->backend_kind()));
  std::fflush(stdout);
  auto signal_number = (*worker)->block_on(run(**worker, std::move(*listener), *signals));
  if (!signal_number) {
    std::fprintf(stderr, "echo_server: %s\n", signal_number.error().message().c_str());
    return 1;
  }
  std::printf("echo_server: %s received, closing %zu open tasks\n", strsignal(*signal_number),
              (*worker)->live_tasks());
  (*worker)->shutdown();  // cancels the accept loop and every session, closes every socket
  std::printf("echo_server: stopped\n");
  return 0;
}

}  // namespace
}  // namespace surge::examples

int main(int argc, char** argv) { return surge::examples::main_impl(argc, argv); }
