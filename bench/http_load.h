// http_load.h: a closed-loop HTTP/1.1 load generator on one surge worker, the client of
// bench/http_compare.py (through //bench:http_load). wrk's single thread is near 90 % of a CPU at nginx's
// rate, so a server faster than nginx would be measured against wrk's limit; this one is cheaper per
// request (io_uring, no allocation per request, the request bytes formatted once, one read buffer per
// connection, responses parsed in place).
//
// N keep-alive connections, each sending `pipeline` copies of `GET <path> HTTP/1.1\r\nHost: ...\r\n\r\n`
// in one write and reading every response in full (status line, headers, a Content-Length body) before
// sending the next batch. A warm-up, then a measured window whose edges call back into the caller, then
// every connection finishes the batch it has in flight and stops.
//
//   auto result = co_await surge::bench::run_http_load({.address = server, .host = "127.0.0.1:8080",
//                                                       .path = "/plaintext", .connections = 64});
//   if (result) std::printf("%.0f requests/s\n", result->requests_per_second());
//
// Errors: a status other than 200 is counted (`non_200`), not fatal. A response the scanner cannot read
// (malformed, chunked, a head larger than the read buffer), a connection the server closed or reset with
// responses outstanding, or a `Connection: close` response are counted as `connection_errors` and the
// connection is opened again (as wrk does). A failed connect, or more than `max_connection_errors`, ends
// the run with the error.
#ifndef SURGE_BENCH_HTTP_LOAD_H_
#define SURGE_BENCH_HTTP_LOAD_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "bench/latency_histogram.h"
#include "net/socket_address.h"
#include "runtime/result.h"
#include "runtime/task.h"

namespace surge::bench {

// The head of one HTTP/1.x response, as scan_response_head() found it.
struct ResponseHead {
  int status = 0;
  std::size_t head_size = 0;          // status line + headers + the blank line, in bytes
  std::uint64_t content_length = 0;   // 0 when the header is absent (a 204/304 or an empty body)
  bool connection_close = false;      // `Connection: close`, or an HTTP/1.0 response without keep-alive
};

enum class ScanStatus {
  kComplete,   // *head is filled in
  kNeedMore,   // no blank line yet: read more bytes and scan again from the start
  kMalformed,  // not a response this client can read; *error says why
};

// Scans the response head at the start of `bytes` without copying or allocating. Chunked bodies
// (Transfer-Encoding) are kMalformed: the servers compared here answer with Content-Length.
// Header names are matched case-insensitively; a Content-Length that is not a decimal number is kMalformed.
ScanStatus scan_response_head(std::string_view bytes, ResponseHead* head, const char** error);

struct HttpLoadOptions {
  SocketAddress address = SocketAddress::ipv4_loopback(80);
  std::string host = "127.0.0.1";  // the Host header's value
  std::string path = "/plaintext";
  int connections = 64;
  int pipeline = 1;                 // requests per write (and responses read before the next write)
  std::size_t read_buffer_size = 64 * 1024;  // per connection; bounds the response head, not the body
  // Receive through TcpStream::read_borrowed (on io_uring one multishot recv per connection instead of an
  // SQE per read; the bytes are copied from the lent buffer into the connection's read buffer).
  bool borrowed_reads = false;
  std::chrono::nanoseconds warmup = std::chrono::milliseconds(300);
  std::chrono::nanoseconds window = std::chrono::seconds(1);
  std::uint64_t max_connection_errors = 1000;
  // Called on the client's thread right before the window opens and right after it closes. Either may
  // be empty.
  std::function<void()> at_window_start;
  std::function<void()> at_window_end;
};

struct HttpLoadResult {
  std::uint64_t requests = 0;           // responses completed in the window
  std::uint64_t non_200 = 0;            // of those, with another status
  std::uint64_t response_bytes = 0;     // head + body bytes of those responses
  std::uint64_t connection_errors = 0;  // over the whole run (warm-up included)
  std::string first_connection_error;   // empty if none
  std::chrono::nanoseconds elapsed{0};  // the window's length as measured
  // Latency of each response of the window: from the write of its batch to its last byte.
  std::unique_ptr<LatencyHistogram> latencies = std::make_unique<LatencyHistogram>();

  double requests_per_second() const {
    const double seconds = std::chrono::duration<double>(elapsed).count();
    return seconds > 0 ? static_cast<double>(requests) / seconds : 0.0;
  }
};

// Runs on the current worker; returns once every connection has stopped (at most 10 s after the window
// for a server that stopped answering, then ETIMEDOUT).
Task<Result<HttpLoadResult>> run_http_load(HttpLoadOptions options);

}  // namespace surge::bench

#endif  // SURGE_BENCH_HTTP_LOAD_H_
