// http_load: a closed-loop HTTP/1.1 load generator on one surge worker (bench/http_load.h), the
// requests/s client of bench/http_compare.py, cheaper per request than wrk so that it keeps up with a
// server faster than nginx.
//
//   bazel-bin/bench/http_load --port=8080 --path=/plaintext --connections=64 --duration_ms=2000
//       [--host=127.0.0.1] [--warmup_ms=300] [--pipeline=1] [--cpu=1] [--backend=io_uring]
//
// Prints `window_start` and `window_end` on stdout (flushed) as the measured window opens and closes, so
// that a driver can sample the server's CPU time right at the edges, then one JSON line:
//   {"requests", "seconds", "requests_per_second", "p50_us", "p99_us", "p999_us", "non_200",
//    "connection_errors", "first_connection_error", "response_bytes", "client_cpu_seconds",
//    "client_cpu_share", ...}
// client_cpu_share is this process's user + system CPU time over the window divided by the window: near
// 1.0 the client, not the server, is the limit. Exits 1 (a message on stderr) if the run failed.
#include <sched.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "bench/http_load.h"
#include "flags/backend_flag.h"
#include "flags/host_flag.h"
#include "flags/parse.h"
#include "runtime/worker.h"

ABSL_FLAG(surge::flags::HostAddress, host, surge::flags::HostAddress(), "numeric IPv4 or IPv6 address of the server");
ABSL_FLAG(int, port, 8080, "TCP port of the server, 1 to 65535");
ABSL_FLAG(std::string, path, "/plaintext", "the request target, starting with /");
ABSL_FLAG(int, connections, 64, "keep-alive connections, 1 to 100000");
ABSL_FLAG(int, pipeline, 1, "requests per write (and responses read before the next), 1 to 1024");
ABSL_FLAG(int, duration_ms, 2000, "the measured window in milliseconds, 1 to 3600000");
ABSL_FLAG(int, warmup_ms, 300, "warm-up before the window in milliseconds, 0 to 3600000");
ABSL_FLAG(int, read_buffer_kib, 64, "read buffer per connection in KiB (bounds a response head), 1 to 65536");
ABSL_FLAG(bool, borrowed_reads, false, "receive through lent buffers (io_uring: one multishot recv per connection)");
ABSL_FLAG(int, cpu, -1, "pin the process to this CPU (-1: leave it where it is)");
ABSL_FLAG(surge::BackendChoice, backend, surge::BackendChoice::kIoUring,
          "the client's I/O backend: io_uring (the default), epoll or auto");

