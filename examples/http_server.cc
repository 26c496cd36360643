// http_server: the example HTTP/1.1 service (examples/http/server.h) on N surge workers, until SIGINT or
// SIGTERM, then a graceful shutdown: requests in flight are finished, for up to --grace_ms.
//
//   bazel run //examples:http_server -- --port=8080 [--host=127.0.0.1] [--workers=0 (one per CPU)]
//                                       [--backend=auto|io_uring|epoll] [--root=DIR]
//   curl -i http://127.0.0.1:8080/plaintext
//
// Prints "listening on ADDRESS:PORT" (the port the kernel chose for --port=0) once it accepts.
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "examples/http/server.h"
#include "flags/backend_flag.h"
#include "flags/host_flag.h"
#include "flags/parse.h"
#include "net/socket_address.h"
#include "runtime/ctrl_c.h"
#include "runtime/runtime.h"

ABSL_FLAG(surge::flags::HostAddress, host, surge::flags::HostAddress(),
          "numeric IPv4 or IPv6 address to listen on");
ABSL_FLAG(int, port, 8080, "TCP port to listen on, 0 to 65535 (0: any free port)");
ABSL_FLAG(surge::BackendChoice, backend, surge::BackendChoice::kAuto,
          "I/O backend: auto (io_uring where it works, else epoll; $SURGE_BACKEND overrides), io_uring or epoll");
ABSL_FLAG(int, workers, 1, "worker threads, 0 to 1024 (0: one per CPU); each accepts on its own listener");
ABSL_FLAG(std::string, root, "", "directory to serve static files from (empty: none, 404)");
ABSL_FLAG(int, grace_ms, 5000,
          "on SIGINT or SIGTERM, how long requests in flight may take to finish, 0 to 3600000");
ABSL_FLAG(int, header_timeout_ms, 10000, "a request head must arrive within this of its first byte (408), 1 to 3600000");
ABSL_FLAG(int, body_timeout_ms, 10000, "the longest wait between two reads of a request body (408), 1 to 3600000");
ABSL_FLAG(int, idle_timeout_ms, 60000, "a keep-alive connection without a request is closed after this, 1 to 86400000");
ABSL_FLAG(int, write_timeout_ms, 30000, "a client that does not take a response within this is reset, 1 to 3600000");
ABSL_FLAG(int, max_head_bytes, 8192, "largest request line + headers (431 above), 256 to 1048576");
ABSL_FLAG(int, max_headers, 64, "most header fields per request (431 above), 1 to 100");
ABSL_FLAG(int64_t, max_body_bytes, 1 << 20, "largest request body (413 above), 0 to 1073741824");

namespace surge::examples {
namespace {

int main_impl(int argc, char** argv) {
  flags::parse_command_line(
      argc, argv,
      "an HTTP/1.1 server on N surge workers: /plaintext, /json, /metrics (Prometheus), POST /echo and static "
      "files from --root, until SIGINT or SIGTERM; then it stops accepting, lets requests in flight finish for "
      "--grace_ms, and exits.\n"
      "Usage: http_server [--host=127.0.0.1] [--port=8080] [--backend=auto|io_uring|epoll] [--workers=1] "
      "[--root=DIR] [--grace_ms=5000] [--*_timeout_ms=N] [--max_head_bytes=8192] [--max_body_bytes=1048576]");
  const SocketAddress address =
      absl::GetFlag(FLAGS_host).with_port(static_cast<std::uint16_t>(flags::get_in_range(FLAGS_port, 0, 65535)));
  const BackendChoice choice = absl::GetFlag(FLAGS_backend);
  const int workers = flags::get_in_range(FLAGS_workers, 0, 1024);
  const int grace_ms = flags::get_in_range(FLAGS_grace_ms, 0, 3'600'000);
  http::ServiceOptions options;
  options.root = absl::GetFlag(FLAGS_root);
  while (options.root.size() > 1 && options.root.back() == '/') options.root.pop_back();
  options.header_timeout = std::chrono::milliseconds(flags::get_in_range(FLAGS_header_timeout_ms, 1, 3'600'000));
  options.body_timeout = std::chrono::milliseconds(flags::get_in_range(FLAGS_body_timeout_ms, 1, 3'600'000));
  options.idle_timeout = std::chrono::milliseconds(flags::get_in_range(FLAGS_idle_timeout_ms, 1, 86'400'000));
  options.write_timeout = std::chrono::milliseconds(flags::get_in_range(FLAGS_write_timeout_ms, 1, 3'600'000));
  options.limits.max_head_bytes = static_cast<std::size_t>(flags::get_in_range(FLAGS_max_head_bytes, 256, 1 << 20));
  options.limits.max_headers = static_cast<std::size_t>(flags::get_in_range(FLAGS_max_headers, 1, 100));
  options.limits.max_body_bytes =
      static_cast<std::uint64_t>(flags::get_in_range<int64_t>(FLAGS_max_body_bytes, 0, int64_t{1} << 30));
  if (!options.root.empty()) {
    struct stat info;
    if (::stat(options.root.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
      std::fprintf(stderr, "http_server: --root=%s: not a directory\n", options.root.c_str());
      return 1;
    }
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
    std::fprintf(stderr, "http_server: %s\n", runtime.error().message().c_str());
    return 1;
  }
  auto service = std::make_shared<http::Service>(**runtime, options);
  auto server = http::serve(**runtime, address, service);
  if (!server) {
    std::fprintf(stderr, "http_server: %s: %s\n", address.to_string().c_str(), server.error().message().c_str());
    return 1;
  }
  std::printf("listening on %s\n", (*server)->local_addr().to_string().c_str());
  std::printf("http_server: backend %s, %zu workers, root %s\n", backend_name((*runtime)->worker(0).backend_kind()),
              (*server)->workers(), options.root.empty() ? "(none)" : options.root.c_str());
  std::fflush(stdout);

  const Result<int> signal = (*runtime)->block_on([]() -> Task<Result<int>> { co_return co_await ctrl_c(); }());
  if (!signal) {
    std::fprintf(stderr, "http_server: %s\n", signal.error().message().c_str());
    return 1;
  }
  std::printf("http_server: %s received, stopping: %llu open connections get %d ms to finish\n",
              strsignal(*signal), static_cast<unsigned long long>((*server)->total().open), grace_ms);
  std::fflush(stdout);
  service->drain();  // idle keep-alive connections close now, busy ones after their response
  (*server)->shutdown(std::chrono::milliseconds(grace_ms));
  const http::WorkerStats served = service->total();
  server->reset();
  service.reset();  // its cached files close on their workers
  (*runtime)->shutdown();
  std::uint64_t requests = 0;
  for (std::uint64_t count : served.requests) requests += count;
  std::printf("http_server: stopped (%llu connections, %llu responses)\n",
              static_cast<unsigned long long>(served.connections_accepted), static_cast<unsigned long long>(requests));
  return 0;
}

}  // namespace
}  // namespace surge::examples

int main(int argc, char** argv) { return surge::examples::main_impl(argc, argv); }
