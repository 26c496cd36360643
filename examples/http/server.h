// server.h: the example HTTP/1.1 service: /plaintext, /json, /echo, /metrics and static files, on every
// worker of a Runtime, hardened against hostile clients. //examples:http_server is its command line.
//
//   auto runtime = surge::Runtime::create({.workers = 2});
//   surge::http::ServiceOptions options;
//   options.root = "/srv/www";                                        // static files ("" serves none)
//   auto service = std::make_shared<surge::http::Service>(**runtime, options);
//   auto server = surge::http::serve(**runtime, *surge::SocketAddress::parse("0.0.0.0:8080"), service);
//   if (!server) return fail(server.error());
//   ... wait for SIGTERM ...
//   (*server)->shutdown(std::chrono::seconds(5));   // requests in flight finish, then connections close
//
// Routes (GET and HEAD; other methods get 405 with Allow):
//   /plaintext  200 text/plain "Hello, World!" (allocation-free: tests/http_allocation_test.cc);
//   /json       200 application/json {"message":"Hello, World!"};
//   /metrics    the runtime's per-worker counters and the service's, in Prometheus' text format 0.0.4;
//   /echo       POST: the request body back (bounded by Limits::max_body_bytes);
//   otherwise   a file under ServiceOptions::root (static_path.h: no way out of the root), with
//               Content-Type by extension, Last-Modified and If-Modified-Since (304); 404 if none.
//
// Protocol: HTTP/1.1 (and 1.0) with keep-alive and pipelining: every complete request in what one read
// brought is answered, and the answers go out in one write (up to ServiceOptions::flush_bytes). Bodies by
// Content-Length and chunked; "Expect: 100-continue" is answered before the body is read. Responses carry
// Content-Length and a Date (formatted once a second per worker).
//
// Limits (request_parser.h says which request gets which status): every error response closes the
// connection, after a lingering close (the client's unread bytes are drained for up to
// ServiceOptions::linger_timeout, so that it reads the response instead of a reset). Graceful shutdown:
// drain(), then Server::shutdown(grace). Deadlines: a head
// must arrive within header_timeout of its first byte (408), each read of a body within body_timeout
// (408), a keep-alive connection with no request for idle_timeout is closed silently, and a client that
// does not take a response within write_timeout is reset. Memory per connection is bounded whatever the
// client does: an input buffer of Limits::max_head_bytes, responses up to flush_bytes plus one response
// (a file over 64 KiB is sent in 64 KiB pieces), and an /echo body up to max_body_bytes, the last two
// while that answer is being sent: a buffer a large answer grew is given back once it is out.
//
// Lifetime: destroy the Service (its cached files are closed on their workers) before its Runtime shuts
// down; drain() empties the caches.
// Threads: one Service serves every worker of one Runtime; each connection runs on the worker that
// accepted it and touches only that worker's counters. metrics() and stats() from any thread.
#ifndef SURGE_EXAMPLES_HTTP_SERVER_H_
#define SURGE_EXAMPLES_HTTP_SERVER_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "examples/http/request_parser.h"
#include "net/serve.h"
#include "net/socket_address.h"
#include "net/tcp_stream.h"
#include "runtime/result.h"
#include "runtime/runtime.h"
#include "runtime/task.h"

namespace surge::http {

struct ServiceOptions {
  std::string root;  // the directory static files come from; empty: no static files (404)
  Limits limits;
  std::chrono::milliseconds header_timeout{10'000};  // from a request's first byte to the end of its head
  std::chrono::milliseconds body_timeout{10'000};    // between two reads of a request body
  std::chrono::milliseconds idle_timeout{60'000};    // a keep-alive connection with no request
  std::chrono::milliseconds write_timeout{30'000};   // a response the client does not take
  std::chrono::milliseconds linger_timeout{2'000};   // draining the client after an error response
  std::size_t flush_bytes = 16 * 1024;               // pipelined responses sent together, up to this
  // Open-file cache, per worker: a static file's fd, size and headers are kept for file_cache_validity
  // after it was opened, so that a request for it costs one read (a page-cache hit, served inline) rather
  // than open, statx, read and close. A file changed or replaced within that time may still be served as
  // it was (nginx's open_file_cache makes the same trade); expired entries are closed at the worker's next
  // use of its cache. At most file_cache_entries files per worker; 0 turns the cache off.
  std::size_t file_cache_entries = 1024;
  std::chrono::milliseconds file_cache_validity{1'000};
};

// The statuses the service counts separately; anything else counts as "other".
inline constexpr int kCountedStatuses[] = {100, 200, 304, 400, 403, 404, 405, 408, 413, 431, 500, 501, 505};
inline constexpr std::size_t kStatusSlots = std::size(kCountedStatuses) + 1;

// One worker's figures. Each is written by its worker's thread only and read with relaxed loads from any
// thread: each figure is exact, a set of them is not a snapshot.
struct WorkerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_open = 0;
  std::uint64_t requests[kStatusSlots] = {};  // by status, in kCountedStatuses' order, then "other"
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t timeouts = 0;  // 408s sent, idle connections closed, clients reset for not reading
};

class Service {
 public:
  // `runtime`: the Runtime whose workers will run the connections (it must outlive the Service).
  Service(Runtime& runtime, ServiceOptions options);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Runs one connection until it closes: the handler surge::serve() calls (see serve() below). On the
  // stream's worker. Cancelling it (the Server's shutdown) ends the connection at its current await.
  Task<void> serve_connection(TcpStream stream);

  // The runtime's counters per worker (SQEs, CQEs, wait syscalls, wake-ups, lent-buffer exhaustion) and
  // the service's (connections, requests by status, bytes), in Prometheus' text exposition format.
  std::string metrics() const;

  // The first step of a graceful shutdown, before Server::shutdown(): from now on each connection closes
  // after the response it is working on (which says "Connection: close"), and connections waiting for
  // their next request close at once (their read is ended by shutdown(SHUT_RD); bytes already received
  // are still answered); the open-file caches are emptied. Any thread; returns at once, the workers do
  // the rest.
  void drain();
  bool draining() const noexcept { return draining_.load(std::memory_order_relaxed); }
  WorkerStats stats(std::size_t worker) const noexcept;
  WorkerStats total() const noexcept;
  const ServiceOptions& options() const noexcept { return options_; }

  struct PerWorker;  // one worker's counters, connections and open-file cache (server.cc)

 private:
  class Connection;
  Runtime* runtime_;
  ServiceOptions options_;
  std::vector<std::shared_ptr<PerWorker>> workers_;  // workers_[i]: worker i's (shared with drain()'s walks)
  std::atomic<bool> draining_{false};
};

// surge::serve() with `service` as the connection handler: every worker of `runtime` listens on
// `address` (SO_REUSEPORT) and serves the connections it accepts. The Service must outlive the Server.
[[nodiscard]] Result<std::unique_ptr<Server>> serve(Runtime& runtime, const SocketAddress& address,
                                                    std::shared_ptr<Service> service,
                                                    const ServeOptions& options = {});

}  // namespace surge::http

#endif  // SURGE_EXAMPLES_HTTP_SERVER_H_