namespace surge::bench {
namespace {

double cpu_seconds_now() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// For the JSON line: no quotes, backslashes or control characters.
std::string json_safe(std::string text) {
  for (char& c : text) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '\'';
  }
  return text;
}

int main_impl(int argc, char** argv) {
  flags::parse_command_line(
      argc, argv,
      "http_load: a closed-loop HTTP/1.1 load generator on one surge worker: N keep-alive connections, each "
      "sending GET <path> (or --pipeline of them) and reading the whole response before the next; prints "
      "window_start/window_end markers and one JSON line (requests/s, latency quantiles, errors, its own CPU).\n"
      "Usage: http_load --port=PORT [--host=127.0.0.1] [--path=/plaintext] [--connections=64] [--pipeline=1] "
      "[--duration_ms=2000] [--warmup_ms=300] [--cpu=-1] [--backend=io_uring]");
  const int cpu = flags::get_in_range(FLAGS_cpu, -1, CPU_SETSIZE - 1);
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
      std::perror("http_load: sched_setaffinity");
      return 1;
    }
  }
  HttpLoadOptions options;
  const auto port = static_cast<std::uint16_t>(flags::get_in_range(FLAGS_port, 1, 65535));
  options.address = absl::GetFlag(FLAGS_host).with_port(port);
  options.host = options.address.to_string();
  options.path = absl::GetFlag(FLAGS_path);
  if (options.path.empty() || options.path.front() != '/' ||
      options.path.find_first_of(" \r\n") != std::string::npos) {
    std::fprintf(stderr, "http_load: --path must start with / and hold no spaces or line breaks, got '%s'\n",
                 options.path.c_str());
    return 1;
  }
  options.connections = flags::get_in_range(FLAGS_connections, 1, 100000);
  options.pipeline = flags::get_in_range(FLAGS_pipeline, 1, 1024);
  options.window = std::chrono::milliseconds(flags::get_in_range(FLAGS_duration_ms, 1, 3600000));
  options.warmup = std::chrono::milliseconds(flags::get_in_range(FLAGS_warmup_ms, 0, 3600000));
  options.read_buffer_size = static_cast<std::size_t>(flags::get_in_range(FLAGS_read_buffer_kib, 1, 65536)) * 1024;
  options.borrowed_reads = absl::GetFlag(FLAGS_borrowed_reads);
  double cpu_at_start = 0;
  double cpu_at_end = 0;
  options.at_window_start = [&] {
    std::fputs("window_start\n", stdout);
    std::fflush(stdout);
    cpu_at_start = cpu_seconds_now();
  };
  options.at_window_end = [&] {
    cpu_at_end = cpu_seconds_now();
    std::fputs("window_end\n", stdout);
    std::fflush(stdout);
  };

  auto worker = Worker::create({.backend = absl::GetFlag(FLAGS_backend)});
  if (!worker) {
    std::fprintf(stderr, "http_load: %s\n", worker.error().message().c_str());
    return 1;
  }
  auto result = (*worker)->block_on(run_http_load(options));
  if (!result) {
    std::fprintf(stderr, "http_load: %s: %s\n", options.address.to_string().c_str(), result.error().message().c_str());
    // Connections may still be suspended on the worker (a server that stopped answering): do not tear
    // them down.
    std::fflush(stdout);
    std::_Exit(1);
  }
  const double seconds = std::chrono::duration<double>(result->elapsed).count();
  const double client_cpu = cpu_at_end - cpu_at_start;
  const BackendCounters counters = (*worker)->counters();
  std::printf(
      "{\"client\": \"http_load\", \"backend\": \"%s\", \"path\": \"%s\", \"connections\": %d, \"pipeline\": %d, "
      "\"requests\": %llu, \"seconds\": %.6f, \"requests_per_second\": %.1f, \"p50_us\": %.2f, \"p99_us\": %.2f, "
      "\"p999_us\": %.2f, \"non_200\": %llu, \"connection_errors\": %llu, \"first_connection_error\": \"%s\", "
      "\"response_bytes\": %llu, \"client_cpu_seconds\": %.6f, \"client_cpu_share\": %.4f, "
      "\"client_cpu_us_per_request\": %.3f, \"wait_syscalls\": %llu}\n",
      backend_name((*worker)->backend_kind()), json_safe(options.path).c_str(), options.connections, options.pipeline,
      static_cast<unsigned long long>(result->requests), seconds, result->requests_per_second(),
      result->latencies->quantile(0.5).count() / 1e3, result->latencies->quantile(0.99).count() / 1e3,
      result->latencies->quantile(0.999).count() / 1e3, static_cast<unsigned long long>(result->non_200),
      static_cast<unsigned long long>(result->connection_errors), json_safe(result->first_connection_error).c_str(),
      static_cast<unsigned long long>(result->response_bytes), client_cpu, seconds > 0 ? client_cpu / seconds : 0.0,
      result->requests > 0 ? client_cpu * 1e6 / static_cast<double>(result->requests) : 0.0,
      static_cast<unsigned long long>(counters.wait_syscalls));
  return 0;
}

}  // namespace
}  // namespace surge::bench

int main(int argc, char** argv) { return surge::bench::main_impl(argc, argv); }
